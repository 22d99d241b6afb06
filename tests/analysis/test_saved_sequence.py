"""What the sequence kinds keep for backward (issue 15 point 1), bytes computed by hand from what
eager PyTorch's autograd saves on CPU in training (float32, 4 B a value; docs/memory.md). Each
figure here is also measured with saved_tensors_hooks in tests/torch/test_saved_sequence_measured.py.

Every spec starts with a linear `pre` (its input is the network input, which it saves), so the
layer under test reads a tensor that needs a gradient and saves what it saves in a network."""
import pytest

import archcalc
from archcalc.analysis.memory import saved_bytes

F32, I64 = 4, 8


def saved(text, batch=1):
    """Bytes per layer at `batch`, float32 activations."""
    graph = archcalc.parse_spec(text)
    report = archcalc.analyze(graph)
    shapes = dict(graph.input_shapes)
    shapes.update((row.name, tuple(row.output_shape)) for row in report.layers)
    return saved_bytes(graph, shapes, batch, F32)


def one(shape, layer, batch=1, pre=True):
    """Bytes the layer `a` keeps, after a linear keeping the features' width."""
    lines = [f"input: {shape}", "layers:"]
    if pre:
        lines.append(f"  - {{name: pre, linear: {shape[-1]}}}")
    lines.append(f"  - {{name: a, {layer}}}")
    return saved("\n".join(lines) + "\n", batch)["a"]


# --- attention: T = 6 tokens, D = 16 -------------------------------------------------------------
T, D = 6, 16


def test_attention_flash_kernel():
    # The CPU flash kernel (no dropout): x (the projections' input) T*D; q, k, v 3*T*D; its output
    # T*D (a transposed view serves the output projection); logsumexp [H, T] float32. No T x T.
    assert one([T, D], "attention: {heads: 2, causal: true}") == F32 * (T * D + 3 * T * D + T * D + 2 * T)
    assert one([T, D], "attention: {heads: 2, causal: true}", batch=3) == 3 * F32 * (5 * T * D + 2 * T)


def test_attention_grouped_query_heads_are_repeated():
    # heads 4 of d 4, kv_heads 2: k and v repeat_interleave'd to 4 heads, so still T*H*d each
    assert one([T, D], "attention: {heads: 4, kv_heads: 2, causal: true}") == F32 * (5 * T * D + 4 * T)


def test_attention_math_kernel_with_dropout():
    # Dropout makes it the math kernel: x; q and k^T scaled (copies) 2*T*D; softmax, its float
    # mask and the dropped weights 3 * H*T*T; v T*D; the output copied to [T, H*d] T*D.
    h = 2
    assert one([T, D], "attention: {heads: 2, dropout: 0.1}") == F32 * (T * D + 2 * T * D + 3 * h * T * T + 2 * T * D)


def test_a_frozen_attention_keeps_nothing_for_its_weights():
    # trainable: false: neither x (the projections' input) nor the output copy (the output
    # projection's) is kept; the kernel's tensors are, for x's gradient
    h = 2
    text = (f"input: [{T}, {D}]\nlayers:\n  - {{name: pre, linear: {D}}}\n"
            "  - {name: a, attention: {heads: 2, dropout: 0.1}, trainable: false}\n")
    assert saved(text)["a"] == F32 * (2 * T * D + 3 * h * T * T + T * D)


def test_attention_rotary_and_window():
    # Rotary: cos and sin [T, d/2] for q and again for k, 2*T*d for the whole batch; q is then
    # head-major, so the flash output is copied for the projection (T*D more per example).
    d = D // 2
    per_example = F32 * (5 * T * D + 2 * T + T * D)
    assert one([T, D], "attention: {heads: 2, causal: true, rotary: true}", batch=2) == 2 * per_example + F32 * 2 * T * d
    # A sliding window: the kernel keeps the float mask [T, T] it made from the bool one, once
    assert one([T, D], "attention: {heads: 2, causal: true, window: 3}", batch=2) == 2 * F32 * (5 * T * D + 2 * T) + F32 * T * T


def test_attention_qk_norm():
    # layernorm over the whole projections (OLMo-2): q's and k's input T*D each, mean and rstd T each
    base = F32 * (5 * T * D + 2 * T)
    assert one([T, D], "attention: {heads: 2, qk_norm: layernorm, qk_norm_over: all}") == base + F32 * 2 * (T * D + 2 * T)
    # rmsnorm per head (Qwen3): input, rsqrt (T*H) and the normalised values, for q and k; q is
    # head-major, so the output is copied
    assert one([T, D], "attention: {heads: 2, qk_norm: rmsnorm}") == base + F32 * 2 * (2 * T * D + 2 * T) + F32 * T * D


def test_t5_attention_with_a_score_bias():
    # The bias needs a gradient: the math kernel (no dropout: no mask, no dropped weights); the
    # bias itself is added, kept by nothing. relative_position_bias keeps its [T, T] int64 bucket
    # ids once for the batch.
    text = (f"input: [{T}, {D}]\nlayers:\n  - {{name: pre, linear: {D}}}\n"
            "  - {name: rpb, relative_position_bias: {heads: 2}}\n"
            "  - {name: a, attention: {heads: 2, scale: 1}, from: [pre, rpb]}\n")
    got = saved(text, batch=2)
    assert got["rpb"] == I64 * T * T
    assert got["a"] == 2 * F32 * (T * D + 2 * T * D + 2 * T * T + T * D + T * D)
    # causal (T5's decoder): bias.masked_fill(~mask, -inf) keeps the bool mask, 1 B, once
    causal = saved(text.replace("scale: 1", "causal: true"), batch=2)
    assert causal["a"] == got["a"] + T * T


def test_cross_attention():
    # queries [6, 16], memory [5, 12], 2 heads of 8: the flash kernel keeps q 6*16, k and v 2*5*16,
    # its output 6*16 and logsumexp 2*6; both inputs are kept (by the q and by the k/v projections)
    text = ("inputs: {x: [6, 16], mem: [5, 12]}\nlayers:\n  - {name: pre, linear: 16, from: x}\n"
            "  - {name: m, linear: 12, from: mem}\n  - {name: a, cross_attention: {heads: 2}, from: [pre, m]}\n")
    assert saved(text)["a"] == F32 * (6 * 16 + 5 * 12 + 6 * 16 + 2 * 5 * 16 + 6 * 16 + 2 * 6)
    # dropout: the math kernel, weights [2, 6, 5] three times (softmax, mask, dropped)
    assert saved(text.replace("{heads: 2}", "{heads: 2, dropout: 0.1}"))["a"] == F32 * (
        6 * 16 + 5 * 12 + 6 * 16 + 5 * 16 + 3 * 2 * 6 * 5 + 5 * 16 + 6 * 16)


def test_window_attention():
    # [4, 4, 8] in windows of 2 x 2, 2 heads: the windows, q scaled, k^T, v and the heads' output
    # (copies) 5 * 16*8, the softmax 2 heads * 16 tokens * 4 keys
    assert one([4, 4, 8], "window_attention: {heads: 2, window: 2}") == F32 * (5 * 16 * 8 + 2 * 16 * 4)
    # a 3 x 5 map pads to 4 x 6 = 24 tokens; the shift adds a -100 mask, kept by nothing
    assert one([3, 5, 8], "window_attention: {heads: 2, window: 2, shift: 1}") == F32 * (5 * 24 * 8 + 2 * 24 * 4)
    # one head: k^T and v are views of qkv's whole output [N, 3C], not copies
    assert one([4, 4, 8], "window_attention: {heads: 1, window: 2}") == F32 * (3 * 16 * 8 + 3 * 16 * 8 + 16 * 4)


# --- the other sequence kinds --------------------------------------------------------------------

def test_embedding_keeps_its_ids():
    assert saved("input: {tokens: [6]}\nlayers:\n  - {name: a, embedding: {num: 10, dim: 4}}\n", batch=2)["a"] == 2 * I64 * 6
    # two tables reading the same ids keep them once
    two = saved("input: {tokens: [6]}\nlayers:\n  - {name: a, embedding: {num: 10, dim: 4}}\n"
                "  - {name: b, embedding: {num: 10, dim: 4}, from: input}\n  - {add: {}, from: [a, b]}\n")
    assert (two["a"], two["b"]) == (I64 * 6, 0)


def test_rmsnorm():
    # the input, rsqrt(mean(x^2) + eps) per row, x * rsqrt (the weight's gradient)
    assert one([T, D], "rmsnorm: {}") == F32 * (T * D + T + T * D)
    assert one([T, D], "rmsnorm: {affine: false}") == F32 * (T * D + T)
    assert one([3, T, D], "rmsnorm: {dims: 2}") == F32 * (3 * T * D + 3 + 3 * T * D)


def test_rotary_glu_matmul_causal_mask():
    # rotary on [3, 6, 16]: cos and sin [6, 8], once for the batch
    assert one([3, T, D], "rotary: {}", batch=4) == F32 * 2 * T * 8
    assert one([3, T, D], "rotary: {dims: 8, interleaved: true}", batch=4) == F32 * 2 * T * 4
    assert one([T, D], "glu: {}") == F32 * T * D
    # causal_mask keeps masked_fill's bool mask [T, T], once
    assert one([2, T, T], "causal_mask: {window: 2}", batch=3) == T * T
    # matmul keeps both inputs; one broadcast along a leading dim is kept expanded (a copy) at a
    # batch of 2; at a batch of 1 the expansion folds as a view: p2's output itself (2 x 16 x 16)
    text = ("input: [2, 16, 16]\nlayers:\n  - {name: pre, linear: 16}\n  - {name: p2, linear: 16, from: input}\n"
            "  - {name: p3, reshape: [1, 32, 16], from: p2}\n  - {name: a, matmul: {}, from: [p3, pre]}\n")
    got = saved(text, 2)
    assert got["a"] == 2 * F32 * (2 * 32 * 16 + 2 * 16 * 16)
    assert got["p2"] == 0  # its input, the network input, is pre's already
    assert saved(text)["a"] == F32 * (2 * 16 * 16 + 2 * 16 * 16)


def test_moe():
    # [6, 8], 4 gated experts of 5, top 2, renormalised: x 48, the softmax 24 (float32), the top-k
    # ids 12 (int64), their probabilities 12 and sum 6 (float32); per routed slot (12): 2 int64
    # token ids, the gathered token 8, gate/up/activation/product 4*5, the routing weight 1, the
    # expert's output and the weighted output 2*8
    slot = 2 * I64 + F32 * (8 + 20 + 1 + 16)
    assert one([6, 8], "moe: {experts: 4, top_k: 2, hidden: 5}") == F32 * (48 + 24 + 12 + 6) + I64 * 12 + 12 * slot
    # Switch-style: mlp experts with relu (only relu's result h), top 1, no renormalisation
    slot = 2 * I64 + F32 * (8 + 5 + 1 + 16)
    assert one([6, 8], "moe: {experts: 4, top_k: 1, hidden: 5, expert: mlp, renormalize: false}") == (
        F32 * (48 + 24) + I64 * 6 + 6 * slot)
    # a gated shared expert of 5 with its sigmoid gate: 4*6*5, and 6 + 6*8
    shared = one([6, 8], "moe: {experts: 4, top_k: 2, hidden: 5, shared_experts: 1, shared_gate: true}")
    assert shared == one([6, 8], "moe: {experts: 4, top_k: 2, hidden: 5}") + F32 * (4 * 6 * 5 + 6 + 6 * 8)


def test_mamba():
    # [5, 8], d_state 4, d_conv 3: E = 16, N = 4, K = 3, R = 1. Per example: the input 40,
    # 9*T*E = 720, the conv's output E*(T + K - 1) = 112, x_proj's output T*(R + 2N) = 45,
    # 4*T*E*N = 1280; once: exp(A_log) and A, 2*E*N = 128
    assert one([5, 8], "mamba: {d_state: 4, d_conv: 3}", batch=2) == F32 * (2 * (40 + 720 + 112 + 45 + 1280) + 128)


def test_recurrent_cells():
    # [5, 4] -> hidden 3 (pre keeps the network input; the layer's input is pre's output, which
    # the layer copies time-major, T*F = 20 per direction, at a batch of 2 or more)
    # rnn: h0 3, each step's tanh 5*3
    assert one([5, 4], "rnn: {hidden: 3}", batch=2) == 2 * F32 * (3 + 20 + 15)
    # gru: h0 3, per step the hidden gates 3H, n's hidden part, h - n and n (6H), each h but the last
    assert one([5, 4], "gru: {hidden: 3}", batch=2) == 2 * F32 * (3 + 20 + 6 * 5 * 3 + 4 * 3)
    # two layers, two directions: h0 2*2*3, two copies of the input, 4 cells, layer 2's input [5, 6]
    bi = "gru: {hidden: 3, layers: 2, bidirectional: true}"
    assert one([5, 4], bi, batch=2) == 2 * F32 * (12 + 2 * 20 + 4 * 102 + 30)
    # a batch of 1: time-major is a view, both directions keep pre's output itself, once
    assert one([5, 4], bi) == F32 * (12 + 20 + 4 * 102 + 30)
    # with dropout between the layers, layer 2's input is the dropped output plus its float mask
    assert one([5, 4], "rnn: {hidden: 3, layers: 2, dropout: 0.5}", batch=2) == 2 * F32 * (6 + 20 + 2 * 15 + 2 * 15)
    # lstm with a projection (PyTorch's own cell): h0 2, c0 3, per step the gates 4H, tanh(c), h,
    # each c and projected h but the last
    assert one([5, 4], "lstm: {hidden: 3, proj_size: 2}", batch=2) == 2 * F32 * (2 + 3 + 20 + 6 * 5 * 3 + 4 * (3 + 2))


def _ld(n):  # oneDNN's get_good_ld for f32
    ld = -(-n // 16) * 16
    return ld + 16 if ld % 256 == 0 else ld


def test_lstm_runs_as_onednn():
    # h0, c0 2*3; the input made time-major 20; the output, h_n, c_n (5 + 2)*3; the workspace:
    # gates 5*ld(12), h 5*ld(3), 3 state regions 2*6*ld(4), 2 cell regions 2*6*3 floats, each
    # region on pages of 4096 B: at a batch of 2, 640, 640, 3 x 1536 and 2 x 288 B, a page each
    assert one([5, 4], "lstm: {hidden: 3}", batch=2) == 2 * F32 * (6 + 20 + 21) + 7 * 4096
    # Zaremba's medium LSTM layer: T = 35, F = H = 650 (ld(2600) = 2608, ld(650) = 656), batch 2:
    # gates 730,240 B (179 pages), h 183,680 (45), 3 x 377,856 (93 each), 2 x 374,400 (92 each)
    pages = 179 + 45 + 3 * 93 + 2 * 92
    assert 4 * 2 * (35 * 2608 + 35 * 656 + 3 * 2 * 36 * 656 + 2 * 2 * 36 * 650) == 2_796_288
    assert pages * 4096 == 2_813_952
    assert one([35, 650], "lstm: {hidden: 650}", batch=2) == 2 * F32 * (2 * 650 + 35 * 650 + 37 * 650) + pages * 4096


@pytest.mark.parametrize("kind", ["attention", "cross_attention", "window_attention", "relative_position_bias",
                                  "embedding", "rmsnorm", "rotary", "glu", "moe", "mamba", "matmul", "causal_mask",
                                  "rnn", "gru", "lstm"])
def test_each_kind_writes_its_convention(kind):
    from archcalc.layers import KINDS
    from archcalc.layers.base import Layer

    layer = KINDS[kind]
    assert type(layer).saved_tensors is not Layer.saved_tensors
    assert type(layer).saved_for_backward is Layer.saved_for_backward  # derived, not a count of its own
    assert layer.formulas.get("saved"), kind
