"""The sequence kinds' saved tensors against PyTorch (issue 15 point 1): for every variant below and
every bundled spec of specs/transformers and specs/sequence at small sizes, the bytes each layer
keeps for backward, measured with saved_tensors_hooks by archcalc.torch.saved.check_saved (one
training-mode forward, CPU, float32; storages once, parameters and buffers apart), equal the
analysis' (each kind's saved_tensors); oneDNN's page rounding of its LSTM workspace is computed
here on its own as well."""
import warnings

import pytest

torch = pytest.importorskip("torch")

import archcalc  # noqa: E402
from archcalc.torch.saved import check_saved  # noqa: E402
from bundled import SPECS  # noqa: E402


def check(text, batch=2):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # LSTM with projections: "not supported with oneDNN"
        return check_saved(archcalc.parse_spec(text), batch=batch)


def assert_matches(result):
    wrong = [(r.name, r.kind, r.analytic, r.measured, r.tensors) for r in result.mismatches()]
    assert not wrong and result.outside == 0, wrong


def spec(shape, layer, pre=True):
    lines = [f"input: {shape}", "layers:"]
    if pre:
        lines.append(f"  - {{name: pre, linear: {shape[-1]}}}")
    return "\n".join(lines + [f"  - {{name: a, {layer}}}"]) + "\n"


ATTENTION = [
    "heads: 2", "heads: 2, causal: true", "heads: 4, kv_heads: 2, causal: true", "heads: 4, kv_heads: 1",
    "heads: 2, causal: true, rotary: true", "heads: 2, causal: true, window: 3", "heads: 2, head_dim: 4, scale: 1",
    "heads: 2, qk_norm: rmsnorm", "heads: 2, qk_norm: layernorm", "heads: 2, qk_norm: layernorm, qk_norm_over: all",
    "heads: 4, kv_heads: 2, qk_norm: rmsnorm, qk_norm_over: all", "heads: 4, kv_heads: 2, qk_norm: rmsnorm, rotary: true",
    "heads: 2, layout: packed", "heads: 2, layout: fused, causal: true", "heads: 1", "heads: 1, rotary: true",
    # the math kernel: dropout
    "heads: 2, dropout: 0.1", "heads: 2, causal: true, window: 3, dropout: 0.1",
    "heads: 4, kv_heads: 2, causal: true, rotary: true, dropout: 0.1", "heads: 2, layout: fused, dropout: 0.1",
    "heads: 1, dropout: 0.1", "heads: 1, layout: packed, causal: true, dropout: 0.1",
    "heads: 2, qk_norm: layernorm, rotary: true, dropout: 0.2",
    "heads: 8, kv_heads: 2, head_dim: 3, qk_norm: rmsnorm, qk_norm_over: all, dropout: 0.1",
]


@pytest.mark.parametrize("t", [6, 1])
@pytest.mark.parametrize("args", ATTENTION)
def test_attention(args, t):
    assert_matches(check(spec([t, 16], f"attention: {{{args}}}")))


@pytest.mark.parametrize("layer", ["attention: {heads: 2}", "attention: {heads: 4, kv_heads: 2, causal: true}",
                                   "attention: {heads: 2, causal: true, window: 3}"])
def test_frozen_attention_keeps_no_input(layer):
    # trainable: false: the projections keep x only for their weights' gradients (flash kernel)
    result = check(f"input: [6, 16]\nlayers:\n  - {{name: pre, linear: 16}}\n  - {{name: a, {layer}, trainable: false}}\n"
                   "  - {name: post, linear: 4}\n")
    assert_matches(result)
    trained = check(f"input: [6, 16]\nlayers:\n  - {{name: pre, linear: 16}}\n  - {{name: a, {layer}}}\n"
                    "  - {name: post, linear: 4}\n")
    assert trained.rows[1].measured - result.rows[1].measured == 2 * 4 * 6 * 16


FROZEN = [
    ("[6, 16]", "attention: {heads: 2, dropout: 0.1}"), ("[6, 16]", "attention: {heads: 2, qk_norm: rmsnorm, rotary: true}"),
    ("[6, 16]", "attention: {heads: 4, kv_heads: 2, qk_norm: layernorm, qk_norm_over: all, dropout: 0.1}"),
    ("[6, 16]", "attention: {heads: 1, layout: fused, dropout: 0.1}"), ("[6, 16]", "rmsnorm: {}"),
    ("[6, 8]", "moe: {experts: 4, top_k: 2, hidden: 5, shared_experts: 1, shared_gate: true}"),
    ("[6, 8]", "moe: {experts: 4, top_k: 1, hidden: 5, expert: mlp, renormalize: false, bias: true, router_bias: true}"),
    ("[6, 8]", "moe: {experts: 3, top_k: 3, hidden: 4, activation: relu, shared_experts: 2, shared_hidden: 3}"),
    ("[6, 8]", "moe: {experts: 5, top_k: 2, hidden: 4, expert: mlp, activation: gelu, shared_experts: 1}"),
    ("[5, 8]", "mamba: {d_state: 4, d_conv: 3}"), ("[5, 8]", "mamba: {d_state: 4, bias: true}"),
    ("[4, 4, 8]", "window_attention: {heads: 1, window: 2, attention_dropout: 0.1, dropout: 0.1}"),
    ("[4, 4, 8]", "window_attention: {heads: 2, window: 2, shift: 1}"),
    ("[5, 4]", "rnn: {hidden: 3, layers: 3, bidirectional: true, dropout: 0.2}"), ("[1, 4]", "gru: {hidden: 3}"),
    ("[5, 4]", "gru: {hidden: 3, layers: 2, bidirectional: true}"),
    ("[5, 4]", "lstm: {hidden: 5, proj_size: 2, layers: 2, dropout: 0.5}"),
]


def test_a_frozen_onednn_lstm_keeps_as_much():
    # oneDNN's LSTM keeps its input copy, outputs and workspace whether or not its weights learn
    text = "input: [5, 4]\nlayers:\n  - {name: pre, linear: 4}\n  - {name: a, lstm: {hidden: 3, layers: 2}%s}\n"
    frozen, trained = check(text % ", trainable: false"), check(text % "")
    assert_matches(frozen)
    assert frozen.rows[1].measured == trained.rows[1].measured


@pytest.mark.parametrize("shape, layer", FROZEN)
def test_frozen_layers_keep_nothing_for_their_weights(shape, layer):
    # trainable: false: a weight's gradient is not computed, so what only it reads is not kept
    # (Saved.weights_only: the projections' inputs, the output copies, RMSNorm's x * rsqrt, exp(A_log))
    width = shape.strip("[]").split(", ")[-1]
    result = check(f"input: {shape}\nlayers:\n  - {{name: pre, linear: {width}}}\n  - {{name: a, {layer}, trainable: false}}\n"
                   "  - {name: post, linear: 4}\n")
    assert_matches(result)
    trained = check(f"input: {shape}\nlayers:\n  - {{name: pre, linear: {width}}}\n  - {{name: a, {layer}}}\n"
                    "  - {name: post, linear: 4}\n")
    assert trained.rows[1].measured > result.rows[1].measured


@pytest.mark.parametrize("args", ["heads: 2, scale: 1", "heads: 2, scale: 1, dropout: 0.1", "heads: 2, causal: true",
                                  "heads: 2, causal: true, dropout: 0.1", "heads: 2, causal: true, window: 2",
                                  "heads: 1, causal: true"])
def test_attention_with_t5s_score_bias(args):
    heads = args.split(",")[0].split(":")[1].strip()
    assert_matches(check("input: [6, 16]\nlayers:\n  - {name: pre, linear: 16}\n"
                         f"  - {{name: rpb, relative_position_bias: {{heads: {heads}}}}}\n"
                         f"  - {{name: a, attention: {{{args}}}, from: [pre, rpb]}}\n"))


@pytest.mark.parametrize("tq, tk", [(6, 5), (1, 5), (6, 1)])
@pytest.mark.parametrize("args", ["heads: 2", "heads: 2, dropout: 0.1", "heads: 4, kv_heads: 2",
                                  "heads: 4, kv_heads: 2, dropout: 0.1", "heads: 1, dropout: 0.3",
                                  "heads: 2, head_dim: 3, scale: 1, bias: false"])
def test_cross_attention(args, tq, tk):
    assert_matches(check(f"inputs: {{x: [{tq}, 16], mem: [{tk}, 12]}}\nlayers:\n  - {{name: pre, linear: 16, from: x}}\n"
                         "  - {name: m, linear: 12, from: mem}\n"
                         f"  - {{name: a, cross_attention: {{{args}}}, from: [pre, m]}}\n"))


@pytest.mark.parametrize("shape", [[4, 4, 8], [3, 5, 8], [7, 7, 8], [2, 9, 8]])
@pytest.mark.parametrize("args", ["heads: 2, window: 2", "heads: 2, window: 2, shift: 1", "heads: 1, window: 2",
                                  "heads: 1, window: 2, attention_dropout: 0.1", "heads: 2, window: [2, 3], shift: [1, 2]",
                                  "heads: 4, window: 7, shift: 3", "heads: 2, window: [1, 2]",
                                  "heads: 2, window: 2, attention_dropout: 0.1, dropout: 0.1"])
def test_window_attention(args, shape):
    assert_matches(check(spec(shape, f"window_attention: {{{args}}}")))


@pytest.mark.parametrize("shape, layer", [
    ([6, 16], "rmsnorm: {}"), ([6, 16], "rmsnorm: {affine: false, eps: 1.0e-5}"), ([3, 6, 16], "rmsnorm: {dims: 2}"),
    ([3, 6, 16], "rotary: {}"), ([3, 6, 16], "rotary: {dims: 8, interleaved: true}"),
    ([6, 16], "glu: {}"), ([6, 16], "glu: 0"), ([6, 6], "causal_mask: {}"), ([2, 6, 6], "causal_mask: {window: 2}"),
    ([6, 8], "moe: {experts: 4, top_k: 2, hidden: 5}"), ([2, 3, 8], "moe: {experts: 4, top_k: 2, hidden: 5}"),
    ([6, 8], "moe: {experts: 4, top_k: 1, hidden: 5, expert: mlp, renormalize: false, bias: true, router_bias: true}"),
    ([6, 8], "moe: {experts: 4, top_k: 2, hidden: 5, shared_experts: 1, shared_gate: true, scale: 2.0}"),
    ([6, 8], "moe: {experts: 3, top_k: 3, hidden: 4, activation: relu, shared_experts: 2, shared_hidden: 3}"),
    ([6, 8], "moe: {experts: 5, top_k: 2, hidden: 4, expert: mlp, activation: gelu, shared_experts: 1}"),
    ([6, 8], "moe: {experts: 5, top_k: 2, hidden: 4, expert: mlp, shared_experts: 1, shared_gate: true}"),
    ([5, 8], "mamba: {d_state: 4, d_conv: 3}"), ([1, 8], "mamba: {d_state: 4}"),
    ([9, 6], "mamba: {d_state: 2, d_conv: 1, expand: 3, dt_rank: 3}"),
    ([7, 20], "mamba: {d_state: 5, d_conv: 2, bias: true, conv_bias: false}"),
])
@pytest.mark.parametrize("batch", [2, 3])
def test_other_sequence_kinds(shape, layer, batch):
    assert_matches(check(spec(shape, layer), batch))


@pytest.mark.parametrize("layers", [
    "{name: a, embedding: {num: 10, dim: 4}}",
    "{name: a, embedding: {num: 10, dim: 4, padding_idx: 0}}\n  - {name: b, embedding: {num: 10, dim: 4}, from: input}\n"
    "  - {add: {}, from: [a, b]}",
])
def test_embedding(layers):
    assert_matches(check(f"input: {{tokens: [3, 6]}}\nlayers:\n  - {layers}\n"))


def test_matmul_attention_from_primitives():
    assert_matches(check(
        "input: [6, 16]\nlayers:\n  - {name: pre, linear: 16}\n  - {name: q, linear: 16, from: pre}\n"
        "  - {name: k, linear: 16, from: pre}\n  - {name: s, matmul: {transpose: true, scale: 0.25}, from: [q, k]}\n"
        "  - {name: m, causal_mask: {}}\n  - {name: sm, softmax: {}}\n  - {name: v, linear: 16, from: pre}\n"
        "  - {name: o, matmul: {}, from: [sm, v]}\n"))
    # an operand broadcast along a leading dim: kept expanded
    assert_matches(check("input: [2, 16, 16]\nlayers:\n  - {name: pre, linear: 16}\n  - {name: p2, linear: 16, from: input}\n"
                         "  - {name: p3, reshape: [1, 32, 16], from: p2}\n  - {name: a, matmul: {}, from: [p3, pre]}\n"))


RECURRENT = ["rnn: {hidden: 3}", "rnn: {hidden: 3, nonlinearity: relu, bias: false}", "rnn: {hidden: 3, layers: 2}",
             "rnn: {hidden: 3, layers: 3, bidirectional: true, dropout: 0.2}", "gru: {hidden: 3}",
             "gru: {hidden: 3, layers: 2, bidirectional: true}", "gru: {hidden: 3, layers: 2, dropout: 0.3}",
             "lstm: {hidden: 3, proj_size: 2}", "lstm: {hidden: 3, proj_size: 2, layers: 2, bidirectional: true}",
             "lstm: {hidden: 5, proj_size: 2, layers: 2, dropout: 0.5}"]


@pytest.mark.parametrize("t", [5, 1, 40])
@pytest.mark.parametrize("layer", RECURRENT)
def test_recurrent_cells(layer, t):
    assert_matches(check(spec([t, 4], layer)))


def _ld(n):
    """oneDNN's get_good_ld (f32): rounded up to 16 floats, 16 more on a multiple of 256."""
    ld = -(-n // 16) * 16
    return ld + 16 if ld % 256 == 0 else ld


def page_rounding(t, f, hidden, dirs, layers, batch):
    """What oneDNN's set_offsets adds to the LSTM workspace: each of its seven regions (gates, h,
    three [T+1] state regions, two cell regions; rnn_utils.cpp register_space) starts on a 4096-byte
    page, for one mkldnn_rnn_layer call per layer and direction."""
    extra = 0
    for layer in range(layers):
        slc = f if layer == 0 else dirs * hidden
        regions = [t * _ld(4 * hidden), t * _ld(hidden)] + [2 * (t + 1) * _ld(max(slc, hidden))] * 3 \
            + [2 * (t + 1) * hidden] * 2
        for floats in regions:
            size = 4 * floats * batch
            extra += dirs * (-(-size // 4096) * 4096 - size)
    return extra


@pytest.mark.parametrize("t", [5, 1, 40])
@pytest.mark.parametrize("args, hidden, layers, dirs", [
    ("hidden: 3", 3, 1, 1), ("hidden: 3, layers: 2", 3, 2, 1), ("hidden: 3, layers: 2, bidirectional: true", 3, 2, 2),
    ("hidden: 3, layers: 3, bidirectional: true, dropout: 0.5", 3, 3, 2), ("hidden: 100, bias: false", 100, 1, 1),
    ("hidden: 300, layers: 2", 300, 2, 1)])
@pytest.mark.parametrize("batch", [2, 3])
def test_lstm_runs_as_onednn_with_its_page_aligned_workspace(args, hidden, layers, dirs, t, batch):
    from archcalc.layers import KINDS
    from archcalc.layers.base import saved_elements

    result = check(spec([t, 4], f"lstm: {{{args}}}"), batch)
    assert_matches(result)
    # the pages are real: per example the workspace is that much smaller
    row = next(r for r in result.rows if r.name == "a")
    node = archcalc.parse_spec(spec([t, 4], f"lstm: {{{args}}}")).nodes[1]
    unrounded = sum(saved_elements(s, [(t, 4)], (t, dirs * hidden)) * (s.itemsize or 4) * (1 if s.per_batch else batch)
                    for s in KINDS["lstm"].saved_tensors(node.args, [(t, 4)], (t, dirs * hidden)))
    assert row.measured - unrounded == page_rounding(t, 4, hidden, dirs, layers, batch) > 0


# The bundled specs at small sizes (tests/torch/test_saved_measured.py measures them at d = 64).
SMALL = {
    "transformers/bert_base": ({"vocab": 50, "positions": 16, "d": 16, "heads": 2, "mlp": 24, "depth": 2}, (2, 8)),
    "transformers/gpt2_small": ({"vocab": 50, "context": 16, "d": 16, "heads": 2, "depth": 2}, (8,)),
    "transformers/gpt3_175b": ({"vocab": 50, "context": 16, "d": 16, "heads": 2, "depth": 2}, (8,)),
    "transformers/llama2_70b": ({"vocab": 50, "d": 16, "heads": 4, "kv_heads": 2, "ffn": 24, "depth": 2}, (8,)),
    "transformers/llama_7b": ({"vocab": 50, "d": 16, "heads": 2, "kv_heads": 2, "ffn": 24, "depth": 2}, (8,)),
    "transformers/mamba_130m": ({"vocab": 50, "d": 16, "depth": 2}, (8,)),
    "transformers/mixtral_8x7b": ({"vocab": 50, "d": 16, "heads": 4, "kv_heads": 2, "ffn": 24, "experts": 4, "top_k": 2,
                                   "depth": 2}, (8,)),
    "transformers/qwen2_0_5b": ({"vocab": 50, "d": 16, "heads": 4, "kv_heads": 2, "ffn": 24, "depth": 2}, (8,)),
    "transformers/t5_small": ({"vocab": 50, "d": 16, "heads": 2, "d_kv": 8, "d_ff": 24, "depth": 2}, None),
    "transformers/t5_small_encoder": ({"vocab": 50, "d": 16, "heads": 2, "d_kv": 8, "d_ff": 24, "depth": 2}, (8,)),
    "transformers/vit_b16": ({"patch": 8, "d": 16, "heads": 2, "mlp": 24, "depth": 2, "classes": 10}, (3, 32, 32)),
    "transformers/whisper_tiny": ({"d": 16, "heads": 2, "ffn": 24, "depth": 2, "vocab": 60, "sources": 10, "targets": 8,
                                   "pad": 50}, {"input_features": (8, 20), "decoder_input_ids": (8,)}),
    "sequence/lstm_lm": ({"vocab": 50, "d": 16}, (8,)),
    "sequence/tcn": ({"c": 4}, None),
}


def test_every_sequence_spec_is_here():
    assert set(SMALL) == {f"{p.parent.name}/{p.stem}" for folder in ("transformers", "sequence")
                          for p in (SPECS / folder).glob("*.yaml")}


@pytest.mark.parametrize("name", sorted(SMALL))
def test_bundled_sequence_specs(name):
    bindings, shape = SMALL[name]
    graph = archcalc.load_graph(SPECS / f"{name}.yaml", bindings=bindings, input_shape=shape)
    assert_matches(check_saved(graph))


def test_zaremba_lstm_at_its_size():
    # Zaremba et al.'s medium LSTM (35 steps, 650 wide, two layers): 17,664 bytes of page rounding
    # per layer at a batch of 2, 0.6 % of the workspace
    graph = archcalc.load_graph(SPECS / "sequence" / "lstm_lm.yaml")
    result = check_saved(graph)
    assert_matches(result)
    assert page_rounding(35, 650, 650, 1, 2, 2) == 2 * 17_664


def gpt_block(s, h, a, dropout):
    """A GPT layer as Megatron writes it (Korthikanti et al. 2022, figure 2): LayerNorm, attention
    (dropout on its weights), dropout, residual; LayerNorm, h -> 4h, GeLU, 4h -> h, dropout, residual."""
    drop = f", dropout: {dropout}" if dropout else ""
    lines = [f"input: {{tokens: [{s}]}}", "layers:", f"  - {{name: wte, embedding: {{num: 100, dim: {h}}}}}",
             "  - {name: ln_1, layernorm: {}}", f"  - {{name: attn, attention: {{heads: {a}, causal: true{drop}}}}}"]
    if dropout:
        lines.append(f"  - {{name: drop_1, dropout: {dropout}}}")
    lines += [f"  - {{name: res_1, add: {{}}, from: [wte, {'drop_1' if dropout else 'attn'}]}}",
              "  - {name: ln_2, layernorm: {}}", f"  - {{name: fc1, linear: {4 * h}}}", "  - {name: gelu, gelu: {}}",
              f"  - {{name: fc2, linear: {h}}}"]
    if dropout:
        lines.append(f"  - {{name: drop_2, dropout: {dropout}}}")
    lines.append(f"  - {{name: res_2, add: {{}}, from: [res_1, {'drop_2' if dropout else 'fc2'}]}}")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("s, h, a, b", [(16, 32, 4, 2), (64, 256, 8, 3)])
def test_gpt_layer_against_korthikanti(s, h, a, b):
    """docs/memory.md: per layer, Korthikanti et al.'s 34sbh + 5as^2b bytes (fp16 values, 1-byte
    dropout masks) is, as eager PyTorch keeps it on CPU in float32, 4 B a value and float dropout
    masks: 2*(36sbh + 6as^2b) + 16sb (LayerNorm's mean and rstd, float32), and with the flash
    kernel (no attention dropout, GPT-2's layer without dropout) 64sbh + 4asb + 16sb."""
    result = check(gpt_block(s, h, a, 0.1), b)
    assert_matches(result)
    layer = sum(r.measured for r in result.rows if r.name != "wte")
    assert layer == 2 * (36 * s * b * h + 6 * a * s * s * b) + 16 * s * b
    result = check(gpt_block(s, h, a, 0), b)
    assert_matches(result)
    assert sum(r.measured for r in result.rows if r.name != "wte") == 64 * s * b * h + 4 * a * s * b + 16 * s * b
