"""patch_merging: Swin's downsampling between stages, as torchvision computes it
(torchvision.models.swin_transformer.PatchMerging) on a channels-last map [H, W, C]:

1. an odd H or W is padded by one zero row/column at the bottom/right (_patch_merging_pad:
   F.pad(x, (0, 0, 0, W % 2, 0, H % 2)));
2. the four strided slices x[0::2, 0::2], x[1::2, 0::2], x[0::2, 1::2], x[1::2, 1::2] are
   concatenated along the channels (in that order): [ceil(H/2), ceil(W/2), 4C];
3. LayerNorm(4C) (eps 1e-5, torchvision's norm_layer for Swin), then Linear(4C, 2C, bias=False).

Each output reads a 2 x 2 patch of the input: a window of 2 taps with stride 2 on each axis.
"""
from __future__ import annotations

from archcalc.layers.base import Arg, Layer, Saved, Step, custom_module, prod, register

SOURCE = '''
class PatchMerging(nn.Module):
    """torchvision's PatchMerging on [N, H, W, C]: pad odd sizes, the four strided slices
    concatenated (4C), LayerNorm(4C), Linear(4C, 2C, bias=False)."""

    def __init__(self, dim, eps=1e-5):
        super().__init__()
        self.dim = dim
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(4 * dim, eps=eps)

    def forward(self, x):
        H, W, _ = x.shape[-3:]
        x = F.pad(x, (0, 0, 0, W % 2, 0, H % 2))
        x0 = x[..., 0::2, 0::2, :]  # ... H/2 W/2 C
        x1 = x[..., 1::2, 0::2, :]
        x2 = x[..., 0::2, 1::2, :]
        x3 = x[..., 1::2, 1::2, :]
        x = torch.cat([x0, x1, x2, x3], -1)  # ... H/2 W/2 4*C
        x = self.norm(x)
        return self.reduction(x)  # ... H/2 W/2 2*C
'''


def _half(n):
    from archcalc.geometry.window import ceil_div

    return ceil_div(n, 2)


@register
class PatchMerging(Layer):
    kind = "patch_merging"
    moves_axes = True  # channels-last [H, W, C]: fields arrive with their spatial axes at dims 0, 1
    summary = ("Swin's patch merging on channels-last [H, W, C]: 2 x 2 patches concatenated (4C), LayerNorm, "
               "Linear(4C, 2C, no bias) (torchvision PatchMerging)")
    args = (Arg("eps", "float", 1e-5, min=0, doc="LayerNorm's eps (torchvision's Swin: 1e-5)"),)
    formulas = {
        "output": "[ceil(H/2), ceil(W/2), 2C] (an odd size padded by one zero row/column, as torchvision)",
        "params": "8*C (LayerNorm(4C): weight and bias) + 8*C*C (Linear(4C, 2C), no bias)",
        "macs": "ceil(H/2)*ceil(W/2)*4C*2C (the reduction; LayerNorm is not MACs)",
        "rf": "a window of 2 with stride 2 on each axis: r' = r + j, j' = 2j, start unchanged",
        "saved": "the concatenated patches [H/2, W/2, 4C] (the LayerNorm's input) + its mean and rstd "
                 "(H/2 * W/2 each) + the normalised [H/2, W/2, 4C] (the Linear's input)",
    }

    def saved_tensors(self, a, shapes, out):
        positions = prod(out[:-1])
        wide = positions * 4 * shapes[0][-1]
        return [Saved("patches", elements=wide), Saved("mean", elements=positions),
                Saved("rstd", elements=positions), Saved("normalised", elements=wide)]

    def _sizes(self, a, shapes):
        from archcalc.geometry.window import channels_last

        return channels_last(self.kind, shapes[0])

    def output_shape(self, a, shapes):
        h, w, c = self._sizes(a, shapes)
        return _half(h), _half(w), 2 * c

    def params(self, a, shapes):
        c = self._sizes(a, shapes)[2]
        return 8 * c + 8 * c * c, 0

    def macs(self, a, shapes, out):
        h, w, c = self._sizes(a, shapes)
        return _half(h) * _half(w) * 4 * c * 2 * c

    def rf(self, a, rfs, shapes, out):
        from archcalc.geometry.window import channels_last_rf

        return channels_last_rf(rfs[0], lambda field: field.window((2, 2), (2, 2), (0, 0), (1, 1)))

    def explain(self, a, shapes, out, rf_in, rf_out, row):
        from archcalc.layers import _explain as ex

        h, w, c = self._sizes(a, shapes)
        p = ex.par
        odd = [name for name, n in (("H", h), ("W", w)) if isinstance(n, int) and n % 2]
        steps = [
            ex.output_step("[ceil(H/2), ceil(W/2), 2*C]", f"[ceil({ex.val(h)}/2), ceil({ex.val(w)}/2), 2*{p(c)}]", out,
                           note="the four strided 2 x 2 slices concatenated to 4C, then Linear(4C, 2C)"
                                + (f"; odd {', '.join(odd)} padded by one zero row/column, as torchvision" if odd else "")),
            Step("params", "8*C + 8*C*C", f"8*{p(c)} + 8*{p(c)}*{p(c)}", self.params(a, shapes)[0],
                 note="LayerNorm(4C) weight and bias, Linear(4C, 2C) without bias"),
            Step("macs", "ceil(H/2)*ceil(W/2)*4*C*2*C",
                 f"ceil({ex.val(h)}/2)*ceil({ex.val(w)}/2)*4*{p(c)}*2*{p(c)}", self.macs(a, shapes, out),
                 note="the reduction on every output position; LayerNorm is not MACs"),
        ]
        inherited = ex.rf_inherited(rf_in[0])
        if inherited:
            return steps + [inherited]
        if rf_out is None:
            return steps + [ex.rf_untracked("the input's spatial axes are not at [H, W, C] (dims 0 and 1)")]
        return steps + ex.rf_window(rf_in[0], rf_out, (2, 2), (2, 2), (0, 0), (1, 1), dilated=False)

    def torch_module(self, a, shapes):
        return custom_module(SOURCE, "PatchMerging", self._sizes(a, shapes)[2], a["eps"])

    def probe_module(self, a, shapes):
        # The probe's stand-in: the same slices and reduction (weights set to 1), LayerNorm as an
        # identity, like every normalisation in the probe.
        from torch import nn

        module = self.torch_module(a, shapes)
        module.norm = nn.Identity()
        return module
