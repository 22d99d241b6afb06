"""The specs that ship with archcalc, by name: `zoo:resnet18` is specs/zoo/resnet18.yaml wherever
archcalc runs. In the source tree they are its specs/ folder; an installed wheel carries them as
data files under `<prefix>/share/archcalc/specs` (pyproject.toml's data-files). A name whose file
exists where the user is (a folder called `zoo:resnet18`) is theirs, not a bundled spec."""
from __future__ import annotations

import re
import sys
import sysconfig
from pathlib import Path

CATEGORIES = ("zoo", "transformers", "lecture", "homework", "sequence")
_BUNDLED = re.compile(rf"({'|'.join(CATEGORIES)}):([A-Za-z0-9_][A-Za-z0-9_.-]*)\Z")


def root() -> Path | None:
    """The folder holding the bundled specs (one folder per category), or None."""
    source_tree = Path(__file__).resolve().parents[2] / "specs"
    candidates = [source_tree] + [Path(base) / "share" / "archcalc" / "specs"
                                  for base in (sysconfig.get_paths().get("data"), sys.prefix) if base]
    return next((c for c in candidates if (c / "zoo").is_dir()), None)


def resolve(text) -> Path | None:
    """The file a bundled name (`zoo:resnet18`, `homework:written_assignment_1.key`) stands for,
    or None when `text` is no such name, or is a path that exists."""
    text = str(text)
    match = _BUNDLED.match(text)
    if match is None or Path(text).exists():
        return None
    base = root()
    if base is None:
        return None
    category, name = match.groups()
    path = base / category / (name if name.endswith((".yaml", ".yml")) else f"{name}.yaml")
    return path if path.is_file() else None


def listing() -> dict[str, list[tuple[str, str]]]:
    """Category -> [(name, the spec's first comment line)], for `archcalc examples`."""
    base = root()
    out: dict[str, list[tuple[str, str]]] = {}
    if base is None:
        return out
    for category in CATEGORIES:
        rows = []
        for path in sorted((base / category).glob("*.yaml")):
            first = ""
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                if line.startswith("#"):
                    first = line.lstrip("# ").strip()
                    break
                if line.strip():
                    break
            rows.append((path.stem, first))
        out[category] = rows
    return out


def unknown_hint(text) -> str | None:
    """For a `zoo:NAME` that names no bundled spec: what there is (a did-you-mean)."""
    from archcalc.errors import did_you_mean

    match = _BUNDLED.match(str(text))
    if match is None:
        return None
    category, name = match.groups()
    names = [n for n, _ in listing().get(category, [])]
    if not names:
        return "no bundled specs are installed with this archcalc"
    return f"no bundled spec {text}{did_you_mean(name, names)}; `archcalc examples` lists them"
