"""Output shapes: the batch dimension, channels last, and the usual output-size mistakes of a
convolution or pooling window (each also read through the MACs it gives)."""
from __future__ import annotations

from archcalc.homework.answers import Shape
from archcalc.homework.check import (OUTPUT_FORMULA, _answer_value, _axes_text, _div, _prod, _symbolic,
                                     format_expected, shape_matches)
from archcalc.homework.mistakes.base import Said, Wrong, mistake
from archcalc.homework.mistakes.network import WINDOW_KINDS

# ceil_mode's output size (PyTorch also drops a last window that would start in the right padding)
CEIL_FORMULA = "M = ceil((N + 2P - D(K-1) - 1)/S) + 1 (ceil_mode)"


@mistake("batch_dimension", "output_shape", rank=5, hint="shapes exclude the batch dimension")
def batch_dimension(case):
    """The right shape with one more (leading) size: the batch."""
    value = case.value
    if isinstance(value, Shape) and len(value.items) == len(case.expected) + 1 \
            and shape_matches(Shape(value.items[1:], ""), case.expected):
        return Said()
    return None


@mistake("channels_last", "output_shape", rank=10, hint="archcalc writes shapes {order}")
def channels_last(case):
    """The shape with its first size moved last (a sequence of token ids: its last size moved first)."""
    e = tuple(case.expected)
    if len(e) < 2:
        return None
    if getattr(case.net.graph, "tokens", False):  # [T, D]: positions first, features last
        return Wrong(e[-1:] + e[:-1], order="as a sequence's: positions first, features last ([T, D])")
    return Wrong(e[1:] + e[:1], order="channels first: [C, H, W]")


# --- output-size mistakes of a window (conv, pooling) ----------------------------------------------
def _ceil_mode(net, row) -> bool:
    node = net.nodes.get(row.name)
    return bool(node is not None and node.args.get("ceil_mode"))


def _floor_div(a, s):
    return a // s


def _ceil_div(a, s):
    return -((-a) // s)


def _dilations(net, row, axes: int):
    """The layer's dilation per spatial axis (its spec's `dilation`; 1 where not given)."""
    node = net.nodes.get(row.name)
    d = node.args.get("dilation", 1) if node is not None else 1
    d = list(d) if isinstance(d, (list, tuple)) else [d] * axes
    return [int(v) for v in d] if len(d) == axes else [1] * axes


def _window(name, hint, size, padded_only=False, ceil_mode=None, rank=50, undilated=False):
    """Register the window mistake `name`: `size(n, k, s, p, div)` is the mistaken output size of one
    axis (n the input size, k = D(K-1), s the stride, p the left padding, div the layer's rounding
    division: floor, or ceil with ceil_mode). `ceil_mode` True/False: only for layers with/without it;
    `undilated`: only for a dilated layer, k taken as K - 1 (the dilation left out)."""

    def derive(case):
        row, net = case.single, case.net
        geometry = net.window_geometry(row) if row is not None else None
        if geometry is None:
            return None
        sizes, spans, strides, pads = geometry
        if padded_only and not any(p != 0 for p in pads):
            return None
        if undilated:
            dilations = _dilations(net, row, len(spans))
            if all(d == 1 for d in dilations) or any(k % d for k, d in zip(spans, dilations)):
                return None
            spans = [k // d for k, d in zip(spans, dilations)]
        up = _ceil_mode(net, row)
        if ceil_mode is not None and up != ceil_mode:
            return None
        div = _ceil_div if up else _floor_div
        shape = tuple(row.output_shape[:1]) + tuple(net.norm(size(n, k, s, p, div))
                                                    for n, k, s, p in zip(sizes, spans, strides, pads))
        fields = {"pads": _axes_text(pads), "strides": _axes_text(strides),
                  "formula": CEIL_FORMULA if up else OUTPUT_FORMULA, "lead": ""}
        if undilated:
            fields["dilations"] = _axes_text(tuple(dilations))
        if case.figure == "output_shape":
            return Wrong(shape, **fields)
        fields["lead"] = f"these MACs are for an output of {format_expected(shape, 'output_shape')}: "
        return Wrong(net.norm(_div(case.expected * _prod(shape[1:]), _prod(row.output_shape[1:]))), **fields)

    derive.__doc__ = f"One conv or pooling layer: its output size per axis as {size.__doc__}."
    mistake(name, ("output_shape", "macs"), "{lead}" + hint, rank=rank)(derive)


def _valid(n, k, s, p, div):
    """floor((N - D(K-1) - 1)/S) + 1 (ceil with ceil_mode), the padding left out"""
    return div(n - k - 1, s) + 1


def _no_plus_one(n, k, s, p, div):
    """floor((N + 2P - D(K-1) - 1)/S) (ceil with ceil_mode), without the + 1"""
    return div(n + 2 * p - k - 1, s)


def _rounded_up(n, k, s, p, div):
    """ceil((N + 2P - D(K-1) - 1)/S) + 1 for a layer without ceil_mode"""
    return _ceil_div(n + 2 * p - k - 1, s) + 1


def _rounded_down(n, k, s, p, div):
    """floor((N + 2P - D(K-1) - 1)/S) + 1 for a layer with ceil_mode"""
    return _floor_div(n + 2 * p - k - 1, s) + 1


def _same(n, k, s, p, div):
    """ceil(N/S), as if padded 'same'"""
    return (n - 1) // s + 1


def _no_stride(n, k, s, p, div):
    """N + 2P - D(K-1), not divided by the stride"""
    return (n + 2 * p - k - 1) + 1


def _padded_once(n, k, s, p, div):
    """floor((N + P - D(K-1) - 1)/S) + 1 (ceil with ceil_mode), the padding added on one side"""
    return div(n + p - k - 1, s) + 1


_window("unpadded", "that is the size without padding ('valid'); this layer pads {pads}: {formula}", _valid,
        padded_only=True)
_window("off_by_one", "off by one: {formula}; the + 1 counts the first window", _no_plus_one)
_window("rounded_up", "rounded up: {formula} rounds down (floor) unless ceil_mode is set", _rounded_up,
        ceil_mode=False)
# before off_by_one, which gives the same size where ceil adds one
_window("ceil_mode_ignored", "rounded down: this layer has ceil_mode, so {formula}", _rounded_down, ceil_mode=True,
        rank=45)
_window("same_padding", "that is the size with 'same' padding (N/S); this layer pads {pads}: {formula}", _same)
_window("stride_forgotten", "forgot to divide by the stride {strides}: {formula}", _no_stride)
_window("padded_once", "padding P is added on both sides (2P): {formula}", _padded_once, padded_only=True)


def _dilation_left_out(n, k, s, p, div):
    """floor((N + 2P - (K-1) - 1)/S) + 1 for a dilated layer, its dilation D left out (here k = K - 1)"""
    return div(n + 2 * p - k - 1, s) + 1


_window("dilation_forgotten", "forgot the dilation {dilations}: a dilated window spans D(K-1) + 1 inputs: {formula}",
        _dilation_left_out, undilated=True)


@mistake("shape_of_input", "output_shape", rank=60,
         hint="that is the shape of {layer}'s input: its window of stride {strides} changes the sizes: {formula}")
def shape_of_input(case):
    """One conv or pooling layer: the shape of its input given as its output (the layer skipped)."""
    row, net = case.single, case.net
    geometry = net.window_geometry(row) if row is not None else None
    if geometry is None:
        return None
    shape = net.input_shape(row)
    return Wrong(tuple(net.norm(n) for n in shape), layer=row.name, strides=_axes_text(geometry[2]),
                 formula=OUTPUT_FORMULA)


# --- when no mistake's value matches ---------------------------------------------------------------
@mistake("dimensions", "output_shape", rank=900,
         hint="the output has {n} dimension{s} (batch excluded)")
def dimensions(case):
    """An answer with another number of sizes than the output."""
    if not isinstance(case.value, Shape) or len(case.value.items) == len(case.expected):
        return None
    n = len(case.expected)
    return Said(n=n, s="s" if n != 1 else "")


@mistake("spatial_offset", "output_shape", rank=900,
         hint="the spatial sizes are off by {d}: check the padding and {formula} (without padding the output "
              "shrinks by D(K-1))")
def spatial_offset(case):
    """One conv or pooling layer: every spatial size off by the same number."""
    value, expected, row = case.value, case.expected, case.row
    if not isinstance(value, Shape) or len(value.items) != len(expected) or row is None \
            or row.kind not in WINDOW_KINDS or len(expected) < 2:
        return None
    given = [_answer_value(v) for v in value.items]
    if given[0] != expected[0] and not _symbolic(given[0]):
        return None
    diffs = {case.net.norm(g - e) for g, e in zip(given[1:], expected[1:])}
    if len(diffs) == 1:
        d = diffs.pop()
        if not _symbolic(d) and d != 0 and d == int(d):  # "off by -1/2" would explain nothing
            return Said(d=d, formula=OUTPUT_FORMULA)
    return None
