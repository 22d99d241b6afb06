"""PyTorch as the oracle of the parallel plan's per-layer activations: Korthikanti et al. 2022's
transformer layer (and a SwiGLU MLP), written in plain eager PyTorch, keeps for its backward pass
exactly the tensors archcalc.analysis.parallel counts for the same layer written as a spec, measured
with torch.autograd.graph.saved_tensors_hooks (each storage once, parameters apart). Differences,
named: LayerNorm's mean and rstd and RMSNorm's rstd (one or two fp32 numbers per token, which the
paper leaves out too), and eager nn.RMSNorm (a composite of elementwise ops, not a fused kernel)
keeping its normalised input besides its input (h more per token; a fused RMSNorm, as Megatron's,
keeps the input and rstd). Dropout is torch.native_dropout, what F.dropout runs on CUDA: a 1-byte
bool mask (CPU's F.dropout multiplies by a mask of the input's dtype instead)."""
import math

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

from archcalc import api  # noqa: E402
from archcalc.analysis import parallel as par  # noqa: E402

S, H, A, B, P = 64, 96, 4, 3, 0.1


class PaperLayer(nn.Module):
    """Their GPT layer (section 4.1): LayerNorm, fused QKV, softmax(q k^T / sqrt(d)), dropout on the
    probabilities, x V, output projection, dropout, residual; LayerNorm, 4h GeLU MLP, dropout."""

    def __init__(self, h, a):
        super().__init__()
        self.a = a
        self.ln1, self.ln2 = nn.LayerNorm(h), nn.LayerNorm(h)
        self.qkv, self.proj = nn.Linear(h, 3 * h), nn.Linear(h, h)
        self.fc1, self.fc2 = nn.Linear(h, 4 * h), nn.Linear(4 * h, h)

    def forward(self, x):
        b, s, h = x.shape
        q, k, v = (t.reshape(b, s, self.a, h // self.a).transpose(1, 2) for t in self.qkv(self.ln1(x)).split(h, -1))
        probs = _dropout(torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(h // self.a), -1))
        ctx = (probs @ v).transpose(1, 2).reshape(b, s, h)
        x = x + _dropout(self.proj(ctx))
        return x + _dropout(self.fc2(F.gelu(self.fc1(self.ln2(x)))))


def _dropout(x):
    return torch.native_dropout(x, P, True)[0]


class SwiGLU(nn.Module):
    def __init__(self, h, f):
        super().__init__()
        self.norm = nn.RMSNorm(h)
        self.w1, self.w3, self.w2 = nn.Linear(h, f, bias=False), nn.Linear(h, f, bias=False), nn.Linear(f, h, bias=False)

    def forward(self, x):
        y = self.norm(x)
        return x + self.w2(F.silu(self.w1(y)) * self.w3(y))


def _saved(module, x):
    """(float elements, bool elements, norm statistics' elements) kept for backward, each storage once."""
    params = {p.untyped_storage().data_ptr() for p in module.parameters()}
    seen = {}

    def pack(t):
        st = t.untyped_storage()
        if st.data_ptr() not in params:
            seen[st.data_ptr()] = (t.dtype, st.nbytes() // t.element_size(), t.shape)
        return t

    module.train()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        module(x).sum().backward()
    stats = sum(n for dtype, n, shape in seen.values() if dtype != torch.bool and shape[-1] == 1)
    floats = sum(n for dtype, n, shape in seen.values() if dtype != torch.bool and shape[-1] != 1)
    masks = sum(n for dtype, n, shape in seen.values() if dtype == torch.bool)
    return floats, masks, stats


def _spec_layer(tmp_path, text):
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    graph = api.load_graph(path)
    return par.describe(graph, api.analyze(graph, batch=1)).layer


PAPER_SPEC = f"""
name: paper_layer
input: {{tokens: [{S}]}}
blocks:
  layer:
    layers:
      - {{name: ln_1, layernorm: {{}}}}
      - {{name: attn, attention: {{heads: {A}, dropout: {P}}}}}
      - {{name: drop_1, dropout: {P}}}
      - {{name: res_1, add: {{}}, from: [input, drop_1]}}
      - {{name: ln_2, layernorm: {{}}}}
      - {{name: fc, linear: {4 * H}}}
      - {{name: act, gelu: {{}}}}
      - {{name: proj, linear: {H}}}
      - {{name: drop_2, dropout: {P}}}
      - {{name: res_2, add: {{}}, from: [res_1, drop_2]}}
layers:
  - {{name: wte, embedding: {{num: 100, dim: {H}}}}}
  - {{name: h, layer: {{}}, repeat: 2}}
  - {{name: head, linear: {{out: 100, bias: false}}}}
"""


def test_paper_layer_keeps_what_archcalc_counts(tmp_path):
    torch.manual_seed(0)
    floats, masks, stats = _saved(PaperLayer(H, A), torch.randn(B, S, H, requires_grad=True))
    layer = _spec_layer(tmp_path, PAPER_SPEC)
    assert layer == par.gpt_layer(S, H, A)
    assert floats == B * S * (layer.rep + layer.split + layer.score)  # 16h + 2as per token
    assert masks == B * S * (layer.rep_mask + layer.split_mask + layer.score_mask)  # 2h + as
    assert stats == 2 * 2 * B * S  # two LayerNorms' mean and rstd: not in the paper's count
    # and so, in 2-byte elements with 1-byte masks, the paper's sbh(34 + 5as/h)
    assert 2 * floats + masks == B * S * H * (34 + 5 * A * S / H)


def test_swiglu_mlp_keeps_what_archcalc_counts(tmp_path):
    f = 160
    spec = f"""
name: swiglu
input: [{S}, {H}]
blocks:
  layer:
    layers:
      - {{name: attn_norm, rmsnorm: {{}}}}
      - {{name: attn, attention: {{heads: {A}}}}}
      - {{name: res_1, add: {{}}, from: [input, attn]}}
      - {{name: norm, rmsnorm: {{}}}}
      - {{name: w1, linear: {{out: {f}, bias: false}}}}
      - {{name: act, silu: {{}}}}
      - {{name: w3, from: norm, linear: {{out: {f}, bias: false}}}}
      - {{name: gated, multiply: {{}}, from: [act, w3]}}
      - {{name: w2, linear: {{out: {H}, bias: false}}}}
      - {{add: {{}}, from: [res_1, w2]}}
layers:
  - {{name: h, layer: {{}}, repeat: 2}}
"""
    layer = _spec_layer(tmp_path, spec)
    torch.manual_seed(0)
    floats, masks, stats = _saved(SwiGLU(H, f), torch.randn(B, S, H, requires_grad=True))
    # the attention half as in the paper's layer without dropout: norm input, QKV input, Q K V,
    # output projection input, softmax output
    attention = 2 * H + 3 * H + H + A * S
    counted = layer.rep + layer.split + layer.score - attention  # the MLP's: h + h + 4f
    assert counted == 2 * H + 4 * f
    assert floats == B * S * (counted + H)  # + eager RMSNorm's normalised input
    assert masks == 0 and stats == B * S  # RMSNorm's rstd: not counted
