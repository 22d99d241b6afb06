"""Reading answers files: typed answers, approximate numbers, and every kind of mistake in a file
reported as a SpecError at FILE:LINE:COL."""
import textwrap

import pytest

from archcalc.errors import SpecError
from archcalc.homework.answers import (
    DEFAULT_TOLERANCE, Approx, Exact, RFAnswer, Shape, Symbolic, load_answers, parse_answers, parse_approx,
)


def sheet(text, filename="answers.yaml"):
    return parse_answers(textwrap.dedent(text), filename)


def one(value_yaml, key="conv1.params", **top):
    """The single typed answer of `key: value_yaml`."""
    extra = "".join(f"{k}: {v}\n" for k, v in top.items())
    return sheet(f"{extra}answers:\n  {key}: {value_yaml}\n").answers[0].value


def error(text, filename="answers.yaml"):
    with pytest.raises(SpecError) as info:
        parse_answers(textwrap.dedent(text), filename)
    return info.value


# --- the file's layout ------------------------------------------------------------------------
def test_full_example():
    s = sheet("""\
        set: {H: 28, W: 28}
        tolerance: 0.02
        answers:
          conv1.params: 416
          fc.params: "4*H*W*10 + 10"
          layer1.1.conv1.params: 36864
          total.trainable_params: 31786
          pool1.output_shape: [16, 14, 14]
          fc.rf: global
          conv2.rf: 7
          total.macs: "about 822 million"
        """)
    assert s.bindings == {"H": 28, "W": 28}
    assert s.tolerance == 0.02
    assert s.file == "answers.yaml"
    by = {a.quantity: a for a in s.answers}
    assert list(by) == ["conv1.params", "fc.params", "layer1.1.conv1.params", "total.trainable_params",
                        "pool1.output_shape", "fc.rf", "conv2.rf", "total.macs"]
    assert by["conv1.params"].value == Exact(416, "416")
    assert by["fc.params"].value.value == 31370  # `set` makes it a number
    assert (by["layer1.1.conv1.params"].layer, by["layer1.1.conv1.params"].figure) == ("layer1.1.conv1", "params")
    assert by["total.trainable_params"].is_total
    assert isinstance(by["pool1.output_shape"].value, Shape)
    assert [i.value for i in by["pool1.output_shape"].value.items] == [16, 14, 14]
    assert by["fc.rf"].value.is_global
    assert by["conv2.rf"].value.size == Exact(7, "7")
    approx = by["total.macs"].value
    assert isinstance(approx, Approx) and approx.value == 822e6 and approx.tolerance == 0.02
    # locations: the value and the key, 1-based
    assert by["conv1.params"].loc.line == 4 and by["conv1.params"].loc.col == 17
    assert by["conv1.params"].key_loc.line == 4 and by["conv1.params"].key_loc.col == 3
    assert by["pool1.output_shape"].given == [16, 14, 14]
    assert by["pool1.output_shape"].given_text == "[16, 14, 14]"


def test_defaults():
    s = sheet("answers: {conv1.params: 1}\n")
    assert s.bindings == {} and s.tolerance == DEFAULT_TOLERANCE == 0.01


def test_load_answers_reads_a_file(tmp_path):
    path = tmp_path / "a.yaml"
    path.write_text("answers:\n  total.macs: 5\n")
    s = load_answers(path)
    assert s.file == str(path) and s.answers[0].loc.file == str(path)


def test_load_answers_missing_file(tmp_path):
    with pytest.raises(SpecError, match="no such file"):
        load_answers(tmp_path / "nope.yaml")


def test_tolerance_as_percent():
    assert sheet("tolerance: 5%\nanswers: {conv1.params: 1}\n").tolerance == pytest.approx(0.05)


# --- values -----------------------------------------------------------------------------------
@pytest.mark.parametrize("text, value", [
    ('"about 822 million"', 822e6), ('"1.64 G"', 1.64e9), ('"12.6k"', 12600.0), ('"822e6"', 822e6),
    ('"8.2e8"', 8.2e8), ("8.2e+8", 8.2e8), ('"~822M"', 822e6), ('"≈ 1.64G"', 1.64e9),
    ('"approx 12560"', 12560.0), ('"approx. 3 billion"', 3e9), ('"2 B"', 2e9), ('"1.5 T"', 1.5e12),
    ('"1.5 trillion"', 1.5e12), ('"12 thousand"', 12000.0), ('"12K"', 12000.0), ('"0.6 Million"', 6e5),
    ("12.5", 12.5), ('"12.5"', 12.5),
])
def test_approximate_forms(text, value):
    answer = one(text)
    assert isinstance(answer, Approx)
    assert answer.value == pytest.approx(value, rel=1e-12)
    assert answer.tolerance == 0.01


@pytest.mark.parametrize("text, value", [
    ("416", 416), ('"416"', 416), ('"12,560"', 12560), ("12_560", 12560), ('"9*16*32"', 4608),
    ('"(3*3*1 + 1) * 16"', 160), ('"2**10"', 1024), ('"max(3, 4) * 2"', 8),
])
def test_exact_forms(text, value):
    answer = one(text)
    assert isinstance(answer, Exact) and answer.value == value and type(answer.value) is int


def test_symbolic_answer_is_a_sympy_expression():
    import sympy

    answer = one('"4*H*W*10 + 10"', key="fc.params")
    assert isinstance(answer, Symbolic)
    H, W = (sympy.Symbol(n, integer=True, positive=True) for n in "HW")
    assert sympy.simplify(answer.value - (40 * H * W + 10)) == 0
    assert answer.names == {"H", "W"}
    assert answer.text == "4*H*W*10 + 10"


def test_partial_bindings_leave_the_rest_symbolic():
    answer = one('"4*H*W*10 + 10"', key="fc.params", set="{H: 2}")
    assert isinstance(answer, Symbolic) and answer.names == {"W"}


def test_expression_without_free_names_is_exact_even_with_fractions():
    assert one('"H / 4"', key="conv1.rf", set="{H: 2}").size.value == 0.5
    assert one('"1/2"', key="conv1.rf").size.value == 0.5


def test_shapes_may_hold_expressions():
    import sympy

    shape = one('[16, "H // 2", W]', key="pool1.output_shape")
    assert isinstance(shape, Shape) and shape.items[0] == Exact(16, "16")
    H = sympy.Symbol("H", integer=True, positive=True)
    assert shape.items[1].value == sympy.floor(H / 2)
    assert shape.text == "[16, H // 2, W]"


@pytest.mark.parametrize("text, size, stride, start, is_global", [
    ("7", 7, None, None, False),
    ('"7"', 7, None, None, False),
    ("[7, 5]", (7, 5), None, None, False),
    ("global", None, None, None, True),
    ("GLOBAL", None, None, None, True),
    ("{size: 7, stride: 2, start: -3}", 7, 2, -3, False),
    ("{size: [7, 5], start: [-3, -2]}", (7, 5), None, (-3, -2), False),
    ('{stride: "1/2"}', None, 0.5, None, False),
])
def test_rf_forms(text, size, stride, start, is_global):
    rf = one(text, key="conv2.rf")
    assert isinstance(rf, RFAnswer) and rf.is_global == is_global

    def plain(part):
        if part is None:
            return None
        return tuple(p.value for p in part) if isinstance(part, tuple) else part.value

    assert (plain(rf.size), plain(rf.stride), plain(rf.start)) == (size, stride, start)


def test_parse_approx_directly():
    assert parse_approx("12,560") == (12560, False)
    assert parse_approx("about 12,560") == (12560.0, True)
    assert parse_approx("1.64 G") == (1.64e9, True)
    assert parse_approx("4*H") is None
    assert parse_approx("H") is None
    assert parse_approx("-3") == (-3, False)


# --- mistakes in the file ---------------------------------------------------------------------
def test_yaml_syntax_error_has_a_location():
    err = error("answers:\n  conv1.params: [1, 2\n")
    assert "invalid YAML" in err.message
    assert err.loc.file == "answers.yaml" and err.loc.line >= 2
    assert str(err).startswith("answers.yaml:")


def test_not_a_mapping():
    err = error("- conv1.params: 3\n")
    assert "answers" in err.message and err.loc.line == 1


def test_empty_file():
    err = error("")
    assert err.loc == ("answers.yaml", 1, 1)


def test_unknown_top_level_key_did_you_mean():
    err = error("tolerance: 0.01\nanswer:\n  conv1.params: 3\n")
    assert "unknown top-level key 'answer'" in err.message
    assert "did you mean 'answers'" in err.message
    assert (err.loc.line, err.loc.col) == (2, 1)


def test_missing_answers():
    assert "missing 'answers:'" in error("set: {H: 3}\n").message


def test_empty_answers():
    assert "non-empty mapping" in error("answers: {}\n").message


def test_unknown_figure_did_you_mean():
    err = error("answers:\n  conv1.param: 416\n")
    assert "unknown figure 'param'" in err.message and "did you mean 'params'" in err.message
    assert (err.loc.line, err.loc.col) == (2, 3)


def test_key_without_layer():
    err = error("answers:\n  params: 416\n")
    assert "not of the form LAYER.FIGURE" in err.message and "conv1.params" in err.message
    assert (err.loc.line, err.loc.col) == (2, 3)


def test_rf_of_total_and_param_bytes_of_layer():
    assert "per-layer" in error("answers:\n  total.rf: 7\n").message
    assert "total.param_bytes" in error("answers:\n  conv1.param_bytes: 7\n").message


def test_non_string_key():
    assert "not a quantity" in error("answers:\n  3: 4\n").message


@pytest.mark.parametrize("value, message", [
    ("\"__import__('os')\"", "only min"),
    ('"open(\'x\').read()"', "may be called"),
    ('"H.__class__"', "Attribute"),
    ('"lambda: 1"', "Lambda"),
    ('"[1, 2][0]"', "not allowed"),
    ('"1 / 0"', "division by zero"),
    ('"10 ** 10 ** 10"', "too large"),
    ('"H ** 1000"', "exponent"),
    ('"2 *"', "cannot parse"),
])
def test_forbidden_expressions_are_spec_errors_with_location(value, message):
    err = error(f"answers:\n  fc.params: {value}\n")
    assert message in err.message
    assert (err.loc.file, err.loc.line, err.loc.col) == ("answers.yaml", 2, 14)
    assert str(err).startswith("answers.yaml:2:14: error:")


@pytest.mark.parametrize("value, message", [
    ('"about 3 zillion"', "unknown unit 'zillion'"),
    ('"822m"', "use M for million"),
    ('"about H"', "approximate number"),
    ("true", "expected a number"),
    ("null", "got nothing"),
    ("[1, 2]", "expected a number"),
    ("{a: 1}", "expected a number"),
])
def test_bad_numbers(value, message):
    err = error(f"answers:\n  total.macs: {value}\n")
    assert message in err.message and err.loc.line == 2


@pytest.mark.parametrize("key, value, message", [
    ("pool1.output_shape", "16", "list of sizes"),
    ("pool1.output_shape", "[]", "list of sizes"),
    ("pool1.output_shape", '[16, "about 14"]', "must be exact"),
    ("pool1.output_shape", "[16, 14.5]", "a shape size is a whole number"),
    ("conv1.rf", "{size: 3, strde: 1}", "did you mean 'stride'"),
    ("conv1.rf", "{}", "at least one"),
    ("conv1.rf", "true", "an rf answer"),
    ("conv1.rf", "{size: []}", "empty list"),
])
def test_bad_shapes_and_rfs(key, value, message):
    err = error(f"answers:\n  {key}: {value}\n")
    assert message in err.message and err.loc.line == 2


def test_shape_item_error_points_at_the_item():
    err = error('answers:\n  pool1.output_shape: [16, "2 *", 14]\n')
    assert (err.loc.line, err.loc.col) == (2, 28)


@pytest.mark.parametrize("top, message", [
    ("tolerance: 2", "tolerance"), ("tolerance: -0.1", "tolerance"), ("tolerance: abc", "tolerance"),
    ("tolerance: true", "tolerance"), ("set: [1]", "'set' must map"), ("set: {H: 0}", "positive integer"),
    ("set: {H: 2.5}", "positive integer"), ("set: {1x: 3}", "not a symbol name"),
    ("set: {min: 3}", "not a symbol name"),
])
def test_bad_set_and_tolerance(top, message):
    err = error(f"{top}\nanswers: {{conv1.params: 1}}\n")
    assert message in err.message and err.loc.line == 1


def test_duplicate_answer_is_an_error():
    err = error("answers:\n  conv1.params: 1\n  conv1.params: 2\n")
    assert "duplicate key" in err.message and err.loc.line == 3


def test_python_tags_refused():
    err = error("answers:\n  conv1.params: !!python/object/apply:os.system ['echo hi']\n")
    assert "not allowed" in err.message


def test_memory_units_for_byte_figures():
    s = sheet("answers:\n  total.activation_bytes: 8 MiB\n  total.param_bytes: about 49.1 KiB\n"
              "  conv1.activation_bytes: 3.2 MB\n  total.macs: 2 B\n")
    values = [a.value for a in s.answers]
    assert [v.value for v in values] == [8 * 2**20, pytest.approx(49.1 * 1024), 3.2e6, 2e9]
    assert all(isinstance(v, Approx) for v in values)
    assert "unknown memory unit 'G'" in error("answers:\n  total.param_bytes: 2 G\n").message
    assert "unknown unit 'MiB'" in error("answers:\n  total.macs: 2 MiB\n").message


def test_missing_multiplication_sign():
    assert "a product is written with *, like 2*H" in error("answers:\n  fc.params: 2H\n").message
