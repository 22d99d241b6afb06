"""Hostile answers files (issue 10): symbolic work is bounded, bad values are refused where they
are written, and nothing hangs, explodes or prints a traceback.

Hangs and memory bombs run in their own process (tests/hostile.py: a hang timeout and an address
space cap); plain refusals run in-process with typer's CliRunner.
"""
import json
import re
from pathlib import Path

import pytest
import sympy
from typer.testing import CliRunner

from archcalc.cli import app
from archcalc.homework import decide
from archcalc.homework.check import UNDECIDED, compare
from hostile import Run, assert_refused, run_cli

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "specs" / "homework" / "conv_pool_fc.yaml"  # fc.params = 40*H*W + 10, H and W even
runner = CliRunner()

# (H+W+1)(H-W+2) = H^2 - W^2 + 3H + W + 2, so this is 40*H*W + 10 written the long way: degree 120
# in H and W. sympy.simplify spent minutes on it before the checker stopped calling it.
IDENTITY = "40*H*W+10+(H+W+1)**60*(H-W+2)**60-(H*H-W*W+3*H+W+2)**60"


def _answers(tmp_path, body: str, name: str = "answers.yaml") -> Path:
    path = tmp_path / name
    path.write_text(body)
    return path


def _check_json(tmp_path, body, timeout=60):
    path = _answers(tmp_path, body)
    run = run_cli(["check", "--json", SPEC, path], timeout=timeout)
    assert "Traceback" not in run.stderr, run.stderr
    return run, (json.loads(run.stdout)[0] if run.stdout.strip() else None)  # a list: one object per file


def _invoke(*args) -> Run:
    result = runner.invoke(app, [str(a) for a in args])
    return Run(result.exit_code, result.stdout, result.stderr, 0.0)


def test_the_identity_really_is_one():
    # Independent of the checker: the bases agree after expansion (cheap: degree 2).
    H, W = sympy.symbols("H W")
    assert sympy.expand((H + W + 1) * (H - W + 2) - (H * H - W * W + 3 * H + W + 2)) == 0


@pytest.mark.slow
def test_a_former_simplify_hang_is_proved_right_quickly(tmp_path):
    run, data = _check_json(tmp_path, f'answers:\n  fc.params: "{IDENTITY}"\n')
    assert run.rc == 0, run.stderr
    assert data["answers"][0]["verdict"] == "right"


@pytest.mark.slow
def test_a_near_miss_of_the_identity_is_wrong(tmp_path):
    near = IDENTITY.replace("+W+2)**60", "+W+3)**60")
    run, data = _check_json(tmp_path, f'answers:\n  fc.params: "{near}"\n')
    assert run.rc == 1
    assert data["answers"][0]["verdict"] == "wrong"


@pytest.mark.slow
def test_too_large_to_prove_is_undecided_not_a_hang(tmp_path):
    # (H+1)^8 (W+2)^8 = (HW + 2H + W + 2)^8: equal, but degree 480 in each of H and W; the exact
    # grid would need 481 x 481 points, past the budget, so the honest verdict is "undecided".
    text = "40*H*W+10+((H+1)**8*(W+2)**8+1)**60-((H*W+2*H+W+2)**8+1)**60"
    run, data = _check_json(tmp_path, f'answers:\n  fc.params: "{text}"\n')
    assert run.rc == 1
    answer = data["answers"][0]
    assert answer["verdict"] == UNDECIDED
    assert "cannot decide" in answer["hint"]


@pytest.mark.slow
def test_a_wrong_answer_too_long_to_evaluate_exactly_is_still_wrong(tmp_path):
    # At H = W = 1 the exact value has about 2**18 * 64 bits; modulo a prime it is found nonzero.
    text = "((((H+1)**64+W)**64+1)**64+H)**64"
    run, data = _check_json(tmp_path, f'answers:\n  fc.params: "{text}"\n')
    assert data["answers"][0]["verdict"] == "wrong" and run.rc == 1


def test_nonzero_mod_prime_is_sound():
    H = sympy.Symbol("H", integer=True, positive=True)
    program = decide.compile_expr(H**2 - 4, [H])
    assert decide.nonzero_mod_prime(program, [(2,)]) is False  # 0 at H = 2
    assert decide.nonzero_mod_prime(program, [(3,)]) is True  # 5 at H = 3
    shifted = decide.compile_expr(H - decide.PRIME, [H])
    assert decide.nonzero_mod_prime(shifted, [(decide.PRIME,)]) is False  # 0 is 0 modulo the prime too


@pytest.mark.slow
def test_a_floor_identity_is_right_and_a_floor_slip_is_wrong(tmp_path):
    # For even H = 2k: floor(k/2) + floor((k+1)/2) = k, so the bracket is 0; H//3 breaks that.
    poly = "+".join(f"(H+{i})*(W+{i})" for i in range(1, 15))
    right = f"40*H*W+10+(H//4+(H+2)//4-H//2)*({poly})"
    wrong = f"40*H*W+10+(H//4+(H+2)//3-H//2)*({poly})"
    run, data = _check_json(tmp_path, f'answers:\n  fc.params: "{right}"\n  fc.macs: "{wrong}"\n')
    assert [a["verdict"] for a in data["answers"]] == ["right", "wrong"]
    assert run.rc == 1


@pytest.mark.slow
def test_compare_stops_at_the_node_limit():
    H = sympy.Symbol("H", integer=True, positive=True)
    huge = sympy.Add(*[(H + i) ** 2 for i in range(1, decide.MAX_NODES // 3)])  # squares kept as written
    assert compare(huge, huge + 1) is False  # a difference that sympy itself reduces to a number
    assert compare(huge, H) is None  # past MAX_NODES: not evaluated at all


def test_a_rational_identity_with_a_denominator_is_right():
    H = sympy.Symbol("H", integer=True, positive=True)
    assert compare((40 * H**2 + 10 * H) / H, 40 * H + 10) is True
    assert compare((40 * H**2 + 10 * H) / (H + 1), 40 * H + 10) is False


@pytest.mark.parametrize("text", ["(1/2)**(10**29)", "(2*H)**(10**29)", "(H/2)**(10**29)",
                                  "(H+1)**(10**29)", "H**(-(10**29))"])
@pytest.mark.slow
def test_giant_powers_are_refused_at_the_answer(tmp_path, text):
    path = _answers(tmp_path, f'answers:\n  fc.params: "{text}"\n')
    assert_refused(run_cli(["check", SPEC, path], timeout=30), where=f"{path}:2:14")


def test_deeply_nested_lists_are_refused(tmp_path):
    path = _answers(tmp_path, "answers:\n  pool1.output_shape: " + "[" * 330 + "]" * 330 + "\n")
    assert_refused(run_cli(["check", SPEC, path], timeout=30), located=True)


@pytest.mark.parametrize("value, problem", [
    ('"' + "7" * 5000 + '"', "digits"),
    ('"about ' + "7" * 5000 + '"', "digits"),
    ('"7e99999999999"', "too large"),
    ('"1.5e31"', "too large"),
    ("7" * 5000, None),  # a YAML integer past Python's int-to-str limit
    ("1.0e+31", None),  # the YAML reader's own bound
    (".nan", "finite"),
    ("-.inf", "finite"),
])
def test_huge_and_non_finite_numbers_are_refused_at_the_answer(tmp_path, value, problem):
    path = _answers(tmp_path, f"answers:\n  fc.params: {value}\n")
    line = assert_refused(_invoke("check", SPEC, path), where=f"{path}:2:14", contains=problem)
    assert len(line) < 400  # the value is shown cut short


@pytest.mark.parametrize("binding, where, problem", [
    ("H: 27", "2:6", "is not a multiple of 2"),
    ("W: 29", "2:6", "is not a multiple of 2"),
])
def test_set_must_keep_the_spec_constraints(tmp_path, binding, where, problem):
    path = _answers(tmp_path, f"set:\n  {binding}\nanswers:\n  fc.params: 10\n")
    line = assert_refused(_invoke("check", SPEC, path), where=f"{path}:{where}", contains=problem)
    assert "multiple_of: 2" in line


@pytest.mark.parametrize("value, problem", [(6, "below its min 8"), (40, "above its max 32"),
                                            (12, "not a multiple of 8")])
def test_set_below_min_above_max(tmp_path, value, problem):
    spec = tmp_path / "spec.yaml"
    spec.write_text("input: [1, H, H]\nsymbols:\n  H: {min: 8, max: 32}\nlayers:\n"
                    "  - {name: fc, linear: 2}\n")
    if value == 12:
        spec.write_text(spec.read_text().replace("{min: 8, max: 32}", "{multiple_of: 8, max: 32}"))
    path = _answers(tmp_path, f"set: {{H: {value}}}\nanswers:\n  fc.params: 10\n")
    assert_refused(_invoke("check", spec, path), where=f"{path}:1:10", contains=problem)


def test_set_within_the_constraints_is_used(tmp_path):
    path = _answers(tmp_path, "set: {H: 28, W: 30}\nanswers:\n  fc.params: 33610\n")
    result = _invoke("check", SPEC, path)
    assert result.rc == 0, result.stdout + result.stderr  # 40*28*30 + 10


@pytest.mark.parametrize("body, where", [
    ("set: {H: " + "8" * 5000 + "}\nanswers:\n  fc.params: 1\n", "1:10"),
    ("set: {H: 10000000000000000000000000000000}\nanswers:\n  fc.params: 1\n", "1:10"),
    ('tolerance: "' + "7" * 5000 + '%"\nanswers:\n  fc.params: 1\n', "1:12"),
    ('answers:\n  fc.params: "about 5 ' + "Q" * 3000 + '"\n', "2:14"),
    ("answers:\n  " + "x" * 1000 + ".params: 1\n", "2:3"),
])
def test_long_values_give_a_short_line(tmp_path, body, where):
    path = _answers(tmp_path, body)
    line = assert_refused(_invoke("check", SPEC, path), where=f"{path}:{where}")
    assert len(line) < 400


def test_set_of_an_unknown_symbol_is_located_in_the_answers(tmp_path):
    path = _answers(tmp_path, "set: {H: 28, Q: 3}\nanswers:\n  fc.params: 10\n")
    assert_refused(_invoke("check", SPEC, path), where=f"{path}:1:17", contains="set Q: the spec has no symbol")


@pytest.mark.parametrize("student, cell", [("=HYPERLINK(1)", "'=HYPERLINK(1)"), ("+1", "'+1"), ("@x", "'@x"),
                                           ("-2", "'-2"), ("plain", "plain")])
def test_gradebook_cells_are_not_formulas(tmp_path, student, cell):
    import csv

    key = ROOT / "specs" / "homework" / "conv_pool_fc.answers.yaml"
    path = tmp_path / f"{student}.yaml"
    path.write_text(key.read_text())
    book = tmp_path / "grades.csv"
    result = _invoke("check", SPEC, path, "--gradebook", book)
    assert result.rc == 0, result.stderr
    rows = list(csv.reader(book.open(newline="")))
    assert rows[1][0] == cell


def test_one_budget_bounds_all_the_answers_of_a_file():
    # A file of thousands of hard answers is bounded as a whole: once its budget is spent, what
    # is left is "undecided" instead of more work.
    H = sympy.Symbol("H", integer=True, positive=True)
    hard = (H // 4 + (H + 2) // 4 - H // 2) * (H + 1) ** 2 + H  # = H: floor(x) + floor(x + 1/2) = floor(2x)
    assert compare(hard, H) is True
    with decide.file_budget(10_000):
        assert compare(hard, H) is None
    with decide.file_budget(decide.FILE_BUDGET):
        assert all(compare(hard, H) is True for _ in range(3))


@pytest.mark.slow
def test_min_max_of_many_values_is_refused_and_of_a_few_is_checked(tmp_path):
    # sympy compares Min/Max arguments pairwise: 38 floors took seconds (and again per substitution).
    many = "max(" + ",".join(f"H//{i}+W//{i + 1}" for i in range(2, 40)) + ")"
    path = _answers(tmp_path, f'answers:\n  fc.params: "{many}"\n')
    assert_refused(run_cli(["check", SPEC, path], timeout=60), where=f"{path}:2:14", contains="at most 8")
    few = "max(40*H*W+10," + ",".join(f"H//{i}" for i in range(2, 9)) + ")"  # = 40*H*W + 10
    run, data = _check_json(tmp_path, f'answers:\n  fc.params: "{few}"\n')
    assert data["answers"][0]["verdict"] == "right" and run.rc == 0


def test_set_sizes_that_break_a_valid_spec_are_the_mistake(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text("input: [1, H, H]\nlayers:\n  - conv: {out: 2, kernel: 5}\n  - {name: fc, linear: 3}\n")
    path = _answers(tmp_path, "set: {H: 3}\nanswers:\n  fc.params: 10\n")
    line = assert_refused(_invoke("check", spec, path), where=f"{path}:1:10", contains="kernel 5 is larger")
    assert f"(at {spec}:3:" in line
    broken = tmp_path / "broken.yaml"  # invalid whatever H is: the spec's own error, in the spec
    broken.write_text("input: [1, H, H]\nlayers:\n  - conv: {out: 2, kernel: 5, groups: 2}\n")
    assert_refused(_invoke("check", broken, path), where=f"{broken}:3")


# Found by a seeded fuzzer of random answer formulas: each once a hang or a traceback.
@pytest.mark.parametrize("text, contains", [
    ("((34)+((max((H)%(W), W))//(3)))%((min(((W)**30)**15, ((W)+(W))+((W)**13), 158, (min(H, W, H))//(H)))-(2))",
     "degree above"),  # sympy's Min looked for the real roots of W**450 - ...
    ("W/((H%W)//(292*(W-W**53)))", "degree above 8"),  # floor() factored W**53 - W to settle its sign
    ("W//((2//4)%(max(H, W)))", "divides by zero"),  # W // (0 % max(H, W))
    ("max(W**5, H)", "degree above 4"),
    ("1/(H-H)", "divides by zero"),
])
@pytest.mark.slow
def test_fuzzed_formulas_are_refused_at_the_answer(tmp_path, text, contains):
    path = _answers(tmp_path, f'answers:\n  fc.params: "{text}"\n')
    assert_refused(run_cli(["check", SPEC, path], timeout=60), where=f"{path}:2:14", contains=contains)


def test_a_modulo_that_is_zero_for_every_allowed_size_is_wrong_not_a_traceback(tmp_path):
    # H is a multiple of 2 in this spec, so H - 2*(H//2) is 0 wherever the formula is asked.
    run, data = _check_json(tmp_path, 'answers:\n  fc.params: "40*H*W + 10 + W % (H - 2*(H//2))"\n')
    assert data["answers"][0]["verdict"] == "wrong" and run.rc == 1


# --- issue 13: one bad answer is that answer's mistake, and the rewritten notations stay bounded
LOCATED_LINE = re.compile(r"^.+:\d+:\d+: error: .{1,400}$")


def test_thousands_of_invalid_answers_are_each_one_line_and_the_rest_graded(tmp_path):
    body = "answers:\n  conv1.params: 416\n" + "\n".join(f'  l{i}.params: "40(H-4)(W-4)"' for i in range(1500)) + "\n"
    path = _answers(tmp_path, body)
    run = run_cli(["check", "--json", SPEC, path], timeout=60)
    assert "Traceback" not in run.stderr and run.rc == 2
    [data] = json.loads(run.stdout)
    assert data["answers"][0]["verdict"] == "right" and data["right"] == 1
    assert {a["verdict"] for a in data["answers"][1:]} == {"invalid"}
    errors = run.lines
    assert len(errors) == 1500 and all(LOCATED_LINE.match(e) for e in errors), errors[:3]
    assert errors[0].startswith(f"{path}:3:14: error: '40(H-4)(W-4)': a product needs its *")


@pytest.mark.parametrize("text, contains", [
    ("40(H-4)" * 100, "longer than 500"),  # past the parser's bound: no rewriting is tried
    ("⌊__import__('os')⌋", "may be called"),  # the floor brackets are rewritten, then parsed as ever
    ("ceiling(open('x'))", "may be called"),
    ("Min(H.__class__, 2)", "Attribute"),
])
def test_rewritten_notations_are_still_refused_by_the_parser(tmp_path, text, contains):
    path = _answers(tmp_path, f'answers:\n  fc.params: "{text}"\n')
    line = assert_refused(_invoke("check", SPEC, path), where=f"{path}:2:14", contains=contains)
    assert len(line) < 500


def test_a_long_shape_in_one_string_is_not_split(tmp_path):
    text = "[" + ", ".join(["16"] * 1500) + "]"
    path = _answers(tmp_path, f'answers:\n  pool1.output_shape: "{text}"\n')
    assert_refused(_invoke("check", SPEC, path), where=f"{path}:2:23", contains="list of sizes")
