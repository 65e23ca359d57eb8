"""``guardrail-proxy eval pii``: scoring arithmetic, entity mapping, and a run on rows written here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from proxy.cli import main
from proxy.evals.pii import Result, Row, read_rows, score

ROWS = [
    {
        "text": "Mail lena.a@gmail.com, call 618-226-1460, I live in Helsinki.",
        "spans": [
            {"start": 5, "end": 21, "entity_type": "EMAIL_ADDRESS"},
            {"start": 28, "end": 40, "entity_type": "PHONE_NUMBER"},
            {"start": 52, "end": 60, "entity_type": "GPE"},
        ],
        "source": "handmade",
    },
    {"text": "Nothing personal in this one.", "spans": [], "source": "handmade"},
]


def test_overlap_scoring_and_leak_recall() -> None:
    row = Row("Ann Lee lives at 12 Oak Street", [(0, 7, "PERSON"), (17, 30, "LOCATION")])
    res = Result("x")
    score(res, row, [(0, 3, "PERSON"), (17, 30, "PERSON")], ["PERSON", "LOCATION"])
    person, loc = res.per["PERSON"], res.per["LOCATION"]
    assert (person.pred, person.pred_ok, person.gold, person.gold_found) == (2, 1, 1, 1)
    assert (loc.gold, loc.gold_found) == (1, 0)
    assert person.chars == 6 and person.chars_covered == 3  # "Ann" covered, "Lee" leaked
    assert loc.leak_recall == 1.0  # covered, although by a span of the wrong type
    assert res.rows_clean == 0


def test_rows_are_read_and_gold_types_mapped(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in ROWS) + "\n")
    rows = read_rows(path)
    assert rows[0].gold[2] == (52, 60, "LOCATION") and rows[1].gold == []
    path.write_text('{"text": "x"}\n')
    with pytest.raises(SystemExit, match=r"rows\.jsonl:1"):
        read_rows(path)


def test_cli_prints_both_systems(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in ROWS) + "\n")
    assert main(["eval", "pii", str(path), "--no-vanilla"]) == 0
    out = capsys.readouterr().out
    assert "EMAIL_ADDRESS" in out and "OVERALL" in out and "rows/s" in out
    overall = next(line for line in out.splitlines() if line.startswith("OVERALL"))
    assert overall.split("|")[1].split() == ["1.000", "1.000", "1.000", "1.000"]


def test_report_states_speed_and_f2_targets_against_vanilla() -> None:
    import io

    from proxy.evals.pii import Tally, report

    ours, vanilla = Result("ours", seconds=1.0, rows=30), Result("vanilla", seconds=3.0, rows=30)
    ours.per["PERSON"] = Tally(pred=10, pred_ok=9, gold=10, gold_found=9, chars=50, chars_covered=48)
    vanilla.per["PERSON"] = Tally(pred=10, pred_ok=6, gold=10, gold_found=6, chars=50, chars_covered=40)
    out = io.StringIO()
    report([ours, vanilla], ["PERSON"], out)
    text = out.getvalue()
    assert "speed-up ours vs vanilla: 3.00x (target >= 2.00x: met)" in text
    assert "equal or better: yes" in text and "(target >= +0.150: met)" in text
    vanilla.seconds = 1.5
    out = io.StringIO()
    report([ours, vanilla], ["PERSON"], out)
    assert "1.50x (target >= 2.00x: NOT met)" in out.getvalue()
