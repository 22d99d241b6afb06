"""Review of answers reading (archcalc/homework/answers.py): hostile and unusual answers found by
trying to break it."""
import json
from pathlib import Path

from typer.testing import CliRunner

from archcalc.cli import app
from archcalc.homework.answers import MAX_GIVEN, Invalid, parse_answers

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "specs" / "homework" / "conv_pool_fc.yaml"
runner = CliRunner()


def test_a_huge_answer_is_shown_back_cut_short(tmp_path):
    huge = "(" * 100_000 + "H" + ")" * 100_000
    sheet = parse_answers(f"answers:\n  fc.params: {json.dumps(huge)}\n  conv1.params: 416\n", strict=False)
    answer = sheet.answers[0]
    assert isinstance(answer.value, Invalid)
    assert answer.given == huge  # the machine form keeps it whole
    shown = answer.given_text
    assert len(shown) < MAX_GIVEN + 40 and shown.endswith("(200,001 characters)")
    assert shown.startswith("((((") and "...)))" in shown
    assert sheet.answers[1].given_text == "416"  # short answers as written
    path = tmp_path / "answers.yaml"
    path.write_text(f"answers:\n  fc.params: {json.dumps(huge)}\n")
    result = runner.invoke(app, ["check", str(SPEC), str(path)])
    assert result.exit_code == 2
    assert len(result.stdout.splitlines()) < 40  # was 15,000 lines of brackets in the table
    assert len([line for line in result.stderr.splitlines() if "error:" in line]) == 1
    assert "Traceback" not in result.stderr
