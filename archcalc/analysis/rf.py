"""Receptive fields (Araujo, Norris & Sim, Distill 2019), one entry per spatial axis.

- size:   how many input pixels one output pixel sees (r);
- stride: input pixels between neighbouring outputs, also called jump (j);
- start:  input coordinate of the first pixel seen by output 0; negative means it lies in padding.

A layer with a window of k taps, dilation d, stride s and left padding p maps (r, j, start) to
(r + d(k-1) j,  j s,  start - p j).  `GLOBAL` marks outputs that see the whole input (after flatten,
linear or global pooling); `None` marks tensors whose axes no longer correspond to input axes.
Strides may be fractions after upsampling; they are kept exact as `Fraction`.
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

GLOBAL = "global"


@dataclass(frozen=True, slots=True)
class RF:
    size: tuple
    stride: tuple
    start: tuple
    misaligned: bool = False  # set when merged branches have different strides

    @classmethod
    def identity(cls, axes: int) -> "RF":
        return cls((1,) * axes, (1,) * axes, (0,) * axes)

    def window(self, kernel, stride, pad_left, dilation) -> "RF":
        """The step for a sliding window (convolution or pooling) over these axes."""
        return RF(
            tuple(r + d * (k - 1) * j for r, j, k, d in zip(self.size, self.stride, kernel, dilation)),
            tuple(j * s for j, s in zip(self.stride, stride)),
            tuple(b - p * j for b, j, p in zip(self.start, self.stride, pad_left)),
            self.misaligned,
        )

    def to_json(self) -> dict:
        out = {"size": [_num(v) for v in self.size], "stride": [_num(v) for v in self.stride],
               "start": [_num(v) for v in self.start]}
        if self.misaligned:
            out["misaligned"] = True
        return out


def _num(v):
    if isinstance(v, Fraction):
        return v.numerator if v.denominator == 1 else float(v)
    return v


def merge(rfs):
    """Receptive field of a merge (add, multiply, concat): the union of the inputs' fields.

    Branches whose strides differ cannot be lined up pixel for pixel: the result keeps the largest
    stride and is marked `misaligned`.
    """
    if any(rf is None for rf in rfs):
        return None
    if any(rf == GLOBAL for rf in rfs):
        return GLOBAL
    axes = len(rfs[0].size)
    if any(len(rf.size) != axes for rf in rfs):
        return None
    starts = tuple(min(rf.start[a] for rf in rfs) for a in range(axes))
    ends = tuple(max(rf.start[a] + (rf.size[a] - 1) for rf in rfs) for a in range(axes))
    strides = tuple(max(rf.stride[a] for rf in rfs) for a in range(axes))
    misaligned = any(rf.misaligned for rf in rfs) or any(
        len({rf.stride[a] for rf in rfs}) > 1 for a in range(axes))
    return RF(tuple(e - s + 1 for s, e in zip(starts, ends)), strides, starts, misaligned)
