"""window_attention: Swin's (shifted) window multi-head self-attention with a relative position
bias, as torchvision computes it (torchvision.models.swin_transformer.ShiftedWindowAttention and
its function shifted_window_attention), on a channels-last feature map [H, W, C].

Step by step, as torchvision writes it:
1. pad the bottom and right with zeros to Hp x Wp, the next multiples of the window Mh x Mw;
2. where the padded map is no larger than the window along an axis (Mh >= Hp, Mw >= Wp) the shift
   along that axis is dropped (torchvision: "no need to shift window"); with any shift left, roll
   the map by (-sh, -sw) (torch.roll, a cyclic shift);
3. partition into nW = (Hp/Mh)(Wp/Mw) windows of N = Mh*Mw tokens;
4. qkv = Linear(C, 3C) (with bias), split into `heads` heads of d = C/heads; q scaled by d^-1/2;
   scores q k^T per window and head;
5. add the relative position bias: a learned table of (2Mh-1)(2Mw-1) x heads entries, indexed by
   a non-floating buffer `relative_position_index` of N*N relative offsets;
6. where shifted, add the attention mask: tokens of the rolled windows that came from different
   regions of the map (h, w slices [0, -M), [-M, -s), [-s, end)) get -100 (not -inf);
7. softmax, attention dropout, weights x v, proj = Linear(C, C) (with bias), dropout;
8. merge the windows back, roll by (+sh, +sw), crop to H x W.

Padded tokens are computed like any other (their features are the qkv bias alone): MACs count
the padded map, as FlopCounterMode measures torchvision's module.
"""
from __future__ import annotations

from archcalc.errors import LayerError
from archcalc.geometry.window import ceil_div, channels_last, is_num
from archcalc.layers.base import Arg, Layer, Saved, Step, custom_module, register

SOURCE = '''
class ShiftedWindowAttention(nn.Module):
    """torchvision's ShiftedWindowAttention (shifted_window_attention inlined, line by line) on a
    channels-last [N, H, W, C]: pad to multiples of the window, drop the shift along an axis whose
    padded size is no larger than the window, roll, partition, qkv, q k^T * d^-1/2 + relative
    position bias (+ the -100 mask where shifted), softmax, x v, proj, merge, roll back, crop."""

    def __init__(self, dim, window_size, shift_size, num_heads, qkv_bias=True, proj_bias=True,
                 attention_dropout=0.0, dropout=0.0):
        super().__init__()
        self.window_size = list(window_size)
        self.shift_size = list(shift_size)
        self.num_heads = num_heads
        self.attention_dropout = attention_dropout
        self.dropout = dropout
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim, bias=proj_bias)
        mh, mw = self.window_size
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * mh - 1) * (2 * mw - 1), num_heads))
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
        coords = torch.stack(torch.meshgrid(torch.arange(mh), torch.arange(mw), indexing="ij"))  # 2, Mh, Mw
        coords_flatten = torch.flatten(coords, 1)  # 2, Mh*Mw
        relative_coords = coords_flatten[:, :, None] - coords_flatten[:, None, :]  # 2, N, N
        relative_coords = relative_coords.permute(1, 2, 0).contiguous()  # N, N, 2
        relative_coords[:, :, 0] += mh - 1  # shift to start from 0
        relative_coords[:, :, 1] += mw - 1
        relative_coords[:, :, 0] *= 2 * mw - 1
        self.register_buffer("relative_position_index", relative_coords.sum(-1).flatten())  # N*N, int64

    def forward(self, input):
        window_size, num_heads = self.window_size, self.num_heads
        n_tokens = window_size[0] * window_size[1]
        relative_position_bias = self.relative_position_bias_table[self.relative_position_index]
        relative_position_bias = relative_position_bias.view(n_tokens, n_tokens, -1)
        relative_position_bias = relative_position_bias.permute(2, 0, 1).contiguous().unsqueeze(0)

        B, H, W, C = input.shape
        # pad feature maps to multiples of window size
        pad_r = (window_size[1] - W % window_size[1]) % window_size[1]
        pad_b = (window_size[0] - H % window_size[0]) % window_size[0]
        x = F.pad(input, (0, 0, 0, pad_r, 0, pad_b))
        _, pad_H, pad_W, _ = x.shape

        shift_size = list(self.shift_size)
        # If window size is larger than feature size, there is no need to shift window
        if window_size[0] >= pad_H:
            shift_size[0] = 0
        if window_size[1] >= pad_W:
            shift_size[1] = 0

        # cyclic shift
        if sum(shift_size) > 0:
            x = torch.roll(x, shifts=(-shift_size[0], -shift_size[1]), dims=(1, 2))

        # partition windows
        num_windows = (pad_H // window_size[0]) * (pad_W // window_size[1])
        x = x.view(B, pad_H // window_size[0], window_size[0], pad_W // window_size[1], window_size[1], C)
        x = x.permute(0, 1, 3, 2, 4, 5).reshape(B * num_windows, window_size[0] * window_size[1], C)

        # multi-head attention
        qkv = F.linear(x, self.qkv.weight, self.qkv.bias)
        qkv = qkv.reshape(x.size(0), x.size(1), 3, num_heads, C // num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        q = q * (C // num_heads) ** -0.5
        attn = q.matmul(k.transpose(-2, -1))
        # add relative position bias
        attn = attn + relative_position_bias

        if sum(shift_size) > 0:
            # generate attention mask
            attn_mask = x.new_zeros((pad_H, pad_W))
            h_slices = ((0, -window_size[0]), (-window_size[0], -shift_size[0]), (-shift_size[0], None))
            w_slices = ((0, -window_size[1]), (-window_size[1], -shift_size[1]), (-shift_size[1], None))
            count = 0
            for h in h_slices:
                for w in w_slices:
                    attn_mask[h[0]:h[1], w[0]:w[1]] = count
                    count += 1
            attn_mask = attn_mask.view(pad_H // window_size[0], window_size[0], pad_W // window_size[1], window_size[1])
            attn_mask = attn_mask.permute(0, 2, 1, 3).reshape(num_windows, window_size[0] * window_size[1])
            attn_mask = attn_mask.unsqueeze(1) - attn_mask.unsqueeze(2)
            attn_mask = attn_mask.masked_fill(attn_mask != 0, float(-100.0)).masked_fill(attn_mask == 0, float(0.0))
            attn = attn.view(x.size(0) // num_windows, num_windows, num_heads, x.size(1), x.size(1))
            attn = attn + attn_mask.unsqueeze(1).unsqueeze(0)
            attn = attn.view(-1, num_heads, x.size(1), x.size(1))

        attn = F.softmax(attn, dim=-1)
        attn = F.dropout(attn, p=self.attention_dropout, training=self.training)

        x = attn.matmul(v).transpose(1, 2).reshape(x.size(0), x.size(1), C)
        x = F.linear(x, self.proj.weight, self.proj.bias)
        x = F.dropout(x, p=self.dropout, training=self.training)

        # reverse windows
        x = x.view(B, pad_H // window_size[0], pad_W // window_size[1], window_size[0], window_size[1], C)
        x = x.permute(0, 1, 3, 2, 4, 5).reshape(B, pad_H, pad_W, C)

        # reverse cyclic shift
        if sum(shift_size) > 0:
            x = torch.roll(x, shifts=(shift_size[0], shift_size[1]), dims=(1, 2))

        # unpad features
        return x[:, :H, :W, :].contiguous()

    def extra_repr(self):
        return f"window_size={self.window_size}, shift_size={self.shift_size}, num_heads={self.num_heads}"
'''

PROBE_SOURCE = '''
class WindowSum(nn.Module):
    """The receptive-field probe's stand-in: the same padding, shift (dropped where torchvision
    drops it) and windows, each output the sum of its whole window (every token, every channel):
    linear, positive, and reading exactly the positions the attention reads."""

    def __init__(self, window_size, shift_size):
        super().__init__()
        self.window_size, self.shift_size = list(window_size), list(shift_size)

    def forward(self, x):
        B, H, W, C = x.shape
        mh, mw = self.window_size
        x = F.pad(x, (0, 0, 0, (mw - W % mw) % mw, 0, (mh - H % mh) % mh))
        _, ph, pw, _ = x.shape
        sh, sw = [0 if m >= p else s for m, p, s in zip(self.window_size, (ph, pw), self.shift_size)]
        if sh + sw > 0:
            x = torch.roll(x, shifts=(-sh, -sw), dims=(1, 2))
        x = x.view(B, ph // mh, mh, pw // mw, mw, C).sum((2, 4, 5), keepdim=True)
        x = x.expand(B, ph // mh, mh, pw // mw, mw, C).reshape(B, ph, pw, C)
        if sh + sw > 0:
            x = torch.roll(x, shifts=(sh, sw), dims=(1, 2))
        return x[:, :H, :W, :]
'''


def padded(n, m):
    """n rounded up to a multiple of m (torchvision's pad to whole windows)."""
    return ceil_div(n, m) * m


def _no_larger(window, size):
    """Is the padded size no larger than the window (torchvision's `window_size >= pad_H`)? None
    where symbolic sizes leave it undecided."""
    try:
        return bool(window >= size)
    except TypeError:
        return None


@register
class WindowAttention(Layer):
    kind = "window_attention"
    primary = "heads"
    moves_axes = True  # reads channels-last [H, W, C]: fields arrive with their spatial axes at dims 0, 1
    summary = ("Swin's (shifted) window self-attention with relative position bias on channels-last [H, W, C] "
               "(torchvision ShiftedWindowAttention)")
    args = (
        Arg("heads", "int", min=1, doc="attention heads; they divide C"),
        Arg("window", "ints", min=1, doc="window size M (or [Mh, Mw]); the map is padded to whole windows"),
        Arg("shift", "ints", 0, min=0,
            doc="cyclic shift s (or [sh, sw]), 0 <= s < M (Swin: M // 2 in every second block); dropped along an "
                "axis whose padded size is no larger than the window, as torchvision does"),
        Arg("qkv_bias", "bool", True, doc="bias of the qkv projection"),
        Arg("proj_bias", "bool", True, doc="bias of the output projection"),
        Arg("attention_dropout", "float", 0.0, min=0, max=1, doc="dropout on the attention weights while training"),
        Arg("dropout", "float", 0.0, min=0, max=1, doc="dropout on the output while training"),
    )
    formulas = {
        "output": "[H, W, C] (channels-last, as torchvision's Swin)",
        "params": "3*C*C + 3*C (qkv) + C*C + C (proj) + (2*Mh - 1)*(2*Mw - 1)*heads (relative position bias "
                  "table); biases only where switched on; relative_position_index is an int64 buffer, not counted",
        "macs": "Hp*Wp*4*C*C (qkv and proj) + 2*Hp*Wp*Mh*Mw*C (q k^T and weights x v in every window), "
                "Hp = ceil(H/Mh)*Mh, Wp = ceil(W/Mw)*Mw: the padded map, as FlopCounterMode counts it; the "
                "bias and mask additions and the softmax are not MACs",
        "rf": "without a shift (none given, or dropped): exact, output o reads its whole window, inputs "
              "floor(o/M)*M .. floor(o/M)*M + M - 1 (periodic: size M*j, jump j); with a shift: not tracked "
              "(position-dependent: the rolled edge windows hold both borders, masked by -100, not -inf)",
        "saved": "5*Hp*Wp*C (the windows, q scaled, k^T, v, the heads' output: copies) + heads*Hp*Wp*Mh*Mw (the "
                 "softmax per window) (+ 2*heads*Hp*Wp*Mh*Mw with attention_dropout, + Hp*Wp*C with dropout: masks "
                 "and dropped weights); the int64 bias index is a buffer, not counted",
    }

    def _sizes(self, a, shapes):
        """(H, W, C, (Mh, Mw), (sh, sw) as given), checked as torchvision's code needs them."""
        h, w, c = channels_last(self.kind, shapes[0])
        window = self.per_axis(a["window"], 2, "window")
        shift = self.per_axis(a["shift"], 2, "shift")
        for s, m in zip(shift, window):
            if s >= m:
                raise LayerError(f"shift {list(shift)} must be smaller than the window {list(window)} on each axis "
                                 "(torchvision's mask slices assume 0 <= shift < window; Swin uses window // 2)",
                                 "shift")
        if is_num(c) and c % a["heads"]:
            raise LayerError(f"the channels C = {c} are not divisible by heads {a['heads']}", "heads")
        return h, w, c, window, shift

    def effective_shift(self, a, shapes) -> tuple:
        """The shift torchvision applies: dropped along an axis whose padded size is no larger than
        the window (None along an axis where symbolic sizes leave that undecided)."""
        h, w, _, window, shift = self._sizes(a, shapes)
        out = []
        for n, m, s in zip((h, w), window, shift):
            drop = True if s == 0 else _no_larger(m, padded(n, m))
            out.append(0 if drop else s if drop is False else None)  # None: undecided (symbolic sizes)
        return tuple(out)

    def output_shape(self, a, shapes):
        self._sizes(a, shapes)
        return shapes[0]

    def params(self, a, shapes):
        _, _, c, (mh, mw), _ = self._sizes(a, shapes)
        return (3 * c * c + (3 * c if a["qkv_bias"] else 0) + c * c + (c if a["proj_bias"] else 0)
                + (2 * mh - 1) * (2 * mw - 1) * a["heads"]), 0

    def macs(self, a, shapes, out):
        h, w, c, (mh, mw), _ = self._sizes(a, shapes)
        hp, wp = padded(h, mh), padded(w, mw)
        return hp * wp * 4 * c * c + 2 * hp * wp * mh * mw * c

    def saved_tensors(self, a, shapes, out):
        """What autograd keeps for torchvision's shifted_window_attention (eager, CPU, training),
        Hp*Wp padded tokens of C channels, N = Mh*Mw tokens per window: the windows (the
        permute + reshape before qkv copies them), q * d^-1/2 and k^T, each copied for the
        batched matmul, the softmax per window and head (heads*Hp*Wp*N), v copied, the heads'
        output [N, C] per window (a copy, proj's input); attention_dropout adds its float mask and
        the dropped weights, dropout its mask. The -100 shift mask and the bias are added (kept by
        nothing); the bias table's int64 index is a buffer (model state, not counted)."""
        h, w, c, (mh, mw), _ = self._sizes(a, shapes)
        tokens, n, heads = padded(h, mh) * padded(w, mw), mh * mw, a["heads"]
        # With one head, k^T and v fold into the batched matmul as views of qkv's whole output
        # [N, 3C] (kept whole, 3*Hp*Wp*C), not as copies.
        one_head = heads == 1
        # So too with one window in all (a batch of 1, tokens == n): k^T is a view of qkv's output,
        # kept whole, and v a view of the same (measured).
        one = {"batch1": 3 * tokens * c} if is_num(tokens) and tokens == n else {}
        saved = [Saved("windows [N, C] (qkv's input, a copy)", elements=tokens * c, weights_only=True),
                 Saved("q * d^-1/2 (a copy)", elements=tokens * c),
                 Saved("qkv's output (k^T and v are views of it)", elements=3 * tokens * c) if one_head
                 else Saved("k^T (a copy)", elements=tokens * c, **one),
                 Saved("attention weights (softmax)", elements=heads * tokens * n)]
        if a["attention_dropout"] > 0:
            saved += [Saved("attention dropout's mask (float)", elements=heads * tokens * n),
                      Saved("dropped weights", elements=heads * tokens * n)]
        if not one_head:
            saved.append(Saved("v (a copy)", elements=tokens * c, **({"batch1": "view"} if one else {})))
        saved.append(Saved("heads' output [N, C] (proj's input, a copy)", elements=tokens * c, weights_only=True))
        if a["dropout"] > 0:
            saved.append(Saved("dropout's mask (float)", elements=tokens * c))
        return saved

    def rf(self, a, rfs, shapes, out):
        from archcalc.geometry.receptive_field import Reads
        from archcalc.geometry.window import channels_last_rf

        def step(field):
            if any(s != 0 for s in self.effective_shift(a, shapes)):
                return None  # position-dependent (see `formulas`)
            _, _, _, window, _ = self._sizes(a, shapes)
            return field.map([Reads(lambda o, m=m: ((o // m) * m, 1, m), m, m, m - 1) for m in window])

        return channels_last_rf(rfs[0], step)

    def explain(self, a, shapes, out, rf_in, rf_out, row):
        from archcalc.layers import _explain as ex

        h, w, c, (mh, mw), shift = self._sizes(a, shapes)
        heads = a["heads"]
        hp, wp = padded(h, mh), padded(w, mw)
        p = ex.par
        effective = self.effective_shift(a, shapes)
        dropped = [axis for axis, (s, e) in zip("HW", zip(shift, effective)) if e is not None and s != e]
        shown = [s if e is None else e for s, e in zip(shift, effective)]
        note = (f"H = {ex.val(h)}, W = {ex.val(w)} padded to Hp = {ex.val(hp)}, Wp = {ex.val(wp)} (whole windows "
                f"of {ex.val(mh)} x {ex.val(mw)}); {heads} heads of d = C/heads; shift {shown}"
                + (f" (dropped along {', '.join(dropped)}: the padded map is no larger than the window there)"
                   if dropped else "")
                + ("; dropped along an axis whose padded size is no larger than the window, undecided for "
                   "symbolic sizes" if None in effective else ""))
        terms, values = ["3*C*C", "C*C"], [f"3*{p(c)}*{p(c)}", f"{p(c)}*{p(c)}"]
        if a["qkv_bias"]:
            terms.append("3*C")
            values.append(f"3*{p(c)}")
        if a["proj_bias"]:
            terms.append("C")
            values.append(p(c))
        terms.append("(2*Mh - 1)*(2*Mw - 1)*heads")
        values.append(f"(2*{p(mh)} - 1)*(2*{p(mw)} - 1)*{heads}")
        steps = [
            ex.output_step("[H, W, C]", ex.shape_text(out), out, note=note),
            Step("params", " + ".join(terms), " + ".join(values), self.params(a, shapes)[0],
                 note="qkv and proj weights (and biases where on), the learned relative position bias table; the "
                      "int64 relative_position_index buffer is not counted"),
            Step("macs", "Hp*Wp*4*C*C + 2*Hp*Wp*Mh*Mw*C",
                 f"{p(hp)}*{p(wp)}*4*{p(c)}*{p(c)} + 2*{p(hp)}*{p(wp)}*{p(mh)}*{p(mw)}*{p(c)}",
                 self.macs(a, shapes, out),
                 note="qkv and proj on every padded token; q k^T and weights x v in each window (N = Mh*Mw tokens); "
                      "bias and mask additions are not MACs"),
        ]
        inherited = ex.rf_inherited(rf_in[0])
        if inherited:
            return steps + [inherited]
        if None in effective:
            return steps + [ex.rf_untracked("symbolic sizes leave torchvision's rule undecided (the shift is dropped "
                                            "along an axis whose padded size is no larger than the window); give "
                                            "the sizes numbers")]
        if any(s != 0 for s in effective):
            return steps + [ex.rf_untracked(
                "position-dependent: the roll brings the last rows/columns to the front, so each edge window holds "
                "pixels of both borders, and torchvision's mask adds -100 (not -inf) between them: those keys keep a "
                "weight of about e^-100, so edge outputs see both borders while inner ones see their own window")]
        if rf_out is None:
            return steps + [ex.rf_untracked("the input's spatial axes are not at [H, W, C] (dims 0 and 1)")]
        jumps = [("j", "", rf_out.stride[i]) for i in range(2)]
        return steps + ex.rf_exact(rf_in[0], rf_out, "output o reads its whole window, inputs floor(o/M)*M .. "
                                   "floor(o/M)*M + M - 1 (padding beyond the map reads nothing)", jumps)

    def torch_module(self, a, shapes):
        _, _, c, window, shift = self._sizes(a, shapes)
        return custom_module(SOURCE, "ShiftedWindowAttention", c, tuple(window), tuple(shift), a["heads"],
                             a["qkv_bias"], a["proj_bias"], a["attention_dropout"], a["dropout"])

    def probe_args(self, a):
        return {**a, "heads": 1}  # the probe has one channel (or a few after patch merging)

    def probe_module(self, a, shapes):
        from archcalc.layers.base import torch_class

        _, _, _, window, shift = self._sizes(a, shapes)
        return torch_class(PROBE_SOURCE, "WindowSum")(tuple(window), tuple(shift))
