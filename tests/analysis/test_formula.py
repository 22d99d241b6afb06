"""The one formula printer (archcalc/analysis/formula.py): the forms the issue asks for, by hand;
every printed form equal to the value it prints (read back with the spec's own expression parser
and compared exactly or at whole sizes); analyze, explain and check writing the same form."""
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
import sympy
from typer.testing import CliRunner

import archcalc
from archcalc import render
from archcalc.analysis import formula
from archcalc.cli import app
from archcalc.explain import explain, number
from archcalc.homework.check import format_expected
from archcalc.reader.expr import evaluate

ROOT = Path(__file__).resolve().parents[2]
H, W = sympy.symbols("H W", integer=True, positive=True)
runner = CliRunner()

# Written Assignment 1 of the lecture: the unpadded net on a grey H x W image.
WA1 = """
name: wa1
input: [1, H, W]
{symbols}layers:
  - {{name: conv1, conv: {{out: 16, kernel: 5}}}}
  - relu
  - {{name: pool1, maxpool: 2}}
  - flatten
  - {{name: fc, linear: 10}}
"""
EVEN = "symbols: {H: {multiple_of: 2}, W: {multiple_of: 2}}\n"
STRIDED = """
input: [3, H, W]
layers:
  - {name: conv1, conv: {out: 64, kernel: 3, stride: 2, padding: 1}}
  - {name: conv2, conv: {out: 128, kernel: 3, stride: 2, padding: 1}}
  - {name: pool, maxpool: {kernel: 3, stride: 2, ceil_mode: true}}
  - flatten
  - {name: fc, linear: 1000}
"""
SIZES = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 16, 17, 31, 32, 33, 64, 97, 224, 225)


def read_back(text: str, value):
    """The printed text as the spec's (and an answers file's) expression parser reads it."""
    names = {s.name: s for s in getattr(value, "free_symbols", ())}
    return evaluate(text, names)


def equal(a, b) -> bool:
    """Exactly equal (floors as atoms), else equal at every whole size tried (floors merged by
    the printer are other atoms: floor(floor((H - 1)/2)/2) is floor((H - 1)/4))."""
    diff = sympy.expand(sympy.sympify(a) - sympy.sympify(b))
    if diff == 0:
        return True
    names = sorted(diff.free_symbols, key=str)
    for i in range(len(SIZES)):
        point = {s: SIZES[(i + 7 * k) % len(SIZES)] for k, s in enumerate(names)}
        if diff.subs(point) != 0:
            return False
    return True


def assert_prints_itself(value):
    shown = formula.text(value, group=False)
    assert equal(read_back(shown, value), value), (str(value), shown)
    # grouped text is the same text with commas in the numbers
    assert formula.text(value).replace(",", "") == shown


# --- the forms the issue asks for, by hand ------------------------------------------------------

def test_written_assignment_1_reads_as_a_student_writes_it():
    even = archcalc.analyze_text(WA1.format(symbols=EVEN))
    t = even.totals
    assert formula.text(t.params) == "40*(H - 4)*(W - 4) + 426"  # not 10*(8*H - 32)*(W/2 - 2) + 426
    assert formula.text(even.layer("fc").params) == "40*(H - 4)*(W - 4) + 10"
    assert formula.shape(even.layer("flatten1").output_shape) == "[4*(H - 4)*(W - 4)]"
    assert formula.text(t.macs) == "440*(H - 4)*(W - 4)"  # 400*(H-4)*(W-4) + 40*(H-4)*(W-4), added
    assert formula.text(t.activation_bytes) == "160*(H - 4)*(W - 4) + 40"
    assert formula.text(t.param_bytes) == "160*(H - 4)*(W - 4) + 1,704"
    # by hand: 416 + (16*(H-4)/2*(W-4)/2 + 1)*10 = 40*(H-4)*(W-4) + 426; at H = W = 28: 23,466
    assert t.params.subs({H: 28, W: 28}) == 416 + (16 * 12 * 12 + 1) * 10 == 23_466
    plain = archcalc.analyze_text(WA1.format(symbols=""))
    # the pooled size of H - 4 as the lecture writes it, floor((H - 4)/2) (sympy: floor(H/2) - 2)
    assert str(plain.layer("pool1").output_shape[1]) == "floor(H/2) - 2"
    assert formula.text(plain.totals.params) == "160*floor((H - 4)/2)*floor((W - 4)/2) + 426"
    assert formula.shape(plain.layer("pool1").output_shape) == "[16, floor((H - 4)/2), floor((W - 4)/2)]"
    assert formula.shape(even.layer("pool1").output_shape) == "[16, (H - 4)/2, (W - 4)/2]"  # not H/2 - 2


def test_only_a_shrinking_number_moves_into_the_division():
    assert formula.text(H / 2 - 2) == "(H - 4)/2"
    assert formula.text(sympy.floor(H / 2) - 2) == "floor((H - 4)/2)"
    assert formula.text(sympy.ceiling(H / 4) - 1) == "ceil((H - 4)/4)"
    assert formula.text(H / 2 + 1) == "H/2 + 1"  # the lecture's + 1 stays outside
    assert formula.text(sympy.floor(H / 2) + 1) == "floor(H/2) + 1"
    assert formula.text(H * W / 4 - 10) == "H*W/4 - 10"  # a product is no one size
    assert formula.text(H / 2 - sympy.Rational(1, 3)) == "H/2 - 1/3"  # not a whole shift


def test_floors_over_one_fraction_and_ceilings_as_ceil():
    report = archcalc.analyze_text(STRIDED)
    # sympy keeps floor(H/2 - 1/2) + 1; the lecture (and docs) write floor((H - 1)/2) + 1
    assert str(report.layer("conv1").output_shape[1]) == "floor(H/2 - 1/2) + 1"
    assert formula.shape(report.layer("conv1").output_shape) == "[64, floor((H - 1)/2) + 1, floor((W - 1)/2) + 1]"
    # a floor of a floor by whole numbers is one floor: floor((floor((H - 1)/2) + 1 - 1)/2) + 1
    assert formula.text(report.layer("conv2").output_shape[1]) == "floor((H - 1)/4) + 1"
    # ceil_mode: ceil((M - 3)/2) + 1 of M = floor((H - 1)/4) + 1
    assert formula.text(report.layer("pool").output_shape[1]).startswith("ceil(")
    assert formula.text(sympy.ceiling(H / 2)) == "ceil(H/2)"
    assert formula.text(sympy.floor(H / 2 - sympy.Rational(1, 2)) + 1) == "floor((H - 1)/2) + 1"
    assert formula.text(sympy.Max(H - 3, 2)) == "max(2, H - 3)"  # as a spec's expressions write it


def test_thousands_separators_in_numbers_and_formulas_but_not_in_shapes():
    assert formula.text(11_689_512) == "11,689,512"
    assert formula.text(999) == "999"
    assert formula.text(40320 * H * W + 1704) == "40,320*H*W + 1,704"
    assert formula.text(-1704 * H + 5) == "5 - 1,704*H"
    assert formula.text(sympy.Rational(3, 2) * H) == "3*H/2"
    assert formula.shape((16, 1024, 1024 * H)) == "[16, 1024, 1024*H]"
    assert formula.latex(40320 * H * W + 1704) == "40{,}320 H W + 1{,}704"
    assert formula.latex(1024 * H, group=False) == "1024 H"
    assert formula.text(sympy.Integer(31370)) == "31,370"


def test_names_with_digits_and_what_cannot_be_rewritten():
    x1000 = sympy.Symbol("x1000", integer=True, positive=True)
    assert formula.text(2000 * x1000 + 1) == "2,000*x1000 + 1"  # a name's digits are not grouped
    odd = sympy.Piecewise((H, H > 3), (2, True))
    assert formula.text(odd) == str(odd)  # not rewritten: sympy's own text, no traceback


def test_json_and_csv_keep_sympys_text():
    report = archcalc.analyze_text(WA1.format(symbols=EVEN))
    data = json.loads(render.json_text(report))
    assert data["totals"]["params"] == str(report.totals.params)  # sympy's text, read back by sympify
    assert "(W/2 - 2)" in str(report.totals.params)  # not the readable 40*(H - 4)*(W - 4) + 426
    assert f"{report.totals.params}" in render.csv_text(report)


# --- every printed form is the value it prints -------------------------------------------------

def symbolic_version(path: Path) -> str:
    text = path.read_text()
    report = archcalc.analyze(path)
    old = f"input: [{', '.join(map(str, report.input_shape))}]"
    assert old in text
    return text.replace(old, f"input: [{report.input_shape[0]}, H, W]")


def _figures(report):
    for row in report.layers:
        yield from row.output_shape
        yield row.params
        yield row.macs
        yield row.activation_bytes
    t = report.totals
    yield from (t.params, t.macs, t.flops, t.activation_bytes, t.param_bytes)


@pytest.mark.parametrize("text", [
    WA1.format(symbols=""), WA1.format(symbols=EVEN), STRIDED,
    symbolic_version(ROOT / "specs" / "zoo" / "resnet18.yaml"),
    symbolic_version(ROOT / "specs" / "zoo" / "mobilenet_v2.yaml"),
    (ROOT / "specs" / "homework" / "conv_pool_fc.yaml").read_text(),
], ids=["wa1", "wa1-even", "strided", "resnet18", "mobilenet_v2", "conv_pool_fc"])
@pytest.mark.parametrize("divisible", [False, True])
def test_every_printed_figure_reads_back_as_itself(text, divisible):
    report = archcalc.analyze_text(text, assume_divisible=divisible)
    seen = set()
    for value in _figures(report):
        if isinstance(value, int) or value in seen:
            continue
        seen.add(value)
        assert_prints_itself(value)
    assert seen  # the specs are symbolic


@pytest.mark.slow
def test_random_formulas_print_as_themselves():
    rng = random.Random(13)

    def atom():
        pick = rng.randrange(5)
        if pick == 0:
            return sympy.floor((rng.choice([H, W]) + rng.randrange(-5, 6)) / rng.randrange(1, 5))
        if pick == 1:
            return sympy.ceiling(rng.choice([H, W]) / rng.randrange(1, 5))
        if pick == 2:
            return rng.randrange(-40, 41) * rng.choice([H, W]) / rng.randrange(1, 5) + rng.randrange(-9, 10)
        if pick == 3:
            return sympy.floor(sympy.floor((H - rng.randrange(0, 4)) / 2) / rng.randrange(1, 4)) + 1
        return rng.choice([H, W, H * W])

    for _ in range(150):
        value = sum(rng.randrange(-3000, 3000) * sympy.Mul(*[atom() for _ in range(rng.randrange(1, 4))])
                    for _ in range(rng.randrange(1, 4))) + rng.randrange(-2000, 2000)
        if isinstance(value, sympy.Basic) and value.free_symbols:
            assert_prints_itself(value)


# --- one form everywhere -------------------------------------------------------------------------

FIGURE = {"params": "params", "macs": "macs", "output": "output_shape"}


@pytest.mark.parametrize("text", [WA1.format(symbols=""), WA1.format(symbols=EVEN), STRIDED,
                                  (ROOT / "specs" / "homework" / "conv_pool_fc.yaml").read_text()])
def test_analyze_explain_and_check_write_the_same_form(text):
    graph = archcalc.parse_spec(text)
    report = archcalc.analyze(graph)
    rows = {row.name: row for row in report.layers}
    table = render.markdown_text(report)
    compared = 0
    for e in explain(graph):
        row = rows[e.name]
        for step in e.steps:
            if step.figure not in FIGURE or step.at:  # per-axis output steps are not a column
                continue
            value = getattr(row, FIGURE[step.figure])
            cell = render.shape_text(value) if step.figure == "output" else render.grouped(value)
            assert number(step.result) == cell, (e.name, step)
            assert format_expected(value, FIGURE[step.figure]) == cell
            assert f"| {render.markdown_escape(cell)} |" in table
            compared += 1
    assert compared >= 3 * len(rows)


@pytest.mark.parametrize("symbols", ["", EVEN])
def test_what_check_prints_as_expected_is_a_right_answer(symbols):
    from archcalc.homework.answers import parse_answers
    from archcalc.homework.check import check

    text = WA1.format(symbols=symbols)
    report = archcalc.analyze_text(text)
    questions = {"conv1.macs": report.layer("conv1").macs, "fc.params": report.layer("fc").params,
                 "total.params": report.totals.params, "total.activation_bytes": report.totals.activation_bytes}
    # the text a student copies from the expected column (grouped digits are for reading; an
    # answer's digits are written without them: 1704)
    lines = [f'  {q}: "{format_expected(v, "params").replace(",", "")}"' for q, v in questions.items()]
    shape = format_expected(report.layer("pool1").output_shape, "output_shape")
    lines.append("  pool1.output_shape: [" + ", ".join(f'"{s}"' for s in shape[1:-1].split(", ")) + "]")
    sheet = parse_answers("answers:\n" + "\n".join(lines) + "\n", "answers.yaml")
    result = check(report, sheet, archcalc.parse_spec(text))
    assert [r.verdict for r in result.results] == ["right"] * 5, [(r.quantity, r.given, r.hint) for r in result.results]


def test_the_cli_shows_the_one_form():
    spec = ROOT / "specs" / "homework" / "conv_pool_fc.yaml"
    analyzed = runner.invoke(app, ["analyze", str(spec)]).stdout
    explained = runner.invoke(app, ["explain", str(spec), "fc"]).stdout
    assert "params 40*H*W + 426" in analyzed
    assert "= 40*H*W + 10" in explained and "40*H*W + 10 │" in analyzed


def test_numbers_never_import_sympy():
    code = ("import sys; from archcalc.analysis import formula; "
            "assert formula.text(11689512) == '11,689,512' and formula.shape((3, 224)) == '[3, 224]'; "
            "assert 'sympy' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
