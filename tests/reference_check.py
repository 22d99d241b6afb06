"""Checks shared by the tests that compare a bundled spec with a reference PyTorch module written
from its paper or library (tests/torch/test_*_reference.py). torch is imported when called."""
from __future__ import annotations

import archcalc


def assert_counts_equal(spec, model, *, trainable: int, gmacs: float | None = None, input_shape=(3, 224, 224)):
    """The spec's trainable and non-trainable parameters, MACs and output shape equal the module's
    (parameters, floating buffers, FlopCounterMode / 2, a forward pass), and the trainable count
    equals the published one (`gmacs`: the published "GFLOPS", which are multiply-accumulates)."""
    import torch

    from archcalc.torch.verify import flop_counter

    report = archcalc.analyze(spec)
    model = model.eval()
    with torch.no_grad(), flop_counter() as counter:
        y = model(torch.randn(1, *input_shape))
    assert sum(p.numel() for p in model.parameters()) == report.totals.trainable_params == trainable
    assert sum(b.numel() for b in model.buffers() if b.is_floating_point()) == report.totals.non_trainable_params
    assert counter.get_total_flops() // 2 == report.totals.macs
    if gmacs is not None:
        assert round(report.totals.macs / 1e9, 2) == gmacs
    assert tuple(y.shape[1:]) == report.output_shape
    return report


def assert_same_function(spec, reference, parameters=None, *, batch: int = 1, input_shape=(3, 224, 224),
                         tol: float = 1e-4):
    """With the reference's parameters and batch-norm statistics copied in, in the order the spec
    writes them (`parameters`, default the module's own order), the built spec gives the same
    outputs. The statistics are moved away from their defaults first, so that a mix-up shows."""
    import torch
    from torch import nn

    from archcalc.torch import build

    torch.manual_seed(0)
    reference = reference.eval()
    for m in reference.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
    built = build(archcalc.load_spec(spec)).eval()
    mine, theirs = list(built.parameters()), list(parameters if parameters is not None else reference.parameters())
    assert len(mine) == len(theirs)
    # floating buffers on both sides (batch-norm statistics; not int64 indices or counters), as many
    my_buffers, their_buffers = ([b for b in m.buffers() if b.is_floating_point()] for m in (built, reference))
    assert len(my_buffers) == len(their_buffers)
    pairs = list(zip(mine, theirs)) + list(zip(my_buffers, their_buffers))
    assert all(a.numel() == b.numel() for a, b in pairs)
    with torch.no_grad():
        for a, b in pairs:
            a.copy_(b.reshape(a.shape))  # a layer scale may be [C, 1, 1] there and [C] here
        x = torch.randn(batch, *input_shape)
        torch.testing.assert_close(built(x), reference(x), rtol=tol, atol=tol)
