"""Checking answers against a Report: verdicts, and hints that name the usual mistake.

    result = check(report, sheet)         # sheet from archcalc.homework.answers.load_answers
    result.ok                             # every answer right (or close)
    result.to_json()                      # {"spec", "answers": [...], "right", "wrong", "score"}
    result.grade_rows("s123")             # [[student, right, total, score, "wrong;quantities"]]

Expected values may be ints or sympy expressions (specs with symbolic sizes); `sheet.bindings`
(the file's `set:`) are substituted into them. Verdicts: "right", "close" (an approximate answer
within the tolerance; counts as right), "wrong" and "undecided" (a formula too large to compare
within archcalc.homework.decide's bounds; not counted right). An answer naming no layer is a mistake in the
file: `check` raises SpecError at the answer's location, with a did-you-mean.

A wrong answer gets a hint when it equals what a usual mistake gives: the catalogue of mistakes
(archcalc.homework.mistakes, one small rule per mistake) is walked for the answer's figure; each
rule's mistaken value is derived from the network and compared with the answer the same way the
expected value is (exactly, symbolically or within the tolerance); the first one that matches
names the mistake.
"""
from __future__ import annotations

import math
import re
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from fractions import Fraction

from archcalc.analysis.report import LayerResult
from archcalc.geometry.receptive_field import GLOBAL, RF
from archcalc.errors import SpecError, did_you_mean
from archcalc.homework import decide
from archcalc.homework.answers import TOTAL, Approx, Exact, Invalid, RFAnswer, Shape, Symbolic, _shown

RIGHT, CLOSE, WRONG = "right", "close", "wrong"
UNDECIDED = "undecided"  # a symbolic answer too large to compare within bounds; not counted right
INVALID = "invalid"  # an answer that cannot be read, or names no layer (strict=False); not counted right
UNDECIDED_HINT = ("archcalc cannot decide whether this formula equals the expected one within its "
                  "bounds (it agrees at the sizes tried but is too large to prove); write it in a "
                  "simpler, expanded form")
GRADE_HEADER = ("student", "right", "total", "score", "wrong")
OUTPUT_FORMULA = "M = floor((N + 2P - D(K-1) - 1)/S) + 1"

# Sizes tried when an equivalence sympy cannot prove (floors) is checked at sample points.
_SAMPLES = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 15, 16, 17, 23, 24, 28, 31, 32, 33, 48, 63, 64, 65,
            96, 100, 127, 128, 129, 224, 225, 227, 255, 256, 299, 512, 1000, 1023, 1024)
# The constraints of the spec's symbols ({name: {multiple_of, min, max}}) while `check` runs:
# values_equal honours them (floor(H/2) is H/2 when H is a multiple of 2).
_CONSTRAINTS: ContextVar[dict] = ContextVar("archcalc_homework_constraints", default={})
_WIDE_SAMPLES = tuple(range(1, 130)) + (191, 192, 193, 223, 226, 383, 384, 385, 479, 480, 481, 719, 720,
                                         1079, 1080, 1081, 2047, 2048, 2049, 4095, 4096, 4097, 10007)


# --- results ----------------------------------------------------------------------------------
@dataclass
class AnswerResult:
    quantity: str
    given: object  # as written (plain YAML value)
    given_text: str
    expected: str  # formatted
    verdict: str  # "right", "close", "wrong" or "undecided"
    hint: str | None = None
    formula: str | None = None  # filled by the caller (e.g. from `explain`); not set here
    loc: object = None  # where the answer was written
    # The diagnosed mistake's name (archcalc.homework.mistakes: "forgot_bias", "padding_assumed",
    # ...; "right_if_divisible" for a formula right only for even sizes), None when none is.
    mistake: str | None = None

    @property
    def correct(self) -> bool:
        return self.verdict in (RIGHT, CLOSE)

    def to_json(self) -> dict:
        out = {"quantity": self.quantity, "given": self.given, "expected": ungrouped(self.expected),
               "verdict": self.verdict, "hint": self.hint}
        if self.formula is not None:
            out["formula"] = self.formula
        return out


@dataclass
class CheckResult:
    spec: str
    results: list[AnswerResult] = field(default_factory=list)

    @property
    def right(self) -> int:
        return sum(r.correct for r in self.results)

    @property
    def wrong(self) -> int:
        return len(self.results) - self.right

    @property
    def total(self) -> int:
        return len(self.results)

    @property
    def score(self) -> float:
        return round(self.right / self.total, 4) if self.results else 0.0

    @property
    def ok(self) -> bool:
        return all(r.correct for r in self.results)

    def to_json(self) -> dict:
        return {"spec": self.spec, "answers": [r.to_json() for r in self.results],
                "right": self.right, "wrong": self.wrong, "score": self.score}

    def grade_rows(self, student_id) -> list[list]:
        """Gradebook rows for csv.writer(...).writerows: one row, laid out as GRADE_HEADER (the
        wrong quantities joined by ';')."""
        wrong = ";".join(r.quantity for r in self.results if not r.correct)
        return [[csv_cell(student_id), self.right, self.total, self.score, wrong]]

    def lines(self) -> list[str]:
        """Plain-text report, one line per answer and a score line."""
        out = []
        for r in self.results:
            line = f"{r.verdict:<5}  {r.quantity} = {r.given_text}"
            if r.verdict == CLOSE:
                line += f"  (exact: {r.expected})"
            elif r.verdict in (WRONG, UNDECIDED):
                line += f"  (expected {r.expected})"
                if r.hint:
                    line += f": {r.hint}"
            elif r.verdict == INVALID:
                line += f"  ({r.hint})"
            out.append(line)
        out.append(f"score {self.right}/{self.total}")
        return out


# --- checking ---------------------------------------------------------------------------------
def check(report, sheet, spec_graph=None) -> CheckResult:
    """Check every answer of `sheet` against `report` (an archcalc Report). `spec_graph` (the
    spec's Graph, optional) refines hints (bias flags) and maps internal symbols back."""
    sheet = _with_spec_vars(sheet, getattr(spec_graph, "vars", None) or {})
    checker = _Checker(report, sheet, spec_graph)
    constraints = dict(getattr(spec_graph, "constraints", None) or {})
    constraints.update(getattr(report, "constraints", None) or {})
    token = _CONSTRAINTS.set(constraints)
    try:
        with decide.file_budget():  # all the symbolic work for this file, together
            return CheckResult(report.name, [checker.one(answer) for answer in sheet.answers])
    finally:
        _CONSTRAINTS.reset(token)


def _with_spec_vars(sheet, values: dict):
    """The sheet with the spec's numeric vars put into the answers that name them: a student may
    write the lecture's `N_H*(d + 1) + K*(N_H + 1)` where the spec says `vars: {d: 784, N_H: 100,
    K: 10}`; the size symbols stay symbols."""
    if not values:
        return sheet

    def put(v):
        if isinstance(v, Symbolic) and v.names & set(values):
            import sympy

            e = sympy.nsimplify(v.value.subs({s: values[str(s)] for s in v.value.free_symbols if str(s) in values}))
            if e.free_symbols:
                return Symbolic(e, v.text)
            if e.is_Integer:
                return Exact(int(e), v.text)
            if e.is_Rational:
                return Exact(Fraction(int(e.p), int(e.q)), v.text)
            return v
        if isinstance(v, Shape):
            return Shape(tuple(put(item) for item in v.items), v.text)
        if isinstance(v, RFAnswer):
            def each(part):
                return tuple(put(p) for p in part) if isinstance(part, tuple) else put(part)
            return RFAnswer(*(None if p is None else each(p) for p in (v.size, v.stride, v.start)),
                            is_global=v.is_global, text=v.text)
        return v

    answers = [replace(a, value=put(a.value)) for a in sheet.answers]
    return replace(sheet, answers=answers) if any(a.value is not b.value for a, b in zip(answers, sheet.answers)) \
        else sheet


@dataclass
class _Target:
    name: str
    row: LayerResult | None  # the layer (a sum row for a block); None for the total
    rows: list  # the leaf rows it covers


class _Checker:
    def __init__(self, report, sheet, graph):
        from archcalc.homework.mistakes.network import Network

        self.report = report
        self.sheet = sheet
        self.graph = graph
        self.net = Network(report, graph, sheet.bindings)
        self.rows = self.net.rows

    def norm(self, value):
        return self.net.norm(value)

    # --- targets and expected values -------------------------------------------------------
    def target(self, answer) -> _Target:
        if answer.is_total:
            return _Target(TOTAL, None, list(self.report.layers))
        row = self.rows.get(answer.layer)
        if row is not None:
            return _Target(row.name, row, [row])
        prefix = answer.layer + "."
        rows = [r for r in self.report.layers if r.name.startswith(prefix)]
        if rows:  # a block instance or repeat: its layers summed, shape and rf of the last
            last = rows[-1]
            kind = dict(last.blocks).get(answer.layer) or "block"
            group = LayerResult(name=answer.layer, kind=kind, inputs=rows[0].inputs,
                                output_shape=last.output_shape,
                                trainable_params=sum_(r.trainable_params for r in rows),
                                non_trainable_params=sum_(r.non_trainable_params for r in rows),
                                macs=sum_(r.macs for r in rows), rf=last.rf,
                                activation_bytes=sum_(r.activation_bytes for r in rows), blocks=last.blocks)
            return _Target(answer.layer, group, rows)
        choices = [TOTAL] + list(self.rows) + sorted(_prefixes(self.rows))
        raise SpecError(f"unknown layer {_shown(answer.layer)} in {_shown(answer.quantity)}"
                        f"{did_you_mean(answer.layer, choices)}; layers are named as in `archcalc analyze`",
                        answer.key_loc or answer.loc)

    def expected(self, target: _Target, figure: str):
        report, row = self.report, target.row
        if figure == "output_shape":
            shape = report.output_shape if row is None else row.output_shape
            return tuple(self.norm(n) for n in shape)
        if figure == "rf":
            if row.rf is None and self.net.sees_every_feature(target.rows[-1]):
                return GLOBAL  # an MLP's layer: the analysis tracks no field on a vector, but each
                # output depends on every input feature, as a linear layer's on its whole input
            return self.net.norm_rf(row.rf)
        if row is None:
            t = report.totals
            value = {"params": t.params, "trainable_params": t.trainable_params,
                     "non_trainable_params": t.non_trainable_params, "macs": t.macs, "flops": t.flops,
                     "activation_bytes": t.activation_bytes, "param_bytes": t.param_bytes}[figure]
        else:
            value = getattr(row, figure)
        return self.norm(value)

    # --- one answer ------------------------------------------------------------------------
    def one(self, answer) -> AnswerResult:
        if isinstance(answer.value, Invalid):  # unreadable (strict=False): this answer only
            return invalid_result(answer, answer.value.error, self.expected_text(answer))
        try:
            target = self.target(answer)
        except SpecError as exc:  # an unknown layer: under strict=False, this answer only
            if getattr(self.sheet, "strict", True):
                raise
            return invalid_result(answer, exc)
        expected = self.expected(target, answer.figure)
        value = answer.value
        verdict = figure_verdict(answer.figure, value, expected, self.whole_input())
        hint = mistake = None
        if verdict == WRONG:
            hint = self.divisible_hint(answer, expected)
            if hint:
                mistake = "right_if_divisible"
            else:
                mistake, hint = self.diagnose(answer, target, expected)
            distance = distance_text(value, expected)
            if distance:  # an approximate answer outside the tolerance: how far off it is
                hint = f"{distance}; {hint}" if hint else distance
        elif verdict == UNDECIDED:
            hint = UNDECIDED_HINT
        return AnswerResult(answer.quantity, answer.given, answer.given_text,
                            format_expected(expected, answer.figure), verdict, hint, None, answer.loc,
                            mistake)

    def expected_text(self, answer) -> str:
        """The expected value of an unreadable answer's quantity, formatted; "" where the
        quantity itself is not one (an unknown layer or figure)."""
        from archcalc.homework.answers import FIGURES

        if answer.figure not in FIGURES or (answer.is_total and answer.figure == "rf"):
            return ""
        try:
            return format_expected(self.expected(self.target(answer), answer.figure), answer.figure)
        except (SpecError, AttributeError, KeyError, TypeError, ValueError, ArithmeticError):
            return ""

    def whole_input(self) -> tuple:
        """The input's sizes a whole-input field may be written as: its spatial sizes ([H, W] of
        [C, H, W], [L] of [C, L]), or the sizes of a one-axis input ([784])."""
        shape = tuple(self.norm(n) for n in self.report.input_shape)
        return shape[1:] if len(shape) > 1 else shape

    def divisible_hint(self, answer, expected) -> str | None:
        """For an answer that is wrong as a formula of every size but right where the sizes are
        multiples of the network's strides (40*(H-4)*(W-4) + 426 for a floor(H/2) network, right
        for even H and W): it says so, and how to declare it."""
        found = right_if_divisible(answer.figure, answer.value, expected, self.whole_input(), self.multiples())
        if not found:
            return None
        names = sorted(found)
        if set(found.values()) == {2}:
            where = f"for even {' and '.join(names)}"
        else:
            where = "where " + " and ".join(f"{n} is a multiple of {found[n]}" for n in names)
        declared = ", ".join(f"{n}: {{multiple_of: {found[n]}}}" for n in names)
        return (f"right only {where}, where the floors divide exactly; if the sizes are so, declare "
                f"`symbols: {{{declared}}}` in the spec or check with `--assume divisible` (a key: "
                "`assume: divisible`)")

    def multiples(self) -> dict:
        """Per size symbol, the multiple `--assume divisible` would take (the total stride along
        its axis), for the symbols not already constrained to it; {} without the spec's graph."""
        if self.graph is None:
            return {}
        from archcalc.api import divisible_multiples

        try:
            found = divisible_multiples(self.report, self.graph)
        except (AttributeError, TypeError, ValueError, IndexError):
            return {}
        constraints = _CONSTRAINTS.get()
        out = {}
        for name, m in found.items():
            have = int((constraints.get(name) or {}).get("multiple_of", 1) or 1)
            if m > 1 and m % have == 0 and m != have:
                out[name] = m
        return out

    # --- the walk over the catalogue of mistakes ---------------------------------------------
    def diagnose(self, answer, target, expected) -> tuple:
        """(name, hint) of the first mistake of the catalogue (archcalc.homework.mistakes) that
        the answer matches, in the catalogue's order; (None, None) when none does."""
        from archcalc.homework.mistakes import Case, Said, for_figure

        case = Case(self.net, target, answer.figure, expected, answer.value,
                    {a.quantity.strip(): a for a in self.sheet.answers})
        derived = []  # (rule, its mistaken values), for the second pass
        aside = None  # an aside rule's (name, hint), said after the mistake that explains the answer

        def named(rule, text):
            if aside is None:
                return rule.name, text
            return rule.name, f"{text}; {aside[1]}"

        for rule in for_figure(answer.figure):
            try:
                found = rule.derive(case)
                if found is None:
                    continue
                if isinstance(found, Said):
                    return named(rule, rule.text(found.fields))
                found = found if isinstance(found, list) else [found]
                if not rule.aside:
                    derived.append((rule, found))
                for wrong in found:
                    if self.matches(case, wrong):
                        if rule.aside:
                            aside = aside or (rule.name, rule.text(wrong.fields))
                            break
                        return named(rule, rule.text(wrong.fields))
            except _RULE_ERRORS:  # a form sympy cannot combine, a network the rule cannot read
                continue
        # A formula equal to a mistake's value only where the sizes divide (40*H*W + 426 for the
        # count with 'same' padding, floor(H/2) in it): that mistake, for those sizes.
        formula = isinstance(answer.value, Symbolic) or answer.figure == "output_shape" and \
            isinstance(answer.value, Shape) and any(isinstance(i, Symbolic) for i in answer.value.items)
        if not formula or not derived:
            return aside or (None, None)
        multiples = self.multiples()
        if not multiples:
            return aside or (None, None)
        for rule, found in derived:
            for wrong in found:
                try:
                    if not any(_symbolic(p) for p in _expected_parts(wrong.value)):
                        continue
                    if (shape_equal(wrong.value, expected) if answer.figure == "output_shape" else
                            number_verdict(Exact(wrong.value, ""), expected) != WRONG):
                        continue  # the "mistake" gives the right value here
                    where = right_if_divisible(answer.figure, answer.value, wrong.value, self.whole_input(),
                                               multiples)
                except _RULE_ERRORS:
                    continue
                if where:
                    names = sorted(where)
                    sizes = (f"even {' and '.join(names)}" if set(where.values()) == {2} else
                             " and ".join(f"{n} a multiple of {where[n]}" for n in names))
                    return named(rule, f"{rule.text(wrong.fields)} (the answer is that value for {sizes})")
        return aside or (None, None)

    @staticmethod
    def matches(case, wrong) -> bool:
        """Whether the answer is the mistaken value (and that differs from the expected one)."""
        value, expected, candidate = case.value, case.expected, wrong.value
        if candidate is None:
            return False
        if case.figure == "output_shape":
            return _shape_mistake(value, candidate, expected)
        if case.figure == "rf":
            given = value.parts.get(wrong.part) if isinstance(value, RFAnswer) else None
            return given is not None and tuple(candidate) != tuple(getattr(expected, wrong.part)) \
                and bool(_axes_match(given, candidate))
        if number_verdict(Exact(candidate, ""), expected) != WRONG:
            return False  # the "mistake" gives the right value here
        if isinstance(value, Approx):
            return _better_than_truth(value, candidate, expected)
        return number_verdict(value, candidate) in (RIGHT, CLOSE)


def _better_than_truth(value: Approx, candidate, expected) -> bool:
    """An approximate answer names a mistake only when it matches the mistaken value better than
    the true one at its own precision: it is within the tolerance (or half a unit of its last
    digit) of the mistaken value, closer to it than to the truth, and the truth is not itself
    within half a unit of its last digit ("about 40 k" for 40,451 could as well be meant for the
    truth as for 40,320: no diagnosis)."""
    if _symbolic(candidate) or _symbolic(expected) or isinstance(candidate, (tuple, str, RF)):
        return False
    v, c, e, half = float(value.value), float(candidate), float(expected), half_unit(value)
    if abs(v - e) <= half or abs(v - c) >= abs(v - e):
        return False
    return number_verdict(value, candidate) in (RIGHT, CLOSE) or abs(v - c) <= half


def half_unit(value) -> float:
    """Half a unit of the last digit an approximate answer is written with, its own precision:
    500 for "about 40 k", 5,000 for "1.02 M" and for "2.05e6"; 0 for an exact answer."""
    if not isinstance(value, Approx):
        return 0.0
    from decimal import Decimal, InvalidOperation

    from archcalc.homework.answers import _APPROX

    match = _APPROX.match(value.text or "")
    num = (match["num"] if match else "") or ""
    try:
        written = Decimal(num.replace(",", "").replace("_", ""))
    except (InvalidOperation, ValueError):
        return 0.0
    if not written.is_finite() or written == 0:
        return 0.0
    scale = abs(float(value.value) / float(written))  # the unit's multiplier (k, M, MiB, ...)
    if scale == 1 and not any(c in num for c in ".eE"):
        # a bare whole number: its trailing zeros hold places, not digits the student vouches for
        # ("about 40,000" is read as 4e4: half a unit 5,000)
        written = written.normalize()
    return 0.5 * float(Decimal(1).scaleb(written.as_tuple().exponent)) * scale


def distance_text(value, expected) -> str | None:
    """How far a wrong approximate answer is from the exact value: "1.1 % below the exact value
    (the tolerance is 1 %)", or "about 1,000 times too large"; None where it does not apply."""
    if not isinstance(value, Approx) or _symbolic(expected) or expected is None \
            or isinstance(expected, (tuple, str, RF)):
        return None
    v, e = float(value.value), float(expected)
    if e == 0 or v / e <= 0:
        return f"the exact value is {'zero' if e == 0 else 'of the other sign'}"
    ratio = v / e
    if 1 / 3 <= ratio <= 3:
        pct, tolerance = abs(ratio - 1) * 100, value.tolerance * 100
        shown = f"{pct:.1f}" if pct < 10 else f"{pct:.0f}"
        if float(shown) <= tolerance:  # 1.04 % against a 1 % tolerance: not "1.0 %"
            shown = f"{pct:.2f}"
        return f"{shown} % {'below' if ratio < 1 else 'above'} the exact value (the tolerance is {tolerance:g} %)"
    times = ratio if ratio > 1 else 1 / ratio
    shown = f"{times:.2g}" if times >= 1e6 else f"{times:,.0f}" if times >= 10 else f"{times:.1f}"
    return f"about {shown} times too {'large' if ratio > 1 else 'small'}"


# --- comparisons ------------------------------------------------------------------------------
def number_verdict(value, expected) -> str:
    if isinstance(value, Approx):
        if _symbolic(expected) or expected is None or isinstance(expected, (tuple, str, RF)):
            return WRONG
        if float(value.value) == expected:
            return RIGHT
        return CLOSE if abs(value.value - float(expected)) <= value.tolerance * abs(float(expected)) else WRONG
    if isinstance(value, (Exact, Symbolic)):
        return _VERDICTS[compare(value.value, expected)]
    return WRONG


_VERDICTS = {True: RIGHT, False: WRONG, None: UNDECIDED}
# What a mistake rule may raise on a network or answer it cannot read: the rule is skipped (one
# student's odd answer never stops a class's grading).
_RULE_ERRORS = (ArithmeticError, TypeError, ValueError, RecursionError, KeyError, IndexError, AttributeError,
                decide.TooLarge, decide.Unsupported)


def _all(results) -> bool | None:
    """True when every comparison is True, False when any is False, else None (undecided)."""
    results = list(results)
    return False if False in results else None if None in results else True


def shape_matches(value, expected) -> bool | None:
    if not isinstance(value, Shape) or expected is None or len(value.items) != len(expected):
        return False
    return _all(compare(item.value, e) for item, e in zip(value.items, expected))


def _shape_mistake(value, candidate, expected) -> bool:
    """Every size of the answer is the expected one or the mistaken one, and at least one is the
    mistaken one (a mistake may be made on some axes only)."""
    if not isinstance(value, Shape) or len(value.items) != len(candidate) or len(candidate) != len(expected):
        return False
    mistaken = False
    for item, c, e in zip(value.items, candidate, expected):
        if values_equal(item.value, e):
            continue
        if not values_equal(item.value, c):
            return False
        mistaken = True
    return mistaken


def shape_equal(a, b) -> bool:
    return len(a) == len(b) and all(values_equal(x, y) for x, y in zip(a, b))


def figure_verdict(figure: str, value, expected, whole=()) -> str:
    """The verdict of one typed answer of `figure` against its expected value (`whole`: the
    input's sizes, for a field written as the whole input)."""
    if figure == "rf":
        return _VERDICTS[rf_matches(value, expected, whole)]
    if figure == "output_shape":
        return _VERDICTS[shape_matches(value, expected)]
    return number_verdict(value, expected)


def invalid_result(answer, error, expected: str = "") -> AnswerResult:
    """The verdict "invalid" for an answer that cannot be read or names no layer: its message
    (located) is the hint, `expected` the right value where the quantity names one; the file's
    other answers are graded."""
    return AnswerResult(answer.quantity, answer.given, answer.given_text, expected, INVALID, error.message, None,
                        error.loc or answer.loc)


def right_if_divisible(figure, value, expected, whole, multiples) -> dict | None:
    """For a wrong answer: the smallest multiples ({H: 2, W: 2}, each dividing `multiples`) of the
    expected value's size symbols at which it is right; None when there are none. Only where the
    expected value holds a floor or ceiling (elsewhere divisibility changes nothing)."""
    import sympy

    parts = [e for e in _expected_parts(expected) if _symbolic(e)]
    names = {str(s) for e in parts for s in e.free_symbols} & set(multiples)
    if not names or not any(e.has(sympy.floor, sympy.ceiling) for e in parts):
        return None
    steps = sorted({d for n in names for d in range(2, multiples[n] + 1) if multiples[n] % d == 0})
    base = _CONSTRAINTS.get()
    for d in steps:
        trial = {n: math.gcd(multiples[n], d) for n in sorted(names) if math.gcd(multiples[n], d) > 1}
        constraints = dict(base)
        for n, m in trial.items():
            rule = dict(constraints.get(n) or {})
            rule["multiple_of"] = math.lcm(int(rule.get("multiple_of", 1) or 1), m)
            constraints[n] = rule
        token = _CONSTRAINTS.set(constraints)
        try:
            if figure_verdict(figure, value, expected, whole) == RIGHT:
                return trial
        except (ArithmeticError, TypeError, ValueError, RecursionError):
            return None
        finally:
            _CONSTRAINTS.reset(token)
    return None


def rf_matches(value, expected, whole=()) -> bool | None:
    """Whether an rf answer is the expected field. A global field may also be written as the
    input's size ([H, W], or [28, 28] for a 28 x 28 input: the lecture's "the whole image"), given
    as `whole` (the input's spatial sizes)."""
    if not isinstance(value, RFAnswer):
        return False
    if expected == GLOBAL and not value.is_global and value.size is not None and whole:
        return _axes_match(value.size, tuple(whole))
    if value.is_global or expected is None or expected == GLOBAL:
        return value.is_global and expected == GLOBAL
    parts = value.parts
    return bool(parts) and _all(_axes_match(given, getattr(expected, part)) for part, given in parts.items())


def _axes_match(given, expected_axes) -> bool | None:
    """An rf part as answered (one answer for every axis, or one per axis) against a tuple."""
    if isinstance(given, tuple):
        return len(given) == len(expected_axes) and _all(
            compare(g.value, e) for g, e in zip(given, expected_axes))
    return _all(compare(given.value, e) for e in expected_axes)


def values_equal(a, b) -> bool:
    """Whether two values are known to be equal (see `compare`; "cannot decide" is not equal)."""
    return compare(a, b) is True


def compare(a, b) -> bool | None:
    """Exact equality of numbers (int, Fraction, float) and sympy expressions. Symbolic values are
    compared by archcalc.homework.decide, in bounded time: True (equal: proved for rational
    functions, or vanishing at every sample size for floors), False (different), or None (too
    large to decide within its bounds)."""
    if a is None or b is None or isinstance(a, (str, tuple)) or isinstance(b, (str, tuple)):
        return a == b
    sa, sb = _symbolic(a), _symbolic(b)
    if not sa and not sb:
        if isinstance(a, float) or isinstance(b, float):
            return math.isclose(float(a), float(b), rel_tol=1e-12, abs_tol=1e-12)
        return a == b
    if not (sa and sb):
        return False  # a formula against a number (a set: binding would have made both numbers)
    try:
        diff = _sympy_value(a) - _sympy_value(b)
        if diff == 0:
            return True
        diff, ranges = _constrained(diff)
    except ZeroDivisionError:  # e.g. W % (H - 2*(H//2)) once H is a multiple of 2: defined nowhere
        return False
    except (ArithmeticError, TypeError, ValueError, RecursionError):  # sympy giving up on a form
        return None
    if diff == 0:
        return True
    return _zero(diff, ranges)


def _sympy_value(value):
    """A value as sympy: numbers are converted by type, never by parsing text."""
    import sympy

    if isinstance(value, sympy.Basic):
        return value
    if isinstance(value, bool):
        return sympy.Integer(int(value))
    if isinstance(value, int):
        return sympy.Integer(value)
    if isinstance(value, Fraction):
        return sympy.Rational(value.numerator, value.denominator)
    if isinstance(value, float):
        return sympy.Float(value)
    raise TypeError(f"not a number: {type(value).__name__}")


def _zero(diff, ranges) -> bool | None:
    """Is `diff` zero wherever it is defined, for sizes within `ranges`? (decide's ladder.)"""
    try:
        return _zero_within_budget(diff, ranges)
    except (decide.TooLarge, decide.Unsupported):  # past a bound, the answers file's budget included
        return None


def _zero_within_budget(diff, ranges) -> bool | None:
    symbols = sorted(diff.free_symbols, key=str)
    program = decide.compile_expr(diff, symbols)
    points = _sample_points(symbols, _SAMPLES, ranges, rounds=2)
    if decide.vanishes_at(program, points) is False:
        return False  # a counterexample: certainly different
    if decide.is_rational(program):
        if decide.nonzero_mod_prime(program, points):
            return False
        return decide.rational_zero(program, symbols, ranges)
    # Floors, min, max, mod (identities such as floor((H+1)/2) = floor((H-1)/2) + 1): equal when
    # it also vanishes on a wider sweep of sizes, as many of them as the budget allows.
    points = _sample_points(symbols, _WIDE_SAMPLES, ranges, rounds=6)
    affordable = decide.SAMPLE_BUDGET // max(1, len(program))
    if affordable < len(_SAMPLES):
        return None
    return decide.vanishes_at(program, points[:affordable])


def _constrained(diff):
    """Apply the symbols' constraints: a symbol H with multiple_of m becomes m*H_m (so that sympy
    simplifies floors exactly). Returns the expression and, per symbol, (scale, min, max) for the
    sample points."""
    import sympy

    constraints = _CONSTRAINTS.get()
    ranges, swap = {}, {}
    for sym in diff.free_symbols:
        rule = constraints.get(str(sym)) or {}
        m = int(rule.get("multiple_of", 1) or 1)
        target = sym
        if m > 1:
            target = sympy.Symbol(f"{sym}_{m}", integer=True, positive=True)
            swap[sym] = m * target
        ranges[target] = (m, rule.get("min", 1) or 1, rule.get("max"))
    if swap:
        diff = diff.xreplace(swap)
    return diff, ranges


def _sample_points(symbols, samples, ranges=None, rounds: int = 2) -> list[tuple]:
    """`rounds` x len(samples) points: symbols get different, interleaved values from `samples`,
    kept within their (scale, min, max) `ranges`."""
    values = []
    for sym in symbols:
        scale, low, high = (ranges or {}).get(sym, (1, 1, None))
        allowed = [v for v in samples if scale * v >= low and (high is None or scale * v <= high)]
        values.append(allowed or [max(1, -(-low // scale))])
    return [tuple(vals[(i * (2 * k + 1) + 7 * k) % len(vals)] for k, vals in enumerate(values))
            for i in range(rounds * len(samples))]


# --- formatting -------------------------------------------------------------------------------
def format_expected(expected, figure: str) -> str:
    if figure == "rf":
        if expected is None:
            return "not tracked"
        if expected == GLOBAL:
            return GLOBAL
        parts = []
        for name in ("size", "stride", "start"):
            axes = getattr(expected, name)
            parts.append(f"{name} {_axes_text(axes)}")
        return ", ".join(parts) + (" (misaligned)" if expected.misaligned else "")
    if isinstance(expected, tuple):  # a shape: sizes ungrouped, as analyze writes shapes
        return "[" + ", ".join(_fmt(v, group=False) for v in expected) + "]"
    return _fmt(expected)


def _axes_text(axes) -> str:
    axes = tuple(axes)
    if len(set(map(str, axes))) == 1:
        return _fmt(axes[0])
    return "[" + ", ".join(_fmt(v, group=False) for v in axes) + "]"  # [1201, 1]: commas part the axes


_GROUPED = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")


def ungrouped(text):
    """Display text without its thousands separators (`11,699,112` -> `11699112`), for JSON, which
    scripts read; a shape's or field's `, ` between sizes stays."""
    return _GROUPED.sub("", text) if isinstance(text, str) else text


def _fmt(value, group: bool = True) -> str:
    """An expected value as analyze and explain write it (archcalc/analysis/formula.py): whole
    numbers grouped by thousands (31,370), formulas in their readable form (40*(H - 4)*(W - 4) +
    426, floor((H - 1)/2) + 1)."""
    from archcalc.analysis import formula

    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return formula.text(value, group)


# --- small helpers ----------------------------------------------------------------------------
def _symbolic(value) -> bool:
    return hasattr(value, "free_symbols") and not isinstance(value, (int, float, Fraction)) \
        and bool(value.free_symbols)


def _from_sympy(value):
    if value.free_symbols:
        return value
    if value.is_Integer:
        return int(value)
    if value.is_Rational:
        return Fraction(int(value.p), int(value.q))
    return float(value)


def _plain(value):
    if isinstance(value, Fraction):
        return value.numerator if value.denominator == 1 else value
    return value


def _is_zero(value) -> bool:
    if _symbolic(value):
        diff, ranges = _constrained(value)
        return diff == 0 or _zero(diff, ranges) is True
    return value == 0


def _div(a, b):
    """a / b, exact: an int where it divides, a Fraction for ints that do not, sympy otherwise."""
    if isinstance(a, int) and isinstance(b, int):
        if b == 0:
            return None
        return a // b if a % b == 0 else Fraction(a, b)
    if isinstance(a, (int, Fraction)) and isinstance(b, (int, Fraction)):
        return _plain(Fraction(a) / Fraction(b)) if b else None
    if _symbolic(a) or _symbolic(b):
        return a / b
    return None


def _prod(values):
    out = 1
    for v in values:
        out = out * v
    return out


def sum_(values):
    total = 0
    for v in values:
        total = total + v
    return total


def _sum_rows(target, attr):
    if target.row is None:
        return sum_(getattr(r, attr) for r in target.rows)
    return getattr(target.row, attr)


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value) -> str:
    """A CSV cell a spreadsheet shows as text: one line, and a cell that would start with
    = + - @ (or a tab or carriage return, also after leading spaces) gets a leading ' so that it
    is never run as a formula (OWASP's advice against CSV injection). Numbers stay numbers."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    from archcalc.errors import one_line

    raw = str(value)
    text = one_line(raw)
    if raw.lstrip(" ")[:1] in _FORMULA_START or text.lstrip(" ")[:1] in _FORMULA_START:
        return "'" + text
    return text


def _prefixes(names) -> set:
    out = set()
    for name in names:
        parts = name.split(".")
        out.update(".".join(parts[:i]) for i in range(1, len(parts)))
    return out


def _answer_parts(value) -> list:
    if isinstance(value, Shape):
        return list(value.items)
    if isinstance(value, RFAnswer):
        out = []
        for part in value.parts.values():
            out.extend(part if isinstance(part, tuple) else [part])
        return out
    return [value]


def _expected_parts(expected) -> list:
    if isinstance(expected, tuple):
        return list(expected)
    if isinstance(expected, RF):
        return list(expected.size) + list(expected.stride) + list(expected.start)
    return [expected]


def _answer_value(item):
    return item.value


__all__ = ["AnswerResult", "CheckResult", "GRADE_HEADER", "check", "format_expected", "values_equal"]
