"""Normalisation kinds: batchnorm, layernorm, groupnorm, instancenorm.

Receptive fields treat normalisation as per-channel scaling (statistics are fixed at inference).
"""
from __future__ import annotations

from archcalc.errors import LayerError
from archcalc.layers.base import Arg, Layer, Saved, prod, register


@register
class BatchNorm(Layer):
    kind = "batchnorm"
    keeps_memory_format = True
    summary = "Batch normalisation over the channel dimension (nn.BatchNorm1d/2d/3d)"
    args = (
        Arg("eps", "float", 1e-5, min=0),
        Arg("momentum", "float", 0.1, min=0, max=1),
        Arg("affine", "bool", True, doc="learn a scale and a shift per channel"),
        Arg("track_running_stats", "bool", True, doc="keep running mean and variance"),
    )
    formulas = {
        "output": "same as input",
        "params": "2C trainable (scale, shift) + 2C non-trainable (running mean, variance): "
                  "the lecture's '4K parameters' and Keras' count; num_batches_tracked is not counted",
        "macs": "0",
        "rf": "unchanged",
        "saved": "its input + save_mean and save_invstd, C each for the whole batch (native_batch_norm in "
                 "training: input, weight, running stats, result1, result2; weight and running stats are "
                 "model state)",
    }

    def saved_tensors(self, a, shapes, out):
        c = shapes[0][0]
        return [Saved("input", "input"), Saved("mean", elements=c, per_batch=True),
                Saved("invstd", elements=c, per_batch=True)]

    def output_shape(self, a, shapes):
        if len(shapes[0]) > 4:  # nn.BatchNorm3d is the last one
            raise LayerError(f"batchnorm supports up to 3 spatial axes, got {list(shapes[0])}")
        return shapes[0]

    def params(self, a, shapes):
        c = shapes[0][0]
        return (2 * c if a["affine"] else 0), (2 * c if a["track_running_stats"] else 0)

    def explain(self, a, shapes, out, rf_in, rf_out, row):
        from archcalc.layers import _explain as ex

        return ex.norm_steps(shapes[0][0], a["affine"], a["track_running_stats"], out, rf_in[0],
                             "scale and shift per channel", "running mean and variance per channel")

    def torch_module(self, a, shapes):
        from torch import nn

        rank = len(shapes[0])
        if rank > 4:
            raise LayerError(f"batchnorm supports up to 3 spatial axes, got {list(shapes[0])}")
        cls = nn.BatchNorm1d if rank <= 2 else (nn.BatchNorm2d if rank == 3 else nn.BatchNorm3d)
        return cls(shapes[0][0], eps=a["eps"], momentum=a["momentum"], affine=a["affine"],
                   track_running_stats=a["track_running_stats"])


@register
class LayerNorm(Layer):
    kind = "layernorm"
    summary = "Layer normalisation over the last `dims` dimensions (nn.LayerNorm)"
    args = (
        Arg("dims", "int", 1, min=1, doc="how many trailing dimensions are normalised together"),
        Arg("eps", "float", 1e-5, min=0),
        Arg("affine", "bool", True, doc="learn an elementwise scale (and shift)"),
        Arg("bias", "bool", True, doc="learn the shift too (with affine)"),
    )
    formulas = {"output": "same as input", "params": "2 * prod(normalised dims) (scale and shift)",
                "macs": "0", "rf": "unchanged (statistics ignored)",
                "saved": "its input + mean and rstd, one per normalised group: prod(leading dims) each "
                         "(native_layer_norm: input, weight, bias, result1, result2)"}

    def saved_tensors(self, a, shapes, out):
        groups = prod(shapes[0]) // prod(self._normalized(a, shapes[0]))
        return [Saved("input", "input"), Saved("mean", elements=groups), Saved("rstd", elements=groups)]

    def _normalized(self, a, shape):
        if a["dims"] > len(shape):
            raise LayerError(f"dims {a['dims']} is more than the input's {len(shape)} dimensions "
                             f"{list(shape)}", "dims")
        return shape[len(shape) - a["dims"]:]

    def mixed_dims(self, a, shapes):
        rank = len(shapes[0])
        return tuple(range(rank - len(self._normalized(a, shapes[0])), rank))

    def params(self, a, shapes):
        n = prod(self._normalized(a, shapes[0]))
        return ((n if a["affine"] else 0) + (n if a["affine"] and a["bias"] else 0)), 0

    def explain(self, a, shapes, out, rf_in, rf_out, row):
        from archcalc.layers import _explain as ex
        from archcalc.layers.base import Step

        shape = shapes[0]
        norm = self._normalized(a, shape)
        names = ex.dim_names(len(shape))[len(shape) - len(norm):]
        n, dims = prod(norm), "*".join(names)
        over = f"normalises over the last {a['dims']} dim{'s' if a['dims'] > 1 else ''} ({', '.join(names)})"
        if a["affine"] and a["bias"]:
            params = Step("params", f"2*{dims if len(names) == 1 else f'({dims})'}", f"2*{ex.times(norm)}"
                          if len(norm) == 1 else f"2*({ex.times(norm)})", n + n, note=f"{over}; scale and shift")
        elif a["affine"]:
            params = Step("params", dims, ex.times(norm), n, note=f"{over}; scale only (bias: false)")
        else:
            params = ex.zero("params", f"{over}; affine: false")
        return [ex.output_step("input shape", "", out), params, ex.zero("macs", "normalisation is not counted"),
                ex.rf_unchanged(rf_in[0], "statistics ignored")]

    def torch_module(self, a, shapes):
        from torch import nn

        return nn.LayerNorm(self._normalized(a, shapes[0]), eps=a["eps"], elementwise_affine=a["affine"],
                            bias=a["bias"])


@register
class GroupNorm(Layer):
    kind = "groupnorm"
    keeps_memory_format = True
    saves_contiguous_input = "memory_format"  # a split piece or permuted view: a contiguous copy
    primary = "groups"
    summary = "Group normalisation: channels split into groups (nn.GroupNorm)"
    args = (Arg("groups", "int", min=1), Arg("eps", "float", 1e-5, min=0), Arg("affine", "bool", True))
    formulas = {"output": "same as input", "params": "2C (scale and shift per channel)", "macs": "0",
                "rf": "unchanged (statistics ignored)",
                "saved": "its input + mean and rstd, `groups` values each per example (native_group_norm: "
                         "input, weight, result1, result2); an input neither contiguous nor channels-last "
                         "(a split piece) is kept as a contiguous copy"}

    def saved_tensors(self, a, shapes, out):
        g = a["groups"]
        return [Saved("input", "input"), Saved("mean", elements=g), Saved("rstd", elements=g)]

    def output_shape(self, a, shapes):
        if shapes[0][0] % a["groups"]:
            raise LayerError(f"channels {shapes[0][0]} are not divisible by groups {a['groups']}", "groups")
        if shapes[0][0] // a["groups"] * prod(shapes[0][1:]) == 1:  # PyTorch refuses (at batch 1)
            raise LayerError(f"each group would normalise a single value: {shapes[0][0]} channel(s) in "
                             f"{a['groups']} group(s) of {list(shapes[0])}", "groups")
        return shapes[0]

    def params(self, a, shapes):
        return (2 * shapes[0][0] if a["affine"] else 0), 0

    def explain(self, a, shapes, out, rf_in, rf_out, row):
        from archcalc.layers import _explain as ex
        from archcalc.layers.base import Step

        c, g = shapes[0][0], a["groups"]
        groups = f"{g} groups of C/groups = {ex.val(c)}/{g} = {ex.val(c // g)} channels"
        params = (Step("params", "2C", f"2*{ex.par(c)}", 2 * c, note=f"{groups}; scale and shift per channel")
                  if a["affine"] else ex.zero("params", f"{groups}; affine: false"))
        return [ex.output_step("input shape", "", out), params, ex.zero("macs", "normalisation is not counted"),
                ex.rf_unchanged(rf_in[0], "statistics ignored")]

    def torch_module(self, a, shapes):
        from torch import nn

        return nn.GroupNorm(a["groups"], shapes[0][0], eps=a["eps"], affine=a["affine"])


@register
class InstanceNorm(Layer):
    kind = "instancenorm"
    saves_contiguous_input = "contiguous"  # F.instance_norm: input.contiguous().view(1, N*C, ...)
    summary = "Instance normalisation per channel and example (nn.InstanceNorm1d/2d/3d)"
    args = (
        Arg("eps", "float", 1e-5, min=0),
        Arg("momentum", "float", 0.1, min=0, max=1),
        Arg("affine", "bool", False),
        Arg("track_running_stats", "bool", False),
    )
    formulas = {"output": "same as input",
                "params": "2C trainable with affine; 2C non-trainable with track_running_stats",
                "macs": "0", "rf": "unchanged (statistics ignored)",
                "saved": "its input + mean and invstd, C each per example (F.instance_norm is batch_norm on "
                         "[1, N*C, ...]) + the weight repeated per example (affine, C) + the running mean and "
                         "variance repeated (track_running_stats, C each); an input not contiguous is kept "
                         "as a contiguous copy"}

    def saved_tensors(self, a, shapes, out):
        c = shapes[0][0]
        names = ["mean", "invstd"] + ["weight, repeated"] * a["affine"] + \
            ["running mean, repeated", "running var, repeated"] * a["track_running_stats"]
        return [Saved("input", "input")] + [Saved(n, elements=c) for n in names]

    def output_shape(self, a, shapes):
        self.spatial_axes(shapes[0], "instancenorm")
        if prod(shapes[0][1:]) == 1:  # statistics of one value: PyTorch refuses
            raise LayerError(f"instancenorm needs more than one spatial position to normalise over, got "
                             f"{list(shapes[0])}")
        return shapes[0]

    def params(self, a, shapes):
        c = shapes[0][0]
        return (2 * c if a["affine"] else 0), (2 * c if a["track_running_stats"] else 0)

    def explain(self, a, shapes, out, rf_in, rf_out, row):
        from archcalc.layers import _explain as ex

        return ex.norm_steps(shapes[0][0], a["affine"], a["track_running_stats"], out, rf_in[0],
                             "scale and shift per channel", "running mean and variance per channel")

    def torch_module(self, a, shapes):
        from torch import nn

        cls = getattr(nn, f"InstanceNorm{len(shapes[0]) - 1}d")
        return cls(shapes[0][0], eps=a["eps"], momentum=a["momentum"], affine=a["affine"],
                   track_running_stats=a["track_running_stats"])
