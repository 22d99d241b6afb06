"""parameter: a learned tensor of a given shape, the same for every example: a relative position
bias table, Mamba's A_log and D, a learned bias map. It reads no values: its input (by default the
previous entry; `from` may name any) gives only the batch size, so its output is [N, *shape]
like every other tensor of the graph."""
from __future__ import annotations

from archcalc.errors import LayerError
from archcalc.layers.base import Arg, Layer, Step, custom_module, prod, register

INITS = ("zeros", "ones", "constant", "normal")
DEFAULT_STD = 0.02

SOURCE = '''
class LearnedTensor(nn.Module):
    """A learned tensor `weight` of `shape`, the same for every example: [N, *shape], N from the input."""

    def __init__(self, shape, init="zeros", value=None, std=None):
        super().__init__()
        if init == "normal":
            weight = torch.empty(shape).normal_(std=std)
        elif init == "constant":
            weight = torch.full(shape, float(value))
        else:
            weight = torch.ones(shape) if init == "ones" else torch.zeros(shape)
        self.weight = nn.Parameter(weight)

    def forward(self, x):
        # Under no_grad a view of the weight would still say requires_grad, with no grad_fn.
        weight = self.weight if torch.is_grad_enabled() else self.weight.detach()
        return weight.expand(x.shape[0], *weight.shape)
'''


@register
class Parameter(Layer):
    kind = "parameter"
    primary = "shape"
    reads = "batch"  # its input's values (real or token ids) are not read, only its batch size
    summary = ("A learned tensor of `shape` (bias tables, Mamba's A_log and D): [shape] for every example; "
               "its input gives only the batch size")
    args = (
        Arg("shape", "intlist", min=1, doc="the tensor's shape, batch excluded"),
        Arg("init", "choice", "zeros", choices=INITS, doc="starting values: zeros, ones, constant (value) "
                                                          "or normal (std)"),
        Arg("value", "float", None, doc="the starting value with init: constant"),
        Arg("std", "float", None, min=0, doc=f"standard deviation with init: normal (default {DEFAULT_STD})"),
    )
    formulas = {"output": "shape (the batch from the input)", "params": "prod(shape)",
                "macs": "0 (no computation)", "rf": "not tracked (it reads no input values)",
                "saved": "nothing; its output is a view of the weights (model state), never counted when a "
                         "later layer saves it"}

    def _check(self, a):
        init = a["init"]
        if init == "constant" and a["value"] is None:
            raise LayerError("init: constant needs 'value' (the starting value)", "init")
        if a["value"] is not None and init != "constant":
            raise LayerError(f"'value' is the starting value of init: constant; init is {init}", "value")
        if a["std"] is not None and init != "normal":
            raise LayerError(f"'std' is the spread of init: normal; init is {init}", "std")

    def output_shape(self, a, shapes):
        self._check(a)
        return tuple(a["shape"])

    def params(self, a, shapes):
        return prod(a["shape"]), 0

    def rf(self, a, rfs, shapes, out):
        return None

    def saved_tensors(self, a, shapes, out):
        return []  # expand saves nothing

    def output_storage(self, a, shapes):
        return "weights"  # its output is a view of the weights: a layer saving it keeps no activation

    def explain(self, a, shapes, out, rf_in, rf_out, row):
        from archcalc.layers import _explain as ex

        shape = tuple(a["shape"])
        return [ex.output_step("shape", "", out, note="the same tensor for every example; the input gives "
                                                     "only the batch size"),
                Step("params", "prod(shape)", ex.times(shape), prod(shape), note=f"one learned value per entry "
                                                                               f"(init: {a['init']})"),
                ex.zero("macs", "no computation: the tensor is its own weights"),
                ex.rf_untracked("a learned tensor reads no input values")]

    def bare_tensor(self, a):
        return "weight"

    def torch_module(self, a, shapes):
        self._check(a)
        std = (DEFAULT_STD if a["std"] is None else float(a["std"])) if a["init"] == "normal" else None
        value = float(a["value"]) if a["value"] is not None else None
        return custom_module(SOURCE, "LearnedTensor", tuple(a["shape"]), a["init"], value, std)

    def probe_module(self, a, shapes):
        return self.torch_module(a, shapes)  # its shape, not the identity's, for the layers after it
