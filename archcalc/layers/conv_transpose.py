"""conv_transpose: transposed convolution (torch.nn.ConvTranspose1d/2d/3d)."""
from __future__ import annotations

from archcalc.errors import LayerError
from archcalc.layers._window import is_num
from archcalc.layers.base import Arg, Layer, check_groups, prod, register


@register
class ConvTranspose(Layer):
    kind = "conv_transpose"
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
    }

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
        # Output o receives input i through tap t when o + P = i S + t D: S outputs per input.
        return rf.map([(lambda o, k=k, s=s, p=p, d=d: [(o + p - t * d) // s for t in range(k)
                                                        if (o + p - t * d) % s == 0], s, 1)
                       for k, s, p, d in zip(kernel, stride, padding, dilation)])

    def torch_module(self, a, shapes):
        from torch import nn

        axes, kernel, stride, padding, out_pad, dilation = self.geometry(a, shapes[0])
        cls = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)[axes - 1]
        return cls(shapes[0][0], a["out"], kernel, stride=stride, padding=padding, output_padding=out_pad,
                   groups=a["groups"], bias=a["bias"], dilation=dilation)
