"""Errors a user can cause, with the place in their file that caused them."""
from __future__ import annotations

from typing import NamedTuple


class Loc(NamedTuple):
    """A place in a spec file; line and column count from 1. (A named tuple: specs of 100k layers
    make hundreds of thousands of these, and tuples are the cheapest immutable record.)"""

    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


# Characters that would break a one-line message or drive a terminal: C0 and C1 controls (newline,
# carriage return, NUL, ESC, ...), DEL, the Unicode line and paragraph separators, and the bidi
# overrides that reorder what a terminal shows. Each is written as its Python escape instead.
_UNSAFE = [*range(0x00, 0x20), *range(0x7F, 0xA0), 0x2028, 0x2029, *range(0x202A, 0x202F),
           *range(0x2066, 0x206A), 0xFEFF]
_ESCAPES = {code: chr(code).encode("unicode_escape").decode("ascii") for code in _UNSAFE}


def one_line(text: str) -> str:
    """`text` with every line break and control character escaped (`\\n`, `\\x1b`, `\\u2028`):
    what it prints is one line, and nothing in it reaches the terminal as a control sequence."""
    return str(text).translate(_ESCAPES)


class SpecError(ValueError):
    """A mistake in a spec (or in a command-line value), reported as `FILE:LINE:COL: error: ...`
    (`cli_line()`, the line the command line prints). A ValueError: a wrong value was given."""

    def __init__(self, message: str, loc: Loc | None = None, layer: str | None = None,
                 kind: str | None = None):
        super().__init__(message)
        self.message = message
        self.loc = loc
        self.layer = layer
        self.kind = kind

    def __str__(self) -> str:
        # Python's way: the message, with its place where it has one (a compiler's line,
        # `FILE:LINE:COL: error: ...`); `error:` never begins it (the CLI adds it: cli_line()).
        return self.cli_line()[len("error: "):] if self.loc is None else self.cli_line()

    def cli_line(self) -> str:
        """The line the command line prints: `FILE:LINE:COL: error: ...`, or `error: ...`."""
        where = f"{self.loc}: " if self.loc else ""
        who = f"layer '{self.layer}'" if self.layer else ""
        who += f" ({self.kind}): " if who and self.kind else ": " if who else ""
        return one_line(f"{where}error: {who}{self.message}")


class LayerError(Exception):
    """Raised by a layer kind's rules; the graph walk adds the layer's name and location.

    `arg` names the argument at fault, so the message can point at its line.
    """

    def __init__(self, message: str, arg: str | None = None):
        super().__init__(message)
        self.message = message
        self.arg = arg


def did_you_mean(word: str, choices) -> str:
    """' (did you mean 'x'?)' for the closest choice, or ''. A word that is part of exactly one
    choice counts as close too (`slope` -> `negative_slope`)."""
    import difflib  # for a mistake only, not at every start (issue 14 point 8)

    word, choices = str(word), [str(c) for c in choices]
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    if not close and len(word) >= 3:
        close = [c for c in choices if word.lower() in c.lower()]
        close = close if len(close) == 1 else []
    return f" (did you mean '{close[0]}'?)" if close else ""
