"""channel_shuffle by hand: a permutation of channels, nothing counted, fields unchanged."""
import pytest

from layer_helpers import analyze, last, rf_axes, spec_error


def test_shape_params_and_macs():
    row = last([12, 5, 7], "channel_shuffle: 3")
    assert row.output_shape == (12, 5, 7) and row.params == 0 and row.macs == 0


def test_the_field_of_what_came_before_is_kept():
    # 3x3 then 3x3 with stride 2: sizes 3 and 3 + 2*1 = 5 on both axes, jump 2.
    report = analyze([4, 16, 16], "conv: {out: 8, kernel: 3, stride: 2}", "channel_shuffle: {groups: 4}",
                     "conv: {out: 8, kernel: 3}")
    assert report.layers[1].rf == rf_axes(2, 3, 2, 0)
    assert report.layers[2].rf == rf_axes(2, 7, 2, 0)


def test_groups_must_divide_the_channels_located_at_groups():
    err = spec_error([6, 4, 4], "channel_shuffle: {groups: 4}")
    assert "input channels 6 are not divisible by groups 4" in err.message
    assert (err.loc.line, err.loc.col) == (3, 31)


@pytest.mark.parametrize("entry", ["channel_shuffle: 0", "channel_shuffle: 1.5", "channel_shuffle: {}"])
def test_bad_groups_are_refused(entry):
    spec_error([4, 4, 4], entry)


def test_a_vector_has_no_channels_to_shuffle():
    assert "needs an input shaped [C, L]" in spec_error([8], "channel_shuffle: 2").message
