"""attention: multi-head self-attention on a sequence [T, D], with grouped-query / multi-query
attention (`kv_heads`), a causal mask and rotary position embeddings.

Semantics: PyTorch's nn.MultiheadAttention(D, heads, batch_first=True) called as attn(x, x, x)
when kv_heads == heads and head_dim == D / heads (same parameters, same outputs: a test copies
the weights across), generalised as LLaMA and GPT-NeoX do: q = x Wq ([T, heads*hd]),
k, v = x Wk, x Wv ([T, kv_heads*hd], each key/value head shared by heads/kv_heads query heads),
softmax(q k^T / sqrt(hd)) v per head, then the output projection ([heads*hd] -> D).
"""
from __future__ import annotations

from archcalc.errors import LayerError
from archcalc.layers.base import Arg, Layer, Step, custom_module, register
from archcalc.layers.rotary import SOURCE as ROTARY_SOURCE

SOURCE = ROTARY_SOURCE + '''

class SelfAttention(nn.Module):
    """Multi-head self-attention on [N, T, D]; kv_heads < heads shares each key/value head among
    heads // kv_heads query heads (grouped-query attention)."""

    def __init__(self, dim, heads, kv_heads, head_dim, bias, causal, dropout, rotary, rotary_base):
        super().__init__()
        self.heads, self.kv_heads, self.head_dim = heads, kv_heads, head_dim
        self.causal, self.dropout = causal, dropout
        self.rotary = Rotary(head_dim, rotary_base) if rotary else None  # no weights
        self.q = nn.Linear(dim, heads * head_dim, bias=bias)
        self.k = nn.Linear(dim, kv_heads * head_dim, bias=bias)
        self.v = nn.Linear(dim, kv_heads * head_dim, bias=bias)
        self.out = nn.Linear(heads * head_dim, dim, bias=bias)

    def forward(self, x):
        n, t, _ = x.shape
        q = self.q(x).view(n, t, self.heads, self.head_dim).transpose(1, 2)
        k = self.k(x).view(n, t, self.kv_heads, self.head_dim).transpose(1, 2)
        v = self.v(x).view(n, t, self.kv_heads, self.head_dim).transpose(1, 2)
        if self.rotary is not None:
            q, k = self.rotary(q), self.rotary(k)
        if self.kv_heads != self.heads:
            k = k.repeat_interleave(self.heads // self.kv_heads, dim=1)
            v = v.repeat_interleave(self.heads // self.kv_heads, dim=1)
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0,
                                           is_causal=self.causal)
        return self.out(y.transpose(1, 2).reshape(n, t, self.heads * self.head_dim))

'''


@register
class Attention(Layer):
    kind = "attention"
    sequence = True
    primary = "heads"
    summary = "Multi-head self-attention on [T, D] (nn.MultiheadAttention semantics); grouped-query, causal, rotary"
    args = (
        Arg("heads", "int", min=1, doc="query heads"),
        Arg("kv_heads", "int", None, min=1, doc="key/value heads (default: heads; 1 = multi-query attention)"),
        Arg("head_dim", "int", None, min=1, doc="size of each head (default: D / heads)"),
        Arg("bias", "bool", True, doc="biases in the four projections"),
        Arg("causal", "bool", False, doc="each position attends only to itself and earlier ones (decoders)"),
        Arg("dropout", "float", 0.0, min=0, max=1, doc="dropout on the attention weights while training"),
        Arg("rotary", "bool", False, doc="rotary position embedding of queries and keys (rotate-half form)"),
        Arg("rotary_base", "float", 10000.0, min=0, doc="rotary frequency base"),
    )
    formulas = {
        "output": "[T, D]",
        "params": "D*(H + 2*Hkv)*d + H*d*D  (+ (H + 2*Hkv)*d + D biases); H heads, Hkv key/value heads, "
                  "d = head size (nn.MultiheadAttention: 4*D*D + 4*D)",
        "macs": "T*D*(H + 2*Hkv)*d (projections q, k, v) + 2*H*T*T*d (q k^T and weights x v) + T*H*d*D "
                "(output); the full T x T scores also when causal, as dense kernels compute them",
        "rf": "not tracked (every position mixes the whole sequence)",
    }

    def _sizes(self, a, shapes):
        """(T, D, heads, kv_heads, head_dim), checked as PyTorch would."""
        if len(shapes[0]) != 2:
            raise LayerError(f"attention needs a sequence shaped [T, D] (tokens, features), got "
                             f"{list(shapes[0])}")
        t, d = shapes[0]
        h = a["heads"]
        kv = a["kv_heads"] if a["kv_heads"] is not None else h
        if h % kv:
            raise LayerError(f"heads {h} are not divisible by kv_heads {kv}; each key/value head serves "
                             "heads / kv_heads query heads", "kv_heads")
        hd = a["head_dim"]
        if hd is None:
            if d % h:
                raise LayerError(f"the features D = {d} are not divisible by heads {h}; give head_dim "
                                 "to choose the head size", "heads")
            hd = d // h
        if a["rotary"] and hd % 2:
            raise LayerError(f"rotary embeddings turn pairs of features, so head_dim must be even, got {hd}",
                             "rotary")
        return t, d, h, kv, hd

    def output_shape(self, a, shapes):
        self._sizes(a, shapes)
        return shapes[0]

    def params(self, a, shapes):
        _, d, h, kv, hd = self._sizes(a, shapes)
        weights = d * (h + 2 * kv) * hd + h * hd * d
        return weights + ((h + 2 * kv) * hd + d if a["bias"] else 0), 0

    def macs(self, a, shapes, out):
        t, d, h, kv, hd = self._sizes(a, shapes)
        return t * d * (h + 2 * kv) * hd + 2 * h * t * t * hd + t * h * hd * d

    def rf(self, a, rfs, shapes, out):
        return None

    def saved_for_backward(self, a, shapes, out):
        # With the math (non-flash) kernel: x, q, k, v, the H x T x T weights, the heads' output
        # before the projection, and the output.
        t, d, h, kv, hd = self._sizes(a, shapes)
        return t * d + t * (h + 2 * kv) * hd + h * t * t + t * h * hd + t * d

    def kv_cache(self, a, shapes, out):
        t, _, _, kv, hd = self._sizes(a, shapes)
        return 2 * t * kv * hd if a["causal"] else 0

    def explain(self, a, shapes, out, rf_in, rf_out, row):
        from archcalc.layers import _explain as ex

        t, d, h, kv, hd = self._sizes(a, shapes)
        p = ex.par
        where = f"T = {ex.val(t)} tokens, D = {ex.val(d)}, H = {ex.val(h)} heads, Hkv = {ex.val(kv)}, d = {ex.val(hd)}"
        weights = f"{p(d)}*({p(h)} + 2*{p(kv)})*{p(hd)} + {p(h)}*{p(hd)}*{p(d)}"
        if a["bias"]:
            params = Step("params", "D*(H + 2*Hkv)*d + H*d*D + (H + 2*Hkv)*d + D",
                          f"{weights} + ({p(h)} + 2*{p(kv)})*{p(hd)} + {p(d)}", row.trainable_params,
                          note="projections q, k, v and output, with biases")
        else:
            params = Step("params", "D*(H + 2*Hkv)*d + H*d*D", weights, row.trainable_params,
                          note="projections q, k, v and output, no biases")
        macs = Step("macs", "T*D*(H + 2*Hkv)*d + 2*H*T*T*d + T*H*d*D",
                    f"{p(t)}*{p(d)}*({p(h)} + 2*{p(kv)})*{p(hd)} + 2*{p(h)}*{p(t)}*{p(t)}*{p(hd)} + "
                    f"{p(t)}*{p(h)}*{p(hd)}*{p(d)}", self.macs(a, shapes, out),
                    note="projections, q k^T and weights x v per head (full T x T"
                         + (", also when causal" if a["causal"] else "") + "), output projection")
        return [ex.output_step("[T, D]", ex.shape_text(out), out, note=where), params, macs,
                ex.rf_untracked("every position mixes the whole sequence")]

    def torch_module(self, a, shapes):
        _, d, h, kv, hd = self._sizes(a, shapes)
        return custom_module(SOURCE, "SelfAttention", d, h, kv, hd, a["bias"], a["causal"], a["dropout"],
                             a["rotary"], a["rotary_base"])
