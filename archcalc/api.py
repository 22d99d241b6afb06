"""The Python API: what the CLI calls, usable from notebooks.

    >>> import archcalc
    >>> report = archcalc.analyze("specs/zoo/resnet18.yaml")
    >>> report.totals.trainable_params
    11689512
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from contextlib import contextmanager
from os import PathLike

from archcalc.analysis.report import Report
from archcalc.analysis.walk import analyze_graph
from archcalc.errors import SpecError, one_line
from archcalc.reader.graph import Graph
from archcalc.reader.parse import load_spec, parse_spec


def analyze(spec: str | PathLike | Graph | dict, *, batch: int = 1, dtype: str = "float32",
            input_shape=None, bindings: dict | None = None, assume_divisible: bool = False) -> Report:
    """Analyse a spec file (path), an import source (`model.onnx`, a Hugging Face `config.json` or
    a folder holding one, `net.py:Net`, `torchvision:resnet50`: see `archcalc.import_source`), a
    spec as Python data (a dict, as the YAML file reads: `{"input": [784], "layers": [{"linear":
    10}]}`), or an already loaded `Graph`.

    `input_shape` (channels first, batch excluded) overrides the spec's `input` (with `inputs:`,
    the first input; a dict {name: shape} overrides inputs by name, `input` being the first). With symbolic
    sizes (`input: [1, H, W]`) figures are sympy formulas; `bindings` gives symbols (or vars)
    numbers, like `--set H=28`; `assume_divisible` takes every size symbol as a multiple of the
    network's total stride along its axis, so that floors simplify (`--assume divisible`).
    Raises `archcalc.SpecError` for any mistake in the spec.
    """
    if isinstance(spec, Graph):
        return analyze_graph(spec, batch=batch, dtype=dtype)
    with _placed(spec):
        return _analyze(_loader(spec, input_shape, bindings), bindings, assume_divisible, batch, dtype)


DICT_SPEC = "<dict>"


@contextmanager
def _placed(spec):
    """A spec given as a dict has no file: its mistakes name the layer, not a line and column of
    the text it was written to."""
    try:
        yield
    except SpecError as exc:
        if not isinstance(spec, Mapping) or exc.loc is None or exc.loc.file != DICT_SPEC:
            raise
        raise SpecError(exc.message, None, exc.layer, exc.kind) from None


_PLAIN = (str, int, float, bool, type(None))


def _dict_text(spec: Mapping) -> str:
    """The spec text of a spec given as Python data. JSON is YAML: the dict is written as JSON and
    read by the same reader as a file, so a dict means exactly what the same YAML would."""
    def check(value, where):
        if isinstance(value, Mapping):
            for key, item in value.items():
                if not isinstance(key, str):
                    raise SpecError(f"{where}: the key {key!r} is not a string; a spec's keys are names")
                check(item, f"{where}.{key}")
        elif isinstance(value, (list, tuple)):
            for i, item in enumerate(value):
                check(item, f"{where}[{i}]")
        elif not isinstance(value, _PLAIN) or (isinstance(value, float) and value != value):
            raise SpecError(f"{where}: {type(value).__name__} {one_line(repr(value))[:60]} cannot be written "
                            "in a spec; expected a str, int, float, bool, None, list or dict")

    check(spec, "spec")
    return json.dumps(spec, indent=1, ensure_ascii=False, allow_nan=False)


def _loader(spec, input_shape, bindings):
    """`load(**options)` for a spec file, or for an import source where a spec goes (`model.onnx`,
    `llama/config.json`, `net.py:Net`): the source is imported once, its spec read from the text."""
    from archcalc.importers import import_source, is_import_source

    if isinstance(spec, Mapping):
        text = _dict_text(spec)
        return lambda **kw: parse_spec(text, DICT_SPEC, input_shape=input_shape, **{"bindings": bindings, **kw})
    if not is_import_source(spec):
        return lambda **kw: load_spec(spec, input_shape=input_shape, **{"bindings": bindings, **kw})
    text = import_source(str(spec), _input_text(input_shape))
    return lambda **kw: parse_spec(text, f"{spec} (imported)", input_shape=input_shape,
                                   **{"bindings": bindings, **kw})


def load_source(spec, *, input_shape=None, bindings: dict | None = None) -> Graph:
    """`load_spec` that also takes an import source (`model.onnx`, `config.json`, `net.py:Net`)."""
    return _loader(spec, input_shape, bindings)()


def _input_text(input_shape):
    """`--input` as an importer reads it: `3,224,224`, or `name=80,3000;ids=448`."""
    if input_shape is None or isinstance(input_shape, str):
        return input_shape
    if isinstance(input_shape, dict):
        return ";".join(f"{name}={','.join(map(str, shape))}" for name, shape in input_shape.items())
    return ",".join(map(str, input_shape))


def load_graph(spec: str | PathLike | dict, *, input_shape=None, bindings: dict | None = None,
               assume_divisible: bool = False) -> Graph:
    """The validated graph of a spec file (or an import source, or a spec as a dict), with the
    options of `analyze` applied."""
    with _placed(spec):
        return _graph(_loader(spec, input_shape, bindings), bindings, assume_divisible)


def _graph(load, bindings, assume_divisible) -> Graph:
    """`load(**options)` reads the spec with `bindings`/`multiples` overriding the defaults."""
    graph = load()
    if assume_divisible and graph.symbols:
        graph = load(multiples=divisible_multiples(analyze_graph(graph), graph))
    if any("min" in rules for rules in graph.constraints.values()):
        # The formulas hold only where the network is valid: check it at the smallest allowed size.
        smallest = smallest_sizes(graph)
        try:
            analyze_graph(load(bindings={**(bindings or {}), **smallest}))
        except SpecError as exc:
            at = ", ".join(f"{k}={v}" for k, v in smallest.items())
            raise SpecError(f"{exc.message} (at the smallest allowed size {at})", exc.loc, exc.layer,
                            exc.kind) from None
    return graph


def _analyze(load, bindings, assume_divisible, batch, dtype) -> Report:
    graph = _graph(load, bindings, assume_divisible)
    report = analyze_graph(graph, batch=batch, dtype=dtype)
    return report


def smallest_sizes(graph: Graph) -> dict:
    """The smallest size each symbol may take under its constraints (min, rounded up to multiple_of)."""
    out = {}
    for name, rules in graph.constraints.items():
        m = rules.get("multiple_of", 1)
        low = rules.get("min", m)
        out[name] = -(-low // m) * m
    return out


def analyze_text(text: str, *, filename: str = "<spec>", batch: int = 1, dtype: str = "float32",
                 input_shape=None, bindings: dict | None = None, assume_divisible: bool = False) -> Report:
    """Analyse a spec given as YAML text (options as for `analyze`)."""
    return _analyze(lambda **kw: parse_spec(text, filename, input_shape=input_shape,
                                            **{"bindings": bindings, **kw}),
                    bindings, assume_divisible, batch, dtype)


def divisible_multiples(report: Report, graph: Graph) -> dict:
    """For `--assume divisible`: each symbol sizing a spatial axis is taken as a multiple of the
    largest whole stride any layer reaches along that axis (32 for a ResNet), so that every floor
    of the network divides evenly."""
    from math import lcm

    from archcalc.geometry.receptive_field import RF

    multiples: dict = {}
    for axis, size in enumerate(graph.input_shape[1:]):
        strides = [row.rf.stride[axis] for row in report.layers
                   if isinstance(row.rf, RF) and isinstance(row.rf.stride[axis], int)]
        step = lcm(*strides) if strides else 1
        for sym in getattr(size, "free_symbols", ()):
            name = str(sym) if str(sym) in graph.symbols else str(sym).rsplit("_", 1)[0]
            multiples[name] = lcm(multiples.get(name, 1), step)
    return multiples


__all__ = ["analyze", "analyze_text", "load_graph", "load_spec", "parse_spec"]
