"""rotary: rotary position embedding (RoPE, RoFormer) on [..., T, Dh]: feature pairs rotated by
angle p * base^(-2i/dims) at position p."""
from __future__ import annotations

from archcalc.errors import LayerError
from archcalc.geometry.window import is_num
from archcalc.layers.base import Arg, Layer, Saved, custom_module, register

# cos/sin computed in forward, not buffers, so nothing is counted as a parameter.
SOURCE = '''
class Rotary(nn.Module):
    """Rotates feature pairs of [N, ..., T, Dh] by position: pairs (i, i + dims/2) (GPT-NeoX,
    HF LLaMA) or, interleaved, (2i, 2i+1) (RoFormer, Meta LLaMA); features past `dims` pass."""

    def __init__(self, dims, base=10000.0, interleaved=False, scaling=None):
        super().__init__()
        self.dims, self.base, self.interleaved = dims, base, interleaved
        # scaling: None, ("linear", factor) or ("llama3", factor, low_freq_factor, high_freq_factor,
        # original_max_position_embeddings), the frequencies as Hugging Face's rope utilities give them
        self.scaling = tuple(scaling) if scaling else None

    def frequencies(self, dt, device):
        d = self.dims
        freq = self.base ** (-torch.arange(0, d, 2, dtype=dt, device=device) / d)
        if self.scaling is None:
            return freq
        kind, factor = self.scaling[0], self.scaling[1]
        if kind == "linear":
            return freq / factor
        low, high, original = self.scaling[2:]
        # llama3: wavelengths past original/low slowed by factor, below original/high kept, smoothed between
        wavelen = 2 * math.pi / freq
        scaled = torch.where(wavelen > original / low, freq / factor, freq)
        smooth = (original / wavelen - low) / (high - low)
        smoothed = (1 - smooth) * scaled / factor + smooth * scaled
        medium = (wavelen >= original / high) & (wavelen <= original / low)
        return torch.where(medium, smoothed, scaled)

    def forward(self, x):
        t, d = x.shape[-2], self.dims
        dt = torch.promote_types(x.dtype, torch.float32)  # at least float32 for the angles
        pos = torch.arange(t, dtype=dt, device=x.device)[:, None]
        freq = self.frequencies(dt, x.device)
        angle = pos * freq[None, :]
        cos, sin = angle.cos().to(x.dtype), angle.sin().to(x.dtype)
        rot, rest = x[..., :d], x[..., d:]
        if self.interleaved:
            a, b = rot[..., 0::2], rot[..., 1::2]
            rot = torch.stack([a * cos - b * sin, b * cos + a * sin], dim=-1).flatten(-2)
        else:
            a, b = rot[..., : d // 2], rot[..., d // 2:]
            rot = torch.cat([a * cos - b * sin, b * cos + a * sin], dim=-1)
        return torch.cat([rot, rest], dim=-1)
'''


@register
class Rotary(Layer):
    kind = "rotary"
    summary = "Rotary position embedding (RoPE) on [..., T, Dh]: rotates feature pairs by position"
    args = (
        Arg("base", "float", 10000.0, min=0, doc="angle of pair i at position p: p * base^(-2i/dims)"),
        Arg("dims", "int", None, min=2, doc="rotate only the first dims features (even); empty: all of Dh"),
        Arg("interleaved", "bool", False,
            doc="pairs (2i, 2i+1) as in RoFormer; false: (i, i + dims/2) as in GPT-NeoX and HF LLaMA"),
    )
    formulas = {"output": "same as input", "params": "0 (cos and sin computed in forward)",
                "macs": "0 (elementwise)", "rf": "not tracked (token axis)",
                "saved": "cos and sin [T, dims/2] (computed in forward, no buffers; the products a * cos ... keep "
                         "them, not the input): T*dims, the same for every example"}

    def _dims(self, a, shape):
        if len(shape) < 2:
            raise LayerError(f"rotary needs an input shaped [..., T, Dh] (positions, then features), "
                             f"got {list(shape)}")
        if a["base"] <= 0:
            raise LayerError(f"base must be positive, got {a['base']}", "base")
        dh = shape[-1]
        dims = dh if a["dims"] is None else a["dims"]
        if is_num(dims) and dims % 2:
            raise LayerError(f"rotary rotates pairs of features: dims must be even, got {dims}"
                             + (f" (Dh of {list(shape)})" if a["dims"] is None else ""), "dims")
        if is_num(dims) and is_num(dh) and dims > dh:
            raise LayerError(f"dims {dims} is more than the {dh} features of {list(shape)}; "
                             f"expected dims <= {dh}", "dims")
        return dims

    def output_shape(self, a, shapes):
        self._dims(a, shapes[0])
        return shapes[0]

    def rf(self, a, rfs, shapes, out):
        return None

    def saved_tensors(self, a, shapes, out):
        # a * cos, b * sin, ...: the input needs a gradient, cos and sin do not, so each product
        # keeps the table (derivatives.yaml mul: self: grad * other), never the input's halves.
        t, dims = shapes[0][-2], self._dims(a, shapes[0])
        return [Saved("cos, sin [T, dims/2]", elements=t * dims, per_batch=True)]

    def explain(self, a, shapes, out, rf_in, rf_out, row):
        from archcalc.layers import _explain as ex

        dims = self._dims(a, shapes[0])
        part = (f"rotates all {ex.val(dims)} features" if a["dims"] is None
                else f"rotates the first {ex.val(dims)} of {ex.val(shapes[0][-1])} features")
        return [ex.output_step("input shape", "", out, note=part),
                ex.zero("params", "cos and sin are computed in forward"),
                ex.zero("macs", "elementwise products are not counted"),
                ex.rf_untracked("positions are tokens, not a spatial axis")]

    def torch_module(self, a, shapes):
        return custom_module(SOURCE, "Rotary", self._dims(a, shapes[0]), float(a["base"]), a["interleaved"])
