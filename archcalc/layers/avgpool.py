"""avgpool: average pooling (torch.nn.AvgPool1d/2d/3d)."""
from __future__ import annotations

from archcalc.errors import LayerError
from archcalc.geometry.window import axis_name, is_num
from archcalc.layers.base import Arg, register
from archcalc.layers.maxpool import WindowPool


@register
class AvgPool(WindowPool):
    kind = "avgpool"
    probe_linear = True
    summary = "Average pooling over 1, 2 or 3 spatial axes (nn.AvgPool1d/2d/3d)"
    args = (
        Arg("kernel", "ints", min=1),
        Arg("stride", "ints", None, min=1, doc="default: the kernel"),
        Arg("padding", "ints", 0, min=0),
        Arg("ceil_mode", "bool", False),
        Arg("count_include_pad", "bool", True),
    )

    def output_shape(self, a, shapes):
        out = super().output_shape(a, shapes)
        _, kernel, *_ = self.geometry(a, shapes[0])
        if len(kernel) == 3:  # PyTorch's avg_pool3d (only) needs the unpadded input to hold the kernel
            for i, (n, k) in enumerate(zip(shapes[0][1:], kernel)):
                if is_num(n) and n < k:
                    raise LayerError(f"kernel {k} is larger than the input along {axis_name(i, 3)} ({n}); "
                                     "3-d average pooling needs kernel <= input, padding not counted", "kernel")
        return out

    def torch_module(self, a, shapes):
        from torch import nn

        axes, kernel, stride, padding, _ = self.geometry(a, shapes[0])
        cls = (nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d)[axes - 1]
        return cls(kernel, stride, padding, ceil_mode=a["ceil_mode"], count_include_pad=a["count_include_pad"])
