"""Receptive fields: r' = r + D(K-1) j, j' = j S, start' = start - P j, and 'global'."""
from __future__ import annotations

from archcalc.geometry.receptive_field import GLOBAL, RF
from archcalc.homework.answers import RFAnswer
from archcalc.homework.check import _axes_match
from archcalc.homework.mistakes.base import Said, Wrong, mistake

RF_STEP = "r' = r + D(K-1) j"


@mistake("rf_not_tracked", "rf", rank=1,
         hint="the receptive field is not tracked here: {why}")
def rf_not_tracked(case):
    """Any answer where archcalc does not track the field (on a network of spatial axes, or of
    token ids)."""
    if case.expected is not None or case.net.vector_input:
        return None
    if getattr(case.net.graph, "tokens", False):
        return Said(why="the input is token ids (a sequence of positions, no spatial axes); archcalc tracks "
                        "receptive fields over the spatial axes of images and signals")
    return Said(why="after reshape, a permute of spatial axes or a linear layer over several spatial axes, "
                    "outputs no longer line up with input axes")


@mistake("rf_vector_input", "rf", rank=1,
         hint="the input {shape} is a vector (features, no spatial axes) and no linear layer has mixed them "
              "yet: each output of {layer} reads its own input feature(s), so there is no window to give")
def rf_vector_input(case):
    """Any answer on a vector input (an MLP's) before its first linear layer."""
    if case.expected is not None or not case.net.vector_input:
        return None
    shape = "[" + ", ".join(str(n) for n in case.net.report.input_shape) + "]"
    return Said(shape=shape, layer=case.target.name)


@mistake("rf_is_global", "rf", rank=2,
         hint="every output here sees the whole input ({why}): the answer is 'global'")
def rf_is_global(case):
    """A window given where every output sees the whole input."""
    if case.expected != GLOBAL:
        return None
    if case.net.vector_input:
        shape = "[" + ", ".join(str(n) for n in case.net.report.input_shape) + "]"
        return Said(why=f"the input {shape} is a vector, and each output of a linear layer is a weighted sum "
                        "of every feature of its input")
    return Said(why="after flatten, global pooling or a linear layer over the last spatial axis")


def _every_output_sees_all(case) -> bool:
    """On a numeric input, whether the window of every output (i: inputs start + i*j .. start + i*j
    + r - 1) covers the whole input along every axis (a 5-wide field on a 3 x 3 image)."""
    rf, row, net = case.expected, case.row, case.net
    if not isinstance(rf, RF) or row is None:
        return False
    sizes = tuple(net.norm(n) for n in net.report.input_shape)[1:]
    outs = tuple(net.norm(n) for n in row.output_shape)[1:]
    if len(sizes) != len(rf.size) or len(outs) != len(sizes):
        return False
    try:
        return all(b + (m - 1) * j <= 0 and b + r - 1 >= n - 1
                   for n, m, r, j, b in zip(sizes, outs, rf.size, rf.stride, rf.start))
    except TypeError:  # symbolic sizes: not decided here
        return False


@mistake("rf_not_global_yet", "rf", rank=3,
         hint="{given}these outputs do not see the whole input yet; give the size of their window")
def rf_not_global_yet(case):
    """'global', or the whole input's size ([H, W]), given for a field that is a window."""
    value = case.value
    if not isinstance(value, RFAnswer) or _every_output_sees_all(case):
        return None
    if value.is_global:
        return Said(given="")
    shape = tuple(case.net.norm(n) for n in case.net.report.input_shape)
    if value.size is not None and len(shape) > 1 and _axes_match(value.size, shape[1:]) \
            and tuple(case.expected.size) != shape[1:]:
        return Said(given="that is the whole input; ")
    return None


@mistake("rf_stride_as_size", "rf", rank=10, hint="that is the stride (jump) of the field, not its size")
def rf_stride_as_size(case):
    """The field's stride (jump) as its size."""
    return Wrong(tuple(case.expected.stride), part="size")


def _geometry(case):
    row = case.row
    return case.net.window_geometry(row) if row is not None else None


@mistake("rf_input_field", "rf", rank=20,
         hint="that is the field of this layer's input; this layer's window adds D(K-1) j to it: " + RF_STEP)
def rf_input_field(case):
    """A conv or pooling layer: the field of its input (this layer's window not added)."""
    if _geometry(case) is None:
        return None
    return Wrong(tuple(case.net.input_rf(case.row).size), part="size")


@mistake("rf_own_window", "rf", rank=20,
         hint="that is this layer's own window; the field grows through every earlier layer: " + RF_STEP
              + ", j being the product of the earlier strides")
def rf_own_window(case):
    """A conv or pooling layer: its own window D(K-1) + 1 as the field."""
    geometry = _geometry(case)
    return None if geometry is None else Wrong(tuple(k + 1 for k in geometry[1]), part="size")


@mistake("rf_dilation_forgotten", "rf", rank=20,
         hint="forgot the dilation {dilations}: a dilated window adds D(K-1) j, not (K-1) j: " + RF_STEP)
def rf_dilation_forgotten(case):
    """A dilated conv or pooling layer: its input's field plus (K-1) j, the dilation D left out."""
    from archcalc.homework.mistakes.shapes import _dilations

    geometry = _geometry(case)
    if geometry is None:
        return None
    spans = geometry[1]
    dilations = _dilations(case.net, case.row, len(spans))
    if all(d == 1 for d in dilations) or any(k % d for k, d in zip(spans, dilations)):
        return None
    in_rf = case.net.input_rf(case.row)
    size = tuple(case.net.norm(r + k // d * j) for r, k, d, j in zip(in_rf.size, spans, dilations, in_rf.stride))
    return Wrong(size, part="size", dilations=dilations[0] if len(set(dilations)) == 1 else str(dilations))


@mistake("rf_own_stride", "rf", rank=20,
         hint="that is this layer's own stride; the field's stride (jump) multiplies the strides of all "
              "layers up to here")
def rf_own_stride(case):
    """A conv or pooling layer: its own stride as the field's stride."""
    geometry = _geometry(case)
    return None if geometry is None else Wrong(tuple(geometry[2]), part="stride")


@mistake("rf_input_stride", "rf", rank=20,
         hint="that is the stride (jump) of this layer's input; this layer multiplies it by its own stride "
              "{stride}: j' = j S")
def rf_input_stride(case):
    """A conv or pooling layer of stride > 1: the jump of its input as the field's stride."""
    geometry = _geometry(case)
    if geometry is None or all(s == 1 for s in geometry[2]):
        return None
    stride = geometry[2]
    return Wrong(tuple(case.net.input_rf(case.row).stride), part="stride",
                 stride=str(stride[0]) if len(set(stride)) == 1 else str(list(stride)))


@mistake("rf_own_padding", "rf", rank=20,
         hint="that is this layer's own padding; the start accumulates through every layer: start' = start - P j")
def rf_own_padding(case):
    """A conv or pooling layer that pads: minus its own padding as the field's start."""
    geometry = _geometry(case)
    if geometry is None or not any(geometry[3]):  # start 0 on an unpadded layer: rf_start_zero's case
        return None
    return Wrong(tuple(-p for p in geometry[3]), part="start")


@mistake("rf_start_zero", "rf", rank=30,
         hint="output 0's window begins in the padding: start' = start - P j is negative where layers pad")
def rf_start_zero(case):
    """Start 0 where layers pad."""
    return Wrong((0,) * len(tuple(case.expected.size)), part="start")


@mistake("rf_kernels_added", "rf", rank=40,
         hint="that adds up the kernel sizes; each layer widens the field by D(K-1) times the jump j, not by "
              "K: " + RF_STEP + ", from r = 1")
def rf_kernels_added(case):
    """The field as the sum of the window sizes D(K-1) + 1 of every layer on the way, each times the
    jump before it (3 + 3 + 3 + 3 = 12 for four 3 x 3 convolutions, whose field is 9)."""
    net, row = case.net, case.row
    total = None
    while row is not None:
        geometry = net.window_geometry(row)
        in_rf = net.input_rf(row)
        if not isinstance(in_rf, RF) or not isinstance(row.rf, RF) or not in_rf.regular or not row.rf.regular:
            return None
        if geometry is not None:
            add = tuple((k + 1) * j for k, j in zip(geometry[1], in_rf.stride))
        elif tuple(in_rf.size) == tuple(row.rf.size):
            add = (0,) * len(in_rf.size)  # an elementwise layer: no window
        else:
            return None
        total = add if total is None else tuple(a + b for a, b in zip(total, add))
        source = row.inputs[0] if row.inputs else "input"
        row = None if source == "input" else net.rows.get(source)
    if total is None or tuple(total) == tuple(case.expected.size):
        return None
    return Wrong(tuple(net.norm(t) for t in total), part="size")


@mistake("rf_unscaled", "rf", rank=40,
         hint="forgot to scale by the jump: each layer adds D(K-1) times the product of the strides before it "
              "(" + RF_STEP + ")")
def rf_unscaled(case):
    """Every layer's D(K-1) added without multiplying by the jump (followed back along first inputs)."""
    row = case.row
    naive = case.net.unscaled_size(row) if row is not None else None
    if naive is None or naive == tuple(case.expected.size):
        return None
    return Wrong(naive, part="size")
