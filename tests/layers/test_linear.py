"""linear: hand-computed values on vectors, [T, F] sequences and higher ranks (no torch needed)."""
import pytest

from layer_helpers import GLOBAL, analyze, last, spec_error


def test_mnist_classifier():
    row = last([784], "linear: 10")
    assert row.output_shape == (10,)
    assert row.trainable_params == 7850  # 784 * 10 + 10
    assert row.macs == 7840  # 784 * 10
    assert row.rf is None  # a vector input has no spatial axes


def test_linear_without_bias():
    row = last([784], "linear: {out: 10, bias: false}")
    assert (row.trainable_params, row.macs) == (7840, 7840)


def test_linear_on_a_sequence_acts_on_features():
    row = last([20, 64], "linear: 32")  # [T, F]
    assert row.output_shape == (20, 32)
    assert row.trainable_params == 2080  # 64 * 32 + 32: shared over the 20 steps
    assert row.macs == 40_960  # 20 steps * 64 * 32


def test_linear_on_rank_3():
    row = last([3, 4, 5], "linear: 6")
    assert row.output_shape == (3, 4, 6)
    assert row.trainable_params == 36  # 5 * 6 + 6
    assert row.macs == 360  # 3*4 positions * 5 * 6
    # Mixes W (the last axis) but not H: one size per axis cannot say that, so not tracked.
    assert row.rf is None
    # On [C, L] it mixes the only spatial axis: global.
    assert last([3, 5], "linear: 6").rf == GLOBAL


def test_mlp_totals():
    r = analyze([784], "linear: 256", "relu", "linear: 128", "relu", "linear: 10")
    # (784+1)*256 + (256+1)*128 + (128+1)*10 = 200960 + 32896 + 1290
    assert r.totals.trainable_params == 235_146
    assert r.totals.macs == 234_752  # 784*256 + 256*128 + 128*10 = 200704 + 32768 + 1280


def test_linear_after_flatten_and_batch():
    r = analyze([64, 7, 7], "flatten", "linear: 10", batch=4)
    assert r.layers[1].trainable_params == 31_370  # 3136 * 10 + 10
    assert r.layers[1].macs == 4 * 31_360  # MACs are reported for the whole batch


@pytest.mark.parametrize("entry, message", [
    ("linear: 0", "must be an integer >= 1"),
    ("linear: {out: 4, bias: 1}", "must be true or false"),
    ("linear", "linear needs argument 'out'"),
])
def test_linear_errors(entry, message):
    assert message in spec_error([8], entry).message
