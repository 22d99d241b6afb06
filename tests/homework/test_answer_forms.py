"""Issue 13 point 5, the reading and equality defects: the forms students (and archcalc itself)
write answers in, and verdicts that say when an answer is right.

Written Assignment 1 of the course notes is the UNPADDED net (conv 5x5, 16 filters, no padding,
relu, 2x2 max-pooling, fc 10 on a grey H x W image). By hand, with PyTorch's floor for the pooling:
conv1 has (5*5*1 + 1)*16 = 416 parameters, its output is [16, H-4, W-4], the pooling's
[16, floor((H-4)/2), floor((W-4)/2)], fc has 10*(16*floor((H-4)/2)*floor((W-4)/2) + 1) and the
network 10*(16*floor((H-4)/2)*floor((W-4)/2) + 1) + 416; at H = W = 28 that is
10*(16*12*12 + 1) + 416 = 23,466. The field after the pooling is 5 + (2 - 1)*1 = 6 with stride 2;
after flatten every output sees the whole image (global). 40*(H-4)*(W-4) + 426 is the same only
where (H-4)/2 and (W-4)/2 are whole: even H and W.
"""
import json
import textwrap

import pytest
from typer.testing import CliRunner

from archcalc.cli import app
from archcalc.errors import SpecError
from archcalc.homework.answers import Exact, Invalid, RFAnswer, Shape, Symbolic, parse_answers

runner = CliRunner()

WA1 = """\
name: written_assignment_1
input: [1, H, W]
layers:
  - {name: conv1, conv: {out: 16, kernel: 5}}
  - relu
  - {name: pool1, maxpool: 2}
  - flatten
  - {name: fc, linear: 10}
"""
# Two poolings: the floors divide exactly only for multiples of 4.
TWO_POOLS = """\
name: two_pools
input: [1, H, W]
layers:
  - {name: pool1, maxpool: 2}
  - {name: pool2, maxpool: 2}
  - flatten
  - {name: fc, linear: 10}
"""
# Strided, padded conv and a ceil_mode pooling: check prints floors of floors for them.
STRIDED = """\
name: strided
input: [3, H, W]
layers:
  - {name: conv1, conv: {out: 8, kernel: 3, stride: 2, padding: 1}}
  - {name: pool1, maxpool: {kernel: 2, ceil_mode: true}}
  - {name: pool2, avgpool: 3}
"""
HAND_TOTAL = "10*(16*floor((H-4)/2)*floor((W-4)/2) + 1) + 416"


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def _check(tmp_path, answers, spec=WA1, *options):
    spec_path = _write(tmp_path, "spec.yaml", spec)
    answers_path = _write(tmp_path, "answers.yaml", answers)
    result = runner.invoke(app, ["check", "--json", str(spec_path), str(answers_path), *options])
    assert "Traceback" not in result.output
    [data] = json.loads(result.stdout)  # check --json: a list, one object per answers file
    return result, {a["quantity"]: a for a in data["answers"]}


def _value(text, key="fc.params"):
    return parse_answers(f"answers:\n  {key}: {text}\n", "a.yaml").answers[0].value


# --- floor, ceil and // are read (through the whitelisting parser) ----------------------------
def test_floor_ceil_and_floor_division_are_accepted_and_judged(tmp_path):
    result, got = _check(tmp_path, f"""\
        answers:
          total.trainable_params: "{HAND_TOTAL}"
          fc.params: "10*(16*((H-4)//2)*((W-4)//2) + 1)"
          pool1.output_shape: [16, "(H-4)//2", "floor((W-4)/2)"]
          conv1.output_shape: [16, "ceil(H - 4.5)", "W - 4"]
        """)
    assert result.exit_code == 0, result.output
    assert [a["verdict"] for a in got.values()] == ["right"] * 4


def test_floor_slips_are_still_wrong(tmp_path):
    result, got = _check(tmp_path, """\
        answers:
          pool1.output_shape: [16, "ceil((H-4)/2)", "(W-4)//2"]
          total.trainable_params: "10*(16*floor((H-3)/2)*floor((W-4)/2) + 1) + 416"
        """)
    assert result.exit_code == 1
    assert {a["verdict"] for a in got.values()} == {"wrong"}


def test_at_numbers_the_floors_are_exact(tmp_path):
    # 28 and 29 give the same pooled size, 12: 10*(16*144 + 1) + 416 = 23,466 for both.
    for size in (28, 29):
        _, got = _check(tmp_path, f"""\
            set: {{H: {size}, W: {size}}}
            answers:
              total.trainable_params: 23466
              fc.params: "{HAND_TOTAL} - 416"
            """)
        assert [a["verdict"] for a in got.values()] == ["right", "right"], got


def test_the_notation_check_prints_reads_back_as_a_right_answer(tmp_path):
    # Every expected value check prints (floors of floors, thousands separators) is an answer.
    for spec, questions in ((WA1, ("total.trainable_params", "fc.params", "pool1.output_shape", "conv1.macs")),
                            (STRIDED, ("conv1.output_shape", "pool1.output_shape", "pool2.output_shape",
                                       "conv1.macs"))):
        body = "answers:\n" + "".join(f"  {q}: {'[1]' if q.endswith('shape') else 1}\n" for q in questions)
        _, first = _check(tmp_path, body, spec)
        printed = {q: first[q]["expected"] for q in questions}
        assert any("floor" in text for text in printed.values()), printed
        body = "answers:\n" + "".join(f"  {q}: {json.dumps(text)}\n" for q, text in printed.items())
        result, again = _check(tmp_path, body, spec)
        assert [again[q]["verdict"] for q in questions] == ["right"] * len(questions), (printed, again)
    _, got = _check(tmp_path, "set: {H: 28, W: 28}\nanswers:\n  total.trainable_params: '23,466'\n")
    assert got["total.trainable_params"]["verdict"] == "right"


def test_sympys_function_names_and_floor_brackets_are_read():
    import sympy

    H, W = (sympy.Symbol(n, integer=True, positive=True) for n in "HW")
    assert _value('"ceiling(H/2)"').value == _value('"ceil(H/2)"').value == sympy.ceiling(H / 2)
    assert _value('"Min(H, 3) + Max(W, 2)"').value == sympy.Min(H, 3) + sympy.Max(W, 2)
    assert _value('"⌊H/2⌋ + ⌈W/2⌉"').value == sympy.floor(H / 2) + sympy.ceiling(W / 2)
    assert _value('"⌊H/2⌋"').text == "⌊H/2⌋"  # shown as written
    # The rewritten text still goes through the whitelisting parser.
    with pytest.raises(SpecError, match="may be called"):
        _value("\"ceiling(__import__('os'))\"")


# --- a refused answer invalidates only that answer --------------------------------------------
BROKEN = """\
answers:
  conv1.params: 416
  fc.params: "40(H-4)(W-4)"
  pool1.rf: 6
  cnv1.params: 416
  conv1.parms: 416
"""


def test_lenient_reading_keeps_the_other_answers():
    sheet = parse_answers(BROKEN, "a.yaml", strict=False)
    values = [a.value for a in sheet.answers]
    assert isinstance(values[0], Exact) and isinstance(values[2], RFAnswer)
    assert isinstance(values[1], Invalid) and isinstance(values[4], Invalid)
    assert [a.quantity for a in sheet.invalid] == ["fc.params", "conv1.parms"]
    assert str(values[1]).startswith("a.yaml:3:14: error: ")
    assert "did you mean 'params'" in values[4].message and values[4].error.loc.line == 6
    assert not sheet.strict


def test_strict_reading_still_raises_at_the_first_mistake():
    with pytest.raises(SpecError) as info:
        parse_answers(BROKEN, "a.yaml")
    assert (info.value.loc.line, info.value.loc.col) == (3, 14)


@pytest.mark.parametrize("layout", [
    "answers: [1, 2\n", "answer:\n  conv1.params: 3\n", "tolerance: 2\nanswers: {conv1.params: 1}\n",
    "answers:\n  conv1.params: 1\n  conv1.params: 2\n",
])
def test_a_broken_layout_still_invalidates_the_file(layout):
    with pytest.raises(SpecError):
        parse_answers(layout, "a.yaml", strict=False)


def test_check_grades_the_other_answers_and_names_each_invalid_one(tmp_path):
    result, got = _check(tmp_path, BROKEN)
    assert result.exit_code == 2
    assert [got[q]["verdict"] for q in ("conv1.params", "pool1.rf")] == ["right", "right"]
    assert [got[q]["verdict"] for q in ("fc.params", "cnv1.params", "conv1.parms")] == ["invalid"] * 3
    assert "did you mean 'conv1'" in got["cnv1.params"]["hint"]
    # The right value is still shown where the quantity names one: fc has 10*(16*...+1) parameters.
    assert [got[q]["expected"] for q in ("cnv1.params", "conv1.parms")] == ["", ""]
    assert "floor" in got["fc.params"]["expected"] and got["fc.params"]["expected"].endswith("+ 10")
    path = tmp_path / "answers.yaml"
    lines = result.stderr.strip().splitlines()
    assert [line.split(": error: ")[0] for line in lines] == [f"{path}:3:14", f"{path}:5:3", f"{path}:6:3"]
    text = runner.invoke(app, ["check", str(tmp_path / "spec.yaml"), str(path)])
    assert text.exit_code == 2 and "invalid" in text.stdout and "2/5 right" in text.stdout


# --- implicit multiplication and x: how to write them -----------------------------------------
@pytest.mark.parametrize("text, written", [
    ("40(H-4)(W-4) + 426", "40*(H-4)*(W-4) + 426"),
    ("(H-4)(W-4)", "(H-4)*(W-4)"),
    ("16H(W - 4)", None),  # 16H is read as a number with a unit first
    ("H(W-4)", "H*(W-4)"),
    ("10 (4*H*W + 1)", "10*(4*H*W + 1)"),
    ("2floor(H/2)", "2*floor(H/2)"),
])
def test_implicit_multiplication_says_how_to_write_it(text, written):
    with pytest.raises(SpecError) as info:
        _value(json.dumps(text))
    message = info.value.message
    assert "invalid decimal literal" not in message and "may be called" not in message, message
    if written is not None:
        assert "a product needs its *" in message and f"write '{written}'" in message, message


@pytest.mark.parametrize("text, written", [
    ("5x5x16+16", "5*5*16+16"), ("5 x 5 x 16 + 16", "5*5*16 + 16"), ("(5*5+1)x16", "(5*5+1)*16"),
    ("H x W x 40 + 10", "H*W*40 + 10"), ("5×5×16+16", "5*5*16+16"),
])
def test_x_as_a_product_sign_says_how_to_write_it(text, written):
    with pytest.raises(SpecError) as info:
        _value(json.dumps(text))
    assert "x is not a multiplication sign" in info.value.message
    assert info.value.message.endswith(f"'{written}'"), info.value.message


@pytest.mark.parametrize("text, written, reasons", [
    ("H^2 + 1", "H**2 + 1", ["^ is not a power"]),
    ("5 x 10^6", "5*10**6", ["^ is not a power", "x is not a multiplication sign"]),
    ("(5x5+1)(16)", "(5*5+1)*(16)", ["x is not a multiplication sign", "a product needs its *"]),
])
def test_every_reason_is_named_and_one_text_to_write(text, written, reasons):
    with pytest.raises(SpecError) as info:
        _value(json.dumps(text))
    message = info.value.message
    assert all(r in message for r in reasons) and message.endswith(f"; write '{written}'"), message


def test_a_pasted_minus_sign_is_a_minus():
    # U+2212, the minus of typeset formulas (a PDF's 40(H − 4)), is read as "-".
    assert _value('"40*(H−4)*(W−4) + 426"').value == _value('"40*(H-4)*(W-4) + 426"').value


def test_a_product_message_is_given_only_where_the_product_would_parse():
    for text in ("__import__('os')", "2 *", "[1, 2][0]", "open('x')(2)"):
        with pytest.raises(SpecError) as info:
            _value(json.dumps(text))
        assert "product" not in info.value.message, info.value.message


def test_axes_written_with_x_are_an_rf_or_a_shape():
    rf = _value('"6x6"', "pool1.rf")
    assert [p.value for p in rf.size] == [6, 6]
    assert [p.value for p in _value('"6 × 6"', "pool1.rf").size] == [6, 6]
    shape = _value('"16 x (H-4)//2 x (W-4)//2"', "pool1.output_shape")
    assert isinstance(shape, Shape) and len(shape.items) == 3 and isinstance(shape.items[1], Symbolic)
    quoted = _value('"[16, H/2, W/2]"', "pool1.output_shape")
    assert [str(i.value) for i in quoted.items] == ["16", "H/2", "W/2"]


# --- right only for even sizes ----------------------------------------------------------------
def test_right_only_for_even_sizes_says_so_and_how_to_declare_it(tmp_path):
    result, got = _check(tmp_path, """\
        answers:
          total.trainable_params: "40*(H-4)*(W-4) + 426"
          pool1.output_shape: [16, "(H-4)/2", "(W-4)/2"]
          fc.params: "40*(H-4)*(W-4) + 11"
        """)
    assert result.exit_code == 1
    for q in ("total.trainable_params", "pool1.output_shape"):
        answer = got[q]
        assert answer["verdict"] == "wrong"
        assert answer["hint"].startswith("right only for even H and W"), answer["hint"]
        assert "symbols: {H: {multiple_of: 2}, W: {multiple_of: 2}}" in answer["hint"]
        assert "--assume divisible" in answer["hint"]
    assert not (got["fc.params"]["hint"] or "").startswith("right only")  # 11, not 10: wrong for all sizes


def test_assume_divisible_makes_it_right(tmp_path):
    result, got = _check(tmp_path, """\
        answers:
          total.trainable_params: "40*(H-4)*(W-4) + 426"
          pool1.output_shape: [16, "(H-4)/2", "(W-4)/2"]
          fc.params: "40*(H-4)*(W-4) + 11"
        """, WA1, "--assume", "divisible")
    assert [a["verdict"] for a in got.values()] == ["right", "right", "wrong"]
    assert result.exit_code == 1


def test_declared_even_sizes_make_it_right(tmp_path):
    spec = WA1.replace("input: [1, H, W]\n", "input: [1, H, W]\nsymbols: {H: {multiple_of: 2}, W: {multiple_of: 2}}\n")
    result, got = _check(tmp_path, 'answers:\n  total.trainable_params: "40*(H-4)*(W-4) + 426"\n', spec)
    assert result.exit_code == 0 and got["total.trainable_params"]["verdict"] == "right"


def test_two_poolings_need_multiples_of_four(tmp_path):
    # floor(floor(H/2)/2) = H/4 exactly where 4 divides H: fc has 10*(H/4)*(W/4) + 10.
    _, got = _check(tmp_path, 'answers:\n  fc.params: "10*(H/4)*(W/4) + 10"\n', TWO_POOLS)
    hint = got["fc.params"]["hint"]
    assert hint.startswith("right only where H is a multiple of 4 and W is a multiple of 4"), hint
    _, got = _check(tmp_path, 'answers:\n  fc.params: "10*(H/4)*(W/4) + 10"\n', TWO_POOLS, "--assume", "divisible")
    assert got["fc.params"]["verdict"] == "right"


# --- a whole-input field written as the input's size ------------------------------------------
@pytest.mark.parametrize("answer, verdict", [
    ("[H, W]", "right"), ('"[H, W]"', "right"), ('"H x W"', "right"), ('"the whole image"', "right"),
    ("global", "right"), ("[W, H]", "wrong"), ("[H, H]", "wrong"), ("[H-4, W-4]", "wrong"), ("6", "wrong"),
])
def test_a_global_field_may_be_written_as_the_input_size(tmp_path, answer, verdict):
    _, got = _check(tmp_path, f"answers:\n  fc.rf: {answer}\n")
    assert got["fc.rf"]["verdict"] == verdict, got


@pytest.mark.parametrize("answer, verdict", [("[28, 28]", "right"), ("28", "right"), ('"28x28"', "right"),
                                             ("[28, 32]", "wrong"), ("[24, 24]", "wrong")])
def test_a_global_field_at_numbers(tmp_path, answer, verdict):
    _, got = _check(tmp_path, f"set: {{H: 28, W: 28}}\nanswers:\n  fc.rf: {answer}\n")
    assert got["fc.rf"]["verdict"] == verdict, got


def test_the_input_size_is_not_a_local_field(tmp_path):
    # pool1's field is 6 (stride 2), not global: [H, W] is wrong there, 6x6 right.
    _, got = _check(tmp_path, "answers:\n  pool1.rf: [H, W]\n  conv1.rf: '5x5'\n")
    assert got["pool1.rf"]["verdict"] == "wrong" and got["conv1.rf"]["verdict"] == "right"


MLP = """\
name: mlp
input: [784]
layers:
  - {name: fc1, linear: 100}
  - relu
  - {name: fc2, linear: 10}
"""


@pytest.mark.parametrize("answer, verdict", [("784", "right"), ("[784]", "right"), ("global", "right"),
                                             ("100", "wrong"), ("[28, 28]", "wrong")])
def test_an_mlps_whole_input_is_its_784_features(tmp_path, answer, verdict):
    # Each of fc1's outputs depends on all 784 inputs: the whole input, written as its size.
    _, got = _check(tmp_path, f"answers:\n  fc1.rf: {answer}\n", MLP)
    assert got["fc1.rf"]["verdict"] == verdict, got


# --- numbers grouped by thousands inside a formula, as archcalc prints them ---------------------------

def test_grouped_numbers_inside_a_formula_are_read_without_their_commas():
    from archcalc.homework.answers import parse_answers

    sheet = parse_answers('answers:\n  fc.params: "1,600*H*W + 1,704"\n  conv1.macs: "40,320*(H - 4)"\n')
    values = [str(a.value.value) for a in sheet.answers]
    assert values == ["1600*H*W + 1704", "40320*H - 161280"]


def test_a_comma_that_separates_arguments_stays_a_separator():
    from archcalc.homework.answers import parse_answers

    sheet = parse_answers('answers:\n  conv1.params: "max(2,100)"\n  fc.params: "min(1,600)"\n')
    assert [a.value.value for a in sheet.answers] == [100, 1]  # read as written: two arguments each


def test_a_date_or_a_leading_zero_gets_no_word_of_octal():
    # YAML reads 2023-01-01 as text here; Python's message spoke of an 0o prefix for octal integers
    from archcalc.homework.answers import parse_answers

    sheet = parse_answers("answers:\n  conv1.params: 2023-01-01\n  fc.params: '(H - 04)*2'\n", strict=False)
    messages = [a.value.message for a in sheet.answers]
    assert all("without leading zeros (7, not 07)" in m and "0o" not in m for m in messages), messages
