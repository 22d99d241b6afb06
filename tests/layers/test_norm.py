"""batchnorm, layernorm, groupnorm, instancenorm: hand-computed parameter counts and errors
(no torch needed)."""
import pytest

from layer_helpers import analyze, last, rf_axes, spec_error


def counts(row):
    return row.trainable_params, row.non_trainable_params


@pytest.mark.parametrize("shape, args, expected", [
    ([64, 56, 56], "{}", (128, 128)),  # 2C scale/shift + 2C running mean/var: the lecture's 4K = 256
    ([10], "{}", (20, 20)),  # after a linear layer (BatchNorm1d on [N, C])
    ([20, 64], "{}", (40, 40)),  # [C, L]: channels are the first dimension
    ([4, 2, 2, 2], "{}", (8, 8)),  # BatchNorm3d
    ([64, 56, 56], "{affine: false}", (0, 128)),
    ([64, 56, 56], "{track_running_stats: false}", (128, 0)),
    ([64, 56, 56], "{affine: false, track_running_stats: false}", (0, 0)),
])
def test_batchnorm(shape, args, expected):
    row = last(shape, f"batchnorm: {args}")
    assert row.output_shape == tuple(shape)
    assert counts(row) == expected
    assert row.macs == 0


def test_batchnorm_keeps_rf_and_totals():
    r = analyze([3, 32, 32], "conv: {out: 16, kernel: 3, padding: 1, bias: false}", "batchnorm", "relu")
    assert r.layers[1].rf == rf_axes(2, 3, 1, -1)
    assert r.totals.trainable_params == 3 * 9 * 16 + 32  # 432 + 32
    assert r.totals.non_trainable_params == 32
    assert r.totals.params == 496


@pytest.mark.parametrize("shape, args, expected", [
    ([10, 512], "{}", 1024),  # 512 scale + 512 shift
    ([3, 4, 5], "{dims: 2}", 40),  # normalised [4, 5]: 2 * 20
    ([3, 4, 5], "{dims: 3}", 120),  # 2 * 60
    ([10, 512], "{bias: false}", 512),
    ([10, 512], "{affine: false}", 0),
    ([10, 512], "{affine: false, bias: true}", 0),
])
def test_layernorm(shape, args, expected):
    row = last(shape, f"layernorm: {args}")
    assert row.output_shape == tuple(shape)
    assert counts(row) == (expected, 0)


@pytest.mark.parametrize("shape, args, expected", [
    ([32, 4, 4], "8", 64),  # 2C
    ([32, 4, 4], "{groups: 32, affine: false}", 0),
    ([6, 10], "{groups: 3}", 12),
    ([6], "1", 12),
])
def test_groupnorm(shape, args, expected):
    row = last(shape, f"groupnorm: {args}")
    assert row.output_shape == tuple(shape)
    assert counts(row) == (expected, 0)


@pytest.mark.parametrize("shape, args, expected", [
    ([16, 8, 8], "{}", (0, 0)),  # no affine, no running statistics by default
    ([16, 8, 8], "{affine: true}", (32, 0)),
    ([16, 8], "{track_running_stats: true}", (0, 32)),
    ([4, 2, 3, 4], "{affine: true, track_running_stats: true}", (8, 8)),
])
def test_instancenorm(shape, args, expected):
    row = last(shape, f"instancenorm: {args}")
    assert row.output_shape == tuple(shape)
    assert counts(row) == expected


# --- errors ------------------------------------------------------------------------------------

def test_groupnorm_groups_must_divide_channels():
    err = spec_error([32, 4, 4], "groupnorm: 5")
    assert "channels 32 are not divisible by groups 5" in err.message


def test_layernorm_dims_more_than_rank():
    err = spec_error([3, 4, 5], "layernorm: {dims: 4}")
    assert "dims 4 is more than the input's 3 dimensions [3, 4, 5]" in err.message


def test_instancenorm_needs_spatial_axes():
    assert "instancenorm needs an input shaped" in spec_error([16], "instancenorm").message


def test_batchnorm_up_to_three_spatial_axes():
    # analysis used to accept this and only archcalc.torch.build failed (with a LayerError)
    err = spec_error([2, 3, 4, 5, 6], "batchnorm")
    assert "batchnorm supports up to 3 spatial axes" in err.message


@pytest.mark.parametrize("entry, message", [
    ("batchnorm: {momentum: 2}", "between 0 and 1"),
    ("batchnorm: 0.1", "batchnorm takes no single value"),
    ("layernorm: {dims: 0}", ">= 1"),
    ("groupnorm", "groupnorm needs argument 'groups'"),
])
def test_norm_argument_errors(entry, message):
    assert message in spec_error([4, 8, 8], entry).message


def test_instancenorm_needs_more_than_one_position():
    # Found by the random-spec cross-check: F.instance_norm raises on a single spatial value.
    assert "more than one spatial position" in spec_error([4, 1, 1], "instancenorm").message


def test_groupnorm_of_single_values_is_refused():
    # Found by the random-spec cross-check: F.group_norm raises when a group holds one value.
    assert "single value" in spec_error([4, 1], "groupnorm: 4").message
    assert last([4, 2], "groupnorm: 4").output_shape == (4, 2)  # two values per group: fine
