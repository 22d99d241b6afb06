"""attention's real-model variants against PyTorch and Hugging Face's own modules (built from a
small config with random weights, never downloaded): figures (torch_check), outputs equal once the
weights are copied (Qwen3's and OLMo-2's q/k norms, Qwen2's and Whisper's biases, Mistral's
sliding window), parameter names and shapes (Gemma's head_dim), and verify clean."""
import math

import pytest

torch = pytest.importorskip("torch")

import archcalc  # noqa: E402
from archcalc.torch import build  # noqa: E402
from layer_helpers import torch_check  # noqa: E402

tf = pytest.importorskip("transformers")


@pytest.mark.parametrize("shape, args", [
    ([10, 32], "{heads: 4, o_bias: false}"),
    ([10, 32], "{heads: 4, k_bias: false}"),
    ([10, 32], "{heads: 4, bias: false, v_bias: true}"),
    ([9, 48], "{heads: 6, kv_heads: 2, head_dim: 10, bias: false}"),
    ([10, 32], "{heads: 4, kv_heads: 2, qk_norm: rmsnorm, rotary: true, causal: true}"),
    ([10, 32], "{heads: 4, kv_heads: 2, qk_norm: layernorm, qk_norm_over: all}"),
    ([10, 32], "{heads: 4, kv_heads: 1, causal: true, window: 3}"),
    ([4, 32], "{heads: 4, causal: true, window: 9, qk_norm: rmsnorm, qk_norm_over: all, o_bias: false}"),
])
def test_variants_match_pytorch_figures(shape, args):
    torch_check(shape, f"attention: {args}")


def _ours(args, t, d):
    graph = archcalc.parse_spec(f"input: [{t}, {d}]\nlayers:\n  - {{name: attn, attention: {args}}}\n")
    return graph, build(graph).eval().attn


def _copy(ours, theirs, names):
    """Copy our parameters into Hugging Face's module, name by name; every parameter of both is used."""
    mine = dict(ours.named_parameters())
    their = dict(theirs.named_parameters())
    assert sorted(their) == sorted(names[n] for n in mine)
    with torch.no_grad():
        for n, p in mine.items():
            assert their[names[n]].shape == p.shape, n
            their[names[n]].copy_(p)


HF_NAMES = {f"{a}.{w}": f"{b}.{w}" for a, b in (("q", "q_proj"), ("k", "k_proj"), ("v", "v_proj"), ("out", "o_proj"),
                                                ("q_norm", "q_norm"), ("k_norm", "k_norm")) for w in ("weight", "bias")}


def _causal(t):
    return torch.full((t, t), float("-inf")).triu(1)[None, None]


@pytest.mark.parametrize("family", ["qwen3", "olmo2"])
def test_qk_norm_equals_hugging_face(family):
    """Qwen3 normalises each head's q and k (one weight of head_dim); OLMo-2 the whole projections."""
    from transformers.models.olmo2.modeling_olmo2 import Olmo2Attention, Olmo2RotaryEmbedding
    from transformers.models.qwen3.modeling_qwen3 import Qwen3Attention, Qwen3RotaryEmbedding

    torch.manual_seed(0)
    t, d = 7, 64
    if family == "qwen3":
        config = tf.Qwen3Config(hidden_size=d, num_attention_heads=4, num_key_value_heads=2, head_dim=24,
                                rms_norm_eps=1e-6, attn_implementation="eager")
        hf, rope = Qwen3Attention(config, 0).eval(), Qwen3RotaryEmbedding(config)
        args = "{heads: 4, kv_heads: 2, head_dim: 24, bias: false, causal: true, rotary: true, qk_norm: rmsnorm}"
    else:
        config = tf.Olmo2Config(hidden_size=d, num_attention_heads=4, num_key_value_heads=2, rms_norm_eps=1e-5,
                                attn_implementation="eager")
        hf, rope = Olmo2Attention(config, 0).eval(), Olmo2RotaryEmbedding(config)
        args = ("{heads: 4, kv_heads: 2, bias: false, causal: true, rotary: true, qk_norm: rmsnorm, "
                "qk_norm_over: all, qk_norm_eps: 1.0e-5}")
    graph, ours = _ours(args, t, d)
    with torch.no_grad():  # norms start at ones: make them matter
        ours.q_norm.weight.uniform_(0.5, 1.5)
        ours.k_norm.weight.uniform_(0.5, 1.5)
    _copy(ours, hf, HF_NAMES)
    assert archcalc.analyze(graph).totals.params == sum(p.numel() for p in hf.parameters())
    x = torch.randn(2, t, d)
    with torch.no_grad():
        want = hf(x, rope(x, torch.arange(t)[None]), _causal(t))[0]
        assert torch.allclose(ours(x), want, atol=1e-5)


def test_qwen2_biases_equal_hugging_face():
    from transformers.models.qwen2.modeling_qwen2 import Qwen2Attention, Qwen2RotaryEmbedding

    torch.manual_seed(1)
    config = tf.Qwen2Config(hidden_size=64, num_attention_heads=4, num_key_value_heads=2, attn_implementation="eager")
    hf, rope = Qwen2Attention(config, 0).eval(), Qwen2RotaryEmbedding(config)
    graph, ours = _ours("{heads: 4, kv_heads: 2, o_bias: false, causal: true, rotary: true}", 6, 64)
    _copy(ours, hf, HF_NAMES)  # q/k/v biases and no o_proj.bias: the name lists must agree
    x = torch.randn(2, 6, 64)
    with torch.no_grad():
        assert torch.allclose(ours(x), hf(x, rope(x, torch.arange(6)[None]), _causal(6))[0], atol=1e-5)


def test_whisper_without_a_key_bias_equals_hugging_face():
    from transformers.models.whisper.modeling_whisper import WhisperAttention

    torch.manual_seed(2)
    hf = WhisperAttention(64, 4, config=tf.WhisperConfig(attn_implementation="eager")).eval()
    graph, ours = _ours("{heads: 4, k_bias: false}", 5, 64)
    _copy(ours, hf, dict(HF_NAMES, **{"out.weight": "out_proj.weight", "out.bias": "out_proj.bias"}))
    x = torch.randn(2, 5, 64)
    with torch.no_grad():
        assert torch.allclose(ours(x), hf(x)[0], atol=1e-5)


@pytest.mark.parametrize("hidden, heads, kv, head_dim", [(3072, 16, 16, 256), (2048, 8, 1, 256), (64, 4, 2, 40)])
def test_gemma_head_dim_equals_hugging_face(hidden, heads, kv, head_dim):
    """Gemma's head_dim is apart from hidden / heads: same parameter count, names and shapes."""
    from transformers.models.gemma.modeling_gemma import GemmaAttention

    config = tf.GemmaConfig(hidden_size=hidden, num_attention_heads=heads, num_key_value_heads=kv, head_dim=head_dim)
    with torch.device("meta"):
        hf = GemmaAttention(config, 0)
    graph = archcalc.parse_spec(f"input: [8, {hidden}]\nlayers:\n  - {{name: attn, attention: "
                                f"{{heads: {heads}, kv_heads: {kv}, head_dim: {head_dim}, bias: false}}}}\n")
    ours = build(graph, device="meta").attn
    assert archcalc.analyze(graph).totals.params == sum(p.numel() for p in hf.parameters())
    shapes = {HF_NAMES[n]: tuple(p.shape) for n, p in ours.named_parameters()}
    assert shapes == {n: tuple(p.shape) for n, p in hf.named_parameters()}


def test_sliding_window_equals_mistral():
    """A one-layer MistralModel with sliding_window 3 (its own mask code): the input and output of
    its attention, captured by a hook, equal ours with the weights copied."""
    torch.manual_seed(3)
    config = tf.MistralConfig(vocab_size=50, hidden_size=64, intermediate_size=64, num_hidden_layers=1,
                              num_attention_heads=4, num_key_value_heads=2, sliding_window=3,
                              attn_implementation="eager")
    model = tf.MistralModel(config).eval()
    graph, ours = _ours("{heads: 4, kv_heads: 2, bias: false, causal: true, rotary: true, window: 3}", 9, 64)
    _copy(ours, model.layers[0].self_attn, HF_NAMES)
    seen = {}
    model.layers[0].self_attn.register_forward_hook(
        lambda m, args, kwargs, out: seen.update(x=kwargs["hidden_states"], y=out[0]), with_kwargs=True)
    with torch.no_grad():
        model(torch.randint(0, 50, (2, 9)))
        assert torch.allclose(ours(seen["x"]), seen["y"], atol=1e-5)
        # the window matters here: without it the outputs differ
        _, full = _ours("{heads: 4, kv_heads: 2, bias: false, causal: true, rotary: true}", 9, 64)
        full.load_state_dict(ours.state_dict())
        assert not torch.allclose(full(seen["x"]), seen["y"], atol=1e-3)


def _reference(module, x, window):
    """Windowed grouped-query attention by hand: loops over heads and query positions."""
    n, t, _ = x.shape
    h, kv, hd = module.heads, module.kv_heads, module.head_dim
    q = module.q(x).view(n, t, h, hd)
    k = module.k(x).view(n, t, kv, hd)
    v = module.v(x).view(n, t, kv, hd)
    out = torch.zeros(n, t, h, hd)
    for i in range(h):
        j = i // (h // kv)
        for p in range(t):
            seen = range(max(0, p - window + 1), p + 1)  # the last `window` keys, itself included
            scores = torch.stack([(q[:, p, i] * k[:, s, j]).sum(-1) for s in seen], -1) / math.sqrt(hd)
            weights = scores.softmax(-1)
            out[:, p, i] = sum(weights[:, c, None] * v[:, s, j] for c, s in enumerate(seen))
    return module.out(out.reshape(n, t, h * hd))


@pytest.mark.parametrize("window", [1, 2, 5, 12])
def test_sliding_window_equals_a_by_hand_reference(window):
    torch.manual_seed(4)
    _, module = _ours(f"{{heads: 4, kv_heads: 2, causal: true, window: {window}}}", 8, 32)
    x = torch.randn(2, 8, 32)
    with torch.no_grad():
        assert torch.allclose(module(x), _reference(module, x, window), atol=1e-5)


def test_rmsnorm_per_head_by_hand():
    torch.manual_seed(5)
    _, module = _ours("{heads: 2, qk_norm: rmsnorm, qk_norm_eps: 0.01}", 3, 8)
    q = torch.randn(1, 2, 3, 4)
    want = q / torch.sqrt((q * q).mean(-1, keepdim=True) + 0.01) * module.q_norm.weight
    assert torch.allclose(module.q_norm(q), want, atol=1e-6)


@pytest.mark.parametrize("args", [
    "{heads: 4, kv_heads: 2, o_bias: false, causal: true, window: 4, qk_norm: rmsnorm, rotary: true}",
    "{heads: 4, head_dim: 16, k_bias: false, qk_norm: layernorm, qk_norm_over: all}",
    "{heads: 4, causal: true, layout: packed}",
    "{heads: 2, bias: false, layout: packed}",
])
def test_verify_is_clean_and_export_rebuilds_the_module(args, tmp_path):
    from archcalc.torch.verify import verify

    graph = archcalc.parse_spec(f"input: [12, 32]\nlayers:\n  - {{name: attn, attention: {args}}}\n")
    for device in ("cpu", "meta"):
        result = verify(graph, device=device)
        assert result.ok, result.mismatches()
    module = build(graph).attn
    cls = type(module)
    namespace = {}
    exec(compile("import math\nimport torch\nfrom torch import nn\nfrom torch.nn import functional as F\n"
                 + cls.export_source + f"\nm = {module.export_call}\n", "<export>", "exec"), namespace)
    rebuilt = namespace["m"]
    assert [(n, p.shape) for n, p in rebuilt.named_parameters()] == [(n, p.shape) for n, p in module.named_parameters()]
    rebuilt.load_state_dict(module.state_dict())
    x = torch.randn(2, 12, 32)
    with torch.no_grad():
        assert torch.allclose(rebuilt(x), module(x))


# --- causal_mask: attention written from matmul primitives --------------------------------------

def _by_primitives(t, heads, hd, window):
    """Multi-head attention from linear, reshape, permute, matmul, causal_mask and softmax."""
    mask = f"causal_mask: {{window: {window}}}" if window else "causal_mask: {}"
    d = heads * hd
    return f"""input: [{t}, {d}]
layers:
  - {{name: q, linear: {d}}}
  - {{name: qh, reshape: [{t}, {heads}, {hd}]}}
  - {{name: qp, permute: [1, 0, 2]}}
  - {{name: k, from: input, linear: {d}}}
  - {{name: kh, reshape: [{t}, {heads}, {hd}]}}
  - {{name: kp, permute: [1, 0, 2]}}
  - {{name: v, from: input, linear: {d}}}
  - {{name: vh, reshape: [{t}, {heads}, {hd}]}}
  - {{name: vp, permute: [1, 0, 2]}}
  - {{name: scores, matmul: {{transpose: true, scale: {1 / math.sqrt(hd)!r}}}, from: [qp, kp]}}
  - {{name: masked, {mask}}}
  - {{name: weights, softmax: -1}}
  - {{name: ctx, matmul: {{}}, from: [weights, vp]}}
  - {{name: back, permute: [1, 0, 2]}}
  - {{name: joined, reshape: [{t}, {d}]}}
  - {{name: out, linear: {d}}}
"""


@pytest.mark.parametrize("window", [None, 1, 3, 20])
def test_causal_mask_attention_equals_the_attention_kind(window):
    """The same network as `attention: {heads, causal, window}` once the weights are copied; the
    figures agree with PyTorch's layer by layer (torch_check)."""
    torch.manual_seed(6)
    t, heads, hd = 8, 2, 8
    text = _by_primitives(t, heads, hd, window)
    graph = archcalc.parse_spec(text)
    prim = build(graph).eval()
    args = f"{{heads: {heads}, causal: true" + (f", window: {window}}}" if window else "}")
    _, attn = _ours(args, t, heads * hd)
    with torch.no_grad():
        for name in ("q", "k", "v", "out"):
            getattr(attn, name).load_state_dict(getattr(prim, name).state_dict())
        x = torch.randn(2, t, heads * hd)
        assert torch.allclose(prim(x), attn(x), atol=1e-5)
        scores = prim.masked(torch.zeros(1, 2, t, t))  # the mask itself: -inf exactly where hidden
        for i in range(t):
            for j in range(t):
                hidden = j > i or (window is not None and i - j >= window)
                assert bool(torch.isinf(scores[0, 1, i, j])) == hidden
    report = archcalc.analyze(graph)
    assert report.totals.params == archcalc.analyze_text(f"input: [{t}, {heads * hd}]\nlayers:\n  - attention: {args}\n").totals.params
    from archcalc.torch.verify import verify

    assert verify(graph).ok


@pytest.mark.parametrize("shape, entry", [([5, 5], "causal_mask"), ([3, 4, 4], "causal_mask: {window: 2}"),
                                          ([2, 3, 6, 6], "{causal_mask: {window: 6}}")])
def test_causal_mask_figures_match_pytorch(shape, entry):
    torch_check(shape, entry)


def test_causal_mask_export_expression_equals_the_module():
    graph = archcalc.parse_spec("input: [3, 6, 6]\nlayers:\n  - {name: m, causal_mask: {window: 2}}\n")
    module = build(graph).m
    x = torch.randn(2, 3, 6, 6)
    exported = eval(module.export_expression(["x"]), {"torch": torch}, {"x": x})  # noqa: S307 - archcalc's text
    assert torch.equal(exported, module(x))


# --- layout: packed loads nn.MultiheadAttention's state_dict ------------------------------------

@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("bias", [True, False])
def test_packed_layout_loads_multihead_attention(causal, bias):
    t, d, h = 9, 24, 3
    graph, ours = _ours(f"{{heads: {h}, causal: {str(causal).lower()}, bias: {str(bias).lower()}, layout: packed}}",
                        t, d)
    torch.manual_seed(1)
    mha = torch.nn.MultiheadAttention(d, h, bias=bias, batch_first=True).eval()
    if bias:  # nn.MultiheadAttention starts its biases at zero: make them count
        with torch.no_grad():
            mha.in_proj_bias.normal_()
            mha.out_proj.bias.normal_()
    assert [(n, p.shape) for n, p in ours.named_parameters()] == [(n, p.shape) for n, p in mha.named_parameters()]
    ours.load_state_dict(mha.state_dict())
    x = torch.randn(2, t, d)
    mask = torch.nn.Transformer.generate_square_subsequent_mask(t) if causal else None
    with torch.no_grad():
        expected, _ = mha(x, x, x, attn_mask=mask, is_causal=causal, need_weights=False)
        got = ours(x)
    assert torch.allclose(got, expected, atol=1e-5)
    assert sum(p.numel() for p in mha.parameters()) == archcalc.analyze(graph).totals.trainable_params


def test_packed_layout_figures_match_pytorch():
    torch_check([10, 32], "attention: {heads: 4, causal: true, layout: packed}")


# --- layout: fused loads timm's Attention -----------------------------------------------------------

class TimmAttention(torch.nn.Module):
    """timm.layers.Attention's computation and names (ViT, DeiT), written out: qkv [3*H*d, D] viewed
    as [N, T, 3, H, d], scaled dot-product attention, proj."""

    def __init__(self, dim, heads, head_dim, qkv_bias, proj_bias):
        super().__init__()
        self.heads, self.head_dim = heads, head_dim
        self.qkv = torch.nn.Linear(dim, 3 * heads * head_dim, bias=qkv_bias)
        self.proj = torch.nn.Linear(heads * head_dim, dim, bias=proj_bias)

    def forward(self, x):
        n, t, _ = x.shape
        q, k, v = self.qkv(x).reshape(n, t, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        attn = (q * self.head_dim ** -0.5) @ k.transpose(-2, -1)
        y = attn.softmax(dim=-1) @ v
        return self.proj(y.transpose(1, 2).reshape(n, t, self.heads * self.head_dim))


@pytest.mark.parametrize("args, head_dim, qkv_bias, proj_bias", [
    ("{heads: 3, layout: fused}", 8, True, True),
    ("{heads: 3, head_dim: 5, bias: false, o_bias: true, layout: fused}", 5, False, True),
])
def test_fused_layout_loads_timms_attention(args, head_dim, qkv_bias, proj_bias):
    t, d = 9, 24
    graph, ours = _ours(args, t, d)
    torch.manual_seed(2)
    theirs = TimmAttention(d, 3, head_dim, qkv_bias, proj_bias).eval()
    assert [(n, p.shape) for n, p in ours.named_parameters()] == [(n, p.shape) for n, p in theirs.named_parameters()]
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(2, t, d)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x), rtol=1e-5, atol=1e-5)
    # qkv 24 x 3*3*hd (+ its bias), proj 3*hd x 24 + 24: by hand
    assert archcalc.analyze(graph).totals.trainable_params == (24 * 9 * head_dim + qkv_bias * 9 * head_dim
                                                               + 3 * head_dim * 24 + 24)


def test_fused_layout_figures_match_pytorch():
    torch_check([10, 32], "attention: {heads: 4, causal: true, layout: fused}")
    torch_check([10, 32], "attention: {heads: 4, head_dim: 6, layout: fused}")
