"""The Python API: what the CLI calls, usable from notebooks.

    >>> import archcalc
    >>> report = archcalc.analyze("specs/zoo/resnet18.yaml")
    >>> report.totals.trainable_params
    11689512
"""
from __future__ import annotations

from os import PathLike

from archcalc.analysis.report import Report
from archcalc.analysis.walk import analyze_graph
from archcalc.spec.graph import Graph
from archcalc.spec.parse import load_spec, parse_spec


def analyze(spec: str | PathLike | Graph, *, batch: int = 1, dtype: str = "float32",
            input_shape=None) -> Report:
    """Analyse a spec file (path), or an already loaded `Graph`.

    `input_shape` (channels first, batch excluded) overrides the spec's `input`.
    Raises `archcalc.SpecError` for any mistake in the spec.
    """
    graph = spec if isinstance(spec, Graph) else load_spec(spec, input_shape=input_shape)
    return analyze_graph(graph, batch=batch, dtype=dtype)


def analyze_text(text: str, *, filename: str = "<spec>", batch: int = 1, dtype: str = "float32",
                 input_shape=None) -> Report:
    """Analyse a spec given as YAML text."""
    return analyze_graph(parse_spec(text, filename, input_shape=input_shape), batch=batch, dtype=dtype)


__all__ = ["analyze", "analyze_text", "load_spec", "parse_spec"]
