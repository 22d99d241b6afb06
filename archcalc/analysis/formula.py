"""One printer for figures: numbers and symbolic formulas as `analyze` (table, Markdown, LaTeX),
`explain`, `check` and the answer key show them.

    text(40*(H - 4)*(W - 4) + 426)   -> '40*(H - 4)*(W - 4) + 426'
    text(10*(8*H - 32)*(W/2 - 2) + 426)  (the same value as sympy keeps it)  -> the same text
    text(floor(H/2 - 1/2) + 1)       -> 'floor((H - 1)/2) + 1'
    text(11689512)                   -> '11,689,512'
    text(40320*H*W)                  -> '40,320*H*W'
    shape((16, H - 4, 1024))         -> '[16, H - 4, 1024]'

Conventions (docs/spec.md, Symbolic sizes):
- A formula is written in the most readable of the equal forms tried: sympy's own, and the
  factored one, where each sum inside a product gives up its common factor to the product's
  coefficient (`10*(8*H - 32)*(W/2 - 2)` is `40*(H - 4)*(W - 4)`), sign included (`-(H - 4)`, not
  `(4 - H)`), and terms with the same factors are added (`400*(H - 4)*(W - 4) + 40*(H - 4)*(W - 4)`
  is `440*(H - 4)*(W - 4)`). The shortest text wins; a tie goes to the factored form.
- Floors and ceilings keep the analysis' own (PyTorch's) rule, written over one fraction:
  `floor((H - 1)/2) + 1` (the lecture's floor((N + 2P - K)/S) + 1), never `floor(H/2 - 1/2)`;
  a ceiling (ceil_mode, 'same' padding, window padding) is `ceil(H/2)`. A remainder is written
  as a spec's expressions write it, in its own brackets: `(6*H % 7)` (sympy: `Mod(6*H, 7)`).
- Whole numbers of four digits or more are grouped by thousands with commas, alone and inside
  formulas (`1,704`, `40,320*H*W + 1,704`), except in shapes: a shape's commas separate its
  sizes, so its numbers are written as PyTorch writes them (`[16, 1024]`, `[1024*H]`), and
  inside a call of several arguments, whose commas separate them (`max(1000, H)`: `max(1,000, H)`
  would read back as `max(1, 000, H)`, that is H).
- LaTeX groups as `40{,}320` (not inside max and min).
- Machine forms (`--json`, `--format csv`) keep sympy's `str(expr)` and plain digits: stable, and
  read back by `sympy.sympify`. This module only makes text for people.

Every printed form equals the value it prints (tests/analysis/test_formula.py checks it); a form
that would not (it cannot, but the check is cheap) falls back to sympy's own text.
sympy is imported only for a symbolic figure; numbers never touch it.
"""
from __future__ import annotations

import re
from fractions import Fraction
from functools import lru_cache

__all__ = ["latex", "number", "readable", "shape", "text"]


def number(n: int, group: bool = True) -> str:
    """A whole number, grouped by thousands: 11,689,512."""
    return f"{n:,}" if group else str(n)


def _is_formula(value) -> bool:
    return hasattr(value, "free_symbols") and not isinstance(value, (int, float, Fraction))


def text(value, group: bool = True) -> str:
    """A figure as text: ints grouped (with `group`), Fractions as 3/2, formulas in their most
    readable form, anything else as str()."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return number(value, group)
    if isinstance(value, Fraction):
        return number(value.numerator, group) if value.denominator == 1 else \
            f"{number(value.numerator, group)}/{number(value.denominator, group)}"
    if _is_formula(value):
        if value.is_Integer:
            return number(int(value), group)
        return _text(value, group)
    return str(value)


def shape(values) -> str:
    """A shape: its sizes separated by commas, so none of them grouped: [16, H - 4, 1024]."""
    return "[" + ", ".join(text(v, group=False) for v in values) + "]"


def latex(value, group: bool = True) -> str:
    """A figure as LaTeX (without $...$): the same form as `text`, numbers grouped as 40{,}320
    (with `group`)."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, Fraction)):
        return text(value, group).replace(",", "{,}")
    if not _is_formula(value):
        return str(value)
    if value.is_Integer:
        return text(int(value), group).replace(",", "{,}")
    return _latex(value, group)


def readable(value):
    """The chosen form of a formula as an unevaluated sympy expression (its str() is `text`
    without grouping); numbers as they are."""
    if not _is_formula(value):
        return value
    return _choose(value)[0]


# --- choosing the form ------------------------------------------------------------------------

@lru_cache(maxsize=8192)
def _choose(expr):
    """(form, text): the most readable of the forms tried, an unevaluated expression equal to
    `expr`, and its text with numbers not grouped; sympy's own where a rewrite fails."""
    try:
        return _readable(expr)
    except Exception:  # noqa: BLE001 -- a formula sympy will not rewrite is still shown, as sympy writes it
        return expr, _Printer(False).doprint(expr)


def _readable(expr):
    import sympy

    printer = _Printer(False)

    def shortest(forms):
        """The factored form (first), unless sympy's own is shorter by a third: of the 345
        distinct symbolic figures of the bundled zoo and homework specs, the factored form was
        never the longer; it is a few characters longer where a size is written shrunk first,
        (H - 4)/2 for H/2 - 2."""
        factored, plain = forms
        texts = printer.doprint(factored), printer.doprint(plain)
        if 3 * len(texts[1]) < 2 * len(texts[0]):
            return plain, texts[1]
        return factored, texts[0]

    best = shortest([_tidy(expr, factor=True), _tidy(expr, factor=False)])
    if expr.has(sympy.floor, sympy.ceiling):
        merged = _merge_floors(expr)
        if merged != expr:  # floor(floor((H - 1)/2)/2) + 1 is floor((H - 1)/4) + 1
            other = shortest([_tidy(merged, factor=True), _tidy(merged, factor=False)])
            if len(other[1]) < len(best[1]) and _same(other[0], expr):
                best = other
    return best


def _same(form, expr) -> bool:
    """`form` (unevaluated) equals `expr` at a few whole sizes: a cheap guard (the rewrites are
    exact by construction; tests/analysis/test_formula.py checks them thoroughly)."""
    import sympy

    try:
        evaluated = form.doit(deep=True)
        names = sorted(expr.free_symbols | evaluated.free_symbols, key=str)
        for i in range(4):
            point = {s: sympy.Integer(_SIZES[(3 * i + 5 * k) % len(_SIZES)]) for k, s in enumerate(names)}
            if evaluated.xreplace(point) != expr.xreplace(point):
                return False
        return True
    except Exception:  # noqa: BLE001 -- sympy refusing an operation: keep sympy's own text
        return False


def _over_one(arg):
    """(numerator, whole denominator) of a sum with rational coefficients: H/2 - 1/2 is (H - 1, 2)."""
    import math

    den = 1
    for term in arg.as_ordered_terms() if arg.is_Add else (arg,):
        coef, _ = term.as_coeff_Mul()
        if coef.is_Rational:
            den = math.lcm(den, int(coef.q))
    return (arg * den, den) if den > 1 else (arg, 1)


#: Whole sizes at which a form with merged floors is compared with the analysis' expression.
_SIZES = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 15, 16, 17, 31, 32, 33, 63, 97, 224)


@lru_cache(maxsize=16384)  # the layers of a network share their input's subformulas
def _merge_floors(e):
    """Nested floors (ceilings) of whole divisors merged: floor((floor(x) + m)/n) is
    floor((x + m)/n) for a whole m and n >= 1 (likewise ceil)."""
    import sympy

    if e.is_Atom or not e.has(sympy.floor, sympy.ceiling):
        return e
    e = e.func(*[_merge_floors(a) for a in e.args])
    if isinstance(e, sympy.Mul):  # -floor(-x) (a ceiling division) is ceil(x): c*floor(-x) = -c*ceil(x)
        coef, rest = e.as_coeff_Mul()
        parts = sympy.Mul.make_args(rest)
        flip = [p for p in parts if isinstance(p, (sympy.floor, sympy.ceiling)) and p.args[0].could_extract_minus_sign()]
        if flip:
            out = coef * (-1) ** len(flip)
            for p in parts:
                if any(p is f for f in flip):
                    other = sympy.ceiling if isinstance(p, sympy.floor) else sympy.floor
                    p = other(_merge_floors(-p.args[0]))
                out = out * p
            return out
    if isinstance(e, (sympy.floor, sympy.ceiling)):
        num, den = _over_one(e.args[0])
        if den > 1:
            inner = [t for t in sympy.Add.make_args(num) if isinstance(t, e.func)]
            if len(inner) == 1:
                rest = num - inner[0]
                if rest.is_integer:
                    return e.func((inner[0].args[0] + rest) / den)
    return e


def _text(expr, group: bool) -> str:
    text = _choose(expr)[1]
    return _grouped(text) if group else text


#: A whole number in a formula's text (not part of a name such as x1000).
_DIGITS = re.compile(r"(?<![\w.])\d{4,}(?![\w.])")
#: A bracket, with the name of the function it calls (empty for a plain bracket).
_BRACKET = re.compile(r"(\w*)\(|\)")
#: Brackets holding one value: a comma inside them separates nothing.
_ONE_VALUE = frozenset({"", "floor", "ceil"})


def _group_digits(text: str) -> str:
    return _DIGITS.sub(lambda m: f"{int(m[0]):,}", text)


def _grouped(text: str) -> str:
    """The text's whole numbers grouped by thousands, except inside the brackets of a call of
    several arguments (max(1000, H), Mod(H, 1000)), where a comma separates the arguments:
    max(1,000, H) would read back as max(1, 000, H), which is H."""
    if not _DIGITS.search(text):
        return text
    out, pos, inside = [], 0, []  # per open bracket: whether it is (inside) a call of several arguments
    for match in _BRACKET.finditer(text):
        part = text[pos:match.start()]
        out.append(part if inside and inside[-1] else _group_digits(part))
        out.append(match[0])
        pos = match.end()
        if match[0] != ")":
            inside.append(bool(inside and inside[-1]) or match[1] not in _ONE_VALUE)
        elif inside:
            inside.pop()
    tail = text[pos:]
    out.append(tail if inside and inside[-1] else _group_digits(tail))
    return "".join(out)


@lru_cache(maxsize=2048)
def _latex(expr, group: bool) -> str:
    return _latex_printer(group).doprint(_choose(expr)[0])


@lru_cache(maxsize=16384)
def _tidy(e, factor: bool):
    """e rewritten as an unevaluated expression: floors over one fraction, and (with `factor`)
    sums in products giving up their common factor, like terms added."""
    import sympy

    if e.is_Atom:
        return e
    if isinstance(e, (sympy.floor, sympy.ceiling)):
        arg = e.args[0]
        num, den = _over_one(arg)
        if den != 1:
            inner = sympy.Mul(sympy.Rational(1, den), _tidy(num, factor), evaluate=False)
        else:
            inner = _tidy(arg, factor)
        return e.func(inner, evaluate=False)
    if factor and isinstance(e, sympy.Add):
        return _sum(e)
    if factor and isinstance(e, sympy.Mul):
        coef, factors = _split(e)
        return _product(coef, factors)
    args = [_tidy(a, factor) for a in e.args]
    try:
        return e.func(*args, evaluate=False)
    except TypeError:  # a function without evaluate=: keep it
        return e


def _split(term):
    """A product as (Rational coefficient, sorted factors with their powers), each sum in it
    giving its content and sign to the coefficient."""
    import sympy

    coef = sympy.Integer(1)
    powers: dict = {}
    for part in sympy.Mul.make_args(term):
        if part.is_Number:
            coef *= part
            continue
        base, exp = part.as_base_exp() if isinstance(part, sympy.Pow) else (part, sympy.Integer(1))
        if isinstance(base, sympy.Add) and exp.is_Integer:
            content, base = base.as_content_primitive()
            if base.could_extract_minus_sign():
                content, base = -content, -base
            coef *= content ** exp
            base = _sum(base)
        elif isinstance(part, sympy.Pow):
            base, exp = _tidy(part.base, True), part.exp
            if not exp.is_Integer:  # a root: one factor as it is
                base, exp = sympy.Pow(base, exp, evaluate=False), sympy.Integer(1)
        else:
            base = _tidy(base, True)
        powers[base] = powers.get(base, 0) + exp
    factors = tuple(sorted(((b, x) for b, x in powers.items() if x != 0), key=lambda f: sympy.default_sort_key(f[0])))
    return coef, factors


def _product(coef, factors):
    import sympy

    parts = [b if x == 1 else sympy.Pow(b, x, evaluate=False) for b, x in factors]
    if not parts:
        return coef
    if coef == 1 and len(parts) == 1:
        return parts[0]
    return sympy.Mul(*([] if coef == 1 else [coef]), *parts, evaluate=False)


def _sum(e):
    """A sum with its terms tidied and terms of the same factors added; the constant last."""
    import sympy

    if not isinstance(e, sympy.Add):
        return _tidy(e, True)
    shrunk = _shrunk(e)
    if shrunk is not None:
        return shrunk
    constant = sympy.Integer(0)
    terms: dict = {}
    for term in e.args:
        if term.is_Number:
            constant += term
            continue
        coef, factors = _split(term)
        terms[factors] = terms.get(factors, 0) + coef
    parts = [_product(c, f) for f, c in terms.items() if c != 0]
    if constant != 0:
        parts.append(constant)
    if not parts:
        return sympy.Integer(0)
    if len(parts) == 1:
        return parts[0]
    return sympy.Add(*parts, evaluate=False)


def _shrunk(e):
    """A size less a whole number, then divided, written as the division of the smaller size (as
    a student writes the pooled size of H - 4): floor(H/2) - 2 is floor((H - 4)/2), H/2 - 2 is
    (H - 4)/2. Only a negative number moves in: the lecture's + 1 stays outside
    (floor((H - 1)/2) + 1, H/2 + 1). None where the sum is not one such size."""
    import sympy

    others = [a for a in e.args if not a.is_Number]
    if len(others) != 1:
        return None
    constant = e - others[0]
    if not (constant.is_Integer and constant < 0):
        return None
    size = others[0]
    if isinstance(size, (sympy.floor, sympy.ceiling)):  # floor(x) - k = floor(x - k) for a whole k
        return _tidy(size.func(size.args[0] + constant, evaluate=False), True)
    coef, rest = size.as_coeff_Mul()
    if coef.is_Rational and coef.q > 1 and (rest.is_Symbol or isinstance(rest, (sympy.floor, sympy.ceiling))):
        shift = constant / coef
        if shift.is_Integer:
            inner = sympy.Add(_tidy(rest, True), shift, evaluate=False)
            return sympy.Mul(coef, inner, evaluate=False)
    return None


# --- printers ---------------------------------------------------------------------------------

def _str_printer_class():
    from sympy.printing.str import StrPrinter

    class Printer(StrPrinter):
        def __init__(self, group: bool):
            super().__init__()
            self._group = group
            self._seen: dict = {}  # text of subformulas printed before: a network repeats them

        def _print(self, expr, **kwargs):
            if kwargs or not hasattr(expr, "func"):
                return super()._print(expr, **kwargs)
            key = (type(expr), expr)  # equal by structure: an unevaluated form prints as its args say
            done = self._seen.get(key)
            if done is None:
                done = super()._print(expr)
                if len(self._seen) > 50_000:
                    self._seen.clear()
                self._seen[key] = done
            return done

        def _print_Integer(self, expr):
            return number(int(expr), self._group)

        def _print_Rational(self, expr):
            if expr.q == 1:
                return number(int(expr.p), self._group)
            return f"{number(int(expr.p), self._group)}/{number(int(expr.q), self._group)}"

        def _print_ceiling(self, expr):
            return f"ceil({self._print(expr.args[0])})"

        def _print_Max(self, expr):  # as a spec's expressions write them: max(...), min(...)
            return "max(" + ", ".join(self._print(a) for a in expr.args) + ")"

        def _print_Min(self, expr):
            return "min(" + ", ".join(self._print(a) for a in expr.args) + ")"

        def _print_Mod(self, expr):  # as a spec's expressions write it, in its own brackets: (6*H % 7)
            a, b = expr.args
            # % binds as * does, from the left: a product on its left needs no bracket, on its right one
            return f"({self.parenthesize(a, 50, strict=True)} % {self.parenthesize(b, 50, strict=False)})"

        def parenthesize(self, item, level, strict=False):
            if type(item).__name__ == "Mod":  # bracketed already: 2*(6*H % 7), -(6*H % 7)
                return self._print(item)
            return super().parenthesize(item, level, strict)

    return Printer


_PRINTERS: dict = {}


def _Printer(group: bool):  # noqa: N802 -- a cached printer instance per grouping
    printer = _PRINTERS.get(group)
    if printer is None:
        printer = _PRINTERS[group] = _str_printer_class()(group)
    return printer


def _latex_printer(group: bool):
    printer = _PRINTERS.get(("latex", group))
    if printer is None:
        from sympy.printing.latex import LatexPrinter

        class Printer(LatexPrinter):
            _ungrouped = 0  # inside a call of several arguments: \max(1000, H), not \max(1{,}000, H)

            def _print_Integer(self, expr):
                return number(int(expr), group and not self._ungrouped).replace(",", "{,}")

            def _arguments(self, method, expr, **kwargs):
                self._ungrouped += 1
                try:
                    return method(self, expr, **kwargs)
                finally:
                    self._ungrouped -= 1

            def _print_Min(self, expr, **kwargs):
                return self._arguments(LatexPrinter._print_Min, expr, **kwargs)

            def _print_Max(self, expr, **kwargs):
                return self._arguments(LatexPrinter._print_Max, expr, **kwargs)

        printer = _PRINTERS[("latex", group)] = Printer()
    return printer


# --- text inside LaTeX (explain --latex, the homework sheets) ------------------------------------
_LATEX = {"\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "$": r"\$", "&": r"\&", "#": r"\#",
          "%": r"\%", "_": r"\_", "^": r"\textasciicircum{}", "~": r"\textasciitilde{}",
          "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}", '"': r"\textquotedbl{}",
          "×": r"$\times$", "≈": r"$\approx$", "·": r"$\cdot$", "−": "-", "≤": r"$\leq$", "≥": r"$\geq$",
          "–": "--", "—": "---", "…": r"\ldots{}", "✓": "ok", "✗": "x", "'": r"\textquotesingle{}",
          "`": r"\textasciigrave{}"}


def latex_escape(text) -> str:
    """Text as LaTeX that prints it literally (one line; characters LaTeX does not know under
    T1/utf8 as [U+XXXX])."""
    from archcalc.errors import one_line

    out = []
    text = one_line(str(text))
    for i, ch in enumerate(text):
        if ch == "-" and text[i + 1:i + 2] == "-":  # not a dash ligature
            out.append("-{}")
        elif ch in _LATEX:
            out.append(_LATEX[ch])
        elif ord(ch) < 32 or 0x7F <= ord(ch) < 0xA0:
            out.append(" ")
        elif ord(ch) > 0xFF:
            out.append(f"[U+{ord(ch):04X}]")
        else:
            out.append(ch)
    return "".join(out)
