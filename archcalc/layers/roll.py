"""roll: cyclic shift along dimensions (torch.roll(x, shifts, dims), dims batch excluded).

Output index i along a rolled dim of size n is input index (i - shift) mod n; several dims roll
independently, and a dim named twice rolls by the sum of its shifts (as torch.roll does).
No parameters, no MACs. Receptive field: unchanged where no spatial axis moves (a roll over
channels, or a whole turn, shift = 0 mod n); otherwise not tracked: the outputs at one border read
the other border, so neighbouring outputs read neighbouring inputs except across the wrap, a field
that depends on the position (one size, jump and start per axis cannot say it).
"""
from __future__ import annotations

from archcalc.errors import LayerError
from archcalc.geometry.window import is_num
from archcalc.layers.base import Arg, Layer, dim_index, register


@register
class Roll(Layer):
    kind = "roll"
    reads = "any"  # moves values around: token ids stay token ids
    moves_axes = True  # handles fields whose spatial axes a permute moved (channels-last Swin)
    probe_linear = True  # the probe rolls too
    summary = "Cyclic shift along dimensions (torch.roll; dims exclude the batch)"
    args = (Arg("shifts", "intlist", doc="shift per dim: output i is input (i - shift) mod n"),
            Arg("dims", "intlist", doc="the dims rolled, one per shift (negative counts from the end)"))
    formulas = {"output": "input shape", "params": "0", "macs": "0",
                "rf": "unchanged where no spatial axis rolls (or by a multiple of its size); else not tracked "
                      "(position-dependent: the outputs at one border read the other)",
                "saved": "nothing (roll's backward rolls back)"}

    def saved_tensors(self, a, shapes, out):
        return []

    def _dims(self, a, shape):
        shifts, dims = list(a["shifts"]), list(a["dims"])
        if len(shifts) != len(dims):
            raise LayerError(f"shifts {shifts} and dims {dims} have different lengths; torch.roll takes one shift "
                             "per dim", "dims")
        if not dims:
            raise LayerError("dims is empty; name the dims to roll (torch.roll without dims would also roll "
                             "across the batch)", "dims")
        return [dim_index(d, len(shape), "dims") for d in dims], shifts

    def total_shifts(self, a, shape) -> dict:
        """Per rolled dim, the sum of its shifts."""
        dims, shifts = self._dims(a, shape)
        total: dict = {}
        for d, s in zip(dims, shifts):
            total[d] = total.get(d, 0) + s
        return total

    def output_shape(self, a, shapes):
        self._dims(a, shapes[0])
        return shapes[0]

    def _moved_spatial(self, a, shapes, field) -> list:
        """The dims holding a spatial axis of `field` that the roll really moves."""
        from archcalc.geometry.receptive_field import spatial_dims

        shape = shapes[0]
        spatial = spatial_dims(field, len(shape))
        moved = []
        for d, s in self.total_shifts(a, shape).items():
            if d in spatial and not (is_num(shape[d]) and s % shape[d] == 0):
                moved.append(d)
        return moved

    def rf(self, a, rfs, shapes, out):
        from archcalc.geometry.receptive_field import GLOBAL, RF

        field = rfs[0]
        if field == GLOBAL:
            return GLOBAL
        if not isinstance(field, RF):
            return None
        return None if self._moved_spatial(a, shapes, field) else field

    def explain(self, a, shapes, out, rf_in, rf_out, row):
        from archcalc.geometry.receptive_field import RF
        from archcalc.layers import _explain as ex

        shape = shapes[0]
        names = ex.dim_names(len(shape))
        moves = ", ".join(f"{names[d]} by {s}" for d, s in self.total_shifts(a, shape).items())
        steps = [ex.output_step("input shape", "", out, note=f"cyclic shift: {moves}"), ex.zero("params"),
                 ex.zero("macs")]
        inherited = ex.rf_inherited(rf_in[0])
        if inherited:
            return steps + [inherited]
        if isinstance(rf_in[0], RF) and self._moved_spatial(a, shapes, rf_in[0]):
            return steps + [ex.rf_untracked("position-dependent: the outputs at one border read the other border "
                                            "(the wrap), the others their neighbours' inputs")]
        return steps + [ex.rf_unchanged(rf_in[0], "no spatial axis moves (or by whole turns)")]

    def torch_module(self, a, shapes):
        from torch import nn

        dims, shifts = self._dims(a, shapes[0])

        class Roll(nn.Module):
            def __init__(self, shifts, dims):
                super().__init__()
                self.shifts, self.dims = tuple(shifts), tuple(d + 1 for d in dims)

            def forward(self, x):
                return x.roll(self.shifts, self.dims)

            def extra_repr(self):
                return f"shifts={self.shifts}, dims={self.dims}"

            def export_expression(self, inputs):
                return f"torch.roll({inputs[0]}, shifts={self.shifts!r}, dims={self.dims!r})"

        return Roll(shifts, dims)
