"""The kind registry imports a kind's module only when the kind is used, and its index
(archcalc.layers.MODULES) names every kind of every module in the folder, each with its module."""
import importlib
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import archcalc.layers
from archcalc.layers import KINDS, MODULES

ROOT = Path(__file__).resolve().parents[2]


def _registered_by_each_module() -> dict:
    """name -> module, read from the modules themselves: every module of the folder imported."""
    for info in pkgutil.iter_modules(archcalc.layers.__path__):
        if not info.name.startswith("_") and info.name != "base":
            importlib.import_module(f"archcalc.layers.{info.name}")
    return {name: type(layer).__module__ for name, layer in KINDS._loaded.items()}


def test_the_index_names_every_kind_of_every_module_with_its_module():
    registered = _registered_by_each_module()
    missing = {name: module for name, module in registered.items() if MODULES.get(name) != module}
    assert not missing, f"add to archcalc/layers/__init__.py MODULES: {missing}"
    assert set(MODULES) == set(registered), f"names no module registers: {set(MODULES) - set(registered)}"
    assert len(KINDS) == len(registered) >= 81  # 81 when the registry became lazy; new kinds add to it
    assert list(KINDS) == list(MODULES)


def test_every_kind_is_looked_up_as_its_own_layer():
    for name in MODULES:
        assert KINDS[name].kind == name
    assert dict(KINDS.items()).keys() == MODULES.keys()


def test_an_unknown_name_is_a_key_error_as_in_a_dict():
    assert "convolution" not in KINDS
    with pytest.raises(KeyError):
        KINDS["convolution"]
    assert KINDS.get("convolution") is None


def _child(code: str) -> dict:
    """Run `code` in a fresh interpreter (nothing imported yet) and return what it printed as JSON."""
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def test_a_spec_imports_only_the_modules_of_the_kinds_it_uses():
    got = _child("import json, sys\n"
                 "from archcalc import api\n"
                 "api.analyze_text('input: [3, 8, 8]\\nlayers:\\n  - conv: {out: 4, kernel: 3}\\n  - relu\\n')\n"
                 "print(json.dumps(sorted(m for m in sys.modules if m.startswith('archcalc.layers.'))))\n")
    kinds = {m for m in got if m.rsplit(".", 1)[1] not in ("base", "_explain")}
    assert kinds == {"archcalc.layers.conv", "archcalc.layers.activation"}, got


def test_names_and_membership_import_no_kind_module():
    got = _child("import json, sys\n"
                 "from archcalc.layers import KINDS\n"
                 "names = sorted(KINDS); assert 'conv' in KINDS and len(KINDS) == len(names)\n"
                 "print(json.dumps(sorted(m for m in sys.modules if m.startswith('archcalc.layers.'))))\n")
    assert got == ["archcalc.layers.base"]
