"""attention as real models write it: a bias switch per projection (Qwen2, Whisper), head_dim apart
from D / heads (Gemma), q/k normalisation (Qwen3, OLMo-2) and the sliding window (Mistral).
Figures by hand from each projection's own matrix; no torch needed."""
import pytest

import archcalc
from archcalc.layers import KINDS
from layer_helpers import analyze, last, spec_error


def hand_params(d, h, kv, hd, q=True, k=True, v=True, o=True, norm=0):
    """Each projection's weight and bias written out one by one; `norm` parameters added."""
    weights = (d * h * hd) + (d * kv * hd) + (d * kv * hd) + (h * hd * d)
    biases = (h * hd if q else 0) + (kv * hd if k else 0) + (kv * hd if v else 0) + (d if o else 0)
    return weights + biases + norm


def hand_macs(t, d, h, kv, hd):
    return t * d * h * hd + 2 * t * d * kv * hd + h * t * t * hd * 2 + t * h * hd * d


@pytest.mark.parametrize("args, switches", [
    ("{heads: 4, o_bias: false}", dict(o=False)),  # Qwen2
    ("{heads: 4, bias: false, q_bias: true, k_bias: true, v_bias: true}", dict(o=False)),  # Qwen2, the other way
    ("{heads: 4, k_bias: false}", dict(k=False)),  # Whisper
    ("{heads: 4, bias: false, v_bias: true}", dict(q=False, k=False, o=False)),
    ("{heads: 4, q_bias: false, k_bias: false, v_bias: false, o_bias: false}", dict(q=False, k=False, v=False, o=False)),
    ("{heads: 4, bias: false, o_bias: true}", dict(q=False, k=False, v=False)),
])
def test_a_bias_per_projection(args, switches):
    row = last([10, 32], f"attention: {args}")
    assert row.trainable_params == hand_params(32, 4, 4, 8, **switches)
    assert row.macs == hand_macs(10, 32, 4, 4, 8)  # biases are elementwise


def test_qwen2_05b_attention_by_hand():
    # Qwen2-0.5B: D 896, 14 heads of 64, 2 key/value heads, q/k/v biases, no output bias
    row = last([16, 896], "attention: {heads: 14, kv_heads: 2, o_bias: false, causal: true, rotary: true}")
    assert row.trainable_params == 896 * 896 + 896 + 2 * (896 * 128 + 128) + 896 * 896 == 1_836_160


def test_gemma_head_dim_apart_from_the_width():
    # Gemma-7B: D 3072, 16 heads of 256 (16*256 = 4096 != 3072), no biases
    row = last([8, 3072], "attention: {heads: 16, head_dim: 256, bias: false}")
    assert row.trainable_params == 3 * 3072 * 4096 + 4096 * 3072 == 50_331_648
    # Gemma-2B: 8 heads of 256, one key/value head: q 2048, k and v 256, o 2048 -> D
    row = last([8, 2048], "attention: {heads: 8, kv_heads: 1, head_dim: 256, bias: false}")
    assert row.trainable_params == 2048 * 2048 + 2 * 2048 * 256 + 2048 * 2048 == 9_437_184
    assert row.macs == hand_macs(8, 2048, 8, 1, 256)


@pytest.mark.parametrize("args, norm", [
    ("{heads: 4, kv_heads: 2, qk_norm: rmsnorm}", 8 + 8),  # Qwen3: one weight of head_dim each for q and k
    ("{heads: 4, kv_heads: 2, qk_norm: layernorm}", 2 * 8 + 2 * 8),  # weight and bias
    ("{heads: 4, kv_heads: 2, qk_norm: rmsnorm, qk_norm_over: all}", 4 * 8 + 2 * 8),  # OLMo-2: 32 for q, 16 for k
    ("{heads: 4, kv_heads: 2, qk_norm: layernorm, qk_norm_over: all, qk_norm_eps: 1.0e-3}", 2 * 32 + 2 * 16),
    ("{heads: 4, kv_heads: 2, qk_norm: rmsnorm, qk_norm_over: head, qk_norm_eps: 0}", 16),
])
def test_qk_norm_parameters(args, norm):
    row = last([10, 32], f"attention: {args}")
    assert row.trainable_params == hand_params(32, 4, 2, 8, norm=norm)
    assert row.macs == hand_macs(10, 32, 4, 2, 8)  # normalisation is elementwise


def test_qwen3_06b_attention_by_hand():
    # Qwen3-0.6B: D 1024, 16 heads of 128 (2048 != D), 8 key/value heads, no biases, q/k RMSNorm of 128
    row = last([16, 1024], "attention: {heads: 16, kv_heads: 8, head_dim: 128, bias: false, qk_norm: rmsnorm, "
                           "causal: true, rotary: true, rotary_base: 1000000}")
    assert row.trainable_params == 1024 * 2048 + 2 * 1024 * 1024 + 2048 * 1024 + 128 + 128 == 6_291_712


def test_sliding_window_keeps_the_dense_macs_and_caps_the_kv_cache():
    attention = KINDS["attention"]
    for t, w, held in ((16, 4, 4), (16, 16, 16), (16, 40, 16), (1, 3, 1)):
        node = archcalc.parse_spec(f"input: [{t}, 64]\nlayers:\n  - attention: "
                                   f"{{heads: 8, kv_heads: 2, causal: true, window: {w}}}\n").nodes[0]
        assert attention.kv_cache(node.args, [(t, 64)], (t, 64)) == 2 * held * 2 * 8  # keys and values
        row = last([t, 64], f"attention: {{heads: 8, kv_heads: 2, causal: true, window: {w}}}")
        assert row.macs == hand_macs(t, 64, 8, 2, 8)


def test_memory_plan_holds_the_window_only():
    from archcalc.analysis.memory import plan_memory

    text = "input: [4096, 64]\nlayers:\n  - attention: {heads: 8, kv_heads: 2, causal: true, window: 1024}\n" \
           "  - attention: {heads: 8, kv_heads: 2, causal: true}\n"
    plan = plan_memory(archcalc.parse_spec(text), archcalc.analyze_text(text))
    kv = next(i for i in plan.inference if i.key == "kv_cache")
    assert kv.value == (2 * 1024 * 2 * 8 + 2 * 4096 * 2 * 8) * 4  # float32


def test_symbolic_tokens_with_a_window():
    import sympy

    r = analyze(["T", 64], "attention: {heads: 8, causal: true, window: 128}")
    t = sympy.Symbol("T", positive=True, integer=True)
    node = archcalc.parse_spec("input: [T, 64]\nlayers:\n  - attention: {heads: 8, causal: true, window: 128}\n").nodes[0]
    assert KINDS["attention"].kv_cache(node.args, [(t, 64)], (t, 64)) == 2 * sympy.Min(t, 128) * 64
    assert r.totals.params == 4 * 64 * 64 + 4 * 64


@pytest.mark.parametrize("args, words, arg", [
    ("{heads: 4, window: 8}", "add causal: true", "window"),
    ("{heads: 4, causal: true, window: 0}", ">= 1", "window"),
    ("{heads: 4, qk_norm_over: all}", "add qk_norm", "qk_norm_over"),
    ("{heads: 4, qk_norm_eps: 1.0e-5}", "add qk_norm", "qk_norm_eps"),
    ("{heads: 4, qk_norm: rms}", "rmsnorm", "qk_norm"),
    ("{heads: 4, qk_norm: rmsnorm, qk_norm_over: heads}", "head", "qk_norm_over"),
    ("{heads: 4, qk_norm: rmsnorm, qk_norm_eps: -1}", ">= 0", "qk_norm_eps"),
    ("{heads: 4, qk_norm: rmsnorm, qk_norm_eps: .nan}", "finite", None),  # the reader's rule for every number
    ("{heads: 4, k_bias: no}", "true or false", "k_bias"),
    ("{heads: 4, o_bias: 1}", "true or false", "o_bias"),
    ("{heads: 4, layout: stacked}", "packed", "layout"),
    ("{heads: 4, kv_heads: 2, layout: fused}", "timm's layout", "layout"),
    ("{heads: 4, k_bias: false, layout: fused}", "q_bias, k_bias and v_bias differ", "layout"),
    ("{heads: 4, rotary: true, layout: fused}", "rotary is on", "layout"),
    ("{heads: 4, kv_heads: 2, layout: packed}", "kv_heads 2 differs from heads 4", "layout"),
    ("{heads: 4, head_dim: 16, layout: packed}", "head_dim 16 is not D / heads = 32 / 4", "layout"),
    ("{heads: 4, o_bias: false, layout: packed}", "bias switches differ", "layout"),
    ("{heads: 4, qk_norm: rmsnorm, layout: packed}", "qk_norm is given", "layout"),
    ("{heads: 4, causal: true, window: 4, layout: packed}", "window is given", "layout"),
    ("{heads: 4, scale: 1, layout: packed}", "scale is given", "layout"),
    ("{heads: 4, rotary: true, layout: packed}", "rotary is on", "layout"),
    ("{heads: 4, rotary_scaling: linear, rotary_factor: 2}", "add rotary: true", "rotary_scaling"),
    ("{heads: 4, rotary: true, rotary_scaling: llama3}", "needs rotary_factor", "rotary_factor"),
    ("{heads: 4, rotary: true, rotary_scaling: linear, rotary_factor: 0}", "above 0", "rotary_factor"),
    ("{heads: 4, rotary: true, rotary_factor: 2}", "add rotary_scaling", "rotary_factor"),
    ("{heads: 4, rotary: true, rotary_original_max: 64}", "add rotary_scaling: llama3", "rotary_original_max"),
    ("{heads: 4, rotary: true, rotary_scaling: linear, rotary_factor: 2, rotary_low_freq_factor: 1}",
     "of the llama3 scaling, not of linear", "rotary_low_freq_factor"),
    ("{heads: 4, rotary: true, rotary_scaling: llama3, rotary_factor: 8, rotary_low_freq_factor: 4, "
     "rotary_high_freq_factor: 2}", "0 < rotary_low_freq_factor < rotary_high_freq_factor", "rotary_high_freq_factor"),
    ("{heads: 4, rotary: true, rotary_scaling: yarn, rotary_factor: 2}", "llama3", "rotary_scaling"),
])
def test_errors_are_located(args, words, arg):
    text = f"input: [10, 32]\nlayers:\n  - {{name: attn, attention: {args}}}\n"
    with pytest.raises(archcalc.SpecError) as info:
        archcalc.analyze_text(text)
    err = info.value
    assert words in err.message, err.message
    assert arg is None or arg in err.message
    assert err.loc is not None and err.loc.line == 3


def test_a_rotary_scaling_changes_no_figure():
    # cos and sin are computed in forward: the same parameters, MACs and cache as unscaled rotary
    plain = analyze([24, 64], "attention: {heads: 4, kv_heads: 2, causal: true, rotary: true}")
    scaled = analyze([24, 64], "attention: {heads: 4, kv_heads: 2, causal: true, rotary: true, rotary_scaling: llama3, "
                               "rotary_factor: 8, rotary_original_max: 16}")
    assert (scaled.totals.params, scaled.totals.macs) == (plain.totals.params, plain.totals.macs)
    # q 64x64 + k, v 64x32 each + out 64x64, and their biases (on by default: 64 + 32 + 32 + 64);
    # MACs: projections 24*64*(64+32+32) + scores 2*4*24*24*16 + output 24*64*64
    assert scaled.totals.params == 64 * 64 + 2 * 64 * 32 + 64 * 64 + 64 + 32 + 32 + 64
    assert scaled.totals.macs == 24 * 64 * 128 + 2 * 4 * 24 * 24 * 16 + 24 * 64 * 64


def test_cli_refuses_in_one_located_line(tmp_path):
    from typer.testing import CliRunner

    from archcalc.cli import app

    spec = tmp_path / "s.yaml"
    spec.write_text("input: [10, 32]\nlayers:\n  - {name: attn, attention: {heads: 4, window: 8}}\n")
    result = CliRunner().invoke(app, ["analyze", str(spec)])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{spec}:3:") and "error:" in lines[0] and "window" in lines[0]


def test_explain_writes_each_new_figure():
    from archcalc.explain import explain

    text = ("input: [10, 32]\nlayers:\n"
            "  - {name: qwen2, attention: {heads: 4, kv_heads: 2, o_bias: false}}\n"
            "  - {name: olmo, attention: {heads: 4, kv_heads: 2, bias: false, qk_norm: rmsnorm, qk_norm_over: all}}\n"
            "  - {name: mistral, attention: {heads: 4, causal: true, window: 3, qk_norm: layernorm}}\n")
    steps = {e.name: e for e in explain(archcalc.parse_spec(text))}
    params = {name: next(x for x in st.steps if x.figure == "params") for name, st in steps.items()}
    assert params["qwen2"].formula == "D*(H + 2*Hkv)*d + H*d*D + H*d + Hkv*d + Hkv*d"
    assert params["qwen2"].result == hand_params(32, 4, 2, 8, o=False)
    assert params["olmo"].formula == "D*(H + 2*Hkv)*d + H*d*D + (H + Hkv)*d"
    assert params["olmo"].result == hand_params(32, 4, 2, 8, q=False, k=False, v=False, o=False, norm=48)
    assert params["mistral"].result == hand_params(32, 4, 4, 8, norm=32)
    assert "windowed" in next(x for x in steps["mistral"].steps if x.figure == "macs").note


def test_saved_for_backward_with_a_qk_norm():
    # The flash kernel (no dropout): x; RMSNorm of q and of k per head: its input, rsqrt (one per
    # token and head) and the normalised values; q, and k, v repeated to the 8 heads; the
    # kernel's output and logsumexp; q is head-major after the norm, so the output is copied
    # for the output projection (tests/torch/test_saved_sequence_measured.py measures these).
    t, d, h, kv, hd = 16, 64, 8, 2, 8
    node = archcalc.parse_spec("input: [16, 64]\nlayers:\n  - attention: {heads: 8, kv_heads: 2, qk_norm: rmsnorm}\n").nodes[0]
    q_norm = t * h * hd + t * h + t * h * hd
    k_norm = t * kv * hd + t * kv + t * kv * hd
    want = t * d + q_norm + k_norm + 3 * t * h * hd + t * h * hd + h * t + t * h * hd
    assert KINDS["attention"].saved_for_backward(node.args, [(t, d)], (t, d)) == want == 8992


# --- causal_mask: attention written from matmul primitives --------------------------------------

def test_causal_mask_keeps_the_scores_shape_and_costs_nothing():
    r = analyze([6, 16], "{name: q, linear: {out: 16, bias: false}}",
                "{name: s, matmul: {transpose: true, scale: 0.25}, from: [q, q]}",
                "{name: m, causal_mask: {}}", "{name: w, causal_mask: {window: 2}, from: s}")
    for name in ("m", "w"):
        row = r.layer(name)
        assert row.output_shape == (6, 6)
        assert (row.trainable_params, row.non_trainable_params, row.macs) == (0, 0, 0)
    assert last([2, 5, 5], "causal_mask").output_shape == (2, 5, 5)  # [H, T, T] scores of two heads
    assert last(["T", "T"], "causal_mask").output_shape[0].name == "T"


@pytest.mark.parametrize("shape, entry, words", [
    ([6, 5], "causal_mask", "square attention scores [..., T, T]"),
    ([6], "causal_mask", "got [6]"),
    ([6, 6], "causal_mask: {window: 0}", ">= 1"),
    ([6, 6], "causal_mask: {windw: 2}", "no argument 'windw'"),
])
def test_causal_mask_errors(shape, entry, words):
    err = spec_error(shape, entry)
    assert words in err.message and err.loc.line == 3


@pytest.mark.parametrize("tokens, dtype, held, size", [(512, "float32", 512, 4), (4096, "float32", 1024, 4),
                                                       (8192, "bfloat16", 1024, 2)])
def test_memory_cli_kv_cache_with_a_window(tmp_path, tokens, dtype, held, size):
    import json

    from typer.testing import CliRunner

    from archcalc.cli import app

    spec = tmp_path / "w.yaml"
    spec.write_text("input: [4096, 64]\nlayers:\n  - attention: {heads: 8, kv_heads: 2, causal: true, window: 1024}\n")
    result = CliRunner().invoke(app, ["memory", str(spec), "--input", f"{tokens},64", "--dtype", dtype, "--json"])
    assert result.exit_code == 0, result.output
    # keys and values of min(T, window) positions, 2 heads of 8
    assert json.loads(result.output)["inference"]["kv_cache_bytes"] == 2 * held * 2 * 8 * size


# --- layout: packed (nn.MultiheadAttention's parameters) ---------------------------------------

@pytest.mark.parametrize("args, bias", [
    ("{heads: 4, layout: packed}", True),
    ("{heads: 4, bias: false, layout: packed}", False),
    ("{heads: 4, causal: true, layout: packed}", True),
])
def test_packed_layout_keeps_the_figures(args, bias):
    row = last([10, 32], f"attention: {args}")
    # nn.MultiheadAttention(32, 4): in_proj_weight 96 x 32, in_proj_bias 96, out_proj 32 x 32 + 32
    assert row.trainable_params == 96 * 32 + 32 * 32 + (96 + 32 if bias else 0)
    assert row.macs == hand_macs(10, 32, 4, 4, 8)


def test_packed_layout_in_explain():
    from archcalc.explain import explain

    text = "input: [10, 32]\nlayers:\n  - {name: mha, attention: {heads: 4, layout: packed}}\n"
    (entry,) = explain(archcalc.parse_spec(text))
    params = next(x for x in entry.steps if x.figure == "params")
    assert params.result == 4 * 32 * 32 + 4 * 32
    assert "in_proj_weight [3D, D]" in params.note
