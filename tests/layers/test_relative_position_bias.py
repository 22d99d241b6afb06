"""relative_position_bias (T5's bucketed bias, read by attention as a second input), attention's
`scale`, and multiply_by: shapes, parameters and MACs by hand, errors located. No torch needed."""
import pytest

import archcalc
from layer_helpers import analyze, last, spec_error

ENTRY = "relative_position_bias: {heads: 8, num_buckets: 32, max_distance: 128}"


@pytest.mark.parametrize("shape", [{"tokens": [12]}, [12, 64]])
def test_shape_and_table_by_hand(shape):
    # [heads, T, T] from a sequence's length, token ids or features; the table 32 buckets x 8 heads
    row = last(shape, ENTRY)
    assert row.output_shape == (8, 12, 12)
    assert (row.trainable_params, row.non_trainable_params, row.macs) == (32 * 8, 0, 0)
    assert row.rf is None


def test_defaults_are_t5s_and_heads_is_primary():
    row = last({"tokens": [5]}, "relative_position_bias: 4")
    assert row.output_shape == (4, 5, 5) and row.trainable_params == 32 * 4  # num_buckets 32
    causal = last({"tokens": [5]}, "relative_position_bias: {heads: 6, num_buckets: 16, bidirectional: false}")
    assert causal.trainable_params == 16 * 6


def test_one_bias_read_by_every_layer_counts_once():
    # T5: the bias is computed once (HF: in layer 0) and every self-attention reads it.
    text = """
input: {tokens: [10]}
layers:
  - {name: embed, embedding: {num: 100, dim: 32}}
  - {name: bias, relative_position_bias: {heads: 4}, from: input}
  - {name: a1, attention: {heads: 4, bias: false, scale: 1}, from: [embed, bias]}
  - {name: a2, attention: {heads: 4, bias: false, scale: 1}, from: [a1, bias]}
"""
    report = archcalc.analyze_text(text)
    attn = 4 * 32 * 32  # q, k, v, o without biases
    assert [r.trainable_params for r in report.layers] == [3200, 128, attn, attn]
    assert report.totals.params == 3200 + 128 + 2 * attn
    # MACs: the bias adds nothing (elementwise); q, k, v, o + q k^T + weights x v
    macs = 10 * 32 * 3 * 32 + 2 * 4 * 10 * 10 * 8 + 10 * 32 * 32
    assert report.layer("a1").macs == report.layer("a2").macs == macs


def test_symbolic_length():
    report = archcalc.analyze_text("input: {tokens: [T]}\nlayers:\n  - {name: e, embedding: {num: 9, dim: 16}}\n"
                                   "  - {name: b, relative_position_bias: 2, from: input}\n"
                                   "  - {attention: {heads: 2, scale: 1}, from: [e, b]}\n")
    import sympy

    t = sympy.Symbol("T", positive=True, integer=True)
    assert report.layer("b").output_shape == (2, t, t)
    assert sympy.simplify(report.layers[-1].macs - (t * 16 * 48 + 2 * 2 * t * t * 8 + t * 16 * 16)) == 0


def test_attention_scale_changes_no_figure():
    plain = last([10, 32], "attention: {heads: 4}")
    unscaled = last([10, 32], "attention: {heads: 4, scale: 1}")
    assert (unscaled.trainable_params, unscaled.macs) == (plain.trainable_params, plain.macs) \
        == (4 * 32 * 32 + 4 * 32, 10 * 32 * 96 + 2 * 4 * 100 * 8 + 10 * 32 * 32)


@pytest.mark.parametrize("bias_shape", ["[4, 10, 10]", "[1, 10, 10]"])
def test_a_learned_bias_of_either_head_count_is_read(bias_shape):
    row = analyze([10, 32], f"{{name: b, parameter: {bias_shape}}}",
                  "{attention: {heads: 4}, from: [input, b]}").layers[-1]
    assert row.output_shape == (10, 32)


@pytest.mark.parametrize("entries, words", [
    (["{name: b, parameter: [3, 10, 10]}", "{attention: {heads: 4}, from: [input, b]}"],
     "must be shaped [heads, Tq, Tk] = [4, 10, 10]"),
    (["{name: b, parameter: [4, 10, 9]}", "{attention: {heads: 4}, from: [input, b]}"], "got [4, 10, 9]"),
    (["{name: b, parameter: [10, 10]}", "{attention: {heads: 4}, from: [input, b]}"], "got [10, 10]"),
    (["{name: b, parameter: [4, 10, 10]}", "{attention: {heads: 4}, from: [input, b, b]}"],
     "attention takes one or two inputs, but 'from' names 3"),
    (["{relative_position_bias: {heads: 4, num_buckets: 3}}"], "num_buckets 3 leaves no exact bucket"),
    (["{relative_position_bias: {heads: 4, num_buckets: 1, bidirectional: false}}"], "num_buckets"),
    (["{relative_position_bias: {heads: 4, num_buckets: 32, max_distance: 8}}"],
     "max_distance 8 must be more than the 8 exact buckets"),
    (["{name: e, embedding: {num: 5, dim: 4}}", "{reshape: [2, 2, 2, 5]}", "relative_position_bias: 2"],
     "reads a sequence's length"),
    (["{attention: {heads: 4, scale: -1}}"], "scale"),
])
def test_errors_are_located(entries, words):
    err = spec_error([10, 32] if "embedding" not in entries[0] else {"tokens": [10]}, *entries)
    assert words in err.message, err.message
    assert err.loc is not None and err.loc.line >= 3


def test_explain_writes_the_table_and_the_scale():
    from archcalc.explain import explain

    text = ("input: {tokens: [10]}\nlayers:\n  - {name: e, embedding: {num: 50, dim: 32}}\n"
            "  - {name: bias, relative_position_bias: {heads: 4, num_buckets: 16, max_distance: 64}, from: input}\n"
            "  - {name: t5, attention: {heads: 4, bias: false, scale: 1}, from: [e, bias]}\n"
            "  - {name: plain, attention: {heads: 4}, from: e}\n"
            "  - {name: out, multiply_by: 0.5}\n")
    steps = {e.name: {x.figure: x for x in e.steps} for e in explain(archcalc.parse_spec(text))}
    bias = steps["bias"]
    assert bias["output"].result == (4, 10, 10)
    assert (bias["params"].formula, bias["params"].substituted, bias["params"].result) == \
        ("num_buckets*heads", "16*4", 64)
    assert "8 buckets for keys up to the query and 8 for keys after it: 4 exact" in bias["output"].note
    assert bias["macs"].result == 0
    assert "unscaled scores (scale 1) plus the score bias input" in steps["t5"]["macs"].note
    assert "scores times 1/sqrt(d)" in steps["plain"]["macs"].note
    assert steps["out"]["params"].result == 0 and "0.5" in steps["out"]["output"].note


def test_multiply_by_is_a_constant():
    # T5's decoder output times d_model ** -0.5 before the tied lm_head: no parameters, 0 MACs
    row = last([7, 512], 'multiply_by: "512 ** -0.5"')
    assert (row.output_shape, row.trainable_params, row.non_trainable_params, row.macs) == ((7, 512), 0, 0, 0)
    field = last([3, 9, 9], "conv: {out: 4, kernel: 3}", "multiply_by: 2").rf
    assert field.size == (3, 3)  # unchanged
    assert "value" in spec_error([4], "multiply_by: {}").message


# --- T5's one table: an embedding tied to another embedding (and on to the lm_head) -------------------

T5_TABLE = """
inputs: {src: {tokens: [6]}, tgt: {tokens: [4]}}
layers:
  - {name: enc, embedding: {num: 50, dim: 8, tie: dec}, from: src}
  - {name: dec, embedding: {num: 50, dim: 8, tie: head}, from: tgt}
  - {name: head, linear: {out: 50, bias: false}}
"""


def test_one_table_for_two_streams_and_the_head_counts_once():
    report = archcalc.analyze_text(T5_TABLE)
    assert [r.trainable_params for r in report.layers] == [400, 400, 400]
    assert [r.shared_params for r in report.layers] == [0, 400, 400]
    assert report.totals.params == report.totals.trainable_params == 400
    assert report.layer("dec").output_shape == (4, 8)


def test_a_tied_embedding_of_another_shape_is_refused_at_the_tie():
    text = T5_TABLE.replace("{num: 50, dim: 8, tie: head}", "{num: 50, dim: 6, tie: head}")
    with pytest.raises(archcalc.SpecError) as info:
        archcalc.analyze_text(text)
    assert "the embedding's table is [50, 6] but this one is [50, 8]" in info.value.message
    assert (info.value.loc.line, info.value.layer) == (4, "enc")
