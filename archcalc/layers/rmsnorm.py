"""rmsnorm: root-mean-square normalisation over the last `dims` dimensions (nn.RMSNorm)."""
from __future__ import annotations

from archcalc.layers.base import Arg, Layer, Saved, Step, custom_module, prod, register
from archcalc.layers.norm import LayerNorm

# For torch < 2.4, which has no nn.RMSNorm: the same math and the same parameter name.
SOURCE = '''
class RMSNorm(nn.Module):
    """x / sqrt(mean(x^2) + eps) * weight over the trailing dims `shape` (nn.RMSNorm's math)."""

    def __init__(self, shape, eps=None, affine=True):
        super().__init__()
        self.shape, self.eps = tuple(shape), eps
        self.weight = nn.Parameter(torch.ones(self.shape)) if affine else None

    def forward(self, x):
        eps = torch.finfo(x.dtype).eps if self.eps is None else self.eps
        dims = tuple(range(-len(self.shape), 0))
        y = x * torch.rsqrt(x.pow(2).mean(dims, keepdim=True) + eps)
        return y if self.weight is None else y * self.weight
'''


@register
class RMSNorm(Layer):
    kind = "rmsnorm"
    summary = "RMS normalisation over the last `dims` dimensions: a scale, no shift, no centring (nn.RMSNorm)"
    args = (
        Arg("dims", "int", 1, min=1, doc="how many trailing dimensions are normalised together"),
        Arg("eps", "float", None, min=0, doc="added to mean(x^2); empty: torch's default (the dtype's eps)"),
        Arg("affine", "bool", True, doc="learn an elementwise scale"),
    )
    formulas = {"output": "same as input", "params": "prod(normalised dims) (a scale, no shift)",
                "macs": "0", "rf": "unchanged (statistics ignored)",
                "saved": "the input, rsqrt(mean(x^2) + eps) (one per normalised group: the input's size over "
                         "prod(normalised dims)) and, with affine, x * rsqrt (for the weight's gradient): nn.RMSNorm "
                         "runs as these composite ops on CPU"}

    def _normalized(self, a, shape):
        return tuple(LayerNorm._normalized(self, a, shape))  # the same trailing-dims rule

    def output_shape(self, a, shapes):
        self._normalized(a, shapes[0])
        return shapes[0]

    def mixed_dims(self, a, shapes):
        rank = len(shapes[0])
        return tuple(range(rank - len(self._normalized(a, shapes[0])), rank))

    def params(self, a, shapes):
        return (prod(self._normalized(a, shapes[0])) if a["affine"] else 0), 0

    def saved_tensors(self, a, shapes, out):
        # x.pow(2) and x * r keep x; rsqrt keeps its result r (a [..., 1, ...] per normalised
        # group); (x * r) * weight keeps x * r for the weight's gradient (without affine, none).
        # x and r are kept for x's gradient only: on the network input, only x * r.
        shape = shapes[0]
        norm = self._normalized(a, shape)
        groups = prod(shape[:len(shape) - len(norm)])
        saved = [Saved("input", of="input", for_grad_of=(0,)),
                 Saved("rsqrt(mean(x^2) + eps)", elements=groups, for_grad_of=(0,))]
        if a["affine"]:
            saved.append(Saved("x * rsqrt (before the weight)", elements=prod(shape), weights_only=True))
        return saved

    def explain(self, a, shapes, out, rf_in, rf_out, row):
        from archcalc.layers import _explain as ex

        shape = shapes[0]
        norm = self._normalized(a, shape)
        names = ex.dim_names(len(shape))[len(shape) - len(norm):]
        over = f"normalises over the last {a['dims']} dim{'s' if a['dims'] > 1 else ''} ({', '.join(names)})"
        params = (Step("params", "*".join(names), ex.times(norm), prod(norm), note=f"{over}; a scale, no shift")
                  if a["affine"] else ex.zero("params", f"{over}; affine: false"))
        return [ex.output_step("input shape", "", out), params, ex.zero("macs", "normalisation is not counted"),
                ex.rf_unchanged(rf_in[0], "statistics ignored")]

    def torch_module(self, a, shapes):
        from torch import nn

        shape = self._normalized(a, shapes[0])
        if hasattr(nn, "RMSNorm"):
            return nn.RMSNorm(shape, eps=a["eps"], elementwise_affine=a["affine"])
        return custom_module(SOURCE, "RMSNorm", shape, a["eps"], a["affine"])
