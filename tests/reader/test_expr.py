import pytest

from archcalc.reader.expr import ExprError, evaluate, names_in


@pytest.mark.parametrize("text, value", [
    ("2*w + 1", 33), ("w // 3", 5), ("w % 5", 1), ("2**10", 1024), ("-w", -16), ("+3", 3),
    ("(w + 4) / 4", 5), ("7 / 2", 3.5), ("max(3, w, 9)", 16), ("min(w, 4)", 4), ("0.5 * 3", 1.5),
    ("  w  ", 16),
])
def test_values(text, value):
    result = evaluate(text, {"w": 16})
    assert result == value and type(result) is type(value)


@pytest.mark.parametrize("text, message", [
    ("__import__('os')", "only min"),
    ("w.__class__", "Attribute"),
    ("[1, 2]", "List"),
    ("lambda: 1", "Lambda"),
    ("open('x')", "only min"),
    ("'abc'", "not a number"),
    ("True", "not a number"),
    ("w if w else 1", "IfExp"),
    ("w < 3", "Compare"),
    ("10 ** 10 ** 10", "too large"),
    ("9 ** 99", "too large"),
    ("1 / 0", "division by zero"),
    ("h * 2", "unknown name 'h'"),
    ("2 *", "cannot parse"),
    ("x" * 600, "longer than"),
    ("max", "must be called"),
])
def test_rejected(text, message):
    with pytest.raises(ExprError, match=message):
        evaluate(text, {"w": 16})


def test_did_you_mean_for_names():
    with pytest.raises(ExprError, match="did you mean 'width'"):
        evaluate("widht * 2", {"width": 3})


def test_names_in():
    assert names_in("max(a, b) * c + 2") == {"a", "b", "c"}


# --- floor, ceil, round ------------------------------------------------------------------------

@pytest.mark.parametrize("text, value", [
    ("floor(7 / 2)", 3), ("ceil(7 / 2)", 4), ("floor(-7 / 2)", -4), ("ceil(-7 / 2)", -3), ("floor(8 / 2)", 4),
    ("ceil(w / 3)", 6), ("floor(w / 3)", 5), ("floor(2.5)", 2), ("ceil(2.5)", 3), ("ceil(-0.5)", 0),
    # Python's round: halves go to the even neighbour, on exact fractions and on floats alike
    ("round(5 / 2)", 2), ("round(7 / 2)", 4), ("round(-5 / 2)", -2), ("round(2.5)", 2), ("round(3.5)", 4),
    ("round(w / 3)", 5), ("round(17 / 3)", 6), ("floor(5 / 2 + 1 / 2)", 3),  # halves up, written out
    ("round(7 / 3, 2)", 2.33), ("round(1250, -2)", 1200), ("round(1350, -2)", 1400), ("round(w, 0)", 16),
    # exact: 10**20 + 1/2 floors to 10**20 exactly (a float could not hold it)
    ("floor(10**20 + 1/2)", 10**20), ("ceil(10**20 + 1/2)", 10**20 + 1), ("round(10**20 + 3/2)", 10**20 + 2),
])
def test_floor_ceil_round(text, value):
    result = evaluate(text, {"w": 16})
    assert result == value and type(result) is type(value)


@pytest.mark.parametrize("text, message", [
    ("floor(1, 2)", "floor\\(\\) takes one value, got 2"),
    ("ceil()", "only min"),
    ("round(1, 2, 3)", "round\\(\\) takes a value and ndigits, got 3"),
    ("round(2.5, 0.5)", "ndigits must be a whole number"),
    ("round(2.5, 31)", "ndigits must be a whole number from -30 to 30"),
    ("floor(x=1)", "only min"),
    ("floor", "must be called"),
    ("floor(1e30 * 10)", "too large"),
    ("ceil(1 / 0)", "division by zero"),
    ("int(2.5)", "only min\\(...\\), max\\(...\\), floor\\(x\\), ceil\\(x\\) and round"),
])
def test_floor_ceil_round_rejected(text, message):
    with pytest.raises(ExprError, match=message):
        evaluate(text, {"w": 16})


def test_function_names_are_not_variables():
    assert names_in("floor(a / b) + ceil(c) + round(d)") == {"a", "b", "c", "d"}


# torchvision's _make_divisible (torchvision/models/_utils.py), the widths of MobileNet and EfficientNet:
#     new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
#     if new_v < 0.9 * v: new_v += divisor
# The `if` is written with ceil: 9/10 - n/v lies in (-inf, 9/10], so max(0, ceil(...)) is 1 exactly
# when n < 0.9 v, else 0. v is positive, so int() is floor().
MAKE_DIVISIBLE = {"n": "max(8, floor(v + 8 / 2) // 8 * 8)", "c": "n + 8 * max(0, ceil(9 / 10 - n / v))"}


def _make_divisible(v):
    scope = {"v": v}
    for name, text in MAKE_DIVISIBLE.items():
        scope[name] = evaluate(text, scope)
    return scope["c"]


@pytest.mark.parametrize("channels, width, expected", [
    # worked by hand, e.g. 16 * 1.2 = 19.2: int(23.2) // 8 * 8 = 16 < 0.9 * 19.2 = 17.28, so 16 + 8 = 24
    (32, 1.0, 32), (16, 1.0, 16), (1280, 1.0, 1280),  # EfficientNet-B0, MobileNetV2 x1.0
    (32, 1.1, 32), (24, 1.1, 24), (40, 1.1, 48), (80, 1.1, 88), (112, 1.1, 120), (192, 1.1, 208),
    (320, 1.1, 352),  # EfficientNet-B2: 32, 24, 48, 88, 120, 208, 352
    (32, 1.2, 40), (16, 1.2, 24), (24, 1.2, 32), (112, 1.2, 136), (192, 1.2, 232), (320, 1.2, 384),  # B3
    (32, 0.75, 24), (16, 0.75, 16), (24, 0.75, 24), (96, 0.75, 72),  # MobileNetV2 x0.75
    (32, 0.35, 16), (16, 0.35, 8), (24, 0.35, 8), (64, 0.35, 24),  # MobileNetV2 x0.35 (the min of 8)
])
def test_make_divisible_widths_by_hand(channels, width, expected):
    assert _make_divisible(channels * width) == expected


def test_make_divisible_equals_torchvisions_code():
    def reference(v, divisor=8, min_value=None):  # torchvision's _make_divisible, verbatim
        if min_value is None:
            min_value = divisor
        new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
        if new_v < 0.9 * v:
            new_v += divisor
        return new_v

    for channels in range(1, 400):
        for width in (0.25, 0.35, 0.5, 0.75, 1.0, 1.1, 1.2, 1.4, 1.6, 1.8, 2.0):
            assert _make_divisible(channels * width) == reference(channels * width), (channels, width)


def test_make_divisible_in_a_spec():
    import archcalc

    text = ("input: [3, 32, 32]\nvars: {w: 1.2, v: 16 * w, n: 'max(8, floor(v + 8 / 2) // 8 * 8)',\n"
            "       c: 'n + 8 * max(0, ceil(9 / 10 - n / v))'}\nlayers:\n  - conv: {out: c, kernel: 1}\n")
    assert archcalc.analyze_text(text).output_shape == (24, 32, 32)


def test_symbolic_floor_and_ceil_are_sympys():
    import sympy

    H = sympy.Symbol("H", integer=True, positive=True)
    assert evaluate("floor(H / 2)", {"H": H}) == sympy.floor(H / 2)
    assert evaluate("ceil(H / 4) * 4", {"H": H}) == 4 * sympy.ceiling(H / 4)
    H_4 = sympy.Symbol("H_4", integer=True, positive=True)  # H = 4 H_4: a multiple of 4
    assert evaluate("ceil(H / 4)", {"H": 4 * H_4}) == H_4
    assert evaluate("floor(H / 8 + 1 / 2)", {"H": 4 * H_4}) == sympy.floor(H_4 / 2 + sympy.Rational(1, 2))


@pytest.mark.parametrize("text, message", [
    ("round(H / 2)", "round\\(\\) of a symbolic size"),
    ("round(7 / 2, H)", "ndigits must be a whole number"),
    ("floor(H ** 9)", "floor\\(\\) of a formula of degree above 8"),
])
def test_symbolic_rounding_rejected(text, message):
    import sympy

    with pytest.raises(ExprError, match=message):
        evaluate(text, {"H": sympy.Symbol("H", integer=True, positive=True)})


def test_symbolic_floor_in_a_spec_argument():
    import sympy

    import archcalc

    text = ("input: [3, H, W]\nsymbols: {H: {multiple_of: 8}}\nlayers:\n"
            "  - conv: {out: 'ceil(H / 16)', kernel: 1}\n  - zeropad: 'floor(H / 3)'\n")
    first, second = archcalc.analyze_text(text).layers
    H, W = sympy.symbols("H W", integer=True, positive=True)
    assert first.output_shape == (sympy.ceiling(H / 16), H, W)
    assert second.output_shape == (sympy.ceiling(H / 16), H + 2 * sympy.floor(H / 3), W + 2 * sympy.floor(H / 3))


@pytest.mark.parametrize("name", ["floor", "ceil", "round", "min"])
def test_function_names_are_reserved_in_a_spec(name):
    import archcalc

    with pytest.raises(archcalc.SpecError, match=f"'{name}' is reserved and cannot be a variable name"):
        archcalc.analyze_text(f"input: [3, 8, 8]\nvars: {{{name}: 3}}\nlayers:\n  - relu\n")


# --- an expression cut at a comma by a YAML flow mapping or list -----------------------------------

@pytest.mark.parametrize("text, where, message", [
    # the example, in a block argument of a flow mapping: YAML reads `sq: max(1` and ` c // 4)`
    ("input: [8, 4, 4]\nblocks:\n  se:\n    args: {c: 8}\n    layers: [{conv: {out: 2, kernel: 1}}]\n"
     "layers:\n  - se: {c: 8, sq: max(1, c // 4)}\n",
     "7:20", "'max(1' is cut at a comma: in a YAML flow mapping {...} unquoted text ends at every comma; "
             "quote the expression: sq: \"max(1, c // 4)\""),
    ("input: [3, 8, 8]\nvars: {c: 8}\nlayers:\n  - conv: {out: min(c,4), kernel: 1}\n",
     "4:17", "quote the expression: out: \"min(c,4)\""),
    ("input: [3, 8, 8]\nvars: {k: 3}\nlayers:\n  - conv: {out: 4, kernel: [max(1, k), 3]}\n",
     "4:29", "in a YAML flow list [...] unquoted text ends at every comma; quote the expression: \"max(1, k)\""),
    ("input: [3, 8, 8]\nvars: {c: 8, d: max(2, c)}\nlayers: [relu]\n",
     "2:17", "quote the expression: d: \"max(2, c)\""),
    # spread over lines, nested calls: the whole expression is shown on one line
    ("input: [3, 8, 8]\nvars: {c: 8}\nlayers:\n  - conv: {out: max(1, min(c,\n      4)), kernel: 1}\n",
     "4:17", "quote the expression: out: \"max(1, min(c, 4))\""),
    # a key cut the same way (YAML reads keys in flow mappings alike)
    ("input: [3, 8, 8]\nlayers:\n  - {max(1, 2): 3}\n", "3:6", "'max(1' is cut at a comma"),
])
def test_an_expression_cut_by_a_flow_mapping_is_refused_with_quoting_advice(text, where, message, tmp_path):
    from typer.testing import CliRunner

    from archcalc.cli import app

    path = tmp_path / "spec.yaml"
    path.write_text(text)
    result = CliRunner().invoke(app, ["analyze", str(path)])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{path}:{where}: error: "), result.output
    assert message in lines[0]


@pytest.mark.parametrize("text, out", [
    ("input: [3, 8, 8]\nvars: {c: 8}\nlayers:\n  - conv: {out: \"max(1, c // 4)\", kernel: 1}\n", 2),
    ("input: [3, 8, 8]\nvars: {c: 8}\nlayers:\n  - conv: {out: 'min(c, 4)', kernel: 1}\n", 4),
    ("input: [3, 8, 8]\nvars: {c: 8}\nlayers:\n  - conv:\n      out: max(1, c // 4)\n      kernel: 1\n", 2),
    ("input: [3, 8, 8]\nvars: {c: 8}\nlayers:\n  - conv: {out: max(1 + c // 4), kernel: 1}\n", 3),
])
def test_quoted_or_block_expressions_with_commas_are_read_whole(text, out):
    import archcalc

    assert archcalc.analyze_text(text).output_shape[0] == out


def test_unbalanced_text_not_cut_at_a_comma_is_left_to_the_expression_parser():
    import archcalc

    with pytest.raises(archcalc.SpecError, match="cannot parse expression 'max\\(1'") as info:
        archcalc.analyze_text("input: [3, 8, 8]\nlayers:\n  - conv: {kernel: 1, out: max(1}\n")
    assert "cut at a comma" not in info.value.message
