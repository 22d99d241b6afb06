"""Receptive fields (Araujo, Norris & Sim, Distill 2019), one entry per spatial axis.

- size:   how many input pixels one output pixel sees (r), the largest over outputs;
- stride: input pixels between neighbouring outputs, also called jump (j), exact (a Fraction
          after upsampling or a strided transposed convolution);
- start:  input coordinate of the first pixel seen by output 0; negative means it lies in padding.

A layer with a window of k taps, dilation d, stride s and left padding p maps (r, j, start) to
(r + d(k-1) j,  j s,  start - p j).  `GLOBAL` marks outputs that see all of the input (after
flatten, linear or global pooling); `None` marks tensors whose axes no longer match input axes.

Exactness with fractional steps: after upsampling, a transposed convolution or adaptive pooling,
neighbouring outputs see different windows, and the window formula above no longer holds. Then
each axis carries its exact description (`Axis`): outputs repeat every q outputs, moving Q input
pixels, and output p + q t sees pixels lo_p + t Q .. hi_p + t Q (or nothing). Every layer maps
that description exactly, from the input positions each of its outputs reads; size, stride and
start are read off it (size: the widest window; stride: Q / q; start: output 0's lo).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction

GLOBAL = "global"
MAX_PERIOD = 100_000  # outputs per period beyond which the exact description is not kept


@dataclass(frozen=True, slots=True)
class Axis:
    q: int  # outputs per period
    Q: int  # input pixels the windows move per period
    windows: tuple  # q entries: (lo, hi) or None for outputs that see no input pixel

    def window(self, o: int):
        m, p = divmod(o, self.q)
        w = self.windows[p]
        return None if w is None else (w[0] + m * self.Q, w[1] + m * self.Q)

    def map(self, reads, a: int, b: int) -> "Axis":
        """The axis after a layer whose output o reads input positions `reads(o)`, and whose
        reads move by b input positions when o moves by a outputs."""
        q = a * self.q // math.gcd(b, self.q)
        Q = (q // a) * b // self.q * self.Q
        windows = []
        for o in range(q):
            seen = [w for w in map(self.window, reads(o)) if w is not None]
            windows.append((min(w[0] for w in seen), max(w[1] for w in seen)) if seen else None)
        return Axis(q, Q, tuple(windows))

    def summary(self):
        filled = [(p, w) for p, w in enumerate(self.windows) if w is not None]
        stride = _plain(Fraction(self.Q, self.q))
        size = max(hi - lo + 1 for _, (lo, hi) in filled) if filled else 0
        p, (lo, _) = filled[0] if filled else (0, (0, 0))
        return size, stride, _plain(lo - p * Fraction(self.Q, self.q))


def _plain(v):
    v = Fraction(v)
    return v.numerator if v.denominator == 1 else v


@dataclass(frozen=True, slots=True)
class RF:
    size: tuple
    stride: tuple
    start: tuple
    misaligned: bool = False  # set when merged branches have different strides
    axes: tuple | None = field(default=None, compare=False, repr=False)  # exact form, when needed

    @classmethod
    def identity(cls, axes: int) -> "RF":
        return cls((1,) * axes, (1,) * axes, (0,) * axes)

    def exact_axes(self) -> tuple:
        if self.axes is not None:
            return self.axes
        return tuple(Axis(1, j, ((b, b + r - 1),)) for r, j, b in zip(self.size, self.stride, self.start))

    @property
    def regular(self) -> bool:
        """Every output sees an equal window, one whole stride after its neighbour's."""
        return self.axes is None and all(isinstance(j, int) for j in self.stride)

    @classmethod
    def from_axes(cls, axes: tuple, misaligned: bool = False) -> "RF":
        parts = [axis.summary() for axis in axes]
        # A period beyond MAX_PERIOD outputs (scales like 1.0007) keeps only the summary.
        exact = None if all(axis.q == 1 for axis in axes) or any(a.q > MAX_PERIOD for a in axes) else tuple(axes)
        return cls(tuple(p[0] for p in parts), tuple(p[1] for p in parts), tuple(p[2] for p in parts),
                   misaligned, exact)

    def map(self, steps) -> "RF":
        """Apply per-axis steps (reads, a, b) as in `Axis.map`."""
        return RF.from_axes(tuple(axis.map(*step) for axis, step in zip(self.exact_axes(), steps)),
                            self.misaligned)

    def window(self, kernel, stride, pad_left, dilation) -> "RF":
        """The step for a sliding window (convolution or pooling) over these axes."""
        if self.regular:  # the closed form (Araujo et al.), the common and fast case
            return RF(
                tuple(r + d * (k - 1) * j for r, j, k, d in zip(self.size, self.stride, kernel, dilation)),
                tuple(j * s for j, s in zip(self.stride, stride)),
                tuple(b - p * j for b, j, p in zip(self.start, self.stride, pad_left)),
                self.misaligned,
            )
        return self.map([(lambda o, k=k, s=s, p=p, d=d: [o * s - p + t * d for t in range(k)], 1, s)
                         for k, s, p, d in zip(kernel, stride, pad_left, dilation)])

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
    misaligned = any(rf.misaligned for rf in rfs) or any(
        len({rf.stride[a] for rf in rfs}) > 1 for a in range(axes))
    if not misaligned and not all(rf.regular for rf in rfs):
        exact = []
        for a in range(axes):
            parts = [rf.exact_axes()[a] for rf in rfs]
            q = math.lcm(*(p.q for p in parts))
            exact.append(Axis(q, q * parts[0].Q // parts[0].q, tuple(
                _union([p.window(o) for p in parts]) for o in range(q))))
        return RF.from_axes(tuple(exact))
    starts = tuple(min(rf.start[a] for rf in rfs) for a in range(axes))
    ends = tuple(max(rf.start[a] + (rf.size[a] - 1) for rf in rfs) for a in range(axes))
    strides = tuple(max(rf.stride[a] for rf in rfs) for a in range(axes))
    return RF(tuple(e - s + 1 for s, e in zip(starts, ends)), strides, starts, misaligned)


def _union(windows):
    seen = [w for w in windows if w is not None]
    return (min(w[0] for w in seen), max(w[1] for w in seen)) if seen else None
