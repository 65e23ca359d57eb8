"""The long fuzz run (issue 8): every property test and the schemathesis run, N cases each.

    .venv/bin/python bench/fuzz.py [--examples 1000] [--only KEYWORD]

With the default 1,000 cases per property test the run generates about 25,000 cases (the
schemathesis test gets 1,000 per API operation) in about 6 minutes on 2 cores.

CI runs the same tests with a few hundred cases each; this sets ``GUARDRAIL_FUZZ_EXAMPLES``
(read by ``tests.conftest.fuzz_examples``) and runs them with Hypothesis' statistics on:

- the SSE parser (tests/streaming/test_sse_properties.py),
- the text normaliser (tests/guards/injection/test_injection_normalize.py),
- the rule loader, every rule kind (tests/rules/test_loader_properties.py),
- the request models / intake (tests/handlers/test_intake_properties.py),
- schemathesis against the proxy's OpenAPI description, on a live proxy (tests/fuzz/).

Prints one JSON line: cases generated per test (passing, failing, invalid), their sum,
the pytest outcome and the elapsed time. Exit status is pytest's.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGETS = [
    "tests/streaming/test_sse_properties.py",
    "tests/guards/injection/test_injection_normalize.py",
    "tests/rules/test_loader_properties.py",
    "tests/handlers/test_intake_properties.py",
    "tests/fuzz",
]
_HEADER = re.compile(r"^(tests/\S+::\S+?):?\s*$")
_COUNTS = re.compile(r"(\d+) passing(?: examples?)?, (\d+) failing(?: examples?)?,(?: and)? (\d+) invalid")


def parse_statistics(output: str) -> dict[str, dict[str, int]]:
    """Per test id: passing / failing / invalid examples summed over Hypothesis' phases."""
    stats: dict[str, dict[str, int]] = {}
    current: str | None = None
    for line in output.splitlines():
        header = _HEADER.match(line.strip())
        if header:
            current = header.group(1)
            continue
        counts = _COUNTS.search(line)
        if counts and current is not None:
            entry = stats.setdefault(current, {"passing": 0, "failing": 0, "invalid": 0})
            for key, value in zip(("passing", "failing", "invalid"), counts.groups(), strict=True):
                entry[key] += int(value)
    return stats


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--examples", type=int, default=1000, help="cases per property test (default 1000)")
    ap.add_argument("--only", default=None, help="pytest -k expression to run a subset")
    args = ap.parse_args()
    env = {**os.environ, "GUARDRAIL_FUZZ_EXAMPLES": str(args.examples), "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--hypothesis-show-statistics",
           "--timeout", "0", *TARGETS]
    if args.only:
        cmd += ["-k", args.only]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    stats = parse_statistics(proc.stdout)
    summary = next((ln for ln in proc.stdout.splitlines() if re.search(r"\d+ (passed|failed)", ln)), "")
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-6000:] + proc.stderr[-2000:])
    print(json.dumps({
        "examples_per_test": args.examples,
        "tests": stats,
        "cases_total": sum(s["passing"] + s["failing"] + s["invalid"] for s in stats.values()),
        "failing_total": sum(s["failing"] for s in stats.values()),
        "pytest": summary,
        "returncode": proc.returncode,
        "elapsed_s": round(elapsed, 1),
    }))
    return proc.returncode


if __name__ == "__main__":
    raise SystemExit(main())
