"""Size symbols: names the spec does not have, or a number where the figure is a formula."""
from __future__ import annotations

from archcalc.homework.answers import Symbolic
from archcalc.homework.check import _answer_parts, _expected_parts, _symbolic
from archcalc.homework.mistakes.base import NUMBER_FIGURES, Said, mistake

ALL = NUMBER_FIGURES + ("output_shape", "rf")


def _names(case) -> set:
    names = set()
    for part in _answer_parts(case.value):
        if isinstance(part, Symbolic):
            names |= part.names
    return names


@mistake("no_size_symbols", ALL, rank=0,
         hint="this spec has no size symbols, so the answer is a number; {names} could be given values under set:")
def no_size_symbols(case):
    """A formula in names on a spec whose sizes are all numbers."""
    unknown = sorted(_names(case))
    return Said(names=", ".join(unknown)) if unknown and not case.net.symbols else None


@mistake("unknown_symbol", ALL, rank=0, hint="{names} {are} of this spec (its symbols: {symbols})")
def unknown_symbol(case):
    """A formula in a name that is not one of the spec's size symbols."""
    symbols = case.net.symbols
    unknown = sorted(_names(case) - symbols)
    if not unknown or not symbols:
        return None
    return Said(names=", ".join(unknown),
                are="is not a size symbol" if len(unknown) == 1 else "are not size symbols",
                symbols=", ".join(sorted(symbols)))


@mistake("number_for_formula", ALL, rank=0,
         hint="the expected value depends on {free}: answer with a formula in {free}, or give their values "
              "under set:")
def number_for_formula(case):
    """Numbers only, where the expected value is a formula in the size symbols."""
    if _names(case):
        return None
    free = sorted({str(s) for e in _expected_parts(case.expected) if _symbolic(e) for s in e.free_symbols})
    numeric = [p for p in _answer_parts(case.value) if not isinstance(p, Symbolic)]
    return Said(free=", ".join(free)) if free and numeric else None
