"""Merge kinds that combine two or more inputs: add, multiply (broadcasting) and concat."""
from __future__ import annotations

from archcalc.geometry.receptive_field import merge
from archcalc.errors import LayerError
from archcalc.layers.base import Arg, Layer, Saved, dim_index, prod, register


def broadcast(shapes, kind):
    """PyTorch broadcasting of batch-less shapes. Ranks must match, because with the batch
    dimension in front, shapes of different rank would line the batch up with a data axis."""
    ranks = {len(s) for s in shapes}
    if len(ranks) > 1:
        raise LayerError(f"{kind} needs inputs of the same rank, got "
                         + ", ".join(str(list(s)) for s in shapes))
    out = []
    for sizes in zip(*shapes):
        bigger = {n for n in sizes if n != 1}
        if len(bigger) > 1:
            raise LayerError(f"{kind} cannot broadcast shapes " + ", ".join(str(list(s)) for s in shapes)
                             + "; expected equal sizes or 1 along every dimension")
        out.append(bigger.pop() if bigger else 1)
    return tuple(out)


class Elementwise2(Layer):
    arity = None
    probe_linear = True
    keeps_layout = True
    formulas = {"output": "broadcast of the input shapes", "params": "0",
                "macs": "0 (elementwise)", "rf": "union of the inputs' fields"}

    def output_shape(self, a, shapes):
        return broadcast(shapes, self.kind)

    def rf(self, a, rfs, shapes, out):
        return merge(rfs)

    def mixed_dims(self, a, shapes):
        return ()  # position by position (broadcast sizes are checked by rf.moved)

    def explain(self, a, shapes, out, rf_in, rf_out, row):
        from archcalc.layers import _explain as ex

        inputs = ", ".join(ex.shape_text(s) for s in shapes)
        return [ex.output_step("broadcast(input shapes)", f"broadcast({inputs})", out), ex.zero("params"),
                ex.zero("macs", "elementwise, not a multiply-accumulate")] + ex.rf_union(rf_in, rf_out)


def _merge_module(op_name, symbol):
    import torch
    from torch import nn

    op = getattr(torch, op_name)

    class Merge(nn.Module):
        def forward(self, *xs):
            out = xs[0]
            for x in xs[1:]:
                out = op(out, x)
            return out

        def export_expression(self, inputs):
            """The forward step as Python source over the inputs' variable names (`a + b`)."""
            return f" {symbol} ".join(inputs)

    Merge.__name__ = Merge.__qualname__ = op_name.capitalize()
    return Merge()


@register
class Add(Elementwise2):
    kind = "add"
    summary = "Elementwise sum of the inputs (broadcasting), as in residual connections"
    formulas = {**Elementwise2.formulas, "saved": "nothing (add's backward needs no values)"}

    def saved_tensors(self, a, shapes, out):
        return []

    def torch_module(self, a, shapes):
        return _merge_module("add", "+")


@register
class Multiply(Elementwise2):
    kind = "multiply"
    summary = "Elementwise product of the inputs (broadcasting), as in squeeze-and-excitation"
    formulas = {**Elementwise2.formulas,
                "saved": "both inputs as given, before broadcasting (mul: self, other); with more than two, "
                         "each running product a * b * ... too (one tensor of their broadcast shape); each "
                         "operand only where the other one needs a gradient (not a network input's)"}

    def saved_tensors(self, a, shapes, out):
        # mul keeps each operand for the other's gradient only (derivatives.yaml: self's gradient
        # needs other): an operand is not kept where the other needs no gradient (a network input).
        saved = [Saved("input", "input", 0, for_grad_of=(1,)), Saved("input", "input", 1, for_grad_of=(0,))]
        for i in range(2, len(shapes)):  # ((a * b) * c) ...: the product so far is kept too
            saved += [Saved("product", elements=prod(broadcast(shapes[:i], self.kind)), for_grad_of=(i,)),
                      Saved("input", "input", i, for_grad_of=tuple(range(i)))]
        return saved

    def torch_module(self, a, shapes):
        return _merge_module("mul", "*")


@register
class Concat(Layer):
    kind = "concat"
    reads = "any"  # moves values around: token ids stay token ids
    arity = None
    probe_linear = True
    primary = "dim"
    summary = "Concatenate the inputs along a dimension (torch.cat; dim 0 is channels)"
    args = (Arg("dim", "int", 0, doc="dimension without the batch; 0 is channels"),)
    formulas = {"output": "sizes along dim add up; others must match", "params": "0", "macs": "0",
                "rf": "union of the inputs' fields", "saved": "nothing (cat's backward slices the gradient)"}

    def saved_tensors(self, a, shapes, out):
        return []

    def output_shape(self, a, shapes):
        rank = len(shapes[0])
        if any(len(s) != rank for s in shapes):
            raise LayerError("concat needs inputs of the same rank, got "
                             + ", ".join(str(list(s)) for s in shapes))
        dim = dim_index(a["dim"], rank)
        for s in shapes[1:]:
            if s[:dim] + s[dim + 1:] != shapes[0][:dim] + shapes[0][dim + 1:]:
                raise LayerError(f"concat along dim {dim} needs equal sizes elsewhere, got "
                                 + ", ".join(str(list(x)) for x in shapes))
        total = 0
        for s in shapes:
            total = total + s[dim]
        return shapes[0][:dim] + (total,) + shapes[0][dim + 1:]

    def rf(self, a, rfs, shapes, out):
        return merge(rfs)

    def explain(self, a, shapes, out, rf_in, rf_out, row):
        from archcalc.layers import _explain as ex
        from archcalc.layers.base import Step

        rank = len(shapes[0])
        dim = dim_index(a["dim"], rank)
        name = ex.dim_names(rank)[dim]
        total = 0
        for s in shapes:
            total = total + s[dim]
        steps = [Step("output", " + ".join(f"{name}{i + 1}" for i in range(len(shapes))),
                      " + ".join(ex.par(s[dim]) for s in shapes), total, at=(dim,), where=name,
                      note=f"sizes along dim {dim} add up"),
                 ex.output_step("[" + ", ".join(ex.dim_names(rank)) + "]", ex.shape_text(out), out),
                 ex.zero("params"), ex.zero("macs")]
        return steps + ex.rf_union(rf_in, rf_out)

    def torch_module(self, a, shapes):
        import torch
        from torch import nn

        dim = dim_index(a["dim"], len(shapes[0])) + 1

        class Concat(nn.Module):
            def forward(self, *xs):
                return torch.cat(xs, dim)

            def extra_repr(self):
                return f"dim={dim}"

            def export_expression(self, inputs):
                return f"torch.cat([{', '.join(inputs)}], dim={dim})"

        return Concat()
