"""The kind registry imports a kind's module only when the kind is used; its index (kind -> module,
kept in archcalc/layers/__pycache__/kinds-index.txt) names every kind of every module in the folder,
each with its module, and follows the folder: a new kind needs its module, nothing else."""
import importlib
import json
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import archcalc.layers
from archcalc.layers import KINDS

MODULES = dict(KINDS._modules)  # the index this process read (or built)

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
    assert not missing, f"the index is stale: {missing}"
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


@pytest.fixture(scope="module", autouse=True)
def _index_written():
    """A first run writes the index (a fresh clone has none), as an installed package's first run does."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run([sys.executable, "-c", "import archcalc.layers"], cwd=ROOT, env=env, check=True)
    if not (ROOT / "archcalc/layers/__pycache__/kinds-index.txt").exists():
        pytest.skip("archcalc/layers/__pycache__ cannot be written here")


def _child(code: str, env=None) -> dict:
    """Run `code` in a fresh interpreter (nothing imported yet) and return what it printed as JSON.
    Bytecode (and so the index) is written, as an installed package's first run writes it."""
    if env is None:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                          env=env)
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


_NAMES = ("import json, sys\n"
          "from archcalc.layers import KINDS\n"
          "print(json.dumps([list(KINDS), sorted(m for m in sys.modules if m.startswith('archcalc.layers.'))]))\n")


def _copy_of_the_package(tmp_path) -> Path:
    """archcalc copied whole into tmp_path (without bytecode): a tree a test may add a kind to."""
    import shutil

    shutil.copytree(ROOT / "archcalc", tmp_path / "archcalc", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def _env(root: Path, write: bool = True) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = str(root)
    if not write:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _names(root: Path, write: bool = True):
    done = subprocess.run([sys.executable, "-c", _NAMES], cwd=root, capture_output=True, text=True, check=True,
                          env=_env(root, write))
    return json.loads(done.stdout)


def test_a_new_kind_is_its_module_alone(tmp_path):
    # the index is built, kept, read back without importing any kind, and follows a new module
    root = _copy_of_the_package(tmp_path)
    names, _ = _names(root)
    assert names == list(MODULES) and (root / "archcalc/layers/__pycache__/kinds-index.txt").exists()
    again, loaded = _names(root)
    assert again == names and loaded == ["archcalc.layers.base"]
    (root / "archcalc/layers/swish2.py").write_text(
        "from archcalc.layers.base import Layer, register\n\n\n"
        "@register\nclass Swish2(Layer):\n    kind = 'swish2'\n    summary = 'x * sigmoid(2x)'\n")
    grown, _ = _names(root)
    assert "swish2" in grown and [n for n in grown if n != "swish2"] == names  # in file-name order


def test_a_changed_module_rebuilds_the_index(tmp_path):
    root = _copy_of_the_package(tmp_path)
    _names(root)
    cache = root / "archcalc/layers/__pycache__/kinds-index.txt"
    key, _, rest = cache.read_text().partition("\n")
    cache.write_text(key + "\n" + rest.replace("archcalc.layers.conv\n", "archcalc.layers.nowhere\n"))
    assert KINDS._modules["conv"] == "archcalc.layers.conv"
    conv = root / "archcalc/layers/conv.py"
    conv.write_text(conv.read_text() + "\n")  # the module changed (size and time): the index is rebuilt
    names, loaded = _names(root)
    assert names == list(MODULES) and "archcalc.layers.conv" in loaded
    assert "archcalc.layers.conv\n" in cache.read_text()


def test_without_bytecode_every_start_reads_the_modules(tmp_path):
    root = _copy_of_the_package(tmp_path)
    names, loaded = _names(root, write=False)
    assert names == list(MODULES) and len(loaded) > 40
    assert not (root / "archcalc/layers/__pycache__/kinds-index.txt").exists()
    (root / "archcalc/layers/__pycache__").mkdir(exist_ok=True)
    (root / "archcalc/layers/__pycache__/kinds-index.txt").write_text("not an index\nconv\n")  # garbage: rebuilt
    assert _names(root)[0] == names
