"""channel_shuffle: ShuffleNet's channel shuffle (nn.ChannelShuffle). The C channels, seen as
`groups` rows of C/groups, are read column by column: output channel j*groups + i is input channel
i*(C/groups) + j. A permutation of channels: no parameters, no MACs, every pixel's receptive field
unchanged (each output pixel still comes from the same spatial place).

The receptive-field probe runs with one channel per branch, so it cannot permute channels the
way the real network does; its stand-in gives every channel the sum of all of them. That is the
field the analysis states (fields are per pixel over all channels, and a concat's is the union),
and what the real shuffle gives any slice of at least `groups` channels: such a slice holds
channels of every group (ShuffleNet's split after the shuffle sees both branches)."""
from __future__ import annotations

from archcalc.errors import LayerError
from archcalc.layers.base import Arg, Layer, register


@register
class ChannelShuffle(Layer):
    kind = "channel_shuffle"
    keeps_memory_format = True
    primary = "groups"
    args = (Arg("groups", "int", min=1, doc="channel groups; they divide the channels"),)
    summary = "Interleave channel groups (ShuffleNet): output channel j*g + i is input channel i*(C/g) + j"
    formulas = {"output": "[C, ...] (C divisible by g)", "params": "0", "macs": "0", "rf": "unchanged",
                "saved": "nothing (a permutation of channels)"}

    def saved_tensors(self, a, shapes, out):
        return []

    def output_shape(self, a, shapes):
        shape = shapes[0]
        if len(shape) < 2:
            raise LayerError(f"channel_shuffle needs an input shaped [C, L], [C, H, W] or more, got {list(shape)}")
        c, g = shape[0], a["groups"]
        if isinstance(c, int) and c % g:
            raise LayerError(f"input channels {c} are not divisible by groups {g}", "groups")
        return shape

    def torch_module(self, a, shapes):
        from torch import nn

        return nn.ChannelShuffle(a["groups"])

    def probe_module(self, a, shapes):
        from torch import nn

        class MixChannels(nn.Module):
            def forward(self, x):
                return x.sum(1, keepdim=True).expand_as(x)

        return MixChannels()
