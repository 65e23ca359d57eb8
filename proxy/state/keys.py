"""Every Redis key the proxy writes, in one place, versioned (``gr:v1:...``).

Keys of one reservation share a hash tag (the team), so the admission script also runs
on Redis Cluster. Names from the policy are escaped so they cannot forge a key.
A format change bumps ``VERSION``: old keys then simply expire.
"""

from __future__ import annotations

import re

from proxy.state.store import Reservation, Subject

VERSION = "v1"
PREFIX = f"gr:{VERSION}"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")

# Seconds the budget counters outlive their period (late settlements still land).
DAY_TTL_S = 3 * 86_400
MONTH_TTL_S = 33 * 86_400
RESERVATION_TTL_S = 86_400


def escape(name: str) -> str:
    return _UNSAFE.sub(lambda m: "%" + "%".join(f"{b:02X}" for b in m.group().encode()), name)


def team_tag(team: str) -> str:
    return "{t:" + escape(team) + "}"


def subject_keys(team: str, subject: Subject, day: str, month: str) -> list[str]:
    """rpm, tpm, concurrent, tokens/day, tokens/month, usd/day, usd/month (store.KINDS order)."""
    base = f"{PREFIX}:{team_tag(team)}:{subject.scope}:{escape(subject.name)}"
    return [
        f"{base}:rpm",
        f"{base}:tpm",
        f"{base}:conc",
        f"{base}:tok:d:{day}",
        f"{base}:tok:m:{month}",
        f"{base}:usd:d:{day}",
        f"{base}:usd:m:{month}",
    ]


def reservation_keys(res: Reservation) -> list[str]:
    """KEYS of the admission and settle scripts: the reservation record, then 7 per subject."""
    keys = [f"{PREFIX}:{team_tag(res.team)}:res:{escape(res.id)}"]
    for s in res.subjects:
        keys.extend(subject_keys(res.team, s, res.periods.day, res.periods.month))
    return keys


def kv(name: str) -> str:
    """A small value stored by another feature (e.g. drift baselines)."""
    return f"{PREFIX}:kv:{name}"


def counter(name: str) -> str:
    return f"{PREFIX}:ctr:{name}"
