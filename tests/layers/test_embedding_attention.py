"""embedding (with tied weights), token inputs and attention: hand-computed figures and errors
(no torch needed)."""
import pytest

import archcalc
from layer_helpers import analyze, last, spec_error

TOKENS = {"tokens": [10]}


# --- embedding and token inputs ----------------------------------------------------------------

def test_embedding_table_and_shape():
    row = last(TOKENS, "embedding: {num: 1000, dim: 64}")
    assert row.output_shape == (10, 64)
    assert (row.trainable_params, row.non_trainable_params, row.macs) == (64_000, 0, 0)  # 1000*64, a lookup
    assert row.rf is None


def test_embedding_keeps_the_ids_shape():
    # [2, 7] ids (e.g. two rows of a packed input) -> [2, 7, 16]
    assert last({"tokens": [2, 7]}, "embedding: {num: 5, dim: 16}").output_shape == (2, 7, 16)


def test_token_ids_pass_through_index_operations_only():
    err = spec_error(TOKENS, "linear: 4")
    assert "integer token ids" in err.message and "embedding first" in err.message
    err = spec_error([10, 8], "embedding: {num: 5, dim: 4}")
    assert "reads integer token ids" in err.message and "tokens: [T]" in err.message
    # a reshape of the ids is still ids
    assert last(TOKENS, "reshape: [2, 5]", "embedding: {num: 5, dim: 4}").output_shape == (2, 5, 4)


def test_padding_idx_must_be_an_id():
    assert last(TOKENS, "embedding: {num: 5, dim: 4, padding_idx: -5}").trainable_params == 20
    err = spec_error(TOKENS, "embedding: {num: 5, dim: 4, padding_idx: 5}")
    assert err.arg if hasattr(err, "arg") else True
    assert "padding_idx 5" in err.message and "-5..4" in err.message


TIED = """
input: {tokens: [12]}
layers:
  - {name: wte, embedding: {num: 50, dim: 8, tie: head}}
  - layernorm
  - {name: head, linear: {out: 50, bias: false}}
"""


def test_tied_weights_are_counted_once():
    r = archcalc.analyze_text(TIED)
    # rows hold what each PyTorch module holds: 50*8 in both; the total counts the table once
    assert r.layer("wte").trainable_params == 400 and r.layer("head").trainable_params == 400
    assert r.layer("head").shared_params == 400 and r.layer("head").shared_with == "wte"
    assert r.totals.trainable_params == 400 + 16  # table + layernorm 2*8
    assert r.to_json()["layers"][2]["shared_with"] == "wte"


def test_tie_with_a_bias_keeps_the_bias_own():
    r = archcalc.analyze_text(TIED.replace("bias: false", "bias: true"))
    assert r.totals.trainable_params == 400 + 16 + 50


@pytest.mark.parametrize("change, words", [
    ("tie: head}}", "tie: hed}}"),  # misspelt
])
def test_tie_must_name_a_layer(change, words):
    with pytest.raises(archcalc.SpecError) as info:
        archcalc.parse_spec(TIED.replace(change, words))
    assert "'tie: hed' names no layer" in info.value.message and "head" in info.value.message
    assert info.value.loc.line == 4


def test_tie_checks_the_shapes_and_the_kind():
    with pytest.raises(archcalc.SpecError) as info:
        archcalc.analyze_text(TIED.replace("out: 50", "out: 49"))
    assert "a tied linear maps dim -> num" in info.value.message and info.value.loc.line == 4
    with pytest.raises(archcalc.SpecError) as info:
        archcalc.analyze_text(TIED.replace("tie: head", "tie: layernorm1"))
    assert "only with a linear" in info.value.message
    text = """
input: {tokens: [12]}
layers:
  - {name: first, embedding: {num: 50, dim: 50}}
  - {name: second, from: input, embedding: {num: 50, dim: 50, tie: head}}
  - {name: head, from: first, linear: {out: 50, bias: false}}
"""
    assert archcalc.analyze_text(text).totals.trainable_params == 2 * 2500  # head shares second's table
    with pytest.raises(archcalc.SpecError) as info:
        archcalc.analyze_text(text.replace("- {name: head, from: first", "- {name: head2, from: first")
                              .replace("tie: head", "tie: first"))
    assert "tie to a later layer" in info.value.message


def test_tie_inside_a_block_resolves_in_the_block_first():
    text = """
input: {tokens: [4]}
blocks:
  lm:
    layers:
      - {name: emb, embedding: {num: 20, dim: 6, tie: out}}
      - {name: out, linear: {out: 20, bias: false}}
layers:
  - {name: a, lm: {}}
"""
    r = archcalc.analyze_text(text)
    assert r.layer("a.out").shared_with == "a.emb" and r.totals.trainable_params == 120


# --- attention ----------------------------------------------------------------------------------

def mha_figures(t, d, h, kv=None, hd=None, bias=True):
    """Independent hand formulas: per-head projections as separate matrices."""
    kv, hd = kv or h, hd or d // h
    params = h * (d * hd) + 2 * kv * (d * hd) + (h * hd) * d
    if bias:
        params += h * hd + 2 * kv * hd + d
    macs = t * (h * d * hd) + 2 * t * (kv * d * hd)  # q, k, v for every token
    macs += h * (t * t * hd)  # scores: [T, hd] @ [hd, T] per head
    macs += h * (t * t * hd)  # weights @ values: [T, T] @ [T, hd] per head
    macs += t * (h * hd * d)  # output projection
    return params, macs


def test_vit_b16_block_attention():
    # ViT-B/16: 197 tokens of 768, 12 heads: nn.MultiheadAttention has 4*768*768 + 4*768 parameters
    row = last([197, 768], "attention: 12")
    assert row.trainable_params == 4 * 768 * 768 + 4 * 768 == 2_362_368
    assert row.macs == 4 * 197 * 768 * 768 + 2 * 197 * 197 * 768 == 524_391_936
    assert row.output_shape == (197, 768)


@pytest.mark.parametrize("args, figures", [
    ("{heads: 8}", (64, 512, 8)),
    ("{heads: 8, kv_heads: 2}", (64, 512, 8, 2)),
    ("{heads: 8, kv_heads: 1, bias: false}", (64, 512, 8, 1, None, False)),
    ("{heads: 4, head_dim: 32, causal: true}", (64, 512, 4, None, 32)),
    ("{heads: 8, kv_heads: 4, rotary: true, causal: true, bias: false}", (64, 512, 8, 4, None, False)),
])
def test_attention_variants(args, figures):
    row = last([64, 512], f"attention: {args}")
    assert (row.trainable_params, row.macs) == mha_figures(*figures)


def test_attention_errors():
    assert "[T, D]" in spec_error([3, 8, 8], "attention: 2").message
    err = spec_error([10, 30], "attention: 4")
    assert "D = 30 are not divisible by heads 4" in err.message
    assert "not divisible by kv_heads 3" in spec_error([10, 32], "attention: {heads: 4, kv_heads: 3}").message
    assert "head_dim must be even" in spec_error([10, 30], "attention: {heads: 2, head_dim: 15, rotary: true}").message
    assert "attention has no argument 'head'" in spec_error([10, 32], "attention: {head: 4}").message


def test_attention_with_symbolic_tokens():
    r = analyze(["T", 64], "attention: 4")
    import sympy

    t = sympy.Symbol("T", positive=True, integer=True)
    assert sympy.expand(r.totals.macs - (4 * t * 64 * 64 + 2 * t * t * 64)) == 0
    assert r.totals.params == 4 * 64 * 64 + 4 * 64


def test_kv_cache_and_saved_activations_of_attention():
    from archcalc.layers import KINDS

    a = archcalc.parse_spec("input: [16, 64]\nlayers:\n  - attention: {heads: 8, kv_heads: 2, causal: true}\n")
    node = a.nodes[0]
    attention = KINDS["attention"]
    # keys and values of every position: 2 * T * kv_heads * head_dim
    assert attention.kv_cache(node.args, [(16, 64)], (16, 64)) == 2 * 16 * 2 * 8
    # The CPU flash kernel: x, q, k and v (k, v repeated to the 8 query heads), its output and
    # the logsumexp [H, T]; no T x T weights (tests/torch/test_saved_sequence_measured.py measures it)
    assert attention.saved_for_backward(node.args, [(16, 64)], (16, 64)) == (
        16 * 64 + 3 * 16 * 8 * 8 + 16 * 8 * 8 + 8 * 16)
