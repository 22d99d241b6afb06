"""`archcalc check` and `archcalc explain` from the command line, on the bundled homework."""
import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from archcalc.cli import app

ROOT = Path(__file__).resolve().parents[2]
HOMEWORK = ROOT / "specs" / "homework"
runner = CliRunner()

STUDENT = """answers:
  conv1.params: 400                 # forgot the bias
  fc.params: "10*(4*W*H + 1)"       # right, in another form
  conv1.macs: "800*H*W"             # gave FLOPs
  pool1.output_shape: [16, "H/2", "W/2"]
  total.macs: "440*H*W + 16"          # counted the bias additions
"""


@pytest.mark.parametrize("spec", ["conv_pool_fc", "denoiser"])
def test_answer_keys_are_all_right(spec):
    result = runner.invoke(app, ["check", str(HOMEWORK / f"{spec}.yaml"), str(HOMEWORK / f"{spec}.answers.yaml")])
    assert result.exit_code == 0, result.output
    assert "✗" not in result.stdout


def test_a_students_sheet(tmp_path):
    sheet = tmp_path / "alice.yaml"
    sheet.write_text(STUDENT)
    result = runner.invoke(app, ["check", str(HOMEWORK / "conv_pool_fc.yaml"), str(sheet), "--json"])
    assert result.exit_code == 1
    [data] = json.loads(result.stdout)  # check --json: a list, one object per answers file
    verdicts = {a["quantity"]: a["verdict"] for a in data["answers"]}
    assert verdicts == {"conv1.params": "wrong", "fc.params": "right", "conv1.macs": "wrong",
                        "pool1.output_shape": "right", "total.macs": "wrong"}
    answers = {a["quantity"]: a for a in data["answers"]}
    assert "bias" in answers["conv1.params"]["hint"]
    assert answers["conv1.params"]["formula"] == "params = (K1*K2*Cin + 1)*Cout"
    assert "FLOPs = 2 x MACs" in answers["conv1.macs"]["hint"]
    assert (data["right"], data["wrong"], data["score"]) == (2, 3, 0.4)


def test_gradebook_for_many_students(tmp_path):
    (tmp_path / "alice.yaml").write_text(STUDENT)
    (tmp_path / "bob.yaml").write_text("answers:\n  conv1.params: 416\n  fc.params: 40*H*W + 10\n")
    book = tmp_path / "grades.csv"
    result = runner.invoke(app, ["check", str(HOMEWORK / "conv_pool_fc.yaml"), str(tmp_path / "alice.yaml"),
                                 str(tmp_path / "bob.yaml"), "--gradebook", str(book)])
    assert result.exit_code == 1
    rows = list(csv.DictReader(book.open()))
    assert [(r["student"], r["right"], r["total"], r["score"]) for r in rows] == [
        ("alice", "2", "5", "0.4"), ("bob", "2", "2", "1.0")]
    assert rows[0]["wrong"] == "conv1.params;conv1.macs;total.macs"


@pytest.mark.parametrize("text, where, message", [
    ("answers:\n  conv1.parms: 3\n", "2:3", "unknown figure 'parms' in 'conv1.parms' (did you mean 'params'?)"),
    ("answers:\n  cnv1.params: 3\n", "2:3", "did you mean 'conv1'"),
    ("answers:\n  conv1.params: \"__import__('os')\"\n", "2:17", "only min(...), max(...), floor(x), ceil(x) and round(x[, ndigits]) may be called"),
    ("answer:\n  conv1.params: 3\n", "1:1", "did you mean 'answers'"),
    ("answers: [1, 2\n", "2:1", "invalid YAML"),
])
def test_malformed_answer_files_are_one_located_line(tmp_path, text, where, message):
    sheet = tmp_path / "bad.yaml"
    sheet.write_text(text)
    result = runner.invoke(app, ["check", str(HOMEWORK / "conv_pool_fc.yaml"), str(sheet)])
    assert result.exit_code == 2, result.output
    line = result.stderr.strip()
    assert line.startswith(f"{sheet}:{where}: error: ") and message in line, line


def test_explain_shows_the_working(tmp_path):
    result = runner.invoke(app, ["explain", str(HOMEWORK / "conv_pool_fc.yaml"), "conv1", "fc"])
    assert result.exit_code == 0
    out = result.stdout
    assert "conv1  params = (K1*K2*Cin + 1)*Cout = (5*5*1 + 1)*16 = 416" in out
    assert "fc     params = (Nin + 1)*Nout = (4*H*W + 1)*10 = 40*H*W + 10" in out
    numeric = runner.invoke(app, ["explain", str(HOMEWORK / "conv_pool_fc.yaml"), "pool1", "--set", "H=28",
                                  "--set", "W=28"]).stdout
    assert "pool1  rf = r + D(K-1)*j = 5 + 1*(2 - 1)*1 = 6, jump = j*S = 1*2 = 2" in numeric
    assert "floor((28 + 2*0 - 1*(2-1) - 1)/2) + 1 = 14" in numeric
    md = runner.invoke(app, ["explain", str(HOMEWORK / "denoiser.yaml"), "--format", "markdown"]).stdout
    assert md.startswith("|") and "conv2" in md
    bad = runner.invoke(app, ["explain", str(HOMEWORK / "denoiser.yaml"), "conv9"])
    assert bad.exit_code == 2 and "did you mean" in bad.stderr
