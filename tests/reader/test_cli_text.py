"""The one `--input` sizes parser (archcalc.reader.cli_text) and its three callers: the CLI, the ONNX
importer and the module importer, each with its own message."""
import pytest

from archcalc.errors import SpecError
from archcalc.importers.module import _shape
from archcalc.importers.onnx_file import _parse_input
from archcalc.reader.cli_text import parse_sizes, shown, size_left_out


@pytest.mark.parametrize("text, sizes, with_names", [
    ("3,224,224", (3, 224, 224), (3, 224, 224)),
    ("[3, 224, 224]", (3, 224, 224), (3, 224, 224)),
    ("(3 224 224)", (3, 224, 224), (3, 224, 224)),
    ("3x224x224", (3, 224, 224), None),  # x separates numbers only: `x` may be a name
    ("3×8", (3, 8), None),
    ("3,H,W", None, (3, "H", "W")),
    ("", (), ()),
    ("[]", (), ()),
    ("3,,224", None, None),
    ("3,224,", None, None),
    (",3", None, None),
    ("3, ,224", None, None),
    ("3,0,4", None, None),
    ("-3", None, None),
    ("3,²", None, None),  # ASCII digits only
])
def test_parse_sizes(text, sizes, with_names):
    assert parse_sizes(text) == sizes
    assert parse_sizes(text, names=True) == with_names


def test_size_left_out_and_digits():
    assert size_left_out("3,,224") and size_left_out("[3,224,]") and not size_left_out("3,224")
    assert parse_sizes("1" * 30) == (int("1" * 30),) and parse_sizes("1" * 31) is None
    assert parse_sizes("1" * 13, digits=12) is None and parse_sizes("1" * 12, digits=12) == (111111111111,)


def test_shown_cuts_long_values_in_the_middle():
    assert shown("3,224") == "'3,224'"
    long = "9" * 100
    assert shown(long) == "'" + "9" * 47 + "..." + "9" * 7 + "' (102 characters)"


def test_importers_refuse_a_size_left_out_with_their_own_messages():
    with pytest.raises(SpecError, match=r"input shape '3,,224': expected sizes > 0 or names"):
        _shape("3,,224")
    with pytest.raises(SpecError, match="the input shape is empty"):
        _shape("[]")
    assert _shape("3 H W") == [3, "H", "W"] and _shape((3, "8")) == [3, 8]
    with pytest.raises(SpecError, match=r"--input 'x=3,,224': an ONNX file takes positive sizes"):
        _parse_input("x=3,,224", ["x"])
    assert _parse_input("x=[3, 8, 8]", ["x"]) == {"x": (3, 8, 8)} and _parse_input("3x8x8", ["x"]) == (3, 8, 8)
