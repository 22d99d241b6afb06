"""dropout and dropout2d: random zeroing in training, identity at inference (nn.Dropout, and the
channel-wise nn.Dropout1d/2d/3d by the input's rank)."""
from __future__ import annotations

from archcalc.layers.activation import Elementwise
from archcalc.layers.base import Arg, register

_P = (Arg("p", "float", 0.5, min=0, max=1, doc="probability of zeroing"),)


@register
class Dropout(Elementwise):
    kind = "dropout"
    torch_class = "Dropout"
    primary = "p"
    args = _P
    summary = "Zero each element with probability p during training, scale the rest by 1/(1-p)"


@register
class Dropout2d(Elementwise):
    kind = "dropout2d"
    primary = "p"
    args = _P
    summary = ("Zero whole channels with probability p during training (nn.Dropout1d/2d/3d for "
               "[C, L], [C, H, W], [C, D, H, W])")

    def output_shape(self, a, shapes):
        self.spatial_axes(shapes[0], "dropout2d")
        return shapes[0]

    def torch_module(self, a, shapes):
        # nn.Dropout2d on other ranks is deprecated (PyTorch warns it will become an error); the
        # rank's own channel dropout does the same thing.
        from torch import nn

        return getattr(nn, f"Dropout{len(shapes[0]) - 1}d")(**a)
