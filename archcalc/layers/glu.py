"""glu: the gated linear unit (nn.GLU), a * sigmoid(b) for the two halves a, b of one dimension.

Its output is half the input along `dim`. Output position o reads input positions o (value) and
o + N/2 (gate), nothing else: along the channels every pixel's field is unchanged; along a
spatial axis that is exactly a window of K = 2 taps at dilation D = N/2 (r + (N/2) j).
"""
from __future__ import annotations

from archcalc.geometry.receptive_field import RF
from archcalc.errors import LayerError
from archcalc.geometry.window import is_num
from archcalc.layers.base import Arg, Layer, Saved, Step, dim_index, register

# Set by `probe_args` in the receptive-field probe network, whose layers have one channel: there a
# GLU over the channels stands in as an identity (its field along the spatial axes is unchanged),
# and one over a spatial axis reads o and o + floor(N/2) even where the probe's enlarged inputs
# make N odd (the probe checks the rule of its own network at its own sizes).
_PROBE = "_one_channel_probe"


def _halved(n, dim: int):
    """N/2 along `dim`; an odd size (or a symbolic one not known to be even) is an error."""
    if is_num(n):
        if n % 2:
            raise LayerError(f"glu halves dim {dim} into value and gate, so its size must be even, got {n}", "dim")
        return n // 2
    import sympy

    if sympy.Mod(n, 2) != 0:
        raise LayerError(f"glu halves dim {dim} into value and gate, so its size must be even, but {n} may be "
                         "odd; declare the symbol a multiple of 2 (symbols: {NAME: {multiple_of: 2}})", "dim")
    return n // 2


@register
class Glu(Layer):
    kind = "glu"
    primary = "dim"
    summary = "Gated linear unit: a * sigmoid(b), a and b the two halves of dim (nn.GLU)"
    args = (Arg("dim", "int", -1, doc="dimension without the batch that is halved; -1 (PyTorch's default) is "
                                      "the last, 0 the channels (nn.GLU(dim=1))"),)
    formulas = {"output": "the input shape with N/2 along dim (N even)", "params": "0",
                "macs": "0 (an elementwise product, not a multiply-accumulate)",
                "saved": "the input (glu_backward reads self)",
                "rf": "unchanged along the channels; along a spatial axis a window of K = 2 taps at dilation "
                      "D = N/2: r + (N/2) j, j, start"}

    def _plan(self, a, shape):
        d = dim_index(a["dim"], len(shape))
        if a.get(_PROBE):
            return d, shape[0] if d == 0 else shape[d] // 2
        return d, _halved(shape[d], d)

    def mixed_dims(self, a, shapes):
        return (dim_index(a["dim"], len(shapes[0])),)  # pairs the two halves of dim

    def output_shape(self, a, shapes):
        d, half = self._plan(a, shapes[0])
        return shapes[0][:d] + (half,) + shapes[0][d + 1:]

    def saved_tensors(self, a, shapes, out):
        return [Saved("input", of="input")]  # derivatives.yaml glu: glu_backward(grad, self, dim)

    def _window(self, a, shape):
        """(kernel, dilation) per spatial axis of the gate's window, or None when not a number."""
        d, half = self._plan(a, shape)
        if not is_num(half):
            return None
        axes = len(shape) - 1
        return (tuple(2 if i == d - 1 else 1 for i in range(axes)),
                tuple(half if i == d - 1 else 1 for i in range(axes)))

    def rf(self, a, rfs, shapes, out):
        rf = rfs[0]
        d, _ = self._plan(a, shapes[0])
        if not isinstance(rf, RF) or d == 0:
            return rf  # None, global, or along the channels: unchanged
        window = self._window(a, shapes[0])
        if window is None or len(rf.size) != len(shapes[0]) - 1:
            return None
        kernel, dilation = window
        return rf.window(kernel, (1,) * len(kernel), (0,) * len(kernel), dilation)

    def explain(self, a, shapes, out, rf_in, rf_out, row):
        from archcalc.layers import _explain as ex

        shape = shapes[0]
        d, half = self._plan(a, shape)
        names = ex.dim_names(len(shape))
        steps = [Step("output", "N/2", f"{ex.val(shape[d])}/2", half, at=(d,), where=names[d],
                      note="a and b: the two halves of dim, value and gate"),
                 ex.output_step("[" + ", ".join(f"{n}/2" if i == d else n for i, n in enumerate(names)) + "]",
                                "", out, note="y = a * sigmoid(b)"),
                 ex.zero("params"), ex.zero("macs", "an elementwise product, not a multiply-accumulate")]
        inherited = ex.rf_inherited(rf_in[0])
        if inherited:
            return steps + [inherited]
        if d == 0:
            return steps + [ex.rf_unchanged(rf_in[0], "each output channel reads channels c and c + C/2 at its "
                                                      "own position")]
        window = self._window(a, shape)
        if not isinstance(rf_out, RF) or window is None:
            return steps + [ex.rf_untracked("the gate's offset N/2 is not a number")]
        kernel, dilation = window
        n = len(kernel)
        return steps + ex.rf_window(rf_in[0], rf_out, kernel, (1,) * n, (0,) * n, dilation)

    def torch_module(self, a, shapes):
        from torch import nn

        return nn.GLU(dim=dim_index(a["dim"], len(shapes[0])) + 1)

    def probe_args(self, a):
        return {**a, _PROBE: True}

    def probe_module(self, a, shapes):
        # A linear, positive stand-in with the same dependence: value plus gate. Over the
        # channels the one-channel probe keeps its channel (see _PROBE).
        from torch import nn

        d, half = self._plan(a, shapes[0])
        if d == 0:
            return nn.Identity()
        dim = d + 1

        class ValuePlusGate(nn.Module):
            def forward(self, x):
                return x.narrow(dim, 0, half) + x.narrow(dim, half, half)

        return ValuePlusGate()
