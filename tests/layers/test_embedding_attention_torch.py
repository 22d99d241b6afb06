"""embedding, tied weights and attention against real PyTorch: figures (torch_check), and the
attention module's semantics against nn.MultiheadAttention and a by-hand reference."""
import math

import pytest

torch = pytest.importorskip("torch")

import archcalc  # noqa: E402
from archcalc.torch import build  # noqa: E402
from layer_helpers import torch_check  # noqa: E402


@pytest.mark.parametrize("ids, args", [
    ([10], "{num: 100, dim: 16}"), ([3, 5], "{num: 7, dim: 3}"), ([1], "{num: 1, dim: 1}"),
    ([8], "{num: 30, dim: 4, padding_idx: 0}"),
])
def test_embedding_matches_pytorch(ids, args):
    torch_check({"tokens": ids}, f"embedding: {args}")


@pytest.mark.parametrize("shape, args", [
    ([16, 32], "4"), ([16, 32], "{heads: 4, causal: true}"), ([9, 48], "{heads: 6, kv_heads: 2}"),
    ([9, 48], "{heads: 6, kv_heads: 1, bias: false}"), ([5, 20], "{heads: 2, head_dim: 16}"),
    ([12, 64], "{heads: 4, kv_heads: 2, rotary: true, causal: true, bias: false}"), ([1, 8], "1"),
])
def test_attention_matches_pytorch(shape, args):
    torch_check(shape, f"attention: {args}")


def test_a_small_decoder_with_tied_weights_matches_pytorch():
    r = torch_check({"tokens": [12]}, "{name: wte, embedding: {num: 40, dim: 16, tie: head}}",
                    "{name: pos, from: input, embedding: {num: 40, dim: 16}}", "{add: {}, from: [wte, pos]}",
                    "layernorm", "attention: {heads: 4, causal: true}", "layernorm",
                    "{name: head, linear: {out: 40, bias: false}}")
    model = build(archcalc.parse_spec(
        "input: {tokens: [12]}\nlayers:\n  - {name: wte, embedding: {num: 40, dim: 16, tie: head}}\n"
        "  - {name: head, linear: {out: 40, bias: false}}\n"))
    assert model.head.weight is model.wte.weight
    assert r.totals.trainable_params == sum(p.numel() for p in model.parameters()) + 640 + 32 + 1088 + 32


def _attention(args, d):
    graph = archcalc.parse_spec(f"input: [7, {d}]\nlayers:\n  - attention: {args}\n")
    return build(graph).eval().attention1


@pytest.mark.parametrize("causal", [False, True])
def test_attention_equals_nn_multiheadattention(causal):
    """kv_heads == heads: the same function as nn.MultiheadAttention(D, heads, batch_first=True)
    called as attn(x, x, x), once the weights are copied (in_proj holds q, k, v stacked)."""
    torch.manual_seed(0)
    ours = _attention(f"{{heads: 4, causal: {str(causal).lower()}}}", 32)
    mha = torch.nn.MultiheadAttention(32, 4, batch_first=True).eval()
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in mha.parameters())
    with torch.no_grad():
        mha.in_proj_weight.copy_(torch.cat([ours.q.weight, ours.k.weight, ours.v.weight]))
        mha.in_proj_bias.copy_(torch.cat([ours.q.bias, ours.k.bias, ours.v.bias]))
        mha.out_proj.weight.copy_(ours.out.weight)
        mha.out_proj.bias.copy_(ours.out.bias)
        x = torch.randn(3, 7, 32)
        mask = torch.nn.Transformer.generate_square_subsequent_mask(7) if causal else None
        want = mha(x, x, x, attn_mask=mask, need_weights=False)[0]
        assert torch.allclose(ours(x), want, atol=1e-5)


def _reference(module, x, rotate=None):
    """Grouped-query attention by hand: loops over heads, explicit softmax."""
    n, t, _ = x.shape
    h, kv, hd = module.heads, module.kv_heads, module.head_dim
    q = module.q(x).view(n, t, h, hd)
    k = module.k(x).view(n, t, kv, hd)
    v = module.v(x).view(n, t, kv, hd)
    heads = []
    for i in range(h):
        j = i // (h // kv)  # the key/value head this query head reads
        qi, ki = q[:, :, i], k[:, :, j]
        if rotate is not None:
            qi, ki = rotate(qi), rotate(ki)
        scores = qi @ ki.transpose(1, 2) / math.sqrt(hd)
        if module.causal:
            scores = scores.masked_fill(torch.ones(t, t).triu(1).bool(), float("-inf"))
        heads.append(scores.softmax(-1) @ v[:, :, j])
    return module.out(torch.cat(heads, dim=-1))


def _rope(x, base=10000.0):
    """Rotary embedding of [N, T, hd], written from the RoFormer/GPT-NeoX definition: feature i
    (i < hd/2) pairs with i + hd/2 and both turn by the angle t * base^(-2i/hd)."""
    n, t, hd = x.shape
    out = x.clone()
    for pos in range(t):
        for i in range(hd // 2):
            angle = pos * base ** (-2 * i / hd)
            a, b = x[:, pos, i], x[:, pos, i + hd // 2]
            out[:, pos, i] = a * math.cos(angle) - b * math.sin(angle)
            out[:, pos, i + hd // 2] = b * math.cos(angle) + a * math.sin(angle)
    return out


@pytest.mark.parametrize("args", ["{heads: 6, kv_heads: 2}", "{heads: 6, kv_heads: 3, causal: true}",
                                  "{heads: 6, kv_heads: 1, bias: false}",
                                  "{heads: 6, kv_heads: 2, rotary: true, causal: true}"])
def test_grouped_query_attention_equals_a_by_hand_reference(args):
    torch.manual_seed(1)
    module = _attention(args, 48)
    x = torch.randn(2, 7, 48)
    with torch.no_grad():
        want = _reference(module, x, _rope if module.rotary else None)
        assert torch.allclose(module(x), want, atol=1e-5)


def test_verify_counts_attention_on_cpu_and_meta():
    """FlopCounterMode alone misses CPU attention (SDPA's CPU kernel is not in its registry):
    verify registers the formula, so the figures match on CPU and on the meta device."""
    from torch.utils.flop_counter import FlopCounterMode

    from archcalc.torch.verify import verify

    graph = archcalc.parse_spec("input: [10, 32]\nlayers:\n  - attention: 4\n")
    plain = FlopCounterMode(display=False)
    with torch.no_grad(), plain:
        build(graph)(torch.randn(1, 10, 32))
    analytic = archcalc.analyze(graph).totals.macs
    assert plain.get_total_flops() // 2 < analytic  # the gap verify closes
    for device in ("cpu", "meta"):
        assert verify(graph, device=device).ok
