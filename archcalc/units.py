"""Figures for people, abbreviated with units: the one place archcalc turns a count, a byte size, a
rate or a duration into a short string. Exact figures are printed elsewhere in full (grouped by
thousands); these are the readable companions ("11.7 M", "44.6 MiB", "3.2 TFLOP/s", "4.5 h").

Conventions: three significant digits; decimal prefixes (k = 10^3 ... Q = 10^30) for counts, FLOPs
and rates; binary prefixes (KiB = 2^10 ... YiB = 2^80) for bytes, as PyTorch's memory tools print
them; a value that rounds up to the next prefix or unit takes it (999,999 is "1 M", never "1e+03 k";
0.9996 s is "1 s", never "1e+03 ms"); past the largest prefix the mantissa is whole ("2,000 Q").
Anything that is not a number (a sympy formula) is returned as str().
"""
from __future__ import annotations

import numbers

# Up to Q (SI, 2022): a frontier model's training compute is past 10^24 FLOP (Llama 3 405B: 3.8e25),
# which Z alone printed as "3.8e+04 ZFLOP"; past the largest prefix the mantissa is whole ("1,500 Q").
DECIMAL = ((10**30, "Q"), (10**27, "R"), (10**24, "Y"), (10**21, "Z"), (10**18, "E"), (10**15, "P"),
           (10**12, "T"), (10**9, "G"), (10**6, "M"), (10**3, "k"))
BINARY = ((2**80, "YiB"), (2**70, "ZiB"), (2**60, "EiB"), (2**50, "PiB"), (2**40, "TiB"), (2**30, "GiB"),
          (2**20, "MiB"), (2**10, "KiB"))


def _is_number(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _plain(v):
    """A Python int or float of a number: sympy's Integer and Float and a Fraction are numbers.Real
    too, but format(Integer(5), '.3g') and format(Fraction(7, 2), '.3g') raise TypeError on Python
    3.11, and sympy's Float prints '1.50' where a float prints '1.5'."""
    return int(v) if isinstance(v, numbers.Integral) else float(v)


def _prefixed(v, steps):
    """(mantissa text, prefix) of v at the largest step (steps largest first) whose mantissa, rounded
    to 3 significant digits, is at least 1 (so a value rounding up takes the larger prefix), or None
    below the smallest step."""
    top, top_prefix = steps[0]
    if isinstance(v, numbers.Integral) and abs(v) >= 1000 * top:  # whole, in ints: v / top may overflow a float
        return ("-" if v < 0 else "") + f"{(abs(int(v)) + top // 2) // top:,}", top_prefix
    for size, prefix in steps:
        if float(f"{abs(v) / size:.3g}") >= 1:
            mantissa = v / size
            return (f"{mantissa:.3g}" if float(f"{abs(mantissa):.3g}") < 1000 else f"{mantissa:,.0f}"), prefix
    return None


def _short(n, steps, unit: str, small_unit: str) -> str:
    """n at its prefix from `steps` with `unit` after it, or below the smallest step as it is (a
    whole number whole, else 3 significant digits) with `small_unit`; a formula as str()."""
    if not _is_number(n):
        return str(n)
    n = _plain(n)
    hit = _prefixed(n, steps)
    if hit is not None:
        return f"{hit[0]} {hit[1]}{unit}"
    body = str(n) if isinstance(n, numbers.Integral) else f"{n:.3g}"
    return f"{body} {small_unit}" if small_unit else body


def count(n, unit: str = "") -> str:
    """11689512 -> '11.7 M'; 4.1e9 FLOP with unit 'FLOP' -> '4.1 GFLOP'; below 1000 as it is."""
    return _short(n, DECIMAL, unit, unit)


def rate(v, unit: str) -> str:
    """A throughput: 1523.4 ex/s -> '1.52 kex/s', 3.1e14 FLOP/s -> '310 TFLOP/s'."""
    return count(v, unit)


def binary_bytes(n) -> str:
    """46_827_520 -> '44.7 MiB'; below 1 KiB in bytes ('512 B')."""
    return _short(n, BINARY, "", "B")


def duration(seconds) -> str:
    """A time: '850 ms', '42.5 s', '3.5 min', '4.5 h', '12.3 days' (a unit from twice its size up,
    so 90 s stays '90 s'); whole numbers from 100 of a unit ('1,234 days')."""
    if not _is_number(seconds):
        return str(seconds)
    v = _plain(seconds)
    for size, unit in ((86400, "days"), (3600, "h"), (60, "min")):
        if v >= 2 * size:
            return f"{v / size:,.0f} {unit}" if v >= 100 * size else f"{v / size:.3g} {unit}"
    ms = f"{v * 1000:.3g}"
    return f"{v:.3g} s" if v >= 1 or float(ms) >= 1000 else f"{ms} ms"  # 0.9996 s rounds to 1 s
