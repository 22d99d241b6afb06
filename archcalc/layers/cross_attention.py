"""cross_attention: multi-head attention whose queries come from one sequence and whose keys and
values come from another (an encoder's output), as in encoder–decoder models.

`from: [queries, memory]`: queries [Tq, D], memory [Tk, Dm]; Tk may differ from Tq and Dm from D.
q = queries Wq ([Tq, heads*hd]), k, v = memory Wk, memory Wv ([Tk, kv_heads*hd], each key/value
head shared by heads/kv_heads query heads), softmax(scale q k^T) v per head with scale =
1/sqrt(hd) unless given (T5: 1), then the output projection ([heads*hd] -> D). No causal mask:
every query sees every memory position.

Semantics: PyTorch's nn.MultiheadAttention(D, heads, kdim=Dm, vdim=Dm, batch_first=True) called
as attn(q, m, m) when kv_heads == heads and head_dim == D / heads (same parameters, same outputs: a
test copies the weights across), and Hugging Face's cross-attention: Whisper's and BART's
encoder_attn (Whisper: no k bias), T5's EncDecAttention (no biases, scale 1).
"""
from __future__ import annotations

from archcalc.errors import LayerError
from archcalc.layers.attention import (BIAS_ARGS, HEAD_ARGS, SCORE_ARGS, head_sizes, projection_biases,
                                       score_scale, sdpa_saved)
from archcalc.layers.base import Layer, Saved, Step, custom_module, register

SOURCE = '''

class CrossAttention(nn.Module):
    """Multi-head cross-attention: queries from x [N, Tq, D], keys and values from memory
    [N, Tk, Dm]; kv_heads < heads shares each key/value head among heads // kv_heads query heads.
    bias: one bool for the four projections or a tuple (q, k, v, out). scale multiplies q k^T
    (None: 1 / sqrt(head_dim)). No mask: every query sees every memory position."""

    def __init__(self, dim, memory_dim, heads, kv_heads, head_dim, bias, dropout, scale=None):
        super().__init__()
        self.heads, self.kv_heads, self.head_dim = heads, kv_heads, head_dim
        self.dropout, self.scale = dropout, scale
        qb, kb, vb, ob = bias if isinstance(bias, tuple) else (bias,) * 4
        self.q = nn.Linear(dim, heads * head_dim, bias=qb)
        self.k = nn.Linear(memory_dim, kv_heads * head_dim, bias=kb)
        self.v = nn.Linear(memory_dim, kv_heads * head_dim, bias=vb)
        self.out = nn.Linear(heads * head_dim, dim, bias=ob)

    def forward(self, x, memory):
        n, tq, _ = x.shape
        tk = memory.shape[1]
        q = self.q(x).view(n, tq, self.heads, self.head_dim).transpose(1, 2)
        k = self.k(memory).view(n, tk, self.kv_heads, self.head_dim).transpose(1, 2)
        v = self.v(memory).view(n, tk, self.kv_heads, self.head_dim).transpose(1, 2)
        if self.kv_heads != self.heads:
            k = k.repeat_interleave(self.heads // self.kv_heads, dim=1)
            v = v.repeat_interleave(self.heads // self.kv_heads, dim=1)
        p = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=p, scale=self.scale)
        return self.out(y.transpose(1, 2).reshape(n, tq, self.heads * self.head_dim))

'''


@register
class CrossAttention(Layer):
    kind = "cross_attention"
    sequence = True
    primary = "heads"
    arity = 2
    saves_input_for_weights = True  # both inputs are kept by the projections, for their weights only
    input_roles = ("queries", "memory")  # named in the message for a wrong count of inputs
    summary = ("Multi-head cross-attention: queries [Tq, D] from the first input, keys and values from the second "
               "[Tk, Dm] (nn.MultiheadAttention with kdim/vdim; encoder–decoder models)")
    args = HEAD_ARGS + BIAS_ARGS + SCORE_ARGS
    formulas = {
        "output": "[Tq, D] (the queries' shape)",
        "params": "D*H*d + 2*Dm*Hkv*d + H*d*D  (+ biases: H*d for q, Hkv*d for k, Hkv*d for v, D for the output, "
                  "each where its switch is on); queries [Tq, D], memory [Tk, Dm], H heads, Hkv key/value heads, "
                  "d = head size (default D / H) (nn.MultiheadAttention(D, H, kdim=Dm, vdim=Dm): "
                  "2*D*D + 2*D*Dm + 4*D)",
        "macs": "Tq*D*H*d (q) + 2*Tk*Dm*Hkv*d (k and v, from the memory) + 2*H*Tq*Tk*d (q k^T and weights x v) "
                "+ Tq*H*d*D (output); the scale is elementwise, 0 MACs",
        "scores": "softmax(scale * q k^T) per head over all Tk memory positions (no mask), scale = 1/sqrt(d) "
                  "unless given (T5: 1)",
        "rf": "not tracked (every query mixes the whole memory)",
        "kv_cache": "0 self-attention cache; cross-attention cache 2*Tk*Hkv*d: keys and values of the memory, "
                    "computed once from the encoder output and kept while decoding (archcalc memory)",
        "saved": "eager PyTorch, CPU, training: queries Tq*D and memory Tk*Dm (the projections' inputs) + the kernel's; "
                 "flash (no dropout): q Tq*H*d, k and v 2*Tk*H*d, output Tq*H*d, logsumexp H*Tq float32; math "
                 "(dropout): q and k^T scaled (Tq + Tk)*H*d, softmax, its float mask and the dropped weights "
                 "3*H*Tq*Tk, v Tk*H*d, the output copied for the projection Tq*H*d",
    }

    def _sizes(self, a, shapes):
        """(Tq, D, Tk, Dm, heads, kv_heads, head_dim), checked as PyTorch would."""
        if len(shapes) != 2:
            raise LayerError(f"cross_attention takes two inputs (queries, memory), but 'from' names {len(shapes)}")
        for what, shape, names in (("queries", shapes[0], "[Tq, D]"), ("memory", shapes[1], "[Tk, Dm]")):
            if len(shape) != 2:
                raise LayerError(f"cross_attention needs {what} shaped {names} (tokens, features), got "
                                 f"{list(shape)}")
        (tq, d), (tk, dm) = shapes
        h, kv, hd = head_sizes(a, d, "the queries' features")
        return tq, d, tk, dm, h, kv, hd

    def output_shape(self, a, shapes):
        self._sizes(a, shapes)
        return shapes[0]

    def params(self, a, shapes):
        _, d, _, dm, h, kv, hd = self._sizes(a, shapes)
        qb, kb, vb, ob = projection_biases(a)
        weights = d * h * hd + 2 * dm * kv * hd + h * hd * d
        biases = qb * h * hd + kb * kv * hd + vb * kv * hd + ob * d
        return weights + biases, 0

    def macs(self, a, shapes, out):
        tq, d, tk, dm, h, kv, hd = self._sizes(a, shapes)
        return tq * d * h * hd + 2 * tk * dm * kv * hd + 2 * h * tq * tk * hd + tq * h * hd * d

    def rf(self, a, rfs, shapes, out):
        return None

    def saved_tensors(self, a, shapes, out):
        """Both inputs (the q projection keeps the queries, the k and v projections the memory),
        then what scaled_dot_product_attention's CPU kernel keeps (attention.sdpa_saved): flash
        without dropout (q is a transposed view, so the output needs no copy), math with it."""
        tq, _, tk, _, h, _, hd = self._sizes(a, shapes)
        math = a["dropout"] > 0
        return [Saved("queries", of="input", index=0, weights_only=True),
                Saved("memory", of="input", index=1, weights_only=True)] + sdpa_saved(
            h, tq, tk, hd, math=math, dropout=math)

    def cross_kv_cache(self, a, shapes, out):
        """Keys and values of the memory: computed once from the encoder output, kept while decoding."""
        _, _, tk, _, _, kv, hd = self._sizes(a, shapes)
        return 2 * tk * kv * hd

    def explain(self, a, shapes, out, rf_in, rf_out, row):
        from archcalc.layers import _explain as ex

        tq, d, tk, dm, h, kv, hd = self._sizes(a, shapes)
        p = ex.par
        where = (f"queries Tq = {ex.val(tq)}, D = {ex.val(d)}; memory Tk = {ex.val(tk)}, Dm = {ex.val(dm)}; "
                 f"H = {ex.val(h)} heads, Hkv = {ex.val(kv)}, d = {ex.val(hd)}")
        formula = ["D*H*d + 2*Dm*Hkv*d + H*d*D"]
        values = [f"{p(d)}*{p(h)}*{p(hd)} + 2*{p(dm)}*{p(kv)}*{p(hd)} + {p(h)}*{p(hd)}*{p(d)}"]
        terms = (("H*d", f"{p(h)}*{p(hd)}"), ("Hkv*d", f"{p(kv)}*{p(hd)}"), ("Hkv*d", f"{p(kv)}*{p(hd)}"),
                 ("D", p(d)))
        biases = projection_biases(a)
        formula += [f for (f, _), on in zip(terms, biases) if on]
        values += [v for (_, v), on in zip(terms, biases) if on]
        named = [n for n, on in zip(("q", "k", "v", "output"), biases) if on]
        note = ("q from the queries, k and v from the memory, output; "
                + ("with biases" if all(biases) else f"biases on {', '.join(named)} only" if named else "no biases"))
        params = Step("params", " + ".join(formula), " + ".join(values), self.params(a, shapes)[0], note=note)
        scale = "scale 1/sqrt(d)" if a["scale"] is None else f"scale {ex.val(a['scale'])}"
        macs = Step("macs", "Tq*D*H*d + 2*Tk*Dm*Hkv*d + 2*H*Tq*Tk*d + Tq*H*d*D",
                    f"{p(tq)}*{p(d)}*{p(h)}*{p(hd)} + 2*{p(tk)}*{p(dm)}*{p(kv)}*{p(hd)} + "
                    f"2*{p(h)}*{p(tq)}*{p(tk)}*{p(hd)} + {p(tq)}*{p(h)}*{p(hd)}*{p(d)}", self.macs(a, shapes, out),
                    note=f"q, k and v projections, q k^T and weights x v per head ({scale}, no mask), output "
                         "projection")
        return [ex.output_step("[Tq, D]", ex.shape_text(out), out, note=where), params, macs,
                ex.rf_untracked("every query mixes the whole memory")]

    def torch_module(self, a, shapes):
        _, d, _, dm, h, kv, hd = self._sizes(a, shapes)
        biases = projection_biases(a)
        bias = biases[0] if len(set(biases)) == 1 else biases
        scale = score_scale(a)
        extra = (scale,) if scale is not None else ()
        return custom_module(SOURCE, "CrossAttention", d, dm, h, kv, hd, bias, a["dropout"], *extra)
