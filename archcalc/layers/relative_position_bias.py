"""relative_position_bias: T5's bucketed relative position bias, the additive score bias [heads, T, T]
that every self-attention layer of a T5 stack reads (`attention: {...}` with `from: [x, bias]`).

Semantics: Hugging Face's T5Attention.compute_bias(T, T) and _relative_position_bucket, exactly.
The relative position of key j seen from query i is r = j - i. Bidirectional (the encoder): half
of the buckets are for r <= 0 and half, offset by num_buckets // 2, for r > 0, each half of
n = num_buckets // 2 buckets holding |r|; causal (the decoder): n = num_buckets, holding
max(-r, 0) (later keys fall in bucket 0, and the causal mask hides them). Within a half, the first
n // 2 buckets are exact (m = |r| < n // 2), the others logarithmic up to max_distance:
bucket = min(n - 1, n // 2 + floor(log(m / (n // 2)) / log(max_distance / (n // 2)) * (n - n // 2))).
The bias of head h at (i, j) is table[bucket(j - i), h], a learned table of num_buckets x heads
(HF's nn.Embedding(num_buckets, heads) `relative_attention_bias`, built in layer 0 of each stack
and passed on to the others). The input is read only for its length T (and the batch): [T] token
ids or [T, D] features.
"""
from __future__ import annotations

from archcalc.errors import LayerError
from archcalc.layers.base import Arg, Layer, Saved, Step, custom_module, register

SOURCE = '''
class RelativePositionBias(nn.Module):
    """T5's relative position bias [N, heads, T, T] for an input [N, T, ...] (Hugging Face's
    T5Attention.compute_bias): a learned `weight` [num_buckets, heads] looked up at the bucket of
    each key position minus query position."""

    def __init__(self, heads, num_buckets, max_distance, bidirectional):
        super().__init__()
        self.num_buckets, self.max_distance, self.bidirectional = num_buckets, max_distance, bidirectional
        self.weight = nn.Parameter(torch.empty(num_buckets, heads).normal_())  # as nn.Embedding

    def buckets(self, t, device=None):
        """[T, T] bucket ids: query i (rows), key j (columns), relative position j - i."""
        position = torch.arange(t, dtype=torch.long, device=device)
        relative = position[None, :] - position[:, None]
        n, bucket = self.num_buckets, 0
        if self.bidirectional:
            n //= 2
            bucket = (relative > 0).to(torch.long) * n
            relative = torch.abs(relative)
        else:
            relative = -torch.min(relative, torch.zeros_like(relative))
        exact = n // 2
        large = exact + (torch.log(relative.float() / exact) / math.log(self.max_distance / exact)
                         * (n - exact)).to(torch.long)
        large = torch.min(large, torch.full_like(large, n - 1))
        return bucket + torch.where(relative < exact, relative, large)

    def forward(self, x):
        values = F.embedding(self.buckets(x.shape[1], self.weight.device), self.weight)  # [T, T, heads]
        return values.permute(2, 0, 1).unsqueeze(0).expand(x.shape[0], -1, -1, -1)
'''


@register
class RelativePositionBias(Layer):
    kind = "relative_position_bias"
    primary = "heads"
    reads = "batch"  # only the input's batch and length are read: token ids or real values alike
    summary = ("T5's bucketed relative position bias [heads, T, T] for a sequence's length: a learned "
               "num_buckets x heads table, read by attention as its score bias")
    args = (
        Arg("heads", "int", min=1, doc="attention heads (one bias per head)"),
        Arg("num_buckets", "int", 32, min=2, doc="buckets of relative positions (T5: 32)"),
        Arg("max_distance", "int", 128, min=1,
            doc="relative positions this far or farther share the last bucket (T5: 128)"),
        Arg("bidirectional", "bool", True,
            doc="true: keys before and after the query get their own buckets (encoder); false: causal, "
                "only keys up to the query are told apart (decoder)"),
    )
    formulas = {
        "output": "[heads, T, T] (queries x keys), T the input's length ([T] or [T, D])",
        "params": "num_buckets * heads (the table)",
        "macs": "0 (a table lookup)",
        "bucket": "r = key - query; bidirectional: n = num_buckets // 2, offset n for r > 0, m = |r|; "
                  "causal: n = num_buckets, m = max(-r, 0); bucket = m if m < n // 2, else "
                  "min(n - 1, n // 2 + floor(log(m / (n // 2)) / log(max_distance / (n // 2)) * (n - n // 2))) "
                  "(Hugging Face's T5Attention._relative_position_bucket)",
        "rf": "not tracked (it reads no input values)",
        "saved": "T*T bucket ids (int64, 8 B each; F.embedding keeps its indices), not per example",
    }

    def _sizes(self, a, shapes):
        """(T, n, exact): the length, buckets per direction and exact buckets, checked."""
        shape = shapes[0]
        if len(shape) not in (1, 2):
            raise LayerError(f"relative_position_bias reads a sequence's length: [T] token ids or [T, D] "
                             f"features, got {list(shape)}")
        n = a["num_buckets"] // 2 if a["bidirectional"] else a["num_buckets"]
        exact = n // 2
        if exact < 1:
            raise LayerError(f"num_buckets {a['num_buckets']} leaves no exact bucket; a bidirectional bias "
                             "needs at least 4 (2 per direction), a causal one at least 2", "num_buckets")
        if a["max_distance"] <= exact:
            raise LayerError(f"max_distance {a['max_distance']} must be more than the {exact} exact buckets "
                             f"(num_buckets {a['num_buckets']}{' // 2' if a['bidirectional'] else ''} // 2); "
                             "the logarithmic buckets span exact .. max_distance", "max_distance")
        return shape[0], n, exact

    def output_shape(self, a, shapes):
        t, _, _ = self._sizes(a, shapes)
        return a["heads"], t, t

    def params(self, a, shapes):
        return a["num_buckets"] * a["heads"], 0

    def rf(self, a, rfs, shapes, out):
        return None

    def saved_tensors(self, a, shapes, out):
        # F.embedding keeps only its indices, the [T, T] int64 bucket ids, the same for every
        # example (the output is a broadcast view over the batch).
        t, _, _ = self._sizes(a, shapes)
        return [Saved("bucket ids (int64)", elements=t * t, itemsize=8, per_batch=True)]

    def explain(self, a, shapes, out, rf_in, rf_out, row):
        from archcalc.layers import _explain as ex

        t, n, exact = self._sizes(a, shapes)
        how = (f"{n} buckets for keys up to the query and {n} for keys after it" if a["bidirectional"] else
               f"{n} buckets for keys up to the query (causal)")
        return [ex.output_step("[heads, T, T]", f"[{ex.val(a['heads'])}, {ex.val(t)}, {ex.val(t)}]", out,
                               note=f"one bias per head, query and key; {how}: {exact} exact, the rest "
                                    f"logarithmic up to {a['max_distance']}"),
                Step("params", "num_buckets*heads", f"{ex.par(a['num_buckets'])}*{ex.par(a['heads'])}",
                     self.params(a, shapes)[0], note="the learned table, one value per bucket and head"),
                ex.zero("macs", "a table lookup, not a multiply-accumulate"),
                ex.rf_untracked("it reads only the input's length")]

    def torch_module(self, a, shapes):
        self._sizes(a, shapes)
        return custom_module(SOURCE, "RelativePositionBias", a["heads"], a["num_buckets"], a["max_distance"],
                             a["bidirectional"])

    def probe_module(self, a, shapes):
        return self.torch_module(a, shapes)  # its shape, not the identity's, for the layers after it
