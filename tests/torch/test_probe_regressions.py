"""Named regressions found by the random-spec cross-check (tests/torch/test_random_specs.py).
Each pins the analytic value (worked out by hand in the comment) and PyTorch's agreement."""
import pytest

torch = pytest.importorskip("torch")

import archcalc  # noqa: E402
from archcalc.geometry.receptive_field import GLOBAL, RF  # noqa: E402
from archcalc.torch.verify import verify  # noqa: E402


def check(text):
    graph = archcalc.parse_spec(text, "regression.yaml")
    result = verify(graph)
    assert result.ok, result.mismatches()
    return {layer.name: layer.checks["rf"] for layer in result.layers}


def test_global_means_all_that_the_network_reads_when_strides_skip_pixels():
    # maxpool k1 s3 on length 5 reads pixels 0 and 3 only; linear then sees both: "global",
    # though pixels 1, 2, 4 reach no output at all.
    rf = check("input: [1, 5]\nlayers:\n  - maxpool: {kernel: 1, stride: 3}\n  - linear: 5\n")
    assert rf["maxpool1"].analytic == RF((1,), (3,), (0,))
    assert rf["linear1"].measured == GLOBAL and rf["linear1"].ok


def test_linear_interpolation_on_a_pixel_has_one_tap():
    # size 5 -> 5: the source of output o is (o + 1/2) - 1/2 = o, exactly a pixel, and its
    # neighbour gets weight 0: each output sees one pixel.
    rf = check("input: [1, 5]\nlayers:\n  - upsample: {size: 5, mode: linear}\n  - conv: {out: 1, kernel: 3}\n")
    assert rf["upsample1"].analytic == RF((1,), (1,), (0,))
    assert rf["conv1"].analytic == RF((3,), (1,), (0,))


def test_windows_after_a_transposed_convolution_are_exact():
    # conv_transpose k1 s2: even outputs 2i see input i, odd ones see nothing. avgpool k2 s2 then
    # reads outputs 2i and 2i + 1: input i alone. (The closed form said r = 1 + 1 * 1/2.)
    rf = check("input: [1, 5, 5, 5]\nlayers:\n  - conv_transpose: {out: 1, kernel: 1, stride: 2}\n"
               "  - avgpool: {kernel: 2, stride: 2}\n")
    assert rf["avgpool1"].analytic == RF((1, 1, 1), (1, 1, 1), (0, 0, 0))


def test_adaptive_pooling_chains_repeat_over_several_outputs():
    # 11 -> 10 -> 4: the second pool's windows repeat every 2 outputs (10/4 = 5/2), moving
    # 5 first-pool outputs, which move 11/10 pixels each: stride 11/4, not a whole number.
    rf = check("input: [1, 13]\nlayers:\n  - conv: {out: 1, kernel: 3}\n  - adaptive_avgpool: 10\n"
               "  - adaptive_avgpool: 4\n")
    assert rf["adaptive_avgpool2"].analytic.stride == (pytest.approx(11 / 4),)


def test_probe_input_stays_small_in_three_dimensions():
    # Output size 1 on two axes can never fit a field; doubling the input forever would ask for
    # hundreds of gigabytes. The probe's strips stop at their bounds and say why, per layer.
    graph = archcalc.parse_spec("input: [1, 5, 5, 5]\nlayers:\n  - adaptive_avgpool: [1, 1, 2]\n", "r.yaml")
    check_ = verify(graph).layers[0].checks["rf"]
    assert check_.ok is None and check_.note
    assert "along dim 1 its output keeps 1 position at every input length" in check_.note


# --- fields wider than the input: thin strips, one per axis (issue 11, point 8) ----------------

from archcalc.torch import probe  # noqa: E402
from archcalc.layers import KINDS  # noqa: E402

# Eight 5x5 convolutions (field 33 on a 24 x 24 input), then flatten -> linear, which needs the
# spec's size: the strips carry only the convolutions.
DEEP = "input: [1, 24, 24]\nlayers:\n" + "  - conv: {out: 2, kernel: 5, padding: 2}\n" * 8 + "  - flatten\n  - linear: 3\n"


def test_fields_wider_than_the_input_are_measured_on_thin_strips():
    result = verify(archcalc.parse_spec(DEEP, "deep.yaml"))
    assert result.ok, result.mismatches()
    rf = {layer.name: layer.checks["rf"] for layer in result.layers}
    # conv k: field 4k + 1 = 33, stride 1, start -16 (padding 2 per layer)
    assert rf["conv8"].measured == RF((33, 33), (1, 1), (-16, -16)) and rf["conv8"].ok
    # Long along one axis (48 = 2 x 24), one pixel across: the 5x5 convolutions build there and
    # every position across sees the input, so nothing wider is needed.
    assert (1, 48, 1) in result.probe_inputs and (1, 1, 48) in result.probe_inputs
    assert rf["linear1"].measured == GLOBAL  # on the spec's own size, where linear builds
    assert rf["flatten1"].ok is None and "convention" in rf["flatten1"].note
    assert all(c.ok for name, c in rf.items() if name != "flatten1")


def test_a_wrong_field_rule_is_caught_on_a_strip(monkeypatch):
    conv = KINDS["conv"]
    original = conv.rf

    def wider(a, rfs, shapes, out):  # one pixel too many, from the 30-pixel field on
        rf = original(a, rfs, shapes, out)
        return RF(tuple(s + (s >= 30) for s in rf.size), rf.stride, rf.start) if isinstance(rf, RF) else rf

    monkeypatch.setattr(conv, "rf", wider)
    result = verify(archcalc.parse_spec(DEEP, "deep.yaml"))
    assert ("conv8", "rf") in result.mismatches() and ("conv7", "rf") not in result.mismatches()
    rf8 = next(layer for layer in result.layers if layer.name == "conv8").checks["rf"]
    assert rf8.measured == RF((33, 33), (1, 1), (-16, -16))


# Route a reads the input through zero padding and a stride-2 1x1 convolution, which on one pixel
# across reads only the padding (positions 0 and 2 of [pad, x, pad]); route b reads it directly.
# Their sum then grows a field wider than the 12 x 12 input.
TWO_ROUTES = ("input: [1, 12, 12]\nlayers:\n  - {name: a, zeropad: [1, 1, 1, 1]}\n"
              "  - {name: sa, conv: {out: 1, kernel: 1, stride: 2}}\n"
              "  - {name: sb, conv: {out: 1, kernel: 1, stride: 2}, from: input}\n"
              "  - {name: sa2, conv: {out: 1, kernel: 2}, from: sa}\n"
              "  - {name: m, add: {}, from: [sa2, sb]}\n" + "  - conv: {out: 1, kernel: 3, padding: 1}\n" * 4)


def test_a_strip_too_thin_for_a_route_is_measured_at_the_specs_width(monkeypatch):
    result = verify(archcalc.parse_spec(TWO_ROUTES, "routes.yaml"))
    assert result.ok, result.mismatches()
    rf = {layer.name: layer.checks["rf"] for layer in result.layers}
    # m: sa2 sees pixels 2o - 1 .. 2o + 1 (r 3, j 2, start -1), sb pixel 2o: the union is sa2's;
    # four 3x3 convolutions at stride 2 add 4 x 2 x 2 = 16: r 19, start -9.
    assert rf["conv7"].measured == RF((19, 19), (2, 2), (-9, -9)) and rf["conv7"].ok
    # The padding's zeros show that a thin strip could lose a route: measured 12 pixels across.
    assert (1, 24, 12) in result.probe_inputs and (1, 24, 1) not in result.probe_inputs
    # Without that check the one-pixel strip loses route a, and the fields would look 2 narrower.
    monkeypatch.setattr(probe, "_alive_across", lambda *args: True)
    wrong = verify(archcalc.parse_spec(TWO_ROUTES, "routes.yaml"))
    assert ("conv7", "rf") in wrong.mismatches()
    assert next(l for l in wrong.layers if l.name == "conv7").checks["rf"].measured.size == (17, 17)


UNET = """input: [1, 32, 32]
blocks:
  double:
    args: {c: 4}
    layers:
      - conv: {out: c, kernel: 3, padding: 1}
      - relu
      - conv: {out: c, kernel: 3, padding: 1}
layers:
  - {name: e1, double: {c: 4}}
  - {name: p1, maxpool: 2}
  - {name: e2, double: {c: 8}}
  - {name: p2, maxpool: 2}
  - {name: e3, double: {c: 8}}
  - {name: p3, maxpool: 2}
  - {name: e4, double: {c: 8}}
  - {name: p4, maxpool: 2}
  - {name: mid, double: {c: 8}}
  - {name: u4, conv_transpose: {out: 8, kernel: 2, stride: 2}}
  - {name: c4, concat: 0, from: [u4, e4]}
  - {name: u3, conv_transpose: {out: 8, kernel: 2, stride: 2}}
  - {name: c3, concat: 0, from: [u3, e3]}
  - {name: u2, conv_transpose: {out: 8, kernel: 2, stride: 2}}
  - {name: c2, concat: 0, from: [u2, e2]}
  - {name: u1, conv_transpose: {out: 4, kernel: 2, stride: 2}}
  - {name: c1, concat: 0, from: [u1, e1]}
  - {name: d1, double: {c: 4}}
"""


def test_a_unet_field_repeating_every_16_outputs_is_measured():
    graph = archcalc.parse_spec(UNET, "unet.yaml")
    result = verify(graph)
    assert result.ok, result.mismatches()
    rf = {layer.name: layer.checks["rf"] for layer in result.layers}
    assert all(c.ok for c in rf.values()), [n for n, c in rf.items() if not c.ok]
    # After four stride-2 transposed convolutions, outputs repeat every 16 (the old probe read
    # at most 8): 33 outputs read per axis, in rounds where memory asks.
    assert probe._period(rf["u1"].analytic) == 16
    assert rf["u1"].measured == rf["u1"].analytic


def test_a_period_longer_than_the_probe_reads_says_so(monkeypatch):
    monkeypatch.setattr(probe, "MAX_PERIOD", 8)
    rf = {layer.name: layer.checks["rf"] for layer in verify(archcalc.parse_spec(UNET, "unet.yaml")).layers}
    assert rf["u1"].ok is None and "repeat every 16 outputs" in rf["u1"].note
    assert rf["e4.conv2"].ok is True


def test_fields_are_measured_per_axis_with_their_own_kernels():
    # 1x7 then 7x1 convolutions, and two branches strided along one axis each: wider than the
    # 12 x 12 input along each axis, by different amounts.
    result = verify(archcalc.parse_spec(
        "input: [1, 12, 12]\nlayers:\n  - conv: {out: 2, kernel: [1, 7], padding: [0, 3]}\n"
        "  - conv: {out: 2, kernel: [7, 1], padding: [3, 0]}\n"
        "  - {name: a, conv: {out: 2, kernel: [1, 9], stride: [1, 2], padding: [0, 4]}}\n"
        "  - {name: b, conv: {out: 2, kernel: [9, 1], stride: [2, 1], padding: [4, 0]}, from: conv2}\n"
        "  - {name: s, maxpool: {kernel: [2, 1], stride: [2, 1]}, from: a}\n"
        "  - {name: t, maxpool: {kernel: [1, 2], stride: [1, 2]}, from: b}\n"
        "  - {add: {}, from: [s, t]}\n", "axes.yaml"))
    assert result.ok, result.mismatches()
    rf = {layer.name: layer.checks["rf"] for layer in result.layers}
    # a: 7 + 8 = 15 along dim 2 at stride 2; s pools a along dim 1: 7 + 1 = 8 at stride 2
    assert rf["s"].measured == RF((8, 15), (2, 2), (-3, -7))
    assert rf["add1"].measured == RF((15, 15), (2, 2), (-7, -7)) and rf["add1"].ok


def test_adaptive_pooling_to_a_fixed_size_is_measured_where_its_input_divides():
    # 64 -> conv s2 -> 32 -> maxpool -> 16 -> adaptive 7: 16 / 7 repeats every 7 outputs, 15
    # outputs needed of 7. Strips of 64 k keep 7 outputs from 16 k inputs, and no k of 2, 3, 4,
    # 6, 8, ... divides by 7; the probe then tries lengths 128 + 4t, until the pool's input
    # divides by 7 (35 at t = 3, length 140: windows of 5, every output alike).
    result = verify(archcalc.parse_spec(
        "input: [1, 64, 64]\nlayers:\n  - conv: {out: 2, kernel: 3, stride: 2, padding: 1}\n"
        "  - maxpool: 2\n  - conv: {out: 2, kernel: 3, padding: 1}\n  - adaptive_avgpool: 7\n", "adaptive.yaml"))
    assert result.ok, result.mismatches()
    pool = result.layers[-1].checks["rf"]
    assert pool.ok is True and "depends on the input size" in pool.note and "140" in pool.note
    # at 140: conv 3/2 p1 (r 3, j 2, start -1), maxpool 2 (r 5, j 4), conv 3 p1 (r 13, start -5);
    # 35 -> 7: windows of 5 inputs moving 5: r 13 + 4 x 4 = 29, j 20
    assert pool.measured == RF((29, 29), (20, 20), (-5, -5))


def test_what_the_probe_cannot_reach_is_said_per_layer(monkeypatch):
    monkeypatch.setattr(probe, "MAX_STRIP", 40)  # the strips of 48 are refused
    rf = {layer.name: layer.checks["rf"] for layer in verify(archcalc.parse_spec(DEEP, "deep.yaml")).layers}
    assert rf["conv4"].ok is True  # field 17: on the spec's 24 x 24
    assert rf["conv8"].ok is None and "longer than 40 pixels" in rf["conv8"].note


def test_reads_go_in_rounds_when_the_budget_holds_fewer_examples(monkeypatch):
    # One example of the 24 x 24 probe needs 16 x 24 x 24 x 9 bytes = 83 KB: 100 KB holds one,
    # so the three outputs of each field are read in three backward passes.
    monkeypatch.setattr(probe, "MAX_PROBE_BYTES", 100_000)
    assert probe._examples(*_probe_network(DEEP), 3) == 1
    result = verify(archcalc.parse_spec(DEEP, "deep.yaml"))
    assert result.ok and all(layer.checks["rf"].ok for layer in result.layers if layer.name != "flatten1")
    monkeypatch.setattr(probe, "MAX_PROBE_BYTES", 1_000)  # not even one example
    conv = verify(archcalc.parse_spec(DEEP, "deep.yaml")).layers[0].checks["rf"]
    assert conv.ok is None and "not probed" in conv.note and "budget" in conv.note


def _probe_network(text):
    from archcalc.analysis.walk import analyze_graph

    graph = archcalc.parse_spec(text, "t.yaml")
    report = analyze_graph(graph)
    keep = [n for n, row in zip(graph.nodes, report.layers) if row.rf is not None]
    probe_graph = probe._probe_graph(graph, keep, graph.input_shape[1:])
    rows = {row.name: row for row in analyze_graph(probe_graph).layers}
    return probe_graph.nodes, rows, graph.input_shape
