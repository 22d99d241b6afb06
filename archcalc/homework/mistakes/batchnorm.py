"""BatchNorm's 4C: 2C trainable (scale, shift) and 2C non-trainable buffers (running mean, variance)."""
from __future__ import annotations

from archcalc.homework.check import _is_zero, _sum_rows
from archcalc.homework.mistakes.base import Wrong, mistake


def _nt(case):
    return case.net.norm(_sum_rows(case.target, "non_trainable_params"))


@mistake("trainable_only", "params", rank=20,
         hint="that is the trainable count only: BatchNorm has 2C trainable parameters (scale, shift) and 2C "
              "non-trainable ones (running mean and variance); params counts all 4C")
def trainable_only(case):
    """Where there are buffers: the trainable count given for params."""
    if _is_zero(_nt(case)):
        return None
    return Wrong(case.net.norm(_sum_rows(case.target, "trainable_params")))


@mistake("forgot_biases_and_buffers", "params", rank=20,
         hint="forgot the biases, and counted BatchNorm as 2C instead of 4C (params include the running mean "
              "and variance)")
def forgot_biases_and_buffers(case):
    """The trainable count less every bias."""
    if _is_zero(_nt(case)):
        return None
    bias = case.net.bias_total(case.target.rows)
    if _is_zero(bias):
        return None
    return Wrong(case.net.norm(_sum_rows(case.target, "trainable_params")) - bias)


@mistake("buffers_as_trainable", "trainable_params", rank=20,
         hint="counted BatchNorm as 4C: its running mean and variance are buffers, not trainable; "
              "trainable_params is 2C (scale, shift) per BatchNorm")
def buffers_as_trainable(case):
    """Where there are buffers: all parameters (4C per BatchNorm) given as trainable."""
    if _is_zero(_nt(case)):
        return None
    return Wrong(case.net.norm(_sum_rows(case.target, "params")))


@mistake("no_buffers", "non_trainable_params", rank=20,
         hint="this has no buffers: all of its parameters are trainable, none non-trainable")
def no_buffers(case):
    """No buffers here: the trainable count given as non-trainable."""
    if not _is_zero(case.expected):
        return None
    return Wrong(case.net.norm(_sum_rows(case.target, "trainable_params")))


@mistake("buffers_not_counted", "non_trainable_params", rank=20,
         hint="BatchNorm's running mean and variance are non-trainable parameters: 2C per BatchNorm layer")
def buffers_not_counted(case):
    """Buffers here: 0 given."""
    return None if _is_zero(case.expected) else Wrong(0)


@mistake("all_non_trainable", "non_trainable_params", rank=20,
         hint="that counts all of BatchNorm's parameters; non-trainable are only the running mean and "
              "variance (2C)")
def all_non_trainable(case):
    """Buffers here: every parameter (4C per BatchNorm) given as non-trainable."""
    if _is_zero(case.expected):
        return None
    return Wrong(case.net.norm(_sum_rows(case.target, "params")))
