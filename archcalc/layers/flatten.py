"""flatten: merge a range of dimensions into one (torch.nn.Flatten, batch excluded)."""
from __future__ import annotations

from archcalc.geometry.receptive_field import GLOBAL
from archcalc.errors import LayerError
from archcalc.layers.base import Arg, Layer, dim_index, prod, register


@register
class Flatten(Layer):
    kind = "flatten"
    reads = "any"  # moves values around: token ids stay token ids
    probe_linear = True
    global_by_convention = True
    summary = "Flatten dimensions start_dim..end_dim into one (nn.Flatten; dims exclude the batch)"
    args = (Arg("start_dim", "int", 0), Arg("end_dim", "int", -1))
    formulas = {"output": "[..., product of dims start..end, ...]", "params": "0", "macs": "0",
                "rf": "global (every later output depends on the whole input)",
                "saved": "nothing (a view: a tensor a later layer saves through it is the input's storage)"}

    def saved_tensors(self, a, shapes, out):
        return []

    def output_storage(self, a, shapes):
        return 0

    def _dims(self, a, shape):
        start = dim_index(a["start_dim"], len(shape), "start_dim")
        end = dim_index(a["end_dim"], len(shape), "end_dim")
        if start > end:
            raise LayerError(f"start_dim {a['start_dim']} comes after end_dim {a['end_dim']}", "start_dim")
        return start, end

    def output_shape(self, a, shapes):
        shape = shapes[0]
        start, end = self._dims(a, shape)
        return shape[:start] + (prod(shape[start:end + 1]),) + shape[end + 1:]

    def rf(self, a, rfs, shapes, out):
        return None if rfs[0] is None else GLOBAL

    def explain(self, a, shapes, out, rf_in, rf_out, row):
        from archcalc.layers import _explain as ex

        shape = shapes[0]
        start, end = self._dims(a, shape)
        names = ex.dim_names(len(shape))
        merged = "*".join(names[start:end + 1])
        formula = "[" + ", ".join(names[:start] + (merged,) + names[end + 1:]) + "]"
        subs = "[" + ", ".join([ex.val(v) for v in shape[:start]] + [ex.times(shape[start:end + 1])]
                               + [ex.val(v) for v in shape[end + 1:]]) + "]"
        steps = [ex.output_step(formula, subs, out), ex.zero("params"), ex.zero("macs")]
        if rf_in[0] is None:
            return steps + [ex.rf_untracked("the input's field is not tracked")]
        return steps + [ex.rf_global("by convention: later layers treat the tensor as a vector")]

    def torch_module(self, a, shapes):
        from torch import nn

        start, end = self._dims(a, shapes[0])
        return nn.Flatten(start + 1, end + 1)
