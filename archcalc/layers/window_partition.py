"""window_partition: cut a channels-last map [H, W, C] into windows of Mh x Mw tokens, as
torchvision's shifted_window_attention does (Swin's window_partition): pad the bottom and right
with zeros to Hp x Wp, the next multiples of the window, then

    x.view(nH, Mh, nW, Mw, C).permute(0, 2, 1, 3, 4).reshape(nH*nW, Mh*Mw, C)

(batch excluded; torchvision folds the windows into the batch, B*nW). Window k = r*nW + c holds
rows r*Mh .. r*Mh + Mh - 1 and columns c*Mw .. c*Mw + Mw - 1, token t = i*Mw + j its row i and
column j. An index move: no parameters, no MACs. Receptive field: not tracked, since H and W
become window and token indices and no spatial axis is left to give a field along
(`window_merge` puts them back).
"""
from __future__ import annotations

from archcalc.layers.base import Arg, Layer, register

SOURCE = '''
class WindowPartition(nn.Module):
    """[N, H, W, C] -> [N, nH*nW, Mh*Mw, C], padded to whole windows as torchvision does."""

    def __init__(self, window_size):
        super().__init__()
        self.window_size = tuple(window_size)

    def forward(self, x):
        B, H, W, C = x.shape
        mh, mw = self.window_size
        x = F.pad(x, (0, 0, 0, (mw - W % mw) % mw, 0, (mh - H % mh) % mh))
        _, pad_H, pad_W, _ = x.shape
        x = x.view(B, pad_H // mh, mh, pad_W // mw, mw, C).permute(0, 1, 3, 2, 4, 5)
        return x.reshape(B, (pad_H // mh) * (pad_W // mw), mh * mw, C)
'''


def window_grid(layer: Layer, a, shape, what: str):
    """(H, W, C, (Mh, Mw), (nH, nW)): the windows over a channels-last [H, W, C]."""
    from archcalc.geometry.window import ceil_div, channels_last

    h, w, c = channels_last(layer.kind, shape, what)
    mh, mw = layer.per_axis(a["window"], 2, "window")

    return h, w, c, (mh, mw), (ceil_div(h, mh), ceil_div(w, mw))


@register
class WindowPartition(Layer):
    kind = "window_partition"
    reads = "any"
    primary = "window"
    moves_axes = True  # its rule sees channels-last fields too (and says they are not tracked)
    probe_linear = True
    summary = "Cut a channels-last [H, W, C] into windows: [nH*nW, Mh*Mw, C], padded to whole windows (Swin)"
    args = (Arg("window", "ints", min=1, doc="window size M (or [Mh, Mw])"),)
    formulas = {"output": "[ceil(H/Mh)*ceil(W/Mw), Mh*Mw, C]", "params": "0", "macs": "0",
                "rf": "not tracked (H and W become window and token indices); global stays global",
                "saved": "nothing (pad, view, permute and a copy keep no values)"}

    def saved_tensors(self, a, shapes, out):
        return []

    def output_shape(self, a, shapes):
        _, _, c, (mh, mw), (nh, nw) = window_grid(self, a, shapes[0], "a feature map")
        return nh * nw, mh * mw, c

    def rf(self, a, rfs, shapes, out):
        from archcalc.geometry.receptive_field import GLOBAL

        return GLOBAL if rfs[0] == GLOBAL else None

    def explain(self, a, shapes, out, rf_in, rf_out, row):
        from archcalc.layers import _explain as ex

        h, w, c, (mh, mw), _ = window_grid(self, a, shapes[0], "a feature map")
        steps = [ex.output_step("[ceil(H/Mh)*ceil(W/Mw), Mh*Mw, C]",
                                f"[ceil({ex.val(h)}/{ex.par(mh)})*ceil({ex.val(w)}/{ex.par(mw)}), "
                                f"{ex.par(mh)}*{ex.par(mw)}, {ex.val(c)}]", out,
                                note="padded at the bottom and right to whole windows, as torchvision does"),
                 ex.zero("params"), ex.zero("macs")]
        if rf_in[0] is None or rf_in[0] == "global":
            return steps + [ex.rf_inherited(rf_in[0])]
        return steps + [ex.rf_untracked("H and W become window and token indices: no spatial axis is left")]

    def torch_module(self, a, shapes):
        from archcalc.layers.base import custom_module

        _, _, _, window, _ = window_grid(self, a, shapes[0], "a feature map")
        return custom_module(SOURCE, "WindowPartition", window)
