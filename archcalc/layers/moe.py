"""moe: a mixture of routed experts on [..., D] (a sequence [T, D], one token a position), as
Hugging Face writes Mixtral, Qwen2-MoE, OLMoE, DeepSeek-V2 (routed plus shared experts) and
Switch Transformers (top-1, two-layer experts).

Per token x (a vector of D features), exactly as transformers' eager experts compute it:

    logits  = x Wr (+ br)                       router (`gate`), [E]
    p       = softmax(logits) in float32        over all E experts
    w, idx  = top_k(p)                          the k largest probabilities and their experts
    w       = w / sum(w)                        only with renormalize (Mixtral; Qwen2-MoE and
                                                OLMoE's norm_topk_prob; not Switch or DeepSeek-V2)
    w       = w * scale                         DeepSeek-V2's routed_scaling_factor (default 1)
    y       = sum_j w_j expert_{idx_j}(x)
            + sigmoid(x wg) * shared(x)         shared experts (DeepSeek, Qwen2-MoE), gate optional

An expert is `gated` (Mixtral/Qwen/DeepSeek: down(act(x Wg) * (x Wu)), act SiLU by default; the
weights are HF's fused `gate_up_proj` [E, 2h, D], gate first, and `down_proj` [E, D, h]) or `mlp`
(Switch: wo(act(x wi)), ReLU by default; `up_proj` [E, h, D] and `down_proj` [E, D, h]). The
shared experts take the routed experts' form, written as one FFN of width h_s = shared_experts *
shared_hidden (DeepSeek's `moe_intermediate_size * n_shared_experts`; Qwen2-MoE's single shared expert).

Routing is dropless: every token reaches its top_k experts (Switch Transformers' HF code drops
tokens past `expert_capacity`; a capacity of at least the tokens is the same). MACs follow:
router T*D*E, plus T*top_k times one expert's MACs, plus the shared experts; softmax, top-k, the
renormalisation, the weighting and the index_add that scatters outputs back are not
multiply-accumulates (FlopCounterMode counts none of them), and biases are not MACs.
"""
from __future__ import annotations

from archcalc.geometry.receptive_field import GLOBAL
from archcalc.errors import LayerError
from archcalc.layers.base import Arg, Layer, Saved, Step, custom_module, prod, register

ACTIVATIONS = ("silu", "gelu", "gelu_tanh", "relu")

SOURCE = '''
_ACT = {"silu": F.silu, "gelu": F.gelu, "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"), "relu": F.relu}


class RoutedExperts(nn.Module):
    """E expert FFNs held as 3-d tensors (Hugging Face's layout): gated, gate_up_proj [E, 2h, D]
    (gate rows first) and down_proj [E, D, h]; plain, up_proj [E, h, D] and down_proj [E, D, h];
    with bias, a [E, rows] bias beside each (`..._bias`)."""

    def __init__(self, dim, experts, hidden, gated, act, bias):
        super().__init__()
        self.gated, self.act = gated, act
        rows = 2 * hidden if gated else hidden
        self.first = "gate_up_proj" if gated else "up_proj"
        self.register_parameter(self.first, nn.Parameter(torch.empty(experts, rows, dim)))
        self.down_proj = nn.Parameter(torch.empty(experts, dim, hidden))
        if bias:
            self.register_parameter(self.first + "_bias", nn.Parameter(torch.empty(experts, rows)))
            self.down_proj_bias = nn.Parameter(torch.empty(experts, dim))
        else:
            self.register_parameter(self.first + "_bias", None)
            self.down_proj_bias = None
        for name, fan_in in ((self.first, dim), ("down_proj", hidden)):  # nn.Linear's initialisation
            bound = 1 / math.sqrt(fan_in)
            nn.init.uniform_(getattr(self, name), -bound, bound)
            if getattr(self, name + "_bias") is not None:
                nn.init.uniform_(getattr(self, name + "_bias"), -bound, bound)

    def forward(self, x, e):
        """Expert e on the tokens x [n, D]."""
        first, first_bias = getattr(self, self.first), getattr(self, self.first + "_bias")
        h = F.linear(x, first[e], None if first_bias is None else first_bias[e])
        if self.gated:
            gate, up = h.chunk(2, dim=-1)
            h = _ACT[self.act](gate) * up
        else:
            h = _ACT[self.act](h)
        return F.linear(h, self.down_proj[e], None if self.down_proj_bias is None else self.down_proj_bias[e])


class SharedExpertsFFN(nn.Module):
    """The shared experts, one FFN of their summed width (DeepSeek's shared_experts, Qwen2-MoE's
    shared_expert): gate_proj, up_proj, down_proj (gated) or up_proj, down_proj (plain)."""

    def __init__(self, dim, hidden, gated, act, bias):
        super().__init__()
        self.gated, self.act = gated, act
        if gated:
            self.gate_proj = nn.Linear(dim, hidden, bias=bias)
        self.up_proj = nn.Linear(dim, hidden, bias=bias)
        self.down_proj = nn.Linear(hidden, dim, bias=bias)

    def forward(self, x):
        if self.gated:
            return self.down_proj(_ACT[self.act](self.gate_proj(x)) * self.up_proj(x))
        return self.down_proj(_ACT[self.act](self.up_proj(x)))


class MixtureOfExperts(nn.Module):
    """Routed experts on [N, ..., D]: the router `gate` scores every token, each token goes to its
    top_k experts (the tokens of one expert are gathered, run through it, scaled by their routing
    weights and added back with index_add_), plus the shared experts on every token."""

    def __init__(self, dim, experts, top_k, hidden, gated, act, bias, router_bias, renormalize, scale,
                 shared_hidden, shared_gate):
        super().__init__()
        self.num_experts, self.top_k, self.renormalize, self.scale = experts, top_k, renormalize, scale
        self.gate = nn.Linear(dim, experts, bias=router_bias)
        self.experts = RoutedExperts(dim, experts, hidden, gated, act, bias)
        self.shared_experts = SharedExpertsFFN(dim, shared_hidden, gated, act, bias) if shared_hidden else None
        self.shared_expert_gate = nn.Linear(dim, 1, bias=False) if shared_gate else None

    def routes(self, chosen):
        """(expert, token indices, top-k slots) of every expert that receives tokens."""
        if chosen.device.type == "meta":
            # A meta tensor holds no values to route by (nonzero() needs them): slot s = token * top_k
            # + j goes to expert s % E instead, round-robin. Every token still reaches top_k experts
            # and each expert a fixed share, so shapes, parameters and the multiply-accumulates
            # (T * top_k expert passes, however they are spread) are those of real routing.
            slots = chosen.numel()
            for e in range(min(self.num_experts, slots)):
                s = torch.arange(e, slots, self.num_experts, device=chosen.device)
                yield e, s // self.top_k, s % self.top_k
            return
        for e in range(self.num_experts):
            token, slot = torch.where(chosen == e)
            if token.numel():
                yield e, token, slot

    def forward(self, x):
        shape = x.shape
        x = x.reshape(-1, shape[-1])
        logits = self.gate(x)
        probs = F.softmax(logits, dim=-1, dtype=torch.float32)
        weights, chosen = torch.topk(probs, self.top_k, dim=-1)
        if self.renormalize:
            weights = weights / weights.sum(dim=-1, keepdim=True)
        if self.scale != 1:
            weights = weights * self.scale
        y = torch.zeros_like(x)
        for e, token, slot in self.routes(chosen):
            out = self.experts(x[token], e) * weights[token, slot, None]
            y.index_add_(0, token, out.to(y.dtype))
        if self.shared_experts is not None:
            shared = self.shared_experts(x)
            if self.shared_expert_gate is not None:
                shared = torch.sigmoid(self.shared_expert_gate(x)) * shared
            y = y + shared
        return y.reshape(shape)
'''


@register
class Moe(Layer):
    kind = "moe"
    sequence = True  # routes each token of [T, D]: memory planning gives FLOPs per token
    primary = "experts"
    summary = ("Mixture of experts on [..., D]: a router sends each token to its top_k of E expert FFNs "
               "(Mixtral, Switch, Qwen2-MoE), optional shared experts (DeepSeek)")
    args = (
        Arg("experts", "int", min=1, doc="routed experts E"),
        Arg("top_k", "int", min=1, doc="experts each token is sent to (Mixtral 2, Switch 1)"),
        Arg("hidden", "int", min=1, doc="each expert's FFN width h (Mixtral's intermediate_size, "
                                        "Qwen2-MoE's moe_intermediate_size, Switch's d_ff)"),
        Arg("expert", "choice", "gated", choices=("gated", "mlp"),
            doc="gated: down(act(x Wg) * (x Wu)), SwiGLU as Mixtral, Qwen-MoE and DeepSeek write it; "
                "mlp: down(act(x Wu)), the two-layer FFN of Switch Transformers"),
        Arg("activation", "choice", None, choices=ACTIVATIONS,
            doc="the experts' activation (default: silu for gated, relu for mlp); gelu_tanh is HF's "
                "gelu_new / gelu_pytorch_tanh"),
        Arg("bias", "bool", False, doc="biases in the experts' (and shared experts') projections"),
        Arg("router_bias", "bool", False, doc="a bias in the router (Switch's router_bias)"),
        Arg("renormalize", "bool", True,
            doc="divide the top_k probabilities by their sum (Mixtral; norm_topk_prob in Qwen2-MoE, "
                "Qwen3-MoE and OLMoE); false keeps the softmax over all experts (Switch, DeepSeek-V2)"),
        Arg("scale", "float", 1.0, min=0, doc="multiplies the routing weights (DeepSeek's routed_scaling_factor)"),
        Arg("shared_experts", "int", 0, min=0, doc="experts every token goes through, unrouted (DeepSeek's "
                                                  "n_shared_experts; Qwen2-MoE 1)"),
        Arg("shared_hidden", "int", None, min=1,
            doc="each shared expert's width (default: hidden; Qwen2-MoE's shared_expert_intermediate_size)"),
        Arg("shared_gate", "bool", False,
            doc="scale the shared experts' output by sigmoid(x wg), wg a D -> 1 linear without bias (Qwen2-MoE)"),
    )
    formulas = {
        "output": "[..., D] (the input shape)",
        "params": "router D*E (+ E) + E * expert + shared; expert = 3*D*h gated (+ 2*h + D biases), 2*D*h mlp "
                  "(+ h + D); shared = the same with h_s = shared_experts * shared_hidden, + D for the shared gate",
        "active": "router + top_k * expert + shared: the parameters one token uses (active parameters per token)",
        "macs": "T*D*E (router) + T*top_k*(3*D*h gated, 2*D*h mlp) + T*(3 or 2)*D*h_s (shared) + T*D (shared gate), "
                "T = positions (product of the leading dimensions); dropless routing, every token reaches its "
                "top_k experts; softmax, top-k, weighting, index_add and biases count 0 (as in FlopCounterMode)",
        "rf": "as linear (each position on its own, its features mixed): global on [C, L]; not tracked with 2+ "
              "spatial axes; none on [F] (no spatial axes)",
        "saved": "x + router T*E softmax (float32) + T*k top-k ids (int64) (+ T*k + T float32 with renormalize) + "
                 "per routed slot (T*k, however they are spread): 2 int64 token ids, D gathered, 4h gated (2h "
                 "mlp, h with relu), 1 float32 weight, 2D outputs + shared experts 4*T*hs gated (3 relu; mlp 2, "
                 "1 relu) + T*(D + 1) for the shared gate",
    }

    # --- sizes ------------------------------------------------------------------------------
    def _plan(self, a, shapes):
        """(positions T, D, E, k, h, gated, shared width h_s), checked."""
        shape = shapes[0]
        e, k = a["experts"], a["top_k"]
        if k > e:
            raise LayerError(f"top_k {k} is more than the {e} experts; expected top_k <= experts", "top_k")
        if not a["shared_experts"]:
            for name in ("shared_hidden", "shared_gate"):
                if a[name] not in (None, False):
                    raise LayerError(f"{name} applies to shared experts; add shared_experts: N", name)
        width = a["shared_hidden"] if a["shared_hidden"] is not None else a["hidden"]
        return (prod(shape[:-1]), shape[-1], e, k, a["hidden"], a["expert"] == "gated",
                a["shared_experts"] * width)

    @staticmethod
    def _ffn(d, h, gated, bias):
        """(parameters, MACs per token) of one FFN of width h."""
        mats = 3 if gated else 2
        return mats * d * h + (((2 * h if gated else h) + d) if bias else 0), mats * d * h

    def _parts(self, a, shapes):
        """Parameters of (router, one expert, shared experts with their gate)."""
        _, d, e, _, h, gated, hs = self._plan(a, shapes)
        router = d * e + (e if a["router_bias"] else 0)
        expert = self._ffn(d, h, gated, a["bias"])[0]
        shared = (self._ffn(d, hs, gated, a["bias"])[0] + (d if a["shared_gate"] else 0)) if hs else 0
        return router, expert, shared

    def output_shape(self, a, shapes):
        self._plan(a, shapes)
        return shapes[0]

    def params(self, a, shapes):
        router, expert, shared = self._parts(a, shapes)
        return router + a["experts"] * expert + shared, 0

    def inactive_params(self, a, shapes):
        """The experts a token is not sent to: (E - top_k) * one expert."""
        _, expert, _ = self._parts(a, shapes)
        return (a["experts"] - a["top_k"]) * expert

    def macs(self, a, shapes, out):
        t, d, e, k, h, gated, hs = self._plan(a, shapes)
        shared = t * self._ffn(d, hs, gated, False)[1] + (t * d if a["shared_gate"] else 0) if hs else 0
        return t * d * e + t * k * self._ffn(d, h, gated, False)[1] + shared

    def saved_tensors(self, a, shapes, out):
        """What autograd keeps for MixtureOfExperts' forward (eager, training). However the router
        spreads the tokens, the experts together see the T*k routed slots, and every tensor an
        expert keeps is per slot, so the total is fixed: per slot the token index (torch.where's
        nonzero, an [n, 2] int64 storage: 2 per slot), the gathered token (D), the first
        projection's output (2h gated: act keeps the gate half, the product the up half; mlp: h,
        kept by silu/gelu as input or by relu as result), gated: the activation and the product (2h),
        mlp with silu/gelu: the activation (h), the routing weight (float32), the expert's output
        and the weighted output index_add_ keeps (2D). The router: x (the gate's input), the
        softmax in float32 (T*E) and top-k's indices (T*k int64); with renormalize the top-k
        values and their sum (float32). Shared experts: gated 4*T*hs (3 with relu), mlp 2*T*hs
        (1 with relu); their sigmoid gate T and the output it scales T*D."""
        t, d, e, k, h, gated, hs = self._plan(a, shapes)
        act = a["activation"] or ("silu" if gated else "relu")
        slots = t * k
        saved = [Saved("input (the router's and the shared experts' projections')", of="input", weights_only=True),
                 Saved("router softmax (float32)", elements=t * e, itemsize=4),
                 Saved("top-k indices (int64)", elements=t * k, itemsize=8)]
        if a["renormalize"]:
            saved += [Saved("top-k probabilities (float32)", elements=t * k, itemsize=4),
                      Saved("their sum (float32)", elements=t, itemsize=4)]
        saved += [Saved("token indices per expert (int64, nonzero's [n, 2])", elements=2 * slots, itemsize=8),
                  Saved("gathered tokens (the first projection's input)", elements=slots * d, weights_only=True)]
        if gated:
            saved += [Saved("experts' gate and up projections, activation", elements=slots * 3 * h),
                      Saved("experts' product (the down projection's input)", elements=slots * h, weights_only=True)]
        elif act == "relu":
            saved.append(Saved("experts' relu result", elements=slots * h))
        else:
            saved += [Saved("experts' activation input", elements=slots * h),
                      Saved("experts' activation (the down projection's input)", elements=slots * h, weights_only=True)]
        saved += [Saved("routing weights (float32)", elements=slots, itemsize=4),
                  Saved("experts' outputs and weighted outputs", elements=slots * 2 * d)]
        if hs:
            kept = (2 if act == "relu" else 3) if gated else 1  # the down projection's input apart
            saved.append(Saved("shared experts' projections and activation", elements=t * kept * hs))
            if gated or act != "relu":
                saved.append(Saved("shared experts' down projection's input", elements=t * hs, weights_only=True))
            if a["shared_gate"]:
                saved.append(Saved("shared gate's sigmoid and the shared output it scales", elements=t + t * d))
        return saved

    def mixed_dims(self, a, shapes):
        return (len(shapes[0]) - 1,)  # each position on its own, like linear

    def rf(self, a, rfs, shapes, out):
        return GLOBAL if rfs[0] is not None and len(shapes[0]) <= 2 else None

    def explain(self, a, shapes, out, rf_in, rf_out, row):
        from archcalc.layers import _explain as ex

        t, d, e, k, h, gated, hs = self._plan(a, shapes)
        p = ex.par
        mats = 3 if gated else 2
        form = "gated: gate, up, down" if gated else "mlp: up, down"
        where = f"T = {ex.val(t)} positions, D = {ex.val(d)}, E = {ex.val(e)} experts, k = {ex.val(k)}, h = {ex.val(h)}"
        # Parameters: router, E experts, shared experts.
        rf_, rs = ["D*E"], [f"{p(d)}*{p(e)}"]
        if a["router_bias"]:
            rf_, rs = rf_ + ["E"], rs + [p(e)]
        one_f, one_s = f"{mats}*D*h", f"{mats}*{p(d)}*{p(h)}"
        if a["bias"]:
            one_f += " + 2*h + D" if gated else " + h + D"
            one_s += f" + 2*{p(h)} + {p(d)}" if gated else f" + {p(h)} + {p(d)}"
        expert_f, expert_s = f"E*({one_f})", f"{p(e)}*({one_s})"
        active_f, active_s = f"k*({one_f})", f"{p(k)}*({one_s})"
        shared_f, shared_s = [], []
        if hs:
            sf, ss = f"{mats}*D*hs", f"{mats}*{p(d)}*{p(hs)}"
            if a["bias"]:
                sf += " + 2*hs + D" if gated else " + hs + D"
                ss += f" + 2*{p(hs)} + {p(d)}" if gated else f" + {p(hs)} + {p(d)}"
            shared_f, shared_s = ([f"({sf})"], [f"({ss})"]) if a["bias"] else ([sf], [ss])
            if a["shared_gate"]:
                shared_f, shared_s = shared_f + ["D"], shared_s + [p(d)]
        shared_note = (f"; shared experts of width hs = {ex.val(a['shared_experts'])}*{ex.par(a['shared_hidden'] or h)}"
                       f" = {ex.val(hs)}" + (", with a sigmoid gate D -> 1" if a["shared_gate"] else "")) if hs else ""
        params = Step("params", " + ".join(rf_ + [expert_f] + shared_f), " + ".join(rs + [expert_s] + shared_s),
                      row.params,
                      note=f"router, {ex.val(e)} experts ({form}" + (", with biases" if a["bias"] else "") + ")"
                           + shared_note)
        active = Step("active", " + ".join(rf_ + [active_f] + shared_f), " + ".join(rs + [active_s] + shared_s),
                      self.params(a, shapes)[0] - self.inactive_params(a, shapes),
                      note=f"active parameters per token: the router, the top_k = {ex.val(k)} experts a token is "
                           "sent to" + (" and the shared experts" if hs else ""))
        macs_f = [f"T*D*E", f"T*k*{mats}*D*h"]
        macs_s = [f"{p(t)}*{p(d)}*{p(e)}", f"{p(t)}*{p(k)}*{mats}*{p(d)}*{p(h)}"]
        if hs:
            macs_f.append(f"T*{mats}*D*hs")
            macs_s.append(f"{p(t)}*{mats}*{p(d)}*{p(hs)}")
            if a["shared_gate"]:
                macs_f.append("T*D")
                macs_s.append(f"{p(t)}*{p(d)}")
        macs = Step("macs", " + ".join(macs_f), " + ".join(macs_s), self.macs(a, shapes, out),
                    note="router, top_k experts per token (dropless routing)" + (", shared experts" if hs else "")
                         + "; softmax, top-k, weighting and scatter are not multiply-accumulates")
        steps = [ex.output_step("[..., D]", ex.shape_text(out), out, note=where), params, active, macs]
        rf = rf_in[0]
        if rf is None and len(shapes[0]) == 1:
            steps.append(ex.rf_untracked("no spatial axes"))
        elif rf is None or rf == "global":
            steps.append(ex.rf_inherited(rf))
        elif len(shapes[0]) <= 2:
            steps.append(ex.rf_global("mixes the only spatial axis: every output sees the whole input"))
        else:
            steps.append(ex.rf_untracked("mixes the last axis but not the others: not one window per axis"))
        return steps

    def torch_module(self, a, shapes):
        _, d, e, k, h, gated, hs = self._plan(a, shapes)
        act = a["activation"] or ("silu" if gated else "relu")
        return custom_module(SOURCE, "MixtureOfExperts", d, e, k, h, gated, act, a["bias"], a["router_bias"], a["renormalize"],
                             float(a["scale"]), hs, a["shared_gate"])

    def probe_module(self, a, shapes):
        # A linear, positive stand-in with the same dependence: every output feature of a position
        # reads every input feature of that position, nothing else (as linear).
        from torch import nn

        return nn.Linear(shapes[0][-1], shapes[0][-1], bias=False)
