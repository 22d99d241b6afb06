"""maxpool, avgpool, global_avgpool, global_maxpool, adaptive_avgpool: hand-computed values and
errors (no torch needed)."""
from fractions import Fraction

import pytest

from layer_helpers import GLOBAL, RF, analyze, last, rf1, rf_axes, spec_error


def test_resnet_stem_maxpool():
    row = last([64, 112, 112], "maxpool: {kernel: 3, stride: 2, padding: 1}")
    assert row.output_shape == (64, 56, 56)  # (112 + 2 - 3) // 2 + 1 = 55 + 1
    assert (row.trainable_params, row.non_trainable_params, row.macs) == (0, 0, 0)
    assert row.rf == rf_axes(2, 3, 2, -1)


def test_stride_defaults_to_kernel():
    row = last([3, 7, 7], "maxpool: 2")
    assert row.output_shape == (3, 3, 3)  # (7 - 2) // 2 + 1
    assert row.rf == rf_axes(2, 2, 2, 0)


@pytest.mark.parametrize("shape, args, out", [
    ([3, 7, 7], "{kernel: 2, ceil_mode: true}", (3, 4, 4)),  # ceil(5 / 2) + 1 = 4; last start 6 < 7
    # ceil(5 / 2) + 1 = 4, but window 4 would start at 3*2 = 6 >= 5 + 1 (inside right padding): 3
    ([1, 5], "{kernel: 2, padding: 1, ceil_mode: true}", (1, 3)),
    ([1, 6], "{kernel: 3, stride: 2, padding: 1, ceil_mode: true}", (1, 4)),  # ceil(5/2) + 1; start 6 < 7
    ([1, 6], "{kernel: 3, stride: 2, padding: 1}", (1, 3)),  # floor(5/2) + 1
])
def test_ceil_mode(shape, args, out):
    assert last(shape, f"maxpool: {args}").output_shape == out
    assert last(shape, f"avgpool: {args}").output_shape == out


def test_dilated_maxpool():
    row = last([1, 10], "maxpool: {kernel: 3, dilation: 2}")
    assert row.output_shape == (1, 2)  # span 5; stride 3 (the kernel): (10 - 5) // 3 + 1
    assert row.rf == rf1(5, 3, 0)  # 1 + 2*(3-1)


def test_maxpool_3d_per_axis():
    row = last([2, 4, 9, 9], "maxpool: {kernel: [1, 3, 3], stride: [1, 2, 2], padding: [0, 1, 1]}")
    assert row.output_shape == (2, 4, 5, 5)  # (9 + 2 - 3) // 2 + 1 = 5
    assert row.rf == RF((1, 3, 3), (1, 2, 2), (0, -1, -1))


def test_avgpool_values():
    assert last([8, 7, 7], "avgpool: 7").output_shape == (8, 1, 1)
    assert last([2, 4, 6, 8], "avgpool: 2").output_shape == (2, 2, 3, 4)
    row = last([3, 11], "avgpool: {kernel: 3, stride: 2, padding: 1, count_include_pad: false}")
    assert row.output_shape == (3, 6)  # (11 + 2 - 3) // 2 + 1
    assert row.macs == 0 and row.rf == rf1(3, 2, -1)


def test_pool_after_conv_receptive_field():
    rows = analyze([3, 32, 32], "conv: {out: 4, kernel: 3}", "avgpool: 2", "conv: {out: 4, kernel: 3}").layers
    # 3;  3 + 1*1 = 4, j 2;  4 + 2*2 = 8
    assert [r.rf for r in rows] == [rf_axes(2, 3, 1, 0), rf_axes(2, 4, 2, 0), rf_axes(2, 8, 2, 0)]


@pytest.mark.parametrize("kind", ["global_avgpool", "global_maxpool"])
@pytest.mark.parametrize("shape, out", [([512, 7, 7], (512, 1, 1)), ([3, 10], (3, 1)), ([2, 3, 4, 5], (2, 1, 1, 1))])
def test_global_pools(kind, shape, out):
    row = last(shape, kind)
    assert row.output_shape == out
    assert (row.trainable_params, row.non_trainable_params, row.macs) == (0, 0, 0)
    assert row.rf == GLOBAL


@pytest.mark.parametrize("kind", ["global_avgpool", "global_maxpool"])
def test_global_pool_needs_spatial_axes(kind):
    assert f"{kind} needs an input shaped" in spec_error([10], kind).message


def test_adaptive_avgpool_divisible():
    row = last([512, 14, 14], "adaptive_avgpool: 7")
    assert row.output_shape == (512, 7, 7)
    assert row.rf == rf_axes(2, 2, 2, 0)  # windows of 14/7 = 2, jump 2


def test_adaptive_avgpool_uneven_windows():
    row = last([3, 10, 10], "adaptive_avgpool: [7, 5]")
    assert row.output_shape == (3, 7, 5)
    # H: windows floor(i*10/7)..ceil((i+1)*10/7): sizes 2, 2, 3, 2, 3, 2, 2 -> 3; jump 10/7
    # W: 10/5 = 2 each, jump 2
    assert row.rf == RF((3, 2), (Fraction(10, 7), 2), (0, 0))


def test_adaptive_avgpool_to_one_is_global_and_1d_3d():
    assert last([4, 9, 9], "adaptive_avgpool: 1").rf == GLOBAL
    assert last([4, 9], "adaptive_avgpool: 3").output_shape == (4, 3)
    assert last([4, 6, 9, 12], "adaptive_avgpool: [2, 3, 4]").rf == RF((3, 3, 3), (3, 3, 3), (0, 0, 0))


# --- errors ------------------------------------------------------------------------------------

def test_pool_padding_more_than_half_kernel():
    err = spec_error([3, 8, 8], "maxpool: {kernel: 3, padding: 2}")
    assert "padding 2 is more than half the kernel 3" in err.message
    assert "padding 2 is more than half" in spec_error([3, 8], "avgpool: {kernel: 2, padding: 2}").message


def test_pool_kernel_larger_than_input():
    err = spec_error([3, 2, 2], "maxpool: 3")
    assert "kernel 3 is larger than the padded input along H" in err.message


def test_pool_needs_spatial_axes():
    assert "maxpool needs an input shaped" in spec_error([10], "maxpool: 2").message
    assert "avgpool needs an input shaped" in spec_error([1, 2, 3, 4, 5], "avgpool: 2").message


def test_avgpool_has_no_dilation():
    assert "avgpool has no argument 'dilation'" in spec_error([3, 8], "avgpool: {kernel: 2, dilation: 2}").message


def test_adaptive_size_list_of_wrong_length():
    err = spec_error([3, 8, 8], "adaptive_avgpool: [2, 2, 2]")
    assert "'size' has 3 values but the input has 2 spatial axes" in err.message


@pytest.mark.parametrize("kind", ["maxpool", "avgpool"])
@pytest.mark.parametrize("shape, args, out", [
    ([1, 1], "{kernel: 2, ceil_mode: true}", (1, 1)),  # room -1: ceil(-1/2) + 1 = 1 window, overhanging
    ([1, 1], "{kernel: 4, stride: 2, padding: 1, ceil_mode: true}", (1, 1)),  # room 1 + 2 - 4 = -1
    ([2, 3, 3], "{kernel: 4, stride: 3, ceil_mode: true}", (2, 1, 1)),  # room -1 > -3
])
def test_ceil_mode_keeps_a_window_larger_than_the_input(kind, shape, args, out):
    # PyTorch: floor((N + 2P - K + S - 1) / S) + 1 is still 1 when -S < N + 2P - K < 0
    assert last(shape, f"{kind}: {args}").output_shape == out


@pytest.mark.parametrize("kind", ["maxpool", "avgpool"])
def test_ceil_mode_window_too_far_past_the_input(kind):
    # room 1 - 3 = -2 <= -S = -2: ceil(-2 / 2) + 1 = 0 windows
    err = spec_error([1, 1], f"{kind}: {{kernel: 3, stride: 2, ceil_mode: true}}")
    assert "kernel 3 is larger than the padded input along L" in err.message


def test_avgpool_3d_needs_input_as_large_as_kernel():
    # PyTorch's avg_pool3d checks the unpadded input against the kernel; 1d/2d and maxpool do not
    err = spec_error([1, 2, 4, 4], "avgpool: {kernel: 3, padding: 1}")
    assert "kernel 3 is larger than the input along D (2)" in err.message
    assert last([1, 2, 4, 4], "maxpool: {kernel: 3, padding: 1}").output_shape == (1, 1, 2, 2)
    assert last([1, 2, 4], "avgpool: {kernel: 3, padding: 1}").output_shape == (1, 1, 2)  # (2+2-3)//3+1, (4+2-3)//3+1
