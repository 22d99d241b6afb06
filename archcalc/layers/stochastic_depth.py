"""stochastic_depth: drop a residual branch at random during training (torchvision.ops.StochasticDepth,
Huang et al. 2016, "Deep Networks with Stochastic Depth"; EfficientNet's and ConvNeXt's blocks).

torchvision's convention, followed exactly: in training, mode "row" draws one Bernoulli(1 - p) per
example (a noise tensor [N, 1, 1, ...]) and mode "batch" one for the whole batch ([1, 1, ...]);
the input is multiplied by noise / (1 - p) (survivors scaled by 1/(1-p); when p = 1 everything is
zeroed and nothing divided). p = 0 or eval mode: the identity. No parameters, no MACs (one product
per value, not a multiply-accumulate), shape and receptive field unchanged.
"""
from __future__ import annotations

from archcalc.layers.base import Arg, Layer, Saved, Step, custom_module, register

SOURCE = '''
class StochasticDepth(nn.Module):
    """torchvision.ops.StochasticDepth: in training, zero whole examples ("row") or the whole batch
    ("batch") with probability p and scale the rest by 1 / (1 - p); identity in eval."""

    def __init__(self, p, mode):
        super().__init__()
        self.p = p
        self.mode = mode

    def forward(self, x):
        if not self.training or self.p == 0.0:
            return x
        survival = 1.0 - self.p
        size = [x.shape[0]] + [1] * (x.ndim - 1) if self.mode == "row" else [1] * x.ndim
        noise = torch.empty(size, dtype=x.dtype, device=x.device).bernoulli_(survival)
        if survival > 0.0:
            noise.div_(survival)
        return x * noise

    def extra_repr(self):
        return f"p={self.p}, mode={self.mode}"
'''


@register
class StochasticDepth(Layer):
    kind = "stochastic_depth"
    keeps_layout = True
    primary = "p"
    summary = ("Drop whole examples (mode row) or the whole batch (mode batch) with probability p during "
               "training, scale the rest by 1/(1-p); identity in eval (torchvision.ops.StochasticDepth)")
    args = (Arg("p", "float", min=0, max=1, doc="probability of zeroing an example (row) or the batch (batch)"),
            Arg("mode", "choice", "row", choices=("row", "batch"),
                doc="row: one draw per example; batch: one draw for the whole batch"))
    formulas = {"output": "same as input",
                "params": "0",
                "macs": "0 (training: one product per value by noise / (1 - p), not a multiply-accumulate; "
                        "eval: the identity)",
                "rf": "unchanged",
                "saved": "the noise x * noise multiplies by (mul: other): one value per example (row) or one "
                         "for the batch (batch); nothing with p = 0"}

    def saved_tensors(self, a, shapes, out):
        if a["p"] == 0:
            return []
        return [Saved("noise", elements=1, per_batch=a["mode"] == "batch")]

    def mixed_dims(self, a, shapes):
        return ()  # each value on its own

    def explain(self, a, shapes, out, rf_in, rf_out, row):
        from archcalc.layers import _explain as ex

        what = "each example" if a["mode"] == "row" else "the whole batch"
        note = (f"training: {what} zeroed with probability p = {a['p']:g}, the rest times 1/(1-p); "
                "eval: y = x")
        return [ex.output_step("input shape", "", out, note=note),
                Step("params", "0", "", 0, note="nothing learned"),
                ex.zero("macs", "a product per value in training, not a multiply-accumulate"),
                ex.rf_unchanged(rf_in[0])]

    def torch_module(self, a, shapes):
        return custom_module(SOURCE, "StochasticDepth", float(a["p"]), str(a["mode"]))
