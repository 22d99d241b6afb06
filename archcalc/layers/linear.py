"""linear: fully connected layer on the last dimension (torch.nn.Linear)."""
from __future__ import annotations

from archcalc.analysis.rf import GLOBAL
from archcalc.layers.base import Arg, Layer, prod, register


@register
class Linear(Layer):
    kind = "linear"
    probe_linear = True
    primary = "out"
    summary = "Fully connected layer acting on the last dimension (nn.Linear)"
    args = (Arg("out", "int", min=1, doc="output features"), Arg("bias", "bool", True))
    formulas = {
        "output": "[..., out]",
        "params": "(in + 1) * out   (in * out without bias)",
        "macs": "(positions) * in * out, positions = product of the leading dimensions",
        "rf": "global on [F] and [C, L] inputs; not tracked with 2+ spatial axes (only the last is mixed)",
    }

    def output_shape(self, a, shapes):
        return shapes[0][:-1] + (a["out"],)

    def params(self, a, shapes):
        return shapes[0][-1] * a["out"] + (a["out"] if a["bias"] else 0), 0

    def macs(self, a, shapes, out):
        return prod(shapes[0]) * a["out"]

    def rf(self, a, rfs, shapes, out):
        # On [F] or [C, L] it mixes the only spatial axis: every output sees the whole input. On
        # [C, H, W] it mixes W but not H, which a single size per axis cannot say: not tracked.
        return GLOBAL if rfs[0] is not None and len(shapes[0]) <= 2 else None

    def torch_module(self, a, shapes):
        from torch import nn

        return nn.Linear(shapes[0][-1], a["out"], bias=a["bias"])
