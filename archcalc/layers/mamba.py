"""mamba: Mamba's mixer (Gu & Dao, 2023) on a sequence [T, D], with the selective scan, as Hugging
Face's MambaMixer computes it without CUDA kernels (transformers' `mamba_selective_scan` and
`causal_conv1d_fn` fallbacks, the path it takes on a CPU).

With E = expand*D inner features, N = d_state, K = d_conv and R = dt_rank (`auto`: ceil(D/16)):

    x, z   = split(in_proj(h))                       D -> 2E (bias: `bias`)
    x      = SiLU(causal depthwise conv1d(x))        kernel K, padding K-1 on both sides, the
                                                     first T outputs kept (bias: `conv_bias`)
    dt, B, C = split(x_proj(x))                      E -> R + 2N, no bias
    dt     = softplus(dt_proj(dt))                   R -> E, with bias
    A      = -exp(A_log)                             [E, N], learned
    s_t    = exp(dt_t A) * s_{t-1} + (dt_t B_t) x_t  the selective scan, s_0 = 0, s_t: [E, N]
    y_t    = s_t C_t + D * x_t                       D: [E], learned (the skip)
    out    = out_proj(y * SiLU(z))                   E -> D (bias: `bias`)

MACs follow the house convention (docs/spec.md, MACs and FLOPs): the multiply-accumulates of the
matrix products and convolutions, exactly what PyTorch's FlopCounterMode measures on Hugging
Face's path and on this module. That is the four projections, the depthwise convolution at the
T + K - 1 positions nn.Conv1d computes with its symmetric padding (the last K - 1 are dropped
afterwards), and the scan's read-out s_t C_t (a batched matmul: T*E*N). The scan's elementwise
work is not counted, as activations and elementwise products are not anywhere else:
4*T*E*N multiplies (dt*A before the exp, dt*B, times x, the decay times the state) and T*E*N
adds for the state, and 2*T*E multiplies for the skip D*x and the SiLU(z) gate; `explain` states
them beside the figure.
"""
from __future__ import annotations

from archcalc.errors import LayerError
from archcalc.geometry.window import ceil_div, is_num
from archcalc.layers.base import Arg, Layer, Saved, Step, custom_module, register

SOURCE = '''
def selective_scan(decay, drive):
    """s_t = decay_t * s_{t-1} + drive_t along dim 1 with s_{-1} = 0, for every t: [N, T, E, N].
    The recurrence of Hugging Face's loop (ssm_state = discrete_A * ssm_state + deltaB_u), one
    fused multiply-add per step (torch.addcmul)."""
    state = torch.zeros_like(drive[:, 0])
    states = []
    for a, b in zip(decay.unbind(1), drive.unbind(1)):
        state = torch.addcmul(b, a, state)
        states.append(state)
    return torch.stack(states, dim=1)


class Mamba(nn.Module):
    """Mamba's mixer on [N, T, D] as Hugging Face's MambaMixer computes it on its PyTorch path:
    in_proj, a causal depthwise conv1d, SiLU, x_proj into (dt, B, C), dt_proj and softplus, the
    selective scan with A = -exp(A_log) and the skip D, the SiLU(z) gate and out_proj. The
    parameters carry Hugging Face's names and are registered in its order."""

    def __init__(self, dim, d_state, d_conv, expand, dt_rank, bias, conv_bias):
        super().__init__()
        inner = expand * dim
        self.inner, self.d_state, self.dt_rank = inner, d_state, dt_rank
        self.conv1d = nn.Conv1d(inner, inner, d_conv, groups=inner, padding=d_conv - 1, bias=conv_bias)
        self.in_proj = nn.Linear(dim, 2 * inner, bias=bias)
        self.x_proj = nn.Linear(inner, dt_rank + 2 * d_state, bias=False)
        self.dt_proj = nn.Linear(dt_rank, inner, bias=True)
        # S4D-real initialisation (A = -(1..N) in every row) and D = 1, as Hugging Face and mamba_ssm;
        # dt_proj's bias is softplus^-1 of time steps log-uniform in [1e-3, 1e-1].
        a = torch.arange(1, d_state + 1, dtype=torch.float32)
        self.A_log = nn.Parameter(torch.log(a).repeat(inner, 1))
        self.D = nn.Parameter(torch.ones(inner))
        self.out_proj = nn.Linear(inner, dim, bias=bias)
        with torch.no_grad():
            std = dt_rank ** -0.5
            self.dt_proj.weight.uniform_(-std, std)
            dt = torch.exp(torch.rand(inner) * (math.log(0.1) - math.log(1e-3)) + math.log(1e-3))
            dt = dt.clamp(min=1e-4)
            self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))

    def forward(self, hidden):
        n, t, _ = hidden.shape
        xz = self.in_proj(hidden).transpose(1, 2)  # [N, 2E, T]
        x, z = xz.chunk(2, dim=1)
        x = F.silu(self.conv1d(x)[..., :t])  # causal: the first T of the T + K - 1 positions
        time_step, B, C = torch.split(self.x_proj(x.transpose(1, 2)),
                                      [self.dt_rank, self.d_state, self.d_state], dim=-1)  # [N, T, *]
        # The scan in float32 (or wider) whatever the weights' dtype, as Hugging Face's: its bias added
        # to dt in float32, the state kept in float32, the read-out in the input's dtype.
        dtype = hidden.dtype
        wide = torch.promote_types(dtype, torch.float32)
        dt = F.softplus(F.linear(time_step, self.dt_proj.weight) + self.dt_proj.bias.to(wide))  # [N, T, E]
        A = -torch.exp(self.A_log.to(wide))  # [E, N]
        u = x.transpose(1, 2)  # [N, T, E]
        decay = torch.exp(A * dt[..., None])  # [N, T, E, N]
        drive = dt[..., None] * B[:, :, None, :].to(wide) * u[..., None].to(wide)  # (dt B) x: [N, T, E, N]
        states = selective_scan(decay, drive)  # s_t = exp(dt A) s_{t-1} + dt B x, for every t: [N, T, E, N]
        y = torch.matmul(states.to(dtype), C[..., None]).squeeze(-1)  # s_t C_t: [N, T, E]
        y = (y + u * self.D.to(wide)) * F.silu(z.transpose(1, 2))
        return self.out_proj(y.to(dtype))
        return self.out_proj(y)
'''


def _num(x) -> str:
    """A figure in a note: 25,165,824 (a symbolic one as it is)."""
    from archcalc.layers import _explain as ex

    return f"{x:,}" if isinstance(x, int) else ex.val(x)


@register
class Mamba(Layer):
    kind = "mamba"
    sequence = True
    summary = ("Mamba's selective state-space mixer on [T, D] (Hugging Face's MambaMixer): in_proj, causal "
               "depthwise conv1d, x_proj, dt_proj, A_log, D, the selective scan, SiLU gate, out_proj")
    args = (
        Arg("d_state", "int", 16, min=1, doc="N: the state size per inner feature (MambaConfig.state_size)"),
        Arg("d_conv", "int", 4, min=1, doc="K: the causal depthwise convolution's kernel (conv_kernel)"),
        Arg("expand", "int", 2, min=1, doc="E = expand*D inner features (intermediate_size)"),
        Arg("dt_rank", "int", "auto", min=1, choices=("auto",),
            doc="R: the time-step projection's rank; `auto` is ceil(D/16), Hugging Face's and mamba_ssm's default"),
        Arg("bias", "bool", False, doc="biases of in_proj and out_proj (MambaConfig.use_bias)"),
        Arg("conv_bias", "bool", True, doc="bias of the convolution (use_conv_bias)"),
    )
    formulas = {
        "output": "[T, D]",
        "params": "D*2E (in_proj) + E*K (conv) + E*(R + 2N) (x_proj) + R*E + E (dt_proj, with bias) + E*N (A_log) "
                  "+ E (D) + E*D (out_proj) (+ 2E + D with bias, + E with conv_bias); E = expand*D, N = d_state, "
                  "K = d_conv, R = dt_rank (auto: ceil(D/16))",
        "macs": "T*D*2E + (T + K - 1)*E*K + T*E*(R + 2N) + T*R*E + T*E*N + T*E*D: the projections, the depthwise "
                "conv at the T + K - 1 positions nn.Conv1d computes before the causal trim, and the scan's "
                "read-out s_t C_t (what FlopCounterMode measures on Hugging Face's path); the scan's elementwise "
                "4*T*E*N multiplies (dt*A, dt*B, x, decay*state), the skip and the gate (2*T*E) are not counted",
        "rf": "not tracked (output t sees positions 0..t: a causal window that grows with t)",
        "kv_cache": "E*K + E*N: the convolution state (the last K inputs, as Hugging Face's cache holds them) and "
                    "the scan state",
        "saved": "T*D (the input) + 9*T*E (in_proj's output 2TE, SiLU(conv), x_proj's input copied, dt before and "
                 "after softplus, SiLU(z), y + D u, the gated y) + E*(T + K - 1) (the conv's output) + T*(R + 2N) "
                 "(x_proj's output) + 4*T*E*N (the decay, dt*B, each step's incoming state, the stacked states) + "
                 "2*E*N not per example (exp(A_log), A); a batch of 1 keeps one T*E less (x_proj's input is a view)",
    }

    def _sizes(self, a, shapes):
        """(T, D, E, N, K, R), checked."""
        shape = shapes[0]
        if len(shape) != 2:
            raise LayerError(f"mamba needs a sequence shaped [T, D] (tokens, features), got {list(shape)}")
        t, d = shape
        rank = a["dt_rank"]
        if rank == "auto":
            rank = ceil_div(d, 16)
        return t, d, a["expand"] * d, a["d_state"], a["d_conv"], rank

    def output_shape(self, a, shapes):
        self._sizes(a, shapes)
        return shapes[0]

    def params(self, a, shapes):
        _, d, e, n, k, r = self._sizes(a, shapes)
        weights = d * 2 * e + e * k + e * (r + 2 * n) + r * e + e + e * n + e + e * d
        return weights + (2 * e + d if a["bias"] else 0) + (e if a["conv_bias"] else 0), 0

    def macs(self, a, shapes, out):
        t, d, e, n, k, r = self._sizes(a, shapes)
        return t * d * 2 * e + (t + k - 1) * e * k + t * e * (r + 2 * n) + t * r * e + t * e * n + t * e * d

    def rf(self, a, rfs, shapes, out):
        return None  # output t sees positions 0..t (as rnn, lstm, gru and causal attention: not tracked)

    def saved_tensors(self, a, shapes, out):
        """What autograd keeps for this module (eager, CPU, training, batch of 2 or more; the tests
        measure it with saved_tensors_hooks)."""
        t, _, e, n, k, r = self._sizes(a, shapes)
        # x.transpose(1, 2) of [N, E, T] is no view of [N*T, E]: nn.Linear's reshape copies it
        # (for one token, or a batch of 1, it is a view: one [T, E] less)
        copied = 0 if is_num(t) and t == 1 else t * e
        return [
            Saved("input (in_proj's)", of="input", weights_only=True),
            Saved("in_proj's output x, z (the conv reads x, SiLU z)", elements=2 * t * e),
            Saved("conv's output, T + K - 1 positions (SiLU's input)", elements=e * (t + k - 1)),
            Saved("SiLU(conv) (u: the drive and the skip)", elements=t * e),
            Saved("x_proj's input, a copy [T, E]", elements=copied, weights_only=True, batch1="view"),
            Saved("x_proj's output dt, B, C", elements=t * (r + 2 * n)),
            Saved("dt_proj(dt) + bias (softplus's input)", elements=t * e),
            Saved("dt = softplus(...)", elements=t * e),
            Saved("exp(A_log) (for A_log's gradient)", elements=e * n, per_batch=True, weights_only=True),
            Saved("A = -exp(A_log)", elements=e * n, per_batch=True),
            Saved("decay exp(A dt) (exp's result, addcmul's factor)", elements=t * e * n),
            Saved("dt * B (times u)", elements=t * e * n),
            Saved("the state before each step (s_0 = 0 .. s_(T-1), addcmul's other factor)", elements=t * e * n),
            Saved("the stacked states (the read-out's matmul)", elements=t * e * n),
            Saved("SiLU(z)", elements=t * e),
            Saved("y + D u (times SiLU(z))", elements=t * e),
            Saved("the gated y (out_proj's input)", elements=t * e, weights_only=True),
        ]

    cache_is_state = True  # `archcalc memory` says "recurrent state", not K/V

    def kv_cache(self, a, shapes, out):
        _, _, e, n, k, _ = self._sizes(a, shapes)
        return e * k + e * n

    def explain(self, a, shapes, out, rf_in, rf_out, row):
        from archcalc.layers import _explain as ex

        t, d, e, n, k, r = self._sizes(a, shapes)
        p = ex.par
        rank = "ceil(D/16), auto" if a["dt_rank"] == "auto" else "dt_rank"
        where = (f"T = {ex.val(t)}, D = {ex.val(d)}, E = expand*D = {ex.val(e)}, N = {ex.val(n)}, "
                 f"K = {ex.val(k)}, R = {ex.val(r)} ({rank})")
        formula = ["D*2*E", "E*K", "E*(R + 2*N)", "R*E + E", "E*N", "E", "E*D"]
        values = [f"{p(d)}*2*{p(e)}", f"{p(e)}*{p(k)}", f"{p(e)}*({p(r)} + 2*{p(n)})", f"{p(r)}*{p(e)} + {p(e)}",
                  f"{p(e)}*{p(n)}", p(e), f"{p(e)}*{p(d)}"]
        parts = "in_proj, conv, x_proj, dt_proj (with bias), A_log, D, out_proj"
        if a["bias"]:
            formula.append("2*E + D")
            values.append(f"2*{p(e)} + {p(d)}")
            parts += "; biases of in_proj and out_proj"
        if a["conv_bias"]:
            formula.append("E")
            values.append(p(e))
            parts += "; the convolution's bias"
        params = Step("params", " + ".join(formula), " + ".join(values), self.params(a, shapes)[0], note=parts)
        macs = Step("macs", "T*D*2*E + (T + K - 1)*E*K + T*E*(R + 2*N) + T*R*E + T*E*N + T*E*D",
                    f"{p(t)}*{p(d)}*2*{p(e)} + ({ex.val(t)} + {p(k)} - 1)*{p(e)}*{p(k)} + "
                    f"{p(t)}*{p(e)}*({p(r)} + 2*{p(n)}) + {p(t)}*{p(r)}*{p(e)} + {p(t)}*{p(e)}*{p(n)} + "
                    f"{p(t)}*{p(e)}*{p(d)}", self.macs(a, shapes, out),
                    note="in_proj, the depthwise conv at the T + K - 1 positions nn.Conv1d computes (then trimmed "
                         "to T), x_proj, dt_proj, the scan's read-out s_t C_t, out_proj: what FlopCounterMode "
                         f"measures; not counted: the scan's elementwise 4*T*E*N = {_num(4 * t * e * n)} "
                         f"multiplies and T*E*N adds, the skip and the gate's 2*T*E = {_num(2 * t * e)}")
        return [ex.output_step("[T, D]", ex.shape_text(out), out, note=where), params, macs,
                ex.rf_untracked("output t sees positions 0..t: a causal window that grows with t")]

    def torch_module(self, a, shapes):
        _, d, _, n, k, r = self._sizes(a, shapes)
        return custom_module(SOURCE, "Mamba", d, n, k, a["expand"], r, a["bias"], a["conv_bias"])
