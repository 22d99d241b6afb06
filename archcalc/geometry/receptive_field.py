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

Bounded cost: the windows are listed only up to a period of MAX_PERIOD outputs (and MAX_WORK
look-ups per step, MAX_TOTAL_WORK per analysis). Past that, a layer reading a field of one window moving by a whole stride
(the common case: upsampling a convolutional field by 10^9) gets its size, stride and start in
closed form, still exact, but no list of windows (`Axis.windows` is None): later layers that
need the windows report the field as not tracked (None). Any other field past the bound is not
tracked either. Nothing is approximated.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Callable

GLOBAL = "global"
#: Outputs per period up to which the exact windows are listed (and carried to later layers).
MAX_PERIOD = 10_000
#: Window look-ups one step may spend listing them (a wide kernel over a long period).
MAX_WORK = 1_000_000
#: Outputs searched for the first one that reads anything, where the windows are not listed.
MAX_SCAN = 10_000
#: Window look-ups one whole analysis may spend listing windows (`reset_work` starts an analysis):
#: a long chain of wide kernels after a fractional step stops being tracked rather than taking
#: minutes.
MAX_TOTAL_WORK = 10_000_000
_spent = [0]


def reset_work() -> None:
    _spent[0] = 0


def _afford(work: int) -> bool:
    """Spend `work` look-ups if this step and the analysis' total allow it."""
    if work > MAX_WORK or _spent[0] + work > MAX_TOTAL_WORK:
        return False
    _spent[0] += work
    return True


@dataclass(frozen=True, slots=True)
class Reads:
    """What one layer's output o reads along one axis: input positions first, first + step, ...,
    `count` of them (step > 0), or None; output o + a reads the same positions moved by b.
    `spread` is the largest `last - first` over all outputs (exact: it gives the widest window
    in closed form when the period is too long to list)."""

    at: Callable[[int], tuple | None]
    a: int
    b: int
    spread: int

    @classmethod
    def shift(cls, offset: int) -> "Reads":
        """Output o is input o + offset (zero padding, a slice)."""
        return cls(lambda o: (o + offset, 1, 1), 1, 1, 0)


@dataclass(frozen=True, slots=True)
class Axis:
    q: int  # outputs per period
    Q: int  # input pixels the windows move per period
    windows: tuple | None  # q entries: (lo, hi) or None for outputs that see no input pixel;
    # None when the period is too long to list: then `known` holds (size, start), exact
    known: tuple | None = None

    def window(self, o: int):
        m, p = divmod(o, self.q)
        w = self.windows[p]
        return None if w is None else (w[0] + m * self.Q, w[1] + m * self.Q)

    def hull(self, first: int, step: int, count: int):
        """(lowest lo, highest hi) over the windows of positions first + t step, t < count. Positions
        a whole cycle of phases apart see windows moved by a multiple of Q >= 0, so the lowest lo
        lies in the first cycle and the highest hi in the last: at most 2q look-ups."""
        cycle = self.q // math.gcd(step, self.q)
        n = min(count, cycle)
        los = [w[0] for w in map(self.window, range(first, first + n * step, step)) if w is not None]
        if not los:
            return None
        last = first + (count - 1) * step
        return min(los), max(w[1] for w in map(self.window, range(last, last - n * step, -step)) if w is not None)

    def map(self, reads: Reads) -> "Axis | None":
        """The axis after a layer that reads as `reads` says; None (not tracked) where that cannot
        be had exactly at a bounded cost: see `MAX_PERIOD`."""
        if self.windows is None:  # the windows before are not listed: neither can these be
            return None
        q = reads.a * self.q // math.gcd(reads.b, self.q)
        Q = (q // reads.a) * reads.b // self.q * self.Q
        if q <= MAX_PERIOD and _afford(q * 2 * min(reads.spread + 1, self.q)):
            windows = []
            for o in range(q):
                ap = reads.at(o)
                windows.append(None if ap is None else self.hull(*ap))
            return Axis(q, Q, tuple(windows))
        if self.q != 1 or self.windows[0] is None:
            return None
        # One window moving by Q per output: output o sees lo + f Q .. hi + l Q for the first (f) and
        # last (l) position it reads, so its width is (l - f) Q + (hi - lo + 1), widest at the
        # largest spread; the start is extrapolated from the first output that reads anything.
        lo, hi = self.windows[0]
        for o in range(min(q, MAX_SCAN)):
            ap = reads.at(o)
            if ap is not None:
                start = lo + ap[0] * self.Q - o * Fraction(Q, q)
                return Axis(q, Q, None, (reads.spread * self.Q + hi - lo + 1, _plain(start)))
        return None

    def summary(self):
        if self.windows is None:
            size, start = self.known
            return size, _plain(Fraction(self.Q, self.q)), start
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
    # Where the spatial axes are in the tensor (batch excluded), when a permute moved them, e.g.
    # (0, 1) for [H, W, C]; None for the usual [C, spatial...]. Only layers that leave every
    # spatial position alone (`Layer.mixed_dims`) carry such a field; a permute moves it back.
    layout: tuple | None = None

    @classmethod
    def identity(cls, axes: int) -> "RF":
        return cls((1,) * axes, (1,) * axes, (0,) * axes)

    def exact_axes(self) -> tuple:
        """Per axis, its `Axis`; one whose `windows` is None is known by its summary only."""
        if self.axes is not None:
            return self.axes
        return tuple(Axis(1, j, ((b, b + r - 1),)) for r, j, b in zip(self.size, self.stride, self.start))

    @property
    def regular(self) -> bool:
        """Every output sees an equal window, one whole stride after its neighbour's."""
        return self.axes is None and all(isinstance(j, int) for j in self.stride)

    @property
    def resolved(self) -> bool:
        """Are the windows of every output known (not only the summary)?"""
        return self.axes is None or all(axis.windows is not None for axis in self.axes)

    @classmethod
    def from_axes(cls, axes: tuple, misaligned: bool = False) -> "RF":
        parts = [axis.summary() for axis in axes]
        exact = None if all(axis.q == 1 and axis.windows is not None for axis in axes) else tuple(axes)
        return cls(tuple(p[0] for p in parts), tuple(p[1] for p in parts), tuple(p[2] for p in parts),
                   misaligned, exact)

    def map(self, steps) -> "RF | None":
        """Apply per-axis `Reads` as in `Axis.map`; None (not tracked) where an axis cannot be had."""
        axes = tuple(axis.map(step) for axis, step in zip(self.exact_axes(), steps))
        if any(axis is None for axis in axes):
            return None
        return RF.from_axes(axes, self.misaligned)

    def window(self, kernel, stride, pad_left, dilation) -> "RF":
        """The step for a sliding window (convolution or pooling) over these axes."""
        if self.regular:  # the closed form (Araujo et al.), the common and fast case
            return RF(
                tuple(r + d * (k - 1) * j for r, j, k, d in zip(self.size, self.stride, kernel, dilation)),
                tuple(j * s for j, s in zip(self.stride, stride)),
                tuple(b - p * j for b, j, p in zip(self.start, self.stride, pad_left)),
                self.misaligned,
            )
        return self.map([Reads(lambda o, s=s, p=p, d=d, k=k: (o * s - p, d, k), 1, s, (k - 1) * d)
                         for k, s, p, d in zip(kernel, stride, pad_left, dilation)])

    def to_json(self) -> dict:
        out = {"size": [_num(v) for v in self.size], "stride": [_num(v) for v in self.stride],
               "start": [_num(v) for v in self.start]}
        if self.misaligned:
            out["misaligned"] = True
        if self.layout is not None:
            out["spatial_dims"] = list(self.layout)
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
    if all(rf is rfs[0] for rf in rfs):  # a branch merged with itself (x + x) sees what it saw
        return rfs[0]
    axes = len(rfs[0].size)
    if any(len(rf.size) != axes for rf in rfs):
        return None
    misaligned = any(rf.misaligned for rf in rfs) or any(
        len({rf.stride[a] for rf in rfs}) > 1 for a in range(axes))
    if not misaligned and not all(rf.regular for rf in rfs):
        if not all(rf.resolved for rf in rfs):
            return None  # windows known by their summary only cannot be lined up
        exact = []
        for a in range(axes):
            parts = [rf.exact_axes()[a] for rf in rfs]
            q = math.lcm(*(p.q for p in parts))
            if q > MAX_PERIOD or not _afford(q * len(parts)):
                return None
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


def spatial_dims(rf: RF, rank: int) -> tuple:
    """The tensor dimensions (batch excluded) that hold `rf`'s spatial axes, in axis order."""
    return rf.layout if rf.layout is not None else tuple(range(1, rank))


def moved(rfs, shapes, out, mixed) -> "RF | None":
    """The field of a layer over inputs whose spatial axes a permute moved (`layout`): kept when the
    layer mixes no dimension holding a spatial axis (`mixed`: the dims it mixes, batch excluded,
    None when it does not say) and every input and the output agree on where those axes are;
    otherwise not tracked."""
    first = rfs[0]
    if mixed is None or not all(isinstance(rf, RF) and rf.layout == first.layout for rf in rfs):
        return None
    if any(len(s) != len(out) for s in shapes) or set(mixed) & set(first.layout):
        return None
    dims = first.layout
    if any(s[d] != out[d] for s in shapes for d in dims):  # broadcasting along a spatial axis
        return None
    if len(rfs) == 1:
        return first
    from dataclasses import replace

    union = merge([replace(rf, layout=None) for rf in rfs])
    return replace(union, layout=dims) if isinstance(union, RF) else None
