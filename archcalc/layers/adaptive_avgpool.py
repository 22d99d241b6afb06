"""adaptive_avgpool: average pooling to a fixed output size (torch.nn.AdaptiveAvgPool1d/2d/3d)."""
from __future__ import annotations

from fractions import Fraction

from archcalc.analysis.rf import GLOBAL, RF
from archcalc.layers.base import Arg, Layer, register


@register
class AdaptiveAvgPool(Layer):
    kind = "adaptive_avgpool"
    probe_linear = True
    primary = "size"
    summary = "Average pooling to a given output size (nn.AdaptiveAvgPool1d/2d/3d)"
    args = (Arg("size", "ints", min=1, doc="output size, one value or one per axis"),)
    formulas = {
        "output": "[C, size...]",
        "params": "0",
        "macs": "0",
        "rf": "window i spans floor(i N/M) .. ceil((i+1) N/M); the largest window is reported, "
              "j' = j N/M (exact when M divides N)",
    }

    def output_shape(self, a, shapes):
        axes = self.spatial_axes(shapes[0], self.kind)
        return shapes[0][:1] + self.per_axis(a["size"], axes, "size")

    def rf(self, a, rfs, shapes, out):
        rf = rfs[0]
        if rf is None or rf == GLOBAL:
            return rf
        if all(m == 1 for m in out[1:]):
            return GLOBAL
        size, jump = [], []
        for r, j, n, m in zip(rf.size, rf.stride, shapes[0][1:], out[1:]):
            window = max(-(-(i + 1) * n // m) - (i * n // m) for i in range(m))
            size.append(r + (window - 1) * j)
            step = Fraction(n, m)
            jump.append(j * (step.numerator if step.denominator == 1 else step))
        return RF(tuple(size), tuple(jump), rf.start, rf.misaligned)

    def torch_module(self, a, shapes):
        from torch import nn

        axes = len(shapes[0]) - 1
        return getattr(nn, f"AdaptiveAvgPool{axes}d")(self.per_axis(a["size"], axes, "size"))
