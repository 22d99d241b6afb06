"""prelu: leaky ReLU with a learned slope, shared or one per channel (torch.nn.PReLU)."""
from __future__ import annotations

from archcalc.errors import LayerError
from archcalc.layers.base import Arg, Layer, Saved, register


@register
class PReLU(Layer):
    kind = "prelu"
    keeps_layout = True
    primary = "num_parameters"
    summary = "x if x > 0 else a * x with learned a: one shared, or one per channel (nn.PReLU)"
    args = (Arg("num_parameters", "int", 1, min=1, doc="1, or the number of channels"),
            Arg("init", "float", 0.25))
    formulas = {"output": "same as input", "params": "num_parameters (1 or C)", "macs": "0",
                "rf": "unchanged", "saved": "its input (_prelu_kernel: self, weight; the weight is a parameter)"}

    def saved_tensors(self, a, shapes, out):
        return [Saved("input", "input")]

    def output_shape(self, a, shapes):
        n, c = a["num_parameters"], shapes[0][0]
        if n != 1 and n != c:
            raise LayerError(f"num_parameters is {n}; expected 1 or the {c} input channels", "num_parameters")
        return shapes[0]

    def params(self, a, shapes):
        return a["num_parameters"], 0

    def explain(self, a, shapes, out, rf_in, rf_out, row):
        from archcalc.layers import _explain as ex
        from archcalc.layers.base import Step

        n = a["num_parameters"]
        params = (Step("params", "1", "", n, note="one slope shared by all channels") if n == 1
                  else Step("params", "C", ex.val(shapes[0][0]), n, note="one slope per channel"))
        return [ex.output_step("input shape", "", out), params, ex.zero("macs"), ex.rf_unchanged(rf_in[0])]

    def torch_module(self, a, shapes):
        from torch import nn

        return nn.PReLU(a["num_parameters"], init=a["init"])
