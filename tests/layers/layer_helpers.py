"""Shared helpers of the layer tests: one-line specs, the PyTorch cross-check and the gradient probe.

Importing this module does not import torch; the torch helpers import it when called.
"""
from __future__ import annotations

import pytest

import archcalc
from archcalc.geometry.receptive_field import GLOBAL, RF


def spec(input_shape, *entries) -> str:
    """A spec text: `entries` are YAML flow entries, e.g. "conv: {out: 8, kernel: 3}". An input
    written {"tokens": [T]} holds integer token ids."""
    if isinstance(input_shape, dict):
        lines = [f"input: {{tokens: {list(input_shape['tokens'])}}}", "layers:"]
    else:
        lines = [f"input: {list(input_shape)}", "layers:"]
    lines += [f"  - {e}" for e in entries]
    return "\n".join(lines) + "\n"


def analyze(input_shape, *entries, **kwargs):
    return archcalc.analyze_text(spec(input_shape, *entries), **kwargs)


def last(input_shape, *entries):
    """The row of the last layer."""
    return analyze(input_shape, *entries).layers[-1]


def spec_error(input_shape, *entries) -> archcalc.SpecError:
    with pytest.raises(archcalc.SpecError) as info:
        analyze(input_shape, *entries)
    return info.value


def rf1(size, stride, start):
    """A one-axis RF (rf_axes gives the same values on several axes)."""
    return RF((size,), (stride,), (start,))


def rf_axes(axes, size, stride, start):
    return RF((size,) * axes, (stride,) * axes, (start,) * axes)


# --- PyTorch ----------------------------------------------------------------------------------

def torch_check(input_shape, *entries, batch=2):
    """Analyse the spec and build it with PyTorch; for every layer compare the output shape of a
    real forward pass (batch `batch`), trainable parameters (numel of requires_grad parameters),
    non-trainable ones (numel of floating buffers) and MACs (FlopCounterMode // 2 per example).
    Returns the report."""
    import torch

    from archcalc.torch import build
    from archcalc.torch.build import example_input
    from archcalc.torch.verify import flop_counter

    text = spec(input_shape, *entries)
    report = archcalc.analyze_text(text)
    model_graph = archcalc.parse_spec(text)
    model = build(model_graph).eval()
    seen = {}
    handles = []
    for row in report.layers:
        module = model.get_submodule(row.name)
        handles.append(module.register_forward_hook(
            lambda m, i, o, name=row.name: seen.__setitem__(name, tuple(o.shape))))
    x = example_input(model_graph, batch)
    with torch.no_grad(), flop_counter() as counter:
        y = model(x)
    for h in handles:
        h.remove()
    counts = counter.get_flop_counts()
    for row in report.layers:
        module = model.get_submodule(row.name)
        where = f"layer {row.name} ({row.kind}) in\n{text}"
        assert seen[row.name] == (batch,) + tuple(row.output_shape), where
        trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
        frozen = sum(p.numel() for p in module.parameters() if not p.requires_grad)
        frozen += sum(b.numel() for b in module.buffers() if b.is_floating_point())
        assert (trainable, frozen) == (row.trainable_params, row.non_trainable_params), where
        flops = sum(counts.get(f"SpecModule.{row.name}", {}).values())
        assert flops % (2 * batch) == 0, where
        assert flops // 2 // batch == row.macs, where
    assert tuple(y.shape) == (batch,) + tuple(report.output_shape)
    assert counter.get_total_flops() // 2 // batch == report.totals.macs
    return report


def linearised(model):
    """A float64 copy of `model` whose outputs depend on their inputs with positive weights only:
    conv weights 1, biases 0, max pooling replaced by average pooling (or a ones-kernel depthwise
    convolution when dilated) of the same geometry."""
    import copy

    import torch
    from torch import nn

    model = copy.deepcopy(model).double()
    for module in list(model.modules()):
        if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d,
                               nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)):
            with torch.no_grad():
                module.weight.fill_(1.0)
                if module.bias is not None:
                    module.bias.zero_()
        elif isinstance(module, (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d)):
            axes = {nn.MaxPool1d: 1, nn.MaxPool2d: 2, nn.MaxPool3d: 3}[type(module)]

            def tup(v):
                return tuple(v) if isinstance(v, (tuple, list)) else (v,) * axes
            if all(d == 1 for d in tup(module.dilation)):
                new = getattr(nn, f"AvgPool{axes}d")(module.kernel_size, module.stride, module.padding,
                                                     ceil_mode=module.ceil_mode)
            else:
                assert not module.ceil_mode, "the probe cannot linearise a dilated ceil-mode maxpool"
                new = _DepthwiseOnes(axes, tup(module.kernel_size), tup(module.stride), tup(module.padding),
                                     tup(module.dilation))
            # SpecModule.forward calls the modules it planned, so swap the behaviour, not the module
            object.__setattr__(module, "forward", new)
    return model


def _DepthwiseOnes(axes, kernel, stride, padding, dilation):
    import torch
    from torch import nn
    from torch.nn import functional as F

    conv = (F.conv1d, F.conv2d, F.conv3d)[axes - 1]

    class DepthwiseOnes(nn.Module):
        def forward(self, x):
            c = x.shape[1]
            w = torch.ones((c, 1) + kernel, dtype=x.dtype)
            return conv(x, w, stride=stride, padding=padding, dilation=dilation, groups=c)

    return DepthwiseOnes()


def gradient_extent(model, input_shape, position):
    """Per spatial axis, (first, last) input index with a nonzero gradient of output channel 0 at
    `position` (a tuple of output indices), for a linearised float64 copy of `model`; None when
    no input pixel reaches it."""
    import torch

    lin = linearised(model)
    x = torch.ones((1,) + tuple(input_shape), dtype=torch.float64, requires_grad=True)
    y = lin(x)
    y[(0, 0) + tuple(position)].backward()
    g = x.grad[0].abs().sum(0)  # over channels: shape = spatial
    extents = []
    for axis in range(g.dim()):
        other = tuple(a for a in range(g.dim()) if a != axis)
        line = g.sum(other) if other else g
        nz = torch.nonzero(line > 0).flatten()
        if not len(nz):
            return None  # the output reads no input pixel (a transposed conv's gap)
        extents.append((int(nz.min()), int(nz.max())))
    return tuple(extents)


def analytic_extent(rf: RF, spatial, position):
    """The analytic field of output `position`, clipped to the input: per axis (first, last)."""
    out = []
    for size, stride, start, n, p in zip(rf.size, rf.stride, rf.start, spatial, position):
        first = start + p * stride
        lastpix = first + size - 1
        out.append((max(first, 0), min(lastpix, n - 1)))
    return tuple(out)


__all__ = ["GLOBAL", "RF", "analyze", "analytic_extent", "gradient_extent", "last", "linearised",
           "rf1", "rf_axes", "spec", "spec_error", "torch_check"]


def flow_mapping(values: dict) -> str:
    """A YAML flow mapping of argument values: {kernel: [3, 3], ceil_mode: true, padding: same}."""
    def text(v):
        if isinstance(v, bool):
            return str(v).lower()
        return str(list(v)) if isinstance(v, tuple) else str(v)

    return "{" + ", ".join(f"{k}: {text(v)}" for k, v in values.items()) + "}"


def assert_accepts_what_torch_accepts(shape, kind, values, make_module):
    """archcalc accepts `kind: values` on `shape` exactly when PyTorch builds and runs it with a
    non-empty output (archcalc refuses empty outputs on purpose: ConvTranspose1d(1, 1, 2, padding=1)
    on length 1 gives length 0); what both accept must then agree figure by figure."""
    import torch

    try:
        ok_torch = make_module()(torch.randn(2, *shape)).numel() > 0
    except (RuntimeError, ValueError):
        ok_torch = False
    entry = f"{kind}: {flow_mapping(values)}"
    try:
        analyze(shape, entry)
    except archcalc.SpecError as err:
        assert not ok_torch, f"archcalc rejects {shape} {entry} ({err.message}) but PyTorch accepts it"
        return
    assert ok_torch, f"archcalc accepts {shape} {entry} but PyTorch rejects it"
    torch_check(shape, entry)
