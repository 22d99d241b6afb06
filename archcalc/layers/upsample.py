"""upsample: resize the spatial axes by a scale or to a size (torch.nn.Upsample)."""
from __future__ import annotations

import math
from fractions import Fraction

from archcalc.geometry.receptive_field import Reads
from archcalc.errors import LayerError
from archcalc.layers.base import Arg, Layer, register

_MODE_AXES = {"nearest": (1, 2, 3), "linear": (1,), "bilinear": (2,), "bicubic": (2,), "trilinear": (3,)}
_TAPS = {"nearest": 1, "linear": 2, "bilinear": 2, "bicubic": 4, "trilinear": 2}


@register
class Upsample(Layer):
    kind = "upsample"
    keeps_memory_format = True
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
        "rf": "largest over outputs: r' = r + (taps-1) j with taps 1 (nearest; or where the source "
              "falls on a pixel), 2 (linear), 4 (bicubic); j' = j / scale (N/M with size); start' = start + "
              "j floor(source of output 0), the source as PyTorch maps it",
        "saved": "nothing (upsample_*'s backward needs only sizes and scales)",
    }

    def saved_tensors(self, a, shapes, out):
        return []

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
        steps = []
        for axis in range(axes):
            n, m = shapes[0][1 + axis], out[1 + axis]
            steps.append(self._axis_reads(a, n, m, scale[axis] if scale else None))
        return rf.map(steps)

    def explain(self, a, shapes, out, rf_in, rf_out, row):
        from fractions import Fraction

        from archcalc.layers import _explain as ex

        shape = shapes[0]
        axes, scale = self._check(a, shape)
        items = []
        for i, (n, m) in enumerate(zip(shape[1:], out[1:])):
            if scale is None:
                items.append(("size", "", self.per_axis(a["size"], axes, "size")[i], ""))
            elif isinstance(scale[i], int):
                items.append(("N*scale", f"{ex.val(n)}*{ex.par(scale[i])}", n * scale[i], ""))
            else:
                items.append(("floor(N*scale)", f"floor({ex.val(n)}*{ex.par(scale[i])})", math.floor(n * scale[i]), ""))
        steps = ex.per_axis("output", items, axes)
        steps += [ex.output_step("[C, " + ", ".join(f"M{i + 1}" for i in range(axes)) + "]", ex.shape_text(out), out),
                  ex.zero("params"), ex.zero("macs", "interpolation weights are not counted")]
        rf = rf_in[0]
        if ex.rf_inherited(rf):
            return steps + [ex.rf_inherited(rf)]
        if not isinstance(rf_out, ex.RF):
            return steps + [ex.rf_untracked(ex.untracked_reason(rf))]
        jumps, reads0 = [], []
        for i, (j, n, m) in enumerate(zip(rf.stride, shape[1:], out[1:])):
            reads = self._axis_reads(a, n, m, scale[i] if scale else None)
            q, Q = reads.a, reads.b
            if a["align_corners"]:
                formula, subs = "j*(N-1)/(M-1)", f"{ex.par(j)}*({ex.val(n)}-1)/({ex.val(m)}-1)"
            elif scale is not None:
                formula, subs = "j/scale", f"{ex.par(j)}/{ex.par(scale[i])}"
            else:
                formula, subs = "j*N/M", f"{ex.par(j)}*{ex.val(n)}/{ex.val(m)}"
            jumps.append((formula, subs, ex.exact(Fraction(j) * Fraction(Q, q))))
            first, step, count = reads.at(0)
            reads0.append(range(first, first + step * count, step))
        taps = _TAPS[a["mode"]]
        source = ("o*(N-1)/(M-1)" if a["align_corners"] else "o/scale, floored" if a["mode"] == "nearest"
                  else "(o + 1/2)/scale - 1/2")
        if scale is None and not a["align_corners"]:
            source = source.replace("/scale", "*N/M")
        words = (f"output o reads {taps} pixel{'s' if taps > 1 else ''} around its source {source}"
                 + (" (only that pixel where the source falls on one)" if taps > 1 else ""))
        notes = [f"output 0 reads pixel{'s' if len(r) > 1 else ''} {', '.join(map(str, r))}" for r in reads0]
        return steps + ex.rf_exact(rf, rf_out, words, jumps, notes)

    @staticmethod
    def _axis_reads(a, n, m, scale) -> Reads:
        """The input pixels output o reads with nonzero weight, as PyTorch maps coordinates: the
        source of output o is `o * ratio` ('nearest', floored), `(o + 1/2) ratio - 1/2` (linear
        modes) or `o (N-1)/(M-1)` (align_corners), ratio being 1/scale when a scale is given,
        else N/M; a source falling exactly on a pixel gives its neighbours weight 0. Clamping at
        the edges is left out (like padding, it only touches the border outputs). Sources are
        kept as integer fractions num/den, so that a period of 10^9 outputs costs nothing."""
        if a["align_corners"]:
            ratio = Fraction(n - 1, m - 1) if m > 1 else Fraction(0)
        else:
            # The scale as written (1.1 is 11/10), not its binary approximation.
            ratio = 1 / Fraction(str(scale)) if scale is not None else Fraction(n, m)
        num, den = ratio.numerator, ratio.denominator
        taps = _TAPS[a["mode"]]
        if a["mode"] == "nearest":
            return Reads(lambda o: (o * num // den, 1, 1), den, num, 0)

        def source(o):  # (numerator, denominator) of output o's source coordinate
            return (o * num, den) if a["align_corners"] else ((2 * o + 1) * num - den, 2 * den)

        def at(o):
            top, bottom = source(o)
            whole = top // bottom
            if top % bottom == 0:
                return whole, 1, 1
            return whole - (taps // 2 - 1), 1, taps

        # A source on a pixel at outputs 0 and 1 means ratio and its offset are whole: every
        # source is; otherwise some output reads all the taps.
        on_pixel = all(top % bottom == 0 for top, bottom in map(source, (0, 1)))
        return Reads(at, den, num, 0 if on_pixel else taps - 1)

    def torch_module(self, a, shapes):
        from torch import nn

        axes, scale = self._check(a, shapes[0])
        size = self.per_axis(a["size"], axes, "size") if a["size"] is not None else None
        return nn.Upsample(size=size, scale_factor=tuple(float(s) for s in scale) if scale else None,
                           mode=a["mode"], align_corners=a["align_corners"])
