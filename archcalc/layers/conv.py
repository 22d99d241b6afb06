"""conv: 1d/2d/3d convolution (torch.nn.Conv1d/2d/3d), rank taken from the input."""
from __future__ import annotations

from archcalc.errors import LayerError
from archcalc.geometry.window import axis_name, is_num, resolve_padding, window_output
from archcalc.layers.base import Arg, Layer, Saved, Step, check_groups, prod, register


@register
class Conv(Layer):
    kind = "conv"
    keeps_memory_format = True
    probe_linear = True
    primary = "out"
    summary = "Convolution over 1, 2 or 3 spatial axes (nn.Conv1d/2d/3d)"
    args = (
        Arg("out", "int", min=1, doc="output channels"),
        Arg("kernel", "ints", min=1, doc="kernel size, one value or one per axis"),
        Arg("stride", "ints", 1, min=1),
        Arg("padding", "padding", 0, min=0, doc="number(s), 'same' or 'valid'"),
        Arg("dilation", "ints", 1, min=1),
        Arg("groups", "int", 1, min=1),
        Arg("bias", "bool", True),
        Arg("padding_mode", "choice", "zeros", choices=("zeros", "reflect", "replicate", "circular")),
    )
    formulas = {
        "output": "M = floor((N + 2P - D(K-1) - 1) / S) + 1 per axis",
        "params": "K1*K2*...*(Cin/groups)*Cout + Cout (bias)",
        "macs": "M1*M2*...*K1*K2*...*(Cin/groups)*Cout",
        "rf": "r' = r + D(K-1) j,  j' = j S,  start' = start - P j",
        "saved": "its input (convolution: input, weight; the weight is a parameter); padding_mode "
                 "reflect/replicate: the input (the pad keeps it) + the padded copy; circular: the padded "
                 "copy; 'same' padding uneven on an axis (even kernel): the input padded by the difference",
    }

    def saved_tensors(self, a, shapes, out):
        shape = shapes[0]
        axes, kernel, stride, dilation, left, right = self.geometry(a, shape)
        if a["padding_mode"] != "zeros":
            # nn.ConvNd pads with F.pad(mode) first, then convolves without padding: the conv keeps
            # the padded copy; reflection and replication pads keep their input too, for its own
            # gradient (none on the network input).
            padded = (shape[0],) + tuple(n + pl + pr for n, pl, pr in zip(shape[1:], left, right))
            first = ([Saved("input", "input", for_grad_of=(0,))] if a["padding_mode"] in ("reflect", "replicate")
                     else [])
            return first + [Saved("padded input", elements=prod(padded))]
        if tuple(left) != tuple(right):
            # 'same' with an odd total padding: aten pads the input by the extra amount (a copy the
            # conv keeps) and convolves with the symmetric part.
            padded = (shape[0],) + tuple(n + abs(pr - pl) for n, pl, pr in zip(shape[1:], left, right))
            return [Saved("padded input", elements=prod(padded))]
        return [Saved("input", "input")]

    def geometry(self, a, shape):
        axes = self.spatial_axes(shape, "conv")
        kernel = self.per_axis(a["kernel"], axes, "kernel")
        stride = self.per_axis(a["stride"], axes, "stride")
        dilation = self.per_axis(a["dilation"], axes, "dilation")
        padding = a["padding"] if isinstance(a["padding"], str) else self.per_axis(a["padding"], axes, "padding")
        left, right = resolve_padding(padding, kernel, dilation, stride, axes)
        return axes, kernel, stride, dilation, left, right

    def _channels(self, a, shape):
        """Input channels each filter sees: Cin / groups."""
        check_groups(shape[0], a["out"], a["groups"])
        return shape[0] // a["groups"]

    def output_shape(self, a, shapes):
        shape = shapes[0]
        axes, kernel, stride, dilation, left, right = self.geometry(a, shape)
        self._channels(a, shape)
        mode = a["padding_mode"]
        if mode in ("reflect", "circular"):  # PyTorch's limits on these padding modes
            for i, (n, pl, pr) in enumerate(zip(shape[1:], left, right)):
                limit, bound = (n - 1, "smaller than") if mode == "reflect" else (n, "at most")
                if is_num(n) and max(pl, pr) > limit:
                    raise LayerError(f"padding {max(pl, pr)} with padding_mode '{mode}' must be {bound} the "
                                     f"input size {n} along {axis_name(i, axes)}", "padding")
        return (a["out"],) + tuple(
            window_output(n, k, s, pl, pr, d, i, axes=axes)
            for i, (n, k, s, pl, pr, d) in enumerate(zip(shape[1:], kernel, stride, left, right, dilation)))

    def params(self, a, shapes):
        _, kernel, *_ = self.geometry(a, shapes[0])
        weights = prod(kernel) * self._channels(a, shapes[0]) * a["out"]
        return weights + (a["out"] if a["bias"] else 0), 0

    def macs(self, a, shapes, out):
        _, kernel, *_ = self.geometry(a, shapes[0])
        return prod(out[1:]) * prod(kernel) * self._channels(a, shapes[0]) * a["out"]

    def rf(self, a, rfs, shapes, out):
        if rfs[0] is None or rfs[0] == "global":
            return rfs[0]
        _, kernel, stride, dilation, left, _ = self.geometry(a, shapes[0])
        return rfs[0].window(kernel, stride, left, dilation)

    def torch_module(self, a, shapes):
        from torch import nn

        axes, kernel, stride, dilation, left, right = self.geometry(a, shapes[0])
        padding = a["padding"] if isinstance(a["padding"], str) else left
        cls = (nn.Conv1d, nn.Conv2d, nn.Conv3d)[axes - 1]
        return cls(shapes[0][0], a["out"], kernel, stride=stride, padding=padding, dilation=dilation,
                   groups=a["groups"], bias=a["bias"], padding_mode=a["padding_mode"])

    def explain(self, a, shapes, out, rf_in, rf_out, row):
        from archcalc.layers import _explain as ex

        shape = shapes[0]
        axes, kernel, stride, dilation, left, right = self.geometry(a, shape)
        ch, cout, groups = self._channels(a, shape), a["out"], a["groups"]
        K, M, ks = ex.letters("K", axes), ex.letters("M", axes), ex.times(kernel)
        cin_f = "Cin" if groups == 1 else "(Cin/groups)"
        group_note = (f"groups {groups}: each filter sees Cin/groups = {ex.val(shape[0])}/{groups} = "
                      f"{ex.val(ch)} channel{'' if ex.val(ch) == '1' else 's'}" if groups != 1 else "")
        pad_note = f"padding '{a['padding']}'" if isinstance(a["padding"], str) else ""
        steps = ex.window_output_steps(shape, kernel, stride, left, right, dilation, note=pad_note)
        steps.append(ex.output_step(f"[Cout, {', '.join(f'M{i + 1}' for i in range(axes))}]",
                                    ex.shape_text(out), out))
        weights = prod(kernel) * ch
        if a["bias"]:
            steps.append(Step("params", f"({K}*{cin_f} + 1)*Cout", f"({ks}*{ex.par(ch)} + 1)*{ex.par(cout)}",
                              (weights + 1) * cout, note=group_note))
        else:
            steps.append(Step("params", f"{K}*{cin_f}*Cout", f"{ks}*{ex.par(ch)}*{ex.par(cout)}",
                              weights * cout, note="; ".join(filter(None, [group_note, "no bias"]))))
        steps.append(Step("macs", f"{M}*{K}*(Cin/groups)*Cout",
                          f"{ex.times(out[1:])}*{ks}*{ex.par(ch)}*{ex.par(cout)}",
                          prod(out[1:]) * prod(kernel) * ch * cout))
        return steps + ex.rf_window(rf_in[0], rf_out, kernel, stride, left, dilation)
