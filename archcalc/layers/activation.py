"""Activation kinds and other elementwise layers without parameters.

Each is one line in the table below: kind, PyTorch class, arguments, summary. Shapes, parameters
(none), MACs (none) and receptive fields (unchanged) are the elementwise defaults of `Layer`.
"""
from __future__ import annotations

from archcalc.analysis.rf import GLOBAL
from archcalc.layers.base import Arg, Layer, dim_index, register


class Elementwise(Layer):
    torch_class = ""
    formulas = {"output": "same as input", "params": "0", "macs": "0 (not a multiply-accumulate)",
                "rf": "unchanged"}

    def torch_module(self, a, shapes):
        from torch import nn

        return getattr(nn, self.torch_class)(**a)


def _elementwise(kind, torch_class, summary, args=(), primary=None):
    cls = type(kind.title().replace("_", ""), (Elementwise,), {
        "kind": kind, "torch_class": torch_class, "summary": summary, "args": args, "primary": primary,
        "__module__": __name__})
    register(cls)
    return cls


_elementwise("relu", "ReLU", "max(0, x)")
_elementwise("relu6", "ReLU6", "min(max(0, x), 6)")
_elementwise("leaky_relu", "LeakyReLU", "x if x > 0 else negative_slope * x",
             (Arg("negative_slope", "float", 0.01),), "negative_slope")
_elementwise("elu", "ELU", "x if x > 0 else alpha (exp(x) - 1)", (Arg("alpha", "float", 1.0),), "alpha")
_elementwise("gelu", "GELU", "x * Phi(x); approximate 'tanh' for the tanh form",
             (Arg("approximate", "choice", "none", choices=("none", "tanh")),), "approximate")
_elementwise("silu", "SiLU", "x * sigmoid(x) (swish)")
_elementwise("sigmoid", "Sigmoid", "1 / (1 + exp(-x))")
_elementwise("tanh", "Tanh", "hyperbolic tangent")
_elementwise("hardswish", "Hardswish", "x * relu6(x + 3) / 6")
_elementwise("hardsigmoid", "Hardsigmoid", "relu6(x + 3) / 6")
_elementwise("identity", "Identity", "passes its input through")


class SoftmaxLike(Elementwise):
    primary = "dim"
    probe_linear = False  # its own module is not linear: probe_module below stands in for it
    args = (Arg("dim", "int", 0, doc="dimension without the batch; 0 is channels (nn.Softmax(dim=1))"),)
    formulas = {"output": "same as input", "params": "0", "macs": "0",
                "rf": "unchanged along channels (dim 0); global when taken over the only spatial axis; "
                      "not tracked over one of several (each output sees that whole axis, a window along "
                      "the others)"}

    def output_shape(self, a, shapes):
        dim_index(a["dim"], len(shapes[0]))
        return shapes[0]

    def rf(self, a, rfs, shapes, out):
        if rfs[0] is None or dim_index(a["dim"], len(shapes[0])) == 0:
            return rfs[0]
        # Over a spatial axis every output sees that whole axis but only its window along the
        # others: "global" only where it is the one spatial axis (as for linear), else untracked.
        return GLOBAL if rfs[0] == GLOBAL or len(shapes[0]) == 2 else None

    def explain(self, a, shapes, out, rf_in, rf_out, row):
        from archcalc.layers import _explain as ex

        dim = dim_index(a["dim"], len(shapes[0]))
        steps = [ex.output_step("input shape", "", out), ex.zero("params"), ex.zero("macs")]
        if rf_in[0] is None or dim == 0:
            return steps + [ex.rf_unchanged(rf_in[0], "taken over the channels" if dim == 0 else "")]
        if rf_in[0] == GLOBAL or len(shapes[0]) == 2:
            return steps + [ex.rf_global(f"taken over spatial dim {dim}: each output depends on the whole axis")]
        return steps + [ex.rf_untracked(f"taken over spatial dim {dim} of several: each output sees that whole "
                                        "axis but a window along the others")]

    def torch_module(self, a, shapes):
        from torch import nn

        return getattr(nn, self.torch_class)(dim=dim_index(a["dim"], len(shapes[0])) + 1)

    def probe_module(self, a, shapes):
        # The receptive-field probe needs a linear, positive stand-in with the same dependence:
        # every output reads every input along dim. Softmax itself is not one: over the probe's
        # single channel it is the constant 1 (log_softmax 0) and passes no gradient at all.
        from torch import nn

        dim = dim_index(a["dim"], len(shapes[0])) + 1

        class AlongDim(nn.Module):
            def forward(self, x):
                return x + x.sum(dim=dim, keepdim=True)

        return AlongDim()


@register
class Softmax(SoftmaxLike):
    kind = "softmax"
    torch_class = "Softmax"
    summary = "exp(x) / sum(exp(x)) along dim"


@register
class LogSoftmax(SoftmaxLike):
    kind = "log_softmax"
    torch_class = "LogSoftmax"
    summary = "log of softmax along dim"
