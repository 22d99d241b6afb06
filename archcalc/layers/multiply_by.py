"""multiply_by: multiply every value by a constant number, no parameters (`x * value`): T5 scales
the decoder's output by d_model ** -0.5 before its tied lm_head (Hugging Face's
`sequence_output * (self.model_dim ** -0.5)`). Unlike `scale`, nothing is learned."""
from __future__ import annotations

from archcalc.layers.base import Arg, Layer, Step, custom_module, register

SOURCE = '''
class MultiplyBy(nn.Module):
    """x * value, a constant (no parameters)."""

    def __init__(self, value):
        super().__init__()
        self.value = value

    def forward(self, x):
        return x * self.value

    def extra_repr(self):
        return f"value={self.value}"
'''


@register
class MultiplyBy(Layer):
    kind = "multiply_by"
    keeps_layout = True
    primary = "value"
    summary = "Multiply by a constant number, no parameters (T5: the decoder output times d_model ** -0.5)"
    args = (Arg("value", "float", doc="the constant (an expression: \"512 ** -0.5\")"),)
    formulas = {"output": "same as input", "params": "0 (a constant, not learned: `scale` learns one)",
                "macs": "0 (an elementwise product, as multiply: not a multiply-accumulate)",
                "rf": "unchanged", "saved": "nothing (a product by a number keeps only the number)"}

    def saved_tensors(self, a, shapes, out):
        return []

    def mixed_dims(self, a, shapes):
        return ()  # each value on its own

    def explain(self, a, shapes, out, rf_in, rf_out, row):
        from archcalc.layers import _explain as ex

        return [ex.output_step("input shape", "", out, note=f"every value times {a['value']:g}"),
                Step("params", "0", "", 0, note="a constant, not a learned weight"),
                ex.zero("macs", "an elementwise product, not a multiply-accumulate"),
                ex.rf_unchanged(rf_in[0])]

    def torch_module(self, a, shapes):
        return custom_module(SOURCE, "MultiplyBy", float(a["value"]))
