"""Layer kinds: one module per kind (or small family), each registering itself in `KINDS`."""
from __future__ import annotations

import importlib
import pkgutil

from archcalc.layers.base import KINDS, Arg, Layer, register

for _info in pkgutil.iter_modules(__path__):
    if not _info.name.startswith("_") and _info.name != "base":
        importlib.import_module(f"{__name__}.{_info.name}")

__all__ = ["KINDS", "Arg", "Layer", "register"]
