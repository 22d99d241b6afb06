"""Swin's window kinds by hand: roll, window_partition, window_merge, patch_merging and
window_attention (shapes, parameters, MACs, receptive fields, refusals)."""
import pytest

from archcalc.geometry.receptive_field import GLOBAL, RF, Axis
from layer_helpers import analyze, last, rf_axes, spec_error

CHANNELS_LAST = ("conv: {out: 12, kernel: 2, stride: 2}", "permute: [1, 2, 0]")  # r 2, j 2, start 0


# --- roll -----------------------------------------------------------------------------------------

def test_roll_moves_values_and_counts_nothing():
    row = last([4, 5, 6], "roll: {shifts: [1, -2], dims: [1, 2]}")
    assert row.output_shape == (4, 5, 6) and row.params == 0 and row.macs == 0


def test_roll_over_channels_keeps_the_field():
    report = analyze([4, 9, 9], "conv: {out: 8, kernel: 3}", "roll: {shifts: [3], dims: [0]}")
    assert report.layers[-1].rf == rf_axes(2, 3, 1, 0)


def test_roll_by_whole_turns_keeps_the_field():
    # 7x7 after the 3x3 conv: a shift of 14 (and 3 + 4 on a dim named twice) is 0 mod 7.
    report = analyze([4, 9, 9], "conv: {out: 8, kernel: 3}", "roll: {shifts: [14, 3, 4], dims: [1, 2, 2]}")
    assert report.layers[-1].rf == rf_axes(2, 3, 1, 0)


def test_roll_along_a_spatial_axis_is_not_tracked():
    report = analyze([4, 9, 9], "conv: {out: 8, kernel: 3}", "roll: {shifts: [1], dims: [-1]}",
                     "conv: {out: 8, kernel: 3}")
    assert report.layers[1].rf is None and report.layers[2].rf is None


def test_roll_channels_last_keeps_the_field_over_channels_only():
    kept = analyze([3, 8, 8], *CHANNELS_LAST, "roll: {shifts: [5], dims: [2]}")
    assert kept.layers[-1].rf == RF((2, 2), (2, 2), (0, 0), layout=(0, 1))
    moved = analyze([3, 8, 8], *CHANNELS_LAST, "roll: {shifts: [-1], dims: [0]}")
    assert moved.layers[-1].rf is None


def test_roll_refusals():
    assert "different lengths" in spec_error([4, 5, 6], "roll: {shifts: [1, 2], dims: [1]}").message
    assert "expected -3..2" in spec_error([4, 5, 6], "roll: {shifts: [1], dims: [3]}").message
    assert "'shifts' is an empty list" in spec_error([4, 5, 6], "roll: {shifts: [], dims: []}").message
    spec_error([4, 5, 6], "roll: {shifts: [1]}")  # dims is required


# --- window_partition / window_merge --------------------------------------------------------------

@pytest.mark.parametrize("window, out", [(7, (6, 49, 8)), ([5, 4], (8, 20, 8)), (1, (150, 1, 8)),
                                         ([10, 15], (1, 150, 8)), (16, (1, 256, 8))])
def test_partition_pads_to_whole_windows(window, out):
    # [H, W, C] = [10, 15, 8]: ceil(10/7)*ceil(15/7) = 2*3 windows of 49; ceil(10/5)*ceil(15/4) = 2*4 of 20.
    row = last([10, 15, 8], f"window_partition: {window}")
    assert row.output_shape == out and row.params == 0 and row.macs == 0


def test_merge_reads_h_and_w_from_its_second_input():
    report = analyze([10, 15, 8], "{name: p, window_partition: [5, 4]}", "relu",
                     "{name: m, window_merge: [5, 4], from: [relu1, input]}")
    assert report.layer("m").output_shape == (10, 15, 8)
    assert report.layer("m").params == 0 and report.layer("m").macs == 0


def test_partition_and_merge_leave_the_field_untracked():
    report = analyze([3, 8, 8], *CHANNELS_LAST, "{name: p, window_partition: 2}",
                     "{name: m, window_merge: 2, from: [p, permute1]}")
    assert report.layer("p").rf is None and report.layer("m").rf is None


def test_partition_and_merge_refusals():
    assert "[H, W, C]" in spec_error([10, 15], "window_partition: 7").message
    tokens = spec_error([10, 15, 8], "{name: p, window_partition: 5}", "{window_merge: 4, from: [p, input]}")
    assert "the windows hold 25 tokens, but a window of 4 x 4 holds 16" in tokens.message
    count = spec_error([10, 15, 8], "{name: p, window_partition: 5}", "{name: q, from: input, maxpool: 2}",
                       "{window_merge: 5, from: [p, q]}")
    # maxpool reads [10, 15, 8] as [C, H, W]: [10, 7, 4], a 10 x 7 map of ceil(10/5)*ceil(7/5) = 4 windows.
    assert "there are 6 windows, but a 10 x 7 map holds ceil(10/5)*ceil(7/5) = 4 windows" in count.message
    assert "[windows, like]" in spec_error([10, 15, 8], "window_partition: 5", "window_merge: 5").message


# --- patch_merging --------------------------------------------------------------------------------

def test_patch_merging_pads_odd_sizes_and_halves():
    # [7, 10, 6]: odd H padded to 8 -> [4, 5, 12]; LayerNorm(24) 48 + Linear(24, 12) 288 = 336;
    # MACs 4*5 positions * 24 * 12 = 5760.
    row = last([7, 10, 6], "patch_merging")
    assert row.output_shape == (4, 5, 12)
    assert (row.trainable_params, row.non_trainable_params) == (336, 0)
    assert row.macs == 5760


def test_swin_t_patch_merging_figures():
    row = last([56, 56, 96], "patch_merging")  # merge2 of Swin-T: 8*96 + 8*96^2, 28*28*384*192
    assert row.output_shape == (28, 28, 192) and row.params == 74_496 and row.macs == 57_802_752


def test_patch_merging_is_a_two_tap_stride_two_window():
    # conv 2/2: r 2, j 2 -> r 2 + (2-1)*2 = 4, j 4, start 0, still channels-last.
    report = analyze([3, 16, 16], *CHANNELS_LAST, "patch_merging")
    assert report.layers[-1].rf == RF((4, 4), (4, 4), (0, 0), layout=(0, 1))
    # Back to [C, H, W] and a 3x3 conv: 4 + 2*4 = 12.
    back = analyze([3, 16, 16], *CHANNELS_LAST, "patch_merging", "permute: [2, 0, 1]", "conv: {out: 4, kernel: 3}")
    assert back.layers[-1].rf == rf_axes(2, 12, 4, 0)


def test_patch_merging_of_a_map_whose_axes_are_not_channels_last_is_not_tracked():
    assert last([8, 8, 4], "patch_merging").rf is None  # the input's field has H, W at dims 1, 2


def test_patch_merging_needs_three_dims():
    assert "[H, W, C]" in spec_error([8, 4], "patch_merging").message


# --- window_attention -----------------------------------------------------------------------------

def test_window_attention_parameters_and_macs():
    # C 12, 3 heads, window 4: qkv 3*144 + 36, proj 144 + 12, table 7*7*3 = 147 -> 771.
    # [6, 9] padded to [8, 12]: 8*12*4*144 + 2*8*12*16*12 = 55296 + 36864 = 92160.
    row = last([6, 9, 12], "window_attention: {heads: 3, window: 4, shift: 2}")
    assert row.output_shape == (6, 9, 12)
    assert (row.trainable_params, row.non_trainable_params) == (771, 0)
    assert row.macs == 92_160


def test_window_attention_without_biases_and_a_rectangular_window():
    # qkv 3*144, proj 144, table (2*3-1)*(2*5-1)*2 = 5*9*2 = 90 -> 666; [6, 10] padded to [6, 10]:
    # 60*4*144 + 2*60*15*12 = 34560 + 21600 = 56160.
    row = last([6, 10, 12], "window_attention: {heads: 2, window: [3, 5], qkv_bias: false, proj_bias: false}")
    assert row.params == 666 and row.macs == 56_160


def test_swin_t_first_attention_figures():
    row = last([56, 56, 96], "window_attention: {heads: 3, window: 7, shift: 3}")
    # 4*96^2 + 4*96 + 169*3 = 37755; 56*56*4*96^2 + 2*56*56*49*96.
    assert row.params == 37_755 and row.macs == 145_108_992


def test_unshifted_window_attention_sees_its_whole_window():
    # After the 2/2 conv on 16 x 16: 8 x 8 positions, window 4: output o reads positions
    # 4*floor(o/4) .. +3, pixels 8*floor(o/4) .. +7: size 8, jump 8/4 = 2, start 0.
    report = analyze([3, 16, 16], *CHANNELS_LAST, "{name: a, window_attention: {heads: 3, window: 4}}")
    rf = report.layer("a").rf
    assert (rf.size, rf.stride, rf.start, rf.layout) == ((8, 8), (2, 2), (0, 0), (0, 1))
    assert rf.exact_axes()[0] == Axis(4, 8, ((0, 7),) * 4)


def test_the_residual_after_window_attention_keeps_the_window():
    report = analyze([3, 16, 16], *CHANNELS_LAST, "{name: a, window_attention: {heads: 3, window: [4, 2]}}",
                     "{add: {}, from: [a, permute1]}", "permute: [2, 0, 1]")
    rf = report.layers[-1].rf
    assert (rf.size, rf.stride, rf.start, rf.layout) == ((8, 4), (2, 2), (0, 0), None)


def test_a_shift_dropped_as_torchvision_drops_it_keeps_the_field():
    # 8 x 8 map and window 8: padded size 8 is no larger than the window, the shift is dropped.
    report = analyze([3, 16, 16], *CHANNELS_LAST, "{name: a, window_attention: {heads: 3, window: 8, shift: 4}}")
    assert report.layer("a").rf.size == (16, 16)


@pytest.mark.parametrize("shape, window, shift, effective", [
    ([6, 9, 12], 4, 2, (2, 2)),     # padded to 8 x 12, both larger than 4: shifted
    ([4, 9, 12], 4, 2, (0, 2)),     # padded H 4 is no larger than the window: H's shift dropped
    ([7, 7, 12], 7, 3, (0, 0)),     # Swin-T's last stage at 224: one window, no shift
    ([5, 5, 12], [7, 3], [3, 1], (0, 1)),  # padded to 7 x 6
])
def test_the_shift_is_dropped_exactly_where_torchvision_drops_it(shape, window, shift, effective):
    import archcalc
    from archcalc.layers import KINDS
    from layer_helpers import spec

    graph = archcalc.parse_spec(spec(shape, f"window_attention: {{heads: 3, window: {window}, shift: {shift}}}"))
    node = graph.nodes[0]
    assert KINDS["window_attention"].effective_shift(node.args, [tuple(shape)]) == effective


def test_a_shift_makes_the_field_position_dependent_not_tracked():
    report = analyze([3, 32, 32], *CHANNELS_LAST, "{name: a, window_attention: {heads: 3, window: 4, shift: 2}}")
    assert report.layer("a").rf is None
    one_axis = analyze([3, 8, 32], *CHANNELS_LAST, "{name: a, window_attention: {heads: 3, window: 4, shift: 2}}")
    assert one_axis.layer("a").rf is None  # H's shift dropped, W's kept: still position-dependent


def test_global_stays_global():
    report = analyze([3, 8, 8], "global_avgpool", "permute: [1, 2, 0]", "window_attention: {heads: 1, window: 2}",
                     "patch_merging", "roll: {shifts: [1], dims: [0]}")
    assert [row.rf for row in report.layers[-3:]] == [GLOBAL] * 3


def test_window_attention_refusals():
    assert "[H, W, C]" in spec_error([12, 8], "window_attention: {heads: 3, window: 4}").message
    assert "not divisible by heads 5" in spec_error([8, 8, 12], "window_attention: {heads: 5, window: 4}").message
    err = spec_error([8, 8, 12], "window_attention: {heads: 3, window: 4, shift: 4}")
    assert "must be smaller than the window" in err.message and err.loc.col > 40
    assert "has 3 values" in spec_error([8, 8, 12], "window_attention: {heads: 3, window: [4, 4, 4]}").message
    spec_error([8, 8, 12], "window_attention: {heads: 3}")  # the window is required
    spec_error([8, 8, 12], "window_attention: {heads: 3, window: 4, shift: -1}")


def test_window_attention_keeps_what_attention_keeps_for_backward_window_by_window():
    from archcalc.layers import KINDS

    # [6, 9, 12], 3 heads, window 4, padded to 8 x 12 = 96 tokens: the windows (qkv's input) 1152,
    # q scaled, k^T and v (copies for the batched matmuls) 3*1152, the softmax 3 heads * 96 tokens
    # * 16 keys = 4608, the heads' output (proj's input) 1152 (measured in test_saved_sequence_measured.py)
    a = {"heads": 3, "window": 4, "shift": 2, "qkv_bias": True, "proj_bias": True, "attention_dropout": 0.0,
         "dropout": 0.0}
    saved = KINDS["window_attention"].saved_for_backward(a, [(6, 9, 12)], (6, 9, 12))
    assert saved == 1152 + 3 * 1152 + 4608 + 1152 == 10_368
    # attention_dropout keeps its float mask and the dropped weights, dropout its mask
    dropped = {**a, "attention_dropout": 0.1, "dropout": 0.1}
    saved = KINDS["window_attention"].saved_for_backward(dropped, [(6, 9, 12)], (6, 9, 12))
    assert saved == 10_368 + 2 * 4608 + 1152
