"""The package is a house of floors: a module imports only from its own floor or below. Read from
the source (every `import archcalc.X` and `from archcalc.X import`, at any depth, lazy imports
included), so an arrow back up fails here before it tangles the code."""
import ast
from pathlib import Path

import archcalc

ROOT = Path(archcalc.__file__).parent

# floor of each part of the package (a dotted path under archcalc; the longest prefix that names a
# module decides); a module may import modules on its floor or lower.
FLOORS = {
    "errors": 0, "units": 0,
    "geometry": 1,   # window sizes and receptive-field algebra, below the kinds
    "layers": 2,     # one module per layer kind
    "reader": 3,     # YAML -> validated graph (asks the kinds for their schemas)
    "analysis": 4,   # walks the graph, asks each kind for its figures
    "render": 5, "graph_export": 5, "explain": 5,
    "torch": 6,      # build, verify, probe, export: a graph in, a module out
    "importers": 7,  # a model in, a spec out (checked by building it)
    "api": 8,        # the library's front door: any source (a spec, a dict, an import) to a report
    "homework": 9, "torch.train": 9, "torch.distributed": 9,  # applications of the library
    "cli": 10, "__main__": 11, "__init__": 11,
}


def _floor_of(dotted: str):
    """(key, floor) of a dotted module path under archcalc, or None when FLOORS has no prefix of it."""
    parts = dotted.split(".")
    for n in range(len(parts), 0, -1):
        key = ".".join(parts[:n])
        if key in FLOORS:
            return key, FLOORS[key]
    return None


def _part(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    return ".".join(p for p in rel.parts if p != "__init__") or "__init__"


def _package_of(path: Path) -> list:
    """The dotted parts of the package a module's relative imports start from (`from . import x`)."""
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return parts[:-1]  # a package's __init__ and a module alike: the folder they are in


def _imports(path: Path, source: str | None = None):
    tree = ast.parse(path.read_text(encoding="utf-8") if source is None else source)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:  # `from . import errors`, `from ..analysis import walk`: resolved as Python does
                base = _package_of(path)
                base = base[:len(base) - (node.level - 1)]
                module = ".".join(base + ([module] if module else []))
            # `from archcalc import analyze`: a name archcalc/__init__.py imports lazily is its module
            names = [module] + [archcalc._LAZY[a.name] if module == "archcalc" and a.name in archcalc._LAZY
                                else f"{module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "archcalc" and len(parts) > 1 and _floor_of(".".join(parts[1:])):
                yield node.lineno, ".".join(parts[1:])


def test_every_part_has_a_floor():
    missing = sorted(part for part in map(_part, ROOT.rglob("*.py")) if _floor_of(part) is None)
    assert missing == [], f"give these a floor in FLOORS: {missing}"


def test_no_module_imports_from_a_higher_floor():
    upward = []
    for path in sorted(ROOT.rglob("*.py")):
        here, floor = _floor_of(_part(path))
        for line, name in _imports(path):
            there, above = _floor_of(name)
            if above > floor:
                upward.append(f"{path.relative_to(ROOT.parent)}:{line}: {here} (floor {floor}) imports {name} "
                              f"(floor {above})")
    assert upward == []


def test_the_geometry_floor_needs_nothing_but_errors():
    # the receptive-field algebra and window arithmetic stand alone: no kinds, no reader.
    for path in (ROOT / "geometry").rglob("*.py"):
        assert {_floor_of(name)[0] for _, name in _imports(path)} <= {"errors", "geometry"}, path


def _upward(path: Path, source: str) -> list:
    here, floor = _floor_of(_part(path))
    return [name for _, name in _imports(path, source) if _floor_of(name)[1] > floor]


def test_the_checker_sees_every_way_of_importing_up():
    # so that the test above can fail: each of these, written in a kind's module, is an arrow up
    conv = ROOT / "layers" / "conv.py"
    assert _upward(conv, "from archcalc.analysis import walk\n") == ["analysis", "analysis.walk"]
    assert _upward(conv, "import archcalc.reader.parse\n") == ["reader.parse"]
    assert _upward(conv, "def f():\n    from archcalc.render import table\n") == ["render", "render.table"]
    assert _upward(conv, "from ..analysis import walk\n") == ["analysis", "analysis.walk"]  # relative
    assert _upward(conv, "from .. import api\n") == ["api"]
    assert _upward(conv, "from archcalc import analyze\n") == ["api"]  # archcalc/__init__.py's lazy name
    # and what is allowed stays allowed
    assert _upward(conv, "from . import base\nfrom ..geometry import window\nfrom archcalc import SpecError\n") == []
