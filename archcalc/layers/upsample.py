"""upsample: resize the spatial axes by a scale or to a size (torch.nn.Upsample)."""
from __future__ import annotations

import math
from fractions import Fraction

from archcalc.analysis.rf import RF
from archcalc.errors import LayerError
from archcalc.layers.base import Arg, Layer, register

_MODE_AXES = {"nearest": (1, 2, 3), "linear": (1,), "bilinear": (2,), "bicubic": (2,), "trilinear": (3,)}
_TAPS = {"nearest": 1, "linear": 2, "bilinear": 2, "bicubic": 4, "trilinear": 2}


@register
class Upsample(Layer):
    kind = "upsample"
    probe_linear = True
    primary = "scale"
    summary = "Upsampling by a scale factor or to a size (nn.Upsample)"
    args = (
        Arg("scale", "floats", None, doc="scale factor, one or one per axis (give scale or size)"),
        Arg("size", "ints", None, min=1, doc="output size, one or one per axis"),
        Arg("mode", "choice", "nearest", choices=tuple(_MODE_AXES)),
        Arg("align_corners", "bool", None, doc="for linear modes only"),
    )
    formulas = {
        "output": "floor(N * scale) per axis, or size",
        "params": "0",
        "macs": "0 (interpolation weights are not counted)",
        "rf": "largest over outputs: r' = r + (taps-1) j with taps 1 (nearest), 2 (linear), 4 (bicubic); "
              "j' = j / scale",
    }

    def _check(self, a, shape):
        axes = self.spatial_axes(shape, "upsample")
        if (a["scale"] is None) == (a["size"] is None):
            raise LayerError("give exactly one of 'scale' and 'size'", "scale")
        if axes not in _MODE_AXES[a["mode"]]:
            raise LayerError(f"mode '{a['mode']}' needs {_MODE_AXES[a['mode']][0]} spatial axes; "
                             f"the input has {axes}", "mode")
        if a["align_corners"] is not None and a["mode"] == "nearest":
            raise LayerError("align_corners only applies to the linear modes", "align_corners")
        if a["scale"] is not None:
            scale = self.per_axis(a["scale"], axes, "scale")
            if any(s <= 0 for s in scale):
                raise LayerError(f"scale must be positive, got {a['scale']}", "scale")
            return axes, scale
        return axes, None

    def output_shape(self, a, shapes):
        axes, scale = self._check(a, shapes[0])
        if scale is None:
            return shapes[0][:1] + self.per_axis(a["size"], axes, "size")
        # PyTorch computes floor(N * scale) in double precision; Python floats are doubles.
        sizes = tuple(n * s if isinstance(s, int) else math.floor(n * s) for n, s in zip(shapes[0][1:], scale))
        if any(m < 1 for m in sizes):
            raise LayerError(f"scale {a['scale']} makes the output empty", "scale")
        return shapes[0][:1] + sizes

    def rf(self, a, rfs, shapes, out):
        rf = rfs[0]
        if rf is None or rf == "global":
            return rf
        axes, scale = self._check(a, shapes[0])
        if scale is None:
            ratios = [Fraction(n, m) for n, m in zip(shapes[0][1:], out[1:])]
        else:
            ratios = [1 / Fraction(s) for s in scale]
        taps = _TAPS[a["mode"]]
        return RF(tuple(r + (taps - 1) * j for r, j in zip(rf.size, rf.stride)),
                  tuple(_exact(j * q) for j, q in zip(rf.stride, ratios)), rf.start, rf.misaligned)

    def torch_module(self, a, shapes):
        from torch import nn

        axes, scale = self._check(a, shapes[0])
        size = self.per_axis(a["size"], axes, "size") if a["size"] is not None else None
        return nn.Upsample(size=size, scale_factor=tuple(float(s) for s in scale) if scale else None,
                           mode=a["mode"], align_corners=a["align_corners"])


def _exact(q):
    q = Fraction(q)
    return q.numerator if q.denominator == 1 else q
