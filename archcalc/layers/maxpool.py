"""maxpool: max pooling (torch.nn.MaxPool1d/2d/3d)."""
from __future__ import annotations

from archcalc.errors import LayerError
from archcalc.geometry.window import is_num, window_output
from archcalc.layers.base import Arg, Layer, Saved, prod, register


class WindowPool(Layer):
    """Shared rules of max and average pooling: a window with no weights."""

    primary = "kernel"
    has_dilation = False
    keeps_memory_format = True
    formulas = {
        "output": "M = floor((N + 2P - D(K-1) - 1) / S) + 1 per axis (ceil with ceil_mode)",
        "params": "0",
        "macs": "0 (comparisons and additions are not multiply-accumulates)",
        "rf": "r' = r + D(K-1) j,  j' = j S,  start' = start - P j",
        "saved": "its input (avg_pool: self)",
    }

    def saved_tensors(self, a, shapes, out):
        return [Saved("input", "input")]

    def geometry(self, a, shape):
        axes = self.spatial_axes(shape, self.kind)
        kernel = self.per_axis(a["kernel"], axes, "kernel")
        stride = self.per_axis(a["stride"] if a["stride"] is not None else a["kernel"], axes, "stride")
        padding = self.per_axis(a["padding"], axes, "padding")
        dilation = self.per_axis(a["dilation"], axes, "dilation") if self.has_dilation else (1,) * axes
        for k, p in zip(kernel, padding):
            if is_num(p) and p > k // 2:
                raise LayerError(f"padding {p} is more than half the kernel {k} (PyTorch's limit)", "padding")
        return axes, kernel, stride, padding, dilation

    def output_shape(self, a, shapes):
        shape = shapes[0]
        _, kernel, stride, padding, dilation = self.geometry(a, shape)
        return shape[:1] + tuple(
            window_output(n, k, s, p, p, d, i, a["ceil_mode"], len(kernel))
            for i, (n, k, s, p, d) in enumerate(zip(shape[1:], kernel, stride, padding, dilation)))

    def rf(self, a, rfs, shapes, out):
        if rfs[0] is None or rfs[0] == "global":
            return rfs[0]
        _, kernel, stride, padding, dilation = self.geometry(a, shapes[0])
        return rfs[0].window(kernel, stride, padding, dilation)

    def explain(self, a, shapes, out, rf_in, rf_out, row):
        from archcalc.layers import _explain as ex

        axes, kernel, stride, padding, dilation = self.geometry(a, shapes[0])
        what = "maxima" if self.kind == "maxpool" else "averages"
        stride_note = "stride = kernel (default)" if a["stride"] is None else ""
        steps = ex.window_output_steps(shapes[0], kernel, stride, padding, padding, dilation,
                                       ceil_mode=a["ceil_mode"], dilated=self.has_dilation, note=stride_note)
        steps.append(ex.output_step(f"[C, {', '.join(f'M{i + 1}' for i in range(axes))}]", ex.shape_text(out), out))
        steps += [ex.zero("params", "no weights"), ex.zero("macs", f"{what} are not multiply-accumulates")]
        return steps + ex.rf_window(rf_in[0], rf_out, kernel, stride, padding, dilation, dilated=self.has_dilation)


@register
class MaxPool(WindowPool):
    kind = "maxpool"
    summary = "Max pooling over 1, 2 or 3 spatial axes (nn.MaxPool1d/2d/3d)"
    has_dilation = True
    formulas = {**WindowPool.formulas, "saved": "its input + the argmax indices, int64 (8 B), one per output "
                                                "value (max_pool2d_with_indices: self, indices)"}

    def saved_tensors(self, a, shapes, out):
        return [Saved("input", "input"), Saved("indices", elements=prod(out), itemsize=8)]
    args = (
        Arg("kernel", "ints", min=1),
        Arg("stride", "ints", None, min=1, doc="default: the kernel"),
        Arg("padding", "ints", 0, min=0),
        Arg("dilation", "ints", 1, min=1),
        Arg("ceil_mode", "bool", False),
    )

    def torch_module(self, a, shapes):
        from torch import nn

        axes, kernel, stride, padding, dilation = self.geometry(a, shapes[0])
        cls = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d)[axes - 1]
        return cls(kernel, stride, padding, dilation, ceil_mode=a["ceil_mode"])

    def probe_module(self, a, shapes):
        """A max passes gradient to one pixel per window; the receptive-field probe needs every
        pixel a window reads: a depthwise convolution of ones with the same kernel, stride,
        dilation and padding, plus the right padding that gives ceil_mode's last window."""
        import torch.nn.functional as F
        from torch import nn

        axes, kernel, stride, padding, dilation = self.geometry(a, shapes[0])
        out = self.output_shape(a, shapes)
        extra = [max(0, (m - 1) * s + d * (k - 1) + 1 - (n + 2 * p))
                 for n, m, k, s, p, d in zip(shapes[0][1:], out[1:], kernel, stride, padding, dilation)]
        pad = []  # F.pad lists the last axis first
        for p, e in reversed(list(zip(padding, extra))):
            pad += [p, p + e]
        conv, channels = getattr(F, f"conv{axes}d"), shapes[0][0]

        class OnesWindow(nn.Module):
            def forward(self, x):
                weight = x.new_ones((channels, 1, *kernel))
                return conv(F.pad(x, pad), weight, stride=stride, dilation=dilation, groups=channels)

        return OnesWindow()
