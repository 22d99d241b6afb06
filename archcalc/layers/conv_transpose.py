"""conv_transpose: transposed convolution (torch.nn.ConvTranspose1d/2d/3d)."""
from __future__ import annotations

import math

from archcalc.geometry.receptive_field import Reads
from archcalc.errors import LayerError
from archcalc.geometry.window import is_num
from archcalc.layers.base import Arg, Layer, Saved, Step, check_groups, prod, register


@register
class ConvTranspose(Layer):
    kind = "conv_transpose"
    keeps_memory_format = True
    probe_linear = True
    primary = "out"
    summary = "Transposed convolution over 1, 2 or 3 spatial axes (nn.ConvTranspose1d/2d/3d)"
    args = (
        Arg("out", "int", min=1, doc="output channels"),
        Arg("kernel", "ints", min=1),
        Arg("stride", "ints", 1, min=1),
        Arg("padding", "ints", 0, min=0),
        Arg("output_padding", "ints", 0, min=0),
        Arg("dilation", "ints", 1, min=1),
        Arg("groups", "int", 1, min=1),
        Arg("bias", "bool", True),
    )
    formulas = {
        "output": "M = (N - 1) S - 2P + D(K-1) + output_padding + 1 per axis",
        "params": "Cin*(Cout/groups)*K1*K2*... + Cout (bias)",
        "macs": "N1*N2*...*Cin*(Cout/groups)*K1*K2*...  (input positions, as PyTorch counts)",
        "rf": "exact per output: output o sees the inputs (o + P - tD)/S that are whole; reported: the "
              "widest window, j' = j / S, start of output 0 (may lie outside the input)",
        "saved": "its input (convolution: input, weight; the weight is a parameter)",
    }

    def saved_tensors(self, a, shapes, out):
        return [Saved("input", "input")]

    def geometry(self, a, shape):
        axes = self.spatial_axes(shape, "conv_transpose")
        names = ("kernel", "stride", "padding", "output_padding", "dilation")
        kernel, stride, padding, out_pad, dilation = (self.per_axis(a[n], axes, n) for n in names)
        for op, s, d in zip(out_pad, stride, dilation):
            if is_num(op) and op >= max(s, d):
                raise LayerError(f"output_padding {op} must be smaller than the stride {s} or the "
                                 f"dilation {d}", "output_padding")
        return axes, kernel, stride, padding, out_pad, dilation

    def _groups(self, a, shape):
        """Output channels each input channel feeds: Cout / groups."""
        check_groups(shape[0], a["out"], a["groups"])
        return a["out"] // a["groups"]

    def output_shape(self, a, shapes):
        shape = shapes[0]
        _, kernel, stride, padding, out_pad, dilation = self.geometry(a, shape)
        self._groups(a, shape)
        sizes = tuple((n - 1) * s - 2 * p + d * (k - 1) + op + 1
                      for n, k, s, p, op, d in zip(shape[1:], kernel, stride, padding, out_pad, dilation))
        for i, m in enumerate(sizes):
            if is_num(m) and m < 1:
                raise LayerError(f"output size along spatial axis {i} would be {m}; "
                                 "padding is too large for this input", "padding")
        return (a["out"],) + sizes

    def params(self, a, shapes):
        _, kernel, *_ = self.geometry(a, shapes[0])
        return shapes[0][0] * self._groups(a, shapes[0]) * prod(kernel) + (a["out"] if a["bias"] else 0), 0

    def macs(self, a, shapes, out):
        _, kernel, *_ = self.geometry(a, shapes[0])
        return prod(shapes[0][1:]) * shapes[0][0] * self._groups(a, shapes[0]) * prod(kernel)

    def rf(self, a, rfs, shapes, out):
        rf = rfs[0]
        if rf is None or rf == "global":
            return rf
        _, kernel, stride, padding, _, dilation = self.geometry(a, shapes[0])
        return rf.map([_transposed_reads(k, s, p, d) for k, s, p, d in zip(kernel, stride, padding, dilation)])

    def torch_module(self, a, shapes):
        from torch import nn

        axes, kernel, stride, padding, out_pad, dilation = self.geometry(a, shapes[0])
        cls = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)[axes - 1]
        return cls(shapes[0][0], a["out"], kernel, stride=stride, padding=padding, output_padding=out_pad,
                   groups=a["groups"], bias=a["bias"], dilation=dilation)

    def explain(self, a, shapes, out, rf_in, rf_out, row):
        from fractions import Fraction

        from archcalc.layers import _explain as ex

        shape = shapes[0]
        axes, kernel, stride, padding, out_pad, dilation = self.geometry(a, shape)
        cin, cout, cg, groups = shape[0], a["out"], self._groups(a, shape), a["groups"]
        K, ks = ex.letters("K", axes), ex.times(kernel)
        items = []
        for n, k, s, p, op, d in zip(shape[1:], kernel, stride, padding, out_pad, dilation):
            items.append(("(N - 1)*S - 2P + D(K-1) + output_padding + 1",
                          f"({ex.val(n)} - 1)*{ex.par(s)} - 2*{ex.par(p)} + {ex.par(d)}*({ex.par(k)}-1) + "
                          f"{ex.par(op)} + 1",
                          (n - 1) * s - 2 * p + d * (k - 1) + op + 1, ""))
        steps = ex.per_axis("output", items, axes)
        steps.append(ex.output_step(f"[Cout, {', '.join(f'M{i + 1}' for i in range(axes))}]", ex.shape_text(out), out))
        cout_f = "Cout" if groups == 1 else "(Cout/groups)"
        weights = cin * cg * prod(kernel)
        if a["bias"]:
            steps.append(Step("params", f"Cin*{cout_f}*{K} + Cout", f"{ex.par(cin)}*{ex.par(cg)}*{ks} + {ex.par(cout)}",
                              weights + cout))
        else:
            steps.append(Step("params", f"Cin*{cout_f}*{K}", f"{ex.par(cin)}*{ex.par(cg)}*{ks}", weights,
                              note="no bias"))
        steps.append(Step("macs", f"{ex.letters('N', axes)}*Cin*(Cout/groups)*{K}",
                          f"{ex.times(shape[1:])}*{ex.par(cin)}*{ex.par(cg)}*{ks}",
                          prod(shape[1:]) * cin * cg * prod(kernel),
                          note="input positions times taps, as PyTorch counts"))
        rf = rf_in[0]
        if isinstance(rf, ex.RF) and rf.regular and all(ex.val(s) == "1" for s in stride):
            # stride 1: output o reads inputs o + P - D(K-1) .. o + P, a window like a convolution's
            triples = []
            for r, j, b, k, p, d in zip(rf.size, rf.stride, rf.start, kernel, padding, dilation):
                span = f"{ex.par(d)}*({ex.par(k)} - 1)"
                triples.append((("r + D(K-1)*j", f"{ex.val(r)} + {span}*{ex.par(j)}", r + d * (k - 1) * j),
                                ("j/S", f"{ex.par(j)}/1", j),
                                ("start - (D(K-1) - P)*j", f"{ex.val(b)} - ({span} - {ex.par(p)})*{ex.par(j)}",
                                 b - (d * (k - 1) - p) * j)))
            return steps + ex.rf_per_axis(triples, axes, "output o reads inputs o + P - t*D, t = 0..K-1")
        jumps = [("j/S", f"{ex.par(j)}/{ex.par(s)}", ex.exact(Fraction(j) / s))
                 for j, s in zip(rf.stride if isinstance(rf, ex.RF) else (), stride)]
        return steps + ex.rf_exact(rf, rf_out, "output o reads the inputs (o + P - t*D)/S that are whole, "
                                   "t = 0..K-1", jumps)


def _transposed_reads(k, s, p, d) -> Reads:
    """Output o receives input i through tap t when o + P = i S + t D (S outputs per input). The
    taps that do form one residue class modulo S/g (g = gcd(D, S)), found with a modular inverse
    instead of trying all K taps; their inputs step by D/g."""
    g = math.gcd(d, s)
    period = s // g
    inverse = pow(d // g, -1, period) if period > 1 else 0

    def at(o):
        r = o + p
        if r % g:
            return None
        t0 = (r // g) * inverse % period  # the smallest tap with t D = o + P (mod S)
        if t0 >= k:
            return None
        count = (k - 1 - t0) // period + 1
        t_last = t0 + (count - 1) * period
        return (r - t_last * d) // s, d // g, count

    # Some output takes tap 0 (o = -P mod S): it has the most taps, ceil(K / period).
    return Reads(at, s, 1, (-(-k // period) - 1) * (d // g))
