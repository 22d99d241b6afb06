"""Sliding-window geometry shared by convolution and pooling kinds (PyTorch's formulas)."""
from __future__ import annotations

from archcalc.errors import LayerError


def is_num(x) -> bool:
    return isinstance(x, int)


def ceil_div(n, m):
    """ceil(n / m), exact on integers; sympy's ceiling on symbolic sizes."""
    if is_num(n) and is_num(m):
        return -(-n // m)
    import sympy

    return sympy.ceiling(sympy.sympify(n) / m)


def resolve_padding(padding, kernel, dilation, stride, axes, arg="padding"):
    """Per-axis (left, right) padding. 'same' pads d(k-1) in total, the odd one on the right,
    as PyTorch does; it needs stride 1. 'valid' is no padding."""
    if padding == "valid":
        return (0,) * axes, (0,) * axes
    if padding == "same":
        if any(s != 1 for s in stride):
            raise LayerError("padding 'same' needs stride 1 (PyTorch does not support it for strided "
                             "convolutions); give the padding as a number", arg)
        total = tuple(d * (k - 1) for k, d in zip(kernel, dilation))
        left = tuple(t // 2 for t in total)
        return left, tuple(t - lo for t, lo in zip(total, left))
    pad = padding if isinstance(padding, tuple) else (padding,) * axes
    return pad, pad


AXIS_NAMES = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}


def axis_name(axis: int, axes: int) -> str:
    return AXIS_NAMES.get(axes, ())[axis] if axes in AXIS_NAMES else f"spatial axis {axis}"


def window_output(size, kernel, stride, pad_left, pad_right, dilation, axis, ceil_mode=False, axes=0):
    """Output length of a window op along one axis:
    floor((N + P_left + P_right - D(K-1) - 1) / S) + 1   (ceil instead of floor with ceil_mode)."""
    span = dilation * (kernel - 1) + 1
    room = size + pad_left + pad_right - span
    # With ceil_mode PyTorch keeps a window that overhangs the padded input: ceil(room / S) + 1 >= 1.
    if is_num(room) and room < 0 and not (ceil_mode and room > -stride):
        eff = f" (dilated to {span})" if dilation != 1 else ""
        raise LayerError(f"kernel {kernel}{eff} is larger than the padded input along {axis_name(axis, axes)}: input {size} + padding {pad_left + pad_right} = {size + pad_left + pad_right}; "
                         f"expected kernel <= {size + pad_left + pad_right}", "kernel")
    if not ceil_mode:
        return room // stride + 1
    out = -(-room // stride) + 1
    # PyTorch: the last window must start inside the input or the left padding.
    if is_num(out) and (out - 1) * stride >= size + pad_left:
        out -= 1
    return out


def channels_last(kind: str, shape, what: str = "a feature map"):
    """(H, W, C) of a channels-last map [H, W, C] (Swin's kinds), or a LayerError naming what was expected."""
    if len(shape) != 3:
        raise LayerError(f"{kind} needs {what} shaped [H, W, C] (channels-last: write permute: [1, 2, 0] after a "
                         f"convolution, as Swin does), got {list(shape)}")
    return tuple(shape)


def channels_last_rf(field, step):
    """The field of a kind that reads a channels-last [H, W, C] (Swin's): global stays global; a field
    whose spatial axes are at dims 0, 1 (RF.layout (0, 1)) goes through `step` as a [C, H, W] field
    would and comes back channels-last; any other field is not tracked (None), nor is one `step` drops."""
    from dataclasses import replace

    from archcalc.geometry.receptive_field import GLOBAL, RF

    if field == GLOBAL:
        return GLOBAL
    if not isinstance(field, RF) or field.layout != (0, 1):
        return None  # not channels-last [H, W, C] with H, W where the field has them
    kept = step(replace(field, layout=None))
    return None if kept is None else replace(kept, layout=(0, 1))
