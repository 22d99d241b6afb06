"""The catalogue of mistakes (archcalc/homework/mistakes/): every registered rule has its own case
here (an answer that makes exactly that mistake, worked out by hand), and the verdict fixes of
issue 13 point 5 each have a named test."""
import textwrap
from pathlib import Path

import pytest

import archcalc
from archcalc import api
from archcalc.analysis.walk import analyze_graph
from archcalc.homework.answers import parse_answers
from archcalc.homework.check import check, half_unit
from archcalc.homework.mistakes import MISTAKES, for_figure

ROOT = Path(__file__).resolve().parents[2]
WA1 = ROOT / "specs" / "homework" / "written_assignment_1.yaml"

# conv1 [16, 28, 28] 416 params (bias 16), 313,600 MACs, rf 5 start -2; batchnorm1 64 (32 + 32);
# maxpool1 [16, 14, 14] rf 6 /2; conv2 [32, 12, 12] 4,640 params (bias 32), 663,552 MACs, rf 10 /2;
# linear1 46,090 params (bias 10). Totals: 51,210 params, 51,178 trainable, biases 58.
SMALL = """\
name: small
input: [1, 28, 28]
layers:
  - conv: {out: 16, kernel: 5, padding: 2}
  - batchnorm
  - relu
  - maxpool: 2
  - conv: {out: 32, kernel: 3}
  - relu
  - flatten
  - linear: 10
"""

NOBIAS = """\
name: nobias
input: [3, 32, 32]
layers:
  - conv: {out: 8, kernel: 3, stride: 2, padding: 1, bias: false}
  - {name: fc, linear: {out: 4, bias: false}, from: conv1}
  - {reshape: [8, 256], from: conv1}
"""

# Written Assignment 2 in colour: 3 -> 64 -> 64 -> 3 channels, 3 x 3 'same' convolutions.
# Parameters (27 + 1)*64 = 1,792, (576 + 1)*64 = 36,928, (576 + 1)*3 = 1,731: 40,451 (biases 131).
# MACs per pixel 1,728 + 36,864 + 1,728 = 40,320.
COLOUR = """\
name: colour_denoiser
input: [3, H, W]
layers:
  - {name: conv1, conv: {out: 64, kernel: 3, padding: 1}}
  - relu
  - {name: conv2, conv: {out: 64, kernel: 3, padding: 1}}
  - relu
  - {name: conv3, conv: {out: 3, kernel: 3, padding: 1}}
"""

SYMBOLIC = """\
name: sym
input: [4, H, W]
layers:
  - conv: {out: 4, kernel: 3, padding: 1}
  - {name: pool1, maxpool: 2}
  - {flatten: {}, from: conv1}
  - {name: fc, linear: 10}
"""

# An MLP: a vector input (no spatial axes).
MLP = """\
name: mlp
input: [784]
layers:
  - dropout: 0.1
  - linear: 100
  - relu
  - linear: 10
"""

TWO_PADDED = """\
input: [1, 20, 20]
layers:
  - conv: {out: 1, kernel: 3, padding: 1}
  - conv: {out: 1, kernel: 3, padding: 1}
"""

WA1_EVEN = WA1.read_text().replace("input: [1, H, W]",
                                   "input: [1, H, W]\nsymbols: {H: {multiple_of: 2, min: 6}, W: {multiple_of: 2, min: 6}}")


def result_of(spec, answers, batch=1):
    spec = textwrap.dedent(spec)
    graph = archcalc.parse_spec(spec)
    report = analyze_graph(graph, batch=batch)
    sheet = parse_answers(textwrap.dedent(answers), "answers.yaml")
    return check(report, sheet, graph)


def one(spec, quantity, value, batch=1, top=""):
    """The result of one answer; `top` goes before it (set:, tolerance:, or other answers:)."""
    text = f"{top}  {quantity}: {value}\n" if top.startswith("answers:") else \
        f"{top}answers:\n  {quantity}: {value}\n"
    result = result_of(spec, text, batch)
    return result.results[-1]


# name: (spec, quantity, answer, batch, a fragment of the hint). Each by hand from the comments above.
CASES = {
    "forgot_bias": (SMALL, "conv1.params", 400, 1, "forgot the bias: one per output channel (+16)"),
    "forgot_biases": (SMALL, "total.params", 51210 - 58, 1, "forgot the biases"),
    "forgot_one_bias": (SMALL, "total.params", 51210 - 10, 1, "forgot linear1's bias: one per output feature (+10)"),
    "no_bias": (NOBIAS, "conv1.params", 8 * 27 + 8, 1, "no bias (bias: false), so there is no +8"),
    "trainable_only": (SMALL, "total.params", 51178, 1, "that is the trainable count only"),
    "forgot_biases_and_buffers": (SMALL, "total.params", 51178 - 58, 1, "forgot the biases, and counted BatchNorm as 2C"),
    "buffers_as_trainable": (SMALL, "total.trainable_params", 51210, 1, "counted BatchNorm as 4C"),
    "no_buffers": (SMALL, "conv1.non_trainable_params", 416, 1, "this has no buffers"),
    "buffers_not_counted": (SMALL, "batchnorm1.non_trainable_params", 0, 1, "running mean and variance are non-trainable"),
    "all_non_trainable": (SMALL, "batchnorm1.non_trainable_params", 64, 1, "non-trainable are only the running mean"),
    "params_times_batch": (SMALL, "conv1.params", 416 * 4, 4, "do not depend on the batch size (batch 4)"),
    "one_example": (SMALL, "conv1.macs", 313600, 4, "MACs are for the whole batch: multiply by the batch size 4"),
    "macs_of_one_example": (SMALL, "conv1.flops", 313600, 4, "MAC count of one example"),
    "values_of_one_example": (SMALL, "conv1.activation_bytes", 16 * 28 * 28, 2, "multiply by the batch (2) and 4 bytes"),
    "flops_for_macs": (SMALL, "conv1.macs", 627200, 1, "that is the FLOP count"),
    "macs_for_flops": (SMALL, "conv1.flops", 313600, 1, "that is the MAC count: FLOPs = 2 x MACs"),
    "bias_additions": (SMALL, "conv1.macs", 313600 + 16 * 28 * 28, 1, "bias additions are not multiply-accumulates"),
    "weights_for_macs": (SMALL, "conv1.macs", 400, 1, "that is the number of weights"),
    "values_for_bytes": (SMALL, "conv1.activation_bytes", 16 * 28 * 28, 1, "number of values: multiply by 4 bytes per float32"),
    "last_layer_only": (SMALL, "total.activation_bytes", 40, 1, "only the last layer's output"),
    "trainable_bytes_only": (SMALL, "total.param_bytes", 51178 * 4, 1, "counts only trainable parameters"),
    "batch_dimension": (SMALL, "flatten1.output_shape", "[1, 4608]", 1, "exclude the batch dimension"),
    "channels_last": (SMALL, "batchnorm1.output_shape", "[28, 28, 16]", 1, "channels first"),
    "unpadded": (SMALL, "conv1.output_shape", "[16, 24, 24]", 1, "without padding ('valid'); this layer pads 2"),
    "off_by_one": (SMALL, "conv2.output_shape", "[32, 11, 11]", 1, "off by one"),
    "rounded_up": ("input: [1, 7, 7]\nlayers:\n  - maxpool: 2\n", "maxpool1.output_shape", "[1, 4, 4]", 1,
                   "rounded up"),
    # ceil((8 - 3)/2) + 1 = 4 with ceil_mode; floor((8 - 3)/2) + 1 = 3 without it
    "ceil_mode_ignored": ("input: [1, 8, 8]\nlayers:\n  - maxpool: {kernel: 3, stride: 2, ceil_mode: true}\n",
                          "maxpool1.output_shape", "[1, 3, 3]", 1, "this layer has ceil_mode, so M = ceil("),
    # a 3 x 3 conv of dilation 2 on 9 x 9: 9 - 2*2 = 5; with the dilation left out 9 - 2 = 7
    "dilation_forgotten": ("input: [1, 9, 9]\nlayers:\n  - conv: {out: 1, kernel: 3, dilation: 2}\n",
                           "conv1.output_shape", "[1, 7, 7]", 1, "forgot the dilation 2"),
    "same_padding": (SMALL, "conv2.output_shape", "[32, 14, 14]", 1, "'same' padding"),
    "stride_forgotten": (SMALL, "maxpool1.output_shape", "[16, 27, 27]", 1, "forgot to divide by the stride 2"),
    "padded_once": ("input: [1, 11, 11]\nlayers:\n  - conv: {out: 1, kernel: 5, padding: 2}\n", "conv1.output_shape",
                    "[1, 9, 9]", 1, "both sides (2P)"),
    "dimensions": (SMALL, "flatten1.output_shape", "[16, 12, 12]", 1, "the output has 1 dimension (batch excluded)"),
    "spatial_offset": (SMALL, "conv2.output_shape", "[32, 9, 9]", 1, "off by -3"),
    "rf_not_tracked": (NOBIAS, "reshape1.rf", "global", 1, "not tracked"),
    "rf_vector_input": (MLP, "dropout1.rf", 1, 1, "the input [784] is a vector"),
    "rf_is_global": (SMALL, "linear1.rf", 10, 1, "after flatten, global pooling or a linear layer"),
    "rf_not_global_yet": (SMALL, "conv2.rf", "global", 1, "do not see the whole input yet"),
    "rf_stride_as_size": (SMALL, "conv2.rf", 2, 1, "stride (jump) of the field"),
    "rf_input_field": (SMALL, "conv2.rf", 6, 1, "field of this layer's input"),
    "rf_own_window": (SMALL, "conv2.rf", 3, 1, "this layer's own window"),
    "rf_own_stride": (SMALL, "conv2.rf", "{stride: 1}", 1, "this layer's own stride"),
    # 3 x 3 then 3 x 3 of dilation 3: 3 + 3*2 = 9; the dilation left out 3 + 2 = 5 (its own window is 7)
    "rf_dilation_forgotten": ("input: [1, 20, 20]\nlayers:\n  - conv: {out: 1, kernel: 3}\n"
                              "  - conv: {out: 1, kernel: 3, dilation: 3}\n", "conv2.rf", 5, 1, "forgot the dilation 3"),
    "rf_own_padding": (TWO_PADDED, "conv2.rf", "{start: -1}", 1, "own padding"),
    "rf_start_zero": (SMALL, "conv1.rf", "{start: 0}", 1, "begins in the padding"),
    "rf_unscaled": (SMALL, "relu2.rf", 8, 1, "forgot to scale by the jump"),
    "no_size_symbols": (SMALL, "conv1.macs", '"H*W*400"', 1, "this spec has no size symbols"),
    "unknown_symbol": (SYMBOLIC, "fc.params", '"40*X + 10"', 1, "X is not a size symbol of this spec (its symbols: H, W)"),
    "number_for_formula": (SYMBOLIC, "fc.params", 31370, 1, "depends on H, W"),
    # 'same' padding on Written Assignment 1's unpadded conv: (16*(H/2)*(W/2) + 1)*10 + 416
    "padding_assumed": (WA1_EVEN, "total.trainable_params", '"40*H*W + 426"', 1,
                        "that is the parameter count if conv1 padded 2 ('same'); conv1 has no padding: conv1's "
                        "output is [16, H - 4, W - 4], not [16, H, W]"),
    # the colour denoiser unpadded: (1,728 (H-2)(W-2) + 36,864 (H-4)(W-4) + 1,728 (H-6)(W-6)) at 32 x 32
    "padding_left_out": (COLOUR, "total.macs", 1728 * 30 * 30 + 36864 * 28 * 28 + 1728 * 26 * 26, 1,
                         "that is the MAC count without the padding of conv1, conv2 and conv3"),
    # (3*3 + 1)*64 = 640 for conv1's (3*3*3 + 1)*64 = 1,792; in every conv: 640 + 640 + 30 = 1,310
    "forgot_input_channels": (COLOUR, "conv1.params", 640, 1, "each filter spans all 3 input channels"),
    "one_bias_per_layer": (COLOUR, "conv2.params", 36928 - 64 + 1, 1, "one per output channel, not one per layer: 64 biases, not 1 (+63)"),
    # fc after an unpooled [16, H - 4, W - 4]: (16*(H - 4)*(W - 4) + 1)*10 + 416
    "downsampling_forgotten": (WA1_EVEN, "total.trainable_params", '"160*(H-4)*(W-4) + 426"', 1,
                               "without pool1's downsampling, as if its output were [16, H - 4, W - 4]; pool1 has "
                               "stride 2"),
    "shape_of_input": (WA1_EVEN, "pool1.output_shape", '[16, "H-4", "W-4"]', 1, "the shape of pool1's input"),
    # 5 + 2 for Written Assignment 1's layer 2, whose field is 5 + (2 - 1)*1 = 6
    "rf_kernels_added": (WA1_EVEN, "pool1.rf", 7, 1, "adds up the kernel sizes"),
    # (5*5*1 + 1) = 26 for conv1's (5*5*1 + 1)*16 = 416
    "one_filter": (WA1_EVEN, "conv1.params", 26, 1, "that counts one filter; the layer has 16 of them"),
    # fc's inputs (H - 4)/2*(W - 4)/2 of one channel: ((H - 4)*(W - 4)/4 + 1)*10
    "flatten_without_channels": (WA1_EVEN, "fc.params", '"10*(H-4)*(W-4)/4 + 10"', 1, "its inputs are C*H*W"),
    # Written Assignment 1's layer 2: its input's jump 1 for the field's 2
    "rf_input_stride": (WA1_EVEN, "pool1.rf", "{size: 6, stride: 1}", 1,
                        "stride (jump) of this layer's input; this layer multiplies it by its own stride 2"),
    # conv3's (576 + 1)*3 = 1,731 counted with 1 x 1 filters: 64*3 + 3 = 195
    "kernel_forgotten": (COLOUR, "conv3.params", 195, 1, "that counts 1 x 1 filters (Cin*Cout); each filter is "
                         "K1 x K2 = 3 x 3"),
    # a depthwise 3 x 3 conv on 8 channels, (3*3*8/8 + 1)*8 = 80, counted over all 8 channels: 3*3*8*8 + 8 = 584
    "groups_forgotten": ("input: [8, 6, 6]\nlayers:\n  - conv: {out: 8, kernel: 3, groups: 8}\n", "conv1.params", 584,
                         1, "the groups are left out (groups = 8): each filter spans one input channel (depthwise"),
    # the file's own conv1.params 1,728 (its bias forgotten) carried into the total: 40,451 - 64
    "carried_from_layers": (COLOUR, "total.params", 40451 - 64 - 1728 + 1000, 1, "it is the sum of your own "
                            "per-layer answers (the addition is right): the mistake is in conv1.params"),
}
CASE_TOP = {"padding_left_out": "set: {H: 32, W: 32}\n", "carried_from_layers": "answers:\n  conv1.params: 1000\n"}


def test_every_mistake_has_its_case():
    assert set(CASES) == set(MISTAKES), (sorted(set(MISTAKES) - set(CASES)), sorted(set(CASES) - set(MISTAKES)))


@pytest.mark.parametrize("name", sorted(CASES))
def test_mistake(name):
    spec, quantity, value, batch, fragment = CASES[name]
    r = one(spec, quantity, value, batch, CASE_TOP.get(name, ""))
    assert r.verdict == "wrong", r
    assert r.mistake == name, (r.mistake, r.hint)
    assert fragment in r.hint, r.hint


def test_the_catalogue_describes_every_rule():
    for rule in MISTAKES.values():
        assert rule.name and rule.figures and rule.hint, rule
        assert rule.doc, f"{rule.name}: say how its value is derived (the function's docstring)"
        for figure in rule.figures:
            assert rule in for_figure(figure)
    ranks = [(m.rank, m.order) for m in for_figure("params")]
    assert ranks == sorted(ranks)


def test_a_right_answer_gets_no_mistake():
    r = one(SMALL, "conv1.params", 416)
    assert r.verdict == "right" and r.mistake is None and r.hint is None


# --- issue 13 point 5: honest verdicts ---------------------------------------------------------
def test_about_40k_is_not_forgot_the_biases():
    # 40,451 parameters; without biases 40,320. "about 40 k" is 1.1 % off (wrong at 1 %), but at its
    # own precision (40 k: half a unit 500) it is as much the truth as 40,320: no mistake named.
    r = one(COLOUR, "total.params", '"about 40 k"')
    assert r.verdict == "wrong" and r.mistake is None
    assert "forgot" not in r.hint
    assert r.hint == "1.1 % below the exact value (the tolerance is 1 %)"


def test_an_approximate_answer_names_a_mistake_it_matches_better():
    # 40.32 k is 40,320 to its precision (half a unit 5), and the truth 40,451 is not
    r = one(COLOUR, "total.params", '"about 40.32 k"', top="tolerance: 0.2%\n")
    assert r.mistake == "forgot_biases" and "(+131 in all)" in r.hint
    assert r.hint.startswith("0.3 % below the exact value (the tolerance is 0.2 %); forgot the biases")  # the file's tolerance
    # "about 1.7 k" for conv3's 1,731: within its precision of the truth; not "forgot the bias" (1,728)
    r = one(COLOUR, "conv3.params", '"about 1.7 k"')
    assert r.verdict == "wrong" and r.mistake is None and r.hint.startswith("1.8 % below")


def test_precision_of_written_numbers():
    sheet = parse_answers('answers:\n  a.params: "about 40 k"\n  b.params: "1.02 M"\n  c.params: "2.05e6"\n'
                          '  d.params: "36.9 thousand"\n', "a.yaml")
    assert [half_unit(a.value) for a in sheet.answers] == [500, 5000, 5000, 50]


def test_a_wrong_approximate_answer_shows_how_far_off():
    r = one(SMALL, "total.macs", '"~1M"')  # 1,023,232
    assert r.verdict == "wrong" and r.hint.startswith("2.3 % below the exact value (the tolerance is 1 %)")
    r = one(SMALL, "total.flops", '"2.05 G"')  # 2,046,464: a thousand times off
    assert r.hint.startswith("about 1,002 times too large")
    r = one(SMALL, "total.flops", '"about 1.02 M"')  # the MAC count, named
    assert r.mistake == "macs_for_flops" and r.hint.startswith("50 % below the exact value")


def test_padding_assumed_in_written_assignment_1_for_even_sizes():
    # The bundled spec says nothing about H, W (PyTorch floors (H - 4)/2): the 'same'-padding count
    # 40*H*W + 426 is that mistake's value for even H and W, and the hint says so.
    graph = api.load_graph(WA1)
    sheet = parse_answers('answers:\n  total.trainable_params: "40*H*W + 426"\n  fc.params: "40*H*W + 10"\n',
                          "a.yaml")
    result = check(analyze_graph(graph), sheet, graph)
    for r in result.results:
        assert r.verdict == "wrong" and r.mistake == "padding_assumed", r
        assert "if conv1 padded 2 ('same')" in r.hint
        assert "(the answer is that value for even H and W)" in r.hint


def test_padding_assumed_for_the_macs_of_later_layers():
    # fc's MACs with 'same' padding: 16*(H/2)*(W/2)*10 = 40*H*W; its truth 40*(H - 4)*(W - 4)
    r = one(WA1_EVEN, "fc.macs", '"40*H*W"')
    assert r.mistake == "padding_assumed"
    # the conv's own MACs with 'same' padding: the conv's own rule (its output size), not the network's
    r = one(WA1_EVEN, "conv1.macs", '"400*H*W"')
    assert r.mistake == "same_padding" and "these MACs are for an output of [16, H, W]" in r.hint


def test_one_layers_bias_inside_a_total():
    # conv3's 3 biases left out of 40,451
    r = one(COLOUR, "total.params", 40448)
    assert r.mistake == "forgot_one_bias" and r.hint.startswith("forgot conv3's bias: one per output channel (+3)")
    # conv1 and conv2 both have 64: either may be the one left out
    r = one(COLOUR, "total.params", 40451 - 64)
    assert r.hint.startswith("forgot the bias of one of conv1 or conv2: one per output channel (+64 each)")


def test_mlp_global_field_reason():
    # every output of a linear layer on a vector input sees the whole input
    result = result_of(MLP, "answers:\n  linear1.rf: 5\n  relu1.rf: global\n  linear2.rf: global\n")
    assert [r.verdict for r in result.results] == ["wrong", "right", "right"]
    wrong = result.results[0]
    assert wrong.expected == "global"
    assert "the input [784] is a vector, and each output of a linear layer is a weighted sum" in wrong.hint
    assert "flatten" not in wrong.hint and "spatial axis" not in wrong.hint



def test_same_mistake_in_every_layer_of_a_total():
    # Cin left out of every conv of the colour denoiser: 640 + 640 + 30
    r = one(COLOUR, "total.params", 1310)
    assert r.mistake == "forgot_input_channels" and r.hint.startswith("in every convolution, ")
    # one bias per layer: 40,451 - 131 + 3
    r = one(COLOUR, "total.params", 40323)
    assert r.mistake == "one_bias_per_layer" and "131 biases in all, not 3 (+128)" in r.hint


def test_sum_of_kernels_for_the_denoiser():
    # four 3 x 3 convolutions: the field is 9, the kernels add up to 12
    spec = SMALL.replace("input: [1, 28, 28]", "input: [1, 32, 32]")
    four = "input: [1, H, W]\nlayers:\n" + "".join("  - conv: {out: 4, kernel: 3, padding: 1}\n" for _ in range(4))
    r = one(four, "conv4.rf", 12)
    assert r.mistake == "rf_kernels_added" and r.expected.startswith("size 9")
    assert one(spec, "conv2.rf", 5 + 2 + 3 * 2).mistake == "rf_kernels_added"  # K1 + K2 j1 + K3 j2


def test_mlp_field_has_no_empty_formula(tmp_path):
    from archcalc.homework.grade import grade

    spec = tmp_path / "mlp.yaml"
    spec.write_text(MLP)
    answers = tmp_path / "a.yaml"
    answers.write_text("answers:\n  linear1.rf: 5\n  dropout1.rf: 1\n")
    result = grade(spec, answers)
    assert [r.verdict for r in result.results] == ["wrong", "wrong"]
    assert all(r.formula is None or r.formula.strip() not in ("rf =", "rf") for r in result.results)
    assert result.results[1].mistake == "rf_vector_input"


def test_padding_assumed_for_the_shape_of_a_later_layer():
    # 'same' padding on conv1, then the pooling: [16, H/2, W/2] for [16, H/2 - 2, W/2 - 2]
    r = one(WA1_EVEN, "pool1.output_shape", '[16, "H/2", "W/2"]')
    assert r.mistake == "padding_assumed" and r.hint.startswith("that is the output shape if conv1 padded 2")


def test_no_fractional_offset_hint():
    # (H - 5)/2 is off by -1/2 from H/2 - 2: no "off by -1/2" (it explains nothing)
    r = one(WA1_EVEN, "pool1.output_shape", '[16, "(H-5)/2", "(W-5)/2"]')
    assert r.verdict == "wrong" and r.hint is None


def test_whole_input_given_for_a_window():
    # [H, W] is global's other spelling; for a 5 x 5 window it is wrong, and said so
    r = one(COLOUR, "conv2.rf", "[H, W]")
    assert r.verdict == "wrong" and r.mistake == "rf_not_global_yet"
    assert r.hint.startswith("that is the whole input; these outputs do not see the whole input yet")


def test_carried_total_with_the_layers_answered_right_is_another_mistake():
    # every layer answered right: a wrong total is not "carried" but its own mistake
    r = one(COLOUR, "total.params", 40451 - 131, top="answers:\n  conv1.params: 1792\n  conv3.params: 1731\n")
    assert r.mistake == "forgot_biases"


def test_a_total_carried_from_a_wrong_layer_names_both():
    # conv1's bias forgotten in conv1.params and so in the total: the mistake, then where it came from
    r = one(COLOUR, "total.params", 40451 - 64, top="answers:\n  conv1.params: 1728\n")
    assert r.mistake == "forgot_one_bias"
    assert r.hint.endswith("; it is the sum of your own per-layer answers (the addition is right): the mistake "
                           "is in conv1.params")
    # Written Assignment 1 with 'same' padding in fc.params and the total, for even H and W
    graph = api.load_graph(WA1)
    sheet = parse_answers('answers:\n  fc.params: "40*H*W + 10"\n  total.trainable_params: "40*H*W + 426"\n',
                          "a.yaml")
    r = check(analyze_graph(graph), sheet, graph).results[1]
    assert r.mistake == "padding_assumed"
    assert "(the answer is that value for even H and W); it is the sum of your own per-layer answers" in r.hint


def test_the_catalogue_table_lists_every_rule():
    from archcalc.homework.mistakes import catalogue_markdown

    table = catalogue_markdown()
    assert all(f"| `{name}` |" in table for name in MISTAKES)


def test_a_rule_that_fails_is_skipped(monkeypatch):
    # a rule raising on a network it cannot read is skipped, not the file's grading stopped
    from archcalc.homework.mistakes import bias

    def broken(case):
        raise KeyError("conv9")

    rule = MISTAKES["forgot_bias"]
    monkeypatch.setitem(MISTAKES, "forgot_bias", type(rule)(rule.name, rule.figures, broken, rule.hint, rule.rank,
                                                            rule.order, rule.doc))
    r = one(SMALL, "conv1.params", 400)
    assert r.verdict == "wrong" and r.mistake is None and r.hint is None
    assert bias.forgot_bias is rule.derive  # the module's own rule is untouched


def test_padding_assumed_for_a_shape_right_for_even_sizes():
    # the bundled spec (no constraints): [16, H/2, W/2] is the 'same'-padding shape floor(H/2) for even H, W
    graph = api.load_graph(WA1)
    sheet = parse_answers('answers:\n  pool1.output_shape: [16, "H/2", "W/2"]\n', "a.yaml")
    (r,) = check(analyze_graph(graph), sheet, graph).results
    assert r.mistake == "padding_assumed" and r.hint.startswith("that is the output shape if conv1 padded 2")
    assert r.hint.endswith("(the answer is that value for even H and W)")


# Written Assignment 1 (H - 4, W - 4 even, as the key's `assume: divisible`): five students' files and
# the mistake each answer is diagnosed with (None: wrong with no diagnosis, "": right), by hand.
WA1_CLASS = {
    "same padding": ({"conv1.params": 416, "fc.params": '"40*H*W + 10"', "total.trainable_params": '"40*H*W + 426"',
                      "pool1.output_shape": '[16, "H/2", "W/2"]', "pool1.rf": 6},
                     ["", "padding_assumed", "padding_assumed", "padding_assumed", ""]),
    "no biases": ({"conv1.params": 400, "fc.params": '"40*(H-4)*(W-4)"', "total.trainable_params": '"40*(H-4)*(W-4) + 416"',
                   "pool1.output_shape": '[16, "(H-4)/2", "(W-4)/2"]', "pool1.rf": 5},
                  ["forgot_bias", "forgot_bias", "forgot_one_bias", "", "rf_input_field"]),
    "no pooling": ({"conv1.params": 401, "fc.params": '"160*(H-4)*(W-4) + 10"',
                    "total.trainable_params": '"160*(H-4)*(W-4) + 426"', "pool1.output_shape": '[16, "H-4", "W-4"]',
                    "pool1.rf": 2},
                   ["one_bias_per_layer", "downsampling_forgotten", "downsampling_forgotten", "shape_of_input",
                    "rf_stride_as_size"]),
    "one filter": ({"conv1.params": 26, "fc.params": '"10*(H-4)*(W-4)/4 + 10"',
                    "total.trainable_params": '"10*(H-4)*(W-4)/4 + 36"', "pool1.output_shape": '[16, "(H-5)/2", "(W-5)/2"]',
                    "pool1.rf": "{size: 6, stride: 1}"},
                   ["one_filter", "flatten_without_channels", "carried_from_layers", None, "rf_input_stride"]),
    "all right": ({"conv1.params": '"(5*5*1 + 1)*16"', "fc.params": '"(16*(H-4)/2*(W-4)/2 + 1)*10"',
                   "total.trainable_params": '"40*(H - 4)*(W - 4) + 426"', "pool1.output_shape": '[16, "(H-4)/2", "(W-4)/2"]',
                   "pool1.rf": "{size: 6, stride: 2}"},
                  ["", "", "", "", ""]),
}


@pytest.mark.parametrize("student", sorted(WA1_CLASS))
def test_written_assignment_1_class(student):
    answers, mistakes = WA1_CLASS[student]
    text = "answers:\n" + "".join(f"  {q}: {v}\n" for q, v in answers.items())
    result = result_of(WA1_EVEN, text)
    got = ["" if r.correct else r.mistake for r in result.results]
    assert got == mistakes, [(r.quantity, r.hint) for r in result.results]
    for r in result.results:  # a right answer says nothing; a wrong one a hint exactly when a mistake is named
        assert (r.hint is not None) == (r.mistake is not None), r
        assert not (r.correct and r.hint), r


# The bundled denoiser (1 -> 32 -> 32 -> 32 -> 1, 3 x 3 'same'; 320 + 9,248 + 9,248 + 289 = 19,105
# parameters; MACs 19,008*H*W = 1,245,708,288 at 256 x 256; fields 3, 5, 7, 9) at 256 x 256.
DENOISER = ROOT / "specs" / "homework" / "denoiser.yaml"
DENOISER_CLASS = {
    "kernels added": ({"conv2.params": 9216, "total.trainable_params": 19073, "total.macs": '"about 1.2 G"',
                       "conv2.rf": 6, "conv4.rf": 12},
                      ["forgot_bias", "forgot_one_bias", None, "rf_kernels_added", "rf_kernels_added"]),
    "flops": ({"conv1.params": 288, "conv4.params": 33, "total.trainable_params": 18817, "total.macs": '"about 2.49 G"',
               "conv3.rf": 7},
              ["forgot_bias", "kernel_forgotten", "carried_from_layers", "flops_for_macs", ""]),
    "one channel": ({"conv2.params": 320, "conv4.params": 10, "total.trainable_params": 970, "conv2.rf": '"[H, W]"',
                     "conv4.rf": "global"},
                    ["forgot_input_channels", "forgot_input_channels", "forgot_input_channels", "rf_not_global_yet",
                     "rf_not_global_yet"]),  # 970 = (9 + 1)*32*3 + (9 + 1)*1: Cin in every conv
}


@pytest.mark.parametrize("student", sorted(DENOISER_CLASS))
def test_denoiser_class(student):
    answers, mistakes = DENOISER_CLASS[student]
    graph = api.load_graph(DENOISER, bindings={"H": 256, "W": 256})
    text = "set: {H: 256, W: 256}\nanswers:\n" + "".join(f"  {q}: {v}\n" for q, v in answers.items())
    result = check(analyze_graph(graph), parse_answers(text, "a.yaml"), graph)
    got = ["" if r.correct else r.mistake for r in result.results]
    assert got == mistakes, [(r.quantity, r.hint) for r in result.results]
    macs = next((r for r in result.results if r.quantity == "total.macs"), None)
    if macs is not None and not macs.correct:  # approximate: how far off, always
        assert "% " in macs.hint and "the tolerance is 1 %" in macs.hint
    if student == "kernels added":  # conv2's forgotten bias, carried into the total: both said
        total = result.results[1]
        assert total.hint.startswith("forgot the bias of one of conv1, conv2 or conv3: one per output channel (+32 each)")
        assert total.hint.endswith("the mistake is in conv2.params")


def test_distance_of_a_hostile_approximate_answer_stays_short():
    r = one(COLOUR, "total.params", '"about 1e30"')
    assert r.verdict == "wrong" and r.hint == "about 2.5e+25 times too large"
    r = one(COLOUR, "total.params", '"about 0.001"')
    assert r.hint == "about 4e+07 times too small"
