"""The specs that ship with archcalc, by name: `zoo:resnet18` is specs/zoo/resnet18.yaml wherever
archcalc runs. In the source tree they are its specs/ folder; an installed wheel carries them as
data files under `<prefix>/share/archcalc/specs` (pyproject.toml's data-files), <prefix> being the
data folder of the install scheme that holds the package (a venv's, the system's, or ~/.local for
`pip install --user`). A name whose file exists where the user is (a folder called `zoo:resnet18`)
is theirs, not a bundled spec."""
from __future__ import annotations

import re
import sys
import sysconfig
from pathlib import Path

CATEGORIES = ("zoo", "transformers", "lecture", "homework", "sequence")
_BUNDLED = re.compile(rf"({'|'.join(CATEGORIES)}):([A-Za-z0-9_][A-Za-z0-9_.-]*)\Z")


def _own_data_dirs(site: Path) -> list[str]:
    """The `data` folder of each install scheme whose library folder is `site`, the one holding this
    archcalc: `pip install --user` puts the package under ~/.local/lib/... and the data files
    under ~/.local/share (the user scheme), which neither the default scheme nor sys.prefix is."""
    found = []
    for scheme in sysconfig.get_scheme_names():
        try:
            paths = sysconfig.get_paths(scheme)
        except (KeyError, ValueError, TypeError):  # a scheme this platform cannot expand
            continue
        libs = [paths.get(key) for key in ("purelib", "platlib")]
        if paths.get("data") and any(lib and Path(lib).resolve() == site for lib in libs):
            found.append(paths["data"])
    return found


def root() -> Path | None:
    """The folder holding the bundled specs (one folder per category), or None."""
    site = Path(__file__).resolve().parents[2]  # the source tree, or the site-packages holding archcalc
    bases = [sysconfig.get_paths().get("data"), sys.prefix]
    candidates = [site / "specs"] + [Path(base) / "share" / "archcalc" / "specs" for base in bases if base]
    if not any((c / "zoo").is_dir() for c in candidates):
        candidates = [Path(base) / "share" / "archcalc" / "specs" for base in _own_data_dirs(site)]
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


_SENTENCE_END = re.compile(r"(?<!\bal)(?<!\be\.g)(?<!\bi\.e)\.\s+(?=[A-Z])")


def summary(text: str) -> str:
    """What a spec file says it is, in one sentence: the first sentence of its leading comment's
    first paragraph (lines joined, so a sentence is not cut at a line break; an indented `#   `
    line, a formula or a command, ends the paragraph), else of its top-level `description:` (the
    transformer and sequence specs have no leading comment), else ''."""
    words: list[str] = []
    for line in text.splitlines():
        if not line.startswith("#"):
            if line.strip() or words:
                break  # the spec begins, or the comment ended
            continue
        body = line[1:]
        if not body.strip() or (words and body.startswith("  ")):
            if words:
                break
            continue
        words.append(body.strip())
    said = " ".join(words)
    if not said:
        from archcalc.reader.yaml_source import load_yaml

        try:
            doc = load_yaml(text, "spec")
        except ValueError:
            return ""
        described = doc.get("description") if isinstance(doc, dict) else None
        said = described if isinstance(described, str) else ""
    said = " ".join(said.split())
    end = _SENTENCE_END.search(said)
    return (said[:end.start() + 1] if end else said).rstrip(":")


def listing() -> dict[str, list[tuple[str, str]]]:
    """Category -> [(name, what the spec says it is: summary())], for `archcalc examples`."""
    base = root()
    out: dict[str, list[tuple[str, str]]] = {}
    if base is None:
        return out
    for category in CATEGORIES:
        out[category] = [(path.stem, summary(path.read_text(encoding="utf-8", errors="replace")))
                         for path in sorted((base / category).glob("*.yaml"))]
    return out


def locate(path):
    """`path` itself, or the bundled file a name such as `zoo:resnet18` or
    `homework:written_assignment_1.key` stands for (specs, answer keys and answers files alike);
    a SpecError saying what there is for a bundled-looking name that names none."""
    found = resolve(path)
    if found is None and (hint := unknown_hint(path)) is not None and not Path(str(path)).exists():
        from archcalc.errors import SpecError

        raise SpecError(hint)
    return found or path


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
