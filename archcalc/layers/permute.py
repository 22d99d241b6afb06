"""permute: reorder dimensions (torch.permute, batch excluded and kept first)."""
from __future__ import annotations

from archcalc.errors import LayerError
from archcalc.layers.base import Arg, Layer, register


@register
class Permute(Layer):
    kind = "permute"
    reads = "any"  # moves values around: token ids stay token ids
    primary = "dims"
    summary = "Reorder the dimensions (torch.permute; dims exclude the batch)"
    args = (Arg("dims", "intlist", doc="a permutation of 0..rank-1 (negative counts from the end)"),)
    formulas = {"output": "[shape[d] for d in dims]", "params": "0", "macs": "0",
                "rf": "kept, moved with the spatial axes (through channel-wise layers, and back)",
                "saved": "nothing (a view of its input)"}

    def saved_tensors(self, a, shapes, out):
        return []

    def output_storage(self, a, shapes):
        return 0

    def view_strides(self, a, shapes, strides, batch):
        return (strides[0],) + tuple(strides[d + 1] for d in self._dims(a, shapes[0]))

    def _dims(self, a, shape):
        rank = len(shape)
        dims = [d % rank if -rank <= d < rank else None for d in a["dims"]]
        if len(dims) != rank or None in dims or sorted(dims) != list(range(rank)):
            raise LayerError(f"dims {list(a['dims'])} is not a permutation of the input's {rank} "
                             f"dimensions (batch excluded); expected an order of 0..{rank - 1}", "dims")
        return dims

    def output_shape(self, a, shapes):
        return tuple(shapes[0][d] for d in self._dims(a, shapes[0]))

    moves_axes = True
    probe_linear = True  # the probe permutes too: its channels-last layers see [H, W, 1]

    def rf(self, a, rfs, shapes, out):
        """The field moves with the spatial axes: kept, with where they now are (RF.layout), so
        that a permute to [H, W, C] and back keeps it through channel-wise layers in between."""
        from dataclasses import replace

        from archcalc.geometry.receptive_field import GLOBAL, RF, spatial_dims

        dims = self._dims(a, shapes[0])
        field = rfs[0]
        if field == GLOBAL:  # every output sees everything, in any order of the axes
            return GLOBAL
        if not isinstance(field, RF):
            return None
        layout = tuple(dims.index(d) for d in spatial_dims(field, len(dims)))
        return replace(field, layout=None if layout == tuple(range(1, len(dims))) else layout)

    def explain(self, a, shapes, out, rf_in, rf_out, row):
        from archcalc.layers import _explain as ex

        dims = self._dims(a, shapes[0])
        names = ex.dim_names(len(shapes[0]))
        steps = [ex.output_step("[" + ", ".join(names[d] for d in dims) + "]", "", out,
                                note=f"dims {list(a['dims'])}"), ex.zero("params"), ex.zero("macs")]
        if dims[1:] == list(range(1, len(dims))):
            return steps + [ex.rf_unchanged(rf_in[0], "the spatial axes stay in place")]
        if rf_out is None or not hasattr(rf_out, "size"):
            return steps + [ex.rf_inherited(rf_out) or ex.rf_untracked("the spatial axes move")]
        where = "back in place" if rf_out.layout is None else f"now dims {', '.join(map(str, rf_out.layout))}"
        return steps + [ex.rf_unchanged(rf_out, f"the spatial axes move with it ({where})")]

    def torch_module(self, a, shapes):
        from torch import nn

        class Permute(nn.Module):
            def __init__(self, dims):
                super().__init__()
                self.dims = (0,) + tuple(d + 1 for d in dims)

            def forward(self, x):
                return x.permute(self.dims)

            def extra_repr(self):
                return f"dims={self.dims}"

            def export_expression(self, inputs):
                """The forward step as Python source over the input's variable name."""
                return f"{inputs[0]}.permute({', '.join(str(d) for d in self.dims)})"

        return Permute(self._dims(a, shapes[0]))
