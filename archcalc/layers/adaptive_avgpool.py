"""adaptive_avgpool: average pooling to a fixed output size (torch.nn.AdaptiveAvgPool1d/2d/3d)."""
from __future__ import annotations

import math

from archcalc.geometry.receptive_field import GLOBAL, Reads
from archcalc.layers.base import Arg, Layer, Saved, register


@register
class AdaptiveAvgPool(Layer):
    kind = "adaptive_avgpool"
    keeps_memory_format = True
    probe_linear = True
    primary = "size"
    summary = "Average pooling to a given output size (nn.AdaptiveAvgPool1d/2d/3d)"
    args = (Arg("size", "ints", min=1, doc="output size, one value or one per axis"),)
    formulas = {
        "output": "[C, size...]",
        "params": "0",
        "macs": "0",
        "rf": "window i spans floor(i N/M) .. ceil((i+1) N/M) - 1, exact per output; reported: the "
              "widest, j' = j N/M, start of output 0",
        "saved": "its input (_adaptive_avg_pool: self); nothing for size 1 on every axis (aten takes "
                 "the mean, which keeps only shapes)",
    }

    def saved_tensors(self, a, shapes, out):
        return [] if all(n == 1 for n in out[1:]) else [Saved("input", "input")]

    def output_shape(self, a, shapes):
        axes = self.spatial_axes(shapes[0], self.kind)
        return shapes[0][:1] + self.per_axis(a["size"], axes, "size")

    def rf(self, a, rfs, shapes, out):
        rf = rfs[0]
        if rf is None or rf == GLOBAL:
            return rf
        if all(m == 1 for m in out[1:]):
            return GLOBAL
        return rf.map([_adaptive_reads(n, m) for n, m in zip(shapes[0][1:], out[1:])])

    def explain(self, a, shapes, out, rf_in, rf_out, row):
        from fractions import Fraction

        from archcalc.layers import _explain as ex

        shape = shapes[0]
        axes = len(shape) - 1
        steps = [ex.output_step("[C, size]", ex.shape_text(shape[:1] + tuple(self.per_axis(a["size"], axes, "size"))),
                                out), ex.zero("params"), ex.zero("macs")]
        rf = rf_in[0]
        if ex.rf_inherited(rf):
            return steps + [ex.rf_inherited(rf)]
        if all(ex.val(m) == "1" for m in out[1:]):
            return steps + [ex.rf_global("pooled to size 1: every output sees the whole input")]
        jumps = [("j*N/M", f"{ex.par(j)}*{ex.val(n)}/{ex.val(m)}", ex.exact(Fraction(j) * n / m))
                 for j, n, m in zip(rf.stride, shape[1:], out[1:])]
        return steps + ex.rf_exact(rf, rf_out, "window i spans floor(i*N/M) .. ceil((i+1)*N/M) - 1", jumps)

    def torch_module(self, a, shapes):
        from torch import nn

        axes = len(shapes[0]) - 1
        return getattr(nn, f"AdaptiveAvgPool{axes}d")(self.per_axis(a["size"], axes, "size"))


def _adaptive_reads(n, m) -> Reads:
    """PyTorch's window i: floor(i N / M) .. ceil((i + 1) N / M) - 1. Its length is
    ceil(frac(i N / M) + N / M), and frac(i N / M) takes every multiple of g / M below 1 (g =
    gcd(N, M)): the widest is ceil((M - g + N) / M)."""
    g = math.gcd(n, m)

    def at(o):
        first = o * n // m
        return first, 1, -(-(o + 1) * n // m) - first

    return Reads(at, m // g, n // g, -(-(m - g + n) // m) - 1)
