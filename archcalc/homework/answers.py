"""Reading a student's answers file.

```yaml
student: Alice Martin          # optional: who answered (`archcalc grade` uses the file name otherwise)
set: {H: 28, W: 28}            # optional: numbers for the spec's size symbols
tolerance: 0.01                # optional: relative tolerance of approximate answers (or "1%")
answers:
  conv1.params: 416                     # exact number
  fc.params: "4*H*W*10 + 10"            # expression (symbolic when it uses names)
  total.macs: "about 822 million"       # approximate (also "1.64 G", "12.6k", "8.2e8", 8.2e+8)
  total.activation_bytes: 8 MiB         # *_bytes figures take B, kB, MB, GB, KiB, MiB, GiB
  pool1.output_shape: [16, 14, 14]      # shape (items may be expressions)
  conv2.rf: 7                           # rf: size on every axis, [sizes per axis], "global",
                                        #     or {size:, stride:, start:}
  pool2.rf: 6x6                         # axes may be written with x: "6x6", "16 x 14 x 14"
  conv1.rf: size 5, stride 1, start -2  # the parts in one string, as check prints them
  fc.rf: [H, W]                         # a global field may be the input's size, or "the whole image"
  pool1.output_shape: [16, "(H-4)//2", "floor((W-4)/2)"]   # floor(), ceil(), // (and ⌊x⌋, ceiling())
```

Every key is `LAYER.FIGURE` (split on the last dot, so `layer1.1.conv1.params` names layer
`layer1.1.conv1`) or `total.FIGURE`. Every value becomes a typed answer (`Exact`, `Approx`,
`Symbolic`, `Shape`, `RFAnswer`) that remembers where it was written. Expressions are evaluated only
by `archcalc.reader.expr.evaluate` (an allow-list AST evaluator; what check prints, sympy's
`ceiling(...)`, `Min(...)` and `⌊x⌋` included, is read back); sympy is imported only when an
answer uses names. A product must be written with `*`: `40(H-4)(W-4)` and `5x5x16+16` are refused
with the text to write instead (`40*(H-4)*(W-4)`, `5*5*16+16`). Mistakes in the file raise
`SpecError` with FILE:LINE:COL; with `strict=False` a mistake in one answer (its key or its value)
makes only that answer `Invalid`, and the others are read.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from fractions import Fraction

from archcalc.errors import Loc, SpecError, did_you_mean
from archcalc.reader.expr import MAX_MAGNITUDE, MAX_SYMBOLIC_EXPONENT, MAX_TEXT, ExprError, evaluate, names_in
from archcalc.reader.yaml_source import YList, YMap, load_yaml, plain, read_source, source_name

TOP_KEYS = ("set", "tolerance", "answers", "student")
MAX_STUDENT = 200  # characters of a `student:` name
MAX_GIVEN = MAX_TEXT + 100  # characters of an answer as shown back (longer formulas are refused anyway)
FIGURES = ("params", "trainable_params", "non_trainable_params", "macs", "flops", "output_shape", "rf",
           "activation_bytes", "param_bytes")
LAYER_ONLY = frozenset({"rf"})
TOTAL_ONLY = frozenset({"param_bytes"})
NUMBER_FIGURES = tuple(f for f in FIGURES if f not in ("output_shape", "rf"))
TOTAL = "total"
DEFAULT_TOLERANCE = 0.01
MAX_DIGITS = 40  # digits of a written number (1e30 has 31)

#: Multipliers of approximate answers. Single letters are case-sensitive where case matters
#: (lower-case m would be "milli"); words are case-insensitive.
UNITS = {"k": 10**3, "K": 10**3, "M": 10**6, "G": 10**9, "g": 10**9, "B": 10**9, "b": 10**9,
         "T": 10**12, "t": 10**12}
UNIT_WORDS = {"thousand": 10**3, "million": 10**6, "mn": 10**6, "billion": 10**9, "bn": 10**9,
              "trillion": 10**12}
UNITS_TEXT = "k, K, thousand, M, million, G, B, billion, T, trillion"
#: Memory units, for the *_bytes figures only ("8 MiB"; there B is bytes, not billion).
BYTE_UNITS = {"B": 1, "kB": 10**3, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
              "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40}
BYTE_UNITS_TEXT = "B, kB, MB, GB, TB, KiB, MiB, GiB, TiB"

_APPROX_WORDS = r"(?:about|approx\.?|approximately|around|roughly|circa|ca\.|~|≈)"
_NUMBER = r"[+-]?(?:\d{1,3}(?:,\d{3})+|\d[\d_]*)?(?:\.\d+)?(?:[eE][+-]?\d+)?"
_APPROX = re.compile(rf"\s*(?P<about>{_APPROX_WORDS}\s*)?(?P<num>{_NUMBER})\s*(?P<unit>[A-Za-z]+)?\s*\Z",
                     re.IGNORECASE)
_LOOKS_APPROX = re.compile(rf"\s*({_APPROX_WORDS}|[+-]?[\d.,_]+\s*[A-Za-z]+\s*\Z)", re.IGNORECASE)
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_RF_PART = re.compile(r"\s*(size|stride|start)\b\s*[:=]?\s*(.*)\Z", re.IGNORECASE | re.DOTALL)
_RF_WORD = re.compile(r"\b(?:size|stride|start)\b", re.IGNORECASE)
_SPACED_NUMBER = re.compile(r"(?<![\w.])\d{1,3}(?: \d{3})+(?![\w.])")
_POWER_OF_TEN = re.compile(r"\s*(\d+\.\d+|\d+)\s*\*\s*10\s*\*\*\s*\(?\s*([+-]?\d{1,3})\s*\)?\s*\Z")  # 8.2*10**8
_GROUPED_IN_FORMULA = re.compile(r"(?<![\w.,])\d{1,3}(?:,\d{3})+(?![\w.,])")

# --- notation ---------------------------------------------------------------------------------
#: Functions as sympy prints them (archcalc's own expected values: `ceiling(H/2)`, `Min(H, 3)`),
#: and the floor and ceiling brackets, are read as the expression parser's floor/ceil/min/max.
#: Only names right before "(" are rewritten, and the result still goes through the parser.
_FUNCTION_ALIASES = {"ceiling": "ceil", "Min": "min", "Max": "max", "Floor": "floor", "Ceil": "ceil"}
_ALIAS_CALL = re.compile(r"\b(ceiling|Min|Max|Floor|Ceil)(?=\s*\()")
_BRACKETS = str.maketrans({"⌊": "floor(", "⌋": ")", "⌈": "ceil(", "⌉": ")",
                           "−": "-"})  # and the minus sign of typeset formulas (U+2212), pasted
#: A product written as a times sign or an x between numbers, brackets or spaced-out terms
#: (5x5x16, (H-4)x(W-4), H x W); for rf and output_shape the same signs separate the axes (6x6).
_TIMES_SIGN = re.compile(r"\s*[×·⋅∙]\s*")
_X_SIGN = re.compile(r"(?<=[\d)])\s*[xX]\s*(?=[\d(])|(?<=[\w)])\s+[xX]\s+(?=[\w(])")
_TOKEN = re.compile(r"\s*(?:(?P<num>(?:\d[\d_]*(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)|(?P<name>[A-Za-z_]\w*)"
                    r"|(?P<op>\*\*|//|[-+*/%(),])|(?P<other>\S))")
_CALLABLE = frozenset({"min", "max", "floor", "ceil", "round", "shape"})
_WHOLE_INPUT = re.compile(r"\s*(?:the\s+)?(?:whole|entire|full)\s+(?:image|input)\s*\Z", re.IGNORECASE)


def _notation(text: str) -> str:
    """`text` with sympy's function names and the floor/ceiling brackets in the parser's words."""
    return _ALIAS_CALL.sub(lambda m: _FUNCTION_ALIASES[m[1]], text.translate(_BRACKETS))


def _with_products(text: str) -> tuple[str, bool, bool] | None:
    """(the text with the products it implies written with *, whether an x or a times sign was
    one of them, whether a product was left implied), or None when it implies none:
    '40(H-4)(W-4) + 426' -> '40*(H-4)*(W-4) + 426', '5x5x16+16' -> '5*5*16+16', '2 H' -> '2*H'.
    Only for the message; never evaluated as such."""
    written = _X_SIGN.sub("*", _TIMES_SIGN.sub("*", text))
    out, before, name, pos, implicit = [], None, None, 0, False
    while pos < len(written):
        match = _TOKEN.match(written, pos)
        if match is None:  # trailing spaces
            break
        pos = match.end()
        kind = match.lastgroup
        token = match[kind]
        this = ")" if token == ")" else "(" if token == "(" else kind
        implied = before in ("num", "name", ")") and this in ("num", "name", "(") \
            and not (before == "name" and name in _CALLABLE and this == "(") \
            and not (before == "num" and this == "num")  # 1 000 is not 1*000
        out.append("*" + token if implied else match[0])
        implicit = implicit or implied
        before, name = this, token
    fixed = "".join(out) + written[pos:]
    if fixed == text:
        return None
    return fixed, written != text, implicit


def _unreadable(written: str, text: str, exc: ExprError) -> str:
    """The message for an answer the parser refused: how to write it where it implies a product
    (40(H-4)(W-4), 5x5x16+16) or writes a power as ^ (10^6), the parser's own reason otherwise."""
    fixed, reasons = text, []
    if len(text) <= MAX_TEXT:  # the parser refuses longer ones whatever they hold
        if "^" in fixed:
            fixed = fixed.replace("^", "**")
            reasons.append("^ is not a power in a formula (** is)")
        if _SPACED_NUMBER.search(fixed):  # digits grouped by spaces: 1 000, 40 320*H*W
            fixed = _SPACED_NUMBER.sub(lambda m: m[0].replace(" ", ""), fixed)
            reasons.append("a number has no spaces inside it")
        products = _with_products(fixed)
        if products is not None:
            fixed = products[0]
            if products[1]:
                reasons.append("x is not a multiplication sign in a formula")
            if products[2]:
                reasons.append("a product needs its * (a number, name or bracket right before a bracket or a "
                               "name is not multiplied)")
    if reasons:
        try:
            names_in(fixed)
        except ExprError:
            reasons = []
    if not reasons:
        return (f"{exc}; an answer is a number, an expression like '4*H*W*10 + 10' or an approximate value "
                "like 'about 822 million'")
    return f"{_shown(written)}: {'; '.join(reasons)}; write {_shown(fixed)}"


def _dims(text: str) -> list[str] | None:
    """The sizes of a shape or field written in one string: '[H, W]', '6x6', '16 x 12 x 12',
    '28×28'; None when it is one value."""
    body = text.strip()
    if len(body) > 4 * MAX_TEXT:  # a longer shape is written as a YAML list
        return None
    if body.startswith("[") and body.endswith("]"):
        parts, depth, current = [], 0, ""
        for ch in body[1:-1]:
            depth += (ch == "(") - (ch == ")")
            if ch == "," and depth == 0:
                parts.append(current)
                current = ""
            else:
                current += ch
        parts.append(current)
        return [p.strip() for p in parts]
    parts = re.split(r"\s*×\s*|" + _X_SIGN.pattern, body)
    return [p.strip() for p in parts] if len(parts) > 1 else None


# --- typed answers ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Exact:
    """An exact number: int, or a float/Fraction where the figure is fractional (rf stride)."""

    value: object
    text: str


@dataclass(frozen=True)
class Approx:
    """A number written approximately: `value` as stated, right within `tolerance` (relative)."""

    value: float
    tolerance: float
    text: str


@dataclass(frozen=True)
class Symbolic:
    """An expression in the spec's size symbols (a sympy expression), compared for equivalence."""

    value: object
    text: str

    @property
    def names(self) -> set:
        return {str(s) for s in self.value.free_symbols}


@dataclass(frozen=True)
class Shape:
    """An output shape: one `Exact` or `Symbolic` per dimension (batch excluded)."""

    items: tuple
    text: str


@dataclass(frozen=True)
class RFAnswer:
    """A receptive field. Each of size/stride/start is None (not given), one answer for every axis,
    or a tuple of answers per axis. `is_global` for "global"."""

    size: object = None
    stride: object = None
    start: object = None
    is_global: bool = False
    text: str = ""

    @property
    def parts(self) -> dict:
        return {k: v for k, v in (("size", self.size), ("stride", self.stride), ("start", self.start))
                if v is not None}


@dataclass(frozen=True)
class Invalid:
    """An answer that cannot be read (`parse_answers(..., strict=False)`): the located error,
    so that this answer alone gets the verdict "invalid" and the file's other answers are graded."""

    error: SpecError
    text: str

    @property
    def message(self) -> str:
        return self.error.message

    def __str__(self) -> str:  # FILE:LINE:COL: error: message
        return str(self.error)


@dataclass
class Answer:
    quantity: str  # the key as written, e.g. "conv1.params"
    layer: str  # layer name, or "total"
    figure: str
    value: object  # Exact | Approx | Symbolic | Shape | RFAnswer
    given: object  # the value as written (plain YAML value: int, float, str, list, dict)
    loc: Loc | None  # where the value was written
    key_loc: Loc | None  # where the key was written

    @property
    def is_total(self) -> bool:
        return self.layer == TOTAL

    @property
    def given_text(self) -> str:
        """The answer as written, for a table or a feedback file: cut short past MAX_GIVEN characters
        (a 100,000-character answer is one readable line, not thousands; `given` keeps it whole)."""
        text = format_given(self.given)
        if len(text) <= MAX_GIVEN:
            return text
        return f"{text[:MAX_GIVEN - 40]}...{text[-12:]} ({len(text):,} characters)"


@dataclass
class AnswerSheet:
    answers: list[Answer]
    bindings: dict = field(default_factory=dict)  # name -> int, from `set`
    tolerance: float = DEFAULT_TOLERANCE
    file: str = "<answers>"
    binding_locs: dict = field(default_factory=dict)  # name -> where its `set:` value was written
    student: str | None = None  # the optional top-level `student:` (a name or an id)
    # Under an answer key's policy (`parse_answers(..., policy=...)`): the file's own `set:` and
    # `tolerance:` as written (plain values), which the key's replaced; {} otherwise.
    ignored: dict = field(default_factory=dict)
    strict: bool = True  # False: a value that cannot be read is an `Invalid` answer, not an error

    @property
    def invalid(self) -> list:
        """The answers that could not be read (only with strict=False)."""
        return [a for a in self.answers if isinstance(a.value, Invalid)]


# --- loading ----------------------------------------------------------------------------------
def load_answers(path, strict: bool = True) -> AnswerSheet:
    """Read and validate an answers file; raises SpecError (with FILE:LINE:COL) on any mistake
    (with strict=False, on a mistake in the file's layout only: see `parse_answers`). A bundled
    one is read by name (`homework:conv_pool_fc.answers`)."""
    from archcalc.reader import bundled

    path = bundled.locate(path)
    return parse_answers(read_source(path, "answers"), source_name(path), strict=strict)


def parse_answers(text: str, filename: str = "<answers>", policy=None, strict: bool = True) -> AnswerSheet:
    """Parse answers-file text (see the module docstring).

    `strict=False` (grading a class): an answer whose key or value cannot be read becomes an
    `Invalid` answer holding the located error, and the other answers are read; a mistake in
    the file's layout (not YAML, not a mapping, an unknown top-level key, a bad `set:` or
    `tolerance:`, a duplicate key) still raises, since then no answer can be trusted.

    `policy` (for grading against an answer key, whose policy the TA owns): a callable taking the
    file's `student:` (None when absent) and returning the (bindings, tolerance) to read the answers
    with. The file's own `set:` and `tolerance:` then have no effect, are not validated, and are kept
    as written in `sheet.ignored` so that the grader can report them."""
    doc = load_yaml(text, filename)
    start = Loc(filename, 1, 1)
    if not isinstance(doc, YMap):
        raise SpecError("an answers file is a YAML mapping with 'answers:' (and optionally 'set:' and "
                        "'tolerance:')", getattr(doc, "loc", start))
    for key in doc:
        if key not in TOP_KEYS:
            raise SpecError(f"unknown top-level key '{key}'{did_you_mean(key, TOP_KEYS)}; expected "
                            f"{', '.join(TOP_KEYS)}", doc.key_locs[key])
    student = _student(doc["student"], doc.where("student")) if "student" in doc else None
    ignored: dict = {}
    if policy is None:
        tolerance = _tolerance(doc["tolerance"], doc.where("tolerance")) if "tolerance" in doc else DEFAULT_TOLERANCE
        bindings, binding_locs = _bindings(doc["set"], doc.where("set")) if "set" in doc else ({}, {})
    else:  # the key's policy: the file's own set:/tolerance: are reported, never applied
        bindings, tolerance = policy(student)
        bindings, binding_locs = dict(bindings), {}
        ignored = {k: plain(doc[k]) for k in ("set", "tolerance") if k in doc}
    raw = doc.get("answers")
    if "answers" not in doc:
        raise SpecError("missing 'answers:' (a mapping like {conv1.params: 416})", doc.loc)
    if not isinstance(raw, YMap) or not raw:
        raise SpecError("'answers' must be a non-empty mapping of LAYER.FIGURE to values, like "
                        "{conv1.params: 416, total.macs: 'about 822 million'}", doc.where("answers"))
    parser = _ValueParser(bindings, tolerance)
    answers = []
    for key, value in raw.items():
        key_loc, loc = raw.key_locs[key], raw.where(key)
        try:
            layer, figure = _split_key(key, key_loc)
            typed = parser.parse(figure, value, loc)
        except SpecError as exc:
            if strict:
                raise
            layer, _, figure = str(key).strip().rpartition(".")
            typed = Invalid(exc, format_given(plain(value)))
        answers.append(Answer(str(key), layer, figure, typed, plain(value), loc, key_loc))
    return AnswerSheet(answers, bindings, tolerance, filename, binding_locs, student, ignored, strict)


def _student(value, loc) -> str:
    """The optional `student:` of an answers file: a name or an id, one line of text."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 10**MAX_DIGITS:
        value = str(value)
    if not isinstance(value, str) or not value.strip() or "\n" in value.strip() or "\r" in value:
        raise SpecError(f"'student' must be the student's name or id, one line of text; got {_shown(plain(value))}",
                        loc)
    if len(value.strip()) > MAX_STUDENT:
        raise SpecError(f"'student' is {len(value.strip()):,} characters long; at most {MAX_STUDENT}", loc)
    return value.strip()


def _split_key(key, loc) -> tuple[str, str]:
    example = "expected LAYER.FIGURE, like conv1.params or total.macs"
    if not isinstance(key, str):
        raise SpecError(f"answer key {_shown(key)} is not a quantity; {example}", loc)
    layer, dot, figure = key.strip().rpartition(".")
    if not dot or not layer or not figure:
        if figure in FIGURES:
            example = f"write LAYER.{figure} (like conv1.{figure}) or total.{figure}"
        raise SpecError(f"answer key {_shown(key)} is not of the form LAYER.FIGURE; {example}", loc)
    if figure not in FIGURES:
        raise SpecError(f"unknown figure {_shown(figure)} in {_shown(key)}{did_you_mean(figure, FIGURES)}; "
                        f"expected one of {', '.join(FIGURES)}", loc)
    if layer == TOTAL and figure in LAYER_ONLY:
        raise SpecError(f"'{figure}' is a per-layer figure; ask it of a layer (like conv2.{figure}), "
                        "not of the total", loc)
    if layer != TOTAL and figure in TOTAL_ONLY:
        raise SpecError(f"'{figure}' is given for the whole network only: total.{figure}", loc)
    return layer, figure


def _tolerance(value, loc) -> float:
    text = value
    if isinstance(value, str) and value.strip().endswith("%"):
        try:
            value = float(value.strip()[:-1]) / 100
        except ValueError:
            value = None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise SpecError(f"tolerance must be a relative number from 0 to below 1 (like 0.01 or '1%'), "
                        f"got {_shown(text)}", loc)
    return float(value)


def _bindings(raw, loc) -> tuple[dict, dict]:
    """The `set:` numbers, and where each was written."""
    if not isinstance(raw, YMap):
        raise SpecError("'set' must map size symbols to numbers, like {H: 28, W: 28}", loc)
    out, locs = {}, {}
    for key, value in raw.items():
        if not isinstance(key, str) or not _IDENT.match(key) or key in ("min", "max"):
            raise SpecError(f"{_shown(key)} is not a symbol name (letters, digits and _)", raw.key_locs[key])
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_MAGNITUDE:
            raise SpecError(f"set {key}: expected a positive integer up to 1e30, got {_shown(value)}",
                            raw.where(key))
        out[key], locs[key] = value, raw.where(key)
    return out, locs


# --- values -----------------------------------------------------------------------------------
class _ValueParser:
    def __init__(self, bindings: dict, tolerance: float):
        self.bindings = bindings
        self.tolerance = tolerance

    def parse(self, figure, value, loc):
        if figure == "output_shape":
            return self.shape(value, loc)
        if figure == "rf":
            return self.rf(value, loc)
        return self.number(value, loc, approx=True, memory=figure.endswith("_bytes"))

    def number(self, value, loc, approx: bool, what: str = "a number", integer: bool = False,
               memory: bool = False):
        """Exact, Approx (when `approx`) or Symbolic from one YAML scalar."""
        if isinstance(value, bool) or value is None or isinstance(value, (YMap, YList)):
            shown = "nothing" if value is None else _shown(plain(value))
            forms = "a number, an expression like '4*H*W*10 + 10'"
            forms += " or an approximate value like 'about 822 million'" if approx else ""
            raise SpecError(f"expected {what}: {forms}; got {shown}", loc)
        if isinstance(value, float) and not math.isfinite(value):
            raise SpecError(f"{value!r} is not a finite number", loc)
        if isinstance(value, (int, float)) and abs(value) > MAX_MAGNITUDE:
            shown = (_shown(value) if isinstance(value, float) or abs(value) < 10**100  # repr: at most 4300 digits
                     else f"a number of about {int(value.bit_length() * 0.30103) + 1} digits")
            raise SpecError(f"{shown} is too large (answers are at most 1e30)", loc)
        if isinstance(value, int):
            return Exact(value, str(value))
        if isinstance(value, float):
            if not approx:
                if value.is_integer():
                    return Exact(int(value), repr(value))
                if integer:
                    raise SpecError(f"{_shown(value)}: {what} is a whole number", loc)
                return Exact(value, repr(value))
            return Approx(value, self.tolerance, repr(value))
        text = str(value)
        parsed = parse_approx(text, loc, memory)
        if parsed is not None:
            number, is_approx = parsed
            if not is_approx:
                return Exact(number, text)
            if not approx:
                raise SpecError(f"'{text}' is approximate; {what} must be exact here", loc)
            return Approx(number, self.tolerance, text)
        result = self.expression(text, loc)
        if approx and isinstance(result, Exact) and isinstance(result.value, float):
            # a formula of decimals ('8.2*10**8', as the message for '8.2x10^8' says to write it) is
            # approximate, as '8.2e8' is: judged within the tolerance, not to the last digit; its
            # text as 8.2e8, whose digits give its precision (check's half_unit reads them)
            power = _POWER_OF_TEN.match(text)
            return Approx(result.value, self.tolerance, f"{power[1]}e{power[2]}" if power else text)
        return result

    def expression(self, text: str, loc):
        written, text = text, _notation(text)  # ceiling(...), Min(...), ⌊x⌋ as the parser's names
        if _TIMES_SIGN.search(text):  # Python reads a middle dot as a letter: H·W would be one name
            refused = ExprError(f"cannot parse expression {_shown(text)}: × and · are not multiplication signs")
            raise SpecError(_unreadable(written, text, refused), loc)
        try:
            names = names_in(text)
        except ExprError as exc:
            # Numbers grouped by thousands inside a formula, as archcalc prints them (`40,320*H*W +
            # 1,704`): read without the commas, but only where the text does not read as written
            # (`max(2,100)` is two arguments).
            joined = _GROUPED_IN_FORMULA.sub(lambda m: m.group().replace(",", ""), text)
            try:
                names, text = (names_in(joined), joined) if joined != text else (None, text)
            except ExprError:
                names = None
            if names is None:
                raise SpecError(_unreadable(written, text, exc), loc) from None
        scope: dict = {}
        free = sorted(n for n in names if n not in self.bindings)
        if free:
            import sympy  # only answers with names need it

            scope = {n: sympy.Symbol(n, integer=True, positive=True) for n in free}
        scope.update({n: self.bindings[n] for n in names if n in self.bindings})
        try:
            result = evaluate(text, scope)
        except ExprError as exc:
            raise SpecError(str(exc), loc) from None
        except (TypeError, ValueError, ArithmeticError) as exc:  # sympy refusing an operation
            raise SpecError(f"cannot evaluate {_shown(text)}: {exc}", loc) from None
        if isinstance(result, (int, float, Fraction)):
            return Exact(result, written)
        return self._symbolic(result, written, loc)

    def _symbolic(self, result, text, loc):
        import sympy

        if not isinstance(result, sympy.Basic):  # a complex number, or anything else not a formula
            raise SpecError(f"{_shown(text)} is not a real number", loc)
        # A division by a size difference that is 0 (W//(H - H)) is sympy's complex infinity.
        if result.has(sympy.zoo, sympy.nan, sympy.oo, -sympy.oo):
            raise SpecError(f"{_shown(text)} is undefined: it divides by zero", loc)
        if result.has(sympy.I):
            raise SpecError(f"{_shown(text)} is not a real number", loc)
        for sub in sympy.preorder_traversal(result):
            if isinstance(sub, sympy.Pow) and sub.exp.is_number and abs(sub.exp) > MAX_SYMBOLIC_EXPONENT:
                raise SpecError(f"exponent {sub.exp} in {_shown(text)} is too large (at most "
                                f"{MAX_SYMBOLIC_EXPONENT})", loc)
        if not result.free_symbols:
            if result.is_Integer:
                return Exact(int(result), text)
            if result.is_Rational:
                return Exact(Fraction(int(result.p), int(result.q)), text)
            value = complex(result)  # a real number sympy keeps exact (a root): as a float
            if value.imag or not math.isfinite(value.real):
                raise SpecError(f"{_shown(text)} is not a finite real number", loc)
            return Exact(value.real, text)
        return Symbolic(result, text)

    def shape(self, value, loc):
        dims = _dims(value) if isinstance(value, str) else None
        if dims is not None and all(dims):  # one string: '[16, H/2, W/2]', '16 x 14 x 14'
            items = tuple(self.number(v, loc, approx=False, what="a shape size", integer=True) for v in dims)
            return Shape(items, value)
        if not isinstance(value, YList) or not value:
            raise SpecError("an output shape is a list of sizes, batch excluded, like [16, 14, 14]", loc)
        items = tuple(self.number(v, value.where(i), approx=False, what="a shape size", integer=True)
                      for i, v in enumerate(value))
        return Shape(items, format_given(plain(value)))

    def rf(self, value, loc):
        text = format_given(plain(value))
        if isinstance(value, str) and (value.strip().lower() == "global" or _WHOLE_INPUT.match(value)):
            return RFAnswer(is_global=True, text=text)
        if isinstance(value, str) and _RF_PART.match(value):  # as check prints it: 'size 6, stride 2, start -2'
            return self._rf_text(value, loc, text)
        dims = _dims(value) if isinstance(value, str) else None
        if dims is not None and all(dims):  # one string: '6x6', '[H, W]', '28 × 28'
            size = tuple(self.number(v, loc, approx=False, what="an rf size") for v in dims)
            return RFAnswer(size=size, text=text)
        if isinstance(value, YMap):
            if not value:
                raise SpecError("an rf mapping needs at least one of size, stride, start", loc)
            parts = {}
            for key, part in value.items():
                if key not in ("size", "stride", "start"):
                    raise SpecError(f"unknown rf part '{key}'{did_you_mean(key, ('size', 'stride', 'start'))}; "
                                    "expected size, stride and/or start", value.key_locs[key])
                parts[key] = self._rf_part(part, value.where(key), key)
            return RFAnswer(text=text, **parts)
        if isinstance(value, (YList, int, float, str)) and not isinstance(value, bool):
            return RFAnswer(size=self._rf_part(value, loc, "size"), text=text)
        raise SpecError("an rf answer is a size (same on every axis), a list of sizes per axis, "
                        "'global', or a mapping {size:, stride:, start:}", loc)

    def _rf_text(self, value: str, loc, text: str):
        """'size 6, stride 2, start -2' (or 'size [7, 5], stride 2'): the parts of a field in one
        string, as check writes the expected field."""
        body = re.sub(r"\s*\(misaligned\)\s*\Z", "", value.strip())
        parts: dict = {}
        for piece in re.split(r",\s*(?=(?:size|stride|start)\b)", body, flags=re.IGNORECASE):
            match = _RF_PART.match(piece)
            if match is None or not match[2].strip() or _RF_WORD.search(match[2]):  # 'size 6 stride 2'
                raise SpecError(f"cannot read {_shown(piece)} in {_shown(value)}; write an rf as 'size 6, stride 2, "
                                "start -2' or {size: 6, stride: 2, start: -2}", loc)
            name, written = match[1].lower(), match[2].strip()
            if name in parts:
                raise SpecError(f"rf {name} is given twice in {_shown(value)}", loc)
            dims = _dims(written) if written.startswith("[") else None
            parts[name] = (tuple(self.number(v, loc, approx=False, what=f"an rf {name}") for v in dims)
                           if dims is not None and all(dims) else
                           self.number(written, loc, approx=False, what=f"an rf {name}"))
        return RFAnswer(text=text, **parts)

    def _rf_part(self, value, loc, what):
        if isinstance(value, YList):
            if not value:
                raise SpecError(f"rf {what}: an empty list", loc)
            return tuple(self.number(v, value.where(i), approx=False, what=f"an rf {what}")
                         for i, v in enumerate(value))
        return self.number(value, loc, approx=False, what=f"an rf {what}")


def parse_approx(text: str, loc=None, memory: bool = False):
    """(value, is_approximate) for a written number such as '12,560', 'about 822 million',
    '1.64 G', '12.6k', '8.2e8'; None when `text` is not a number (it may be an expression).
    A number is approximate when it has an 'about' word, a unit, a decimal point or an exponent.
    With `memory` (the *_bytes figures) the units are those of BYTE_UNITS instead."""
    match = _APPROX.match(text)
    if match is None or not re.search(r"\d", match["num"] or ""):
        if _LOOKS_APPROX.match(text):
            raise SpecError(f"cannot read {_shown(text)} as an approximate number; write it like 'about 822 "
                            f"million', '1.64 G' or '8.2e8' (units: {UNITS_TEXT})", loc)
        return None
    num, unit = match["num"], match["unit"]
    scale = 1
    if unit and memory:
        scale = BYTE_UNITS.get(unit)
        if scale is None:
            raise SpecError(f"unknown memory unit {_shown(unit)} in {_shown(text)}; units are {BYTE_UNITS_TEXT}", loc)
    elif unit:
        scale = UNITS.get(unit) or UNIT_WORDS.get(unit.lower())
        if scale is None:
            extra = (" (use M for million; m would be milli)" if unit == "m"
                     else f" (a product is written with *, like {num}*{unit})" if not match["about"] else "")
            raise SpecError(f"unknown unit {_shown(unit)} in {_shown(text)}{extra}; units are {UNITS_TEXT}", loc)
    digits = sum(ch.isdigit() for ch in re.split("[eE]", num)[0])  # of the mantissa
    if digits > MAX_DIGITS:  # before any arithmetic: Decimal and int would take them all
        raise SpecError(f"{_shown(text)} has {digits} digits; an answer has at most {MAX_DIGITS}", loc)
    try:
        value = Decimal(num.replace(",", "").replace("_", "")) * scale
        too_large = not value.is_finite() or abs(value) > Decimal(MAX_MAGNITUDE)
    except ArithmeticError:  # decimal's InvalidOperation and Overflow (an exponent like e99999999999)
        too_large = True
    if too_large:
        raise SpecError(f"{_shown(text)} is too large (answers are at most 1e30)", loc)
    is_approx = bool(match["about"] or unit or re.search(r"[.eE]", num))
    if not is_approx:
        return int(value), False
    return float(value), True


# --- helpers ----------------------------------------------------------------------------------
def _shown(value, limit: int = 80) -> str:
    """repr of a value for a message, cut short: a message stays one readable line."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit - 16]}...{text[-12:]} ({len(text)} characters)"


def format_given(value) -> str:
    """A given value as the student wrote it, in one line."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {format_given(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(format_given(v) for v in value) + "]"
    return str(value)


__all__ = ["AnswerSheet", "Answer", "Approx", "Exact", "FIGURES", "RFAnswer", "Shape", "Symbolic", "TOTAL",
           "load_answers", "parse_answers", "parse_approx"]
