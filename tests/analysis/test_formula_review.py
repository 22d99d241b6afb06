"""Review of the one formula printer (archcalc/analysis/formula.py): forms that must read back as
the value they print, found by trying to break it."""
import sympy

import archcalc
from archcalc.analysis import formula
from archcalc.homework.answers import parse_answers
from archcalc.homework.check import check

H, W = sympy.symbols("H W", integer=True, positive=True)

MINMAX = """
name: minmax
input: [3, H, W]
layers:
  - {name: up, upsample: {size: ["max(H, 1000)", "min(W, 2048)"]}}
  - {name: conv, conv: {out: 8, kernel: 3}}
"""


def test_numbers_inside_max_and_min_are_not_grouped():
    # max(1,000, H) reads back as max(1, 000, H) = H: a comma there separates arguments
    assert formula.text(sympy.Max(H, 1000)) == "max(1000, H)"
    assert formula.text(3000 * sympy.Min(H, 2048) + 1704) == "3,000*min(2048, H) + 1,704"
    assert formula.text(sympy.floor((H - 1001) / 2000) + 1) == "floor((H - 1,001)/2,000) + 1"  # one value
    assert formula.latex(1000 * sympy.Max(H, 1000)) == r"1{,}000 \max\left(1000, H\right)"
    report = archcalc.analyze_text(MINMAX)
    macs = report.layer("conv").macs
    # by hand: 8 outputs x 3*3*3 weights at each of (max(1000, H) - 2) x (min(2048, W) - 2) positions
    assert sympy.expand(macs - 216 * (sympy.Max(1000, H) - 2) * (sympy.Min(2048, W) - 2)) == 0
    assert formula.text(macs) == "216*(max(1000, H) - 2)*(min(2048, W) - 2)"


def test_what_analyze_prints_inside_max_reads_back_as_the_right_answer():
    report = archcalc.analyze_text(MINMAX)
    shown = formula.text(report.layer("conv").macs)
    sheet = parse_answers(f'answers:\n  conv.macs: "{shown}"\n', "answers.yaml")
    # the value read is the expected one at sizes on both sides of 1000 and 2048
    value = sheet.answers[0].value.value
    for h, w in ((5, 7), (1500, 3000), (999, 2047)):
        assert value.subs({sympy.Symbol("H", integer=True, positive=True): h,
                           sympy.Symbol("W", integer=True, positive=True): w}) == \
            216 * (max(1000, h) - 2) * (min(2048, w) - 2)
    result = check(report, sheet, archcalc.parse_spec(MINMAX))
    assert [r.verdict for r in result.results] == ["right"]


# Padding to a multiple of 7 (as TensorFlow's 'SAME' or Swin's window padding do): sympy's Mod.
PAD_TO_7 = """
name: pad_to_7
input: [3, H, W]
layers:
  - {name: pad, zeropad: {padding: [0, "(7 - W % 7) % 7", 0, "(7 - H % 7) % 7"]}}
  - {name: conv, conv: {out: 8, kernel: 7, stride: 7}}
"""


def test_a_modulo_prints_as_the_specs_own_percent_sign_and_reads_back():
    m = sympy.Mod(6 * H, 7)
    assert formula.text(m) == "(6*H % 7)"  # not Mod(6*H, 7), which no answer may call
    assert formula.text(2 * m) == "2*(6*H % 7)"
    assert formula.text(-m) == "-(6*H % 7)"
    assert formula.text(sympy.Mod(H, 2 * W)) == "(H % (2*W))"  # H % 2*W would be (H % 2)*W
    assert formula.text(H - sympy.Mod(H, 1000)) == "H - (H % 1,000)"
    report = archcalc.analyze_text(PAD_TO_7)
    conv = report.layer("conv")
    assert formula.shape(conv.output_shape) == "[8, floor((H + (6*H % 7))/7), floor((W + (6*W % 7))/7)]"
    for h in (1, 6, 7, 8, 13, 14, 100):  # by hand: the padded size is the next multiple of 7
        assert conv.output_shape[1].subs(H, h) == -(-h // 7)
    lines = [f'  conv.macs: "{formula.text(conv.macs)}"',
             "  conv.output_shape: [" + ", ".join(f'"{formula.text(s, group=False)}"' for s in conv.output_shape) + "]"]
    sheet = parse_answers("answers:\n" + "\n".join(lines) + "\n", "answers.yaml")
    result = check(report, sheet, archcalc.parse_spec(PAD_TO_7))
    assert [r.verdict for r in result.results] == ["right", "right"], [(r.given, r.hint) for r in result.results]
