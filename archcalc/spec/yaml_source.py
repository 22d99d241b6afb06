"""Safe YAML reading that keeps every value's line and column.

PyYAML composes the document into nodes (linear in the file's size even for aliases, since an alias
is a shared node). We then turn nodes into plain values ourselves, so that:
- only the plain YAML types are allowed (no `!!python/...` or custom tags);
- alias expansion is bounded ("billion laughs" fails fast, small);
- duplicate mapping keys are an error instead of silently dropping a value;
- every mapping and list remembers where each of its entries was written.
"""
from __future__ import annotations

import yaml

from archcalc.errors import Loc, SpecError

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

#: Nodes that may be produced by re-visiting aliased content. Real specs share small blocks; a
#: document whose aliases expand beyond this is refused.
MAX_ALIAS_EXPANSION = 100_000

_PLAIN_TAGS = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
}


class YMap(dict):
    """A mapping from the spec; `loc` is where it starts, `key_locs`/`value_locs` per key."""

    __slots__ = ("loc", "key_locs", "value_locs")

    def where(self, key) -> Loc:
        """Location of the value under `key`, or of the mapping when the key is absent."""
        return self.value_locs.get(key, self.loc)


class YList(list):
    """A sequence from the spec; `loc` is where it starts, `item_locs` per item."""

    __slots__ = ("loc", "item_locs")

    def where(self, index: int) -> Loc:
        return self.item_locs[index] if 0 <= index < len(self.item_locs) else self.loc


def read_source(path, what: str = "spec") -> str:
    """A YAML file's text; a missing or unreadable file is a one-line SpecError."""
    from pathlib import Path

    path = Path(path)
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise SpecError(f"{path}: is a directory, expected a YAML {what} file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"{path}: cannot read: {exc}") from None


def _loc(filename: str, mark) -> Loc:
    return Loc(filename, mark.line + 1, mark.column + 1)


def load_yaml(text: str, filename: str):
    """Parse YAML text into YMap/YList/scalars, raising SpecError with a location on any problem."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        if exc.context and exc.problem:
            problem = f"{exc.context}: {exc.problem}" if "while" not in exc.context else exc.problem
        raise SpecError(f"invalid YAML: {problem}", _loc(filename, mark) if mark else Loc(filename, 1, 1))
    except yaml.YAMLError as exc:
        raise SpecError(f"invalid YAML: {exc}", Loc(filename, 1, 1))
    finally:
        loader.dispose()
    if node is None:
        return None
    return _Converter(loader, filename).convert(node)


class _Converter:
    def __init__(self, loader, filename: str):
        self.loader = loader
        self.filename = filename
        self.seen: set[int] = set()
        self.alias_budget = MAX_ALIAS_EXPANSION

    def convert(self, node, via_alias: bool = False):
        if id(node) in self.seen:
            via_alias = True
        else:
            self.seen.add(id(node))
        if via_alias:
            self.alias_budget -= 1
            if self.alias_budget < 0:
                raise SpecError(
                    f"YAML aliases expand to more than {MAX_ALIAS_EXPANSION:,} values; "
                    "refusing to expand further (is this a 'billion laughs' document?)",
                    _loc(self.filename, node.start_mark),
                )
        loc = _loc(self.filename, node.start_mark)
        if isinstance(node, yaml.ScalarNode):
            if node.tag not in _PLAIN_TAGS:
                raise SpecError(f"YAML tag '{node.tag}' is not allowed; specs use plain YAML values only", loc)
            try:
                return self.loader.construct_object(node)
            except yaml.YAMLError as exc:  # e.g. an unreadable number
                raise SpecError(f"invalid YAML value {node.value!r}: {exc}", loc)
        if isinstance(node, yaml.SequenceNode):
            if node.tag != "tag:yaml.org,2002:seq":
                raise SpecError(f"YAML tag '{node.tag}' is not allowed; specs use plain YAML values only", loc)
            out = YList(self.convert(item, via_alias) for item in node.value)
            out.loc = loc
            out.item_locs = [_loc(self.filename, item.start_mark) for item in node.value]
            return out
        if node.tag != "tag:yaml.org,2002:map":
            raise SpecError(f"YAML tag '{node.tag}' is not allowed; specs use plain YAML values only", loc)
        out = YMap()
        out.loc = loc
        out.key_locs = {}
        out.value_locs = {}
        merged = []
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                merged.append(self.convert(value_node, via_alias))
                continue
            key = self.convert(key_node, via_alias)
            key_loc = _loc(self.filename, key_node.start_mark)
            if isinstance(key, (YMap, YList)):
                raise SpecError("a mapping key must be a plain value", key_loc)
            if key in out:
                first = out.key_locs[key]
                raise SpecError(f"duplicate key '{key}' (first given at line {first.line})", key_loc)
            out[key] = self.convert(value_node, via_alias)
            out.key_locs[key] = key_loc
            out.value_locs[key] = _loc(self.filename, value_node.start_mark)
        # YAML merge keys (`<<: *base`): explicit keys win, as in YAML's own rules.
        for source in merged:
            sources = source if isinstance(source, YList) else [source]
            for part in sources:
                if not isinstance(part, YMap):
                    raise SpecError("'<<' must merge a mapping or a list of mappings", loc)
                for key, value in part.items():
                    if key not in out:
                        out[key] = value
                        out.key_locs[key] = part.key_locs[key]
                        out.value_locs[key] = part.value_locs[key]
        return out
