"""select and mean: drop a dimension by taking one position (Tensor.select) or by averaging
(torch.mean), as ViT-style heads do with the class token or the mean over tokens."""
from __future__ import annotations

from archcalc.geometry.receptive_field import GLOBAL, RF
from archcalc.errors import LayerError
from archcalc.layers.base import Arg, Layer, dim_index, register


def _no_dims_left(kind, shape, fix):
    # torch allows a batch-only result, but later kinds need a dimension to work on
    return LayerError(f"{kind} on {list(shape)} would leave no dimension besides the batch; {fix}")


@register
class Select(Layer):
    kind = "select"
    primary = "index"
    probe_linear = True
    reads = "any"  # picks values out: token ids stay token ids
    summary = "Take one position along a dim, removing the dim (Tensor.select), e.g. the class token"
    args = (Arg("index", "int", doc="the position taken (negative counts from the end)"),
            Arg("dim", "int", 0, doc="dimension without the batch; 0 is channels (or tokens of [T, D])"))
    formulas = {"output": "the input shape without dim", "params": "0", "macs": "0",
                "rf": "not tracked (a dim is removed), global if the input's already is",
                "saved": "nothing (a view of its input)"}

    def saved_tensors(self, a, shapes, out):
        return []

    def output_storage(self, a, shapes):
        return 0

    def view_strides(self, a, shapes, strides, batch):
        dim = dim_index(a["dim"], len(shapes[0])) + 1
        return strides[:dim] + strides[dim + 1:]

    def output_shape(self, a, shapes):
        shape = shapes[0]
        if len(shape) < 2:
            raise _no_dims_left("select", shape, "expected an input of rank 2 or more (batch excluded)")
        dim = dim_index(a["dim"], len(shape))
        n, index = shape[dim], a["index"]
        if not -n <= index < n:
            raise LayerError(f"'index' is {index} but dim {dim} has size {n}; expected {-n}..{n - 1}", "index")
        return shape[:dim] + shape[dim + 1:]

    def rf(self, a, rfs, shapes, out):
        return GLOBAL if rfs[0] == GLOBAL else None

    def explain(self, a, shapes, out, rf_in, rf_out, row):
        from archcalc.layers import _explain as ex

        shape = shapes[0]
        dim = dim_index(a["dim"], len(shape))
        names = ex.dim_names(len(shape))
        steps = [ex.output_step("[" + ", ".join(names[:dim] + names[dim + 1:]) + "]", "", out,
                                note=f"position {a['index']} of {names[dim]} = {ex.val(shape[dim])} (dim {dim})"),
                 ex.zero("params"), ex.zero("macs")]
        return steps + [ex.rf_inherited(rf_in[0]) or ex.rf_untracked("a dim is removed: the axes no longer "
                                                                     "match the input's")]

    def torch_module(self, a, shapes):
        from torch import nn

        dim = dim_index(a["dim"], len(shapes[0])) + 1

        class Select(nn.Module):
            def __init__(self, dim, index):
                super().__init__()
                self.dim, self.index = dim, index

            def forward(self, x):
                return x.select(self.dim, self.index)

            def extra_repr(self):
                return f"dim={self.dim}, index={self.index}"

            def export_expression(self, inputs):
                """The forward step as Python source over the input's variable name."""
                return f"{inputs[0]}.select({self.dim}, {self.index})"

        self.output_shape(a, shapes)
        return Select(dim, a["index"])


@register
class Mean(Layer):
    kind = "mean"
    primary = "dim"
    probe_linear = True
    summary = "Average over one or more dims (torch.mean), e.g. over the tokens of [T, D]"
    args = (Arg("dim", "intlist", doc="dimension(s) without the batch; 0 is channels"),
            Arg("keepdim", "bool", False, doc="keep the averaged dims with size 1"))
    formulas = {"output": "the input shape without the averaged dims (size 1 with keepdim)", "params": "0",
                "macs": "0 (averages are not counted, as for avgpool)",
                "rf": "global over every spatial axis; unchanged over channels with keepdim; else not tracked",
                "saved": "nothing (mean's backward needs only shapes)"}

    def saved_tensors(self, a, shapes, out):
        return []

    def _dims(self, a, shape):
        dims = [dim_index(d, len(shape)) for d in a["dim"]]
        for d in dims:
            if dims.count(d) > 1:
                raise LayerError(f"'dim' {list(a['dim'])} names dim {d} twice (input {list(shape)}); "
                                 "expected each dim once", "dim")
        if len(dims) == len(shape) and not a["keepdim"]:
            raise _no_dims_left("mean", shape, "give keepdim: true, or leave a dim out")
        return set(dims)

    def output_shape(self, a, shapes):
        dims = self._dims(a, shapes[0])
        return tuple(1 if i in dims else n for i, n in enumerate(shapes[0]) if a["keepdim"] or i not in dims)

    def rf(self, a, rfs, shapes, out):
        dims = self._dims(a, shapes[0])
        if not isinstance(rfs[0], RF):
            return rfs[0]
        if dims >= set(range(1, len(shapes[0]))):
            return GLOBAL
        return rfs[0] if dims == {0} and a["keepdim"] else None

    def explain(self, a, shapes, out, rf_in, rf_out, row):
        from archcalc.layers import _explain as ex

        shape = shapes[0]
        dims = self._dims(a, shape)
        names = ex.dim_names(len(shape))
        formula = "[" + ", ".join("1" if i in dims else n for i, n in enumerate(names)
                                  if a["keepdim"] or i not in dims) + "]"
        averaged = ", ".join(names[i] for i in sorted(dims))
        steps = [ex.output_step(formula, "", out, note=f"the mean over {averaged}"
                                + ("; averaged dims kept with size 1" if a["keepdim"] else "")),
                 ex.zero("params"), ex.zero("macs", "averages are not counted, as for avgpool")]
        inherited = ex.rf_inherited(rf_in[0])
        if inherited:
            return steps + [inherited]
        if rf_out == GLOBAL:
            return steps + [ex.rf_global("averages every spatial axis: each output sees the whole input")]
        if rf_out is not None:
            return steps + [ex.rf_unchanged(rf_in[0], "averages the channels only")]
        return steps + [ex.rf_untracked("some spatial axes are averaged, or the channel dim is removed: "
                                        "not one window per axis")]

    def torch_module(self, a, shapes):
        from torch import nn

        dims = tuple(sorted(d + 1 for d in self._dims(a, shapes[0])))

        class Mean(nn.Module):
            def __init__(self, dim, keepdim):
                super().__init__()
                self.dim, self.keepdim = dim, keepdim

            def forward(self, x):
                return x.mean(dim=self.dim, keepdim=self.keepdim)

            def extra_repr(self):
                return f"dim={self.dim}, keepdim={self.keepdim}"

            def export_expression(self, inputs):
                """The forward step as Python source over the input's variable name."""
                return f"{inputs[0]}.mean(dim={self.dim}, keepdim={self.keepdim})"

        return Mean(dims, a["keepdim"])
