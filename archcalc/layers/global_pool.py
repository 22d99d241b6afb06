"""global_avgpool / global_maxpool: pool each channel to one value, keeping size-1 axes
(torch.nn.AdaptiveAvgPool/AdaptiveMaxPool with output size 1, as torchvision's nets use)."""
from __future__ import annotations

from archcalc.geometry.receptive_field import GLOBAL
from archcalc.layers.base import Layer, Saved, prod, register


class GlobalPool(Layer):
    torch_name = ""
    keeps_memory_format = True
    probe_linear = True
    formulas = {"output": "[C, 1, 1, ...]", "params": "0", "macs": "0", "rf": "global"}

    def output_shape(self, a, shapes):
        axes = self.spatial_axes(shapes[0], self.kind)
        return shapes[0][:1] + (1,) * axes

    def rf(self, a, rfs, shapes, out):
        return None if rfs[0] is None else GLOBAL

    def explain(self, a, shapes, out, rf_in, rf_out, row):
        from archcalc.layers import _explain as ex

        what = "average" if self.kind == "global_avgpool" else "maximum"
        steps = [ex.output_step("[C" + ", 1" * (len(out) - 1) + "]", "", out,
                                note=f"the {what} of each channel; size-1 axes kept"),
                 ex.zero("params"), ex.zero("macs")]
        rf = ex.rf_inherited(rf_in[0]) if rf_in[0] is None else ex.rf_global("every output sees the whole input")
        return steps + [rf]

    def torch_module(self, a, shapes):
        from torch import nn

        axes = len(shapes[0]) - 1
        return getattr(nn, f"{self.torch_name}{axes}d")(1)


@register
class GlobalAvgPool(GlobalPool):
    kind = "global_avgpool"
    summary = "Average of each channel over all spatial positions"
    torch_name = "AdaptiveAvgPool"
    formulas = {**GlobalPool.formulas, "saved": "nothing (adaptive_avg_pool to size 1 is a mean, which keeps "
                                                "only shapes)"}

    def saved_tensors(self, a, shapes, out):
        return []


@register
class GlobalMaxPool(GlobalPool):
    kind = "global_maxpool"
    summary = "Maximum of each channel over all spatial positions"
    torch_name = "AdaptiveMaxPool"
    formulas = {**GlobalPool.formulas, "saved": "its input + the argmax indices, int64 (8 B), C per example "
                                                "(adaptive_max_pool: self, indices)"}

    def saved_tensors(self, a, shapes, out):
        return [Saved("input", "input"), Saved("indices", elements=prod(out), itemsize=8)]

    def probe_module(self, a, shapes):
        """A max passes gradient to one pixel; the probe needs all it reads: average instead."""
        from torch import nn

        return getattr(nn, f"AdaptiveAvgPool{len(shapes[0]) - 1}d")(1)
