"""add, multiply, concat: hand-computed values, receptive-field unions and errors (no torch)."""
import pytest

from layer_helpers import GLOBAL, RF, analyze, spec_error

RESIDUAL = (
    "{name: a, conv: {out: 4, kernel: 3, padding: 1}}",
    "{name: b, from: input, conv: {out: 4, kernel: 1}}",
)


def test_residual_add():
    r = analyze([4, 8, 8], *RESIDUAL, "{name: sum, add: {}, from: [a, b]}")
    row = r.layer("sum")
    assert row.output_shape == (4, 8, 8)
    assert (row.trainable_params, row.non_trainable_params, row.macs) == (0, 0, 0)
    assert row.rf == RF((3, 3), (1, 1), (-1, -1))  # union of -1..1 and 0..0


def test_add_three_inputs():
    r = analyze([4, 8], "{name: a, relu: null}", "{name: b, from: input, tanh: null}",
                "{from: [a, b, input], add: null}")
    assert r.layers[-1].output_shape == (4, 8)


def test_squeeze_excitation_multiply_broadcasts():
    r = analyze([16, 8, 8],
                "{name: feat, conv: {out: 16, kernel: 3, padding: 1}}",
                "global_avgpool",
                "conv: {out: 4, kernel: 1}", "relu",
                "conv: {out: 16, kernel: 1}", "{name: gate, sigmoid: null}",
                "{name: scaled, multiply: {}, from: [feat, gate]}")
    row = r.layer("scaled")
    assert row.output_shape == (16, 8, 8)  # [16, 8, 8] * [16, 1, 1]
    assert row.macs == 0
    assert row.rf == GLOBAL  # the gate sees the whole input


def test_broadcast_both_ways():
    r = analyze([1, 8, 1], "{name: a, permute: [0, 2, 1]}", "{from: [input, a], add: {}}")
    assert r.layers[-1].output_shape == (1, 8, 8)  # [1, 8, 1] + [1, 1, 8]


def test_concat_channels():
    r = analyze([3, 8, 8], "{name: a, conv: {out: 4, kernel: 3, padding: 1}}",
                "{name: b, from: input, conv: {out: 6, kernel: 5, padding: 2}}",
                "{name: cat, concat: {}, from: [a, b, input]}")
    row = r.layer("cat")
    assert row.output_shape == (13, 8, 8)  # 4 + 6 + 3
    assert row.rf == RF((5, 5), (1, 1), (-2, -2))  # -1..1 u -2..2 u 0..0


@pytest.mark.parametrize("dim, out", [(1, (3, 16, 8)), (-1, (3, 8, 16)), (2, (3, 8, 16))])
def test_concat_other_dims(dim, out):
    r = analyze([3, 8, 8], "{name: a, relu: null}", f"{{concat: {dim}, from: [input, a]}}")
    assert r.layers[-1].output_shape == out


def test_concat_of_sequences():
    r = analyze([20, 64], "{name: a, linear: 32}", "{concat: -1, from: [input, a]}")
    assert r.layers[-1].output_shape == (20, 96)  # features 64 + 32


def test_merge_of_different_strides_is_marked_misaligned():
    r = analyze([1, 16], "{name: a, conv: {out: 1, kernel: 1, stride: 2}}",  # 8 outputs, jump 2
                "{name: b, from: input, conv: {out: 1, kernel: 9}}",  # 16 - 9 + 1 = 8 outputs, jump 1
                "{add: {}, from: [a, b]}")
    # union of 0..0 and 0..8; the larger stride is kept and the result marked
    assert r.layers[-1].rf == RF((9,), (2,), (0,), True)


# --- errors ------------------------------------------------------------------------------------

def test_concat_mismatched_shapes():
    err = spec_error([4, 8, 8], "{name: a, conv: {out: 4, kernel: 2}}", "{concat: {}, from: [input, a]}")
    assert "concat along dim 0 needs equal sizes elsewhere, got [4, 8, 8], [4, 7, 7]" in err.message


def test_concat_rank_mismatch_and_bad_dim():
    err = spec_error([4, 8, 8], "{name: a, flatten: null}", "{concat: {}, from: [input, a]}")
    assert "concat needs inputs of the same rank" in err.message
    err = spec_error([4, 8, 8], "{name: a, relu: null}", "{concat: 3, from: [input, a]}")
    assert "'dim' is 3 but the input has 3 dimensions" in err.message


@pytest.mark.parametrize("kind", ["add", "multiply"])
def test_elementwise_merge_mismatch(kind):
    err = spec_error([4, 8, 8], "{name: a, conv: {out: 4, kernel: 2}}", f"{{{kind}: {{}}, from: [input, a]}}")
    assert f"{kind} cannot broadcast shapes [4, 8, 8], [4, 7, 7]" in err.message
    err = spec_error([4, 8, 8], "{name: a, flatten: null}", f"{{{kind}: {{}}, from: [input, a]}}")
    assert f"{kind} needs inputs of the same rank" in err.message


@pytest.mark.parametrize("kind", ["add", "multiply", "concat"])
def test_merge_needs_two_inputs(kind):
    err = spec_error([4, 8], "relu", kind)
    assert f"{kind} merges two or more inputs" in err.message
