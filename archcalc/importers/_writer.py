"""Write a list of imported layers as a spec a person would write: YAML with blocks and `repeat`.

An importer (PyTorch modules, ONNX graphs) gives `write_spec` the network as `Entry`s in execution
order: each has a kind, its arguments, the values it reads and the one it makes, and the scopes
(the module instances) it sits in, outermost first. The writer

- makes every scope a block instance named as the module is (`layer1`, `0`, `conv1`), so that the
  dotted spec names are the module's own (`layer1.0.conv1`, PyTorch's state_dict keys);
- gives scopes of one class and one structure one block, whose arguments are the values that
  differ between its instances (equal columns share an argument; a column that is a whole
  multiple of another is written as `4 * out`);
- chains equal consecutive block instances (that read only the previous one) into `repeat`;
- writes `from:` only where an entry does not read the previous one.

Nothing about PyTorch is imported here; names are checked against the spec's rules by the caller's
round trip (the spec is parsed before it is returned).
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction

from archcalc.errors import SpecError

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


@dataclass(frozen=True)
class Scope:
    """One call of a module that holds other layers: `key` is unique per call, `name` its local
    name in the enclosing scope (`layer1`, `0`), `cls` its class name (for block names)."""

    key: str
    name: str
    cls: str


@dataclass
class Entry:
    kind: str
    args: dict
    output: str  # the value it makes
    inputs: list  # the values it reads (the network input is `INPUT`)
    name: str | None = None  # local name in its innermost scope (None: the automatic name)
    scope: tuple = ()  # Scope, outermost first
    trainable: bool = True
    where: str = ""  # for messages: "layer1.0.conv1 (Conv2d)"
    bare: bool = False  # `bare: true`: its one tensor held by the enclosing block (ConvNeXt's layer_scale)


INPUT = "input"


@dataclass
class _Node:
    """A scope in the tree: its items are Entry or _Node."""

    scope: Scope | None
    items: list = field(default_factory=list)
    inputs: list = field(default_factory=list)  # values from outside, in first-use order
    output: str | None = None


def _hoist(entries: list[Entry]) -> None:
    """Unnamed layers (functions, weightless modules) that run between two modules of one list
    looped over (`for block in self.blocks: x = act(block(x))`) join that list's scope, where the
    loop puts them, so the list stays one scope; it holds no weights, so no name changes."""
    i = 0
    while i < len(entries):
        e = entries[i]
        j = i
        while j < len(entries) and entries[j].name is None and entries[j].scope == e.scope:
            j += 1
        if j > i and i > 0 and j < len(entries):
            k = len(e.scope)
            before, after = entries[i - 1].scope, entries[j].scope
            if (len(before) > k and len(after) > k and before[:k] == e.scope and after[:k] == e.scope
                    and before[k] == after[k] and before[k].key.startswith("container:")):
                for entry in entries[i:j]:
                    entry.scope = e.scope + (before[k],)
        i = max(j, i + 1)


def _tree(entries: list[Entry]) -> _Node:
    _hoist(entries)
    root = _Node(None)
    closed = set()
    for entry in entries:
        node = root
        for depth, scope in enumerate(entry.scope):
            last = node.items[-1] if node.items else None
            if isinstance(last, _Node) and last.scope.key == scope.key:
                node = last
                continue
            if scope.key in closed or any(isinstance(i, _Node) and i.scope.key == scope.key for i in node.items):
                raise SpecError(f"{entry.where}: the layers of '{scope.key.removeprefix('container:')}' ({scope.cls}) "
                                "do not run one after "
                                "another (another module's layers run between them); a spec block cannot hold them")
            if isinstance(last, _Node):
                _close(last, closed)
            child = _Node(scope)
            node.items.append(child)
            node = child
        last = node.items[-1] if node.items else None
        if isinstance(last, _Node):
            _close(last, closed)
        node.items.append(entry)
    return root


def _close(node: _Node, closed: set):
    closed.add(node.scope.key)
    for item in node.items:
        if isinstance(item, _Node):
            _close(item, closed)


def _fmt_float(value: float) -> str:
    text = repr(float(value))
    if "e" in text and "." not in text.split("e")[0]:
        mantissa, exponent = text.split("e")
        text = f"{mantissa}.0e{exponent}"
    return text


def _fmt(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _fmt_float(value)
    if isinstance(value, _Expr):
        return value.text if _WORD.fullmatch(value.text) else f'"{value.text}"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    if isinstance(value, str):
        plain = _WORD.fullmatch(value) and value.lower() not in ("true", "false", "yes", "no", "on", "off", "null")
        return value if plain else "'" + value.replace("'", "''") + "'"
    if value is None:
        return "null"
    raise TypeError(f"cannot write {value!r}")


def _fmt_name(name: str) -> str:
    return name if _WORD.fullmatch(name) or re.fullmatch(r"(0|[1-9][0-9]*)(\.\w+)*", name) else "'" + name + "'"


@dataclass(frozen=True)
class _Expr:
    """A block argument (or a whole multiple of one) in place of a value."""

    text: str


def snake_case(text: str) -> str:
    """`ResNet50` -> `res_net50`, `vit.b-16` -> `vit_b_16`: camel case split, lower case, every other
    character '_' (may be empty, or start with a digit or '_')."""
    text = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", text).lower()
    return re.sub(r"[^a-z0-9_]", "_", text)


def _snake(cls: str) -> str:
    """A block name from a class name: snake case, starting with a letter."""
    text = snake_case(cls).strip("_") or "block"
    return text if text[0].isalpha() else f"b_{text}"


def _is_index(name) -> bool:
    return isinstance(name, str) and re.fullmatch(r"0|[1-9][0-9]*", name) is not None


@dataclass
class _Row:
    entry: Entry | None  # an entry, or
    node: _Node | None  # a block instance (repeated `count` times)
    refs: list
    count: int = 1
    offset: int = 0  # where its values start in the scope's values
    count_pos: int | None = None


_REQUIRED = object()
try:  # the names expressions call (min, max, floor, ceil, round, shape): no argument may take one
    from archcalc.reader.parse import FUNCTIONS as _RESERVED_ARGS
except ImportError:  # pragma: no cover
    _RESERVED_ARGS = frozenset({"min", "max", "floor", "ceil", "round", "shape"})


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _key(value):
    return (type(value).__name__, repr(value))


def _ratio(base_col, col):
    """k where col == k * base_col for every member (k a whole number > 1), else None."""
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in tuple(base_col) + tuple(col)):
        return None
    if any(b == 0 for b in base_col):
        return None
    ratios = {Fraction(c, b) for b, c in zip(base_col, col)}
    if len(ratios) == 1:
        r = ratios.pop()
        if r.denominator == 1 and r > 1:
            return r.numerator
    return None


class _Writer:
    def __init__(self, entries: list[Entry], kinds):
        self.kinds = set(kinds)
        # every kind's arguments in order with their defaults (_REQUIRED: none), so that entries of
        # one kind compare argument by argument, defaults included (a stride 1 and a stride 2 conv
        # have one structure), and only values other than the default are written
        self.defaults = {}
        for kind, layer in (kinds.items() if isinstance(kinds, Mapping) else ()):
            self.defaults[kind] = {a.name: (_REQUIRED if a.required else a.default) for a in layer.args}
        self.readers: dict = {}
        for entry in entries:
            for value in entry.inputs:
                self.readers.setdefault(value, []).append(entry)
        self.groups: dict = {}  # signature -> members (nodes), in order of appearance
        self.block_name: dict = {}

    # --- bottom-up: rows, values, signature of every scope ---------------------------------------
    def build(self, node: _Node, outside: set):
        made_here = set()
        for item in node.items:
            if isinstance(item, _Node):
                self.build(item, outside | made_here)
            reads = item.inputs
            for value in reads:
                if node.scope is not None and value not in made_here and value not in node.inputs:
                    node.inputs.append(value)
            made_here |= {item.output} if isinstance(item, Entry) else set(self._made(item))
        node.made_all = made_here
        # rows, with equal consecutive instances numbered n, n+1, ... chained into a repeat
        rows, items, i = [], node.items, 0
        while i < len(items):
            item = items[i]
            count = 1
            if isinstance(item, _Node) and _is_index(item.scope.name):
                j = i + 1
                while (j < len(items) and isinstance(items[j], _Node) and items[j].sig == item.sig
                       and [_key(v) for v in items[j].vals] == [_key(v) for v in item.vals]
                       and items[j].inputs == [items[j - 1].output] and _is_index(items[j].scope.name)
                       and int(items[j].scope.name) == int(item.scope.name) + (j - i)
                       and self._private(items[j - 1], items[j])):
                    j += 1
                count = j - i
            rows.append(_Row(item if isinstance(item, Entry) else None, item if isinstance(item, _Node) else None,
                             [], count))
            i += count
        node.rows = rows
        # local names, as the parser gives them
        counters, names = {}, []
        for row in rows:
            if row.entry is not None:
                kind = row.entry.kind
                counters[kind] = counters.get(kind, 0) + 1
                names.append(row.entry.name if row.entry.name is not None else f"{kind}{counters[kind]}")
            else:
                names.append(row.node.scope.name)
        seen = set()
        for row, local in zip(rows, names):
            if local in seen or local == INPUT:
                if row.entry is not None and row.entry.name is None:
                    continue  # renamed below
                where = row.entry.where if row.entry else row.node.scope.key
                if local == INPUT:  # reader/parse.py: `input` names the network's (or a block's) input
                    raise SpecError(f"{where}: the name '{INPUT}' cannot be a spec layer's ('{INPUT}' names "
                                    "the input in a spec), so its state_dict keys cannot be kept")
                raise SpecError(f"{where}: two layers of one module are named '{local}'")
            seen.add(local)
        for k, (row, local) in enumerate(zip(rows, names)):  # an automatic name a module already has
            if row.entry is not None and row.entry.name is None and names.count(local) > 1:
                n = 2
                while f"{local}_{n}" in seen:
                    n += 1
                row.entry.name = names[k] = f"{local}_{n}"
                seen.add(names[k])
        # references and values
        input_names = [INPUT] if len(node.inputs) <= 1 else ["x"] + [f"x{k}" for k in range(1, len(node.inputs))]
        if node.scope is None:
            input_names = [INPUT]
        node.input_names = input_names
        ref_of = {v: input_names[k] for k, v in enumerate(node.inputs)} if node.scope is not None else {INPUT: INPUT}
        vals, val_names, struct = [], [], [node.scope.cls if node.scope else "", len(node.inputs)]
        previous = node.inputs[0] if node.scope is not None and node.inputs else INPUT
        for row, local in zip(rows, names):
            first = row.entry if row.entry is not None else row.node
            row.refs = [ref_of.get(v) or self._unnamed(first, v) for v in first.inputs]
            row.default_from = first.inputs == [previous]
            row.offset = len(vals)
            if row.entry is not None:
                e = row.entry
                row.arg_keys = self._keys(e)
                for key in row.arg_keys:
                    vals.append(e.args.get(key, self.defaults.get(e.kind, {}).get(key)))
                    val_names.append(key)
                # a block argument holds one value, not a list: lists stay in the structure
                lists = tuple((k, repr(v)) for k, v in zip(row.arg_keys, vals[row.offset:]) if isinstance(v, list))
                struct.append(("e", e.kind, e.name, row.arg_keys, tuple(row.refs) if not row.default_from else (),
                               e.trainable, lists, e.bare))
                ref_of[e.output] = local
                previous = e.output
            else:
                n = row.node
                vals.extend(n.vals)
                val_names.extend(n.val_names)
                if row.count > 1:
                    row.count_pos = len(vals)
                    vals.append(row.count)
                    val_names.append("n")
                struct.append(("b", n.sig, n.scope.name, tuple(row.refs) if not row.default_from else (),
                               row.count > 1))
                base = int(n.scope.name) if row.count > 1 else None
                for k in range(row.count):
                    copy = node.items[node.items.index(n) + k]
                    prefix = str(base + k) if base is not None else local
                    for value, ref in copy.ref_inside.items():
                        ref_of[value] = f"{prefix}.{ref}"
                    ref_of[copy.output] = prefix
                previous = node.items[node.items.index(n) + row.count - 1].output
        node.ref_inside = {v: r for v, r in ref_of.items() if v not in node.inputs and r != INPUT}
        node.vals, node.val_names = vals, val_names
        node.sig = tuple(struct)
        node.output = previous
        if node.scope is not None:
            self.groups.setdefault(node.sig, []).append(node)

    def _keys(self, e: Entry) -> tuple:
        known = self.defaults.get(e.kind, {})
        return tuple(known) + tuple(k for k in e.args if k not in known)

    def _made(self, node: _Node) -> set:
        out = set()
        for item in node.items:
            out |= {item.output} if isinstance(item, Entry) else self._made(item)
        return out

    def _private(self, earlier: _Node, later: _Node) -> bool:
        """Whether nothing outside `earlier` reads what it makes but its output, read by `later` only."""
        inside_later = set(id(e) for e in _entries(later))
        inside = set(id(e) for e in _entries(earlier))
        for value in self._made(earlier):
            for reader in self.readers.get(value, []):
                if id(reader) in inside:
                    continue
                if value != earlier.output or id(reader) not in inside_later:
                    return False
        return True

    @staticmethod
    def _unnamed(item, value):
        where = item.where if isinstance(item, Entry) else item.scope.key
        raise SpecError(f"{where}: reads a value made inside another module's repeated layers, which a spec "
                        f"cannot name ({value})")

    # --- blocks: one per signature; columns that differ become arguments -------------------------
    def blocks(self):
        taken = set()
        self.block_args, self.block_exprs = {}, {}
        for sig, members in self.groups.items():
            base = _snake(members[0].scope.cls)
            if members[0].scope.cls in ("Sequential", "ModuleList", "ModuleDict"):  # named as it is used
                base = _snake(re.sub(r"[0-9_]+$", "", members[0].scope.name) or "seq")
            if base in self.kinds:
                base = f"{base}_block"
            name, k = base, 2
            while name in taken or name in self.kinds:
                name, k = f"{base}_{k}", k + 1
            taken.add(name)
            self.block_name[sig] = name
            first = members[0]
            exprs, args, used = [], [], set()
            for pos in range(len(first.vals)):
                col = tuple(m.vals[pos] for m in members)
                if len({_key(v) for v in col}) == 1:
                    exprs.append(None)
                    continue
                found = None
                for arg, arg_col in args:
                    if [_key(v) for v in arg_col] == [_key(v) for v in col]:
                        found = _Expr(arg)
                        break
                    ratio = _ratio(arg_col, col)
                    if ratio is not None:
                        found = _Expr(f"{ratio} * {arg}")
                        break
                if found is None:
                    base_arg = re.sub(r"\W", "_", first.val_names[pos]) or "a"
                    arg, n = base_arg, 2
                    while arg in used or arg == INPUT or arg in _RESERVED_ARGS:
                        arg, n = f"{base_arg}{n}", n + 1
                    used.add(arg)
                    args.append((arg, col))
                    found = _Expr(arg)
                exprs.append(found)
            self.block_args[sig] = [(a, col[0], [p for p, e in enumerate(exprs) if e is not None and e.text == a][0])
                                    for a, col in args]
            self.block_exprs[sig] = exprs
            for m in members:
                m.call = {a: m.vals[p] for a, _, p in self.block_args[sig]}
            # what a caller sees: each member's call values replace its vals (only arguments vary)

    # --- text -----------------------------------------------------------------------------------
    def body(self, node: _Node, indent: str, exprs=None) -> list[str]:
        lines = []
        for row in node.rows:
            def value(pos, literal):
                e = exprs[pos] if exprs is not None else None
                return e if e is not None else literal
            parts = []
            if row.entry is not None:
                e = row.entry
                if e.name is not None:
                    parts.append(f"name: {_fmt_name(e.name)}")
                known = self.defaults.get(e.kind, {})
                args = {}
                for i, key in enumerate(row.arg_keys):
                    v = value(row.offset + i, e.args.get(key, known.get(key)))
                    default = known.get(key, _REQUIRED)
                    if isinstance(v, _Expr) or default is _REQUIRED or _key(v) != _key(default) and not (
                            _number(v) and _number(default) and float(v) == float(default)):
                        args[key] = v
                parts.append(_kind_text(e.kind, args))
            else:
                n = row.node
                call = {}
                for arg, default, pos in self.block_args[n.sig]:
                    v = value(row.offset + pos, n.vals[pos])
                    if isinstance(v, _Expr) or _key(v) != _key(default):
                        call[arg] = v
                parts.append(f"name: {_fmt_name(n.scope.name)}")
                parts.append(_kind_text(self.block_name[n.sig], call))
            if not row.default_from:
                parts.append("from: " + (_fmt_name(row.refs[0]) if len(row.refs) == 1
                                         else "[" + ", ".join(_fmt_name(r) for r in row.refs) + "]"))
            if row.count > 1:
                parts.append(f"repeat: {_fmt(value(row.count_pos, row.count))}")
            if row.entry is not None and not row.entry.trainable:
                parts.append("trainable: false")
            if row.entry is not None and row.entry.bare:
                parts.append("bare: true")
            lines.append(f"{indent}- " + ("{" + ", ".join(parts) + "}" if len(parts) > 1 else parts[0]))
        return lines

    def block_text(self) -> list[str]:
        lines = []
        for sig, members in self.groups.items():
            first = members[0]
            lines.append(f"  {self.block_name[sig]}:")
            if self.block_args[sig]:
                lines.append("    args: {" + ", ".join(f"{a}: {_fmt(d)}" for a, d, _ in self.block_args[sig]) + "}")
            if len(first.input_names) > 1:
                lines.append("    inputs: [" + ", ".join(first.input_names) + "]")
            lines.append("    layers:")
            lines.extend(self.body(first, "      ", self.block_exprs[sig]))
        return lines


def _entries(node: _Node):
    for item in node.items:
        if isinstance(item, Entry):
            yield item
        else:
            yield from _entries(item)


def _kind_text(kind: str, args: dict) -> str:
    if not args:
        return kind
    return f"{kind}: {{" + ", ".join(f"{k}: {_fmt(v)}" for k, v in args.items()) + "}"


def write_spec(entries: list[Entry], input_shape, *, name: str, header: list[str], kinds=()) -> str:
    """The spec's YAML text for `entries` (see the module docstring). `input_shape` is written as
    given (numbers or symbol names); `header` lines become the leading comment; `kinds` is the
    kind registry (archcalc.layers.KINDS): block names avoid its names, and arguments equal to a
    kind's default are left out."""
    if not entries:
        raise SpecError("the module computes nothing archcalc can write as a layer (its output is its input)")
    root = _tree(entries)
    writer = _Writer(entries, kinds)
    writer.build(root, set())
    writer.blocks()
    lines = [f"# {h}" for h in header]
    lines.append(f"name: {_fmt(name)}")
    lines.append(f"input: {_fmt(list(input_shape))}")
    if writer.groups:
        lines.append("blocks:")
        lines.extend(writer.block_text())
    lines.append("layers:")
    lines.extend(writer.body(root, "  "))
    return "\n".join(lines) + "\n"
