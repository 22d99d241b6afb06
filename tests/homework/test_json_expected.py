"""check's and grade's JSON give expected values without thousands separators (scripts read
them: 11699112, not 11,699,112), and a field per axis keeps its sizes whole ([1201, 1])."""
import json
from pathlib import Path

from typer.testing import CliRunner

from archcalc.cli import app
from archcalc.homework.check import ungrouped

ROOT = Path(__file__).resolve().parents[2]


def test_ungrouped_keeps_the_commas_between_sizes():
    assert ungrouped("11,699,112") == "11699112"
    assert ungrouped("40,320*H*W + 1,704") == "40320*H*W + 1704"
    assert ungrouped("[16, 1024, 1]") == "[16, 1024, 1]"
    assert ungrouped("size 6, stride 2, start -2") == "size 6, stride 2, start -2"
    assert ungrouped("max(1000, H)") == "max(1000, H)"  # the printer writes a call's arguments apart
    assert ungrouped(None) is None


def test_check_json_expected_is_a_plain_number(tmp_path):
    answers = tmp_path / "a.yaml"
    answers.write_text("answers:\n  total.params: 1\n")
    result = CliRunner().invoke(app, ["check", str(ROOT / "specs" / "zoo" / "resnet18.yaml"), str(answers), "--json"])
    [data] = json.loads(result.stdout)  # check --json: a list, one object per answers file
    assert data["answers"][0]["expected"] == "11699112"  # 11,689,512 trainable + 9,600 batch-norm statistics


def test_a_field_per_axis_is_written_without_grouping(tmp_path):
    spec = tmp_path / "net.yaml"
    spec.write_text("input: [1, 2000, 8]\nlayers:\n  - {name: c, conv: {out: 1, kernel: [1201, 1]}}\n")
    answers = tmp_path / "a.yaml"
    answers.write_text("answers:\n  c.rf: [1201, 1]\n")
    result = CliRunner().invoke(app, ["check", str(spec), str(answers), "--json"])
    [data] = json.loads(result.stdout)
    assert data["answers"][0]["verdict"] == "right"
    assert data["answers"][0]["expected"].startswith("size [1201, 1]")
