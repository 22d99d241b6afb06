"""A convolution's weights miscounted: the input channels left out (K1*K2*Cout, a filter seen as
one 2-D kernel; in a colour network (3*3 + 1)*64 = 640 for (3*3*3 + 1)*64 = 1,792), or one bias per
layer instead of one per output channel. For a block or the total, the same mistake in every layer
it applies to."""
from __future__ import annotations

from archcalc.homework.check import _div, _fmt, _is_zero, format_expected, sum_
from archcalc.homework.mistakes.base import Wrong, mistake
from archcalc.homework.mistakes.network import BIASED_KINDS, out_units

PARAMS = ("params", "trainable_params")


def _per_layer(case, mistaken):
    """The asked count with `mistaken(row)` (None where the mistake cannot be made) for every
    layer it applies to, the other layers' counts as they are; None where it applies to none."""
    net, figure = case.net, case.figure
    values, applied = [], 0
    for row in case.target.rows:
        wrong = mistaken(row)
        if wrong is None:
            values.append(net.norm(getattr(row, figure)))
        else:
            values.append(net.norm(wrong))
            applied += 1
    return net.norm(sum_(values)) if applied else None


def _without_input_channels(net, row):
    """A conv's count with its weights K1*K2*Cout (no Cin/groups factor)."""
    if row.kind != "conv" or not row.trainable_params:
        return None
    in_shape = net.input_shape(row)
    weights = net.weights(row)
    if in_shape is None or weights is None:
        return None
    weights = net.norm(weights)
    node = net.nodes.get(row.name)
    groups = int(node.args.get("groups", 1)) if node is not None else 1
    per_group = _div(net.norm(in_shape[0]), groups)
    if per_group is None or _is_zero(net.norm(per_group - 1)):
        return None  # one input channel per group: nothing to forget
    without = _div(weights, per_group)
    return None if without is None else without + (net.norm(row.params) - weights)


def _groups(net, row) -> int:
    node = net.nodes.get(row.name)
    return int(node.args.get("groups", 1)) if node is not None else 1


def _spans(net, row) -> str:
    """The input channels one filter of a conv spans: "all 3 input channels", or for a grouped conv
    "the 2 input channels of its group (Cin/groups = 8/4)"."""
    cin, groups = net.norm(net.input_shape(row)[0]), _groups(net, row)
    if groups == 1:
        return f"all {_fmt(cin)} input channels"
    per = _div(cin, groups)
    if per == 1:
        return f"one input channel (depthwise: Cin/groups = {_fmt(cin)}/{groups})"
    return f"the {_fmt(per)} input channels of its group (Cin/groups = {_fmt(cin)}/{groups})"


@mistake("forgot_input_channels", PARAMS, rank=35,
         hint="{where}the weights are K1*K2*Cin/groups*Cout: each filter spans {cin}, not one "
              "2-D kernel; params = (K1*K2*Cin/groups + 1)*Cout")
def forgot_input_channels(case):
    """A conv's count as (K1*K2 + 1)*Cout, Cin left out; for a block or the total, in every conv."""
    net = case.net
    value = _per_layer(case, lambda row: _without_input_channels(net, row))
    if value is None:
        return None
    convs = [r for r in case.target.rows if _without_input_channels(net, r) is not None]
    cin = sorted({_spans(net, r) for r in convs})
    where = "" if case.single is not None else "in every convolution, "
    return Wrong(value, where=where, cin=" or ".join(cin))


def _all_groups(net, row):
    """A grouped conv's count with every filter over all Cin input channels (groups left out)."""
    groups = _groups(net, row) if row.kind == "conv" and row.trainable_params else 1
    weights = net.weights(row) if groups > 1 else None
    if weights is None:
        return None
    weights = net.norm(weights)
    return weights * groups + (net.norm(row.params) - weights)


@mistake("groups_forgotten", PARAMS, rank=35,
         hint="{where}the groups are left out (groups = {groups}): each filter spans {cin}, not all Cin: "
              "params = (K1*K2*Cin/groups + 1)*Cout")
def groups_forgotten(case):
    """A grouped (or depthwise) conv's count as (K1*K2*Cin + 1)*Cout, the groups left out; for a block
    or the total, in every grouped conv."""
    net = case.net
    value = _per_layer(case, lambda row: _all_groups(net, row))
    if value is None:
        return None
    convs = [r for r in case.target.rows if _all_groups(net, r) is not None]
    return Wrong(value, where="" if case.single is not None else "in every grouped convolution ",
                 groups=" or ".join(sorted({str(_groups(net, r)) for r in convs})),
                 cin=" or ".join(sorted({_spans(net, r) for r in convs})))


def _one_bias(net, row):
    if row.kind not in BIASED_KINDS or not net.has_bias(row):
        return None
    units = out_units(row)
    return None if _is_zero(net.norm(units - 1)) else row.params - units + 1


@mistake("one_bias_per_layer", PARAMS, rank=35,
         hint="a bias is one per output {unit}, not one per layer: {bias} biases{where}, not {layers} (+{more})")
def one_bias_per_layer(case):
    """A biased layer's count with a single bias instead of one per output channel or feature; for a
    block or the total, in every biased layer."""
    net = case.net
    value = _per_layer(case, lambda row: _one_bias(net, row))
    if value is None:
        return None
    rows = [r for r in case.target.rows if _one_bias(net, r) is not None]
    units = sorted({"feature" if r.kind == "linear" else "channel" for r in rows})
    bias = net.norm(out_units(rows[0])) if case.single is not None else net.bias_total(rows)
    # the answer has one bias per layer (len(rows) of them): it is bias - len(rows) short
    return Wrong(value, unit=" or ".join(units), bias=_fmt(bias), layers=len(rows),
                 more=_fmt(net.norm(bias - len(rows))), where="" if case.single is not None else " in all")


def _one_filter(net, row):
    """A conv's count with one filter: K1*K2*Cin/groups + 1 (Cout left out)."""
    if row.kind != "conv" or not row.trainable_params:
        return None
    weights = net.weights(row)
    if weights is None:
        return None
    cout = net.norm(out_units(row))
    if _is_zero(net.norm(cout - 1)):
        return None
    one = _div(net.norm(weights), cout)
    return None if one is None else one + (1 if net.has_bias(row) else 0)


@mistake("one_filter", PARAMS, rank=35,
         hint="{where}that counts one filter; the layer has {cout} of them (one per output channel): "
              "params = (K1*K2*Cin/groups + 1)*Cout")
def one_filter(case):
    """A conv's count as K1*K2*Cin/groups + 1, one filter instead of Cout; for a block or the total,
    in every conv."""
    net = case.net
    value = _per_layer(case, lambda row: _one_filter(net, row))
    if value is None:
        return None
    convs = [r for r in case.target.rows if _one_filter(net, r) is not None]
    cout = sorted({str(_fmt(net.norm(out_units(r)))) for r in convs})
    return Wrong(value, where="" if case.single is not None else "in every convolution, ", cout=" or ".join(cout))


def _flat_channels(net, row):
    """A linear layer reading a flatten of [C, ...] (C > 1): C, else None."""
    if row.kind != "linear" or not row.inputs:
        return None
    source = net.rows.get(row.inputs[0])
    if source is None or source.kind != "flatten":
        return None
    shape = net.input_shape(source)
    if shape is None or len(shape) < 2:
        return None
    c = net.norm(shape[0])
    return None if _is_zero(net.norm(c - 1)) else c


def _without_channels(net, row):
    c = _flat_channels(net, row)
    weights = net.weights(row) if c is not None else None
    if weights is None:
        return None
    weights = net.norm(weights)
    fewer = _div(weights, c)
    return None if fewer is None else fewer + (net.norm(row.params) - weights)


@mistake("flatten_without_channels", PARAMS, rank=35,
         hint="{layer} reads the flattened {shape}: its inputs are C*H*W = {features} values, all {c} channels, "
              "not one channel's map")
def flatten_without_channels(case):
    """A linear layer after flatten counted with one channel's H*W inputs instead of C*H*W; for a
    block or the total, that layer's count so."""
    net = case.net
    value = _per_layer(case, lambda row: _without_channels(net, row))
    if value is None:
        return None
    row = next(r for r in case.target.rows if _without_channels(net, r) is not None)
    source = net.rows[row.inputs[0]]
    shape = net.input_shape(source)
    return Wrong(value, layer=row.name, c=_fmt(_flat_channels(net, row)),
                 shape=format_expected(tuple(net.norm(n) for n in shape), "output_shape"),
                 features=_fmt(net.norm(source.output_shape[0])))


def _kernel_sizes(net, row, geometry) -> list:
    """A conv's kernel sizes K per axis: its spec's `kernel`, else D(K-1) + 1 (K where the dilation is 1)."""
    node = net.nodes.get(row.name)
    if node is not None and "kernel" in node.args:
        kernel = node.args["kernel"]
        return list(kernel) if isinstance(kernel, (list, tuple)) else [kernel] * len(geometry[1])
    return [k + 1 for k in geometry[1]]


def _no_kernel(net, row):
    """A conv's count with 1 x 1 filters: Cin/groups*Cout (+ bias), the K1*K2 window left out."""
    if row.kind != "conv" or not row.trainable_params:
        return None
    weights = net.weights(row)
    geometry = net.window_geometry(row)
    if weights is None or geometry is None:
        return None
    window = 1
    for k in _kernel_sizes(net, row, geometry):
        window *= int(k)
    if window == 1:
        return None
    fewer = _div(net.norm(weights), window)
    return None if fewer is None else fewer + (net.norm(row.params) - net.norm(weights))


@mistake("kernel_forgotten", PARAMS, rank=35,
         hint="{where}that counts 1 x 1 filters (Cin*Cout); each filter is K1 x K2 = {kernel} over its input "
              "channels: params = (K1*K2*Cin/groups + 1)*Cout")
def kernel_forgotten(case):
    """A conv's count as (Cin/groups + 1)*Cout, the K1*K2 window left out; for a block or the total,
    in every conv."""
    net = case.net
    value = _per_layer(case, lambda row: _no_kernel(net, row))
    if value is None:
        return None
    rows = [r for r in case.target.rows if _no_kernel(net, r) is not None]
    kernels = sorted({" x ".join(str(k) for k in _kernel_sizes(net, r, net.window_geometry(r))) for r in rows})
    return Wrong(value, where="" if case.single is not None else "in every convolution, ",
                 kernel=" or ".join(kernels))
