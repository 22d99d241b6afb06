"""Named regressions found by the random-spec cross-check (tests/torch/test_random_specs.py).
Each pins the analytic value (worked out by hand in the comment) and PyTorch's agreement."""
import pytest

torch = pytest.importorskip("torch")

import archcalc  # noqa: E402
from archcalc.analysis.rf import GLOBAL, RF  # noqa: E402
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
    # hundreds of gigabytes. The probe stops at a budget and reports the field as not measured.
    graph = archcalc.parse_spec("input: [1, 5, 5, 5]\nlayers:\n  - adaptive_avgpool: [1, 1, 2]\n", "r.yaml")
    check_ = verify(graph).layers[0].checks["rf"]
    assert check_.ok is None and check_.note
