"""Layer kinds: one module per kind (or small family), each registering itself in `KINDS`.

A kind's module is imported when a spec first uses the kind (`KINDS[name]`), not here, so a spec
with five kinds imports five modules (issue 14 point 8: start-up time). `in KINDS`, the names
(`archcalc kinds`, error messages' suggestions) and len() come from an index, kind name -> module,
found by importing every module of this folder once and kept beside the bytecode
(`__pycache__/kinds-index.txt`), valid while no module file of the folder changes (names, sizes and
modification times are its key). A new kind is its module (and its tests): the index follows.
Where the folder cannot be written, or Python writes no bytecode, every start imports all modules
instead (about 8 ms); the figures are the same either way.
"""
from __future__ import annotations

import importlib
import os
import sys

from archcalc.layers.base import KINDS, Arg, Layer, register

_FOLDER = os.path.dirname(os.path.abspath(__file__))
_CACHE = os.path.join(_FOLDER, "__pycache__", "kinds-index.txt")
_FORMAT = "archcalc kinds index 1"


def _kind_files() -> list[tuple]:
    """(file name, size, mtime_ns) of each kind module of the folder (not base.py, not _private)."""
    out = []
    for entry in os.scandir(_FOLDER):
        name = entry.name
        if name.endswith(".py") and not name.startswith("_") and name != "base.py":
            st = entry.stat()
            out.append((name, st.st_size, st.st_mtime_ns))
    return sorted(out)


def _key(files) -> str:
    return _FORMAT + " " + " ".join(f"{n}:{size}:{mtime}" for n, size, mtime in files)


def _read_index(key: str):
    try:
        with open(_CACHE, encoding="utf-8") as f:
            text = f.read()
    except OSError:
        return None
    first, _, rest = text.partition("\n")
    if first != key:
        return None
    pairs = [line.split(" ") for line in rest.splitlines() if line]
    if not pairs or any(len(p) != 2 for p in pairs):
        return None
    return dict(pairs)


def _write_index(key: str, index: dict) -> None:
    if sys.dont_write_bytecode:
        return
    tmp = f"{_CACHE}.{os.getpid()}.tmp"
    try:
        os.makedirs(os.path.dirname(_CACHE), exist_ok=True)
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(key + "\n" + "".join(f"{name} {module}\n" for name, module in index.items()))
        os.replace(tmp, _CACHE)  # atomic: a reader sees the old index or the new, never half
    except OSError:
        try:
            os.remove(tmp)
        except OSError:
            pass


def build_index(files=None) -> dict[str, str]:
    """kind name -> module, from the modules themselves: each imported, in file-name order."""
    for name, _, _ in files if files is not None else _kind_files():
        importlib.import_module(f"{__name__}.{name[:-3]}")
    return {name: type(layer).__module__ for name, layer in KINDS._loaded.items()}


def _index() -> dict[str, str]:
    files = _kind_files()
    key = _key(files)
    index = _read_index(key)
    if index is None:
        index = build_index(files)
        _write_index(key, index)
    return index


KINDS.index(_index())


def import_all() -> None:
    """Import every kind's module (what `KINDS.values()` does): the documentation and the tests."""
    for name in KINDS:
        KINDS[name]


__all__ = ["KINDS", "Arg", "Layer", "build_index", "import_all", "register"]
