"""flatten, reshape, permute, zeropad, upsample: hand-computed values and errors (no torch)."""
from fractions import Fraction

import pytest

from layer_helpers import GLOBAL, RF, analyze, last, rf1, rf_axes, spec_error


# --- flatten -----------------------------------------------------------------------------------

@pytest.mark.parametrize("shape, args, out", [
    ([64, 7, 7], "{}", (3136,)),  # 64 * 7 * 7
    ([4, 5, 6], "{start_dim: 1}", (4, 30)),
    ([4, 5, 6], "{end_dim: 1}", (20, 6)),
    ([4, 5, 6], "{start_dim: -2, end_dim: -1}", (4, 30)),
    ([4, 5, 6], "{start_dim: 1, end_dim: 1}", (4, 5, 6)),
    ([7], "{}", (7,)),
])
def test_flatten(shape, args, out):
    row = last(shape, f"flatten: {args}")
    assert row.output_shape == out
    assert (row.trainable_params, row.non_trainable_params, row.macs) == (0, 0, 0)


def test_flatten_bare_and_rf():
    row = last([64, 7, 7], "flatten")
    assert row.output_shape == (3136,) and row.rf == GLOBAL


def test_flatten_errors():
    assert "start_dim 2 comes after end_dim 1" in spec_error([4, 5, 6], "flatten: {start_dim: 2, end_dim: 1}").message
    err = spec_error([4, 5, 6], "flatten: {start_dim: 3}")
    assert "'start_dim' is 3 but the input has 3 dimensions (batch excluded); expected -3..2" in err.message


# --- reshape -----------------------------------------------------------------------------------

@pytest.mark.parametrize("shape, target, out", [
    ([64, 7, 7], "[-1]", (3136,)),
    ([12, 5], "[3, 4, 5]", (3, 4, 5)),
    ([12, 5], "[-1, 4, 5]", (3, 4, 5)),  # 60 / 20 = 3
    ([12, 5], "[2, -1]", (2, 30)),
    ([60], "-1", (60,)),
    ([3, 8, 8], "[3, 8, 8]", (3, 8, 8)),
])
def test_reshape(shape, target, out):
    assert last(shape, f"reshape: {target}").output_shape == out


def test_reshape_rf_kept_only_for_the_same_shape():
    assert last([3, 8, 8], "reshape: [3, 8, 8]").rf == rf_axes(2, 1, 1, 0)
    assert last([3, 8, 8], "reshape: [3, 64]").rf is None


@pytest.mark.parametrize("target, message", [
    ("[7, 9]", "cannot reshape [12, 5] (60 values) to [7, 9] (63 values)"),
    ("[7, -1]", "cannot reshape [12, 5] (60 values) to [7, -1]"),
    ("[-1, -1]", "has more than one -1"),
    ("[0, 60]", "has a 0"),
    ("[-2, 30]", ">= -1"),
])
def test_reshape_errors(target, message):
    assert message in spec_error([12, 5], f"reshape: {target}").message


# --- permute -----------------------------------------------------------------------------------

@pytest.mark.parametrize("dims, out, layout", [
    # The field moves with the spatial axes H (dim 1) and W (dim 2): `layout` says where they went.
    ("[0, 2, 1]", (3, 5, 4), (2, 1)),
    ("[1, 2, 0]", (4, 5, 3), (0, 1)),
    ("[-1, 0, 1]", (5, 3, 4), (2, 0)),  # -1 is dim 2
    ("[0, 1, 2]", (3, 4, 5), None),
])
def test_permute(dims, out, layout):
    row = last([3, 4, 5], f"permute: {dims}")
    assert row.output_shape == out
    assert row.rf == RF((1, 1), (1, 1), (0, 0), layout=layout)


def test_a_permute_to_channels_last_and_back_keeps_the_field():
    """ConvNeXt's block: 7x7 depthwise, then LayerNorm and the MLP over channels in [H, W, C],
    then back: every field is the 7x7 one, and the next 3x3 conv adds 2 (7 + 2 = 9)."""
    report = analyze([4, 16, 16], "{name: dw, conv: {out: 4, kernel: 7, padding: 3, groups: 4}}",
                     "permute: [1, 2, 0]", "layernorm", "linear: 16", "gelu", "linear: 4",
                     "{scale: {init: 0.000001, dim: -1}}", "softmax: -1", "{name: back, permute: [2, 0, 1]}",
                     "{add: {}, from: [back, input]}", "conv: {out: 4, kernel: 3}")
    seven = RF((7, 7), (1, 1), (-3, -3))
    for row in report.layers[1:-3]:
        assert row.rf == RF((7, 7), (1, 1), (-3, -3), layout=(0, 1)), row.name
    assert report.layer("back").rf == seven and report.layer("add1").rf == seven
    assert report.layers[-1].rf == RF((9, 9), (1, 1), (-3, -3))


@pytest.mark.parametrize("entry", [
    "linear: 8",                      # over W, a spatial axis now last
    "layernorm: {dims: 2}",           # over C and W
    "softmax: -1",                    # along W
    "conv: {out: 2, kernel: 1}",      # reads [C, spatial...]: not the axes it has here
    "flatten",
])
def test_a_layer_mixing_a_moved_spatial_axis_is_not_tracked(entry):
    # [C, H, W] -> [H, C, W]: W is still last, H went first.
    report = analyze([3, 6, 8], "permute: [1, 0, 2]", entry)
    assert report.layers[0].rf == RF((1, 1), (1, 1), (0, 0), layout=(0, 2))
    assert report.layers[1].rf is None


def test_permute_sequence_to_channels_first():
    assert last([20, 64], "permute: [1, 0]").output_shape == (64, 20)  # [T, F] -> [F, T]


@pytest.mark.parametrize("dims", ["[0, 0, 1]", "[0, 1]", "[0, 1, 3]", "[0, 1, 2, 3]", "[-4, 0, 1]"])
def test_permute_not_a_permutation(dims):
    err = spec_error([3, 4, 5], f"permute: {dims}")
    assert "is not a permutation of the input's 3 dimensions" in err.message


# --- zeropad -----------------------------------------------------------------------------------

def test_zeropad_every_side():
    row = last([3, 10, 10], "zeropad: 2")
    assert row.output_shape == (3, 14, 14)
    assert row.rf == rf_axes(2, 1, 1, -2)


def test_zeropad_follows_f_pad_order():
    # [left, right, top, bottom]: W gets 1 + 2, H gets 3 + 4
    row = last([3, 10, 10], "zeropad: [1, 2, 3, 4]")
    assert row.output_shape == (3, 17, 13)
    assert row.rf == RF((1, 1), (1, 1), (-3, -1))


def test_zeropad_1d_3d_and_after_a_strided_conv():
    assert last([2, 5], "zeropad: [0, 3]").output_shape == (2, 8)
    assert last([1, 2, 2, 2], "zeropad: 1").output_shape == (1, 4, 4, 4)
    rows = analyze([1, 16], "conv: {out: 1, kernel: 3, stride: 2}", "zeropad: [2, 0]").layers
    assert rows[1].rf == rf1(3, 2, -4)  # start 0 - 2 * jump 2


def test_zeropad_errors():
    err = spec_error([3, 10, 10], "zeropad: [1, 2, 3]")
    assert "padding has 3 values; expected 1 or 4" in err.message
    assert "zeropad needs an input shaped" in spec_error([10], "zeropad: 1").message


# --- upsample ----------------------------------------------------------------------------------

def test_upsample_nearest_by_two():
    row = last([3, 8, 8], "upsample: 2")
    assert row.output_shape == (3, 16, 16)
    assert row.rf == RF((1, 1), (Fraction(1, 2),) * 2, (0, 0))
    assert (row.trainable_params, row.macs) == (0, 0)


@pytest.mark.parametrize("shape, args, out", [
    ([3, 7], "{scale: 1.5}", (3, 10)),  # floor(10.5)
    ([3, 7], "{scale: 0.5}", (3, 3)),  # floor(3.5)
    ([3, 7, 7], "{scale: [2, 0.5]}", (3, 14, 3)),
    ([3, 4, 4], "{size: [5, 9]}", (3, 5, 9)),
    ([3, 4, 4], "{size: 6, mode: bilinear, align_corners: true}", (3, 6, 6)),
    ([3, 4], "{scale: 3, mode: linear}", (3, 12)),
    ([2, 2, 3, 4], "{scale: 2, mode: trilinear}", (2, 4, 6, 8)),
])
def test_upsample_sizes(shape, args, out):
    assert last(shape, f"upsample: {args}").output_shape == out


def test_upsample_rf_of_interpolating_modes():
    # bilinear reads 2 neighbours: r + (2-1) j; bicubic 4: r + 3 j
    assert last([1, 8, 8], "upsample: {scale: 2, mode: bilinear}").rf.size == (2, 2)
    assert last([1, 8, 8], "upsample: {scale: 2, mode: bicubic}").rf.size == (4, 4)
    # to a size: jump = N / M = 8 / 12
    assert last([1, 8], "upsample: {size: 12}").rf.stride == (Fraction(2, 3),)


@pytest.mark.parametrize("shape, args, message", [
    ([3, 8, 8], "{scale: 2, size: 16}", "give exactly one of 'scale' and 'size'"),
    ([3, 8, 8], "{mode: nearest}", "give exactly one of 'scale' and 'size'"),
    ([3, 8], "{scale: 2, mode: bilinear}", "mode 'bilinear' needs 2 spatial axes; the input has 1"),
    ([3, 8, 8], "{scale: 2, align_corners: true}", "align_corners only applies to the linear modes"),
    ([3, 5], "{scale: 0.1}", "makes the output empty"),  # floor(0.5) = 0
    ([3, 5], "{scale: -2}", "scale must be positive"),
    ([3, 5], "{scale: [2, 2]}", "'scale' has 2 values but the input has 1 spatial axes"),
    ([3, 5], "{scale: 2, mode: area}", "expected one of nearest, linear"),
])
def test_upsample_errors(shape, args, message):
    assert message in spec_error(shape, f"upsample: {args}").message


def test_softmax2d_after_a_permute_mixes_what_is_now_dim_0():
    # [C, H, W] -> [H, C, W]: softmax2d normalises over dim 0, now H, a spatial axis.
    assert analyze([3, 6, 8], "permute: [1, 0, 2]", "softmax2d").layers[1].rf is None
    # [C, H, W] -> [C, W, H]: dim 0 is still the channels, so the field goes on.
    assert analyze([3, 6, 8], "permute: [0, 2, 1]", "softmax2d").layers[1].rf == RF((1, 1), (1, 1), (0, 0), layout=(2, 1))


def test_every_kind_without_required_arguments_says_what_it_mixes_without_failing():
    """Any kind may follow a permute: its mixed_dims must answer (or raise a LayerError)."""
    from archcalc.errors import LayerError
    from archcalc.layers import KINDS

    for kind, layer in sorted(KINDS.items()):
        if any(arg.required for arg in layer.args):
            continue
        args = {arg.name: arg.default for arg in layer.args}
        try:
            mixed = layer.mixed_dims(args, [(4, 6, 8)])
        except LayerError:
            continue
        assert mixed is None or all(0 <= d < 3 for d in mixed), kind
