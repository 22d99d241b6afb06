"""An answer key, owned by the TA: the spec the questions are about, which questions are asked,
how many points each is worth, and the grading policy (tolerance, sizes, assumptions, variants).

```yaml
spec: conv_pool_fc.yaml            # the network, relative to this file
title: Written Assignment 1        # optional: shown on sheets and feedback
tolerance: 1%                      # optional: for approximate answers (default 1%)
set: {H: 28, W: 28}                # optional: numbers for the spec's symbols or vars
assume: divisible                  # optional: every size a multiple of the total stride
questions:
  conv1.params: {points: 2}
  total.trainable_params: {points: 3, tolerance: 0.05}
  pool1.rf: 1                      # shorthand for {points: 1}
vary:                              # optional: per-student variants over the spec's vars/symbols
  K: [3, 5, 7]
  C: [8, 16, 32]
```

The truth is never written in the key: archcalc computes it from the spec (for each student's
variant). Question ids are those of answers files (`LAYER.FIGURE`, `total.FIGURE`); every layer
a question names must exist in the spec. Mistakes raise SpecError with FILE:LINE:COL.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from archcalc.errors import Loc, SpecError, did_you_mean
from archcalc.homework.answers import DEFAULT_TOLERANCE, TOTAL, _bindings, _shown, _split_key, _tolerance
from archcalc.reader.yaml_source import YList, YMap, load_yaml, read_source

KEY_KEYS = ("spec", "title", "tolerance", "set", "assume", "questions", "vary")
QUESTION_KEYS = ("points", "tolerance")
ASSUMPTIONS = ("divisible",)
MAX_POINTS = 10**6
MAX_CHOICES = 1000  # values one varied name may take
MAX_VARIANTS = 10**6  # combinations of all varied names


@dataclass(frozen=True)
class Question:
    id: str  # "conv1.params", "total.trainable_params": as an answers file names it
    layer: str  # "conv1", or "total"
    figure: str  # "params"
    points: float  # int where written as one
    tolerance: float | None  # this question's own; None: the key's
    loc: Loc  # where the question id was written

    @property
    def is_total(self) -> bool:
        return self.layer == TOTAL


@dataclass(frozen=True)
class Key:
    file: str
    spec: Path  # resolved against the key's folder
    questions: tuple[Question, ...]
    tolerance: float = DEFAULT_TOLERANCE
    bindings: dict = field(default_factory=dict)  # `set:` name -> int
    assume_divisible: bool = False
    vary: dict = field(default_factory=dict)  # name -> tuple of ints (each student gets one of each)
    title: str | None = None
    spec_loc: Loc | None = None
    binding_locs: dict = field(default_factory=dict)
    vary_locs: dict = field(default_factory=dict)

    @property
    def max_points(self) -> float:
        total = sum(q.points for q in self.questions)
        if isinstance(total, float):  # 0.1 + 0.2 is 0.3 (not 0.30000000000000004), rounded as a student's total
            total = round(total, 4)
            total = int(total) if total.is_integer() else total
        return total

    def question(self, qid: str) -> Question | None:
        return next((q for q in self.questions if q.id == qid), None)

    def tolerance_of(self, question: Question) -> float:
        return self.tolerance if question.tolerance is None else question.tolerance

    def variant_count(self) -> int:
        n = 1
        for values in self.vary.values():
            n *= len(values)
        return n

    def variant(self, student: str, seed: int) -> dict:
        """The student's values of the varied names (`vary:`), a function of (seed, student) only:
        the same on every machine, whatever the roster's order, so `grade` finds the variant
        `variants` gave. {} for a key without `vary:`."""
        if not self.vary:
            return {}
        digest = hashlib.sha256(f"archcalc-variant\0{seed}\0{student}".encode()).digest()
        index = int.from_bytes(digest[:16], "big") % self.variant_count()
        out = {}
        for name, values in self.vary.items():  # mixed radix: one digit per varied name
            index, digit = divmod(index, len(values))
            out[name] = values[digit]
        return out

    def bindings_for(self, student: str | None = None, seed: int | None = None) -> dict:
        """The sizes a student's questions are computed at: the key's `set:` and, with `vary:`,
        the student's variant (which needs the seed)."""
        out = dict(self.bindings)
        if self.vary:
            if student is None or seed is None:
                raise ValueError("a key with vary: needs the student and the seed to give sizes")
            out.update(self.variant(student, seed))
        return out


def load_key(path) -> Key:
    """Read and validate an answer key (see the module docstring); SpecError on any mistake. A
    bundled one is read by name (`homework:written_assignment_1.key`, as `archcalc examples` lists it)."""
    from archcalc.reader import bundled

    path = Path(bundled.locate(path))
    return parse_key(read_source(path, "answer key"), str(path), base=path.parent)


def parse_key(text: str, filename: str = "<key>", base: Path | None = None) -> Key:
    doc = load_yaml(text, filename)
    start = Loc(filename, 1, 1)
    if not isinstance(doc, YMap):
        raise SpecError("an answer key is a YAML mapping with 'spec:' and 'questions:'", getattr(doc, "loc", start))
    for key in doc:
        if key not in KEY_KEYS:
            raise SpecError(f"unknown top-level key {_shown(key)}{did_you_mean(str(key), KEY_KEYS)}; expected "
                            f"{', '.join(KEY_KEYS)}", doc.key_locs[key])
    for required, example in (("spec", "spec: conv_pool_fc.yaml (relative to the key)"),
                              ("questions", "questions: {conv1.params: {points: 2}}")):
        if required not in doc:
            raise SpecError(f"missing '{required}:' ({example})", doc.loc)
    spec_loc = doc.where("spec")
    if not isinstance(doc["spec"], str) or not doc["spec"].strip():
        raise SpecError(f"'spec' must be the path of the spec file, relative to the key; got {_shown(doc['spec'])}",
                        spec_loc)
    spec = (base or Path(".")) / doc["spec"]
    if not spec.is_file():
        raise SpecError(f"spec {_shown(doc['spec'])} not found (looked for {spec})", spec_loc)
    title = doc.get("title")
    if title is not None and not isinstance(title, str):
        raise SpecError(f"'title' must be text, got {_shown(title)}", doc.where("title"))
    tolerance = _tolerance(doc["tolerance"], doc.where("tolerance")) if "tolerance" in doc else DEFAULT_TOLERANCE
    bindings, binding_locs = _bindings(doc["set"], doc.where("set")) if "set" in doc else ({}, {})
    assume = False
    if "assume" in doc:
        if doc["assume"] not in ASSUMPTIONS:
            raise SpecError(f"'assume' must be one of {', '.join(ASSUMPTIONS)} (every size symbol a multiple of "
                            f"the network's total stride), got {_shown(doc['assume'])}", doc.where("assume"))
        assume = True
    questions = _questions(doc["questions"], doc.where("questions"))
    vary, vary_locs = _vary(doc["vary"], doc.where("vary")) if "vary" in doc else ({}, {})
    for name in vary:
        if name in bindings:
            raise SpecError(f"'{name}' is both set (set: {name}: {bindings[name]}) and varied; give it one of them",
                            vary_locs[name])
    return Key(filename, spec, tuple(questions), tolerance, bindings, assume, vary, title, spec_loc,
               binding_locs, vary_locs)


def _questions(raw, loc) -> list[Question]:
    if not isinstance(raw, YMap) or not raw:
        raise SpecError("'questions' must be a non-empty mapping of LAYER.FIGURE to points, like "
                        "{conv1.params: {points: 2}, total.macs: 1}", loc)
    out = []
    for qid, body in raw.items():
        key_loc, body_loc = raw.key_locs[qid], raw.where(qid)
        layer, figure = _split_key(qid, key_loc)
        tolerance = None
        if isinstance(body, YMap):
            for k in body:
                if k not in QUESTION_KEYS:
                    raise SpecError(f"unknown key {_shown(k)} in question {_shown(qid)}{did_you_mean(str(k), QUESTION_KEYS)}"
                                    f"; expected {', '.join(QUESTION_KEYS)}", body.key_locs[k])
            if "points" not in body:
                raise SpecError(f"question {_shown(qid)} needs 'points' (like {{points: 2}})", body_loc)
            points, points_loc = body["points"], body.where("points")
            if "tolerance" in body:
                tolerance = _tolerance(body["tolerance"], body.where("tolerance"))
        else:
            points, points_loc = body, body_loc
        if isinstance(points, bool) or not isinstance(points, (int, float)) or not 0 < points <= MAX_POINTS:
            raise SpecError(f"question {_shown(qid)}: points must be a number above 0 (up to {MAX_POINTS:,}), "
                            f"got {_shown(points)}", points_loc)
        if isinstance(points, float) and points.is_integer():
            points = int(points)
        first = next((q for q in out if (q.layer, q.figure) == (layer, figure)), None)
        if first is not None:  # `conv1.params` and `"conv1.params "`: YAML's two keys, one question
            raise SpecError(f"question {_shown(qid)} is asked twice (first at line {first.loc.line}); "
                            "give each question once", key_loc)
        out.append(Question(str(qid).strip(), layer, figure, points, tolerance, key_loc))
    return out


def _vary(raw, loc) -> tuple[dict, dict]:
    if not isinstance(raw, YMap) or not raw:
        raise SpecError("'vary' maps the spec's vars or symbols to lists of values, like {K: [3, 5, 7]}", loc)
    out, locs = {}, {}
    count = 1
    for name, values in raw.items():
        where = raw.where(name)
        if not isinstance(name, str) or not name.isidentifier():
            raise SpecError(f"{_shown(name)} is not a var or symbol name (letters, digits and _)", raw.key_locs[name])
        if not isinstance(values, YList) or not values:
            raise SpecError(f"vary {name}: expected a list of positive integers, like [3, 5, 7]; got "
                            f"{_shown(values)}", where)
        for i, v in enumerate(values):
            if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 10**30:
                raise SpecError(f"vary {name}: expected positive integers, got {_shown(v)}", values.where(i))
        if len(set(values)) != len(values):
            raise SpecError(f"vary {name}: a value is listed twice ({list(values)})", where)
        if len(values) > MAX_CHOICES:
            raise SpecError(f"vary {name}: {len(values):,} values, more than {MAX_CHOICES:,}", where)
        count *= len(values)
        if count > MAX_VARIANTS:
            raise SpecError(f"vary: {count:,} combinations or more, more than {MAX_VARIANTS:,}", loc)
        out[name], locs[name] = tuple(int(v) for v in values), raw.key_locs[name]
    return out, locs


def spec_names(key: Key) -> set:
    """The names a key may set or vary: the spec's `vars` and its size symbols (declared or used)."""
    doc = load_yaml(read_source(key.spec, "spec"), str(key.spec))
    names = set()
    if isinstance(doc, YMap):
        for section in ("vars", "symbols"):
            if isinstance(doc.get(section), YMap):
                names.update(str(k) for k in doc[section])
    from archcalc import api

    names.update(api.load_graph(key.spec, bindings=dict(key.bindings)).symbols)
    return names


def check_against_spec(key: Key) -> None:
    """The key's names and questions fit its spec: every varied name is a var or symbol of the
    spec, every `set:` and `vary:` number keeps the spec's constraints on its symbol (multiple_of,
    min, max), and every question names a layer (or block instance) the spec has, in every
    variant's first combination. SpecError at the key's line otherwise."""
    from archcalc import api

    _check_constraints(key, api.load_spec(key.spec).constraints)
    known = spec_names(key)
    for name, loc in key.vary_locs.items():
        if name not in known:
            raise SpecError(f"vary {name}: the spec has no var or symbol '{name}'{did_you_mean(name, sorted(known))}",
                            loc)
    first = dict(key.bindings)
    first.update({name: values[0] for name, values in key.vary.items()})
    report = api.analyze(key.spec, bindings=first or None, assume_divisible=key.assume_divisible)
    layers = {row.name for row in report.layers}
    prefixes = {name.rsplit(".", i)[0] for name in layers for i in range(1, name.count(".") + 1)}
    for q in key.questions:
        if not q.is_total and q.layer not in layers and q.layer not in prefixes:
            choices = [TOTAL] + sorted(layers | prefixes)
            raise SpecError(f"question {_shown(q.id)}: the spec has no layer {_shown(q.layer)}"
                            f"{did_you_mean(q.layer, choices)}; layers are named as in `archcalc analyze`", q.loc)


def _check_constraints(key: Key, constraints: dict) -> None:
    """Each number the key gives a symbol (`set:`, every `vary:` value) within the spec's
    constraints on it: the formulas hold only there. SpecError at the number's name otherwise."""
    numbers = [(name, value, key.binding_locs.get(name), "set") for name, value in key.bindings.items()]
    numbers += [(name, v, key.vary_locs.get(name), "vary") for name, values in key.vary.items() for v in values]
    check_numbers(numbers, constraints)


def check_numbers(numbers, constraints: dict) -> None:
    """Each (name, value, loc, where) within the spec's constraints on the name, `where` saying
    which section gave it (`set`, `vary`): a key's and an answers file's `set:` both (grade.py).
    SpecError at loc otherwise."""
    from archcalc.reader.symbols import broken_constraint

    for name, value, loc, where in numbers:
        rules = constraints.get(name) or {}
        broken = broken_constraint(value, rules)
        if broken:
            shown = ", ".join(f"{k}: {v}" for k, v in rules.items())
            raise SpecError(f"{where} {name}: {value} {broken} (the spec constrains {name} to {{{shown}}})", loc)


__all__ = ["Key", "Question", "check_against_spec", "load_key", "parse_key"]
