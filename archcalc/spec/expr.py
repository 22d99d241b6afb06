"""A small, whitelisting expression evaluator for numeric spec values.

Grammar (Python syntax, nothing else allowed): numbers, names, `+ - * / // % **`, unary `+ -`,
parentheses, and calls of `min(...)` / `max(...)`. Python's `ast` parses the text; only the node
types below are accepted, so no attribute access, subscripts, lambdas or other calls can run.
`/` is exact (7/2 is 3.5, 8/2 is 4). Results are bounded in size.
"""
from __future__ import annotations

import ast
import math
import operator
from fractions import Fraction
from functools import lru_cache

from archcalc.errors import did_you_mean

MAX_TEXT = 500
MAX_MAGNITUDE = 10**30  # far above any real tensor size, far below a memory blow-up
MAX_EXPONENT_BITS = 120


class ExprError(Exception):
    """An expression that cannot be evaluated; the caller adds the location."""


_BINOPS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}
_FUNCS = {"min": min, "max": max}


@lru_cache(maxsize=4096)
def _parse(text: str) -> ast.expression:
    if len(text) > MAX_TEXT:
        raise ExprError(f"expression longer than {MAX_TEXT} characters")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ExprError(f"cannot parse expression {text!r}: {exc.msg}") from None
    for sub in ast.walk(tree):
        if not isinstance(sub, _ALLOWED_NODES):
            raise ExprError(f"{type(sub).__name__} is not allowed in expression {text!r}; "
                            "use numbers, names, + - * / // % **, parentheses, min() and max()")
        if isinstance(sub, ast.Call):
            if not isinstance(sub.func, ast.Name) or sub.func.id not in _FUNCS or sub.keywords or not sub.args:
                raise ExprError(f"only min(...) and max(...) may be called, in {text!r}")
        if isinstance(sub, ast.Constant) and (isinstance(sub.value, bool) or not isinstance(sub.value, (int, float))):
            raise ExprError(f"{sub.value!r} is not a number, in {text!r}")
    return tree


_ALLOWED_NODES = (
    ast.Expression, ast.BinOp, ast.UnaryOp, ast.Constant, ast.Name, ast.Call, ast.Load,
    ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow, ast.UAdd, ast.USub,
)


def names_in(text: str) -> set[str]:
    """The variable names an expression uses."""
    tree = _parse(text)
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id not in _FUNCS}


def evaluate(text: str, scope: dict):
    """Evaluate `text` with names taken from `scope`. Returns int where the value is integral."""
    value = _eval(_parse(text).body, scope, text)
    return _tidy(value)


def _tidy(value):
    if isinstance(value, Fraction):
        return value.numerator if value.denominator == 1 else float(value)
    if isinstance(value, float) and not math.isfinite(value):
        raise ExprError("expression is not a finite number")
    return value


def _check(value, text):
    if isinstance(value, (int, Fraction, float)) and abs(value) > MAX_MAGNITUDE:
        raise ExprError(f"value of {text!r} is too large (over 1e30)")
    return value


def _eval(node, scope, text):
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        if node.id in _FUNCS:
            raise ExprError(f"'{node.id}' must be called, in {text!r}")
        if node.id not in scope:
            raise ExprError(f"unknown name '{node.id}' in {text!r}{did_you_mean(node.id, scope)}")
        value = scope[node.id]
        if isinstance(value, bool) or isinstance(value, (str, list, tuple, dict)) or value is None:
            raise ExprError(f"'{node.id}' is {value!r}, not a number, in {text!r}")
        return value
    if isinstance(node, ast.UnaryOp):
        value = _eval(node.operand, scope, text)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.Call):
        values = [_eval(a, scope, text) for a in node.args]
        if any(hasattr(v, "free_symbols") for v in values):  # symbolic sizes: sympy's Min/Max
            import sympy

            return (sympy.Min if node.func.id == "min" else sympy.Max)(*values)
        return _FUNCS[node.func.id](values)
    # BinOp
    left = _eval(node.left, scope, text)
    right = _eval(node.right, scope, text)
    op = type(node.op)
    try:
        if op is ast.Div:
            if isinstance(left, (int, Fraction)) and isinstance(right, (int, Fraction)):
                return _check(Fraction(left) / Fraction(right), text)
            return _check(left / right, text)
        if op is ast.Pow:
            return _check(_power(left, right, text), text)
        return _check(_BINOPS[op](left, right), text)
    except ZeroDivisionError:
        raise ExprError(f"division by zero in {text!r}") from None


def _power(base, exponent, text):
    if isinstance(exponent, (int, Fraction, float)) and isinstance(base, (int, Fraction, float)):
        if abs(base) > 1 and abs(exponent) * math.log2(abs(base)) > MAX_EXPONENT_BITS:
            raise ExprError(f"value of {text!r} is too large (over 1e30)")
        if isinstance(exponent, Fraction) and exponent.denominator == 1:
            exponent = exponent.numerator
        if isinstance(exponent, int) and isinstance(base, (int, Fraction)):
            return Fraction(base) ** exponent
        return float(base) ** float(exponent)
    return base**exponent
