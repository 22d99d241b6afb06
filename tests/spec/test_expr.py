import pytest

from archcalc.spec.expr import ExprError, evaluate, names_in


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
