"""Memory: values instead of bytes, the last layer only, trainable parameters only."""
from __future__ import annotations

from archcalc.homework.check import _div, _is_zero
from archcalc.homework.mistakes.base import Wrong, mistake


@mistake("values_for_bytes", ("activation_bytes", "param_bytes"), rank=10,
         hint="that is the {what}: multiply by {bytes} bytes per {dtype} value")
def values_for_bytes(case):
    """The bytes divided by the bytes per value (the dtype's size)."""
    net = case.net
    what = "number of values" if case.figure == "activation_bytes" else "parameter count"
    return Wrong(_div(case.expected, net.bytes), what=what, bytes=net.bytes, dtype=net.report.dtype)


@mistake("last_layer_only", "activation_bytes", rank=40,
         hint="that is only the last layer's output; the total sums the outputs of every layer")
def last_layer_only(case):
    """The total: the last layer's activations only."""
    layers = case.net.report.layers
    if not case.is_total or len(layers) < 2:
        return None
    return Wrong(case.net.norm(layers[-1].activation_bytes))


@mistake("trainable_bytes_only", "param_bytes", rank=40,
         hint="that counts only trainable parameters; the memory includes BatchNorm's running mean and "
              "variance too")
def trainable_bytes_only(case):
    """The bytes of the trainable parameters only (where there are buffers)."""
    net = case.net
    t = net.report.totals
    if _is_zero(net.norm(t.non_trainable_params)):
        return None
    return Wrong(net.norm(t.trainable_params * net.bytes))
