"""Text a user types on the command line, read and quoted the same way wherever it goes: the
`--input` shape (the CLI's commands and the importers, which are handed the same text), and a value
quoted in a message. Pure Python, no torch. The CLI's commands, the ONNX importer and `train`'s run settings all read
`--input` and `--set` here, so the same text means the same thing everywhere."""
from __future__ import annotations

import re

from archcalc.errors import SpecError

# Sizes on the command line: ASCII digits only (str.isdigit also accepts '²' and '٣', which int()
# refuses or reads as something else), at most MAX_SIZE_DIGITS of them (int() of a 5000-digit
# string raises, and no tensor is that large).
MAX_SIZE_DIGITS = 30
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,99}")
_LEFT_OUT = re.compile(r"^,|,\s*,|,$")
# Sizes joined by x or × and nothing else (`3x224x224`, `[3 × 64 × 64]`): where names are allowed an
# x is read as a separator only so, between digits (`3,x,W` and `x1` stay names).
_BY_X = re.compile(r"[\s\[(]*[0-9]+(?:\s*[x×]\s*[0-9]+)+[\s\])]*")


def size_left_out(text: str) -> bool:
    """Whether a size is left out between commas (`3,,224`, `3,224,`, `[,3]`): never closed up."""
    return bool(_LEFT_OUT.search(text.strip().strip("[]()").strip()))


def parse_sizes(text: str, *, names: bool = False, digits: int = MAX_SIZE_DIGITS) -> tuple | None:
    """One shape as typed (`3,224,224`, `[3, 224, 224]`, `3 224 224`, `3x224x224`; with names an x
    separates only where sizes alone are joined by it, so `3,x,W` holds the name x):
    a tuple of positive ints of at most `digits` digits, or with `names=True` also of names (`3,H,W`,
    the names kept as str); () when the text holds no size at all; None when it is not a shape (a
    part that is neither, or a size left out between commas). Callers word their own errors."""
    if size_left_out(text):
        return None
    if names and _BY_X.fullmatch(text):  # 3x224x224 means the same with names allowed (`import --input`)
        names = False
    parts = [p for p in re.split(r"[\s,\[\]()]+" if names else r"[\s,x×\[\]()]+", text.strip()) if p]
    number = re.compile(rf"[0-9]{{1,{digits}}}")
    out = []
    for part in parts:
        if number.fullmatch(part) and int(part) > 0:
            out.append(int(part))
        elif names and _NAME.fullmatch(part):
            out.append(part)
        else:
            return None
    return tuple(out)


_SET_SIZE = re.compile(rf"-?[0-9]{{1,{MAX_SIZE_DIGITS}}}")  # ASCII digits; the sign only to say "positive"


def parse_binding(item: str) -> tuple[str, int]:
    """One `--set` item, `H=28` -> ('H', 28): a name, '=', a positive whole number (spaces around
    either are ignored). SpecError saying what was expected otherwise."""
    name, sep, value = str(item).partition("=")
    name, value = name.strip(), value.strip()
    if not sep or not _NAME.fullmatch(name) or not _SET_SIZE.fullmatch(value):
        raise SpecError(f"--set {shown(str(item))}: expected NAME=INTEGER with at most {MAX_SIZE_DIGITS} "
                        "digits, e.g. --set H=28")
    if int(value) < 1:
        raise SpecError(f"--set {shown(str(item))}: sizes must be positive")
    return name, int(value)


def parse_bindings(items) -> dict:
    """`--set` items (`['H=28', 'W=32']`) -> {'H': 28, 'W': 32}; a name given twice keeps the last,
    as repeated options do."""
    return dict(parse_binding(item) for item in items or ())


def parse_input(text: str, *, names: bool = False, digits: int = MAX_SIZE_DIGITS):
    """The `--input` text: one shape (`3,224,224`, `3x224x224`, `[3, 224, 224]`; with `names=True`
    also `3,H,W`) -> a tuple, or inputs by name (`features=80,3000;ids=448`) -> {name: tuple}.
    SpecError saying what was expected otherwise."""
    def sizes(part: str) -> tuple:
        if size_left_out(part):  # `3,,224`: never silently closed up
            raise SpecError(f"--input {shown(text)}: a size is missing between commas; expected positive sizes "
                            "like 3,224,224")
        out = parse_sizes(part, names=names, digits=digits)
        if not out:
            raise SpecError(f"--input {shown(text)}: expected positive sizes like 3,224,224 (channels first, no "
                            f"batch), each at most {digits} digits")
        return out

    if "=" not in text:
        return sizes(text)
    shapes = {}
    for item in text.split(";"):
        if not item.strip():
            continue
        name, sep, part = item.partition("=")
        name = name.strip()
        if not sep or not _NAME.fullmatch(name):
            raise SpecError(f"--input {shown(text)}: expected a shape like 3,224,224, or NAME=SHAPE items "
                            "separated by ';' for inputs by name, e.g. --input 'features=80,3000;ids=448'")
        if name in shapes:
            raise SpecError(f"--input {shown(text)}: the input '{name}' is given twice")
        shapes[name] = sizes(part)
    return shapes


def shown(text: str, limit: int = 60) -> str:
    """`text` as a message quotes it: its repr, cut in the middle (with its length) when longer than `limit`."""
    text = repr(text)
    return text if len(text) <= limit else f"{text[:limit - 12]}...{text[-8:]} ({len(text)} characters)"
