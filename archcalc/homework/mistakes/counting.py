"""Counting operations: MACs against FLOPs, bias additions, weights instead of MACs."""
from __future__ import annotations

from archcalc.homework.check import _div, _fmt, _is_zero, _prod, _symbolic
from archcalc.homework.mistakes.base import Wrong, mistake


@mistake("flops_for_macs", "macs", rank=10,
         hint="that is the FLOP count: FLOPs = 2 x MACs (a multiply-accumulate is two operations)")
def flops_for_macs(case):
    """Twice the MACs."""
    return Wrong(2 * case.expected)


@mistake("macs_for_flops", "flops", rank=10, hint="that is the MAC count: FLOPs = 2 x MACs")
def macs_for_flops(case):
    """Half the FLOPs."""
    return Wrong(_div(case.expected, 2))


@mistake("bias_additions", "macs", rank=40,
         hint="bias additions are not multiply-accumulates: MACs count only the multiplications by weights "
              "(as PyTorch's FlopCounterMode)")
def bias_additions(case):
    """The MACs plus one addition per output value of every biased layer."""
    net = case.net
    additions = 0
    for row in net.biased(case.target.rows):
        additions = additions + net.batch * _prod(row.output_shape)
    return None if _is_zero(additions) else Wrong(case.expected + net.norm(additions))


@mistake("weights_for_macs", "macs", rank=40,
         hint="that is the number of weights: multiply by the number of output positions{times} "
              "(MACs = {formula})")
def weights_for_macs(case):
    """One conv or linear layer: its weight count (the MACs of a single output position)."""
    row, net = case.single, case.net
    if row is None or row.kind not in ("conv", "linear"):
        return None
    weights = net.weights(row)
    positions = _div(case.expected, weights) if weights is not None and not _is_zero(weights) else None
    if positions is None or _is_zero(net.norm(positions - net.batch)):
        return None
    # positions = MACs / weights counts every example of the batch
    times = f" ({_fmt(positions)})" if not _symbolic(positions) and net.batch == 1 else \
        f" and the batch size {net.batch}" if net.batch > 1 else ""
    formula = "M1*M2*K1*K2*Cin/groups*Cout" if row.kind == "conv" else "positions*Nin*Nout, one per output vector"
    return Wrong(net.norm(weights), times=times, formula=formula)
