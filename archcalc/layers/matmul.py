"""matmul: the product of two inputs (torch.matmul), as in attention's Q K^T and A V."""
from __future__ import annotations

from archcalc.errors import LayerError
from archcalc.layers.base import Arg, Layer, Saved, prod, register


def _text(shapes) -> str:
    return " @ ".join(str(list(s)) for s in shapes)


@register
class Matmul(Layer):
    kind = "matmul"
    arity = None  # the schema's "two or more"; output_shape insists on exactly two
    summary = "Matrix product of two inputs over their last two dims, leading dims broadcast (torch.matmul)"
    args = (Arg("transpose", "bool", False, doc="use the second input transposed in its last two dims (Q K^T)"),
            Arg("scale", "float", 1.0, doc="multiply the product by this constant (1/sqrt(d) in attention)"))
    formulas = {"output": "[..., M, N] for [..., M, K] @ [..., K, N] (leading dims broadcast)", "params": "0",
                "macs": "(output size)*K; scale is elementwise, not counted",
                "rf": "not tracked (mixes positions of both inputs)",
                "saved": "both inputs (mm/bmm keep each for the other's gradient); an input broadcast along a "
                         "leading dim is kept expanded, a copy of (leading)*its last two dims"}

    def _parts(self, a, shapes):
        """(M, K, N, leading dims) after torch.matmul's checks."""
        if len(shapes) != 2:
            raise LayerError(f"matmul takes exactly two inputs (from: [a, b]), got {len(shapes)}")
        x, y = shapes
        if len(x) < 2 or len(y) < 2:
            raise LayerError(f"matmul needs inputs of rank 2 or more (batch excluded), got {_text(shapes)}")
        if len(x) != len(y):
            raise LayerError(f"matmul needs inputs of the same rank (the batch dimension lines up in front), "
                             f"got {_text(shapes)}")
        if a["transpose"]:
            n, k2, which = y[-2], y[-1], "last size (transpose: true)"
        else:
            k2, n, which = y[-2], y[-1], "second-to-last size"
        if x[-1] != k2:
            raise LayerError(f"matmul needs the first input's last size to equal the second's {which}, "
                             f"got {x[-1]} and {k2} in {_text(shapes)}")
        lead = []
        for p, q in zip(x[:-2], y[:-2]):
            if p != q and p != 1 and q != 1:
                raise LayerError(f"matmul cannot broadcast the leading dims of {_text(shapes)}; expected "
                                 "equal sizes or 1 along every dim but the last two")
            lead.append(q if p == 1 else p)
        return x[-2], x[-1], n, tuple(lead)

    def output_shape(self, a, shapes):
        m, _, n, lead = self._parts(a, shapes)
        return lead + (m, n)

    def macs(self, a, shapes, out):
        return prod(out) * shapes[0][-1]

    def saved_tensors(self, a, shapes, out):
        # torch.matmul folds the leading dims into bmm, which keeps both operands (each for the
        # other's gradient; a transpose is a view). An operand broadcast along a leading dim is
        # expanded and copied by that fold, so the copy is what is kept; where the expansion and
        # fold are a view (a batch of 1; a parameter's stride-0 batch), the operand itself
        # (Saved.expand; a parameter without a batch dim copies where its leading dims are not 1).
        _, _, _, lead = self._parts(a, shapes)
        saved = []
        for i, (shape, name) in enumerate(zip(shapes, ("first input", "second input"))):
            other = (1 - i,)  # kept for the other operand's gradient only: not where it needs none
            if not lead:
                saved.append(Saved(name, of="input", index=i, for_grad_of=other))
            else:
                saved.append(Saved(f"{name} expanded to the leading dims (a copy)", elements=prod(lead) * prod(shape[-2:]),
                                   for_grad_of=other, index=i, expand=tuple(lead)))
        return saved

    def rf(self, a, rfs, shapes, out):
        return None

    def explain(self, a, shapes, out, rf_in, rf_out, row):
        from archcalc.layers import _explain as ex
        from archcalc.layers.base import Step

        k = shapes[0][-1]
        lead = "..., " if len(out) > 2 else ""
        notes = ["leading dims broadcast"] if shapes[0][:-2] != shapes[1][:-2] else []
        if a["transpose"]:
            notes.append("the second input transposed: [..., N, K]")
        macs_note = "" if a["scale"] == 1 else f"times {ex.val(a['scale'])} elementwise, not counted"
        product = f"{ex.shape_text(shapes[0])} @ {ex.shape_text(shapes[1])}{'^T' if a['transpose'] else ''}"
        return [ex.output_step(f"[{lead}M, N]", product, out,
                               note="; ".join(notes)),
                ex.zero("params"),
                Step("macs", f"{'(leading)*' if lead else ''}M*N*K", f"{ex.times(out)}*{ex.par(k)}",
                     prod(out) * k, note=macs_note),
                ex.rf_untracked("mixes positions of both inputs")]

    def torch_module(self, a, shapes):
        import torch
        from torch import nn

        class Matmul(nn.Module):
            def __init__(self, transpose, scale):
                super().__init__()
                self.transpose, self.scale = transpose, scale

            def forward(self, x, y):
                out = torch.matmul(x, y.transpose(-2, -1) if self.transpose else y)
                return out if self.scale == 1 else out * self.scale

            def extra_repr(self):
                return f"transpose={self.transpose}, scale={self.scale}"

            def export_expression(self, inputs):
                """The forward step as Python source over the inputs' variable names."""
                x, y = inputs
                text = f"torch.matmul({x}, {y}.transpose(-2, -1))" if self.transpose else f"torch.matmul({x}, {y})"
                return text if self.scale == 1 else f"{text} * {self.scale!r}"

        self._parts(a, shapes)
        return Matmul(a["transpose"], a["scale"])
