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

A wrong answer gets a hint when it equals what a usual mistake gives: each candidate mistaken
value is computed from the report and compared with the answer the same way the expected value is
(exactly, symbolically or within the tolerance); the first one that matches names the mistake.
"""
from __future__ import annotations

import math
from contextvars import ContextVar
from dataclasses import dataclass, field
from fractions import Fraction

from archcalc.analysis.report import DTYPE_BYTES, LayerResult
from archcalc.analysis.rf import GLOBAL, RF
from archcalc.errors import SpecError, did_you_mean
from archcalc.homework import decide
from archcalc.homework.answers import TOTAL, Approx, Exact, RFAnswer, Shape, Symbolic, _shown

RIGHT, CLOSE, WRONG = "right", "close", "wrong"
UNDECIDED = "undecided"  # a symbolic answer too large to compare within bounds; not counted right
UNDECIDED_HINT = ("archcalc cannot decide whether this formula equals the expected one within its "
                  "bounds (it agrees at the sizes tried but is too large to prove); write it in a "
                  "simpler, expanded form")
GRADE_HEADER = ("student", "right", "total", "score", "wrong")
BIASED_KINDS = ("conv", "conv_transpose", "linear")
WINDOW_KINDS = ("conv", "maxpool", "avgpool")
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

    @property
    def correct(self) -> bool:
        return self.verdict in (RIGHT, CLOSE)

    def to_json(self) -> dict:
        out = {"quantity": self.quantity, "given": self.given, "expected": self.expected,
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
        return [[_csv_text(student_id), self.right, self.total, self.score, wrong]]

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
            out.append(line)
        out.append(f"score {self.right}/{self.total}")
        return out


# --- checking ---------------------------------------------------------------------------------
def check(report, sheet, spec_graph=None) -> CheckResult:
    """Check every answer of `sheet` against `report` (an archcalc Report). `spec_graph` (the
    spec's Graph, optional) refines hints (bias flags) and maps internal symbols back."""
    checker = _Checker(report, sheet, spec_graph)
    constraints = dict(getattr(spec_graph, "constraints", None) or {})
    constraints.update(getattr(report, "constraints", None) or {})
    token = _CONSTRAINTS.set(constraints)
    try:
        with decide.file_budget():  # all the symbolic work for this file, together
            return CheckResult(report.name, [checker.one(answer) for answer in sheet.answers])
    finally:
        _CONSTRAINTS.reset(token)


@dataclass
class _Target:
    name: str
    row: LayerResult | None  # the layer (a sum row for a block); None for the total
    rows: list  # the leaf rows it covers


class _Checker:
    def __init__(self, report, sheet, graph):
        self.report = report
        self.sheet = sheet
        self.graph = graph
        self.rows = {row.name: row for row in report.layers}
        self.nodes = {node.name: node for node in graph.nodes} if graph is not None else {}
        self.back = dict(getattr(graph, "back", None) or {})
        self.bytes = DTYPE_BYTES.get(report.dtype, 4)
        self.batch = report.batch
        self._symbols = None

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
            return self.norm_rf(row.rf)
        if row is None:
            t = report.totals
            value = {"params": t.params, "trainable_params": t.trainable_params,
                     "non_trainable_params": t.non_trainable_params, "macs": t.macs, "flops": t.flops,
                     "activation_bytes": t.activation_bytes, "param_bytes": t.param_bytes}[figure]
        else:
            value = getattr(row, figure)
        return self.norm(value)

    def norm(self, value):
        """An expected value as int, Fraction, float or a sympy expression in the user's symbols
        (Symbol(name, integer=True, positive=True)) with the `set` bindings substituted."""
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, Fraction):
            return value.numerator if value.denominator == 1 else value
        if isinstance(value, (int, float)) or not hasattr(value, "free_symbols"):
            return value
        if not value.free_symbols:  # a sympy number
            return _from_sympy(value)
        import sympy

        if self.back:
            value = value.subs(self.back)
        canon = {s: sympy.Symbol(str(s), integer=True, positive=True) for s in value.free_symbols}
        value = value.xreplace(canon)
        if self.sheet.bindings:
            value = value.xreplace({sympy.Symbol(k, integer=True, positive=True): sympy.Integer(v)
                                    for k, v in self.sheet.bindings.items()})
        return _from_sympy(value)

    def norm_rf(self, rf):
        if rf is None or rf == GLOBAL:
            return rf
        return RF(tuple(self.norm(v) for v in rf.size), tuple(self.norm(v) for v in rf.stride),
                  tuple(self.norm(v) for v in rf.start), rf.misaligned)

    @property
    def symbols(self) -> set:
        """Names of the spec's free size symbols."""
        if self._symbols is None:
            names = set(getattr(self.graph, "symbols", ()) or ()) | set(getattr(self.report, "symbols", ()) or ())
            for n in self.report.input_shape:
                if _symbolic(n):
                    names |= {str(s) for s in n.free_symbols}
            self._symbols = names
        return self._symbols

    # --- one answer ------------------------------------------------------------------------
    def one(self, answer) -> AnswerResult:
        target = self.target(answer)
        expected = self.expected(target, answer.figure)
        value = answer.value
        if answer.figure == "rf":
            verdict = _VERDICTS[rf_matches(value, expected)]
        elif answer.figure == "output_shape":
            verdict = _VERDICTS[shape_matches(value, expected)]
        else:
            verdict = number_verdict(value, expected)
        hint = None
        if verdict == WRONG:
            try:
                hint = self.hint(answer, target, expected)
            except (ArithmeticError, TypeError, ValueError, RecursionError):  # a form sympy cannot combine
                hint = None
        elif verdict == UNDECIDED:
            hint = UNDECIDED_HINT
        return AnswerResult(answer.quantity, answer.given, answer.given_text,
                            format_expected(expected, answer.figure), verdict, hint, None, answer.loc)

    # --- hints -----------------------------------------------------------------------------
    def hint(self, answer, target, expected) -> str | None:
        value = answer.value
        hint = self.symbol_hint(value, expected)
        if hint:
            return hint
        figure = answer.figure
        if figure == "rf":
            return self.rf_hint(value, target, expected)
        if figure == "output_shape":
            if isinstance(value, Shape) and len(value.items) == len(expected) + 1 \
                    and shape_matches(Shape(value.items[1:], ""), expected):
                return "shapes exclude the batch dimension"
            for candidate, text in self.shape_candidates(target, expected):
                if _shape_mistake(value, candidate, expected):
                    return text
            return self.shape_fallback(value, target, expected)
        for candidate, text in getattr(self, f"{figure}_candidates")(target, expected):
            if candidate is not None and number_verdict(value, candidate) in (RIGHT, CLOSE) \
                    and number_verdict(Exact(candidate, ""), expected) == WRONG:
                return text
        return None

    def symbol_hint(self, value, expected) -> str | None:
        names = set()
        for part in _answer_parts(value):
            if isinstance(part, Symbolic):
                names |= part.names
        unknown = sorted(names - self.symbols)
        if unknown:
            if not self.symbols:
                return (f"this spec has no size symbols, so the answer is a number; {', '.join(unknown)} "
                        "could be given values under set:")
            return (f"{', '.join(unknown)} {'is not a size symbol' if len(unknown) == 1 else 'are not size symbols'}"
                    f" of this spec (its symbols: {', '.join(sorted(self.symbols))})")
        free = sorted({str(s) for e in _expected_parts(expected) if _symbolic(e) for s in e.free_symbols})
        numeric = [p for p in _answer_parts(value) if not isinstance(p, Symbolic)]
        if free and numeric and not names:
            return (f"the expected value depends on {', '.join(free)}: answer with a formula in "
                    f"{', '.join(free)}, or give their values under set:")
        return None

    # Candidate lists: (mistaken value, hint). None values are skipped.
    def params_candidates(self, target, e):
        yield from self.bias_candidates(target, e)
        nt = self.norm(_sum_rows(target, "non_trainable_params"))
        if not _is_zero(nt):
            tr = self.norm(_sum_rows(target, "trainable_params"))
            yield tr, ("that is the trainable count only: BatchNorm has 2C trainable parameters (scale, "
                       "shift) and 2C non-trainable ones (running mean and variance); params counts all 4C")
            bias = self.bias_total(target)
            if not _is_zero(bias):
                yield tr - bias, ("forgot the biases, and counted BatchNorm as 2C instead of 4C (params "
                                  "include the running mean and variance)")
        yield from self.batch_param_candidates(e)

    def trainable_params_candidates(self, target, e):
        yield from self.bias_candidates(target, e)
        nt = self.norm(_sum_rows(target, "non_trainable_params"))
        if not _is_zero(nt):
            yield self.norm(_sum_rows(target, "params")), (
                "counted BatchNorm as 4C: its running mean and variance are buffers, not trainable; "
                "trainable_params is 2C (scale, shift) per BatchNorm")
        yield from self.batch_param_candidates(e)

    def non_trainable_params_candidates(self, target, e):
        tr = self.norm(_sum_rows(target, "trainable_params"))
        if _is_zero(e):
            yield tr, "this has no buffers: all of its parameters are trainable, none non-trainable"
        else:
            yield 0, ("BatchNorm's running mean and variance are non-trainable parameters: 2C per "
                      "BatchNorm layer")
            yield self.norm(_sum_rows(target, "params")), (
                "that counts all of BatchNorm's parameters; non-trainable are only the running mean "
                "and variance (2C)")
        yield from self.batch_param_candidates(e)

    def batch_param_candidates(self, e):
        if self.batch > 1:
            yield e * self.batch, f"parameters do not depend on the batch size (batch {self.batch})"

    def bias_candidates(self, target, e):
        rows = [r for r in target.rows if r.kind in BIASED_KINDS]
        if not rows:
            return
        bias = self.bias_total(target)
        one = target.row is not None and len(target.rows) == 1
        if not _is_zero(bias):
            if one:
                unit = "feature" if rows[0].kind == "linear" else "channel"
                yield e - bias, (f"forgot the bias: one per output {unit} (+{_fmt(bias)}); "
                                 "params = (K1*K2*Cin/groups + 1)*Cout for a convolution, (in + 1)*out "
                                 "for a linear layer")
            else:
                yield e - bias, ("forgot the biases: every conv and linear layer with a bias adds one "
                                 f"per output channel or feature (+{_fmt(bias)} in all)")
        elif one:
            out = _out_units(rows[0])
            yield e + out, f"this layer has no bias (bias: false), so there is no +{_fmt(out)}"

    def bias_total(self, target):
        total = 0
        for row in target.rows:
            if row.kind in BIASED_KINDS and self.has_bias(row):
                total = total + _out_units(row)
        return self.norm(total)

    def has_bias(self, row) -> bool:
        node = self.nodes.get(row.name)
        if node is not None and "bias" in node.args:
            return bool(node.args["bias"])
        weights = self.weights(row)
        return weights is not None and not _is_zero(self.norm(row.params - weights))

    def weights(self, row):
        """A conv/linear layer's weight count, read off its MACs (MACs = positions x weights)."""
        if row.kind == "conv":
            positions = _prod(row.output_shape[1:])
        elif row.kind == "linear":
            positions = _prod(row.output_shape[:-1])
        elif row.kind == "conv_transpose":
            in_shape = self.input_shape(row)
            if in_shape is None:
                return None
            positions = _prod(in_shape[1:])
        else:
            return None
        return _div(row.macs, positions * self.batch)

    def input_shape(self, row):
        if not row.inputs:
            return None
        name = row.inputs[0]
        if name == "input":
            return tuple(self.report.input_shape)
        source = self.rows.get(name)
        return None if source is None else tuple(source.output_shape)

    def macs_candidates(self, target, e):
        yield 2 * e, "that is the FLOP count: FLOPs = 2 x MACs (a multiply-accumulate is two operations)"
        if self.batch > 1:
            yield _div(e, self.batch), f"MACs are for the whole batch: multiply by the batch size {self.batch}"
        additions = 0
        for row in target.rows:
            if row.kind in BIASED_KINDS and self.has_bias(row):
                additions = additions + self.batch * _prod(row.output_shape)
        if not _is_zero(additions):
            yield e + self.norm(additions), ("bias additions are not multiply-accumulates: MACs count "
                                             "only the multiplications by weights (as PyTorch's FlopCounterMode)")
        row = target.row
        if row is not None and len(target.rows) == 1 and row.kind in ("conv", "linear"):
            weights = self.weights(row)
            positions = _div(e, weights) if weights is not None and not _is_zero(weights) else None
            if positions is not None and not _is_zero(self.norm(positions - self.batch)):
                yield self.norm(weights), ("that is the number of weights: multiply by the number of output "
                                           "positions (MACs = M1*M2*K1*K2*Cin/groups*Cout)")
            for shape, text in self.window_shapes(row):
                yield self.norm(_div(e * _prod(shape[1:]), _prod(row.output_shape[1:]))), (
                    f"these MACs are for an output of {format_expected(shape, 'output_shape')}: {text}")

    def flops_candidates(self, target, e):
        yield _div(e, 2), "that is the MAC count: FLOPs = 2 x MACs"
        if self.batch > 1:
            yield _div(e, self.batch), f"FLOPs are for the whole batch: multiply by the batch size {self.batch}"
            yield _div(e, 2 * self.batch), (f"that is the MAC count of one example: FLOPs = 2 x MACs, "
                                            f"times the batch size {self.batch}")

    def activation_bytes_candidates(self, target, e):
        yield _div(e, self.bytes), (f"that is the number of values: multiply by {self.bytes} bytes per "
                                    f"{self.report.dtype} value")
        if self.batch > 1:
            yield _div(e, self.batch), f"activations are for the whole batch: multiply by the batch size {self.batch}"
            yield _div(e, self.bytes * self.batch), (f"that is the size of one example's output in values: "
                                                     f"multiply by the batch ({self.batch}) and {self.bytes} bytes")
        if target.row is None and len(self.report.layers) > 1:
            yield self.norm(self.report.layers[-1].activation_bytes), (
                "that is only the last layer's output; the total sums the outputs of every layer")

    def param_bytes_candidates(self, target, e):
        yield _div(e, self.bytes), (f"that is the parameter count: multiply by {self.bytes} bytes per "
                                    f"{self.report.dtype} value")
        t = self.report.totals
        if not _is_zero(self.norm(t.non_trainable_params)):
            yield self.norm(t.trainable_params * self.bytes), (
                "that counts only trainable parameters; the memory includes BatchNorm's running mean "
                "and variance too")

    # --- shapes ----------------------------------------------------------------------------
    def shape_candidates(self, target, e):
        e = tuple(e)
        if len(e) >= 2:
            yield e[1:] + e[:1], "archcalc writes shapes channels first: [C, H, W]"
        row = target.row
        if row is not None and len(target.rows) == 1:
            yield from self.window_shapes(row)

    def window_shapes(self, row):
        """Output shapes from the usual output-size mistakes of a convolution or pooling layer."""
        geometry = self.window_geometry(row)
        if geometry is None:
            return
        sizes, spans, strides, pads = geometry
        actual = tuple(row.output_shape)
        channels = actual[:1]

        def shape(f):
            return channels + tuple(self.norm(f(n, k, s, p)) for n, k, s, p in zip(sizes, spans, strides, pads))

        pad_text = _axes_text(pads)
        out = []
        if any(p != 0 for p in pads):
            out.append((shape(lambda n, k, s, p: (n - k - 1) // s + 1),
                        f"that is the size without padding ('valid'); this layer pads {pad_text}: {OUTPUT_FORMULA}"))
        out.append((shape(lambda n, k, s, p: (n + 2 * p - k - 1) // s),
                    f"off by one: {OUTPUT_FORMULA}; the + 1 counts the first window"))
        out.append((shape(lambda n, k, s, p: -((-(n + 2 * p - k - 1)) // s) + 1),
                    f"rounded up: {OUTPUT_FORMULA} rounds down (floor) unless ceil_mode is set"))
        out.append((shape(lambda n, k, s, p: (n - 1) // s + 1),
                    f"that is the size with 'same' padding (N/S); this layer pads {pad_text}: {OUTPUT_FORMULA}"))
        out.append((shape(lambda n, k, s, p: (n + 2 * p - k - 1) + 1),
                    f"forgot to divide by the stride {_axes_text(strides)}: {OUTPUT_FORMULA}"))
        if any(p != 0 for p in pads):
            out.append((shape(lambda n, k, s, p: (n + p - k - 1) // s + 1),
                        f"padding P is added on both sides (2P): {OUTPUT_FORMULA}"))
        seen = [actual]
        for candidate, text in out:
            if not any(shape_equal(candidate, s) for s in seen):
                seen.append(candidate)
                yield candidate, text

    def window_geometry(self, row):
        """(input sizes, D(K-1), stride, left padding) per spatial axis, read off the receptive
        fields of the layer and its input; None when they do not tell."""
        if row.kind not in WINDOW_KINDS or not isinstance(row.rf, RF) or not row.rf.regular:
            return None
        in_shape = self.input_shape(row)
        if in_shape is None or len(in_shape) != len(row.output_shape):
            return None
        in_rf = self.input_rf(row)
        if not isinstance(in_rf, RF) or not in_rf.regular or len(in_rf.size) != len(row.rf.size):
            return None
        spans, strides, pads = [], [], []
        for r0, j0, b0, r1, j1, b1 in zip(in_rf.size, in_rf.stride, in_rf.start, row.rf.size, row.rf.stride,
                                          row.rf.start):
            span, stride, pad = Fraction(r1 - r0, j0), Fraction(j1, j0), Fraction(b0 - b1, j0)
            if any(v.denominator != 1 for v in (span, stride, pad)):
                return None
            spans.append(int(span))
            strides.append(int(stride))
            pads.append(int(pad))
        return tuple(in_shape[1:]), spans, strides, pads

    def input_rf(self, row):
        source = row.inputs[0] if row.inputs else "input"
        if source == "input":
            return RF.identity(len(self.report.input_shape) - 1) if len(self.report.input_shape) > 1 else None
        source = self.rows.get(source)
        return None if source is None else source.rf

    def shape_fallback(self, value, target, expected) -> str | None:
        if not isinstance(value, Shape):
            return None
        if len(value.items) != len(expected):
            return (f"the output has {len(expected)} dimension{'s' if len(expected) != 1 else ''} "
                    "(batch excluded)")
        row = target.row
        if row is None or row.kind not in WINDOW_KINDS or len(expected) < 2:
            return None
        given = [_answer_value(v) for v in value.items]
        if given[0] != expected[0] and not _symbolic(given[0]):
            return None
        diffs = {self.norm(g - e) for g, e in zip(given[1:], expected[1:])}
        if len(diffs) == 1:
            d = diffs.pop()
            if not _symbolic(d) and d != 0:
                return (f"the spatial sizes are off by {d}: check the padding and {OUTPUT_FORMULA} "
                        "(without padding the output shrinks by D(K-1))")
        return None

    # --- receptive fields ------------------------------------------------------------------
    def rf_hint(self, value, target, expected) -> str | None:
        if expected is None:
            return ("the receptive field is not tracked here: after reshape, a permute of spatial axes "
                    "or a linear layer over several spatial axes, outputs no longer line up with input axes")
        if expected == GLOBAL:
            return ("every output here sees the whole input (after flatten, global pooling or a linear "
                    "layer over the last spatial axis): the answer is 'global'")
        if value.is_global:
            return "these outputs do not see the whole input yet; give the size of their window"
        candidates = []
        row = target.row
        size = tuple(expected.size)
        candidates.append(("size", tuple(expected.stride),
                           "that is the stride (jump) of the field, not its size"))
        geometry = self.window_geometry(row) if row is not None else None
        if geometry is not None:
            _, spans, strides, _ = geometry
            in_rf = self.input_rf(row)
            candidates.append(("size", tuple(in_rf.size),
                               "that is the field of this layer's input; this layer's window adds "
                               "D(K-1) j to it: r' = r + D(K-1) j"))
            candidates.append(("size", tuple(k + 1 for k in spans),
                               "that is this layer's own window; the field grows through every earlier "
                               "layer: r' = r + D(K-1) j, j being the product of the earlier strides"))
            candidates.append(("stride", tuple(strides),
                               "that is this layer's own stride; the field's stride (jump) multiplies "
                               "the strides of all layers up to here"))
            candidates.append(("start", tuple(-p for p in geometry[3]),
                               "that is this layer's own padding; the start accumulates through every "
                               "layer: start' = start - P j"))
        candidates.append(("start", (0,) * len(size),
                           "output 0's window begins in the padding: start' = start - P j is negative "
                           "where layers pad"))
        naive = self.unscaled_size(row) if row is not None else None
        if naive is not None and naive != size:
            candidates.append(("size", naive,
                               "forgot to scale by the jump: each layer adds D(K-1) times the product of "
                               "the strides before it (r' = r + D(K-1) j)"))
        for part, candidate, text in candidates:
            given = value.parts.get(part)
            if given is not None and tuple(candidate) != tuple(getattr(expected, part)) \
                    and _axes_match(given, candidate):
                return text
        return None

    def unscaled_size(self, row):
        """The field size if every layer's D(K-1) were added without multiplying by the jump
        (followed back along first inputs)."""
        total = None
        while row is not None:
            if not isinstance(row.rf, RF):
                return None
            source = row.inputs[0] if row.inputs else "input"
            in_rf = self.input_rf(row)
            if not isinstance(in_rf, RF) or len(in_rf.size) != len(row.rf.size) or not row.rf.regular \
                    or not in_rf.regular:
                return None
            spans = tuple(Fraction(r1 - r0, j0) for r0, r1, j0 in zip(in_rf.size, row.rf.size, in_rf.stride))
            total = spans if total is None else tuple(a + b for a, b in zip(total, spans))
            row = None if source == "input" else self.rows.get(source)
        return None if total is None else tuple(_plain(t + 1) for t in total)


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


def rf_matches(value, expected) -> bool | None:
    if not isinstance(value, RFAnswer):
        return False
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
    if isinstance(expected, tuple):
        return "[" + ", ".join(_fmt(v) for v in expected) + "]"
    return _fmt(expected)


def _axes_text(axes) -> str:
    axes = tuple(axes)
    if len(set(map(str, axes))) == 1:
        return _fmt(axes[0])
    return "[" + ", ".join(_fmt(v) for v in axes) + "]"


def _fmt(value) -> str:
    if isinstance(value, Fraction):
        return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


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


def _out_units(row):
    """Output channels (conv, conv_transpose) or features (linear): the bias count when biased."""
    return row.output_shape[-1] if row.kind == "linear" else row.output_shape[0]


def _csv_text(value) -> str:
    """A gradebook cell from a file name: one line, and not a spreadsheet formula (a name such
    as `=HYPERLINK(...)` would run as one): a leading = + - @ gets a quote, as OWASP advises."""
    from archcalc.errors import one_line

    text = one_line(str(value))
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


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
