"""The catalogue of diagnosed mistakes: one small rule per usual mistake (its name, the figures it
applies to, how the wrong value is derived from the network, its hint), registered with the
`mistake` decorator (archcalc.homework.mistakes.base) the way layer kinds register with
`register`. Every module here except `base` and `network` holds rules and is imported on first use.

    for rule in for_figure("params"):      # the rules for a figure, in the order they are tried
        rule.name, rule.figures, rule.doc, rule.hint

archcalc.homework.check walks this catalogue for every wrong answer.
"""
from __future__ import annotations

import importlib
import pkgutil

from archcalc.homework.mistakes.base import (MISTAKES, Case, Mistake, Said, Wrong, catalogue_markdown, for_figure,
                                             mistake)

for _info in pkgutil.iter_modules(__path__):
    if not _info.name.startswith("_") and _info.name not in ("base", "network"):
        importlib.import_module(f"{__name__}.{_info.name}")

__all__ = ["MISTAKES", "Case", "Mistake", "Said", "Wrong", "catalogue_markdown", "for_figure", "mistake"]
