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
    # x separates sizes, with names allowed too, where only digits stand around it (`import --input
    # 3x224x224` was refused while analyze, train and the ONNX importer read it)
    ("3x224x224", (3, 224, 224), (3, 224, 224)),
    ("3×8", (3, 8), (3, 8)),
    ("[3 x 8]", (3, 8), (3, 8)),
    ("3xHxW", None, None),   # not a name either: no guess
    ("x1", (1,), ("x1",)),   # a name where names are allowed
    ("3,x,W", None, (3, "x", "W")),
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


def test_importers_refuse_a_size_left_out():
    with pytest.raises(SpecError, match=r"input shape '3,,224': expected sizes > 0 or names"):
        _shape("3,,224")
    with pytest.raises(SpecError, match="the input shape is empty"):
        _shape("[]")
    assert _shape("3 H W") == [3, "H", "W"] and _shape((3, "8")) == [3, 8]
    with pytest.raises(SpecError, match=r"--input 'x=3,,224': a size is missing between commas"):
        _parse_input("x=3,,224", ["x"])
    assert _parse_input("x=[3, 8, 8]", ["x"]) == {"x": (3, 8, 8)} and _parse_input("3x8x8", ["x"]) == (3, 8, 8)


def test_input_and_set_read_the_same_everywhere():
    # one reader for --input and --set: the CLI, the ONNX importer and train's run settings
    from archcalc.reader.cli_text import parse_binding, parse_bindings, parse_input
    from archcalc.torch.train import _coerce

    for text in ("3,32,32", "3x32x32", "3×32×32", "[3, 32, 32]", "3 32 32"):
        assert parse_input(text) == (3, 32, 32)
        assert _parse_input(text, ["x"]) == (3, 32, 32)
        assert _coerce("input", text, None) == [3, 32, 32], text
        assert _shape(text) == [3, 32, 32], text  # the module importer's (torchvision:, timm:) --input
    assert parse_input("features=80,3000;ids=448") == {"features": (80, 3000), "ids": (448,)}
    assert parse_input("3,H,W", names=True) == (3, "H", "W")
    assert parse_binding(" H = 28 ") == ("H", 28)
    assert parse_bindings(["H=28", "W=32", "H=30"]) == {"H": 30, "W": 32}
    assert _coerce("sizes", ["H=28", " W = 32"], None) == {"H": 28, "W": 32}
    for bad, why in (("H", "expected NAME=INTEGER"), ("H=0", "sizes must be positive"),
                     ("H=-3", "sizes must be positive"), ("2H=3", "expected NAME=INTEGER"),
                     ("H=3.5", "expected NAME=INTEGER"), ("H=٣", "expected NAME=INTEGER")):
        with pytest.raises(SpecError, match=why):
            parse_binding(bad)
    with pytest.raises(SpecError, match="given twice"):
        parse_input("a=3;a=4")
