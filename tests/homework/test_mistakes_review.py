"""Review regressions for the catalogue of mistakes: each case worked out by hand (PyTorch's
conventions), answers a student could write on networks the catalogue's own tests do not use."""
from tests.homework.test_mistakes import one

# maxpool 3 /2 with ceil_mode on 8 x 8: ceil((8 - 3)/2) + 1 = 4 (floor would give 3)
CEIL = "input: [1, 8, 8]\nlayers:\n  - {name: mp, maxpool: {kernel: 3, stride: 2, ceil_mode: true}}\n"
# a 2 /2 ceil_mode pooling on 9 x 9: ceil(7/2) + 1 = 5; floor gives 4
CEIL9 = "input: [1, 9, 9]\nlayers:\n  - {name: mp, maxpool: {kernel: 2, stride: 2, ceil_mode: true}}\n"


def test_ceil_mode_ignored_named_before_off_by_one():
    # 3 is both floor(5/2) + 1 (ceil_mode ignored) and ceil(5/2) (the + 1 left out): the layer's own
    # ceil_mode is the likelier mistake
    r = one(CEIL, "mp.output_shape", "[1, 3, 3]")
    assert r.mistake == "ceil_mode_ignored", r.hint
    assert "M = ceil((N + 2P - D(K-1) - 1)/S) + 1" in r.hint


def test_window_hints_of_a_ceil_mode_layer_give_its_ceil_formula():
    # ceil(7/2) = 4 without the + 1: off by one, and the formula shown is the layer's (ceil), not floor
    r = one(CEIL9, "mp.output_shape", "[1, 4, 4]")
    assert r.mistake == "ceil_mode_ignored"  # floor(7/2) + 1 = 4 as well: named first
    # 8 = 9 - 2 + 1, not divided by the stride
    r = one(CEIL9, "mp.output_shape", "[1, 8, 8]")
    assert r.mistake == "stride_forgotten", r.hint
    assert "ceil((N + 2P" in r.hint and "floor(" not in r.hint


def test_rounded_up_is_no_mistake_with_ceil_mode():
    # the right answer 4 is rounded up: verdict right, no hint
    r = one(CEIL, "mp.output_shape", "[1, 4, 4]")
    assert r.verdict == "right" and r.hint is None
    # without ceil_mode, 4 is the rounded-up size of floor(5/2) + 1 = 3
    r = one(CEIL.replace(", ceil_mode: true", ""), "mp.output_shape", "[1, 4, 4]")
    assert r.mistake == "rounded_up", r.hint


# dw: depthwise 3 x 3 on 8 channels, (9*1 + 1)*8 = 80; gc: 8 -> 16 channels in 4 groups, 3 x 3:
# (9*2 + 1)*16 = 304; total 384
GROUPED = """\
input: [8, 10, 10]
layers:
  - {name: dw, conv: {out: 8, kernel: 3, groups: 8, padding: 1}}
  - {name: gc, conv: {out: 16, kernel: 3, groups: 4}}
"""


def test_forgot_input_channels_of_a_grouped_conv_names_the_group_s_channels():
    # (3*3 + 1)*16 = 160: the Cin/groups = 2 input channels left out (not "all 8")
    r = one(GROUPED, "gc.params", 160)
    assert r.mistake == "forgot_input_channels", r.hint
    assert "the 2 input channels of its group (Cin/groups = 8/4)" in r.hint and "all 8" not in r.hint


def test_groups_forgotten():
    # gc over all 8 channels: 3*3*8*16 + 16 = 1,168
    r = one(GROUPED, "gc.params", 1168)
    assert r.mistake == "groups_forgotten", r.hint
    assert "groups = 4" in r.hint and "the 2 input channels of its group" in r.hint
    # both convs so: dw 3*3*8*8 + 8 = 584, gc 1,168: 1,752
    r = one(GROUPED, "total.params", 584 + 1168)
    assert r.mistake == "groups_forgotten", r.hint
    assert r.hint.startswith("in every grouped convolution the groups are left out (groups = 4 or 8)")
    # an ungrouped conv has no groups to forget
    r = one(GROUPED.replace(", groups: 4", ""), "gc.params", 1168)
    assert r.verdict == "right"


def test_start_zero_on_an_unpadded_layer_is_not_its_own_padding():
    # conv2 (1 x 1, unpadded) after a padded 3 x 3: field 3, start -1; start 0 is not "this layer's own
    # padding" (it has none) but a start that forgot the padding before it
    spec = "input: [1, 8, 8]\nlayers:\n  - conv: {out: 2, kernel: 3, padding: 1}\n  - conv: {out: 2, kernel: 1}\n"
    r = one(spec, "conv2.rf", "{start: 0}")
    assert r.mistake == "rf_start_zero", r.hint
    # a padded layer's own -P is still named: conv2 3 x 3 padded 1 after conv1: start -2, own -1
    spec = spec.replace("kernel: 1}", "kernel: 3, padding: 1}")
    r = one(spec, "conv2.rf", "{start: -1}")
    assert r.mistake == "rf_own_padding", r.hint


def test_dilation_forgotten_per_axis_and_in_macs():
    # 3 x 3, dilation [2, 3] on [3, H, W]: [4, H - 4, W - 6]; without it [4, H - 2, W - 2]
    spec = "input: [3, H, W]\nlayers:\n  - {name: c, conv: {out: 4, kernel: 3, dilation: [2, 3]}}\n"
    r = one(spec, "c.output_shape", '[4, "H-2", "W-2"]')
    assert r.mistake == "dilation_forgotten" and "forgot the dilation [2, 3]" in r.hint, r.hint
    # MACs 27*4 = 108 per position: 108*(H - 2)*(W - 2) for an undilated output
    r = one(spec, "c.macs", '"108*(H-2)*(W-2)"')
    assert r.mistake == "dilation_forgotten", r.hint
    assert r.hint.startswith("these MACs are for an output of [4, H - 2, W - 2]")
    # an undilated conv: no such mistake (H - 2 is then right)
    r = one(spec.replace(", dilation: [2, 3]", ""), "c.output_shape", '[4, "H-2", "W-2"]')
    assert r.verdict == "right"


def test_one_bias_per_layer_says_how_many_are_missing():
    # Written Assignment 2 in colour, every layer with one bias: 40,451 - 131 + 3 = 40,323; the answer
    # is 128 short (131 biases, 3 counted), not 131
    spec = ("input: [3, 8, 8]\nlayers:\n  - conv: {out: 64, kernel: 3, padding: 1}\n"
            "  - conv: {out: 64, kernel: 3, padding: 1}\n  - conv: {out: 3, kernel: 3, padding: 1}\n")
    r = one(spec, "total.params", 40323)
    assert r.mistake == "one_bias_per_layer"
    assert r.hint.endswith("131 biases in all, not 3 (+128)"), r.hint
    r = one(spec, "conv1.params", 1792 - 63)
    assert r.hint.endswith("64 biases, not 1 (+63)"), r.hint


def test_kernel_forgotten_names_the_kernel_not_the_dilated_span():
    # 3 x 3 of dilation 2, 2 -> 4 channels: (9*2 + 1)*4 = 76; with 1 x 1 filters 2*4 + 4 = 12. The
    # kernel is 3 x 3 (its window spans 5 x 5 inputs)
    spec = "input: [2, 9, 9]\nlayers:\n  - {name: c, conv: {out: 4, kernel: 3, dilation: 2}}\n"
    r = one(spec, "c.params", 12)
    assert r.mistake == "kernel_forgotten" and "K1 x K2 = 3 x 3" in r.hint, r.hint


def test_rf_dilation_forgotten_in_a_dilated_causal_stack():
    # kernel 3: the first conv's field 3; then kernel 7 of dilation 2: 3 + 2*6 = 15; forgetting the
    # dilation 3 + 6 = 9 (its own window is 13)
    spec = ("input: [1, 64]\nlayers:\n  - {zeropad: [2, 0]}\n  - conv: {out: 2, kernel: 3}\n"
            "  - {zeropad: [12, 0]}\n  - conv: {out: 2, kernel: 7, dilation: 2}\n")
    r = one(spec, "conv2.rf", 9)
    assert r.mistake == "rf_dilation_forgotten" and "forgot the dilation 2" in r.hint, r.hint
    assert one(spec, "conv2.rf", 15).verdict == "right"
    assert one(spec, "conv2.rf", 13).mistake == "rf_own_window"


def test_weights_for_macs_gives_a_linear_layer_its_own_formula():
    # a linear 32 -> 8 on 16 vectors: 256 weights, MACs 16*256 = 4,096; a 1-D conv 16 -> 2, kernel 3:
    # 96 weights at 30 positions, 2,880
    spec = "input: [16, 32]\nlayers:\n  - {name: fc, linear: 8}\n  - {name: c, conv: {out: 2, kernel: 3}, from: input}\n"
    r = one(spec, "fc.macs", 256)
    assert r.mistake == "weights_for_macs" and "positions (16)" in r.hint and "K1*K2" not in r.hint, r.hint
    r = one(spec, "c.macs", 96)
    assert "positions (30)" in r.hint and "K1*K2*Cin/groups*Cout" in r.hint, r.hint
    # batch 2: 8,192 MACs; the 32 "positions" are 16 vectors of 2 examples
    r = one(spec, "fc.macs", 256, batch=2)
    assert "output positions and the batch size 2" in r.hint, r.hint


def test_a_bare_whole_number_s_trailing_zeros_are_not_its_precision():
    from archcalc.homework.answers import parse_answers
    from archcalc.homework.check import half_unit

    sheet = parse_answers('answers:\n  a.params: "about 40,000"\n  b.params: "about 40,320"\n  c.params: "~1700"\n'
                          '  d.params: "about 40000.0"\n  e.params: "about 1.5"\n', "a.yaml")
    assert [half_unit(a.value) for a in sheet.answers] == [5000, 5, 50, 0.05, 0.05]
    # the colour denoiser's 40,451: "about 40,000" is 40 k written out, not "forgot the biases" (40,320)
    spec = ("input: [3, 8, 8]\nlayers:\n  - conv: {out: 64, kernel: 3, padding: 1}\n"
            "  - conv: {out: 64, kernel: 3, padding: 1}\n  - conv: {out: 3, kernel: 3, padding: 1}\n")
    r = one(spec, "total.params", '"about 40,000"')
    assert r.verdict == "wrong" and r.mistake is None and r.hint.startswith("1.1 % below"), r.hint
    r = one(spec, "total.params", '"about 40,320"', top="tolerance: 0.1%\n")
    assert r.mistake == "forgot_biases", r.hint


def test_global_on_a_field_covering_every_output_is_not_called_a_window():
    # 3 x 3 'same' convs on a 3 x 3 image: conv2's field 5 (start -2) covers the whole input for
    # every output, so "these outputs do not see the whole input yet" would be false; conv1's 3 (start
    # -1) leaves output 0 without input 2
    spec = "input: [1, 3, 3]\nlayers:\n  - conv: {out: 1, kernel: 3, padding: 1}\n  - conv: {out: 1, kernel: 3, padding: 1}\n"
    r = one(spec, "conv2.rf", "global")
    assert r.verdict == "wrong" and r.mistake != "rf_not_global_yet", r.hint
    r = one(spec, "conv1.rf", "global")
    assert r.mistake == "rf_not_global_yet"
    # symbolic sizes: still said
    r = one(spec.replace("[1, 3, 3]", "[1, H, W]"), "conv2.rf", "global")
    assert r.mistake == "rf_not_global_yet"


# A word-level LSTM language model on token ids {tokens: [6]}: its decoder is a linear layer per position
# (over the hidden size), after an LSTM that mixes the earlier positions only: not a 'global' field.
LSTM_LM = """\
input: {tokens: [6]}
layers:
  - {name: encoder, embedding: {num: 50, dim: 8}}
  - {name: rnn, lstm: {hidden: 8}}
  - {name: decoder, linear: 50}
"""


def test_token_ids_are_not_a_feature_vector():
    r = one(LSTM_LM, "decoder.rf", "global")
    assert r.verdict == "wrong", r  # not tracked: 'global' is not the expected value
    assert r.mistake == "rf_not_tracked" and "token ids" in r.hint, r.hint
    r = one(LSTM_LM, "rnn.rf", 1)
    assert r.mistake == "rf_not_tracked" and "vector (features" not in r.hint, r.hint
    # an MLP's vector input still has global fields after its first linear layer
    r = one("input: [20]\nlayers:\n  - linear: 5\n  - relu\n", "relu1.rf", "global")
    assert r.verdict == "right"


def test_rf_not_tracked_on_token_ids_of_several_rows_says_token_ids():
    # BERT-style {tokens: [2, T]} (ids and segment ids): the field is not tracked because of token ids
    spec = "input: {tokens: [2, 6]}\nlayers:\n  - {name: emb, embedding: {num: 50, dim: 8}}\n"
    r = one(spec, "emb.rf", 3)
    assert r.mistake == "rf_not_tracked" and "token ids" in r.hint, r.hint


def test_features_first_on_a_token_sequence_is_not_called_channels_last():
    # the LSTM LM's decoder output [6, 50] (positions, vocabulary) written [50, 6]
    r = one(LSTM_LM, "decoder.output_shape", "[50, 6]")
    assert r.mistake == "channels_last" and "positions first, features last" in r.hint, r.hint
    assert "[C, H, W]" not in r.hint
