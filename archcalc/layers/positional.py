"""positional: add a position embedding to a sequence [T, D]: a learned table (BERT, ViT, GPT-2)
or the fixed sinusoidal encoding of "Attention is all you need"."""
from __future__ import annotations

from archcalc.errors import LayerError
from archcalc.geometry.window import is_num
from archcalc.layers.base import Arg, Layer, Step, custom_module, register
from archcalc.layers.class_token import sequence

LEARNED = '''
class PositionEmbedding(nn.Module):
    """Adds rows 0..T-1 of a learned table of `num` positions to [N, T, D]. init "sinusoids"
    starts the table as Whisper's sinusoids(num, dim): sin(p * 10000^(-i/(D/2-1))) in the first
    D/2 features, cos in the rest (tensor2tensor's timing signal)."""

    def __init__(self, num, dim, init="normal", broadcast=False):
        super().__init__()
        if init == "sinusoids":
            inv = torch.exp(-math.log(10000.0) / (dim // 2 - 1) * torch.arange(dim // 2))
            angle = torch.arange(num)[:, None] * inv[None, :]
            table = torch.cat([angle.sin(), angle.cos()], dim=1)
        else:
            table = torch.empty(num, dim).normal_(std=0.02)
        # broadcast: held as [1, num, D], with the batch axis (torchvision's ViT pos_embedding)
        self.weight = nn.Parameter(table[None] if broadcast else table)

    def forward(self, x):
        table = self.weight[0] if self.weight.dim() == 3 else self.weight
        return x + table[: x.shape[1]]
'''

# Computed in forward, not a buffer: a fixed table is neither a parameter nor state to count.
SINUSOIDAL = '''
class SinusoidalPositions(nn.Module):
    """Adds PE(p, 2i) = sin(p / 10000^(2i/D)), PE(p, 2i+1) = cos(p / 10000^(2i/D)) to [N, T, D]."""

    def forward(self, x):
        t, d = x.shape[-2], x.shape[-1]
        dt = torch.promote_types(x.dtype, torch.float32)  # at least float32 for the angles
        pos = torch.arange(t, dtype=dt, device=x.device)[:, None]
        freq = torch.exp(torch.arange(0, d, 2, dtype=dt, device=x.device) * (-math.log(10000.0) / d))
        angle = pos * freq[None, :]
        table = torch.stack([angle.sin(), angle.cos()], dim=-1).reshape(t, d)
        return x + table.to(x.dtype)
'''


@register
class Positional(Layer):
    kind = "positional"
    summary = "Add a position embedding to a sequence [T, D]: learned (num x D table) or sinusoidal"
    args = (
        Arg("learned", "bool", True, doc="a learned table; false: the fixed sinusoidal encoding"),
        Arg("num", "int", None, min=1, doc="rows of the learned table (positions); empty: T"),
        Arg("init", "choice", "normal", choices=("normal", "sinusoids"),
            doc="the learned table's first values: normal (std 0.02), or sinusoids as Whisper's encoder "
                "table (sin of the first D/2 features, cos of the rest; frozen there with trainable: false)"),
        Arg("broadcast", "bool", False, doc="hold the learned table as [1, num, D], with the batch axis, as "
                                            "torchvision's ViT (pos_embedding) and timm (pos_embed) do; "
                                            "false: [num, D] (BERT, GPT-2). The figures are the same"),
    )
    formulas = {"output": "same as input", "params": "num * D with learned (num = T by default); 0 sinusoidal",
                "macs": "0 (an addition)", "rf": "not tracked (token axis)",
                "saved": "nothing (an addition; the table is a parameter or a constant)"}

    def saved_tensors(self, a, shapes, out):
        return []

    def _num(self, a, shape):
        t, d = sequence(shape, self.kind)
        if not a["learned"]:
            if a["num"] is not None:
                raise LayerError("'num' is the size of a learned table; the sinusoidal encoding "
                                 "(learned: false) has none", "num")
            if a["init"] != "normal":
                raise LayerError("'init' sets a learned table's first values; the sinusoidal encoding "
                                 "(learned: false) has no table", "init")
            if a["broadcast"]:
                raise LayerError("'broadcast' says how a learned table is held; the sinusoidal encoding "
                                 "(learned: false) has no table", "broadcast")
            if is_num(d) and d % 2:
                raise LayerError(f"the sinusoidal encoding pairs sin and cos features: D must be even, "
                                 f"got {list(shape)}")
            return None
        if a["init"] == "sinusoids" and is_num(d) and (d % 2 or d < 4):
            raise LayerError(f"sinusoids pair sin and cos over D/2 > 1 timescales: D must be even and at "
                             f"least 4, got {list(shape)}", "init")
        num = t if a["num"] is None else a["num"]
        if is_num(num) and is_num(t) and num < t:
            raise LayerError(f"the table has {num} positions but the sequence has T = {t} tokens "
                             f"({list(shape)}); expected num >= {t}", "num")
        return num

    def output_shape(self, a, shapes):
        self._num(a, shapes[0])
        return shapes[0]

    def params(self, a, shapes):
        num = self._num(a, shapes[0])
        return (0 if num is None else num * shapes[0][1]), 0

    def rf(self, a, rfs, shapes, out):
        return None

    def explain(self, a, shapes, out, rf_in, rf_out, row):
        from archcalc.layers import _explain as ex

        num, d = self._num(a, shapes[0]), shapes[0][1]
        if num is None:
            params = ex.zero("params", "the sinusoidal table is fixed and computed in forward")
        else:
            given = a["num"] is not None
            params = Step("params", "num*D" if given else "T*D", f"{ex.par(num)}*{ex.par(d)}", num * d,
                          note="a learned row per position")
        return [ex.output_step("input shape", "", out), params, ex.zero("macs", "an addition"),
                ex.rf_untracked("tokens are not a spatial axis")]

    def bare_tensor(self, a):
        return "weight" if a["learned"] else None  # the sinusoidal encoding holds no tensor

    def torch_module(self, a, shapes):
        num = self._num(a, shapes[0])
        if num is None:
            return custom_module(SINUSOIDAL, "SinusoidalPositions")
        if a["broadcast"]:
            return custom_module(LEARNED, "PositionEmbedding", num, shapes[0][1], a["init"], True)
        if a["init"] == "sinusoids":
            return custom_module(LEARNED, "PositionEmbedding", num, shapes[0][1], "sinusoids")
        return custom_module(LEARNED, "PositionEmbedding", num, shapes[0][1])
