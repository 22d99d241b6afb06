"""Drawings of a spec's layer graph: Graphviz dot and Mermaid (no PyTorch needed).

One box per layer, labelled with its dotted name, its kind and its output shape (batch excluded);
the network input is a node of its own; an edge runs from each of a layer's inputs to the layer.
Layers expanded from a block instance are drawn inside a box (a dot cluster, a Mermaid subgraph)
labelled with the instance's name and block kind, nested as the blocks nest.
"""
from __future__ import annotations

import re

from archcalc.analysis.walk import analyze_graph
from archcalc.errors import one_line
from archcalc.reader.graph import Graph


def _shape(shape) -> str:
    return "[" + ", ".join(str(n) for n in shape) + "]"


def _layers(graph: Graph):
    """(node, output shape) per layer, in graph order; validates the graph."""
    report = analyze_graph(graph)
    return list(zip(graph.nodes, (row.output_shape for row in report.layers)))


def _input_label(graph: Graph, net_input) -> str:
    """The label of one network input (each input is a node of its own, named as layers read it)."""
    shape = _shape(net_input.shape)
    if graph.symbols:  # in the user's symbols (H, not 2*H_2 for `H: {multiple_of: 2}`), as the layers are
        from archcalc.reader.symbols import shown

        shape = _shape([shown(n, graph.back) for n in net_input.shape])
    return "\n".join((net_input.name, f"tokens {shape}" if net_input.tokens and graph.named_inputs else shape))


def _label(node, shapes) -> str:
    return "\n".join((node.name, node.kind, _shape(shapes[node.name])))


def _block_steps(nodes):
    """For each node: the block instances to close, then those to open, before writing it.

    Yields (node, closes, opens) with `closes` a count and `opens` a list of (instance, kind);
    a last (None, closes, []) closes what is still open. The nodes of one block instance are
    consecutive in the graph, so a stack suffices.
    """
    stack: list[tuple] = []
    for node in nodes:
        path = list(node.blocks)
        common = 0
        while common < min(len(stack), len(path)) and stack[common] == path[common]:
            common += 1
        closes = len(stack) - common
        opens = path[common:]
        stack = path
        yield node, closes, opens
    yield None, len(stack), []


# --- Graphviz ---------------------------------------------------------------------------------

def _dot_quote(text: str) -> str:
    """A double-quoted dot ID; `\\n` in `text` stays a line break of the label, every other
    control character is written as an escape (archcalc.errors.one_line) and shows as such."""
    lines = (one_line(line).replace("\\", "\\\\").replace('"', '\\"') for line in text.split("\n"))
    return '"' + "\\n".join(lines) + '"'


def _nested(graph: Graph, shapes: dict, close: str, open_group, node_line) -> list[str]:
    """The layer lines of a drawing, each block instance a nested group: `open_group(instance,
    kind)` gives the lines opening a group, `close` the line ending it, `node_line(node, label)`
    a layer's line (the format's own syntax)."""
    lines, depth = [], 1
    for node, closes, opens in _block_steps(graph.nodes):
        for _ in range(closes):
            depth -= 1
            lines.append("  " * depth + close)
        if node is None:
            break
        for instance, kind in opens:
            lines += ["  " * depth + line for line in open_group(instance, kind)]
            depth += 1
        lines.append("  " * depth + node_line(node, _label(node, shapes)))
    return lines


def to_dot(graph: Graph) -> str:
    """The graph as a Graphviz digraph (render with `dot -Tsvg net.dot -o net.svg`)."""
    layers = _layers(graph)
    shapes = {node.name: shape for node, shape in layers}
    out = [f"digraph {_dot_quote(graph.name)} {{",
           "  rankdir=TB;",
           '  node [shape=box, style=rounded, fontname="Helvetica"];',
           '  edge [fontname="Helvetica"];']
    out += [f"  {_dot_quote(i.name)} [label={_dot_quote(_input_label(graph, i))}, shape=ellipse];" for i in graph.inputs]
    out += _nested(graph, shapes, "}",
                   lambda instance, kind: [f"subgraph {_dot_quote('cluster_' + instance)} {{",
                                           f"  label={_dot_quote(f'{instance} ({kind})')}; style=dashed;"],
                   lambda node, label: f"{_dot_quote(node.name)} [label={_dot_quote(label)}];")
    out += [f"  {_dot_quote(src)} -> {_dot_quote(node.name)};" for node in graph.nodes for src in node.inputs]
    out.append("}")
    return "\n".join(out) + "\n"


# --- Mermaid ----------------------------------------------------------------------------------

# Words a Mermaid flowchart reads as keywords when used as a node id.
_MERMAID_RESERVED = {"end", "graph", "flowchart", "subgraph", "direction", "style", "class", "classdef",
                     "click", "linkstyle", "default", "call", "href"}


class _Ids:
    """Unique Mermaid ids from dotted names: `layer1.1.conv1` -> `layer1_1_conv1`."""

    def __init__(self):
        self.by_key: dict[str, str] = {}
        self.used: set[str] = set()

    def __call__(self, key: str) -> str:
        if key not in self.by_key:
            base = re.sub(r"[^A-Za-z0-9_]", "_", key) or "n"
            if base.lower() in _MERMAID_RESERVED or not base[0].isalpha():
                base = "n_" + base
            ident, i = base, 2
            while ident in self.used:
                ident, i = f"{base}_{i}", i + 1
            self.used.add(ident)
            self.by_key[key] = ident
        return self.by_key[key]


# Mermaid's entity codes (#quot;, #35;) for what would end a label, open HTML or, for a backtick,
# a Markdown string or the ``` fence around the diagram; '#' itself first, so that text holding
# "#quot;" shows as written.
_MERMAID = str.maketrans({"#": "#35;", "&": "#amp;", '"': "#quot;", "<": "#lt;", ">": "#gt;", "`": "#96;"})


def _mermaid_text(text: str) -> str:
    """A quoted Mermaid label; lines are joined with <br/>."""
    return '"' + "<br/>".join(one_line(line).translate(_MERMAID) for line in text.split("\n")) + '"'


def to_mermaid(graph: Graph) -> str:
    """The graph as a Markdown ```mermaid block (GitHub, GitLab and many editors draw it)."""
    layers = _layers(graph)
    shapes = {node.name: shape for node, shape in layers}
    ids = _Ids()
    lines = ["```mermaid", "flowchart TD"]
    lines += [f"  {ids(i.name)}([{_mermaid_text(_input_label(graph, i))}])" for i in graph.inputs]
    lines += _nested(graph, shapes, "end",
                     lambda instance, kind: [f"subgraph {ids('subgraph ' + instance)} "
                                             f"[{_mermaid_text(f'{instance} ({kind})')}]"],
                     lambda node, label: f"{ids(node.name)}[{_mermaid_text(label)}]")
    lines += [f"  {ids(src)} --> {ids(node.name)}" for node in graph.nodes for src in node.inputs]
    lines.append("```")
    return "\n".join(lines) + "\n"


__all__ = ["to_dot", "to_mermaid"]
