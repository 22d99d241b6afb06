"""Import a model that already exists as an archcalc spec (YAML text).

`import_source(source, input_spec)` dispatches on what SOURCE names:

- `FILE.onnx`: an ONNX graph, its operators mapped to kinds (`onnx_file`, the onnx package only);
- a Hugging Face `config.json`, or a folder holding one (`hf_config`, pure Python: json only);
- `FILE.py:NAME`, `torchvision:NAME`, `timm:NAME`: a PyTorch module (`module`, needs torch).

`input_spec` is the `--input` text: a shape (`3,224,224`, or symbolic `3,H,W`) for modules and
ONNX files, a sequence length (`T`) for configs. Nothing here imports torch or onnx until a source
needs it, so `archcalc analyze config.json` runs without either installed.
"""
from __future__ import annotations

import importlib
import json
import re
from pathlib import Path

from archcalc.errors import SpecError
from archcalc.reader.cli_text import shown as _shown

_MODULE = re.compile(r"(?:torchvision|timm):[A-Za-z_][A-Za-z0-9_.]*")
_FILE_PY = re.compile(r"(?P<file>.+\.py):(?P<name>[A-Za-z_][A-Za-z0-9_.]*)")

# What an import source may be, in words: the import errors and the CLI's help say it.
SOURCES = ("FILE.onnx; a Hugging Face config.json (or a folder holding one); FILE.py:NAME (a function "
           "or class there returning an nn.Module); torchvision:NAME; timm:NAME")


def source_kind(text: str) -> str | None:
    """'onnx', 'config', 'module', or None when `text` is no import source (a spec path)."""
    text = str(text)
    if _MODULE.fullmatch(text) or _FILE_PY.fullmatch(text):
        return "module"
    if text.lower().endswith(".onnx"):
        return "onnx"
    path = Path(text)
    if path.name == "config.json" or (path.suffix.lower() == ".json" and _names_a_model_type(path)):
        return "config"
    try:
        if path.is_dir() and (path / "config.json").is_file():
            return "config"
    except OSError:
        return None
    return None


def _names_a_model_type(path: Path) -> bool:
    """Is this .json file a Hugging Face config (an object with a "model_type")? A spec may be
    written in JSON too (YAML reads it), and stays a spec. Only a small regular file is read."""
    try:
        if not path.is_file() or path.stat().st_size > 1 << 20:  # configs are a few KiB
            return False
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(value, dict) and "model_type" in value


def is_import_source(text) -> bool:
    """Whether `text` (what the user wrote where a spec path goes) names an import source rather
    than a YAML spec: `*.onnx`, `*.json` / a folder holding `config.json`, `FILE.py:NAME`,
    `torchvision:NAME`, `timm:NAME`."""
    return source_kind(str(text)) is not None


def _call(module: str, function: str, *args):
    """`archcalc.importers.<module>.<function>(*args)`, imported only now (so no source pays for
    another's dependencies); a part not installed or not written yet is a clear SpecError."""
    try:
        mod = importlib.import_module(f"archcalc.importers.{module}")
    except ImportError as exc:
        missing = getattr(exc, "name", None) or ""
        if missing.startswith("archcalc.importers"):
            raise SpecError(f"importing this source needs archcalc.importers.{module}, which this "
                            "archcalc does not have") from None
        raise SpecError(f"importing this source needs the '{missing or exc}' package: pip install "
                        f"{_PIP.get(missing.split('.')[0], missing or str(exc))}") from None
    fn = getattr(mod, function, None)
    if fn is None:
        raise SpecError(f"archcalc.importers.{module} has no {function}(): this archcalc cannot import "
                        "that source yet")
    return fn(*args)


_PIP = {"onnx": "onnx", "torch": "'archcalc[torch]'", "torchvision": "torchvision", "timm": "timm"}


def import_source(source: str, input_spec: str | None = None) -> str:
    """The spec (YAML text, with a header comment saying where it came from) of an import source;
    see the module's docstring. Raises SpecError for a source that is not one, a file that is
    missing, or anything the importer cannot represent."""
    source = str(source)
    kind = source_kind(source)
    if kind is None:
        raise SpecError(f"{_shown(source)}: not an import source: expected {SOURCES}")
    if kind == "onnx":
        return _call("onnx_file", "import_onnx", source, input_spec)
    if kind == "config":
        return _call("hf_config", "import_config", source, _seq_len(input_spec))
    return _call("module", "import_module_source", source, input_spec)


def _seq_len(input_spec):
    """A config's `--input`: the sequence length T (a number), or None for the stated default."""
    if input_spec is None:
        return None
    text = str(input_spec).strip()
    if re.fullmatch(r"[0-9]{1,12}", text) and int(text) > 0:
        return int(text)
    raise SpecError(f"--input {_shown(text)}: a Hugging Face config takes the sequence length T, a positive "
                    "integer, e.g. --input 128")


def _first_line(exc) -> str:
    """An exception's message in one line (its first, at most 200 characters), or its type's name."""
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


__all__ = ["import_source", "is_import_source", "source_kind"]
