"""Text a user types on the command line, read and quoted the same way wherever it goes: the
`--input` shape (the CLI's commands and the importers, which are handed the same text), and a value
quoted in a message. Pure Python, no torch."""
from __future__ import annotations

import re

# Sizes on the command line: ASCII digits only (str.isdigit also accepts '²' and '٣', which int()
# refuses or reads as something else), at most MAX_SIZE_DIGITS of them (int() of a 5000-digit
# string raises, and no tensor is that large).
MAX_SIZE_DIGITS = 30
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,99}")
_LEFT_OUT = re.compile(r"^,|,\s*,|,$")


def size_left_out(text: str) -> bool:
    """Whether a size is left out between commas (`3,,224`, `3,224,`, `[,3]`): never closed up."""
    return bool(_LEFT_OUT.search(text.strip().strip("[]()").strip()))


def parse_sizes(text: str, *, names: bool = False, digits: int = MAX_SIZE_DIGITS) -> tuple | None:
    """One shape as typed (`3,224,224`, `[3, 224, 224]`, `3 224 224`, and without names `3x224x224`):
    a tuple of positive ints of at most `digits` digits, or with `names=True` also of names (`3,H,W`,
    the names kept as str); () when the text holds no size at all; None when it is not a shape (a
    part that is neither, or a size left out between commas). Callers word their own errors."""
    if size_left_out(text):
        return None
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


def shown(text: str, limit: int = 60) -> str:
    """`text` as a message quotes it: its repr, cut in the middle (with its length) when longer than `limit`."""
    text = repr(text)
    return text if len(text) <= limit else f"{text[:limit - 12]}...{text[-8:]} ({len(text)} characters)"
