"""A small, whitelisting expression evaluator for numeric spec values.

Grammar (Python syntax, nothing else allowed): numbers, names, `+ - * / // % **`, unary `+ -`,
parentheses, and calls of `min(...)` / `max(...)`, `floor(x)` / `ceil(x)` and `round(x)` /
`round(x, ndigits)`. Python's `ast` parses the text; only the node types below are accepted, so no
attribute access, subscripts, lambdas or other calls can run. `/` is exact (7/2 is 3.5, 8/2 is 4),
and so are floor, ceil and round of it; round is Python's own (halves go to the even neighbour:
round(5/2) is 2, round(7/2) is 4), floor(x + 1/2) rounds halves up.

`shape(NAME, dim)` reads a size of a tensor the spec knows: inside a block, NAME is the block's
`input` (or one of its named inputs, or an earlier entry of the block), and dim counts as PyTorch
does with the batch left out (0: channels, 1 the next, -1 the last); `shape(input, 0) // 2` is
DenseNet's transition width. The size is exact (a formula of the input's symbols where sizes are
symbolic). NAME is a reference, never evaluated; the caller provides the sizes through the scope
entry SHAPE_READER (a callable from a name to its shape), and where it gives none (outside a
block) shape() is an error. Work and results are bounded whatever the numbers: every
value (written or computed) is finite and at most 10^30 in magnitude, an exact fraction's
numerator and denominator have at most 256 bits, a nonzero result too small to represent is an
error rather than 0, and the expression is at most 500 characters and nested at most 200 deep.
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
MAX_FRACTION_BITS = 256  # of an exact fraction's numerator and denominator
MAX_DEPTH = 200  # operators and calls nested in one another
MAX_SYMBOLIC_EXPONENT = 64  # H ** 2 is a size; H ** 10**9 would only make sympy slow


class ExprError(Exception):
    """An expression that cannot be evaluated; the caller adds the location."""

    unknown: str | None = None  # the name that no var, argument or symbol defines (with no near match)


_BINOPS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}
_FUNCS = {"min": min, "max": max, "floor": math.floor, "ceil": math.ceil, "round": round, "shape": None}
#: Names that are functions in an expression, so cannot name a var or a symbol.
FUNCTIONS = frozenset(_FUNCS)
_ARITY = {"floor": (1, 1), "ceil": (1, 1), "round": (1, 2)}  # (fewest, most) values; min/max: 1 or more
_CALLS = "min(...), max(...), floor(x), ceil(x) and round(x[, ndigits])"  # and, in a block, shape(input, dim)
#: The scope entry holding shape()'s reader: NAME -> its shape (batch excluded); no name is spelled so.
SHAPE_READER = "shape()"
MAX_ROUND_DIGITS = 30  # round(x, ndigits): no finer than the bound on every number


@lru_cache(maxsize=4096)
def _parse(text: str) -> ast.expression:
    if len(text) > MAX_TEXT:
        raise ExprError(f"expression longer than {MAX_TEXT} characters")
    source = text.strip()
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as exc:
        # Python's words for a leading zero speak of octal prefixes; a date (2023-01-01) reads so too
        why = ("a whole number is written without leading zeros (7, not 07)" if "leading zeros" in (exc.msg or "")
               else exc.msg)
        raise ExprError(f"cannot parse expression {_quoted(text)}: {why}") from None
    except (RecursionError, MemoryError, ValueError):  # nesting past what Python's parser takes
        raise ExprError(f"cannot parse expression {_quoted(text)}: nested too deeply") from None
    _check_depth(tree, text)
    for sub in ast.walk(tree):
        if not isinstance(sub, _ALLOWED_NODES):
            raise ExprError(f"{type(sub).__name__} is not allowed in expression {text!r}; "
                            f"use numbers, names, + - * / // % **, parentheses, {_CALLS}")
        if isinstance(sub, ast.Call):
            if not isinstance(sub.func, ast.Name) or sub.func.id not in _FUNCS or sub.keywords or not sub.args:
                raise ExprError(f"only {_CALLS} may be called, in {text!r}")
            if sub.func.id == "shape" and (len(sub.args) != 2 or not isinstance(sub.args[0], ast.Name)
                                           or sub.args[0].id in _FUNCS):
                raise ExprError(f"shape() takes a name and a dim, as in shape(input, 0) (the channels of a block's "
                                f"input), in {_quoted(text)}")
            fewest, most = _ARITY.get(sub.func.id, (1, None))
            if most is not None and len(sub.args) > most:
                raise ExprError(f"{sub.func.id}() takes {'one value' if most == 1 else 'a value and ndigits'}, "
                                f"got {len(sub.args)}, in {text!r}")
        if isinstance(sub, ast.Constant) and (isinstance(sub.value, bool) or not isinstance(sub.value, (int, float))):
            raise ExprError(f"{sub.value!r} is not a number, in {text!r}")
        if isinstance(sub, ast.Constant):
            written = ast.get_source_segment(source, sub) or repr(sub.value)
            if len(written) > 40:
                written = f"{written[:12]}... ({len(written)} characters)"
            if too_large(sub.value):
                raise ExprError(f"the number {written} in {_quoted(text)} is larger than the limit of 1e30")
            if sub.value == 0 and any(c in "123456789" for c in written.lower().split("e")[0]):
                raise ExprError(f"the number {written} in {_quoted(text)} is too small to represent: "
                                "it would be read as 0")
    return tree


def _check_depth(tree, text):
    """Refuse nesting deeper than MAX_DEPTH, so that evaluating it stays far from Python's
    recursion limit (walked with a stack of its own)."""
    stack = [(tree.body, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ExprError(f"expression {_quoted(text)} is nested more than {MAX_DEPTH} deep")
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))


def _quoted(text: str) -> str:
    """The expression as quoted in a message: repr (one line), shortened when long."""
    return repr(text) if len(text) <= 80 else repr(text[:77]) + "..."


_ALLOWED_NODES = (
    ast.Expression, ast.BinOp, ast.UnaryOp, ast.Constant, ast.Name, ast.Call, ast.Load,
    ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow, ast.UAdd, ast.USub,
)


def names_in(text: str) -> set[str]:
    """The variable names an expression uses."""
    tree = _parse(text)
    read = {id(n.args[0]) for n in ast.walk(tree) if isinstance(n, ast.Call) and n.func.id == "shape"}
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id not in _FUNCS and id(n) not in read}


def evaluate(text: str, scope: dict):
    """Evaluate `text` with names taken from `scope`. Returns int where the value is integral."""
    value = _eval(_parse(text).body, scope, text)
    return _tidy(value)


def _tidy(value):
    if isinstance(value, Fraction):
        if value.denominator == 1:
            return value.numerator
        shown = float(value)
        if shown == 0:
            raise ExprError(f"the value {value} is too small to represent: it would be read as 0")
        return shown
    if isinstance(value, float) and not math.isfinite(value):
        raise ExprError("expression is not a finite number")
    return value


def _check(value, text):
    if isinstance(value, complex):
        raise ExprError(f"value of {_quoted(text)} is not a real number")
    if isinstance(value, (int, Fraction, float)) and too_large(value):
        raise ExprError(f"value of {_quoted(text)} is too large (over 1e30)")
    if isinstance(value, Fraction) and value.denominator.bit_length() > MAX_FRACTION_BITS:
        raise ExprError(f"value of {_quoted(text)} is too small or too finely divided to keep exactly "
                        f"(a fraction with a denominator over 2^{MAX_FRACTION_BITS})")
    return value


def too_large(value) -> bool:
    """Past the bound on every number: 10^30 (for floats, the float nearest it), or not finite."""
    if isinstance(value, float):
        return not math.isfinite(value) or abs(value) > 1e30
    return abs(value) > MAX_MAGNITUDE


def _underflow(result, operands, text):
    """A product, quotient or power of nonzero numbers that comes out 0 has underflowed."""
    if isinstance(result, float) and result == 0 and all(isinstance(v, (int, float, Fraction)) and v != 0
                                                         for v in operands):
        raise ExprError(f"value of {_quoted(text)} is too small to represent: it would be read as 0")
    return result


def _eval(node, scope, text):
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        if node.id in _FUNCS:
            raise ExprError(f"'{node.id}' must be called, in {text!r}")
        if node.id not in scope:
            hint = " (shape(input, 0) reads a block input's channels)" if node.id == "input" and SHAPE_READER in scope \
                else did_you_mean(node.id, [k for k in scope if k != SHAPE_READER])
            exc = ExprError(f"unknown name '{node.id}' in {text!r}{hint}")
            exc.unknown = None if hint else node.id
            raise exc
        value = scope[node.id]
        if isinstance(value, bool) or isinstance(value, (str, list, tuple, dict)) or value is None:
            raise ExprError(f"'{node.id}' is {value!r}, not a number, in {text!r}")
        return value
    if isinstance(node, ast.UnaryOp):
        value = _eval(node.operand, scope, text)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.Call):
        if node.func.id == "shape":
            return _shape(node, scope, text)
        values = [_eval(a, scope, text) for a in node.args]
        if node.func.id in _ARITY:
            return _rounded(node.func.id, values, text)
        if any(hasattr(v, "free_symbols") for v in values):  # symbolic sizes: sympy's Min/Max
            import sympy

            _bounded_for_sympy(values, MAX_COMPARED_DEGREE, f"{node.func.id}()", text, MAX_COMPARED_VALUES)
            return (sympy.Min if node.func.id == "min" else sympy.Max)(*values)
        return _FUNCS[node.func.id](values)
    # BinOp
    left = _eval(node.left, scope, text)
    right = _eval(node.right, scope, text)
    op = type(node.op)
    if op in (ast.FloorDiv, ast.Mod) and (hasattr(left, "free_symbols") or hasattr(right, "free_symbols")):
        _bounded_for_sympy((left, right), MAX_FLOORED_DEGREE, "//" if op is ast.FloorDiv else "%", text)
    try:
        if op is ast.Div:
            if isinstance(left, (int, Fraction)) and isinstance(right, (int, Fraction)):
                return _check(Fraction(left) / Fraction(right), text)
            return _check(_underflow(left / right, (left, right), text), text)
        if op is ast.Pow:
            return _check(_underflow(_power(left, right, text), (left, right), text), text)
        result = _check(_BINOPS[op](left, right), text)
        return _underflow(result, (left, right), text) if op is ast.Mult else result
    except ZeroDivisionError:
        raise ExprError(f"division by zero in {text!r}") from None
    except OverflowError:
        raise ExprError(f"value of {_quoted(text)} is too large (over 1e30)") from None


# sympy settles min/max and floors of symbolic sizes as it builds them, by comparing the values
# (real roots of their differences) and factoring what a floor takes: unbounded work in their
# degree (min(W**450, ...) did not finish; a degree-32 comparison took 7 s). Sizes are degree 1.
MAX_COMPARED_DEGREE = 4  # of the values of a symbolic min() / max()
MAX_COMPARED_VALUES = 8
MAX_FLOORED_DEGREE = 8  # of what a symbolic // or % takes


def _bounded_for_sympy(values, degree: int, what: str, text: str, count: int | None = None) -> None:
    if count is not None and len(values) > count:
        raise ExprError(f"{what} of {len(values)} symbolic values in {_quoted(text)}: at most {count}")
    if max(_degree(v) for v in values) > degree:
        raise ExprError(f"{what} of a formula of degree above {degree} in {_quoted(text)}: sympy cannot "
                        "settle it in bounded time")


def _degree(value) -> float:
    """A bound on the polynomial degree of a sympy value (numbers 0, symbols 1, whole powers
    multiply; other powers unbounded), walked without recursion."""
    if not hasattr(value, "free_symbols") or not value.free_symbols:
        return 0
    import sympy

    found, stack = {}, [(value, False)]
    while stack:
        expr, done = stack.pop()
        if expr in found:
            continue
        if not expr.free_symbols:
            found[expr] = 0
        elif expr.is_Symbol:
            found[expr] = 1
        elif not done:
            stack.append((expr, True))
            stack.extend((arg, False) for arg in expr.args)
        else:
            args = [found[arg] for arg in expr.args]
            if isinstance(expr, sympy.Pow):
                found[expr] = args[0] * abs(int(expr.exp)) if expr.exp.is_Integer else math.inf
            elif isinstance(expr, sympy.Mul):
                found[expr] = sum(args)
            else:  # Add, and functions (floor, Min, Max, Mod): the largest of their arguments
                found[expr] = max(args)
    return found[value]


def _shape(node, scope, text):
    """shape(NAME, dim): one size of NAME's shape (batch excluded), from the scope's reader."""
    name = node.args[0].id
    reader = scope.get(SHAPE_READER)
    if reader is None:
        raise ExprError(f"shape({name}, ...) reads the shape of a block's input, so it is written in a block's "
                        f"layers or arguments; here (outside a block) write the size itself, in {_quoted(text)}")
    dims = tuple(reader(name))  # an ExprError where NAME names nothing shaped here
    d = _eval(node.args[1], scope, text)
    if isinstance(d, Fraction) and d.denominator == 1:
        d = d.numerator
    if isinstance(d, bool) or not isinstance(d, int):
        raise ExprError(f"shape()'s dim must be a whole number, got {d}, in {_quoted(text)}")
    if not -len(dims) <= d < len(dims):
        raise ExprError(f"shape({name}, {d}): '{name}' has the shape [{', '.join(map(str, dims))}] (batch excluded), "
                        f"so dim is {f'0 to {len(dims) - 1}' if len(dims) > 1 else '0'} (or -{len(dims)} to -1 from "
                        f"the end), in {_quoted(text)}")
    return dims[d]


def _rounded(name: str, values: list, text: str):
    """floor(x), ceil(x), round(x[, ndigits]): exact on ints and fractions (math.floor of a
    Fraction is exact), Python's own on floats; floor and ceil of a symbolic size are sympy's."""
    x = values[0]
    if hasattr(x, "free_symbols"):
        if name == "round" or len(values) > 1:
            raise ExprError(f"round() of a symbolic size in {_quoted(text)}: sympy has no round-half-to-even; "
                            "write floor(x + 1/2) to round halves up, or floor() / ceil()")
        import sympy

        _bounded_for_sympy(values, MAX_FLOORED_DEGREE, f"{name}()", text)
        return (sympy.floor if name == "floor" else sympy.ceiling)(x)
    if len(values) == 2:
        digits = values[1]
        if isinstance(digits, Fraction) and digits.denominator == 1:
            digits = digits.numerator
        if hasattr(digits, "free_symbols") or not isinstance(digits, int) or abs(digits) > MAX_ROUND_DIGITS:
            raise ExprError(f"round()'s ndigits must be a whole number from -{MAX_ROUND_DIGITS} to "
                            f"{MAX_ROUND_DIGITS}, got {digits}, in {_quoted(text)}")
        return _check(round(x, digits), text)
    return _check(_FUNCS[name](x), text)


def _power(base, exponent, text):
    """base ** exponent, its size judged from the logarithm before anything is computed."""
    number = (int, Fraction, float)
    if isinstance(exponent, Fraction) and exponent.denominator == 1:
        exponent = exponent.numerator
    if not (isinstance(exponent, number) and isinstance(base, number)):  # symbolic sizes
        if isinstance(exponent, number) and (not isinstance(exponent, int) or abs(exponent) > MAX_SYMBOLIC_EXPONENT):
            raise ExprError(f"exponent {exponent} in {_quoted(text)} is too large for a symbolic size (at most "
                            f"a whole {MAX_SYMBOLIC_EXPONENT})")
        return base**exponent
    if base < 0 and not isinstance(exponent, int) and exponent != int(exponent):
        raise ExprError(f"value of {_quoted(text)} is not a real number (a negative number to a fractional power)")
    if base not in (0, 1, -1):
        scale = float(exponent) * math.log2(abs(base))  # log2 of the result's magnitude
        if scale > MAX_EXPONENT_BITS:
            raise ExprError(f"value of {_quoted(text)} is too large (over 1e30)")
        exact = isinstance(exponent, int) and isinstance(base, (int, Fraction))
        bits = abs(exponent) * max(Fraction(base).numerator.bit_length(), Fraction(base).denominator.bit_length()) \
            if exact else 0
        if not exact and scale < -1000:  # below the smallest float
            raise ExprError(f"value of {_quoted(text)} is too small to represent: it would be read as 0")
        if scale < -MAX_FRACTION_BITS or bits > 2 * (MAX_FRACTION_BITS + MAX_EXPONENT_BITS):
            raise ExprError(f"value of {_quoted(text)} is too small or too finely divided to keep exactly "
                            f"(a fraction with a denominator over 2^{MAX_FRACTION_BITS})")
    if isinstance(exponent, int) and isinstance(base, (int, Fraction)):
        return Fraction(base) ** exponent
    return float(base) ** float(exponent)
