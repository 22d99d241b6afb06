"""dropout and dropout2d: random zeroing in training, identity at inference (nn.Dropout, nn.Dropout2d)."""
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
    torch_class = "Dropout2d"
    primary = "p"
    args = _P
    summary = "Zero whole channels with probability p during training"
