"""class_token: prepend one learned token to a sequence [T, D] (ViT's class token)."""
from __future__ import annotations

from archcalc.errors import LayerError
from archcalc.layers.base import Layer, Step, custom_module, register

SOURCE = '''
class ClassToken(nn.Module):
    """Prepends a learned token to [N, T, D] (torchvision's ViT calls it class_token)."""

    def __init__(self, dim):
        super().__init__()
        self.class_token = nn.Parameter(torch.zeros(1, 1, dim))

    def forward(self, x):
        return torch.cat([self.class_token.expand(x.shape[0], -1, -1), x], dim=1)
'''


def sequence(shape, kind) -> tuple:
    """(T, D) of a [T, D] input."""
    if len(shape) != 2:
        raise LayerError(f"{kind} needs a sequence shaped [T, D] (tokens, features), got {list(shape)}")
    return tuple(shape)


@register
class ClassToken(Layer):
    kind = "class_token"
    summary = "Prepend one learned token to a sequence [T, D] -> [T+1, D] (ViT's class token)"
    formulas = {"output": "[T + 1, D]", "params": "D (the token)", "macs": "0",
                "rf": "not tracked (token axis)", "saved": "nothing (cat; the token is a parameter)"}

    def saved_tensors(self, a, shapes, out):
        return []

    def output_shape(self, a, shapes):
        t, d = sequence(shapes[0], self.kind)
        return (t + 1, d)

    def params(self, a, shapes):
        return sequence(shapes[0], self.kind)[1], 0

    def rf(self, a, rfs, shapes, out):
        return None

    def explain(self, a, shapes, out, rf_in, rf_out, row):
        from archcalc.layers import _explain as ex

        t, d = sequence(shapes[0], self.kind)
        return [ex.output_step("[T + 1, D]", f"[{ex.val(t)} + 1, {ex.val(d)}]", out),
                Step("params", "D", "", d, note="one learned token of D features"),
                ex.zero("macs", "a concatenation"), ex.rf_untracked("tokens are not a spatial axis")]

    def bare_tensor(self, a):
        return "class_token"  # [1, 1, D], as torchvision's VisionTransformer holds it

    def torch_module(self, a, shapes):
        return custom_module(SOURCE, "ClassToken", sequence(shapes[0], self.kind)[1])
