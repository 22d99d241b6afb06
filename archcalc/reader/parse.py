"""Turn a spec document (YAML) into a validated `Graph`: blocks expanded, repeats unrolled,
names given, `from` references resolved, arguments checked against each kind's schema.

Naming rule (other features refer to layers by these names):
- an entry is named by its `name:`, else by its kind plus a counter of entries of that kind in the
  same scope, counted from 1 in order of appearance, named entries included (`conv1`, `relu2`);
- a scope is the top-level list or one block instance; names inside a block instance are prefixed
  with the instance's name (`basic1.main`);
- `repeat: N` makes copies `NAME.1` .. `NAME.N`; `NAME` itself refers to the last copy;
  `start: K` beside it numbers them `NAME.K` .. `NAME.K+N-1` (`start: 0`: PyTorch's numbering);
- a `name:` may be a number >= 0, an nn.Sequential index (`layer1.0.conv1`); a repeated entry
  named by a number K places its copies as the entries K .. K+N-1 of its own list.
"""
from __future__ import annotations

import gc
import re
from contextlib import contextmanager
from pathlib import Path

from archcalc.errors import Loc, SpecError, did_you_mean
from archcalc.layers import KINDS
from archcalc.layers.base import Arg, Layer, arity_error
from archcalc.reader.expr import FUNCTIONS, SHAPE_READER, ExprError, evaluate, names_in
from archcalc.reader.symbols import CONSTRAINT_KEYS, is_symbolic
from archcalc.reader.symbols import make as symbols_make
from archcalc.reader.graph import INPUT, Graph, NetInput, Node
from archcalc.reader.yaml_source import YList, YMap, load_yaml, read_source, source_name

TOP_KEYS = ("name", "description", "input", "inputs", "symbols", "vars", "blocks", "layers")
BLOCK_KEYS = ("args", "inputs", "layers", "description")
RESERVED = ("name", "from", "repeat", "start", "trainable", "bare")
_BESIDE = ", ".join(f"'{k}'" for k in RESERVED[:-1]) + f" and '{RESERVED[-1]}'"  # for messages
MAX_REPEAT = 100_000
MAX_NODES = 1_000_000
#: Layers analysed with symbolic sizes: each costs sympy about a millisecond, so a network with
#: sizes left as symbols is kept to homework scale (with --set the limit is MAX_NODES).
MAX_SYMBOLIC_LAYERS = 5_000
MAX_BLOCK_DEPTH = 50  # block instances inside one another
MAX_NAME = 100  # characters of a name the user writes (layer, block, symbol, var)
MAX_LABEL = 200  # characters of the spec's `name`
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# A layer's name may also hold hyphens between its words (torchvision's RegNet: `block1-0`), so
# that modules named so keep their state_dict keys; block, var and symbol names may not (they are
# read in expressions, where `-` subtracts).
_LAYER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(-[A-Za-z0-9_]+)*\Z")
_REF = re.compile(r"([A-Za-z_][A-Za-z0-9_]*(-[A-Za-z0-9_]+)*|0|[1-9][0-9]*)(\.[A-Za-z0-9_]+(-[A-Za-z0-9_]+)*)*\Z")  # a `from` reference: basic1.main, 0.conv1
_INDEX = re.compile(r"(0|[1-9][0-9]*)\Z")  # a layer named by a number: an nn.Sequential index (layer1.0.conv1)
MAX_INDEX = 10**9  # the largest number a layer may be named by (copies of a repeat included)
_BASE_60 = re.compile(r"[-+]?[0-9][0-9_]*(:[0-5]?[0-9])+(\.[0-9_]*)?\Z")  # YAML 1.1 reads 1:30 as 90
_WORD_BOOLS = ("yes", "no", "on", "off", "y", "n")


def load_spec(path, input_shape=None, bindings=None, multiples=None) -> Graph:
    """Read and validate a spec file. `input_shape` overrides the spec's `input`; `bindings`
    gives numbers to symbols or vars (`--set H=28`); `multiples` adds `multiple_of` constraints."""
    from archcalc.reader import bundled

    path = bundled.locate(path)  # `zoo:resnet18`: a spec that ships with archcalc
    text = read_source(path, "spec")
    return parse_spec(text, source_name(path), input_shape=input_shape, bindings=bindings, multiples=multiples)


def parse_spec(text: str, filename: str = "<spec>", input_shape=None, bindings=None, multiples=None) -> Graph:
    # Reading allocates many small objects and frees none; pausing the cyclic garbage collector
    # keeps the cost per layer flat (with it, a 100k-layer spec took twice as long per layer).
    with gc_paused():
        doc = load_yaml(text, filename)
        if not isinstance(doc, YMap):
            raise SpecError("a spec is a YAML mapping with at least 'input' and 'layers'", Loc(filename, 1, 1))
        return _SpecBuilder(doc, filename).build(input_shape, bindings or {}, multiples or {})


@contextmanager
def gc_paused():
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class _Scope:
    """One list of entries being expanded: the top level or a block instance."""

    def __init__(self, prefix: str, values: dict, input_ref: str, named: dict | None = None):
        self.prefix = prefix  # "" or "basic1."
        self.values = values  # names usable in expressions
        self.refs: dict[str, object] = {INPUT: input_ref}  # local name -> node name or _Instance
        # The scope's inputs by name (the network's `inputs:`, a block's `inputs: [x, memory]`);
        # `input` is the first of them.
        self.inputs = dict(named or {})
        self.refs.update(self.inputs)

    def full(self, local: str) -> str:
        return self.prefix + local


class _Instance:
    """A block instance or a repeated entry: has an output and named parts."""

    __slots__ = ("output", "parts")

    def __init__(self, output: str, parts: dict):
        self.output = output
        self.parts = parts


class _ShapeReader:
    """shape(NAME, dim) inside a block instance: NAME is its `input` (or one of its named inputs)
    or an earlier entry of the block, by the names `from` takes.

    Shapes are needed while the spec is expanded (a width is an argument, and arguments are plain
    numbers in the graph), so they are computed then, eagerly but only on demand: the first
    shape() asks every kind placed so far for its output shape by its own rule (`output_shape`,
    the one the analysis uses, symbolic sizes included), in order, remembering them; later ones
    continue from there. A spec that never calls shape() pays nothing; one that does pays one
    pass of shape rules over the layers before the last one read. (Deferring the value to the
    analysis would leave arguments unknown in the graph, for every consumer: build, export,
    explain.)"""

    __slots__ = ("builder", "refs")

    def __init__(self, builder, refs: dict):
        self.builder = builder
        self.refs = refs

    def __call__(self, name: str) -> tuple:
        if name not in self.refs:
            raise ExprError(f"shape({name}, ...): '{name}' is neither this block's input nor an earlier layer of it"
                            f"{did_you_mean(name, self.refs)}")
        target = self.refs[name]
        return self.builder.shape_of(target.output if isinstance(target, _Instance) else target)


class _SpecBuilder:
    def __init__(self, doc: YMap, filename: str):
        self.doc = doc
        self.file = filename
        self.nodes: list[Node] = []
        self.names: dict[str, Loc] = {}
        self.layer_refs: list = []  # (node args, argument, name as written, layer, loc): resolved at the end
        self._sizes: dict = {}  # (block, its argument values) -> layers it expands to
        self.limit, self.why = MAX_NODES, ""  # the layer limit, and why it is lower (symbolic sizes)
        self._shapes: dict = {}  # output shapes of the inputs and the first _shaped nodes (shape())
        self._shaped = 0

    # --- top level ------------------------------------------------------------------------------
    def build(self, input_shape, bindings: dict, multiples: dict) -> Graph:
        doc = self.doc
        for key in doc:
            if key not in TOP_KEYS:
                raise SpecError(f"unknown top-level key {_shown(key)}{did_you_mean(key, TOP_KEYS)}; "
                                f"expected one of {', '.join(TOP_KEYS)}", doc.key_locs[key])
        if "input" in doc and "inputs" in doc:
            raise SpecError("give 'input' (the one input) or 'inputs' (several, by name), not both",
                            doc.key_locs["inputs"])
        if "input" not in doc and "inputs" not in doc:
            raise SpecError("the spec has no 'input' (or 'inputs' for several named inputs)", doc.loc)
        if "layers" not in doc:
            raise SpecError("the spec has no 'layers'", doc.loc)
        raw_inputs = self._raw_inputs(doc)
        overrides = _overrides(input_shape, [n for n, *_ in raw_inputs], "inputs" in doc)
        name = doc.get("name")
        if name is None:
            name = Path(self.file).stem
        elif not isinstance(name, str):
            raise SpecError(f"'name' must be a string, got {_shown(name)}", doc.where("name"))
        else:
            check_text(name, doc.where("name"), "'name'", lines=False)
            if len(name) > MAX_LABEL:
                raise SpecError(f"'name' is longer than {MAX_LABEL} characters", doc.where("name"))
        if isinstance(doc.get("description"), str):
            check_text(doc["description"], doc.where("description"), "'description'", lines=True)
        symbols, back, constraints = self._symbols(doc, bindings, multiples,
                                                   [r for n, r, _, _ in raw_inputs if n not in overrides])
        if constraints:  # sizes left as symbols
            free = ", ".join(constraints)
            self.limit = MAX_SYMBOLIC_LAYERS
            self.why = (f" with symbolic sizes ({free}); give them numbers (--set {next(iter(constraints))}=28) "
                        f"to analyse up to {MAX_NODES:,}")
        self.globals = self._vars(doc.get("vars"), doc.where("vars"), symbols, bindings)
        self.blocks = self._blocks(doc.get("blocks"), doc.where("blocks"))
        inputs = tuple(NetInput(n, tuple(overrides[n]) if n in overrides else self._input(raw, loc, n), tokens, loc)
                       for n, raw, tokens, loc in raw_inputs)
        layers = doc["layers"]
        if not isinstance(layers, YList) or not layers:
            raise SpecError("'layers' must be a non-empty list of layer entries", doc.where("layers"))
        named = {i.name: i.name for i in inputs} if "inputs" in doc else None
        self._shapes = {i.name: tuple(i.shape) for i in inputs}
        self._expand(layers, _Scope("", self.globals, inputs[0].name, named), stack=())
        self._resolve_layer_args()
        declared = doc.get("vars") if isinstance(doc.get("vars"), YMap) else {}
        numbers = {k: v for k, v in self.globals.items() if k in declared and not isinstance(v, bool)
                   and isinstance(v, (int, float)) and not is_symbolic(v)}
        return Graph(name, self.nodes, tuple(inputs), self.file, tuple(constraints), back, constraints, numbers)

    def _raw_inputs(self, doc) -> list:
        """[(name, sizes as written, token ids?, where)] of `input:` (one input named `input`) or
        `inputs:` (name -> sizes, in order)."""
        if "input" in doc:
            return [(INPUT, *_input_sizes(doc["input"]), doc.where("input"))]
        raw = doc["inputs"]
        if not isinstance(raw, YMap) or not raw:
            raise SpecError("'inputs' must map input names to shapes, e.g. {features: [80, 3000], ids: {tokens: "
                            "[448]}}", doc.where("inputs"))
        out = []
        for key in raw:
            if key == INPUT:
                raise SpecError("'input' is reserved: it names the first input; give each input a name of its "
                                "own", raw.key_locs[key])
            self._check_name(key, raw.key_locs[key], "input")
            out.append((key, *_input_sizes(raw[key]), raw.where(key)))
        return out

    def _resolve_layer_args(self):
        """Arguments naming another layer (`tie: lm_head`) may name a later one, so they are
        resolved once every layer exists: in the writer's block first, then outwards."""
        for args, key, ref, layer, loc in self.layer_refs:
            scopes = layer.split(".")[:-1]
            candidates = [".".join(scopes[:i] + [ref]) for i in range(len(scopes), -1, -1)]
            found = next((c for c in candidates if c in self.names and c != layer), None)
            if found is None:
                raise SpecError(f"'{key}: {ref}' names no layer{did_you_mean(ref, self.names)}", loc, layer)
            args[key] = found

    def _symbols(self, doc, bindings: dict, multiples: dict, raw_inputs: list):
        """Names in the inputs' sizes (`raw_inputs`: those not overridden) that no var defines, and
        those declared under `symbols:`, are size symbols; `--set` bindings make them numbers.
        Returns (scope, back, constraints)."""
        raw = doc.get("symbols")
        declared = {}
        if raw is not None:
            if not isinstance(raw, YMap):
                raise SpecError("'symbols' must map symbol names to constraints like {multiple_of: 4, min: 8}",
                                doc.where("symbols"))
            for key, rules in raw.items():
                self._check_name(key, raw.key_locs[key], "symbol")
                rules = rules if rules is not None else YMap()
                if not isinstance(rules, dict):
                    raise SpecError(f"constraints of symbol '{key}' must be a mapping like {{multiple_of: 4}}",
                                    raw.where(key))
                for rule, value in rules.items():
                    if rule not in CONSTRAINT_KEYS:
                        raise SpecError(f"unknown constraint {_shown(rule)}{did_you_mean(rule, CONSTRAINT_KEYS)}; "
                                        f"expected {', '.join(CONSTRAINT_KEYS)}", rules.key_locs[rule])
                    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                        raise SpecError(f"constraint '{rule}' of symbol '{key}' must be a positive integer, "
                                        f"got {_shown(value)}", rules.where(rule))
                _satisfiable(key, rules, rules.get("multiple_of", 1), rules.loc)
                declared[key] = dict(rules)
        var_names = set(doc.get("vars") or {}) if isinstance(doc.get("vars"), YMap) else set()
        names = list(declared)
        for raw_input in raw_inputs:
            if not isinstance(raw_input, YList):
                continue
            for value in raw_input:
                if isinstance(value, str):
                    try:
                        used = names_in(value)
                    except ExprError:
                        continue  # reported with its location when the input is read
                    names += [n for n in sorted(used) if n not in var_names and n not in names]
        for key in bindings:
            if key not in names and key not in var_names:
                raise SpecError(f"--set {_word(key)}: the spec has no symbol or var {_shown(key)}"
                                f"{did_you_mean(key, names + sorted(var_names))}")
        free = [n for n in names if n not in bindings]
        mults = {n: max(declared.get(n, {}).get("multiple_of", 1), multiples.get(n, 1)) for n in free}
        for n in free:
            if n in declared and mults[n] > 1:
                _satisfiable(n, declared[n], mults[n], raw.loc)
        for n in names:
            if n in bindings and n in declared:
                _obeys(n, bindings[n], declared[n], raw[n] if isinstance(raw[n], YMap) else None, raw.where(n))
        scope, back = symbols_make(free, mults) if free else ({}, {})
        for key in names:
            if key in bindings:
                scope[key] = bindings[key]
        constraints = {n: {**declared.get(n, {}), **({"multiple_of": mults[n]} if mults.get(n, 1) > 1 else {})}
                       for n in free}
        return scope, back, constraints

    def _vars(self, raw, loc, symbols: dict, bindings: dict) -> dict:
        values: dict = dict(symbols)
        if raw is None:
            return values
        if not isinstance(raw, YMap):
            raise SpecError("'vars' must be a mapping of names to numbers", loc)
        for key, value in raw.items():
            self._check_name(key, raw.key_locs[key], "variable")
            if key in bindings:  # --set overrides a var too
                values[key] = bindings[key]
                continue
            values[key] = self._number(value, values, raw.where(key), f"variable '{key}'")
        return values

    def _blocks(self, raw, loc) -> dict:
        if raw is None:
            return {}
        if not isinstance(raw, YMap):
            raise SpecError("'blocks' must be a mapping of block names to {args, layers}", loc)
        for key, body in raw.items():
            kloc = raw.key_locs[key]
            self._check_name(key, kloc, "block")
            if key in KINDS:
                raise SpecError(f"block '{key}' has the name of a layer kind; choose another name", kloc)
            if not isinstance(body, YMap):
                raise SpecError(f"block '{key}' must be a mapping with 'layers' (and optional 'args')",
                                raw.where(key))
            if isinstance(body.get("description"), str):
                check_text(body["description"], body.where("description"), f"the description of block '{key}'",
                           lines=True)
            for bkey in body:
                if bkey not in BLOCK_KEYS:
                    raise SpecError(f"unknown key {_shown(bkey)} in block '{key}'{did_you_mean(bkey, BLOCK_KEYS)}; "
                                    f"expected {', '.join(BLOCK_KEYS)}", body.key_locs[bkey])
            if not isinstance(body.get("layers"), YList) or not body["layers"]:
                raise SpecError(f"block '{key}' needs a non-empty 'layers' list", body.where("layers"))
            args = body.get("args")
            if args is not None and not isinstance(args, YMap):
                raise SpecError(f"'args' of block '{key}' must be a mapping of names to defaults",
                                body.where("args"))
            for arg in args or ():
                self._check_name(arg, args.key_locs[arg], "block argument")
            names = body.get("inputs")
            if names is not None:
                if not isinstance(names, YList) or not names:
                    raise SpecError(f"'inputs' of block '{key}' must be a list of input names, e.g. [x, memory]",
                                    body.where("inputs"))
                for i, name in enumerate(names):
                    if name == INPUT:
                        raise SpecError(f"'input' is reserved (it names the first input of block '{key}'); give "
                                        "each input a name of its own", names.where(i))
                    self._check_name(name, names.where(i), "block input")
                    if name in names[:i]:
                        raise SpecError(f"block '{key}' names its input '{name}' twice", names.where(i))
        return raw

    def _input(self, raw, loc, name=INPUT) -> tuple:
        if not isinstance(raw, YList) or not raw:
            what = "'input'" if name == INPUT else f"input '{name}'"
            raise SpecError(f"{what} must be a list of sizes, channels first, batch excluded "
                            "(e.g. [3, 224, 224], [784] or [T, F]), or {tokens: [T]} for integer token ids",
                            loc)
        return tuple(self._number(v, self.globals, raw.where(i), "input size", positive_int=True)
                     for i, v in enumerate(raw))

    # --- values ---------------------------------------------------------------------------------
    def _check_name(self, name, loc, what):
        if isinstance(name, str) and len(name) > MAX_NAME:
            raise SpecError(f"{what} name {_shown(name)} is longer than {MAX_NAME} characters", loc)
        if not isinstance(name, str) or not (_LAYER_NAME if what == "layer" else _NAME).match(name):
            raise SpecError(f"{what} name {_shown(name)} must be a word of letters, digits and '_' "
                            "(not starting with a digit)", loc)
        if name == "input" or name in FUNCTIONS:  # min, max, floor, ceil, round: called in expressions
            raise SpecError(f"'{name}' is reserved and cannot be a {what} name", loc)

    def _layer_name(self, name, loc) -> str:
        """A layer's `name:`: a word, or a number >= 0 (`name: 0`), as nn.Sequential names its
        entries, so that built modules carry PyTorch's own state_dict keys (`downsample.0.weight`)."""
        if isinstance(name, int) and not isinstance(name, bool):
            if not 0 <= name <= MAX_INDEX:
                raise SpecError(f"layer name {_shown(name)}: a layer named by a number takes one from 0 to "
                                f"{MAX_INDEX:,} (an nn.Sequential index)", loc)
            return str(name)
        if isinstance(name, str) and _INDEX.match(name) and int(name) <= MAX_INDEX:
            return name
        if isinstance(name, str) and len(name) <= MAX_NAME and not _LAYER_NAME.match(name):
            raise SpecError(f"layer name {_shown(name)} must be a word of letters, digits and '_' (not starting "
                            "with a digit; words may be joined by '-', as in block1-0), or a number >= 0 written "
                            "without leading zeros (an nn.Sequential index: name: 0)", loc)
        if not isinstance(name, str):
            raise SpecError(f"layer name {_shown(name)} must be a word of letters, digits and '_', or a number "
                            ">= 0 (an nn.Sequential index: name: 0)", loc)
        self._check_name(name, loc, "layer")
        return name

    def _number(self, value, scope, loc, what, positive_int=False, layer=None):
        if isinstance(value, str):
            value = _evaluated(value, scope, what, loc, layer)
        if is_symbolic(value):
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SpecError(f"{what} must be a number or an expression, got {_shown(value)}", loc, layer)
        if positive_int and (not isinstance(value, int) or value < 1):
            raise SpecError(f"{what} must be a positive integer, got {_shown(value)}", loc, layer)
        return value

    # --- entries --------------------------------------------------------------------------------
    def _entry(self, raw, loc, where):
        """Split an entry into (kind, body, body_loc, meta map or None)."""
        if isinstance(raw, str):
            return raw, None, loc, None
        if not isinstance(raw, YMap):
            raise SpecError(f"a layer entry {where} must be a kind (like 'relu') or a mapping like "
                            f"{{conv: {{out: 16, kernel: 3}}}}, got {_shown(raw)}", loc)
        kinds = [k for k in raw if k not in RESERVED]
        if not kinds:
            raise SpecError(f"layer entry {where} has no kind; expected one key besides "
                            f"{', '.join(RESERVED)}", raw.loc)
        if len(kinds) > 1:
            raise SpecError(f"layer entry {where} has several kinds ({', '.join(map(str, kinds))}); "
                            "expected exactly one kind key per entry", raw.key_locs[kinds[1]])
        kind = kinds[0]
        return kind, raw[kind], raw.where(kind), raw

    def _kind_loc(self, raw, kind, loc):
        return raw.key_locs[kind] if isinstance(raw, YMap) else loc

    def _expand(self, entries: YList, scope: _Scope, stack: tuple) -> str:
        """Append the nodes of `entries` to the graph; return the name of the last output.
        `stack` holds the enclosing block instances as (instance name, block kind), outermost first."""
        # First pass: every entry's local name, so `from` can tell a forward reference from a typo.
        planned, counters = [], {}
        for i, raw in enumerate(entries):
            loc = entries.where(i)
            if len(self.nodes) + i >= self.limit:  # a list of a million entries: before reading them all
                raise SpecError(f"the spec expands to more than {self.limit:,} layers{self.why}", loc)
            kind, body, body_loc, meta = self._entry(raw, loc, f"at line {loc.line}")
            if not isinstance(kind, str) or (kind not in KINDS and kind not in self.blocks):
                choices = list(KINDS) + list(self.blocks)
                raise SpecError(f"unknown layer kind {_shown(kind)}{did_you_mean(kind, choices)}",
                                self._kind_loc(raw, kind, loc))
            counters[kind] = counters.get(kind, 0) + 1
            local = f"{kind}{counters[kind]}"
            if meta is not None and "name" in meta:
                local = self._layer_name(meta["name"], meta.where("name"))
            planned.append((kind, body, body_loc, meta, local, loc))
        later = {p[4]: p[5] for p in planned}
        previous = scope.refs[INPUT]
        for kind, body, body_loc, meta, local, loc in planned:
            if later.get(local) is loc:
                del later[local]
            if local in scope.inputs:
                where = "the network" if not scope.prefix else "this block"
                raise SpecError(f"'{local}' names an input of {where}; give this entry another name",
                                self._name_loc(meta, loc))
            if local in scope.refs and local != INPUT:
                first = self.names.get(scope.full(local))
                where = f" (first at line {first.line})" if first else ""
                if meta is None or "name" not in meta:
                    raise SpecError(f"this entry's automatic name '{scope.full(local)}' is already taken"
                                    f"{where}; give one of them another name", loc)
                raise SpecError(f"duplicate layer name '{scope.full(local)}'{where}", self._name_loc(meta, loc))
            inputs = self._inputs(meta, scope, previous, later, scope.full(local))
            repeat = self._repeat(meta, scope)
            # A repeat named by a number K continues its list: its copies are the entries K ..
            # K+N-1 (as an nn.Sequential's); else they are NAME.1 .. NAME.N, or from `start`.
            flat = repeat is not None and _INDEX.match(local) is not None
            start = self._start(meta, scope, repeat, flat, scope.full(local))
            frozen = not self._flag(meta, scope, scope.full(local), "trainable", True)
            bare = self._flag(meta, scope, scope.full(local), "bare", False)
            first = len(self.nodes)
            # Count before unrolling: blocks calling blocks, each repeated, would otherwise build
            # millions of layers before the limit is noticed.
            self._check_size(self._size(kind, body, scope.values, stack), repeat or 1,
                             meta.where("repeat") if repeat is not None else loc)
            if repeat is None:
                ref = self._place(kind, body, body_loc, inputs, scope.full(local), scope, loc, stack)
            else:
                parts, chained = {}, inputs
                # A kind or block of several inputs chains its first and gives every copy the
                # others (a decoder layer repeated reads the same encoder output each time).
                several = kind in self.blocks or KINDS[kind].arity is not None  # not merges
                begin = int(local) if flat else start
                if flat and begin + repeat - 1 > MAX_INDEX:
                    raise SpecError(f"the copies of this repeat would be numbered up to {begin + repeat - 1:,}; a "
                                    f"layer may be named by a number up to {MAX_INDEX:,}", meta.where("repeat"),
                                    scope.full(local))
                for copy in range(begin, begin + repeat):
                    if flat and str(copy) in scope.refs:
                        taken = self.names.get(scope.full(str(copy)))
                        where = f" (first at line {taken.line})" if taken else ""
                        raise SpecError(f"copy {copy} of this repeat would be named '{scope.full(str(copy))}', which "
                                        f"is already taken{where}; a repeat named {local} numbers its {repeat} "
                                        f"copies {local} .. {begin + repeat - 1}", meta.where("repeat"),
                                        scope.full(local))
                    full = scope.full(str(copy)) if flat else f"{scope.full(local)}.{copy}"
                    part = self._place(kind, body, body_loc, chained, full, scope, loc, stack)
                    if flat:
                        scope.refs[str(copy)] = part
                    parts[str(copy)] = part
                    chained = (part.output if isinstance(part, _Instance) else part,) + (inputs[1:] if several else ())
                ref = _Instance(chained[0], parts)
            if frozen:  # every layer the entry placed: all of a block instance's, every copy of a repeat
                for node in self.nodes[first:]:
                    node.trainable = False
            if bare:
                self._bare(kind, self.nodes[first:], meta.where("bare"), scope.full(local))
            if not flat:  # a numbered run is its copies, each already an entry of the list
                scope.refs[local] = ref
            previous = ref.output if isinstance(ref, _Instance) else ref
        return previous

    def _check_size(self, per_copy: int, repeat: int, loc):
        total = len(self.nodes) + per_copy * repeat
        if total <= self.limit:
            return
        if per_copy > MAX_NODES:
            each = f"each of the {repeat:,} copies of this entry" if repeat > 1 else "this entry"
            raise SpecError(f"{each} expands to more than {MAX_NODES:,} layers, the limit", loc)
        if repeat > 1:
            raise SpecError(f"repeat {repeat:,} of {per_copy:,} layer(s) would make the network "
                            f"{total:,} layers, more than the limit of {self.limit:,}{self.why}", loc)
        raise SpecError(f"this entry expands to {per_copy:,} layers, which would make the network {total:,} "
                        f"layers, more than the limit of {self.limit:,}{self.why}", loc)

    def _size(self, kind, body, values: dict, stack: tuple) -> int:
        """Layers one placement of `kind` expands to (more than MAX_NODES counts as MAX_NODES + 1),
        from the blocks' structure and their arguments, before anything is unrolled; memoized per
        block and arguments. A mistake found here is left for the expansion to report where it
        meets it (the entry then counts as one layer)."""
        if kind not in self.blocks:
            return 1
        kinds = tuple(k for _, k in stack)
        if kind in kinds or len(stack) >= MAX_BLOCK_DEPTH or not isinstance(body, (dict, type(None))):
            return 1
        try:
            inner = self._block_values(kind, body or {}, values, None)
            key = (kind, _frozen(inner))
            hash(key)
        except (SpecError, TypeError):
            return 1
        if key in self._sizes:
            return self._sizes[key]
        total = 0
        entries = self.blocks[kind]["layers"]
        for i, raw in enumerate(entries):
            try:
                k, b, _, meta = self._entry(raw, entries.where(i), "")
                repeat = self._repeat(meta, _Scope("", inner, INPUT)) or 1
            except SpecError:
                k, b, repeat = None, None, 1
            total += repeat * self._size(k, b, inner, stack + ((None, kind),))
            if total > MAX_NODES:
                total = MAX_NODES + 1
                break
        self._sizes[key] = total
        return total

    def _name_loc(self, meta, loc):
        return meta.where("name") if meta is not None and "name" in meta else loc

    def _repeat(self, meta, scope):
        if meta is None or "repeat" not in meta:
            return None
        loc = meta.where("repeat")
        n = self._number(meta["repeat"], scope.values, loc, "repeat", positive_int=True)
        if n > MAX_REPEAT:
            raise SpecError(f"repeat {n:,} is more than the limit of {MAX_REPEAT:,} copies", loc)
        return n

    def _start(self, meta, scope, repeat, flat: bool, layer) -> int:
        """The number of a repeat's first copy: `start: K` (an integer >= 0; 0 numbers them as
        PyTorch numbers an nn.Sequential's or nn.ModuleList's entries), default 1."""
        if meta is None or "start" not in meta:
            return 1
        loc = meta.where("start")
        if repeat is None:
            raise SpecError("'start' numbers the copies of a repeat, and this entry has no 'repeat'", loc, layer)
        if flat:
            raise SpecError(f"a repeat named by a number numbers its copies from that number ({meta['name']}); "
                            "drop 'start', or name the entry by a word", loc, layer)
        n = self._number(meta["start"], scope.values, loc, "start", layer=layer)
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise SpecError(f"'start' must be an integer >= 0 (the first copy's number), got {_shown(n)}", loc, layer)
        if n + repeat - 1 > MAX_INDEX:
            raise SpecError(f"the copies would be numbered up to {n + repeat - 1:,}, more than {MAX_INDEX:,}", loc, layer)
        return n

    def _flag(self, meta, scope, layer, key, default) -> bool:
        """A true/false beside the kind (a block argument holding true/false may stand for it):
        `trainable: false` freezes the entry's parameters, `bare: true` holds its one tensor in
        the enclosing block's module."""
        if meta is None or key not in meta:
            return default
        value, loc = meta[key], meta.where(key)
        if isinstance(value, str) and isinstance(scope.values.get(value), bool):
            value = scope.values[value]
        if not isinstance(value, bool):
            hint = (" (yes/no/on/off are read as words, as in YAML 1.2)"
                    if isinstance(value, str) and value.lower() in _WORD_BOOLS else "")
            raise SpecError(f"'{key}' must be true or false, got {_shown(value)}{hint}", loc, layer)
        return value

    def _bare(self, kind, nodes, loc, layer) -> None:
        """`bare: true`: the layer's one learned tensor is held by the enclosing block's module under
        the layer's name (torchvision's `features.1.0.layer_scale`), so only a kind holding exactly
        one tensor may say it."""
        def takes() -> str:  # for the message only: it imports every kind's module
            return ", ".join(sorted(k for k, layer_kind in KINDS.items()
                                    if type(layer_kind).bare_tensor is not Layer.bare_tensor))

        if kind in self.blocks:
            raise SpecError(f"'bare: true' holds a layer's one learned tensor in the enclosing block; '{kind}' is "
                            f"a block, which holds layers (kinds that take it: {takes()})", loc, layer)
        for node in nodes:
            if KINDS[node.kind].bare_tensor(node.args) is None:
                raise SpecError(f"'bare: true' holds a layer's one learned tensor in the enclosing block; this "
                                f"{node.kind} does not hold exactly one (kinds that take it: {takes()})", loc, layer)
            node.bare = True

    def _inputs(self, meta, scope, previous, later, layer) -> tuple:
        if meta is None or "from" not in meta:
            return (previous,)
        raw, floc = meta["from"], meta.where("from")
        refs = raw if isinstance(raw, YList) else [raw]
        if not refs:
            raise SpecError("'from' is empty; expected a layer name or a list of names", floc, layer)
        out = []
        for i, ref in enumerate(refs):
            rloc = raw.where(i) if isinstance(raw, YList) else floc
            if isinstance(ref, int) and not isinstance(ref, bool) and ref >= 0:
                ref = str(ref)  # `from: 0`: the entry named 0
            if isinstance(ref, float):  # `from: 0.1`: YAML reads a number, so the digits are lost
                raise SpecError(f"'from' must name layers, and YAML reads {_shown(ref)} as a number; quote a dotted "
                                f"name that starts with a number (from: \"{ref}\")", rloc, layer)
            if not isinstance(ref, str) or not _REF.match(ref):
                raise SpecError(f"'from' must name layers (words joined by '.'), got {_shown(ref)}", rloc, layer)
            out.append(self._resolve(ref, scope, later, rloc, layer))
        return tuple(out)

    def _resolve(self, ref: str, scope: _Scope, later: dict, loc, layer) -> str:
        head, *rest = ref.split(".")
        if head not in scope.refs:
            if head in later:
                raise SpecError(f"'from: {_shown(ref, quote=False)}' refers forward to a layer defined later (line "
                                f"{later[head].line}); 'from' may only name earlier layers", loc, layer)
            raise SpecError(f"'from: {_shown(ref, quote=False)}' names no earlier layer{did_you_mean(head, scope.refs)}", loc, layer)
        target = scope.refs[head]
        for i, part in enumerate(rest):
            if not isinstance(target, _Instance) or part not in target.parts:
                have = list(target.parts) if isinstance(target, _Instance) else []
                inside = ".".join([head] + rest[:i])
                raise SpecError(f"'from: {_shown(ref, quote=False)}': '{_shown(inside, quote=False)}' has no part {_shown(part)}{did_you_mean(part, have)}", loc, layer)
            target = target.parts[part]
        return target.output if isinstance(target, _Instance) else target

    # --- one placement: a layer node or a block instance ----------------------------------------
    def _place(self, kind, body, body_loc, inputs, full, scope, loc, stack):
        if full in self.names:
            raise SpecError(f"duplicate layer name '{full}' (first at line {self.names[full].line})", loc)
        self.names[full] = loc
        if kind in self.blocks:
            return self._call_block(kind, body, body_loc, inputs, full, scope, loc, stack)
        layer = KINDS[kind]
        wrong = arity_error(kind, layer.arity, len(inputs))
        if wrong is not None:
            roles = getattr(layer, "input_roles", ())  # cross_attention: (queries, memory)
            if roles:
                wrong += f"; name them in order with 'from: [{', '.join(roles)}]'"
            raise SpecError(wrong, loc, full)
        args, arg_locs = self._args(layer, body, body_loc, scope.values, full)
        if len(self.nodes) >= self.limit:
            raise SpecError(f"the spec expands to more than {self.limit:,} layers{self.why}", loc, full)
        self.nodes.append(Node(full, kind, args, inputs, loc, arg_locs, stack))
        return full

    def _call_block(self, kind, body, body_loc, inputs, full, scope, loc, stack):
        kinds = tuple(k for _, k in stack)
        if kind in kinds:
            chain = " -> ".join(kinds + (kind,))
            raise SpecError(f"block '{kind}' uses itself ({chain}); blocks may not be recursive", loc, full)
        if len(stack) >= MAX_BLOCK_DEPTH:
            raise SpecError(f"blocks are nested more than {MAX_BLOCK_DEPTH} deep here", loc, full)
        block = self.blocks[kind]
        names = list(block.get("inputs") or ())
        if not names and len(inputs) != 1:
            raise SpecError(f"block '{kind}' takes one input, but 'from' names {len(inputs)}", loc, full)
        if names and len(inputs) != len(names):
            raise SpecError(f"block '{kind}' takes {len(names)} inputs ({', '.join(names)}), but "
                            + ("'from' names " + str(len(inputs)) if len(inputs) > 1 else "it is given one")
                            + f"; name them in order with 'from: [{', '.join(f'a{i + 1}' for i in range(len(names)))}]'",
                            loc, full)
        defaults = block.get("args") or YMap()
        if body is None:
            body = {}
        if not isinstance(body, dict):
            raise SpecError(f"block '{kind}' takes its arguments as a mapping "
                            f"({', '.join(defaults) or 'none'}), got {_shown(body)}", body_loc, full)
        for key in body:
            if key not in defaults:
                hint = f" ({_BESIDE} go beside the block, not inside)" if key in RESERVED else ""
                raise SpecError(f"block '{kind}' has no argument {_shown(key)}{did_you_mean(key, defaults)}{hint}; "
                                f"its arguments are: {', '.join(defaults) or 'none'}", body.key_locs[key], full)
        reader = _ShapeReader(self, {INPUT: inputs[0], **dict(zip(names, inputs))})
        values = self._block_values(kind, body, scope.values, full, reader)
        inner = _Scope(full + ".", values, inputs[0], dict(zip(names, inputs)))
        reader.refs = inner.refs  # from here on, the block's earlier entries too
        output = self._expand(block["layers"], inner, stack + ((full, kind),))
        parts = {k: v for k, v in inner.refs.items() if k != INPUT and k not in inner.inputs}
        return _Instance(output, parts)

    def shape_of(self, name: str) -> tuple:
        """The output shape (batch excluded) of a network input or a node placed already, by the
        kinds' own rules (see _ShapeReader); a layer whose shape cannot be had is reported there."""
        from archcalc.errors import LayerError

        while name not in self._shapes and self._shaped < len(self.nodes):
            # counted as shaped only once its shape is known: a node whose shape failed fails again
            # for the next reader (one caller may have caught the first error), never a KeyError
            node = self.nodes[self._shaped]
            try:
                out = tuple(KINDS[node.kind].output_shape(node.args, [self._shapes[i] for i in node.inputs]))
            except LayerError as exc:
                raise SpecError(exc.message, node.arg_locs.get(exc.arg, node.loc) if exc.arg else node.loc,
                                node.name, node.kind) from None
            except (TypeError, OverflowError):
                raise SpecError(f"the output shape of this {node.kind} layer cannot be computed here, so a later "
                                "shape() cannot read it", node.loc, node.name, node.kind) from None
            if any(not is_symbolic(n) and n < 1 for n in out):
                raise SpecError(f"the output shape would be {list(out)}; sizes must be positive", node.loc,
                                node.name, node.kind)
            self._shapes[node.name] = out
            self._shaped += 1
        if name not in self._shapes:
            raise SpecError(f"the shape of '{name}' is not known here, so shape() cannot read it")
        return self._shapes[name]

    def _block_values(self, kind, body, caller: dict, full, reader=None) -> dict:
        """The scope inside an instance of block `kind`: the globals, its arguments and, where
        `reader` is given, shape()'s reader of its input (so defaults may read it too)."""
        defaults = self.blocks[kind].get("args") or YMap()
        values = dict(self.globals)
        if reader is not None:
            values[SHAPE_READER] = reader
        for key, default in defaults.items():
            if key in body:  # evaluated in the caller's scope
                values[key] = self._block_value(body[key], caller, body.where(key), key, full)
            else:  # defaults see the globals and earlier arguments
                values[key] = self._block_value(default, values, defaults.where(key), key, full)
        return values

    def _block_value(self, value, scope, loc, key, layer):
        """Numbers and expressions are evaluated; a bare word that names nothing stays a string
        (so `padding: same` can be passed through a block argument)."""
        if isinstance(value, YList):
            return [self._block_value(v, scope, value.where(i), key, layer) for i, v in enumerate(value)]
        if isinstance(value, str):
            if _NAME.match(value) and value not in scope:
                return value
            try:
                return evaluate(value, scope)
            except ExprError as exc:
                raise SpecError(f"block argument '{key}': {exc}", loc, layer) from None
        return value

    # --- layer arguments ------------------------------------------------------------------------
    def _args(self, layer: Layer, body, body_loc, scope, full):
        schema = {a.name: a for a in layer.args}
        given: dict = {}
        locs: dict = {}
        if isinstance(body, YMap):
            for key, value in body.items():
                if key not in schema:
                    hint = (f" ({_BESIDE} go beside the kind, not among its arguments)"
                            if key in RESERVED else "")
                    expected = ", ".join(schema) or "no arguments"
                    raise SpecError(f"{layer.kind} has no argument {_shown(key)}{did_you_mean(key, schema)}{hint}; "
                                    f"expected: {expected}", body.key_locs[key], full)
                given[key], locs[key] = value, body.where(key)
        elif body is not None:
            if layer.primary is None:
                raise SpecError(f"{layer.kind} takes no single value; give its arguments as a mapping "
                                f"({', '.join(schema) or 'it has none'})", body_loc, full)
            given[layer.primary], locs[layer.primary] = body, body_loc
        args = {}
        for arg in layer.args:
            loc = locs.get(arg.name, body_loc)
            if arg.name in given:
                args[arg.name] = self._arg_value(arg, given[arg.name], scope, loc, layer.kind, full)
                if arg.type == "layer" and args[arg.name] is not None:
                    self.layer_refs.append((args, arg.name, args[arg.name], full, loc))
            elif arg.required:
                raise SpecError(f"{layer.kind} needs argument '{arg.name}'"
                                + (f" ({arg.doc})" if arg.doc else ""), loc, full)
            else:
                args[arg.name] = arg.default
        return args, locs

    def _arg_value(self, arg: Arg, value, scope, loc, kind, layer):
        what = f"{kind} argument '{arg.name}'"
        if value is None:
            if arg.default is None:
                return None
            raise SpecError(f"{what} is empty; expected {_expected(arg)}", loc, layer)
        # A bare name bound to a non-number (a block argument holding 'same', true, ...).
        if isinstance(value, str) and isinstance(scope.get(value), (str, bool, list, tuple)):
            value = scope[value]
        t = arg.type
        if t == "bool":
            if not isinstance(value, bool):
                hint = (" (yes/no/on/off are read as words, as in YAML 1.2)"
                        if isinstance(value, str) and value.lower() in _WORD_BOOLS else "")
                raise SpecError(f"{what} must be true or false, got {_shown(value)}{hint}", loc, layer)
            return value
        if t == "layer":
            if not isinstance(value, str) or not re.fullmatch(r"([A-Za-z_]\w*|0|[1-9][0-9]*)(\.\w+)*", value):
                raise SpecError(f"{what} must name a layer, got {_shown(value)}", loc, layer)
            return value  # resolved in _resolve_layer_args
        if t == "choice":
            if value not in arg.choices:
                raise SpecError(f"{what} is {_shown(value)}{did_you_mean(value, arg.choices)}; expected one of "
                                f"{', '.join(map(str, arg.choices))}", loc, layer)
            return value
        if t != "choice" and arg.choices:  # a number or one of the argument's words (mamba's dt_rank: auto)
            if value in arg.choices:
                return value
            if isinstance(value, str) and _NAME.match(value) and value not in scope:
                raise SpecError(f"{what} is {_shown(value)}{did_you_mean(value, arg.choices)}; expected "
                                f"{_expected(arg)}", loc, layer)
        if t == "padding" and value in ("same", "valid"):
            return value
        if t == "padding" and isinstance(value, str) and _NAME.match(value) and value not in scope:
            raise SpecError(f"{what} is {_shown(value)}{did_you_mean(value, ('same', 'valid'))}; expected "
                            f"{_expected(arg)}", loc, layer)
        if t in ("ints", "floats", "padding", "intlist") and isinstance(value, (list, YList)):
            if not value:
                raise SpecError(f"{what} is an empty list; expected {_expected(arg)}", loc, layer)
            locs = value.where if isinstance(value, YList) else (lambda i: loc)
            return tuple(self._scalar(arg, v, scope, locs(i), what, layer) for i, v in enumerate(value))
        if t == "intlist":
            return (self._scalar(arg, value, scope, loc, what, layer),)
        return self._scalar(arg, value, scope, loc, what, layer)

    def _scalar(self, arg, value, scope, loc, what, layer):
        integer = arg.type in ("int", "ints", "padding", "intlist")
        if isinstance(value, str):
            value = _evaluated(value, scope, what, loc, layer, hint=integer)
        if is_symbolic(value) and integer:
            return value  # a size written in terms of the input's symbols
        if isinstance(value, bool) or not isinstance(value, (int, float)) or integer and not isinstance(value, int):
            raise SpecError(f"{what} must be {_expected(arg)}, got {_shown(value)}", loc, layer)
        if arg.min is not None and value < arg.min or arg.max is not None and value > arg.max:
            raise SpecError(f"{what} must be {_expected(arg)}, got {_shown(value)}", loc, layer)
        return value


MAX_SHOWN = 60  # characters of a value quoted in a message


def _shown(value, quote: bool = True) -> str:
    """A value as a message quotes it: Python's repr (one line: control characters escaped),
    cut short when long; `quote=False` for a name checked to be words already."""
    text = repr(value) if quote else str(value)
    return text if len(text) <= MAX_SHOWN else text[:MAX_SHOWN - 3] + "..."


def _word(key) -> str:
    """A name for a message: as written when it is a word, else quoted (control characters escaped)."""
    return key if isinstance(key, str) and _NAME.match(key) else repr(key)


def _evaluated(text: str, scope, what, loc, layer, hint: bool = False):
    """An expression written as text (`c * 2`, `H // 2`), evaluated in `scope`; SpecError at the
    value otherwise (with `hint`, a size name that is not declared suggests its declaration)."""
    _not_a_yaml11_number(text, what, loc, layer)
    try:
        return evaluate(text, scope)
    except ExprError as exc:
        raise SpecError(f"{what}: {exc}{_symbol_hint(exc) if hint else ''}", loc, layer) from None


def _symbol_hint(exc: ExprError) -> str:
    """For a size written as a name that nothing defines (`linear: N_H`): how to declare it. A name
    in `input` is a symbol by itself; one used only in a layer's sizes must be declared
    (docs/spec.md, `symbols`)."""
    name = exc.unknown
    if not name:
        return ""
    return (f"; a size given as a name must be declared: `symbols: {{{name}: {{}}}}` for a symbolic size "
            f"(a formula in {name}), or `vars: {{{name}: 64}}` for a number")


def _not_a_yaml11_number(text: str, what, loc, layer):
    """Text that YAML 1.1 would have read as a number in another base is refused as such."""
    if _BASE_60.match(text.strip()):
        raise SpecError(f"{what}: {_shown(text)} is not a number here (YAML 1.1 reads it in base 60); write the "
                        "number itself", loc, layer)


_CONTROL_CATEGORIES = ("Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn")


def check_text(text: str, loc, what: str, lines: bool) -> None:
    """Refuse control characters (NUL, ESC, DEL, bidirectional overrides, line separators, ...) in
    text written by the user; `lines` allows newlines and tabs (a multi-line description)."""
    import unicodedata

    for ch in text:
        if lines and ch in "\n\t":
            continue
        if unicodedata.category(ch) in _CONTROL_CATEGORIES:
            raise SpecError(f"{what} holds the control character {ch!r}; "
                            + ("only newlines and tabs are allowed" if lines else "it must be printable text on one line"),
                            loc)


def _satisfiable(name, rules, multiple: int, loc) -> None:
    """Some size meets min, max and multiple_of together."""
    low, high = rules.get("min", 1), rules.get("max")
    where = rules.where("max") if isinstance(rules, YMap) and "max" in rules else loc
    if high is not None and low > high:
        raise SpecError(f"symbol '{name}': min {low} is larger than max {high}; no size meets both", where)
    first = -(-low // multiple) * multiple
    if high is not None and first > high:
        raise SpecError(f"symbol '{name}': no multiple of {multiple} lies between min {low} and max {high}", where)


def _obeys(name, value, rules: dict, raw, loc) -> None:
    """A number given to a symbol (`--set H=28`) keeps the symbol's constraints."""
    if is_symbolic(value):
        return
    for rule, bound in rules.items():
        broken = (isinstance(value, bool) or not isinstance(value, int)
                  or rule == "multiple_of" and value % bound or rule == "min" and value < bound
                  or rule == "max" and value > bound)
        if broken:
            where = raw.where(rule) if raw is not None else loc
            raise SpecError(f"{name} = {_shown(value)} breaks the constraint '{rule}: {bound}' of symbol '{name}'", where)


def _frozen(value):
    """A hashable form of block argument values (lists become tuples)."""
    if isinstance(value, dict):
        return tuple(sorted((k, _frozen(v)) for k, v in value.items()))
    if isinstance(value, list):
        return tuple(_frozen(v) for v in value)
    return value


def _input_sizes(raw):
    """(the list of sizes, whether they are integer token ids) of `input: [...]` or
    `input: {tokens: [...]}`; anything else is returned as is for _input to reject."""
    if isinstance(raw, YMap) and list(raw) == ["tokens"]:
        return raw["tokens"], True
    return raw, False


def _overrides(given, names: list, named: bool) -> dict:
    """Input name -> the shape that replaces its written one (`--input`): a shape alone replaces
    the first input; a mapping {name: shape} replaces inputs by name (`input` is the first)."""
    if given is None:
        return {}
    if not isinstance(given, dict):
        return {names[0]: tuple(given)}
    out = {}
    for key, shape in given.items():
        target = names[0] if key == INPUT else key
        if target not in names:
            have = ", ".join(names) if named else "one, named 'input'"
            raise SpecError(f"--input {_word(key)}=...: the spec has no input named {_shown(key)}"
                            f"{did_you_mean(key, names)}; its inputs: {have}")
        if target in out:  # `input` and the first input's own name are one input: never keep one silently
            raise SpecError(f"--input gives the first input '{target}' twice ('input' names it too); "
                            "give it once")
        out[target] = tuple(shape)
    return out


def _expected(arg: Arg) -> str:
    if arg.choices and arg.type != "choice":  # a number or a word: dt_rank is an integer >= 1 or 'auto'
        words = " or ".join(repr(c) for c in arg.choices)
        return f"{_expected(Arg(arg.name, arg.type, arg.default, arg.min, arg.max))} or {words}"
    base = {"int": "an integer", "ints": "an integer or a list of integers", "intlist": "a list of integers",
            "float": "a number", "floats": "a number or a list of numbers",
            "padding": "an integer, a list of integers, 'same' or 'valid'"}.get(arg.type, arg.type)
    if arg.type == "padding":
        return "a number >= 0, a list of them, 'same' or 'valid'"
    if arg.min is not None and arg.max is not None:
        return f"{base} between {arg.min} and {arg.max}"
    if arg.min is not None:
        return f"{base} >= {arg.min}"
    return base
