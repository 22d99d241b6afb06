"""scale: multiply by a learned vector along one dimension: layer scale (ConvNeXt's gamma on [C,
H, W], CaiT's and DeiT-III's on a sequence [T, D] with dim -1)."""
from __future__ import annotations

from archcalc.layers.base import Arg, Layer, Saved, Step, custom_module, dim_index, register

SOURCE = '''
class LayerScale(nn.Module):
    """Multiplies [N, ...] by a learned vector gamma along dimension `dim` (batch included)."""

    def __init__(self, channels, dim, init, stored=None):
        super().__init__()
        self.dim = dim
        # stored: gamma's own shape where it is not a vector ([C, 1, 1]: torchvision's ConvNeXt)
        self.gamma = nn.Parameter(init * torch.ones(stored or (channels,)))

    def forward(self, x):
        shape = [1] * x.dim()
        shape[self.dim] = -1
        return x * self.gamma.view(shape)
'''


@register
class Scale(Layer):
    kind = "scale"
    primary = "init"
    summary = ("Multiply by a learned vector along `dim` (layer scale: ConvNeXt, CaiT); "
               "gamma starts at `init`")
    args = (
        Arg("init", "float", 1.0, doc="the starting value of every entry of gamma (ConvNeXt: 1e-6)"),
        Arg("dim", "int", 0, doc="the dimension gamma runs along, batch excluded: 0 channels of [C, ...], "
                                 "-1 features of a sequence [T, D]"),
        Arg("broadcast", "bool", False, doc="hold gamma in the shape it multiplies by, [C, 1, 1] for dim 0 of "
                                            "[C, H, W], as torchvision's ConvNeXt does (layer_scale); false: "
                                            "a vector [C] (timm). The figures are the same"),
    )
    formulas = {"output": "same as input", "params": "C = size of dim (one gamma per channel)",
                "macs": "0 (an elementwise product, as multiply: not a multiply-accumulate)",
                "rf": "unchanged", "saved": "its input (mul: self, for gamma's gradient; gamma is a parameter); "
                                            "nothing with trainable: false"}
    saves_input_for_weights = True
    keeps_layout = True

    def saved_tensors(self, a, shapes, out):
        return [Saved("input", "input")]

    def _size(self, a, shape):
        return shape[dim_index(a["dim"], len(shape))]

    def output_shape(self, a, shapes):
        self._size(a, shapes[0])
        return shapes[0]

    def params(self, a, shapes):
        return self._size(a, shapes[0]), 0

    def mixed_dims(self, a, shapes):
        return ()  # each value times its gamma

    def explain(self, a, shapes, out, rf_in, rf_out, row):
        from archcalc.layers import _explain as ex

        shape = shapes[0]
        dim = dim_index(a["dim"], len(shape))
        name = ex.dim_names(len(shape))[dim]
        return [ex.output_step("input shape", "", out),
                Step("params", name, "", shape[dim], note=f"one gamma per index of dim {dim}, starting at {a['init']:g}"),
                ex.zero("macs", "an elementwise product, not a multiply-accumulate"),
                ex.rf_unchanged(rf_in[0])]

    def bare_tensor(self, a):
        return "gamma"

    def torch_module(self, a, shapes):
        shape = shapes[0]
        dim = dim_index(a["dim"], len(shape))
        if a["broadcast"] and dim < len(shape) - 1:  # [C, 1, 1]: trailing ones after the scaled dim
            stored = (shape[dim],) + (1,) * (len(shape) - 1 - dim)
            return custom_module(SOURCE, "LayerScale", shape[dim], dim + 1, float(a["init"]), stored)
        return custom_module(SOURCE, "LayerScale", shape[dim], dim + 1, float(a["init"]))
