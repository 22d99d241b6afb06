"""dropout and dropout2d: random zeroing in training, identity at inference (nn.Dropout, and the
channel-wise nn.Dropout1d/2d/3d by the input's rank)."""
from __future__ import annotations

from archcalc.layers.activation import Elementwise
from archcalc.layers.base import Arg, Saved, prod, register

_P = (Arg("p", "float", 0.5, min=0, max=1, doc="probability of zeroing"),)

# Saved for backward, in training (measured, torch 2.13 CPU): eager dropout on CPU multiplies the
# input by a mask of the input's dtype (bernoulli / (1 - p)), and the multiply keeps the mask:
# one value per element (dropout), per example and channel (dropout2d). CUDA's fused
# native_dropout keeps a bool mask (1 B) instead; this is the CPU figure. p = 0 is the identity
# (nothing saved); p = 1 multiplies by a scalar zero (one value, whatever the batch).
_SAVED = ("the mask, in the activation dtype (CPU's dropout: input * mask): {what}; p = 0 nothing; "
          "p = 1 one scalar")


def _mask(a, elements) -> list[Saved]:
    if a["p"] == 0:
        return []
    if a["p"] == 1:
        return [Saved("zero", elements=1, per_batch=True)]
    return [Saved("mask", elements=elements)]


@register
class Dropout(Elementwise):
    kind = "dropout"
    torch_class = "Dropout"
    primary = "p"
    args = _P
    summary = "Zero each element with probability p during training, scale the rest by 1/(1-p)"
    formulas = {**Elementwise.formulas, "saved": _SAVED.format(what="prod(input shape) values")}

    def saved_tensors(self, a, shapes, out):
        return _mask(a, prod(out))


@register
class Dropout2d(Elementwise):
    kind = "dropout2d"
    primary = "p"
    args = _P
    summary = ("Zero whole channels with probability p during training (nn.Dropout1d/2d/3d for "
               "[C, L], [C, H, W], [C, D, H, W])")

    formulas = {**Elementwise.formulas, "saved": _SAVED.format(what="C values per example")}

    def output_shape(self, a, shapes):
        self.spatial_axes(shapes[0], "dropout2d")
        return shapes[0]

    def saved_tensors(self, a, shapes, out):
        return _mask(a, shapes[0][0])

    def torch_module(self, a, shapes):
        # nn.Dropout2d on other ranks is deprecated (PyTorch warns it will become an error); the
        # rank's own channel dropout does the same thing.
        from torch import nn

        return getattr(nn, f"Dropout{len(shapes[0]) - 1}d")(**a)
