"""attention: multi-head self-attention on a sequence [T, D], with grouped-query / multi-query
attention (`kv_heads`), a causal mask, a sliding window, rotary position embeddings, a bias
switch per projection and q/k normalisation, as real models write it.

Semantics: PyTorch's nn.MultiheadAttention(D, heads, batch_first=True) called as attn(x, x, x)
when kv_heads == heads and head_dim == D / heads (same parameters, same outputs: a test copies
the weights across), generalised as LLaMA and GPT-NeoX do: q = x Wq ([T, heads*hd]),
k, v = x Wk, x Wv ([T, kv_heads*hd], each key/value head shared by heads/kv_heads query heads),
softmax(q k^T / sqrt(hd)) v per head, then the output projection ([heads*hd] -> D).
Hugging Face's layouts: Qwen2 (q/k/v bias, no o bias), Whisper (no k bias), Gemma (head_dim
apart from D / heads), Qwen3 (RMSNorm of each head's q and k, one weight of head_dim shared by
the heads) and OLMo-2 (RMSNorm of the whole q and k projections), Mistral (sliding window), T5
(`scale: 1`, no 1/sqrt(hd); and an additive score bias as a second input, `from: [x, bias]`:
softmax(scale q k^T + bias) with the bias [heads or 1, T, T] that relative_position_bias computes
once per stack and every layer reads, as Hugging Face's T5Attention passes layer 0's position_bias
on; a causal or window mask then hides what it hides).
`layout: packed` holds the weights as nn.MultiheadAttention does (in_proj_weight [3D, D], rows q
then k then v; in_proj_bias [3D]; out_proj.weight, out_proj.bias), so its state_dict loads (the
module importer maps nn.MultiheadAttention to it); only for its plain form (kv_heads = heads,
head_dim = D / heads, one bias switch, no q/k norm, rotary, window, scale or score bias input).
`layout: fused` holds them as timm's Attention (ViT, DeiT) does: one `qkv` Linear [3*H*d, D] (rows
q, k, v, each H heads of d; one bias switch for the three) and `proj` [D, H*d], head_dim free.
"""
from __future__ import annotations

from archcalc.errors import LayerError
from archcalc.geometry.window import is_num
from archcalc.layers.base import Arg, Layer, Saved, Step, custom_module, prod, register
from archcalc.layers.rotary import SOURCE as ROTARY_SOURCE

SOURCE = ROTARY_SOURCE + '''

class SelfAttention(nn.Module):
    """Multi-head self-attention on [N, T, D]; kv_heads < heads shares each key/value head among
    heads // kv_heads query heads (grouped-query attention). bias: one bool for the four
    projections or a tuple (q, k, v, out). qk_norm "rmsnorm"/"layernorm" normalises q and k after
    the projections and before rotary, over each head ("head", Qwen3) or over the whole
    projection ("all", OLMo-2). window W: each query sees itself and the W - 1 keys before it.
    scale multiplies q k^T (None: 1 / sqrt(head_dim); T5: 1.0). forward(x, bias): an additive
    score bias [N or 1, heads or 1, T, T] (T5's relative position bias) joins the scores before
    the softmax, then the causal or window mask hides what it hides (-inf)."""

    def __init__(self, dim, heads, kv_heads, head_dim, bias, causal, dropout, rotary, rotary_base,
                 qk_norm=None, qk_norm_over="head", qk_norm_eps=1e-6, window=None, scale=None,
                 rotary_scaling=None):
        super().__init__()
        self.heads, self.kv_heads, self.head_dim = heads, kv_heads, head_dim
        self.causal, self.dropout, self.window, self.scale = causal, dropout, window, scale
        self.rotary = Rotary(head_dim, rotary_base, False, rotary_scaling) if rotary else None  # no weights
        qb, kb, vb, ob = bias if isinstance(bias, tuple) else (bias,) * 4
        self.q = nn.Linear(dim, heads * head_dim, bias=qb)
        self.k = nn.Linear(dim, kv_heads * head_dim, bias=kb)
        self.v = nn.Linear(dim, kv_heads * head_dim, bias=vb)
        self.out = nn.Linear(heads * head_dim, dim, bias=ob)
        self.qk_norm_over = qk_norm_over
        if qk_norm is not None:
            norm = nn.RMSNorm if qk_norm == "rmsnorm" else nn.LayerNorm
            whole = qk_norm_over == "all"
            self.q_norm = norm(heads * head_dim if whole else head_dim, eps=qk_norm_eps)
            self.k_norm = norm(kv_heads * head_dim if whole else head_dim, eps=qk_norm_eps)
        else:
            self.q_norm = self.k_norm = None

    def forward(self, x, bias=None):
        n, t, _ = x.shape
        q, k = self.q(x), self.k(x)
        if self.q_norm is not None and self.qk_norm_over == "all":
            q, k = self.q_norm(q), self.k_norm(k)
        q = q.view(n, t, self.heads, self.head_dim).transpose(1, 2)
        k = k.view(n, t, self.kv_heads, self.head_dim).transpose(1, 2)
        v = self.v(x).view(n, t, self.kv_heads, self.head_dim).transpose(1, 2)
        if self.q_norm is not None and self.qk_norm_over == "head":
            q, k = self.q_norm(q), self.k_norm(k)
        if self.rotary is not None:
            q, k = self.rotary(q), self.rotary(k)
        if self.kv_heads != self.heads:
            k = k.repeat_interleave(self.heads // self.kv_heads, dim=1)
            v = v.repeat_interleave(self.heads // self.kv_heads, dim=1)
        p = self.dropout if self.training else 0.0
        mask = None  # True where a query may see a key
        if self.window is not None or (self.causal and bias is not None):
            i = torch.arange(t, device=x.device)
            behind = i[:, None] - i[None, :]  # query position minus key position
            mask = behind >= 0
            if self.window is not None:
                mask = mask & (behind < self.window)
        if bias is not None:  # added to the scores; the mask then hides what it hides
            mask = bias if mask is None else bias.masked_fill(~mask, float("-inf"))
        if mask is not None:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p, scale=self.scale)
        else:
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=self.causal, scale=self.scale)
        return self.out(y.transpose(1, 2).reshape(n, t, self.heads * self.head_dim))

'''

# layout: packed's module, apart so that an exported network holds only the classes it uses
PACKED_SOURCE = '''

class PackedSelfAttention(nn.Module):
    """nn.MultiheadAttention(dim, heads, bias=bias, batch_first=True) called as attn(x, x, x): its
    parameters by its names and layout (in_proj_weight [3*dim, dim], rows q then k then v;
    in_proj_bias [3*dim]; out_proj), so its state_dict loads; forward splits the one projection
    into q, k, v and computes SelfAttention's outputs (causal: MultiheadAttention with the square
    causal mask)."""

    def __init__(self, dim, heads, bias, causal, dropout):
        super().__init__()
        self.heads, self.head_dim, self.causal, self.dropout = heads, dim // heads, causal, dropout
        self.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))
        nn.init.xavier_uniform_(self.in_proj_weight)
        if bias:
            self.in_proj_bias = nn.Parameter(torch.zeros(3 * dim))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = nn.Linear(dim, dim, bias=bias)

    def forward(self, x):
        n, t, d = x.shape
        qkv = F.linear(x, self.in_proj_weight, self.in_proj_bias)
        q, k, v = qkv.view(n, t, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        p = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=self.causal)
        return self.out_proj(y.transpose(1, 2).reshape(n, t, d))

'''


# layout: fused's module (timm's Attention), apart for the same reason
FUSED_SOURCE = '''

class FusedSelfAttention(nn.Module):
    """timm's Attention (ViT, DeiT): one qkv Linear [3*heads*head_dim, dim] (rows q, k, v), then
    scaled dot-product attention per head and the output projection proj [dim, heads*head_dim]."""

    def __init__(self, dim, heads, head_dim, qkv_bias, proj_bias, causal, dropout):
        super().__init__()
        self.heads, self.head_dim, self.causal, self.dropout = heads, head_dim, causal, dropout
        self.qkv = nn.Linear(dim, 3 * heads * head_dim, bias=qkv_bias)
        self.proj = nn.Linear(heads * head_dim, dim, bias=proj_bias)

    def forward(self, x):
        n, t, _ = x.shape
        q, k, v = self.qkv(x).view(n, t, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        p = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=self.causal)
        return self.proj(y.transpose(1, 2).reshape(n, t, self.heads * self.head_dim))

'''


# Argument groups shared with other attention kinds (cross_attention): the heads, the projections'
# bias switches (read with projection_biases), and the scores' scale and dropout (score_scale).
HEAD_ARGS = (
    Arg("heads", "int", min=1, doc="query heads"),
    Arg("kv_heads", "int", None, min=1, doc="key/value heads (default: heads; 1 = multi-query attention)"),
    Arg("head_dim", "int", None, min=1, doc="size of each head (default: D / heads; Gemma sets it apart)"),
)
BIAS_ARGS = (
    Arg("bias", "bool", True, doc="biases in the four projections (q_bias ... o_bias override it one by one)"),
    Arg("q_bias", "bool", None, doc="bias of the query projection (default: bias)"),
    Arg("k_bias", "bool", None, doc="bias of the key projection (default: bias; Whisper: false)"),
    Arg("v_bias", "bool", None, doc="bias of the value projection (default: bias)"),
    Arg("o_bias", "bool", None, doc="bias of the output projection (default: bias; Qwen2: false)"),
)
SCORE_ARGS = (
    Arg("scale", "float", None, min=0,
        doc="multiplies q k^T before the softmax (default: 1/sqrt(head_dim); T5: 1, unscaled)"),
    Arg("dropout", "float", 0.0, min=0, max=1, doc="dropout on the attention weights while training"),
)


def projection_biases(a) -> tuple:
    """(q, k, v, out): each projection's bias switch, `bias` where not given (BIAS_ARGS)."""
    return tuple(a["bias"] if a[f"{p}_bias"] is None else a[f"{p}_bias"] for p in "qkvo")


def score_scale(a):
    """The scale of q k^T for the module (SCORE_ARGS): None means PyTorch's 1/sqrt(head_dim)."""
    return None if a["scale"] is None else float(a["scale"])


ROPE_SCALINGS = ("linear", "llama3")
LLAMA3_DEFAULTS = {"rotary_low_freq_factor": 1.0, "rotary_high_freq_factor": 4.0, "rotary_original_max": 8192}


def rotary_scaling(a) -> tuple | None:
    """The rotary scaling for the module: None, ("linear", factor) or ("llama3", factor, low,
    high, original); LayerError where the arguments do not make one. They change the values
    computed, never a figure (cos and sin are computed in forward)."""
    kind, factor = a["rotary_scaling"], a["rotary_factor"]
    llama3 = [name for name in LLAMA3_DEFAULTS if a[name] is not None]
    if kind is None:
        for name in ["rotary_factor"] + llama3:
            if a[name] is not None:
                raise LayerError(f"{name} is an argument of the rotary scaling; add rotary_scaling: "
                                 f"{'llama3' if name != 'rotary_factor' else 'linear or llama3'}", name)
        return None
    if not a["rotary"]:
        raise LayerError(f"rotary_scaling {kind} scales the rotary embedding's frequencies; add rotary: true",
                         "rotary_scaling")
    if factor is None or factor <= 0:
        raise LayerError(f"rotary_scaling {kind} needs rotary_factor, a number above 0 (rope_scaling.factor)",
                         "rotary_factor")
    if kind == "linear":
        if llama3:
            raise LayerError(f"{llama3[0]} is an argument of the llama3 scaling, not of linear", llama3[0])
        return ("linear", float(factor))
    low, high, original = (LLAMA3_DEFAULTS[n] if a[n] is None else a[n] for n in LLAMA3_DEFAULTS)
    if not 0 < low < high:
        raise LayerError(f"llama3 scaling needs 0 < rotary_low_freq_factor < rotary_high_freq_factor, got "
                         f"{low} and {high}", "rotary_high_freq_factor")
    return ("llama3", float(factor), float(low), float(high), int(original))


def score_bias_shape(shape: tuple, heads, tq, tk) -> None:
    """An additive score bias (a second input) must broadcast to the scores [heads, Tq, Tk] of one
    example, as scaled_dot_product_attention's attn_mask: [heads or 1, Tq, Tk]."""
    if len(shape) != 3 or shape[1:] != (tq, tk) or shape[0] not in (1, heads):
        raise LayerError(f"the score bias (second input) must be shaped [heads, Tq, Tk] = [{heads}, {tq}, {tk}] "
                         f"(or [1, {tq}, {tk}], the same for every head), got {list(shape)}; "
                         "relative_position_bias gives one")


def head_sizes(a: dict, d, what: str) -> tuple:
    """(heads, kv_heads, head_dim) of an attention kind's arguments on features of width d: kv_heads
    defaults to heads and must divide it; head_dim defaults to d / heads. `what` names d in errors."""
    h = a["heads"]
    kv = a["kv_heads"] if a["kv_heads"] is not None else h
    if h % kv:
        raise LayerError(f"heads {h} are not divisible by kv_heads {kv}; each key/value head serves "
                         "heads / kv_heads query heads", "kv_heads")
    hd = a["head_dim"]
    if hd is None:
        if d % h:
            raise LayerError(f"{what} D = {d} are not divisible by heads {h}; give head_dim "
                             "to choose the head size", "heads")
        hd = d // h
    return h, kv, hd


@register
class Attention(Layer):
    kind = "attention"
    sequence = True
    primary = "heads"
    arity = (1, 2)  # the sequence [T, D], and optionally an additive score bias [H, T, T]
    # x is kept by the q, k, v projections for their weights' gradients only: frozen, not at all
    # (what else a frozen layer keeps less, the output copy the projection keeps for its weight,
    # is still counted)
    saves_input_for_weights = True
    summary = ("Multi-head self-attention on [T, D] (nn.MultiheadAttention semantics); grouped-query, causal, "
               "sliding window, rotary, per-projection biases, q/k norm, a score scale and an additive score "
               "bias input (T5)")
    args = HEAD_ARGS + BIAS_ARGS + (
        Arg("causal", "bool", False, doc="each position attends only to itself and earlier ones (decoders)"),
        Arg("window", "int", None, min=1,
            doc="sliding window (Mistral): each query sees only the last window keys, itself included; needs causal"),
    ) + SCORE_ARGS + (
        Arg("rotary", "bool", False, doc="rotary position embedding of queries and keys (rotate-half form)"),
        Arg("rotary_base", "float", 10000.0, min=0, doc="rotary frequency base"),
        Arg("rotary_scaling", "choice", None, choices=ROPE_SCALINGS,
            doc="scaled rotary frequencies, as Hugging Face's rope_type: linear (every frequency / factor) or "
                "llama3 (Llama 3.1: long wavelengths / factor, short ones kept, smoothed between)"),
        Arg("rotary_factor", "float", None, min=0, doc="the scaling's factor (rope_scaling.factor); needed with "
                                                       "rotary_scaling"),
        Arg("rotary_low_freq_factor", "float", None, min=0, doc="llama3: low_freq_factor (default 1)"),
        Arg("rotary_high_freq_factor", "float", None, min=0, doc="llama3: high_freq_factor (default 4)"),
        Arg("rotary_original_max", "int", None, min=1,
            doc="llama3: original_max_position_embeddings, the pre-training context (default 8192)"),
        Arg("qk_norm", "choice", None, choices=("rmsnorm", "layernorm"),
            doc="normalise queries and keys after their projections, before rotary (Qwen3, OLMo-2)"),
        Arg("qk_norm_over", "choice", None, choices=("head", "all"),
            doc="head (default): over each head's head_dim features, one weight shared by the heads (Qwen3); "
                "all: over the whole projection, heads*head_dim for q and kv_heads*head_dim for k (OLMo-2)"),
        Arg("qk_norm_eps", "float", None, min=0,
            doc="added to the variance in the q/k norm (default: 1e-6 for rmsnorm as in Qwen3, 1e-5 for layernorm)"),
        Arg("layout", "choice", "separate", choices=("separate", "packed", "fused"),
            doc="separate: q, k, v, out Linears (Hugging Face's layout); fused: timm's qkv [3*H*d, D] and proj "
                "(one bias switch for q, k and v, o_bias apart; kv_heads = heads); packed: nn.MultiheadAttention's "
                "in_proj_weight [3D, D] (rows q, k, v), in_proj_bias [3D], out_proj (its state_dict loads); "
                "packed needs kv_heads = heads, head_dim = D/heads, one bias switch, and no qk_norm, rotary, "
                "window, scale or score bias input"),
    )
    formulas = {
        "layout": "packed = nn.MultiheadAttention's parameters: in_proj_weight [3*D, D] = [Wq; Wk; Wv], "
                  "in_proj_bias [3*D], out_proj.weight [D, D], out_proj.bias [D]; the same parameter count, "
                  "MACs and outputs as separate q, k, v, out",
        "output": "[T, D]",
        "params": "D*(H + 2*Hkv)*d + H*d*D  (+ biases: H*d for q, Hkv*d for k, Hkv*d for v, D for the output, "
                  "each where its switch is on) (+ q/k norm: 2*d per head, (H + Hkv)*d over all; twice that "
                  "for layernorm, weight and bias); H heads, Hkv key/value heads, d = head size "
                  "(nn.MultiheadAttention: 4*D*D + 4*D)",
        "macs": "T*D*(H + 2*Hkv)*d (projections q, k, v) + 2*H*T*T*d (q k^T and weights x v) + T*H*d*D "
                "(output); the full T x T scores also when causal or windowed, as dense kernels compute "
                "them (and as FlopCounterMode measures the masked scaled_dot_product_attention); the scale "
                "and a score bias input are elementwise, 0 MACs",
        "scores": "softmax(scale * q k^T + bias) per head, scale = 1/sqrt(d) unless given (T5: 1); bias: the "
                  "optional second input [H, T, T] (T5's relative position bias), then the causal mask",
        "rf": "not tracked (every position mixes the whole sequence)",
        "kv_cache": "causal: 2*min(T, window)*Hkv*d (keys and values of the positions a query can still see)",
        "saved": "eager PyTorch, CPU, training: x (T*D, the projections' input) + the kernel's; flash (no dropout, no "
                 "score bias input): q, k, v 3*T*H*d, output T*H*d, logsumexp H*T float32, + T*H*d (the output "
                 "copied for the projection) after rotary or a per-head q/k norm; math (dropout or a bias input): "
                 "q and k^T scaled 2*T*H*d, softmax H*T*T (+ mask and dropped weights 2*H*T*T with dropout), v "
                 "T*H*d, the output copy T*H*d; + rotary 2*T*d cos/sin (not per example), + q/k norm: input, "
                 "rsqrt and normalised (rmsnorm) or input, mean and rstd (layernorm) of q and k; + the mask: "
                 "T*T (window, flash: float; causal or window with a bias input: bool), not per example",
    }

    def _sizes(self, a, shapes):
        """(T, D, heads, kv_heads, head_dim), checked as PyTorch would."""
        if not 1 <= len(shapes) <= 2:
            raise LayerError(f"attention takes one or two inputs (the sequence, and an additive score bias), "
                             f"but 'from' names {len(shapes)}")
        if len(shapes[0]) != 2:
            raise LayerError(f"attention needs a sequence shaped [T, D] (tokens, features), got "
                             f"{list(shapes[0])}")
        t, d = shapes[0]
        h, kv, hd = head_sizes(a, d, "the features")
        if a["rotary"] and hd % 2:
            raise LayerError(f"rotary embeddings turn pairs of features, so head_dim must be even, got {hd}",
                             "rotary")
        rotary_scaling(a)
        if a["window"] is not None and not a["causal"]:
            raise LayerError(f"window {a['window']} is a causal sliding window (each query sees the last "
                             "window keys); add causal: true", "window")
        if a["qk_norm"] is None:
            for name in ("qk_norm_over", "qk_norm_eps"):
                if a[name] is not None:
                    raise LayerError(f"{name} applies to the q/k norm; add qk_norm: rmsnorm or layernorm", name)
        if len(shapes) == 2:
            score_bias_shape(tuple(shapes[1]), h, t, t)
        if a["layout"] != "separate":
            self._packable(a, d, h, kv, hd, len(shapes))
        return t, d, h, kv, hd

    @staticmethod
    def _packable(a, d, h, kv, hd, inputs) -> None:
        """layout: packed is nn.MultiheadAttention's layout, which has none of the variants; fused
        (timm's) has none either, but its head_dim is free and its output bias has its own switch."""
        packed = a["layout"] == "packed"
        why = None
        if kv != h:
            why = f"kv_heads {kv} differs from heads {h}"
        elif packed and h * hd != d:
            why = f"head_dim {hd} is not D / heads = {d} / {h}"
        elif len(set(projection_biases(a)[:4 if packed else 3])) != 1:
            why = ("the projections' bias switches differ (it has one bias switch)" if packed
                   else "q_bias, k_bias and v_bias differ (qkv has one bias switch)")
        else:
            for name in ("qk_norm", "window", "scale"):
                if a[name] is not None:
                    why = f"{name} is given"
                    break
            else:
                if a["rotary"]:
                    why = "rotary is on"
                elif inputs == 2:
                    why = "a score bias input is given"
        if why is not None:
            what = ("nn.MultiheadAttention's layout (one q/k/v projection of D = heads * head_dim)" if packed
                    else "timm's layout (one qkv projection of 3 * heads * head_dim)")
            raise LayerError(f"layout: {a['layout']} is {what}, but {why}; use layout: separate", "layout")

    @staticmethod
    def _biases(a) -> tuple:
        """(q, k, v, out): each projection's bias switch, `bias` where not given."""
        return projection_biases(a)

    @staticmethod
    def _norm(a) -> tuple:
        """(over, eps, parameters per normalised feature) of the q/k norm."""
        over = a["qk_norm_over"] or "head"
        eps = a["qk_norm_eps"]
        if eps is None:
            eps = 1e-6 if a["qk_norm"] == "rmsnorm" else 1e-5
        return over, eps, 1 if a["qk_norm"] == "rmsnorm" else 2

    def output_shape(self, a, shapes):
        self._sizes(a, shapes)
        return shapes[0]

    def params(self, a, shapes):
        _, d, h, kv, hd = self._sizes(a, shapes)
        weights = d * (h + 2 * kv) * hd + h * hd * d
        qb, kb, vb, ob = self._biases(a)
        biases = qb * h * hd + kb * kv * hd + vb * kv * hd + ob * d
        norms = 0
        if a["qk_norm"] is not None:
            over, _, per = self._norm(a)
            norms = per * (2 * hd if over == "head" else (h + kv) * hd)
        return weights + biases + norms, 0

    def macs(self, a, shapes, out):
        t, d, h, kv, hd = self._sizes(a, shapes)
        return t * d * (h + 2 * kv) * hd + 2 * h * t * t * hd + t * h * hd * d

    def rf(self, a, rfs, shapes, out):
        return None

    def saved_tensors(self, a, shapes, out):
        """What autograd keeps (eager PyTorch, CPU, training; `formulas["saved"]`): the input x
        (the q, k and v projections' nn.Linear saves it), the q/k norm's tensors, rotary's cos and
        sin, then what scaled_dot_product_attention's kernel keeps (sdpa_saved): the CPU flash
        kernel where it runs (no dropout, no score bias input), else the math kernel."""
        return self._saved(a, shapes, out, bias_grad=True)

    def saved_tensors_for(self, a, shapes, out, needs_grad):
        # A score bias input that needs no gradient (a network input: a padding mask) is no reason
        # for the math kernel: the flash kernel runs and keeps it as its attn_mask (measured).
        return self._saved(a, shapes, out, bias_grad=len(shapes) < 2 or needs_grad[1])

    def _saved(self, a, shapes, out, bias_grad):
        t, _, h, kv, hd = self._sizes(a, shapes)
        saved = [Saved("input", of="input", weights_only=True)]  # the projections keep it for their weights
        saved += self._qk_norm_saved(a, t, h, kv, hd)
        if a["rotary"]:  # cos and sin [T, d/2] of one rotary call, computed for q and again for k
            saved.append(Saved("rotary cos, sin (for q and for k)", elements=2 * t * hd, per_batch=True))
        bias_input = len(shapes) == 2
        math = a["dropout"] > 0 or (bias_input and bias_grad)
        masked = a["causal"] or a["window"] is not None
        if bias_input and masked and bias_grad:  # bias.masked_fill(~mask, -inf) keeps the bool mask
            saved.append(Saved("mask (bool)", elements=t * t, itemsize=1, per_batch=True))
        elif bias_input and not math:  # the flash kernel keeps its attn_mask: the bias (masked: a new one)
            saved.append(Saved("score bias, masked (the kernel's attn_mask)", elements=prod(shapes[1])) if masked
                         else Saved("score bias (the kernel's attn_mask)", of="input", index=1))
        elif a["window"] is not None and not math:  # the flash kernel keeps the float mask it made
            saved.append(Saved("mask (float, from the bool window mask)", elements=t * t, per_batch=True))
        # q is laid out head-major ([H, T, d], not a transposed view of [T, H*d]) after rotary or a
        # per-head norm; the flash kernel's output then follows it, and the output projection's
        # input [T, H*d] is a copy.
        head_major = a["rotary"] or (a["qk_norm"] is not None and self._norm(a)[0] == "head")
        one_storage = a["layout"] != "separate"  # q, k and v are views of one qkv projection
        return saved + sdpa_saved(h, t, t, hd, math=math, dropout=a["dropout"] > 0,
                                  copy_out=head_major, qkv_one_storage=one_storage)

    def _qk_norm_saved(self, a, t, h, kv, hd) -> list:
        """The q/k norm's saved tensors: RMSNorm (x * rsqrt(mean(x^2) + eps) * weight, composite
        ops) keeps its input, rsqrt's result (one per normalised row) and the normalised values
        (for the weight's gradient); LayerNorm (native_layer_norm) its input, mean and rstd."""
        if a["qk_norm"] is None:
            return []
        over = self._norm(a)[0]
        saved = []
        for name, heads in (("q", h), ("k", kv)):
            rows = t * heads if over == "head" else t
            saved.append(Saved(f"{name} before its norm", elements=t * heads * hd))
            if a["qk_norm"] == "rmsnorm":
                saved += [Saved(f"{name} norm's rsqrt", elements=rows),
                          Saved(f"{name} normalised, before the weight", elements=t * heads * hd, weights_only=True)]
            else:
                saved += [Saved(f"{name} norm's mean", elements=rows), Saved(f"{name} norm's rstd", elements=rows)]
        return saved

    def kv_cache(self, a, shapes, out):
        # A sliding window never reads a key older than the window, so the cache holds at most it.
        t, _, _, kv, hd = self._sizes(a, shapes)
        if not a["causal"]:
            return 0
        w = a["window"]
        if w is not None:
            if is_num(t) and is_num(w):
                t = min(t, w)
            else:
                import sympy

                t = sympy.Min(t, w)
        return 2 * t * kv * hd

    def explain(self, a, shapes, out, rf_in, rf_out, row):
        from archcalc.layers import _explain as ex

        t, d, h, kv, hd = self._sizes(a, shapes)
        p = ex.par
        where = f"T = {ex.val(t)} tokens, D = {ex.val(d)}, H = {ex.val(h)} heads, Hkv = {ex.val(kv)}, d = {ex.val(hd)}"
        formula, values = ["D*(H + 2*Hkv)*d + H*d*D"], [f"{p(d)}*({p(h)} + 2*{p(kv)})*{p(hd)} + {p(h)}*{p(hd)}*{p(d)}"]
        biases = self._biases(a)
        if all(biases):
            formula.append("(H + 2*Hkv)*d + D")
            values.append(f"({p(h)} + 2*{p(kv)})*{p(hd)} + {p(d)}")
            note = "projections q, k, v and output, with biases"
        else:
            terms = (("H*d", f"{p(h)}*{p(hd)}"), ("Hkv*d", f"{p(kv)}*{p(hd)}"), ("Hkv*d", f"{p(kv)}*{p(hd)}"),
                     ("D", p(d)))
            formula += [f for (f, _), on in zip(terms, biases) if on]
            values += [v for (_, v), on in zip(terms, biases) if on]
            named = [n for n, on in zip(("q", "k", "v", "output"), biases) if on]
            note = ("projections q, k, v and output, " +
                    (f"biases on {', '.join(named)} only" if named else "no biases"))
        if a["qk_norm"] is not None:
            over, eps, per = self._norm(a)
            twice = "2*" if per == 2 else ""
            if over == "head":
                formula.append(f"{twice}2*d")
                values.append(f"{twice}2*{p(hd)}")
            else:
                formula.append(f"{twice}(H + Hkv)*d")
                values.append(f"{twice}({p(h)} + {p(kv)})*{p(hd)}")
            note += (f"; {a['qk_norm']} of q and k over " + ("each head (one weight of d shared by the heads)"
                     if over == "head" else "the whole projections") + (", weight and bias" if per == 2 else ""))
        if a["layout"] == "packed":
            note += "; packed as nn.MultiheadAttention's in_proj_weight [3D, D] and out_proj"
        elif a["layout"] == "fused":
            note += "; fused as timm's qkv [3*H*d, D] and proj"
        params = Step("params", " + ".join(formula), " + ".join(values), self.params(a, shapes)[0], note=note)
        masked = "windowed" if a["window"] is not None else "causal" if a["causal"] else ""
        macs = Step("macs", "T*D*(H + 2*Hkv)*d + 2*H*T*T*d + T*H*d*D",
                    f"{p(t)}*{p(d)}*({p(h)} + 2*{p(kv)})*{p(hd)} + 2*{p(h)}*{p(t)}*{p(t)}*{p(hd)} + "
                    f"{p(t)}*{p(h)}*{p(hd)}*{p(d)}", self.macs(a, shapes, out),
                    note="projections, q k^T and weights x v per head (full T x T"
                         + (f", also when {masked}" if masked else "") + "), output projection; "
                         + score_note(a, len(shapes) == 2))
        return [ex.output_step("[T, D]", ex.shape_text(out), out, note=where), params, macs,
                ex.rf_untracked("every position mixes the whole sequence")]

    def torch_module(self, a, shapes):
        _, d, h, kv, hd = self._sizes(a, shapes)
        biases = self._biases(a)
        bias = biases[0] if len(set(biases)) == 1 else biases
        if a["layout"] == "packed":
            return custom_module(PACKED_SOURCE, "PackedSelfAttention", d, h, bias, a["causal"], a["dropout"])
        if a["layout"] == "fused":
            return custom_module(FUSED_SOURCE, "FusedSelfAttention", d, h, hd, biases[0], biases[3], a["causal"],
                                 a["dropout"])
        extra = ()
        scaling = rotary_scaling(a)
        if a["qk_norm"] is not None or a["window"] is not None or a["scale"] is not None or scaling:
            over, eps, _ = self._norm(a)
            extra = (a["qk_norm"], over, eps, a["window"])
            if a["scale"] is not None or scaling:
                extra += (score_scale(a) if a["scale"] is not None else None,)
            if scaling:
                extra += (scaling,)
        return custom_module(SOURCE, "SelfAttention", d, h, kv, hd, bias, a["causal"], a["dropout"],
                             a["rotary"], a["rotary_base"], *extra)

    def probe_module(self, a, shapes):
        if len(shapes) == 1:
            return super().probe_module(a, shapes)
        return custom_module(FIRST_INPUT_SOURCE, "FirstInput")  # an identity of the sequence, bias unread


FIRST_INPUT_SOURCE = '''
class FirstInput(nn.Module):
    """The receptive-field probe's stand-in of a layer with a second, unread input: its first input."""

    def forward(self, x, *rest):
        return x
'''


def _several(n) -> bool:
    """More than one (a symbolic size is taken as more than one)."""
    return not is_num(n) or n > 1


def sdpa_saved(h, tq, tk, hd, *, math: bool, dropout: bool, copy_out: bool = False,
               qkv_one_storage: bool = False) -> list:
    """What F.scaled_dot_product_attention keeps for backward on CPU (float32, training) for H
    heads of d, Tq queries and Tk keys (k and v already repeated to H heads where grouped),
    and the copy of its output the output projection reads.

    Flash kernel (_scaled_dot_product_flash_attention_for_cpu: no dropout, no mask that needs a
    gradient): q, k, v as given, its output [H, Tq, d] and the logsumexp [H, Tq] (float32). Its
    output takes q's layout: where q is a transposed view of [Tq, H*d] (a projection's output)
    the output's transpose(1, 2).reshape is a view; where q is head-major (`copy_out`: after
    rotary or a per-head norm) it is a copy of Tq*H*d.
    Math kernel (_scaled_dot_product_attention_math: dropout > 0, or a score bias input): q times
    sqrt(scale) and k^T times sqrt(scale), each copied for the batched matmul, the softmax
    output [H, Tq, Tk]; with dropout its float mask and the dropped weights (input * mask, as
    at::dropout computes it on CPU); v copied (or a view of its projection) for weights x v;
    and the copy [Tq, H*d] of its output for the projection (measured a copy also for one head
    or one query). With q, k and v views of one qkv projection (layout fused/packed) and one
    head, v is a view of that whole [Tk, 3*d] output."""
    if not math:
        several = _several(h) and _several(tq)
        saved = [Saved("q", elements=h * tq * hd), Saved("k", elements=h * tk * hd), Saved("v", elements=h * tk * hd),
                 Saved("attention output", elements=h * tq * hd), Saved("logsumexp (float32)", elements=h * tq, itemsize=4)]
        if copy_out and several:
            saved.append(Saved("attention output as [T, H*d] (a copy, for the output projection)", elements=tq * h * hd,
                               weights_only=True))
        return saved
    saved = [Saved("q * sqrt(scale)", elements=h * tq * hd), Saved("k^T * sqrt(scale)", elements=h * tk * hd),
             Saved("attention weights (softmax)", elements=h * tq * tk)]
    if dropout:
        saved += [Saved("dropout mask (float)", elements=h * tq * tk), Saved("dropped weights", elements=h * tq * tk)]
    one_head_view = qkv_one_storage and is_num(h) and h == 1
    saved.append(Saved("v (the qkv projection's output, a view)" if one_head_view else "v",
                       elements=(3 if one_head_view else 1) * h * tk * hd))
    saved.append(Saved("attention output as [T, H*d] (a copy, for the output projection)", elements=tq * h * hd,
                               weights_only=True))
    return saved


def score_note(a, bias_input: bool) -> str:
    """How the scores are made, for explain: the scale and the score bias input (0 MACs)."""
    scale = ("scores times 1/sqrt(d)" if a["scale"] is None else
             "unscaled scores (scale 1)" if a["scale"] == 1 else f"scores times {a['scale']:g}")
    if bias_input:
        scale += " plus the score bias input"
    return scale + " (elementwise, not MACs)"
