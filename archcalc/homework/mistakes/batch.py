"""The batch size: counted in parameters, or left out of MACs, FLOPs and activations."""
from __future__ import annotations

from archcalc.homework.check import _div
from archcalc.homework.mistakes.base import Wrong, mistake


@mistake("params_times_batch", ("params", "trainable_params", "non_trainable_params"), rank=30,
         hint="parameters do not depend on the batch size (batch {batch})")
def params_times_batch(case):
    """The count multiplied by the batch size."""
    b = case.net.batch
    return Wrong(case.expected * b, batch=b) if b > 1 else None


@mistake("one_example", ("macs", "flops", "activation_bytes"), rank=30,
         hint="{what} are for the whole batch: multiply by the batch size {batch}")
def one_example(case):
    """The figure of one example: divided by the batch size."""
    b = case.net.batch
    what = {"macs": "MACs", "flops": "FLOPs", "activation_bytes": "activations"}[case.figure]
    return Wrong(_div(case.expected, b), what=what, batch=b) if b > 1 else None


@mistake("macs_of_one_example", "flops", rank=30,
         hint="that is the MAC count of one example: FLOPs = 2 x MACs, times the batch size {batch}")
def macs_of_one_example(case):
    """FLOPs divided by 2 and by the batch size."""
    b = case.net.batch
    return Wrong(_div(case.expected, 2 * b), batch=b) if b > 1 else None


@mistake("values_of_one_example", "activation_bytes", rank=30,
         hint="that is the size of one example's output in values: multiply by the batch ({batch}) and "
              "{bytes} bytes")
def values_of_one_example(case):
    """Bytes divided by the batch size and the bytes per value."""
    b, size = case.net.batch, case.net.bytes
    return Wrong(_div(case.expected, size * b), batch=b, bytes=size) if b > 1 else None
