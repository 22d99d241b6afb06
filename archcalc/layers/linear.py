"""linear: fully connected layer on the last dimension (torch.nn.Linear)."""
from __future__ import annotations

from archcalc.geometry.receptive_field import GLOBAL
from archcalc.layers.base import Arg, Layer, Saved, prod, register


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
        "saved": "its input (addmm/mm: mat1, the input as [positions, in]; the weight is a parameter); "
                 "nothing with trainable: false (mat1 is kept only for the weight's gradient)",
    }
    saves_input_for_weights = True
    saves_input_as_matrix = True

    def saved_tensors(self, a, shapes, out):
        return [Saved("input", "input")]

    def output_shape(self, a, shapes):
        return shapes[0][:-1] + (a["out"],)

    def params(self, a, shapes):
        return shapes[0][-1] * a["out"] + (a["out"] if a["bias"] else 0), 0

    def macs(self, a, shapes, out):
        return prod(shapes[0]) * a["out"]

    def mixed_dims(self, a, shapes):
        return (len(shapes[0]) - 1,)  # the last dimension only

    def rf(self, a, rfs, shapes, out):
        # On [F] or [C, L] it mixes the only spatial axis: every output sees the whole input. On
        # [C, H, W] it mixes W but not H, which a single size per axis cannot say: not tracked.
        return GLOBAL if rfs[0] is not None and len(shapes[0]) <= 2 else None

    def explain(self, a, shapes, out, rf_in, rf_out, row):
        from archcalc.layers import _explain as ex
        from archcalc.layers.base import Step

        shape = shapes[0]
        nin, nout = shape[-1], a["out"]
        lead = ", ".join(ex.dim_names(len(shape))[:-1])
        steps = [ex.output_step(f"[{lead + ', ' if lead else ''}Nout]", ex.shape_text(out), out)]
        if a["bias"]:
            steps.append(Step("params", "(Nin + 1)*Nout", f"({ex.val(nin)} + 1)*{ex.par(nout)}", (nin + 1) * nout))
        else:
            steps.append(Step("params", "Nin*Nout", f"{ex.par(nin)}*{ex.par(nout)}", nin * nout, note="no bias"))
        if len(shape) == 1:
            steps.append(Step("macs", "Nin*Nout", f"{ex.par(nin)}*{ex.par(nout)}", nin * nout))
        else:
            steps.append(Step("macs", "positions*Nin*Nout", f"{ex.times(shape[:-1])}*{ex.par(nin)}*{ex.par(nout)}",
                              prod(shape) * nout, note="positions: the product of the leading dimensions"))
        rf = rf_in[0]
        if rf is None and len(shape) == 1:
            steps.append(ex.rf_untracked("no spatial axes"))
        elif rf is None or rf == "global":
            steps.append(ex.rf_inherited(rf))
        elif len(shape) <= 2:
            steps.append(ex.rf_global("mixes the only spatial axis: every output sees the whole input"))
        else:
            steps.append(ex.rf_untracked("mixes the last axis but not the others: not one window per axis"))
        return steps

    def torch_module(self, a, shapes):
        from torch import nn

        return nn.Linear(shapes[0][-1], a["out"], bias=a["bias"])
