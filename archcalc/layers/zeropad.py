"""zeropad: pad the spatial axes with zeros (torch.nn.ZeroPad1d/2d/3d, F.pad's order)."""
from __future__ import annotations

from archcalc.geometry.receptive_field import RF, Reads
from archcalc.errors import LayerError
from archcalc.layers.base import Arg, Layer, register


@register
class ZeroPad(Layer):
    kind = "zeropad"
    keeps_memory_format = True
    probe_linear = True
    primary = "padding"
    summary = "Zero padding of the spatial axes; a list follows F.pad: last axis first, (left, right) pairs"
    args = (Arg("padding", "intlist", min=0,
                doc="one number for every side, or 2 per spatial axis, last axis first"),)
    formulas = {"output": "N + left + right per axis", "params": "0", "macs": "0",
                "rf": "r' = r, j' = j, start' = start - left j",
                "saved": "nothing (constant_pad_nd's backward needs only the padding)"}

    def saved_tensors(self, a, shapes, out):
        return []

    def _sides(self, a, shape):
        """Per spatial axis (first to last): (left, right)."""
        axes = self.spatial_axes(shape, "zeropad")
        pad = list(a["padding"])
        if len(pad) == 1:
            pad = pad * (2 * axes)
        if len(pad) != 2 * axes:
            raise LayerError(f"padding has {len(pad)} values; expected 1 or {2 * axes} "
                             f"(left, right for each of the {axes} spatial axes, last axis first)", "padding")
        pairs = [(pad[2 * i], pad[2 * i + 1]) for i in range(axes)]
        return pairs[::-1], pad

    def output_shape(self, a, shapes):
        sides, _ = self._sides(a, shapes[0])
        return shapes[0][:1] + tuple(n + lo + hi for n, (lo, hi) in zip(shapes[0][1:], sides))

    def rf(self, a, rfs, shapes, out):
        rf = rfs[0]
        if rf is None or rf == "global":
            return rf
        sides, _ = self._sides(a, shapes[0])
        if rf.regular:
            return RF(rf.size, rf.stride, tuple(b - lo * j for b, j, (lo, _) in zip(rf.start, rf.stride, sides)),
                      rf.misaligned)
        return rf.map([Reads.shift(-lo) for lo, _ in sides])

    def explain(self, a, shapes, out, rf_in, rf_out, row):
        from archcalc.layers import _explain as ex

        shape = shapes[0]
        sides, _ = self._sides(a, shape)
        axes = len(sides)
        items = [("N + left + right", f"{ex.val(n)} + {ex.par(lo)} + {ex.par(hi)}", n + lo + hi, "")
                 for n, (lo, hi) in zip(shape[1:], sides)]
        steps = ex.per_axis("output", items, axes)
        steps += [ex.output_step("[C, " + ", ".join(f"M{i + 1}" for i in range(axes)) + "]", ex.shape_text(out), out),
                  ex.zero("params"), ex.zero("macs")]
        rf = rf_in[0]
        if ex.rf_inherited(rf):
            return steps + [ex.rf_inherited(rf)]
        if rf.regular:
            triples = [(("r", "", r), ("j", "", j),
                        ("start - left*j", f"{ex.val(b)} - {ex.par(lo)}*{ex.par(j)}", b - lo * j))
                       for r, j, b, (lo, _) in zip(rf.size, rf.stride, rf.start, sides)]
            return steps + ex.rf_per_axis(triples, axes)
        jumps = [("j", "", j) for j in rf.stride]
        return steps + ex.rf_exact(rf, rf_out, "output o reads input o - left", jumps)

    def torch_module(self, a, shapes):
        from torch import nn

        _, pad = self._sides(a, shapes[0])
        return getattr(nn, f"ZeroPad{len(shapes[0]) - 1}d")(tuple(pad))
