"""What the mistake rules read off the analysed network: values in the student's symbols, a layer's
weights and bias, its window geometry (read off the receptive fields), its input."""
from __future__ import annotations

from fractions import Fraction

from archcalc.analysis.report import DTYPE_BYTES
from archcalc.geometry.receptive_field import GLOBAL, RF
from archcalc.homework.check import _div, _from_sympy, _is_zero, _plain, _prod, _symbolic

BIASED_KINDS = ("conv", "conv_transpose", "linear")
WINDOW_KINDS = ("conv", "maxpool", "avgpool")
DENSE_KINDS = ("linear",)  # every output a weighted sum of every input feature


class Network:
    def __init__(self, report, graph=None, bindings=None):
        self.report = report
        self.graph = graph
        self.bindings = dict(bindings or {})
        self.rows = {row.name: row for row in report.layers}
        self.nodes = {node.name: node for node in graph.nodes} if graph is not None else {}
        self.back = dict(getattr(graph, "back", None) or {})
        self.bytes = DTYPE_BYTES.get(report.dtype, 4)
        self.batch = report.batch
        self._symbols = None

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

    # --- values in the student's symbols -------------------------------------------------------
    def norm(self, value):
        """A value as int, Fraction, float or a sympy expression in the user's symbols
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
        if self.bindings:
            value = value.xreplace({sympy.Symbol(k, integer=True, positive=True): sympy.Integer(v)
                                    for k, v in self.bindings.items()})
        return _from_sympy(value)

    def norm_rf(self, rf):
        if rf is None or rf == GLOBAL:
            return rf
        return RF(tuple(self.norm(v) for v in rf.size), tuple(self.norm(v) for v in rf.stride),
                  tuple(self.norm(v) for v in rf.start), rf.misaligned)

    # --- layers ----------------------------------------------------------------------------------
    def biased(self, rows) -> list:
        """The rows among `rows` that have a bias."""
        return [r for r in rows if r.kind in BIASED_KINDS and self.has_bias(r)]

    def bias_total(self, rows):
        total = 0
        for row in self.biased(rows):
            total = total + out_units(row)
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

    def input_rf(self, row):
        source = row.inputs[0] if row.inputs else "input"
        if source == "input":
            return RF.identity(len(self.report.input_shape) - 1) if len(self.report.input_shape) > 1 else None
        source = self.rows.get(source)
        return None if source is None else source.rf

    def window_geometry(self, row):
        """(input sizes, D(K-1), stride, left padding) per spatial axis, read off the receptive
        fields of the layer and its input; None when they do not tell."""
        if row is None or row.kind not in WINDOW_KINDS or not isinstance(row.rf, RF) or not row.rf.regular:
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

    @property
    def vector_input(self) -> bool:
        """The input is a vector ([784]: features, no spatial axes), as an MLP's; not token ids
        ({tokens: [35]}: 35 positions of a sequence, which an LSTM or attention mixes)."""
        if len(self.report.input_shape) != 1:
            return False
        if self.graph is not None:
            return not getattr(self.graph, "tokens", False)
        return not any(r.kind == "embedding" and "input" in r.inputs for r in self.report.layers)

    def sees_every_feature(self, row) -> bool:
        """On a vector input, whether every output of `row` depends on every input feature: a
        linear layer (each output a weighted sum of all its inputs) at or before it."""
        if not self.vector_input:
            return False
        seen, todo = set(), [row]
        while todo:
            r = todo.pop()
            if r is None or r.name in seen:
                continue
            seen.add(r.name)
            if r.kind in DENSE_KINDS and len(self.input_shape(r) or ()) == 1:
                return True  # a linear layer over the whole vector (not per position of [T, F])
            todo.extend(self.rows.get(name) for name in r.inputs if name != "input")
        return False

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


def out_units(row):
    """Output channels (conv, conv_transpose) or features (linear): the bias count when biased."""
    return row.output_shape[-1] if row.kind == "linear" else row.output_shape[0]
