"""split and chunk: one piece of torch.split / torch.chunk (a graph node has one output, so each
entry names the piece it takes)."""
from __future__ import annotations

from archcalc.geometry.receptive_field import RF, Reads
from archcalc.errors import LayerError
from archcalc.geometry.window import ceil_div, is_num
from archcalc.layers.base import Arg, Layer, Step, dim_index, register

DIM = Arg("dim", "int", -1, doc="dimension without the batch; 0 is channels, negative counts from the end")
INDEX = Arg("index", "int", doc="which piece (negative counts from the end, as in Python)")


class OnePiece(Layer):
    probe_linear = True
    reads = "any"  # picks values out: token ids stay token ids
    formulas = {"params": "0", "macs": "0",
                "rf": "unchanged along channels; along a spatial axis start + offset*j "
                      "(offset: where the piece begins)",
                "saved": "nothing (a view of its input: a piece a later layer saves is the whole input's storage)"}

    def saved_tensors(self, a, shapes, out):
        return []

    def output_storage(self, a, shapes):
        return 0

    def view_strides(self, a, shapes, strides, batch):
        return strides  # a narrower slice of the same memory

    def _pieces(self, a, n):
        """(piece count, size of piece i, offset of piece i, the pieces in words)."""
        raise NotImplementedError

    def _plan(self, a, shape):
        """(dim, index, count, size, offset) of the piece taken."""
        dim = dim_index(a["dim"], len(shape))
        n = shape[dim]
        count, size, offset, what = self._pieces(a, n)
        index = a["index"]
        if not -count <= index < count:
            raise LayerError(f"'index' is {index} but {what}; expected {-count}..{count - 1}", "index")
        index %= count
        if is_num(size(index)) and size(index) < 1:
            raise LayerError(f"piece {index} is empty ({what}); archcalc needs sizes of 1 or more", "sizes")
        return dim, index, count, size(index), offset(index)

    def output_shape(self, a, shapes):
        dim, _, _, size, _ = self._plan(a, shapes[0])
        return shapes[0][:dim] + (size,) + shapes[0][dim + 1:]

    def rf(self, a, rfs, shapes, out):
        rf = rfs[0]
        dim, _, _, _, offset = self._plan(a, shapes[0])
        if not isinstance(rf, RF) or dim == 0 or (is_num(offset) and offset == 0):
            return rf
        if not is_num(offset) or len(rf.size) != len(shapes[0]) - 1:
            return None
        # output o of the piece is input o + offset along its axis
        return rf.map([Reads.shift(offset if axis == dim - 1 else 0) for axis in range(len(rf.size))])

    def _size_steps(self, a, n, index, count, size):
        """The step(s) for the piece's size along dim."""
        raise NotImplementedError

    def explain(self, a, shapes, out, rf_in, rf_out, row):
        from dataclasses import replace

        from archcalc.layers import _explain as ex

        shape = shapes[0]
        dim, index, count, size, offset = self._plan(a, shape)
        names = ex.dim_names(len(shape))
        steps = [replace(s, at=(dim,), where=names[dim]) for s in self._size_steps(a, shape[dim], index, count, size)]
        steps += [ex.output_step("[" + ", ".join(n if i != dim else f"{n}'" for i, n in enumerate(names)) + "]",
                                 "", out, note=f"piece {index} along dim {dim}"),
                  ex.zero("params"), ex.zero("macs")]
        rf = rf_in[0]
        inherited = ex.rf_inherited(rf)
        if inherited:
            return steps + [inherited]
        if dim == 0:
            return steps + [ex.rf_unchanged(rf, "a piece of the channels: the spatial axes are unchanged")]
        if is_num(offset) and offset == 0:
            return steps + [ex.rf_unchanged(rf, "the piece starts at position 0")]
        if not isinstance(rf_out, RF):
            return steps + [ex.rf_untracked("the piece's offset is not a number")]
        axis, n_axes = dim - 1, len(rf.size)
        if not rf.regular:
            jumps = [("j", "", rf_out.stride[i]) for i in range(n_axes)]
            return steps + ex.rf_exact(rf, rf_out, f"output o reads input o + {ex.val(offset)} along "
                                                   f"{ex.where([axis], n_axes)}", jumps)
        items = []
        for i, (r, j, b) in enumerate(zip(rf.size, rf.stride, rf.start)):
            start = (("start + offset*j", f"{ex.val(b)} + {ex.par(offset)}*{ex.par(j)}", b + offset * j)
                     if i == axis else ("start", "", b))
            items.append((("r", "", r), ("j", "", j), start))
        return steps + ex.rf_per_axis(items, n_axes, f"the piece begins at offset {ex.val(offset)}")

    def torch_module(self, a, shapes):
        import torch
        from torch import nn

        dim, index, *_ = self._plan(a, shapes[0])
        op, arg = self.kind, self._torch_arg(a)
        fn = getattr(torch, op)

        class Piece(nn.Module):
            def forward(self, x):
                return fn(x, arg, dim + 1)[index]

            def extra_repr(self):
                return f"{arg}, dim={dim + 1}, index={index}"

            def export_expression(self, inputs):
                """The forward step as Python source over the input's variable name."""
                return f"torch.{op}({inputs[0]}, {arg!r}, dim={dim + 1})[{index}]"

        Piece.__name__ = Piece.__qualname__ = op.capitalize()
        return Piece()


@register
class Split(OnePiece):
    kind = "split"
    summary = "One piece of torch.split: pieces of `sizes` (a number: equal pieces, the last may be smaller)"
    args = (Arg("sizes", "ints", min=0, doc="size of every piece, or a list of the pieces' sizes"), DIM, INDEX)
    formulas = {"output": "the piece's size along dim: S (the last of ceil(N/S) pieces: N - (ceil(N/S) - 1)*S), "
                          "or sizes[index] for a list that adds up to N", **OnePiece.formulas}

    def _torch_arg(self, a):
        return list(a["sizes"]) if isinstance(a["sizes"], tuple) else a["sizes"]

    def _pieces(self, a, n):
        sizes = a["sizes"]
        if isinstance(sizes, tuple):
            total = 0
            for s in sizes:
                total = total + s
            if total != n:
                raise LayerError(f"sizes {list(sizes)} add up to {total} but the dim has size {n}; "
                                 "expected sizes that add up to it", "sizes")
            return (len(sizes), lambda i: sizes[i], lambda i: sum(sizes[:i]),
                    f"sizes {list(sizes)} make {len(sizes)} piece{'s' * (len(sizes) != 1)}")
        if is_num(sizes) and sizes == 0:
            raise LayerError("'sizes' is 0; expected a piece size >= 1 or a list of sizes", "sizes")
        count = ceil_div(n, sizes)
        return (count, lambda i: sizes if i < count - 1 else n - (count - 1) * sizes, lambda i: i * sizes,
                f"pieces of {sizes} from size {n} make ceil({n}/{sizes}) = {count} piece{'s' * (count != 1)}")

    def _size_steps(self, a, n, index, count, size):
        from archcalc.layers import _explain as ex

        sizes = a["sizes"]
        if isinstance(sizes, tuple):
            return [Step("output", f"sizes[{index}]", "", size,
                         note=f"sizes {ex.shape_text(sizes)} add up to N = {ex.val(n)}")]
        if index < count - 1:
            return [Step("output", "S", "", size, note=f"piece {index} of ceil(N/S) = {ex.val(count)}")]
        return [Step("output", "N - (ceil(N/S) - 1)*S", f"{ex.val(n)} - (ceil({ex.val(n)}/{ex.par(sizes)}) - 1)*"
                     f"{ex.par(sizes)}", size, note="the last piece takes what is left")]


@register
class Chunk(OnePiece):
    kind = "chunk"
    summary = ("One piece of torch.chunk: pieces of ceil(N/chunks), the last smaller; "
               "fewer pieces than chunks where they run out")
    args = (Arg("chunks", "int", min=1, doc="how many pieces to ask for"), DIM, INDEX)
    formulas = {"output": "the piece's size along dim: ceil(N/chunks); the last of ceil(N/ceil(N/chunks)) "
                          "pieces takes what is left", **OnePiece.formulas}

    def _torch_arg(self, a):
        return a["chunks"]

    def _pieces(self, a, n):
        c = a["chunks"]
        s = ceil_div(n, c)
        count = ceil_div(n, s)
        fewer = f", fewer than the {c} chunks asked" if is_num(count) and count < c else ""
        return (count, lambda i: s if i < count - 1 else n - (count - 1) * s, lambda i: i * s,
                f"{c} chunks of size {n} are pieces of ceil({n}/{c}) = {s}: {count} of them{fewer}")

    def _size_steps(self, a, n, index, count, size):
        from archcalc.layers import _explain as ex

        c, nn_ = ex.par(a["chunks"]), ex.val(n)
        fewer = f", fewer than the {c} chunks asked" if is_num(count) and count < a["chunks"] else ""
        if index < count - 1:
            return [Step("output", "ceil(N/chunks)", f"ceil({nn_}/{c})", size,
                         note=f"piece {index} of {ex.val(count)}{fewer}")]
        return [Step("output", "N - (pieces - 1)*ceil(N/chunks)", f"{nn_} - ({ex.val(count)} - 1)*ceil({nn_}/{c})",
                     size, note=f"the last piece takes what is left; pieces = ceil(N/ceil(N/chunks)) = "
                                f"{ex.val(count)}{fewer}")]
