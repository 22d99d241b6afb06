"""embedding: a lookup table from integer token ids to vectors (torch.nn.Embedding), optionally
sharing its table with a later linear layer (tied input and output embeddings, as in GPT-2)."""
from __future__ import annotations

from archcalc.errors import LayerError
from archcalc.layers.base import Arg, Layer, Saved, Step, register


@register
class Embedding(Layer):
    kind = "embedding"
    reads = "tokens"
    summary = ("Lookup table from integer token ids to vectors (nn.Embedding); `tie` shares it with a linear "
               "or another embedding")
    args = (
        Arg("num", "int", min=1, doc="table rows: the vocabulary size (ids are 0..num-1)"),
        Arg("dim", "int", min=1, doc="vector size"),
        Arg("padding_idx", "int", None, doc="this id's vector stays zero and gets no gradient"),
        Arg("tie", "layer", None, doc="a later linear [.., dim] -> [.., num] that uses this table as its "
                                      "weight, or a later embedding of the same num x dim that looks ids up in "
                                      "it (T5's encoder and decoder; counted once)"),
    )
    formulas = {
        "output": "[..., dim] (the ids' shape plus dim)",
        "params": "num * dim (a tied linear shares them: counted once in the total)",
        "macs": "0 (a lookup, not a multiply-accumulate)",
        "rf": "not tracked (token ids have no spatial axes)",
        "saved": "the ids (its input, int64: 8 B each); embedding_backward needs only the indices",
    }

    def output_shape(self, a, shapes):
        pad = a["padding_idx"]
        if pad is not None and not -a["num"] <= pad < a["num"]:
            raise LayerError(f"padding_idx {pad} is not an id of a table of {a['num']} rows; expected "
                             f"{-a['num']}..{a['num'] - 1}", "padding_idx")
        return tuple(shapes[0]) + (a["dim"],)

    def params(self, a, shapes):
        return a["num"] * a["dim"], 0

    def rf(self, a, rfs, shapes, out):
        return None

    def saved_tensors(self, a, shapes, out):
        # derivatives.yaml: embedding: weight: embedding_backward(grad, indices, ...) - the ids only
        return [Saved("indices (int64)", of="input", itemsize=8)]

    def tied_to(self, a):
        return a["tie"]

    def shared_params(self, a, shapes, target_kind, target_args, target_shapes):
        if target_kind == "embedding":  # one table for two token streams (T5's encoder and decoder)
            if (target_args["num"], target_args["dim"]) != (a["num"], a["dim"]):
                raise LayerError(f"tie: the embedding's table is [{target_args['num']}, {target_args['dim']}] "
                                 f"but this one is [{a['num']}, {a['dim']}]; tied tables have the same shape", "tie")
            return a["num"] * a["dim"]
        # The linear's weight is [out, in] = [num, dim], the embedding table's shape.
        if target_kind != "linear":
            raise LayerError(f"tie names a {target_kind} layer; an embedding can share its table only "
                             "with a linear layer or another embedding", "tie")
        nin, nout = target_shapes[0][-1], target_args["out"]
        if (nin, nout) != (a["dim"], a["num"]):
            raise LayerError(f"tie: the linear maps {nin} -> {nout} features, so its weight is [{nout}, {nin}], "
                             f"but the table is [{a['num']}, {a['dim']}]; a tied linear maps dim -> num", "tie")
        return a["num"] * a["dim"]

    def tie_modules(self, module, target):
        target.weight = module.weight

    def explain(self, a, shapes, out, rf_in, rf_out, row):
        from archcalc.layers import _explain as ex

        num, dim = a["num"], a["dim"]
        note = "the table: one row of dim values per id"
        if a["tie"]:
            note += f"; {a['tie']} uses it as its weight (counted once in the total)"
        return [ex.output_step("[ids..., dim]", ex.shape_text(out), out),
                Step("params", "num*dim", f"{ex.par(num)}*{ex.par(dim)}", num * dim, note=note),
                ex.zero("macs", "a lookup, not a multiply-accumulate"),
                ex.rf_untracked("token ids have no spatial axes")]

    def torch_module(self, a, shapes):
        from torch import nn

        return nn.Embedding(a["num"], a["dim"], padding_idx=a["padding_idx"])
