"""Bounded decisions of "is this symbolic difference zero?" for `archcalc check`.

`sympy.simplify` has no bound on its work: a 70-character answer such as
`40*H*W + 10 + (H+W+1)**60*(H-W+2)**60 - (H*H-W*W+3*H+W+2)**60` kept it busy for minutes. Nothing
here calls it. A difference is first compiled into a small postfix program (refused past
MAX_NODES nodes) and evaluated exactly, with Python integers and fractions, at sample sizes:

1. a sample where it is not zero is a counterexample: different (for a rational function, also
   its value modulo a prime, which stays small where the exact value would have millions of digits);
2. a rational function (numbers, sizes, + - * / and whole powers) is then decided exactly: its
   numerator, written over a common denominator without cancelling, is a polynomial whose degree
   in each size is bounded from the expression's structure; a polynomial of degree d in a size
   that vanishes at d + 1 values of it, for each size, is zero (or the grid covers every allowed
   value). The grid is evaluated only within GRID_BUDGET node evaluations;
3. anything else (floors, min, max, mod) is equal when it vanishes on a wider sweep of sizes too,
   within SAMPLE_BUDGET node evaluations.

Each step's cost is bounded by the expression's size; where a bound is reached the answer is
None: cannot decide (the caller's verdict "undecided"), never a hang.
"""
from __future__ import annotations

import math
from contextvars import ContextVar
from fractions import Fraction

MAX_NODES = 5000  # sympy nodes of a difference that is evaluated at all
MAX_DEPTH = 2000  # nesting of one (iteratively walked, so no RecursionError)
GRID_BUDGET = 3_000_000  # node evaluations spent proving a rational identity
SAMPLE_BUDGET = 2_000_000  # node evaluations spent on the wider sweep of a floor identity
MAX_VALUE_BITS = 200_000  # a power past this many bits at a sample point is not evaluated there
#: Node evaluations for all the comparisons of one answers file (its hints included): a file of
#: thousands of hard answers is bounded as a whole, not only answer by answer.
FILE_BUDGET = 30_000_000


class Unsupported(Exception):
    """A node the exact evaluator does not know (a function other than floor, ceiling, min, max,
    mod and abs, a symbol outside the point)."""


class _Undefined(Exception):
    """The expression is undefined at this point (a division by zero)."""


class TooLarge(Exception):
    """The expression is past MAX_NODES nodes or MAX_DEPTH levels: it is not evaluated."""



class Budget:
    """Node evaluations left; `spend` raises TooLarge once they run out (the verdict "undecided")."""

    def __init__(self, evaluations: int):
        self.left = evaluations

    def spend(self, evaluations: int) -> None:
        if evaluations > self.left:
            raise TooLarge
        self.left -= evaluations


# The budget of the answers file being checked (archcalc.homework.check sets it); unbounded
# outside a check, where only the per-comparison bounds apply.
_BUDGET: ContextVar[Budget | None] = ContextVar("archcalc_decide_budget", default=None)


def file_budget(evaluations: int = FILE_BUDGET):
    """Context manager: every comparison inside spends from one budget of `evaluations`."""
    from contextlib import contextmanager

    @contextmanager
    def scope():
        token = _BUDGET.set(Budget(evaluations))
        try:
            yield
        finally:
            _BUDGET.reset(token)

    return scope()


def _spend(evaluations: int) -> None:
    budget = _BUDGET.get()
    if budget is not None:
        budget.spend(evaluations)


def compile_expr(expr, symbols):
    """Postfix program of `expr` over `symbols` (their order gives the point's coordinates).
    Raises TooLarge past MAX_NODES nodes or MAX_DEPTH levels, Unsupported for an unknown node."""
    import sympy

    index = {s: i for i, s in enumerate(symbols)}
    program, stack, count = [], [(expr, False, 0)], 0
    while stack:
        node, done, depth = stack.pop()
        if done:
            program.append(_instruction(node, index, sympy))
            continue
        count += 1
        if count > MAX_NODES or depth > MAX_DEPTH:
            raise TooLarge
        if node.is_Number or node.is_Symbol:
            program.append(_instruction(node, index, sympy))
            continue
        _instruction(node, index, sympy)  # refuse unknown nodes before walking below them
        args = (node.base,) if isinstance(node, sympy.Pow) and node.exp.is_Integer else node.args
        stack.append((node, True, depth))
        stack.extend((arg, False, depth + 1) for arg in reversed(args))
    return program


def _instruction(node, index, sympy):
    if node.is_Integer:
        return ("c", Fraction(int(node)))
    if node.is_Rational:
        return ("c", Fraction(int(node.p), int(node.q)))
    if node.is_Float:
        return ("c", Fraction(str(node)))  # the decimal as written, exactly
    if node.is_Symbol:
        if node not in index:
            raise Unsupported(node)
        return ("v", index[node])
    if isinstance(node, sympy.Add):
        return ("add", len(node.args))
    if isinstance(node, sympy.Mul):
        return ("mul", len(node.args))
    if isinstance(node, sympy.Pow):
        return ("pow", int(node.exp)) if node.exp.is_Integer else ("powx", 2)
    for cls, op in ((sympy.floor, "floor"), (sympy.ceiling, "ceil"), (sympy.Min, "min"), (sympy.Max, "max"),
                    (sympy.Mod, "mod"), (sympy.Abs, "abs")):
        if isinstance(node, cls):
            return (op, len(node.args))
    raise Unsupported(node)


RATIONAL_OPS = frozenset({"c", "v", "add", "mul", "pow"})


def is_rational(program) -> bool:
    return all(op in RATIONAL_OPS for op, _ in program)


def evaluate(program, point):
    """The exact value (a Fraction) of a program at a point; _Undefined where it divides by 0."""
    stack = []
    for op, arg in program:
        if op == "c":
            stack.append(arg)
        elif op == "v":
            stack.append(Fraction(point[arg]))
        elif op == "pow":
            stack.append(_power(stack.pop(), arg))
        elif op == "powx":
            exponent = stack.pop()
            stack.append(_power(stack.pop(), exponent))
        elif op in ("floor", "ceil", "abs"):
            value = stack.pop()
            stack.append(Fraction(math.floor(value) if op == "floor" else math.ceil(value) if op == "ceil"
                                  else abs(value)))
        else:
            args = stack[-arg:]
            del stack[-arg:]
            if op == "add":
                stack.append(sum(args, Fraction(0)))
            elif op == "mul":
                stack.append(math.prod(args, start=Fraction(1)))
            elif op == "min":
                stack.append(min(args))
            elif op == "max":
                stack.append(max(args))
            else:  # mod: sympy's Mod(a, b) is Python's a % b
                if args[1] == 0:
                    raise _Undefined
                stack.append(args[0] % args[1])
    return stack[0]


def _power(base: Fraction, exponent) -> Fraction:
    """base ** exponent, exactly; _Undefined where that is not a rational number this bounded
    evaluator can write (0 to a negative power, an irrational root, past MAX_VALUE_BITS)."""
    exponent = Fraction(exponent)
    p, q = exponent.numerator, exponent.denominator
    bits = max(base.numerator.bit_length(), base.denominator.bit_length(), 1)
    if (base == 0 and p < 0) or abs(p) * bits > MAX_VALUE_BITS * q:
        raise _Undefined
    if q > 1:  # a root: exact only for perfect powers (H**0.5 at H = 4, 9, 16, ...)
        if base < 0 or q > 64:
            raise _Undefined
        roots = [_exact_root(part, q) for part in (base.numerator, base.denominator)]
        if None in roots:
            raise _Undefined
        base = Fraction(*roots)
    return base ** p


def _exact_root(n: int, q: int) -> int | None:
    root = round(n ** (1 / q)) if n.bit_length() < 1000 else None
    if root is None:
        return None
    for r in (root - 1, root, root + 1):
        if r >= 0 and r ** q == n:
            return r
    return None


def _fraction_pairs(program, point):
    """The program's numerator and denominator at a point, built without cancelling:
    a/b + c/d = (ad + bc)/(bd). Both are polynomials in the sizes (integer coefficients)."""
    stack = []
    for op, arg in program:
        if op == "c":
            stack.append((arg.numerator, arg.denominator))
        elif op == "v":
            stack.append((point[arg], 1))
        elif op == "pow":
            n, d = stack.pop()
            stack.append((n ** arg, d ** arg) if arg >= 0 else (d ** -arg, n ** -arg))
        else:
            args = stack[-arg:]
            del stack[-arg:]
            n, d = args[0]
            for n2, d2 in args[1:]:
                n, d = (n * d2 + n2 * d, d * d2) if op == "add" else (n * n2, d * d2)
            stack.append((n, d))
    return stack[0]


def _degrees(program, width: int):
    """Per size, a bound on the degree of the numerator and of the denominator of `_fraction_pairs`."""
    zero = (0,) * width
    stack = []
    for op, arg in program:
        if op == "c":
            stack.append((zero, zero))
        elif op == "v":
            one = tuple(int(i == arg) for i in range(width))
            stack.append((one, zero))
        elif op == "pow":
            n, d = stack.pop()
            k = abs(arg)
            n, d = tuple(k * v for v in n), tuple(k * v for v in d)
            stack.append((n, d) if arg >= 0 else (d, n))
        else:
            args = stack[-arg:]
            del stack[-arg:]
            n, d = args[0]
            for n2, d2 in args[1:]:
                if op == "add":
                    n = tuple(max(a + b2, a2 + b) for a, b, a2, b2 in zip(n, d, n2, d2))
                else:
                    n = tuple(a + a2 for a, a2 in zip(n, n2))
                d = tuple(b + b2 for b, b2 in zip(d, d2))
            stack.append((n, d))
    return stack[0]


def allowed_values(scale: int, low: int, high, count: int) -> list[int]:
    """Up to `count` consecutive allowed values of a size scaled by `scale` (H = scale * v),
    within [low, high]: fewer when the range holds fewer."""
    first = max(1, -(-low // scale))
    last = None if high is None else high // scale
    stop = first + count if last is None else min(first + count, last + 1)
    return list(range(first, stop))


def rational_zero(program, symbols, ranges):
    """Exact decision for a rational program: True (zero wherever defined), False, or None
    (the grid needed is past GRID_BUDGET, or the expression is undefined everywhere)."""
    num_deg, den_deg = _degrees(program, len(symbols))
    axes = []
    for sym, dn, dd in zip(symbols, num_deg, den_deg):
        scale, low, high = ranges.get(sym, (1, 1, None))
        axes.append(allowed_values(scale, low, high, max(dn, dd) + 1))
    if any(not axis for axis in axes):
        return None
    if math.prod(len(a) for a in axes) * len(program) > GRID_BUDGET:
        return None
    _spend(math.prod(len(a) for a in axes) * len(program))
    defined = False
    for point in _grid(axes):
        n, d = _fraction_pairs(program, point)
        if n != 0:
            return False
        defined = defined or d != 0
    # The denominator vanishing on the whole grid is zero as a polynomial: undefined everywhere.
    return True if defined else None


def _grid(axes):
    """Every point of the product of `axes` (iteratively: no recursion, no big lists)."""
    import itertools

    return itertools.product(*axes)


PRIME = 2**61 - 1  # a Mersenne prime: values modulo it stay small whatever the powers


def nonzero_mod_prime(program, points) -> bool:
    """True when a rational program is certainly nonzero at one of `points`: its value modulo
    PRIME is not 0 (then neither is the value). Found even where the exact value has millions of
    digits ((H+1)**64 nested four deep); a value that is 0 modulo PRIME proves nothing."""
    _spend(len(points) * len(program))
    for point in points:
        stack = []
        try:
            for op, arg in program:
                if op == "c":
                    if arg.denominator % PRIME == 0:
                        raise _Undefined
                    stack.append(arg.numerator * pow(arg.denominator, -1, PRIME) % PRIME)
                elif op == "v":
                    stack.append(point[arg] % PRIME)
                elif op == "pow":
                    base = stack.pop()
                    if base == 0 and arg < 0:
                        raise _Undefined
                    stack.append(pow(base, arg, PRIME))
                else:
                    args = stack[-arg:]
                    del stack[-arg:]
                    total = 0 if op == "add" else 1
                    for value in args:
                        total = (total + value if op == "add" else total * value) % PRIME
                    stack.append(total)
        except _Undefined:
            continue
        if stack[0] != 0:
            return True
    return False


def vanishes_at(program, points) -> bool | None:
    """False at the first point where the program is defined and nonzero; True when it is zero
    at every point where defined; None when it is defined at none of them."""
    _spend(len(points) * len(program))
    defined = False
    for point in points:
        try:
            value = evaluate(program, point)
        except _Undefined:
            continue
        if value != 0:
            return False
        defined = True
    return True if defined else None


__all__ = ["Budget", "FILE_BUDGET", "GRID_BUDGET", "MAX_NODES", "PRIME", "SAMPLE_BUDGET", "TooLarge", "Unsupported",
           "allowed_values", "compile_expr", "evaluate", "file_budget", "is_rational", "nonzero_mod_prime",
           "rational_zero", "vanishes_at"]
