"""Activation kinds and other elementwise layers without parameters.

Each is one line in the table below: kind, PyTorch class, arguments (PyTorch's names, defaults and
ranges), the formula. Shapes, parameters (none), MACs (none) and receptive fields (unchanged) are
the elementwise defaults of `Layer`; `explain` writes the formula with the arguments' values.
"""
from __future__ import annotations

from archcalc.geometry.receptive_field import GLOBAL
from archcalc.errors import LayerError
from archcalc.layers.base import Arg, Layer, Saved, dim_index, prod, register


#: What each kind's autograd node keeps for backward (eager PyTorch 2.13 on CPU, measured by
#: `archcalc verify --memory`; torch's derivatives.yaml: `relu: result`, `gelu: self`...), in the
#: order saved: "input" (its input, `self`), "output" (its result), "temp" (an intermediate as large
#: as the input, made inside the layer and kept by it alone: Elementwise.temp names it).
SAVED_WORDS = {"input": "its input", "output": "its output", "temp": "one tensor of the input's size made inside"}


def saved_text(saves: tuple, temp: str = "") -> str:
    """The `saved` formula of an elementwise kind: what autograd keeps, in words."""
    if not saves:
        return "nothing"
    return " + ".join(SAVED_WORDS[w] + (f" ({temp})" if w == "temp" and temp else "") for w in saves)


class Elementwise(Layer):
    torch_class = ""
    formulas = {"output": "same as input", "params": "0", "macs": "0 (not a multiply-accumulate)",
                "rf": "unchanged", "saved": "its input"}
    saves: tuple = ("input",)  # see SAVED_WORDS
    keeps_layout = True
    temp: str = ""

    def saved_tensors(self, a, shapes, out):
        return [Saved("input", "input") if w == "input" else Saved("output", "output") if w == "output"
                else Saved(self.temp or "temp", elements=prod(out)) for w in self.saves]

    def check(self, a) -> None:
        """Rules between arguments that PyTorch refuses (a range of one argument is its Arg's)."""

    def output_shape(self, a, shapes):
        self.check(a)
        return shapes[0]

    def mixed_dims(self, a, shapes):
        return ()  # one value in, one value out

    def explain(self, a, shapes, out, rf_in, rf_out, row):
        from dataclasses import replace

        from archcalc.layers._explain import elementwise_steps, val

        steps = elementwise_steps(shapes, out, rf_in, rf_out)
        values = ", ".join(f"{arg.name} = {val(a[arg.name])}" for arg in self.args)
        return [replace(steps[0], note=f"y = {self.summary}" + (f"; {values}" if values else ""))] + steps[1:]

    def torch_module(self, a, shapes):
        from torch import nn

        return getattr(nn, self.torch_class)(**a)


def _elementwise(kind, torch_class, summary, args=(), primary=None, check=None, saves=("input",), temp=""):
    attrs = {"kind": kind, "torch_class": torch_class, "summary": summary, "args": args, "primary": primary,
             "__module__": __name__, "saves": saves, "temp": temp,
             "formulas": {**Elementwise.formulas, "saved": saved_text(saves, temp)}}
    if check is not None:
        attrs["check"] = lambda self, a: check(a)
    cls = type(kind.title().replace("_", ""), (Elementwise,), attrs)
    register(cls)
    return cls


def _ordered(low: str, high: str, strict: bool):
    """A check that argument `low` lies below `high` (or at it, unless `strict`), blamed on `high`."""
    def check(a):
        if a[low] > a[high] or strict and a[low] == a[high]:
            raise LayerError(f"'{high}' is {a[high]} but '{low}' is {a[low]}; expected {high} "
                             f"{'>' if strict else '>='} {low}", high)
    return check


def _nonzero(name: str, why: str):
    def check(a):
        if a[name] == 0:
            raise LayerError(f"'{name}' is 0; expected a nonzero number ({why})", name)
    return check


_OUT, _NONE = ("output",), ()
_elementwise("relu", "ReLU", "max(0, x)", saves=_OUT)
_elementwise("relu6", "ReLU6", "min(max(0, x), 6)")
_elementwise("leaky_relu", "LeakyReLU", "x if x > 0 else negative_slope * x",
             (Arg("negative_slope", "float", 0.01),), "negative_slope")
_elementwise("elu", "ELU", "x if x > 0 else alpha (exp(x) - 1)", (Arg("alpha", "float", 1.0),), "alpha")
_elementwise("gelu", "GELU", "x * Phi(x); approximate 'tanh' for the tanh form",
             (Arg("approximate", "choice", "none", choices=("none", "tanh")),), "approximate")
_elementwise("silu", "SiLU", "x * sigmoid(x) (swish)")
_elementwise("sigmoid", "Sigmoid", "1 / (1 + exp(-x))", saves=_OUT)
_elementwise("tanh", "Tanh", "hyperbolic tangent", saves=_OUT)
_elementwise("hardswish", "Hardswish", "x * relu6(x + 3) / 6")
_elementwise("hardsigmoid", "Hardsigmoid", "relu6(x + 3) / 6")
_IDENTITY = _elementwise("identity", "Identity", "x (passes its input through)", saves=_NONE)
_IDENTITY.output_storage = lambda self, a, shapes: 0  # nn.Identity returns its input itself
_elementwise("selu", "SELU", "1.0507 * (x if x > 0 else 1.67326 (exp(x) - 1))")
_elementwise("celu", "CELU", "max(0, x) + min(0, alpha (exp(x / alpha) - 1))",
             (Arg("alpha", "float", 1.0),), "alpha", _nonzero("alpha", "CELU divides by it"))
_elementwise("rrelu", "RReLU", "x if x > 0 else a x, a drawn from U(lower, upper) in training, "
             "(lower + upper) / 2 in eval",
             (Arg("lower", "float", 0.125), Arg("upper", "float", 1 / 3)), None, _ordered("lower", "upper", False),
             saves=("temp", "input"), temp="the random slopes, in training")
_HARDTANH = _elementwise("hardtanh", "Hardtanh", "min(max(x, min_val), max_val)",
                         (Arg("min_val", "float", -1.0), Arg("max_val", "float", 1.0)), None,
                         _ordered("min_val", "max_val", True))


def _hardtanh_module(self, a, shapes):
    from torch import nn

    module = nn.Hardtanh(**a)
    # nn.Hardtanh also takes the deprecated min_value / max_value but keeps no attribute for them,
    # so `archcalc export` cannot read its constructor call back: it writes the function instead.
    low, high = float(a["min_val"]), float(a["max_val"])
    module.export_expression = lambda inputs: (f"nn.functional.hardtanh({inputs[0]}, min_val={low!r}, "
                                               f"max_val={high!r})")
    return module


_HARDTANH.torch_module = _hardtanh_module
_elementwise("threshold", "Threshold", "x if x > threshold else value",
             (Arg("threshold", "float", doc="inputs at or below it are replaced"),
              Arg("value", "float", doc="what replaces them")))
_elementwise("mish", "Mish", "x * tanh(softplus(x))")
_elementwise("softplus", "Softplus", "log(1 + exp(beta x)) / beta; x where beta x > threshold",
             (Arg("beta", "float", 1.0), Arg("threshold", "float", 20.0)), "beta",
             _nonzero("beta", "softplus divides by it"))
_elementwise("softsign", "Softsign", "x / (1 + |x|)", saves=("input", "temp"), temp="1 + |x|")
_elementwise("hardshrink", "Hardshrink", "x if |x| > lambd else 0", (Arg("lambd", "float", 0.5),), "lambd")
_elementwise("softshrink", "Softshrink", "x - lambd if x > lambd, x + lambd if x < -lambd, else 0",
             (Arg("lambd", "float", 0.5, min=0),), "lambd")
_elementwise("tanhshrink", "Tanhshrink", "x - tanh(x)", saves=("temp",), temp="tanh(x)")
_elementwise("logsigmoid", "LogSigmoid", "log(1 / (1 + exp(-x)))", saves=("input", "temp"),
             temp="log_sigmoid_forward's buffer")


class SoftmaxLike(Elementwise):
    primary = "dim"
    probe_linear = False  # its own module is not linear: probe_module below stands in for it
    args = (Arg("dim", "int", 0, doc="dimension without the batch; 0 is channels (nn.Softmax(dim=1))"),)
    formulas = {"output": "same as input", "params": "0", "macs": "0",
                "rf": "unchanged along channels (dim 0); global when taken over the only spatial axis; "
                      "not tracked over one of several (each output sees that whole axis, a window along "
                      "the others)", "saved": "its output (_softmax: result)"}
    saves = ("output",)
    keeps_layout = False  # _softmax writes a contiguous result whatever the input's order (measured)

    def output_shape(self, a, shapes):
        dim_index(a["dim"], len(shapes[0]))
        return shapes[0]

    def mixed_dims(self, a, shapes):
        return (dim_index(a["dim"], len(shapes[0])),)

    def rf(self, a, rfs, shapes, out):
        if rfs[0] is None or dim_index(a["dim"], len(shapes[0])) == 0:
            return rfs[0]
        # Over a spatial axis every output sees that whole axis but only its window along the
        # others: "global" only where it is the one spatial axis (as for linear), else untracked.
        return GLOBAL if rfs[0] == GLOBAL or len(shapes[0]) == 2 else None

    def explain(self, a, shapes, out, rf_in, rf_out, row):
        from archcalc.layers import _explain as ex

        dim = dim_index(a["dim"], len(shapes[0]))
        steps = [ex.output_step("input shape", "", out, note=f"y = {self.summary}, dim {dim}"),
                 ex.zero("params"), ex.zero("macs")]
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


@register
class Softmin(SoftmaxLike):
    kind = "softmin"
    torch_class = "Softmin"
    summary = "exp(-x) / sum(exp(-x)) along dim"


@register
class Softmax2d(SoftmaxLike):
    kind = "softmax2d"
    torch_class = "Softmax2d"
    summary = "softmax over the channels at each position of [C, H, W]"
    primary = None
    args = ()
    formulas = {"output": "same as input ([C, H, W])", "params": "0", "macs": "0",
                "rf": "unchanged (taken over the channels)", "saved": "its output (_softmax: result)"}

    def output_shape(self, a, shapes):
        if len(shapes[0]) != 3:
            raise LayerError(f"softmax2d needs an input shaped [C, H, W], got {list(shapes[0])}")
        return shapes[0]

    def rf(self, a, rfs, shapes, out):
        return rfs[0]

    def mixed_dims(self, a, shapes):
        return (0,)  # nn.Softmax2d: over dim -3 of [N, C, H, W], whatever is there

    def explain(self, a, shapes, out, rf_in, rf_out, row):
        return super().explain({"dim": 0}, shapes, out, rf_in, rf_out, row)

    def torch_module(self, a, shapes):
        from torch import nn

        return nn.Softmax2d()

    def probe_module(self, a, shapes):
        return super().probe_module({"dim": 0}, shapes)


QUICK_GELU = '''
class QuickGELU(nn.Module):
    """x * sigmoid(1.702 x): the sigmoid approximation of GELU used by CLIP (Hugging Face's
    QuickGELUActivation)."""

    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)
'''


@register
class QuickGelu(Elementwise):
    kind = "quick_gelu"
    summary = "x * sigmoid(1.702 x) (CLIP's approximation of GELU; not in torch.nn)"
    saves, temp = ("temp", "input"), "sigmoid(1.702 x)"
    formulas = {**Elementwise.formulas, "saved": saved_text(saves, temp)}

    def torch_module(self, a, shapes):
        from archcalc.layers.base import custom_module

        return custom_module(QUICK_GELU, "QuickGELU")
