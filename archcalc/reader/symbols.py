"""Symbolic sizes: input dimensions written as names (`input: [1, H, W]`) become sympy symbols,
and every figure comes out as an exact formula with PyTorch's floor semantics.

sympy is imported here only, and only when a spec uses a symbol, so numeric analysis stays as
fast as ever. Symbols are positive integers. A constraint `multiple_of: m` is applied by writing
H = m * H_m for an integer H_m, which lets sympy simplify floors exactly (floor((H - 1)/2) + 1
is H/2 for even H); results are shown in the user's symbol again (H_m -> H/m).
"""
from __future__ import annotations

from fractions import Fraction

CONSTRAINT_KEYS = ("multiple_of", "min", "max")


def broken_constraint(value: int, rules: dict) -> str | None:
    """How a number breaks a symbol's constraints (`{multiple_of, min, max}`), in words ("is not a
    multiple of 2"), or None when it keeps them: the formulas hold only there."""
    step, low, high = rules.get("multiple_of", 1), rules.get("min"), rules.get("max")
    return (f"is not a multiple of {step}" if value % step
            else f"is below its min {low}" if low is not None and value < low
            else f"is above its max {high}" if high is not None and value > high else None)


def is_symbolic(value) -> bool:
    return hasattr(value, "free_symbols") and not isinstance(value, (int, float, Fraction))


def make(names, multiples: dict) -> tuple[dict, dict]:
    """(scope: name -> expression used in the analysis, back: internal symbol -> shown form)."""
    import sympy

    scope, back = {}, {}
    for name in names:
        shown = sympy.Symbol(name, integer=True, positive=True)
        m = multiples.get(name, 1)
        if m > 1:
            inner = sympy.Symbol(f"{name}_{m}", integer=True, positive=True)
            scope[name] = m * inner
            back[inner] = shown / m
        else:
            scope[name] = shown
    return scope, back


def shown(value, back: dict):
    """A figure as the user writes it: in their symbols; plain ints stay ints."""
    if not is_symbolic(value):
        return value

    if back:  # H_4 -> H/4; sympy simplified the floors already, while H_4 was a whole number
        value = value.subs(back)
    if value.is_Integer:
        return int(value)
    return value


def latex(value) -> str:
    import sympy

    return sympy.latex(value)
