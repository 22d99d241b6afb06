"""window_merge: put windows [nH*nW, Mh*Mw, C] back into a channels-last map [H, W, C], as
torchvision's shifted_window_attention does after the attention (Swin's window_reverse), then
crop the padding:

    x.view(nH, nW, Mh, Mw, C).permute(0, 2, 1, 3, 4).reshape(Hp, Wp, C)[:H, :W]

The inverse of `window_partition`. H and W are read from the shape of a second input, `like`
(usually the map that was partitioned: `from: [windows, x]`), so that nothing hard-codes them
and `--input` keeps working; its values are not read. An index move: no parameters, no MACs.
Receptive field: not tracked (the windows' tokens carry none; see window_partition); global stays
global.
"""
from __future__ import annotations

from archcalc.errors import LayerError
from archcalc.layers.base import Arg, Layer, register
from archcalc.layers.window_partition import window_grid

SOURCE = '''
class WindowMerge(nn.Module):
    """[N, nH*nW, Mh*Mw, C] -> [N, H, W, C], H and W from the second input's shape [N, H, W, ...]."""

    def __init__(self, window_size):
        super().__init__()
        self.window_size = tuple(window_size)

    def forward(self, x, like):
        H, W = like.shape[1], like.shape[2]
        mh, mw = self.window_size
        B, C = x.shape[0], x.shape[-1]
        nh, nw = (H + mh - 1) // mh, (W + mw - 1) // mw
        x = x.view(B, nh, nw, mh, mw, C).permute(0, 1, 3, 2, 4, 5).reshape(B, nh * mh, nw * mw, C)
        return x[:, :H, :W, :].contiguous()
'''


@register
class WindowMerge(Layer):
    kind = "window_merge"
    arity = 2
    input_roles = ("windows", "like")
    reads = "any"
    primary = "window"
    moves_axes = True
    probe_linear = True
    summary = ("Put windows [nH*nW, Mh*Mw, C] back into [H, W, C] and crop the padding (Swin's window_reverse); "
               "H, W from the second input's shape")
    args = (Arg("window", "ints", min=1, doc="window size M (or [Mh, Mw]), as partitioned"),)
    formulas = {"output": "[H, W, C], H and W those of the second input (from: [windows, like])",
                "params": "0", "macs": "0",
                "rf": "not tracked (the windows carry none); global stays global",
                "saved": "nothing (view, permute, slice and a copy keep no values)"}

    def saved_tensors(self, a, shapes, out):
        return []

    def _sizes(self, a, shapes):
        windows, like = shapes
        h, w, _, (mh, mw), (nh, nw) = window_grid(self, a, like, "its second input (like, giving H and W)")
        if len(windows) != 3:
            raise LayerError(f"window_merge needs windows shaped [nH*nW, Mh*Mw, C] (what window_partition gives), "
                             f"got {list(windows)}")
        n, t, c = windows
        if t != mh * mw:
            raise LayerError(f"the windows hold {t} tokens, but a window of {mh} x {mw} holds {mh * mw}", "window")
        if n != nh * nw:
            raise LayerError(f"there are {n} windows, but a {h} x {w} map holds ceil({h}/{mh})*ceil({w}/{mw}) = "
                             f"{nh * nw} windows of {mh} x {mw}; expected the map that was partitioned as the "
                             "second input", "window")
        return h, w, c, (mh, mw), (nh, nw)

    def output_shape(self, a, shapes):
        h, w, c, _, _ = self._sizes(a, shapes)
        return h, w, c

    def rf(self, a, rfs, shapes, out):
        from archcalc.geometry.receptive_field import GLOBAL

        return GLOBAL if rfs[0] == GLOBAL else None

    def explain(self, a, shapes, out, rf_in, rf_out, row):
        from archcalc.layers import _explain as ex

        steps = [ex.output_step("[H, W, C]", "", out,
                                note="H and W from the second input's shape; the padding to whole windows cropped"),
                 ex.zero("params"), ex.zero("macs")]
        if rf_in[0] is None or rf_in[0] == "global":
            return steps + [ex.rf_inherited(rf_in[0])]
        return steps + [ex.rf_untracked("the windows' tokens carry no spatial field")]

    def torch_module(self, a, shapes):
        from archcalc.layers.base import custom_module

        _, _, _, window, _ = self._sizes(a, shapes)
        return custom_module(SOURCE, "WindowMerge", window)
