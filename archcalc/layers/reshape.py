"""reshape: view the tensor with another shape (torch.reshape, batch excluded)."""
from __future__ import annotations

from archcalc.errors import LayerError
from archcalc.geometry.window import is_num
from archcalc.layers.base import Arg, Layer, Step, prod, register


@register
class Reshape(Layer):
    kind = "reshape"
    reads = "any"  # moves values around: token ids stay token ids
    primary = "shape"
    summary = "Reshape to the given shape; one entry may be -1 (torch.reshape)"
    args = (Arg("shape", "intlist", min=-1, doc="new shape without the batch; one -1 is inferred"),)
    formulas = {"output": "shape (a -1 takes what is left)", "params": "0", "macs": "0",
                "rf": "not tracked (axes no longer match the input's)",
                "saved": "nothing (a view of a contiguous input; a permuted one is copied)"}

    def saved_tensors(self, a, shapes, out):
        return []

    def output_storage(self, a, shapes):
        return 0

    def output_shape(self, a, shapes):
        want, total = tuple(a["shape"]), prod(shapes[0])
        if 0 in want:
            raise LayerError(f"shape {list(want)} has a 0; expected positive sizes or one -1", "shape")
        if want.count(-1) > 1:
            raise LayerError(f"shape {list(want)} has more than one -1", "shape")
        if -1 in want:
            known = prod(v for v in want if v != -1)
            if is_num(total) and total % known:
                raise LayerError(f"cannot reshape {list(shapes[0])} ({total} values) to {list(want)}", "shape")
            want = tuple(total // known if v == -1 else v for v in want)
        elif is_num(total) and prod(want) != total:
            asked = prod(want)
            asked = asked if asked <= 10**308 else "over 1e308"  # printable: not 6,000 digits
            raise LayerError(f"cannot reshape {list(shapes[0])} ({total} values) to {list(want)} "
                             f"({asked} values)", "shape")
        return want

    def rf(self, a, rfs, shapes, out):
        return rfs[0] if tuple(out) == tuple(shapes[0]) else None

    def explain(self, a, shapes, out, rf_in, rf_out, row):
        from archcalc.layers import _explain as ex

        want, shape = tuple(a["shape"]), shapes[0]
        if -1 in want:
            known = tuple(v for v in want if v != -1)
            at = want.index(-1)
            size, others = (ex.times(v) if len(v) <= 1 else f"({ex.times(v)})" for v in (shape, known))
            steps = [Step("output", "(input size)/(the other sizes)", f"{size}/{others}",
                          prod(shape) // prod(known), at=(at,), where=f"the -1 at dim {at}"),
                     ex.output_step(f"{list(want)}", "", out)]
        else:
            steps = [ex.output_step(f"{list(want)}", "", out, note=f"{ex.times(shape)} values either way")]
        steps += [ex.zero("params"), ex.zero("macs")]
        if tuple(out) == tuple(shape):
            return steps + [ex.rf_unchanged(rf_in[0], "the shape is unchanged")]
        return steps + [ex.rf_untracked("the axes no longer match the input's")]

    def torch_module(self, a, shapes):
        from torch import nn

        class Reshape(nn.Module):
            def __init__(self, shape):
                super().__init__()
                self.shape = tuple(shape)

            def forward(self, x):
                return x.reshape((x.shape[0],) + self.shape)

            def extra_repr(self):
                return f"shape={self.shape}"

            def export_expression(self, inputs):
                """The forward step as Python source over the input's variable name."""
                x = inputs[0]
                return f"{x}.reshape({', '.join([f'{x}.shape[0]'] + [str(n) for n in self.shape])})"

        return Reshape(self.output_shape(a, shapes))
