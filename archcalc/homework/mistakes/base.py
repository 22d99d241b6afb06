"""The catalogue's machinery: a `Mistake` rule, the `mistake` decorator that registers one, and
the `Case` a rule reads (the network, the asked layer, the figure, the expected value, the answer).

A rule derives the value the mistake gives, from the network:

    @mistake("forgot_bias", figures=("params", "trainable_params"), scope="layer",
             hint="forgot the bias: one per output {unit} (+{bias}); ...")
    def forgot_bias(case):
        '''The layer's count without its bias (one per output channel or feature).'''
        ...
        return Wrong(case.expected - bias, unit="channel", bias="16")

`derive(case)` returns None (the mistake cannot be made here), a `Wrong` (a mistaken value, with
the fields its hint is formatted with), a list of them, or a `Said` (the rule decided from the
answer itself, e.g. "the answer has 3 dimensions": no value to compare). The walk over the
catalogue (archcalc.homework.check) compares each mistaken value with the answer as the expected
value is compared, and names the mistake the answer matches (better than the truth, at the
answer's own precision). Rules are tried in `rank` order, then in registration order.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

#: Every registered mistake, by name (registration order).
MISTAKES: dict[str, "Mistake"] = {}

NUMBER_FIGURES = ("params", "trainable_params", "non_trainable_params", "macs", "flops", "activation_bytes",
                  "param_bytes")
SCOPES = ("layer", "group", "total", "any")  # one layer; a block or the total (several layers); ...


@dataclass(frozen=True)
class Wrong:
    """A mistaken value and the fields of its rule's hint. For rf rules `part` says which part of
    the field (size, stride, start) the value is."""

    value: object
    fields: dict = field(default_factory=dict)
    part: str | None = None

    def __init__(self, value, part=None, **fields):
        object.__setattr__(self, "value", value)
        object.__setattr__(self, "part", part)
        object.__setattr__(self, "fields", fields)


@dataclass(frozen=True)
class Said:
    """A rule that recognised the mistake from the answer itself (no value to compare)."""

    fields: dict = field(default_factory=dict)

    def __init__(self, **fields):
        object.__setattr__(self, "fields", fields)


@dataclass(frozen=True)
class Mistake:
    name: str
    figures: tuple  # the figures it applies to
    derive: Callable  # derive(case) -> None | Wrong | [Wrong] | Said
    hint: str  # str.format template over the Wrong's fields
    rank: int = 100  # lower is tried first
    order: int = 0  # registration order
    doc: str = ""  # how the wrong value is derived (the function's docstring)
    # An aside: said after the hint of another mistake the answer also matches (the one that
    # explains it), or alone when none does.
    aside: bool = False

    def text(self, fields: dict) -> str:
        return self.hint.format(**fields)


def mistake(name: str, figures, hint: str, rank: int = 100, aside: bool = False):
    """Register the decorated `derive(case)` as the mistake `name` for `figures` (an `aside` is
    said after another matching mistake's hint; see Mistake)."""
    figures = (figures,) if isinstance(figures, str) else tuple(figures)

    def wrap(derive):
        if name in MISTAKES:
            raise ValueError(f"mistake {name!r} is registered twice")
        MISTAKES[name] = Mistake(name, figures, derive, hint, rank, len(MISTAKES),
                                 " ".join((derive.__doc__ or "").split()), aside)
        return derive

    return wrap


def for_figure(figure: str) -> list[Mistake]:
    """The mistakes that apply to `figure`, in the order they are tried."""
    return sorted((m for m in MISTAKES.values() if figure in m.figures), key=lambda m: (m.rank, m.order))


@dataclass
class Case:
    """What a rule reads: `net` (archcalc.homework.mistakes.network.Network), `target` (the asked
    layer, block or total: .name, .row, .rows), `figure`, `expected` (normalised), `value` (the
    typed answer) and `answers` (every answer of the file by quantity, for mistakes carried from
    one answer into another)."""

    net: object
    target: object
    figure: str
    expected: object
    value: object
    answers: dict = field(default_factory=dict)  # the file's other answers: quantity -> Answer

    @property
    def row(self):
        return self.target.row

    @property
    def single(self):
        """The one layer asked about (not a block or the total), else None."""
        return self.target.row if self.target.row is not None and len(self.target.rows) == 1 else None

    @property
    def is_total(self) -> bool:
        return self.target.row is None


def catalogue_markdown() -> str:
    """The catalogue as a Markdown table (name, figures, how the wrong value is derived, module),
    for docs/homework.md."""
    lines = ["| mistake | figures | the wrong value |", "|---|---|---|"]
    for rule in sorted(MISTAKES.values(), key=lambda m: (m.derive.__module__, m.order)):
        lines.append(f"| `{rule.name}` | {', '.join(rule.figures)} | {rule.doc.replace('|', '/')} |")
    return "\n".join(lines) + "\n"
