"""Safe YAML reading that keeps every value's line and column.

PyYAML's parser (libyaml where available) turns the text into events; we build plain values from
them ourselves, with an explicit stack (no recursion), so that:
- only the plain YAML types are allowed (no `!!python/...` or custom tags);
- the size is bounded before anything big is built: the text (MAX_SOURCE_BYTES), the values
  (MAX_VALUES), the nesting (MAX_DEPTH) and alias expansion ("billion laughs", MAX_ALIAS_EXPANSION);
- numbers are read as written (see `_scalar`): finite, at most 10^30 in magnitude, no YAML 1.1
  surprises (010 is not 8, 1:30 is not 90, yes/no/on/off are words);
- duplicate mapping keys are an error instead of silently dropping a value;
- every mapping and list remembers where each of its entries was written.
"""
from __future__ import annotations

import os
import re
import stat

import yaml

from archcalc.errors import Loc, SpecError
from archcalc.reader.expr import MAX_MAGNITUDE, too_large  # one bound for YAML numbers and expressions

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

#: Largest spec, answers or config file (and text given to `load_yaml`): a 100,000-layer spec
#: written out one line per layer is about 4 MB.
MAX_SOURCE_BYTES = 16 * 1024 * 1024
#: Values (scalars, lists and mappings) in one document, before aliases are expanded.
MAX_VALUES = 2_000_000
#: Lists and mappings nested in one another.
MAX_DEPTH = 100
#: Values that re-visiting aliased content may produce. Real specs share small blocks; a document
#: whose aliases expand beyond this is refused.
MAX_ALIAS_EXPANSION = 100_000
#: Longest number literal read (10^30 has 31 digits; the rest is room for signs, `_` and zeros).
MAX_LITERAL_CHARS = 100

_TAG = "tag:yaml.org,2002:"
# Python's integer literals, which YAML 1.2 agrees with: no leading zeros (YAML 1.1 reads 010 as
# octal 8), no base 60 (YAML 1.1 reads 1:30 as 90), `_` only between digits.
_INT = re.compile(r"[-+]?(0|[1-9](_?[0-9])*|0[xX](_?[0-9a-fA-F])+|0[bB](_?[01])+|0[oO](_?[0-7])+)\Z")
_NOT_FINITE = re.compile(r"[-+]?\.(inf|nan)\Z", re.IGNORECASE)
_MERGE = object()  # a `<<` key


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


_FILE_KINDS = ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
               (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder"))


def plain(value):
    """YMap/YList -> dict/list, recursively (for JSON, messages and settings)."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def kind_of(mode: int) -> str:
    """'a FIFO', 'a symbolic link', ... for a non-regular st_mode."""
    return next((name for test, name in _FILE_KINDS if test(mode)), "not a regular file")


#: Where a path goes, `-` is the standard input (as for cat, pip -r, python -); its text is named
#: `<stdin>` in locations (`<stdin>:3:5: error: ...`). A file really called `-` is `./-`.
STDIN = "-"
STDIN_NAME = "<stdin>"


def source_name(path) -> str:
    """The name a file's mistakes are located in: the path as given, `<stdin>` for `-`."""
    return STDIN_NAME if str(path) == STDIN else str(path)


_STDIN_READ: list = []  # (the stream, its text): a spec read twice (check, train) reads stdin once


def _read_stdin(what: str, limit: int | None) -> str:
    """The standard input's text, under the same size limit and the same UTF-8 check as a file's.
    It is read once: a later read of `-` from the same stream gets the same text."""
    import sys

    limit = MAX_SOURCE_BYTES if limit is None else limit
    stream = getattr(sys.stdin, "buffer", sys.stdin)
    if stream is None:
        raise SpecError(f"-: there is no standard input to read the {what} from")
    if _STDIN_READ and _STDIN_READ[0][0] is stream:
        return _STDIN_READ[0][1]
    text = _read_stream(stream, what, limit)
    _STDIN_READ[:] = [(stream, text)]
    return text


def _read_stream(stream, what: str, limit: int) -> str:
    try:
        data = stream.read(limit + 1)
    except (OSError, ValueError) as exc:  # closed, or not readable
        raise SpecError(f"-: cannot read the {what} from the standard input: {getattr(exc, 'strerror', None) or exc}"
                        ) from None
    if isinstance(data, str):  # a text stream without a buffer (an embedding program's)
        data = data.encode("utf-8", "surrogateescape")
    if len(data) > limit:
        raise SpecError(f"{STDIN_NAME}: the {what} is larger than the limit of {limit:,} bytes ({limit / 2**20:g} MiB)")
    if not data.strip():
        raise SpecError(f"{STDIN_NAME}: the standard input is empty; expected a YAML {what}")
    return _utf8(data, STDIN_NAME)


def _utf8(data: bytes, shown: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        prefix = data[:exc.start].decode("utf-8")
        line, col = prefix.count("\n") + 1, len(prefix) - (prefix.rfind("\n") + 1) + 1
        raise SpecError(f"the file is not UTF-8 text: byte {data[exc.start]:#04x} cannot be read",
                        Loc(shown, line, col)) from None


def read_source(path, what: str = "spec", limit: int | None = None) -> str:
    """A YAML file's text; a missing, unreadable, non-regular (device, FIFO) or oversized file is
    a one-line SpecError. The file is opened without blocking and checked before it is read, and
    at most `limit` (default MAX_SOURCE_BYTES) + 1 bytes are read. `-` reads the standard input
    (the same limit; name it in locations with `source_name`)."""
    from pathlib import Path

    if str(path) == STDIN:
        return _read_stdin(what, limit)
    path = Path(path)
    shown = str(path) if str(path).isprintable() else repr(str(path))  # one line, whatever the name
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise SpecError(f"{shown}: no such file") from None
    except IsADirectoryError:
        raise SpecError(f"{shown}: is a directory, expected a YAML {what} file") from None
    except OSError as exc:
        raise SpecError(f"{shown}: cannot read: {exc.strerror or exc}") from None
    except ValueError:  # a NUL in the path
        raise SpecError(f"{shown}: cannot read: the path holds a NUL character") from None
    try:  # a directory opens read-only on Linux, and os.fdopen refuses it: look before wrapping the fd
        is_dir = stat.S_ISDIR(os.fstat(fd).st_mode)
    except OSError:
        is_dir = False
    if is_dir:
        os.close(fd)
        raise SpecError(f"{shown}: is a directory, expected a YAML {what} file")
    with os.fdopen(fd, "rb") as handle:
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise SpecError(f"{shown}: is {kind_of(info.st_mode)}, not a regular file; "
                                f"expected a YAML {what} file")
            limit = MAX_SOURCE_BYTES if limit is None else limit
            too_big = f"{shown}: the {what} file is larger than the limit of {limit:,} bytes ({limit / 2**20:g} MiB)"
            if info.st_size > limit:
                raise SpecError(too_big)
            data = handle.read(limit + 1)  # the file may have grown since
        except OSError as exc:
            raise SpecError(f"{shown}: cannot read: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise SpecError(too_big)
    return _utf8(data, shown)


def _loc(filename: str, mark) -> Loc:
    return Loc(filename, mark.line + 1, mark.column + 1)


def _one_line(text) -> str:
    return " ".join(str(text).split())


def load_yaml(text: str, filename: str):
    """Parse YAML text into YMap/YList/scalars, raising SpecError with a location on any problem."""
    if len(text) > MAX_SOURCE_BYTES:
        raise SpecError(f"the text is longer than the limit of {MAX_SOURCE_BYTES:,} characters",
                        Loc(filename, 1, 1))
    loader = _Loader(text)
    try:
        return _Builder(loader, filename, text).document()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        if exc.context and exc.problem:
            problem = f"{exc.context}: {exc.problem}" if "while" not in exc.context else exc.problem
        raise SpecError(f"invalid YAML: {_one_line(problem)}",
                        _loc(filename, mark) if mark else Loc(filename, 1, 1)) from None
    except yaml.reader.ReaderError as exc:  # a control character in the text itself
        prefix = text.encode("utf-8")[:exc.position].decode("utf-8", "replace")  # position counts bytes
        line = prefix.count("\n") + 1
        col = len(prefix) - (prefix.rfind("\n") + 1) + 1
        what = repr(chr(exc.character)) if isinstance(exc.character, int) else repr(exc.character)
        raise SpecError(f"invalid YAML: the character {what} is not allowed in YAML text", Loc(filename, line, col)) \
            from None
    except yaml.YAMLError as exc:
        raise SpecError(f"invalid YAML: {_one_line(exc)}", Loc(filename, 1, 1)) from None
    finally:
        loader.dispose()


class _Open:
    """A list or mapping being read: its value, where it starts, its anchor, and for a mapping the
    key waiting for its value and the `<<` merges. `height`/`count`: nesting and values inside."""

    __slots__ = ("value", "loc", "anchor", "key", "key_loc", "merged", "height", "count", "flow")

    def __init__(self, value, loc, anchor):
        self.value, self.loc, self.anchor = value, loc, anchor
        self.key = self.key_loc = None
        self.merged = []
        self.height, self.count = 1, 1
        self.flow = False  # written {...} or [...]: unquoted text there ends at every comma


_WAITING = object()  # a mapping frame expecting a key


class _Builder:
    def __init__(self, loader, filename: str, text: str = ""):
        self.loader = loader
        self.file = filename
        self.text = text  # the source, to show an expression a flow mapping cut at a comma
        self.anchors: dict = {}  # name -> (value, height, count), or None while being read
        self.values = 0
        self.alias_budget = MAX_ALIAS_EXPANSION

    def document(self):
        ld = self.loader
        ld.get_event()  # stream start
        if ld.check_event(yaml.StreamEndEvent):
            return None
        ld.get_event()  # document start
        value = self._node()
        ld.get_event()  # document end
        if not ld.check_event(yaml.StreamEndEvent):
            event = ld.get_event()
            raise SpecError("expected a single YAML document, but found another", _loc(self.file, event.start_mark))
        return value

    def _count(self, loc):
        self.values += 1
        if self.values > MAX_VALUES:
            raise SpecError(f"the document holds more than {MAX_VALUES:,} values; refusing to read further", loc)

    def _node(self):
        """Read one value (and everything inside it) from the events."""
        stack: list[_Open] = []
        while True:
            event = self.loader.get_event()
            loc = _loc(self.file, event.start_mark)
            if isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
                frame = stack.pop()
                value, loc, height, count = self._close(frame), frame.loc, frame.height, frame.count
                if frame.anchor is not None:
                    self.anchors[frame.anchor] = (value, height, count)
            elif isinstance(event, yaml.AliasEvent):
                value, height, count = self._alias(event, loc, len(stack))
            elif isinstance(event, yaml.ScalarEvent):
                self._count(loc)
                if stack and stack[-1].flow and not event.style:  # plain (unquoted) text in {...} or [...]
                    self._check_not_cut(event, loc, stack[-1])
                value, height, count = self._scalar(event, loc), 0, 1
                if event.anchor is not None:
                    self._check_anchor(event.anchor, loc)
                    self.anchors[event.anchor] = (value, 0, 1)
            else:  # a list or mapping starts
                self._count(loc)
                if len(stack) >= MAX_DEPTH:
                    raise SpecError(f"lists and mappings are nested more than {MAX_DEPTH} deep", loc)
                stack.append(self._open(event, loc))
                continue
            if not stack:
                return "<<" if value is _MERGE else value
            parent = stack[-1]
            parent.height = max(parent.height, height + 1)
            parent.count += count
            self._add(parent, value, loc)

    def _open(self, event, loc) -> _Open:
        is_seq = isinstance(event, yaml.SequenceStartEvent)
        tag = event.tag
        want = _TAG + ("seq" if is_seq else "map")
        if tag not in (None, "!", want):
            raise SpecError(f"YAML tag '{tag}' is not allowed; specs use plain YAML values only", loc)
        if event.anchor is not None:
            self._check_anchor(event.anchor, loc)
            self.anchors[event.anchor] = None  # being read: an alias to it now would be recursive
        value = YList() if is_seq else YMap()
        value.loc = loc
        if is_seq:
            value.item_locs = []
        else:
            value.key_locs, value.value_locs = {}, {}
        frame = _Open(value, loc, event.anchor)
        frame.key = None if is_seq else _WAITING
        frame.flow = bool(event.flow_style)
        return frame

    def _check_not_cut(self, event, loc, frame: _Open):
        """Refuse a plain scalar that opens more parentheses than it closes and ends at a comma:
        YAML ended it there, cutting an expression such as `{sq: max(1, c // 4)}` into the key
        `sq: max(1` and the key ` c // 4)`."""
        text = event.value
        if text.count("(") <= text.count(")"):
            return
        source, end = self.text, event.end_mark.index
        while end < len(source) and source[end] in " \t\r\n":
            end += 1
        if end >= len(source) or source[end] != ",":
            return  # not cut: unbalanced text, which an expression will refuse as it parses it
        start, depth, stop = event.start_mark.index, 0, None
        for i in range(start, min(len(source), start + 200)):  # the whole expression, as written
            depth += {"(": 1, ")": -1}.get(source[i], 0)
            if source[i] in "{}[]" or depth == 0 and source[i] == ")":
                stop = i + 1 if source[i] == ")" else None
                break
        whole = " ".join(source[start:stop].split()) if stop else f"{text}, ..."
        where = "mapping {...}" if isinstance(frame.value, YMap) else "list [...]"
        key = f"{frame.key}: " if isinstance(frame.value, YMap) and frame.key is not _WAITING \
            and isinstance(frame.key, str) else ""
        raise SpecError(f"{text!r} is cut at a comma: in a YAML flow {where} unquoted text ends at every comma; "
                        f"quote the expression: {key}\"{whole}\"", loc)

    def _check_anchor(self, anchor, loc):
        if anchor in self.anchors:
            raise SpecError(f"anchor '&{anchor}' is defined twice", loc)

    def _add(self, frame: _Open, value, loc):
        out = frame.value
        if value is _MERGE and frame.key is not _WAITING:
            value = "<<"  # only a key merges; elsewhere `<<` is the text written
        if isinstance(out, YList):
            out.append(value)
            out.item_locs.append(loc)
            return
        if frame.key is _WAITING:
            if isinstance(value, (YMap, YList)):
                raise SpecError("a mapping key must be a plain value", loc)
            if value is not _MERGE and value in out:
                first = out.key_locs[value]
                shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
                raise SpecError(f"duplicate key {shown} (first given at line {first.line})", loc)
            frame.key, frame.key_loc = value, loc
            return
        key, frame.key = frame.key, _WAITING
        if key is _MERGE:
            frame.merged.append((value, loc))
            return
        out[key] = value
        out.key_locs[key] = frame.key_loc
        out.value_locs[key] = loc

    def _close(self, frame: _Open):
        out = frame.value
        # YAML merge keys (`<<: *base`): explicit keys win, as in YAML's own rules.
        for source, loc in frame.merged:
            for part in source if isinstance(source, YList) else [source]:
                if not isinstance(part, YMap):
                    raise SpecError("'<<' must merge a mapping or a list of mappings", loc)
                for key, value in part.items():
                    if key not in out:
                        out[key] = value
                        out.key_locs[key] = part.key_locs[key]
                        out.value_locs[key] = part.value_locs[key]
        return out

    def _alias(self, event, loc, depth):
        if event.anchor not in self.anchors:
            raise SpecError(f"alias '*{event.anchor}' names no anchor defined before it", loc)
        known = self.anchors[event.anchor]
        if known is None:
            raise SpecError(f"alias '*{event.anchor}' refers to the list or mapping it is in; "
                            "recursive aliases are not allowed", loc)
        value, height, count = known
        if depth + height > MAX_DEPTH:
            raise SpecError(f"alias '*{event.anchor}' nests lists and mappings more than {MAX_DEPTH} deep", loc)
        self.alias_budget -= count
        if self.alias_budget < 0:
            raise SpecError(f"YAML aliases expand to more than {MAX_ALIAS_EXPANSION:,} values; "
                            "refusing to expand further (is this a 'billion laughs' document?)", loc)
        return _copy(value), height, count

    # --- scalars ------------------------------------------------------------------------------
    def _scalar(self, event, loc):
        """A plain scalar's value, read as written:
        - `true`/`false` (any case) are booleans; YAML 1.1's yes/no/on/off stay words;
        - integers as Python writes them (10, -3, 1_000, 0x10, 0b11, 0o17); YAML 1.1's 010 (octal
          8) and 1:30 (base 60: 90) stay text, which a number field then refuses;
        - floats must be finite (.nan, .inf, 1.0e+400 are refused), at most 10^30 in magnitude,
          and not so small that they would be read as 0;
        - null, `~` and nothing are None; a date is text.
        Quoted scalars are always text."""
        tag = event.tag
        text = event.value
        if tag not in (None, "!"):
            if not tag.startswith(_TAG) or tag[len(_TAG):] not in ("str", "int", "float", "bool", "null"):
                raise SpecError(f"YAML tag '{tag}' is not allowed; specs use plain YAML values only", loc)
            if tag == _TAG + "str":
                return text
        else:
            tag = self.loader.resolve(yaml.ScalarNode, text, event.implicit)
        kind = tag[len(_TAG):] if tag.startswith(_TAG) else ""
        if kind == "null":
            return None
        if kind == "bool":
            return text.lower() == "true" if text.lower() in ("true", "false") else text
        if kind == "int":
            return _integer(text, loc)
        if kind == "float":
            return _float(text, loc)
        if kind == "merge":
            return _MERGE
        return text  # str, timestamp, YAML 1.1's `=`: the text written


def _integer(text: str, loc):
    if not _INT.match(text):
        return text
    if len(text) > MAX_LITERAL_CHARS:
        raise SpecError(f"the integer {text[:12]}... ({len(text):,} characters) is larger than the limit of "
                        "10^30", loc)
    value = int(text.replace("_", ""), 0)
    if abs(value) > MAX_MAGNITUDE:
        raise SpecError(f"the integer {text} is larger than the limit of 10^30", loc)
    return value


def _float(text: str, loc):
    if _NOT_FINITE.match(text):
        raise SpecError(f"{text} is not a finite number; numbers must be finite", loc)
    if ":" in text:  # YAML 1.1's base 60 (1:30.5): the text written
        return text
    if len(text) > MAX_LITERAL_CHARS:
        raise SpecError(f"the number {text[:12]}... is {len(text):,} characters long, more than the "
                        f"limit of {MAX_LITERAL_CHARS}", loc)
    try:
        value = float(text)
    except ValueError:  # YAML 1.1 allows `_` where Python does not (1__0.5): the text written
        return text
    if too_large(value):
        raise SpecError(f"the number {text} is larger than the limit of 10^30", loc)
    mantissa = text.lower().split("e")[0]
    if value == 0 and any(c in "123456789" for c in mantissa):
        raise SpecError(f"the number {text} is too small to represent: it would be read as 0", loc)
    return value


def _copy(value):
    """A fresh copy of an aliased value (nesting bounded by MAX_DEPTH), locations kept."""
    if isinstance(value, YList):
        out = YList(_copy(v) for v in value)
        out.loc, out.item_locs = value.loc, list(value.item_locs)
        return out
    if isinstance(value, YMap):
        out = YMap((k, _copy(v)) for k, v in value.items())
        out.loc, out.key_locs, out.value_locs = value.loc, dict(value.key_locs), dict(value.value_locs)
        return out
    return value
