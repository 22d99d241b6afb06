"""rnn, lstm, gru: recurrent layers over a sequence [T, F] (nn.RNN, nn.LSTM, nn.GRU with
batch_first=True), giving the whole output sequence [T, D*H] (not the final state h_n).

Counts follow PyTorch: per layer and direction G*H*(in + h) weights (G gates: 1, 4, 3) and two
bias vectors b_ih, b_hh of G*H each; layer 1 reads F features, later layers D*h; with LSTM's
proj_size P, h is P wide and each layer and direction adds an H*P projection. MACs are the matmuls'
multiply-accumulates at every step; gate products, nonlinearities and biases count 0.
"""
from __future__ import annotations

from archcalc.errors import LayerError
from archcalc.geometry.window import is_num
from archcalc.layers.base import Arg, Layer, Saved, Step, custom_module, register

# One wrapper class per kind: nn.RNN/LSTM/GRU return (output, h_n); the graph needs the output
# alone, and the wrapper must hold the recurrent module so its parameters are counted.
_SOURCE = '''
class {name}(nn.Module):
    """nn.{cls} over [N, T, F] (batch_first), returning only the output sequence [N, T, D*H]."""

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, dropout=0.0,
                 bidirectional=False{extra}):
        super().__init__()
        self.rnn = nn.{cls}(
            input_size, hidden_size, num_layers, bias=bias, batch_first=True, dropout=dropout,
            bidirectional=bidirectional{extra_pass})

    def forward(self, x):
        return self.rnn(x)[0]
'''

_COMMON = (
    Arg("hidden", "int", min=1, doc="hidden size H (features of h per direction)"),
    Arg("layers", "int", 1, min=1, doc="stacked recurrent layers (num_layers)"),
    Arg("bidirectional", "bool", False, doc="also run backwards; the output is 2H wide"),
    Arg("bias", "bool", True, doc="the two bias vectors b_ih and b_hh"),
    Arg("dropout", "float", 0.0, min=0, max=1, doc="dropout between stacked layers (training only)"),
)


def _product(text: str) -> bool:
    """No + at the top level: the text reads as one factor."""
    depth = 0
    for ch in text:
        depth += (ch == "(") - (ch == ")")
        if depth == 0 and ch == "+":
            return False
    return True


def _sequence(shape, kind) -> tuple:
    if len(shape) != 2:
        raise LayerError(f"{kind} needs a sequence shaped [T, F] (time steps, features), got {list(shape)}")
    return tuple(shape)


class Recurrent(Layer):
    sequence = True
    gates: int = 1
    torch_name = ""
    own = None  # the kind's own constructor argument: (name, PyTorch's default as source)
    primary = "hidden"

    # --- the counts, shared by the rules and explain so that both give the same value ---------
    def _width(self, a):
        """Width of h: proj_size when an LSTM projects, else hidden."""
        return a.get("proj_size", 0) or a["hidden"]

    def _count(self, a, f, bias: bool, steps=1):
        """steps * D * (first layer + (L-1) later layers): each G*H*(in + h) (+ 2*G*H biases)
        (+ H*P projection)."""
        g, hid, p, d, n = self.gates, a["hidden"], a.get("proj_size", 0), self._dirs(a), a["layers"]
        w = p or hid

        def one(nin):
            return g * hid * (nin + w) + (2 * g * hid if bias else 0) + hid * p

        return steps * d * (one(f) + (n - 1) * one(d * w))

    @staticmethod
    def _dirs(a):
        return 2 if a["bidirectional"] else 1

    def _check(self, a, shapes):
        t, f = _sequence(shapes[0], self.kind)
        p = a.get("proj_size", 0)
        if p and p >= a["hidden"]:
            raise LayerError(f"proj_size {p} must be smaller than hidden {a['hidden']} (PyTorch's rule)",
                             "proj_size")
        return t, f

    # --- rules --------------------------------------------------------------------------------
    def output_shape(self, a, shapes):
        t, _ = self._check(a, shapes)
        return (t, self._dirs(a) * self._width(a))

    def params(self, a, shapes):
        _, f = self._check(a, shapes)
        return self._count(a, f, a["bias"]), 0

    def macs(self, a, shapes, out):
        t, f = self._check(a, shapes)
        return self._count(a, f, False, t)

    def rf(self, a, rfs, shapes, out):
        return None  # output t sees steps 0..t (all, bidirectional): no single window per axis

    def output_strides(self, a, shapes, batch):
        # batch_first: the result is computed time-major [T, N, D*h] and returned transposed, so
        # [N, T, D*h] has strides (D*h, N*D*h, 1) (measured; contiguous for a batch of 1): a later
        # relu keeps that order and a linear after it keeps a copy.
        t, w = self.output_shape(a, shapes)
        return (w, batch * w, 1)

    # --- what autograd keeps (eager PyTorch, CPU, float32, training, a batch of 2 or more) -----
    def _step_elements(self, t, hid, p):
        """Elements one layer and direction keeps over T steps on PyTorch's own cell path
        (aten/src/ATen/native/RNN.cpp: the input-to-hidden products of all steps are one matmul,
        then a cell per step), as (kept for the input's gradient, kept only for the weights': the
        hidden-to-hidden matmuls' h_(t-1), the projection's input). Kinds override."""
        raise NotImplementedError

    def saved_tensors(self, a, shapes, out):
        """PyTorch's own cell path (rnn, gru, lstm with proj_size): the zero initial state(s), one
        storage for all layers and directions; layer 1's input made time-major, copied by the
        batched input-to-hidden matmul of each direction; per layer and direction what the cells
        keep (`_step_elements`); each later layer's input, the layer before's output [T, D*h]
        (with dropout between layers also its float mask: the input is the dropped output).
        LSTM without projection runs as oneDNN's LSTM (`_onednn_saved`)."""
        t, f = self._check(a, shapes)
        hid, p, dirs, layers = a["hidden"], a.get("proj_size", 0), self._dirs(a), a["layers"]
        w = p or hid
        dropout = a["dropout"] > 0 and layers > 1
        if self.kind == "lstm" and not p:
            return self._onednn_saved(t, f, hid, dirs, layers, dropout, a["bias"])
        # h0 and every input (layer 1's, the later layers') are kept by matmuls, for the weights only
        saved = [Saved("h0 (zeros, all layers and directions)", elements=layers * dirs * w, weights_only=True)]
        if self.kind == "lstm":
            saved.append(Saved("c0 (zeros, all layers and directions)", elements=layers * dirs * hid))
        saved.append(_first_input(t, f, dirs))
        kept, for_weights = self._step_elements(t, hid, p)
        saved += [Saved("each step's gates, states and activations", elements=layers * dirs * kept),
                  Saved("each step's h for the next step's and the projection's matmuls",
                        elements=layers * dirs * for_weights, weights_only=True)]
        if layers > 1:
            saved.append(Saved("later layers' inputs [T, D*h]", elements=(layers - 1) * t * dirs * w, weights_only=True))
            if dropout:
                saved.append(Saved("dropout masks between layers (float)", elements=(layers - 1) * t * dirs * w))
        return saved

    def _onednn_saved(self, t, f, hid, dirs, layers, dropout, bias=True) -> list:
        """nn.LSTM (no projection) on CPU in float32 runs as oneDNN's LSTM, one mkldnn_rnn_layer per
        layer and direction: h0 and c0 (zeros), layer 1's input made time-major (one copy), and per
        layer and direction its output [T, H], h_n, c_n and oneDNN's training workspace (uint8);
        a later layer's input is the one before's output (already kept) for one direction, their
        concatenation [T, 2H] for two, the dropped output and its float mask with dropout. Without
        bias, each layer and direction also keeps copies of its two weight matrices (measured:
        storages apart from the parameters'), the same for every example.

        The workspace (oneDNN's rnn_utils set_offsets and set_conf, f32, one layer and direction
        per call, slc the layer's input width): gates T*ld(4H), h T*ld(H), the layer and iteration
        states and the layer's diff states 3 * 2*(T+1)*ld(max(slc, H)), the cell state and its
        diff 2 * 2*(T+1)*H floats per example, ld(n) = n rounded up to 16 (plus 16 where that is a
        multiple of 256); each of these seven regions starts on a 4096-byte page (`align`: the
        batch's bytes rounded up)."""
        # With one direction the last layer's saved output is the storage the layer returns (a
        # transposed view of it): the layer's output, which a later layer keeping it shares.
        last = [Saved("the last layer's output (the layer's output)", of="output")] if dirs == 1 else []
        saved = [Saved("h0, c0 (zeros, all layers and directions)", elements=2 * layers * dirs * hid),
                 _first_input(t, f, 1, weights_only=False),  # oneDNN keeps it, frozen or not
                 *last, Saved("each layer's output [T, H], h_n, c_n" + (" (but the last output)" if last else ""),
                              elements=layers * dirs * (t + 2) * hid - (t * hid if last else 0))]
        for i in range(layers):
            for region, floats in _onednn_regions(t, f if i == 0 else dirs * hid, hid):
                saved += [Saved(f"oneDNN workspace (uint8), layer {i + 1}: {region}", elements=4 * floats, itemsize=1,
                                align=4096)] * dirs
        if layers > 1 and (dropout or dirs == 2):
            saved.append(Saved("later layers' inputs [T, D*H]" + (" (dropped) and their dropout masks" if dropout else ""),
                               elements=(layers - 1) * t * dirs * hid * (2 if dropout else 1)))
        if not bias:
            weights = dirs * sum(4 * hid * ((f if i == 0 else dirs * hid) + hid) for i in range(layers))
            saved.append(Saved("weight_ih, weight_hh copies (bias: false)", elements=weights, per_batch=True))
        return saved

    def explain(self, a, shapes, out, rf_in, rf_out, row):
        from archcalc.layers import _explain as ex

        t, f = self._check(a, shapes)
        d, n, hid, p = self._dirs(a), a["layers"], a["hidden"], a.get("proj_size", 0)
        w_f, w_s = ("P", ex.par(p)) if p else ("H", ex.par(hid))  # the width of h
        g_f = f"{self.gates}*" if self.gates > 1 else ""

        def layer(nin_f, nin_s, bias):
            """One layer and direction: formula and substituted text."""
            two = " + 2" if bias else ""
            proj_f, proj_s = (" + H*P", f" + {ex.par(hid)}*{ex.par(p)}") if p else ("", "")
            return (f"{g_f}H*({nin_f} + {w_f}{two}){proj_f}",
                    f"{g_f}{ex.par(hid)}*({nin_s} + {w_s}{two}){proj_s}")

        def total(bias, lead_f="", lead_s=""):
            form, subs = layer("F", ex.val(f), bias)
            if n > 1:
                later_f, later_s = layer(f"D*{w_f}" if d > 1 else w_f, f"{d}*{w_s}" if d > 1 else w_s, bias)
                if not _product(later_f):
                    later_f, later_s = f"({later_f})", f"({later_s})"
                form += f" + (L - 1)*{later_f}"
                subs += f" + ({ex.val(n)} - 1)*{later_s}"
            if d > 1:
                lead_f, lead_s = lead_f + "D*", lead_s + f"{d}*"
            if lead_f and not _product(form):
                form, subs = f"({form})", f"({subs})"
            return lead_f + form, lead_s + subs

        gate_note = {1: "one gate", 3: "3 gates: reset, update, new",
                     4: "4 gates: input, forget, cell, output"}[self.gates]
        out_f = f"[T, {'D*' if d > 1 else ''}{w_f}]"
        out_s = f"[{ex.val(t)}, {f'{d}*' if d > 1 else ''}{w_s}]"
        notes = ["the whole output sequence; h_n is not returned"]
        if p:
            notes.append("h is P = proj_size wide")
        steps = [ex.output_step(out_f, out_s, out, "; ".join(notes))]
        pf, ps = total(a["bias"])
        pnote = [gate_note, "per layer and direction"]
        pnote.append("+ 2: the two bias vectors b_ih and b_hh" if a["bias"] else "no bias")
        if n > 1:
            pnote.append(f"layers after the first read {'D*' if d > 1 else ''}{w_f} features")
        steps.append(Step("params", pf, ps, self.params(a, shapes)[0], note="; ".join(pnote)))
        mf, ms = total(False, "T*", f"{ex.par(t)}*")
        steps.append(Step("macs", mf, ms, self.macs(a, shapes, out),
                          note="the matmuls at every time step; gate products, nonlinearities and "
                               "biases are not counted"))
        steps.append(ex.rf_untracked("output t sees time steps 0..t, all of them when bidirectional: "
                                     "a window that grows with t"))
        return steps

    def torch_module(self, a, shapes):
        _, f = self._check(a, shapes)
        # PyTorch warns about dropout with one layer, where it has no effect: pass 0 there.
        dropout = float(a["dropout"]) if a["layers"] > 1 else 0.0
        return custom_module(self._source(), f"{self.torch_name}Output", f, a["hidden"], a["layers"],
                             a["bias"], dropout, a["bidirectional"],
                             *((a[self.own[0]],) if self.own else ()))

    def _source(self) -> str:
        name, default = self.own or ("", "")
        return _SOURCE.format(name=f"{self.torch_name}Output", cls=self.torch_name,
                              extra=f", {name}={default}" if name else "",
                              extra_pass=f", {name}={name}" if name else "")


def _first_input(t, f, copies, weights_only=True):
    """Layer 1's input: batch_first [N, T, F] made time-major is no view of [T*N, F], so each
    direction's matmul (oneDNN: one .contiguous()) copies it; with one step it is a view of the
    input itself (also with a batch of 1: `batch1`)."""
    if is_num(t) and t == 1:
        return Saved("input (time-major, a view)", of="input", weights_only=weights_only)
    return Saved("layer 1's input, time-major (a copy" + (" per direction)" if copies > 1 else ")"),
                 elements=copies * t * f, weights_only=weights_only, batch1="input")


def _good_ld(n):
    """oneDNN's get_good_ld for f32: n rounded up to 16 floats (64 bytes), 16 more where that is
    a multiple of 256 (4K aliasing)."""
    ld = -(-n // 16) * 16
    return ld + 16 if ld % 256 == 0 else ld


def _onednn_regions(t, slc, hid) -> list:
    """The seven regions of oneDNN's LSTM training workspace for one layer and direction, (name,
    floats per example) (rnn_utils set_conf / set_offsets, f32; see Recurrent._onednn_saved)."""
    states = 2 * (t + 1) * _good_ld(max(slc, hid))
    cells = 2 * (t + 1) * hid
    return ([("gates", t * _good_ld(4 * hid)), ("h", t * _good_ld(hid))]
            + [(name, states) for name in ("layer states", "iteration states", "layer diff states")]
            + [(name, cells) for name in ("cell states", "cell diff states")])


_COUNTS = {"output": "[T, D*H] (D = 2 if bidirectional else 1)",
           "params": "per layer and direction G*H*(in + H) + 2*G*H (two bias vectors b_ih, b_hh; none "
                     "without bias); in = F for layer 1, D*H after",
           "macs": "T*D*sum over layers of G*H*(in + H): the matmuls at every step (gate products, "
                   "nonlinearities and biases count 0)",
           "rf": "not tracked: output t sees time steps 0..t (all when bidirectional)"}


@register
class RNN(Recurrent):
    kind = "rnn"
    gates = 1
    torch_name = "RNN"
    own = ("nonlinearity", "'tanh'")
    args = _COMMON + (Arg("nonlinearity", "choice", "tanh", choices=("tanh", "relu")),)
    summary = "Elman recurrent layer over a sequence [T, F] -> [T, D*H] (nn.RNN, batch_first)"
    formulas = {**_COUNTS, "params": "G = 1: " + _COUNTS["params"], "macs": "G = 1: " + _COUNTS["macs"],
                "saved": "L*D*H (h0) + D*T*F (layer 1's input, time-major, copied per direction) + L*D*T*H (each "
                         "step's tanh/relu result, also the next step's h) + (L - 1)*T*D*H (later inputs; twice "
                         "with dropout: the mask)"}

    def _step_elements(self, t, hid, p):
        return t * hid, 0  # tanh/relu keep their result h_t, which the next step's matmul keeps too


@register
class LSTM(Recurrent):
    kind = "lstm"
    gates = 4
    torch_name = "LSTM"
    own = ("proj_size", "0")
    args = _COMMON + (Arg("proj_size", "int", 0, min=0, doc="project h to P < H features (0: none)"),)
    summary = "Long short-term memory over a sequence [T, F] -> [T, D*H] (nn.LSTM, batch_first)"
    formulas = {"output": "[T, D*H], or [T, D*P] with proj_size P",
                "params": "G = 4: " + _COUNTS["params"] + "; with proj_size P, h is P wide (in + P, "
                          "later in = D*P) and each layer and direction adds H*P",
                "macs": "G = 4: " + _COUNTS["macs"] + "; with proj_size P: G*H*(in + P) + H*P",
                "rf": _COUNTS["rf"],
                "saved": "oneDNN (no proj_size): 2*L*D*H (h0, c0) + T*F (layer 1's input, time-major copy) + "
                         "L*D*(T + 2)*H (outputs, h_n, c_n) + oneDNN's workspace per layer and direction, "
                         "4*(T*ld(4H) + T*ld(H) + 6*(T+1)*ld(max(in, H)) + 4*(T+1)*H) bytes (ld: rounded up to 16; "
                         "each of the 7 regions page-aligned, 4096 B) + (L - 1)*T*2H with two directions "
                         "(the concatenated input; with dropout 2*(L - 1)*T*D*H); with proj_size P (PyTorch's cell): "
                         "L*D*(P + H) (h0, c0) + D*T*F + per layer and direction 6*T*H + (T - 1)*(H + P) (gates 4H, "
                         "tanh(c), h, each c and h) + (L - 1)*T*D*P (twice with dropout)"}

    def _step_elements(self, t, hid, p):
        # LSTMCell: the gates [4H] (sigmoid_/tanh_ in place: one storage), tanh(c_t), h_t = o *
        # tanh(c_t) (the projection's input), and c_t, P-wide h_t for the next step (none after
        # the last); only with proj_size (without it the layer runs as oneDNN's LSTM)
        return 4 * t * hid + t * hid + (t - 1) * hid, t * hid + (t - 1) * p


@register
class GRU(Recurrent):
    kind = "gru"
    gates = 3
    torch_name = "GRU"
    args = _COMMON
    summary = "Gated recurrent unit over a sequence [T, F] -> [T, D*H] (nn.GRU, batch_first)"
    formulas = {**_COUNTS, "params": "G = 3: " + _COUNTS["params"], "macs": "G = 3: " + _COUNTS["macs"],
                "saved": "L*D*H (h0) + D*T*F (layer 1's input, time-major, copied per direction) + per layer and "
                         "direction 6*T*H + (T - 1)*H (the hidden gates [3H], n's hidden part and h - n before "
                         "their in-place products, n, each h) + (L - 1)*T*D*H (later inputs; twice with dropout)"}

    def _step_elements(self, t, hid, p):
        # GRUCell: the hidden gates [3H] (r and z sigmoid_ in place: one storage), the new gate's
        # hidden part and h - n (kept as copies before in-place mul_), n = tanh(...), and h_t for
        # the next step's matmul (none after the last)
        return 6 * t * hid, (t - 1) * hid
