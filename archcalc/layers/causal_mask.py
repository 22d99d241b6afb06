"""causal_mask: -inf above the diagonal of attention scores [..., T, T], so that the softmax after
it gives each query only itself and earlier keys, as in attention written from `matmul`
primitives (optionally a sliding window: also -inf more than window - 1 positions back)."""
from __future__ import annotations

from archcalc.errors import LayerError
from archcalc.layers.base import Arg, Layer, Saved, register


def _expression(x: str, window) -> str:
    """The module's forward as one PyTorch expression over the scores `x` (for `archcalc export`)."""
    ones = f"torch.ones({x}.shape[-2:], dtype=torch.bool, device={x}.device)"
    hidden = f"{ones}.triu(1)"  # key j > query i
    if window is not None:
        hidden += f" | {ones}.tril({-window})"  # i - j >= window: older than the window
    return f"{x}.masked_fill({hidden}, float('-inf'))"


@register
class CausalMask(Layer):
    kind = "causal_mask"
    summary = "Attention scores [..., T, T] with -inf above the diagonal (and outside a sliding window)"
    args = (Arg("window", "int", None, min=1,
                doc="also hide keys window or more positions before the query (Mistral's sliding window)"),)
    formulas = {"output": "same as input ([..., T, T]: queries x keys)", "params": "0",
                "macs": "0 (elementwise fill)", "rf": "unchanged (elementwise)",
                "saved": "the bool mask [T, T] masked_fill keeps (1 B each), the same for every example"}

    def output_shape(self, a, shapes):
        s = shapes[0]
        if len(s) < 2 or s[-1] != s[-2]:
            raise LayerError(f"causal_mask needs square attention scores [..., T, T] (queries x keys, e.g. from "
                             f"matmul: {{transpose: true}} of q and k), got {list(s)}")
        return s

    def saved_tensors(self, a, shapes, out):
        # derivatives.yaml masked_fill.Scalar: self: grad.masked_fill(mask, 0): the mask only
        t = self.output_shape(a, shapes)[-1]
        return [Saved("mask (bool)", elements=t * t, itemsize=1, per_batch=True)]

    def torch_module(self, a, shapes):
        from torch import nn

        self.output_shape(a, shapes)

        class CausalMask(nn.Module):
            def __init__(self, window):
                super().__init__()
                self.window = window

            def forward(self, x):
                import torch

                ones = torch.ones(x.shape[-2:], dtype=torch.bool, device=x.device)
                hidden = ones.triu(1)  # key j after query i
                if self.window is not None:
                    hidden = hidden | ones.tril(-self.window)  # i - j >= window: older than the window
                return x.masked_fill(hidden, float("-inf"))

            def extra_repr(self):
                return f"window={self.window}"

            def export_expression(self, inputs):
                return _expression(inputs[0], self.window)

        return CausalMask(a["window"])
