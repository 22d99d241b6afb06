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


def _one(value: str, key: str = "total.macs"):
    return parse_answers(f"answers:\n  {key}: {json.dumps(value)}\n", strict=False).answers[0].value


def test_a_middle_dot_is_not_read_as_part_of_a_name():
    # Python takes U+00B7 as a letter: H·W was one unknown symbol named 'H·W' ("not a size symbol")
    for text, written in (("H·W", "H*W"), ("40*H·W + 10", "40*H*W + 10"), ("40·(H−4)·(W−4) + 426", "40*(H-4)*(W-4) + 426")):
        answer = _one(text)
        assert isinstance(answer, Invalid), answer
        assert "not a multiplication sign" in answer.message and answer.message.endswith(f"write '{written}'")


def test_a_formula_of_decimals_is_approximate_like_the_same_number_in_e_notation(tmp_path):
    # conv_pool_fc at H = W = 64: total MACs 1,802,240 (conv 64*64*16*25 = 1,638,400 + fc 163,840)
    assert _one("8.2*10**8").__class__.__name__ == "Approx"
    assert _one("8.2*10**8").text == "8.2e8" and _one("1.64*10**(5)").text == "1.64e5"
    assert _one("4*10**6").__class__.__name__ == "Exact"  # whole numbers stay exact
    path = tmp_path / "answers.yaml"
    path.write_text('set: {H: 64, W: 64}\nanswers:\n  total.macs: "1.8*10**6"\n  conv1.macs: "1.6*10**6"\n'
                    '  fc.macs: "1.64e5"\n  fc.params: "1.64*10**5"\n')
    result = runner.invoke(app, ["check", "--json", str(SPEC), str(path)])
    got = {a["quantity"]: a for a in json.loads(result.stdout)[0]["answers"]}  # one object per answers file
    assert got["total.macs"]["verdict"] == "close"  # 0.12 % off: was "wrong" (compared to the last digit)
    # 1.6e6 is 2.3 % below 1,638,400 and closer to the off-by-one 16*63*63*25 = 1,587,600, but
    # 1,638,400 lies within half a unit of its last digit (50,000): no diagnosis, as for '1.6e6'
    assert got["conv1.macs"]["verdict"] == "wrong" and "off by one" not in got["conv1.macs"]["hint"]
    assert got["fc.macs"]["verdict"] == got["fc.params"]["verdict"] == "close"


def test_digits_grouped_by_spaces_are_not_told_to_be_a_product():
    # the message said "write '1*000'" (which is 0) for 1 000
    for text, written in (("1 000", "1000"), ("40 320*H*W + 1 704", "40320*H*W + 1704"), ("1 000 H", "1000*H")):
        answer = _one(text)
        assert isinstance(answer, Invalid) and "no spaces inside it" in answer.message, answer
        assert answer.message.endswith(f"write '{written}'") and "1*000" not in answer.message
    assert "write" not in _one("1.000.000").message  # no product of 1.000 and .000 suggested


def test_the_field_as_check_prints_it_reads_back_as_the_right_answer(tmp_path):
    # conv_pool_fc: conv 5x5 padding 2, then 2x2 max pooling: size 5 + (2-1)*1 = 6, stride 2,
    # start 0 - 2 = -2 (the first window's first input, in pixels of the input)
    answer = _one("size 6, stride 2, start -2", "pool1.rf")
    assert {k: v.value for k, v in answer.parts.items()} == {"size": 6, "stride": 2, "start": -2}
    per_axis = _one("size [7, 5], stride 2, start [-3, -2]", "pool1.rf")
    assert [v.value for v in per_axis.size] == [7, 5] and per_axis.stride.value == 2
    for bad in ("size 6, size 7", "size", "size 6 stride 2"):
        assert isinstance(_one(bad, "pool1.rf"), Invalid), bad
    assert "write an rf as" in _one("size 6 stride 2", "pool1.rf").message
    result = runner.invoke(app, ["check", "--json", str(SPEC), str(_written(tmp_path, "  pool1.rf: x\n"))])
    expected = json.loads(result.stdout)[0]["answers"][0]["expected"]
    assert expected == "size 6, stride 2, start -2"
    result = runner.invoke(app, ["check", "--json", str(SPEC), str(_written(tmp_path, f"  pool1.rf: {expected}\n"))])
    assert json.loads(result.stdout)[0]["answers"][0]["verdict"] == "right" and result.exit_code == 0


def _written(tmp_path, body: str) -> Path:
    path = tmp_path / "rf.yaml"
    path.write_text("answers:\n" + body)
    return path
