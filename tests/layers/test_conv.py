"""conv and conv_transpose: hand-computed shapes, parameters, MACs, receptive fields and errors
(no torch needed)."""
from fractions import Fraction

import pytest

from layer_helpers import RF, analyze, last, rf1, rf_axes, spec_error


# --- conv: hand values -------------------------------------------------------------------------

def test_lecture_conv_same_padding():
    row = last([16, 256, 256], "conv: {out: 16, kernel: 7, padding: same}")
    assert row.output_shape == (16, 256, 256)
    assert row.trainable_params == 12560  # 16*16*7*7 + 16 = 12544 + 16
    assert row.non_trainable_params == 0
    assert row.macs == 822_083_584  # 16*16*49 * 256*256 = 12544 * 65536
    assert row.rf == rf_axes(2, 7, 1, -3)  # same: left pad 6 // 2 = 3


def test_strided_dilated_conv():
    row = last([3, 17, 17], "conv: {out: 8, kernel: 3, stride: 2, padding: 1, dilation: 2, groups: 1}")
    # span 2*(3-1)+1 = 5; (17 + 2 - 5) // 2 + 1 = 14 // 2 + 1 = 8
    assert row.output_shape == (8, 8, 8)
    assert row.trainable_params == 224  # 3*3*3*8 + 8 = 216 + 8
    assert row.macs == 13_824  # 8*8 positions * 9 * 3 * 8
    assert row.rf == rf_axes(2, 5, 2, -1)  # 1 + 2*(3-1)*1 = 5, jump 2, start -1


def test_conv1d_grouped():
    row = last([4, 100], "conv: {out: 6, kernel: 5, stride: 3, padding: 2, groups: 2}")
    assert row.output_shape == (6, 34)  # (100 + 4 - 5) // 3 + 1 = 33 + 1
    assert row.trainable_params == 66  # 5 * (4/2) * 6 + 6
    assert row.macs == 2040  # 34 * 5 * 2 * 6
    assert row.rf == rf1(5, 3, -2)


def test_conv3d_per_axis_without_bias():
    row = last([2, 8, 10, 12], "conv: {out: 4, kernel: [3, 1, 5], stride: [1, 2, 2], padding: [1, 0, 2], bias: false}")
    # D: (8+2-3)//1+1 = 8;  H: (10+0-1)//2+1 = 5;  W: (12+4-5)//2+1 = 6
    assert row.output_shape == (4, 8, 5, 6)
    assert row.trainable_params == 120  # 3*1*5 * 2 * 4, no bias
    assert row.macs == 28_800  # 8*5*6 = 240 positions * 15 * 2 * 4 = 240 * 120
    assert row.rf == RF((3, 1, 5), (1, 2, 2), (-1, 0, -2))


def test_depthwise_conv():
    row = last([32, 56, 56], "conv: {out: 32, kernel: 3, padding: 1, groups: 32}")
    assert row.output_shape == (32, 56, 56)
    assert row.trainable_params == 320  # 3*3*1*32 + 32
    assert row.macs == 903_168  # 56*56 * 9 * 1 * 32 = 3136 * 288


def test_pointwise_conv_primary_argument_needs_kernel():
    err = spec_error([3, 8, 8], "conv: 16")
    assert "needs argument 'kernel'" in err.message


@pytest.mark.parametrize("kernel, dilation, left, size, out", [
    (4, 1, 1, 4, 10),   # total 3: 1 left, 2 right (PyTorch puts the odd one on the right)
    (3, 1, 1, 3, 10),   # total 2: 1 + 1
    (4, 2, 3, 7, 10),   # total 2*3 = 6: 3 + 3, dilated span 7
    (5, 3, 6, 13, 10),  # total 3*4 = 12: 6 + 6
])
def test_same_padding_keeps_size(kernel, dilation, left, size, out):
    row = last([1, 10], f"conv: {{out: 2, kernel: {kernel}, dilation: {dilation}, padding: same}}")
    assert row.output_shape == (2, out)
    assert row.rf == rf1(size, 1, -left)


def test_valid_padding_is_no_padding():
    row = last([1, 10], "conv: {out: 2, kernel: 4, padding: valid}")
    assert row.output_shape == (2, 7)  # 10 - 4 + 1
    assert row.rf == rf1(4, 1, 0)


@pytest.mark.parametrize("stride, sizes, jumps, starts", [
    (1, (3, 5, 7), (1, 1, 1), (-1, -2, -3)),      # r += 2*j each time; start -= 1*j
    (2, (3, 7, 15), (2, 4, 8), (-1, -3, -7)),     # 3; 3 + 2*2 = 7; 7 + 2*4 = 15
])
def test_receptive_field_of_three_3x3_convs(stride, sizes, jumps, starts):
    conv = f"conv: {{out: 4, kernel: 3, stride: {stride}, padding: 1}}"
    rows = analyze([3, 64, 64], conv, conv, conv).layers
    assert [r.rf for r in rows] == [rf_axes(2, s, j, b) for s, j, b in zip(sizes, jumps, starts)]


def test_receptive_field_with_dilation():
    row = last([1, 32, 32], "conv: {out: 1, kernel: 3, dilation: 2}")
    assert row.rf == rf_axes(2, 5, 1, 0)  # 1 + 2*(3-1) = 5


def test_receptive_field_of_a_vgg_like_stack():
    rows = analyze([3, 224, 224],
                   "conv: {out: 8, kernel: 3, padding: 1}", "conv: {out: 8, kernel: 3, padding: 1}",
                   "maxpool: 2",
                   "conv: {out: 8, kernel: 3, padding: 1}", "conv: {out: 8, kernel: 3, padding: 1}",
                   "maxpool: 2").layers
    # 3, 5; pool: 5 + 1*1 = 6, j 2; 6 + 2*2 = 10, 14; pool: 14 + 1*2 = 16, j 4
    assert [r.rf.size[0] for r in rows] == [3, 5, 6, 10, 14, 16]
    assert [r.rf.stride[0] for r in rows] == [1, 1, 2, 2, 2, 4]
    assert [r.rf.start[0] for r in rows] == [-1, -2, -2, -4, -6, -6]


# --- conv: errors ------------------------------------------------------------------------------

def test_kernel_larger_than_padded_input():
    err = spec_error([1, 4, 4], "conv: {out: 2, kernel: 7, padding: 1}")
    assert "kernel 7 is larger than the padded input along H" in err.message
    assert "4 + padding 2 = 6" in err.message
    assert err.layer == "conv1" and err.kind == "conv"
    assert "<spec>:3:" in str(err)


def test_dilated_kernel_larger_than_input():
    err = spec_error([1, 5], "conv: {out: 2, kernel: 3, dilation: 3}")
    assert "dilated to 7" in err.message and "along L" in err.message


def test_input_channels_not_divisible_by_groups():
    err = spec_error([6, 8, 8], "conv: {out: 4, kernel: 3, groups: 4}")
    assert "input channels 6 are not divisible by groups 4" in err.message


def test_output_channels_not_divisible_by_groups():
    err = spec_error([8, 8, 8], "conv: {out: 6, kernel: 3, groups: 4}")
    assert "output channels 6 are not divisible by groups 4" in err.message


def test_same_padding_with_stride():
    err = spec_error([3, 8, 8], "conv: {out: 4, kernel: 3, stride: 2, padding: same}")
    assert "padding 'same' needs stride 1" in err.message


def test_per_axis_list_of_wrong_length():
    err = spec_error([3, 16], "conv: {out: 4, kernel: [3, 3]}")
    assert "'kernel' has 2 values but the input has 1 spatial axes" in err.message


@pytest.mark.parametrize("shape", [[10], [1, 2, 3, 4, 5]])
def test_conv_needs_one_to_three_spatial_axes(shape):
    err = spec_error(shape, "conv: {out: 4, kernel: 1}")
    assert "conv needs an input shaped" in err.message


@pytest.mark.parametrize("entry, message", [
    ("conv: {out: 0, kernel: 3}", "must be an integer >= 1"),
    ("conv: {out: 4, kernel: 3, stride: 0}", "must be an integer or a list of integers >= 1"),
    ("conv: {out: 4, kernel: 3, padding: -1}", ">= 0"),
    ("conv: {out: 4, kernel: 3, padding: full}", "'padding' is 'full'; expected a number >= 0, a list of them, 'same' or 'valid'"),
    ("conv: {out: 4, kernel: 3, padding_mode: mirror}", "expected one of zeros, reflect"),
    ("conv: {out: 4, kernel: 3, stide: 2}", "did you mean 'stride'"),
])
def test_bad_arguments(entry, message):
    assert message in spec_error([3, 8, 8], entry).message


@pytest.mark.parametrize("mode, padding", [("reflect", 8), ("reflect", "same"), ("circular", 9)])
def test_padding_mode_limits(mode, padding):
    # PyTorch: reflect padding must be smaller than the input, circular at most the input size.
    kernel = 17 if padding == "same" else 3  # same: 16 in total, 8 per side
    err = spec_error([2, 8, 8], f"conv: {{out: 2, kernel: {kernel}, padding: {padding}, padding_mode: {mode}}}")
    assert mode in err.message and "padding" in err.message


@pytest.mark.parametrize("mode, padding, out", [("reflect", 7, 20), ("circular", 8, 22), ("replicate", 20, 46)])
def test_padding_modes_within_limits(mode, padding, out):
    row = last([2, 8, 8], f"conv: {{out: 2, kernel: 3, padding: {padding}, padding_mode: {mode}}}")
    assert row.output_shape == (2, out, out)  # 8 + 2P - 2


# --- conv_transpose: hand values ---------------------------------------------------------------

def test_conv_transpose_doubles_size():
    row = last([16, 8, 8], "conv_transpose: {out: 8, kernel: 4, stride: 2, padding: 1}")
    assert row.output_shape == (8, 16, 16)  # (8-1)*2 - 2 + (4-1) + 0 + 1 = 16
    assert row.trainable_params == 2056  # 16 * 8 * 4*4 + 8
    assert row.macs == 131_072  # input positions 64 * Cin 16 * Cout 8 * 16 taps
    # output 0 (+P = 1) gets input 0 through tap 1 and input -1 through tap 3: 2 inputs
    assert row.rf == RF((2, 2), (Fraction(1, 2),) * 2, (-1, -1))


def test_conv_transpose_1d_output_padding_and_groups():
    row = last([4, 5], "conv_transpose: {out: 6, kernel: 3, stride: 3, output_padding: 2, groups: 2}")
    assert row.output_shape == (6, 17)  # (5-1)*3 - 0 + 2 + 2 + 1
    assert row.trainable_params == 42  # 4 * (6/2) * 3 + 6
    assert row.macs == 180  # 5 * 4 * 3 * 3
    # stride 3 > kernel 3 taps: every output sees one input
    assert row.rf == RF((1,), (Fraction(1, 3),), (0,))


def test_conv_transpose_dilated():
    row = last([2, 6], "conv_transpose: {out: 2, kernel: 3, stride: 2, padding: 1, output_padding: 1, dilation: 2}")
    assert row.output_shape == (2, 14)  # (6-1)*2 - 2 + 2*2 + 1 + 1
    # taps at 0, 2, 4 are all even: one residue class, span (2-0)*2 / 2 = 2 -> 3 inputs
    assert row.rf.size == (3,)


def test_conv_transpose_3d_without_bias():
    row = last([4, 2, 3, 4], "conv_transpose: {out: 2, kernel: [1, 2, 3], stride: [1, 2, 1], bias: false}")
    # (N-1)S - 2P + (K-1) + 1:  D: 1*1 + 0 + 1 = 2;  H: 2*2 + 1 + 1 = 6;  W: 3*1 + 2 + 1 = 6
    assert row.output_shape == (2, 2, 6, 6)
    assert row.trainable_params == 48  # 4 * 2 * 1*2*3
    assert row.macs == 1152  # 2*3*4 = 24 positions * 4 * 2 * 6


@pytest.mark.parametrize("kernel, stride, padding, size, start", [
    (3, 1, 1, 3, -1),  # a stride-1 transposed conv is a conv: 3 inputs from -1
    (3, 2, 0, 2, -1),  # output 0 = input 0 (tap 0) + input -1 (tap 2)
    (2, 2, 0, 1, 0),   # no overlap: each output sees one input
    (5, 2, 2, 3, -1),  # taps 0,2,4 share a residue: span 2 -> 3 inputs
])
def test_conv_transpose_receptive_field(kernel, stride, padding, size, start):
    row = last([1, 16], f"conv_transpose: {{out: 1, kernel: {kernel}, stride: {stride}, padding: {padding}}}")
    assert row.rf == RF((size,), (Fraction(1, stride) if stride > 1 else 1,), (start,))


def test_conv_then_conv_transpose_jump_returns_to_one():
    rows = analyze([1, 32], "conv: {out: 2, kernel: 3, stride: 2, padding: 1}",
                   "conv_transpose: {out: 1, kernel: 2, stride: 2}").layers
    assert rows[0].rf == rf1(3, 2, -1)
    assert rows[1].rf.stride == (1,)  # 2 / 2
    assert rows[1].rf.size == (3,)  # one input of the conv each


# --- conv_transpose: errors --------------------------------------------------------------------

def test_conv_transpose_output_padding_too_large():
    err = spec_error([2, 8], "conv_transpose: {out: 2, kernel: 3, stride: 2, output_padding: 2}")
    assert "output_padding 2 must be smaller than the stride 2 or the dilation 1" in err.message


def test_conv_transpose_padding_too_large():
    err = spec_error([3, 1, 1], "conv_transpose: {out: 2, kernel: 3, padding: 2}")
    assert "padding is too large" in err.message  # 0 - 4 + 2 + 1 = -1


def test_conv_transpose_groups():
    err = spec_error([6, 4], "conv_transpose: {out: 4, kernel: 3, groups: 4}")
    assert "input channels 6 are not divisible by groups 4" in err.message
