"""rmsnorm, class_token, positional, rotary: hand-computed values, errors and symbolic sizes
(no torch needed)."""
import re

import pytest

import archcalc
from layer_helpers import analyze, last, rf_axes, spec_error
from test_explain import ALL_KINDS  # noqa: E402


def figures(row):
    return row.output_shape, row.trainable_params, row.non_trainable_params, row.macs


# --- rmsnorm -----------------------------------------------------------------------------------

@pytest.mark.parametrize("shape, args, params", [
    ([10, 512], "{}", 512),  # one scale per feature, no shift (layernorm would have 1024)
    ([3, 4, 5], "{dims: 2}", 20),  # normalised [4, 5]: 4 * 5
    ([3, 4, 5], "{dims: 3}", 60),  # 3 * 4 * 5
    ([7], "{eps: 0.000001}", 7),
    ([10, 512], "{affine: false}", 0),
])
def test_rmsnorm(shape, args, params):
    assert figures(last(shape, f"rmsnorm: {args}")) == (tuple(shape), params, 0, 0)


def test_rmsnorm_bare_keeps_rf_like_layernorm():
    r = analyze([3, 8, 8], "conv: {out: 4, kernel: 3}", "rmsnorm", "layernorm")
    assert r.layers[1].trainable_params == 6  # last dim W = 8 - 3 + 1 = 6
    assert r.layers[1].rf == r.layers[2].rf == rf_axes(2, 3, 1, 0)


# --- class_token -------------------------------------------------------------------------------

def test_class_token():
    # ViT-B/16: 14 * 14 = 196 patches of 768 -> 197 tokens; the token is 768 parameters
    assert figures(last([196, 768], "class_token")) == ((197, 768), 768, 0, 0)
    assert last([196, 768], "class_token").rf is None


# --- positional --------------------------------------------------------------------------------

@pytest.mark.parametrize("shape, args, params", [
    ([197, 768], "{}", 151296),  # ViT-B/16: 197 * 768
    ([64, 768], "{num: 1024}", 786432),  # GPT-2's table, 1024 * 768, on 64 tokens
    ([50, 512], "{learned: false}", 0),  # sinusoidal: computed, no parameters
])
def test_positional(shape, args, params):
    row = last(shape, f"positional: {args}")
    assert figures(row) == (tuple(shape), params, 0, 0)
    assert row.rf is None


def test_vit_embedding_totals():
    # patch conv (16*16*3 + 1)*768 = 590592, class token 768, positions 197*768 = 151296
    r = analyze([3, 224, 224], "conv: {out: 768, kernel: 16, stride: 16}", "flatten: {start_dim: 1}",
                "permute: [1, 0]", "class_token", "positional")
    assert r.output_shape == (197, 768)
    assert r.totals.params == 590592 + 768 + 151296


# --- rotary ------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape, args", [
    ([12, 128, 64], "{}"),  # [heads, T, head_dim]
    ([128, 64], "{}"),  # [T, D]
    ([2, 12, 128, 64], "{dims: 16, base: 500000}"),  # partial rotary (GPT-NeoX), LLaMA-3's base
    ([12, 128, 64], "{interleaved: true}"),
])
def test_rotary(shape, args):
    row = last(shape, f"rotary: {args}")
    assert figures(row) == (tuple(shape), 0, 0, 0)
    assert row.rf is None


# --- errors ------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape, entry, message", [
    ([768], "class_token", "class_token needs a sequence shaped [T, D] (tokens, features), got [768]"),
    ([3, 4, 5], "class_token", "got [3, 4, 5]"),
    ([768], "positional", "positional needs a sequence shaped [T, D]"),
    ([64, 768], "positional: {num: 32}", "the table has 32 positions but the sequence has T = 64 tokens "
                                         "([64, 768]); expected num >= 64"),
    ([64, 7], "positional: {learned: false}", "D must be even, got [64, 7]"),
    ([64, 8], "positional: {learned: false, num: 64}", "'num' is the size of a learned table"),
    ([64], "rotary", "rotary needs an input shaped [..., T, Dh] (positions, then features), got [64]"),
    ([4, 7], "rotary", "dims must be even, got 7 (Dh of [4, 7])"),
    ([4, 8], "rotary: {dims: 5}", "dims must be even, got 5"),
    ([4, 8], "rotary: {dims: 16}", "dims 16 is more than the 8 features of [4, 8]; expected dims <= 8"),
    ([4, 8], "rotary: {base: 0}", "base must be positive, got 0"),
    ([3, 4, 5], "rmsnorm: {dims: 4}", "dims 4 is more than the input's 3 dimensions [3, 4, 5]"),
])
def test_errors(shape, entry, message):
    assert message in spec_error(shape, entry).message


@pytest.mark.parametrize("entry, message", [
    ("rmsnorm: {dims: 0}", ">= 1"),
    ("rmsnorm: {eps: -1}", ">= 0"),
    ("rmsnorm: 1", "rmsnorm takes no single value"),
    ("class_token: {dim: 4}", "class_token has no argument 'dim'"),
    ("positional: {learned: 1}", "must be true or false"),
    ("positional: {num: 0}", ">= 1"),
    ("rotary: {dims: 1.5}", "must be an integer"),
])
def test_argument_errors(entry, message):
    assert message in spec_error([16, 8], entry).message


def test_error_points_at_the_argument():
    text = "input: [64, 768]\nlayers:\n  - positional:\n      num: 32\n"
    with pytest.raises(archcalc.SpecError) as info:
        archcalc.analyze_text(text)
    assert info.value.loc.line == 4  # the line of 'num'


# --- symbolic sizes ----------------------------------------------------------------------------

def test_symbolic_sequence_length():
    pytest.importorskip("sympy")
    r = archcalc.analyze_text("input: [T, 64]\nlayers:\n  - class_token\n  - positional\n"
                              "  - {positional: {num: 1024}}\n  - rmsnorm\n  - {rotary: {dims: 32}}\n"
                              "  - {positional: {learned: false}}\n")
    if not r.symbols:
        pytest.skip("symbolic sizes are not available")
    token, pos, gpt, norm, rope, sin = r.layers
    assert str(token.output_shape[0]) == "T + 1"
    assert token.trainable_params == 64
    assert str(pos.trainable_params) == "64*T + 64"  # (T + 1) * 64, the table follows T
    assert gpt.trainable_params == 65536  # 1024 * 64: a fixed table, whatever T is
    assert norm.trainable_params == 64
    assert rope.trainable_params == sin.trainable_params == 0
    assert rope.output_shape == sin.output_shape == token.output_shape


# --- explain -----------------------------------------------------------------------------------

TRANSFORMER = ALL_KINDS["transformer"]  # shared with tests/test_explain.py


def test_explain_every_figure():
    from archcalc.explain import explain, text
    from test_explain import check

    graph = archcalc.parse_spec(TRANSFORMER)
    explanations = explain(graph)
    assert check(archcalc.analyze(graph), explanations) > 0
    lines = text(explanations)
    assert "output = [T + 1, D] = [16 + 1, 24] = [17, 24]" in lines
    assert "params = T*D = 17*24 = 408" in lines
    assert "params = num*D = 64*24 = 1,536" in lines
    assert re.search(r"rmsnorm2 +params = L = 24   \(", lines)
    assert re.search(r"norm_in +params = C\*L = 16\*24 = 384", lines)
    assert re.search(r"norm_in +rf = unchanged = size 1, jump 1, start 0", lines)


def test_explain_symbolic():
    pytest.importorskip("sympy")
    from archcalc.explain import explain
    from test_explain import check

    graph = archcalc.parse_spec(TRANSFORMER.replace("[16, 24]", "[T, 24]").replace("[17, 4, 6]", "[-1, 4, 6]"))
    if not graph.symbols:
        pytest.skip("symbolic sizes are not available")
    check(archcalc.analyze(graph), explain(graph))


def test_positional_init_counts_as_a_table_and_is_refused_without_one():
    assert last([20, 16], "positional: {num: 30, init: sinusoids}").trainable_params == 30 * 16
    assert "no table" in spec_error([20, 16], "positional: {learned: false, init: sinusoids}").message
    assert "D must be even" in spec_error([20, 15], "positional: {init: sinusoids}").message
    assert "D must be even" in spec_error([20, 2], "positional: {init: sinusoids}").message
