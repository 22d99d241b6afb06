"""Drawings of a spec's layer graph: Graphviz dot and Mermaid (no PyTorch needed).

One box per layer, labelled with its dotted name, its kind and its output shape (batch excluded);
the network input is a node of its own; an edge runs from each of a layer's inputs to the layer.
Layers expanded from a block instance are drawn inside a box (a dot cluster, a Mermaid subgraph)
labelled with the instance's name and block kind, nested as the blocks nest.

With `depth=N` (`archcalc export --depth N`), layers whose dotted name has more than N parts
are folded into one box per name prefix, exactly as `analyze --depth N` folds its rows
(Report.folded): the box shows the prefix, the block's kind, the output shape of its last layer
and its totals (params, MACs for the whole batch, as the table's); it has a double border. An
edge runs between two boxes wherever a layer of one reads a layer of the other (once, however
many layers do); edges inside a box are not drawn. Depth 0 or None: every layer.

`to_svg`/`to_png` run Graphviz's `dot` (when it is on PATH). `mermaid_size` measures a diagram as
Mermaid does (its `maxTextSize`, 50,000 characters by default: past it Mermaid draws
"Maximum text size in diagram exceeded"), and `check_mermaid_size` refuses one past it, naming
the largest `--depth` that fits.
"""
from __future__ import annotations

import re
from typing import NamedTuple

from archcalc.analysis import formula
from archcalc.analysis.walk import analyze_graph
from archcalc.errors import SpecError, one_line
from archcalc.reader.graph import Graph


def _shape(shape) -> str:
    return "[" + ", ".join(str(n) for n in shape) + "]"


class _Box(NamedTuple):
    """One box of a drawing: a layer, or (folded) a block prefix standing for several layers."""

    name: str  # unique: a layer's dotted name or a folded prefix (a prefix seen again gets `#2`, ...)
    label: str
    blocks: tuple  # the enclosing block instances drawn around it, as Node.blocks
    folded: bool = False


def _boxes(graph: Graph, depth: int | None = None, report=None) -> tuple[list[_Box], list[tuple[str, str]]]:
    """The boxes to draw, in graph order, and the edges (source box, box) between them; validates
    the graph (its analysis). `depth` folds as Report.folded does: a new box for each run of
    consecutive layers under one prefix."""
    report = report or analyze_graph(graph)
    if not depth:
        boxes = [_Box(node.name, _label(node, row.output_shape), node.blocks)
                 for node, row in zip(graph.nodes, report.layers)]
        return boxes, [(src, node.name) for node in graph.nodes for src in node.inputs]
    rows = iter(report.folded(depth))
    boxes, box_of, seen = [], {}, {}
    last = None  # the prefix of the box being filled; None after a layer drawn as itself
    for node in graph.nodes:
        parts = node.name.split(".")
        if len(parts) <= depth:
            row = next(rows)
            boxes.append(_Box(node.name, _label(node, row.output_shape), node.blocks))
            last = None
        elif ".".join(parts[:depth]) != last:
            last = ".".join(parts[:depth])
            row = next(rows)
            seen[last] = seen.get(last, 0) + 1
            name = last if seen[last] == 1 else f"{last}#{seen[last]}"
            label = "\n".join((last, row.kind, _shape(row.output_shape), f"params {formula.text(row.params)}",
                               f"MACs {formula.text(row.macs)}"))
            # The block instances around the box (those with fewer name parts than the prefix);
            # the instance the box stands for, and those inside it, are not drawn.
            outer = tuple(b for b in node.blocks if b[0].count(".") + 1 < depth)
            boxes.append(_Box(name, label, outer, folded=True))
        box_of[node.name] = boxes[-1].name
    edges = {}
    for node in graph.nodes:
        for src in node.inputs:
            edge = (box_of.get(src, src), box_of[node.name])  # a network input is a box of its own
            if edge[0] != edge[1]:
                edges[edge] = None
    return boxes, list(edges)


def _input_label(graph: Graph, net_input) -> str:
    """The label of one network input (each input is a node of its own, named as layers read it)."""
    shape = _shape(net_input.shape)
    if graph.symbols:  # in the user's symbols (H, not 2*H_2 for `H: {multiple_of: 2}`), as the layers are
        from archcalc.reader.symbols import shown

        shape = _shape([shown(n, graph.back) for n in net_input.shape])
    return "\n".join((net_input.name, f"tokens {shape}" if net_input.tokens and graph.named_inputs else shape))


def _label(node, shape) -> str:
    return "\n".join((node.name, node.kind, _shape(shape)))


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


def _nested(boxes: list[_Box], close: str, open_group, box_line) -> list[str]:
    """The box lines of a drawing, each block instance a nested group: `open_group(instance,
    kind)` gives the lines opening a group, `close` the line ending it, `box_line(box)` a box's
    line (the format's own syntax)."""
    lines, depth = [], 1
    for box, closes, opens in _block_steps(boxes):
        for _ in range(closes):
            depth -= 1
            lines.append("  " * depth + close)
        if box is None:
            break
        for instance, kind in opens:
            lines += ["  " * depth + line for line in open_group(instance, kind)]
            depth += 1
        lines.append("  " * depth + box_line(box))
    return lines


def to_dot(graph: Graph, depth: int | None = None) -> str:
    """The graph as a Graphviz digraph (render with `dot -Tsvg net.dot -o net.svg`); `depth`
    folds blocks deeper than it into one box each (the module's docstring)."""
    boxes, edges = _boxes(graph, depth)
    out = [f"digraph {_dot_quote(graph.name)} {{",
           "  rankdir=TB;",
           '  node [shape=box, style=rounded, fontname="Helvetica"];',
           '  edge [fontname="Helvetica"];']
    out += [f"  {_dot_quote(i.name)} [label={_dot_quote(_input_label(graph, i))}, shape=ellipse];" for i in graph.inputs]
    out += _nested(boxes, "}",
                   lambda instance, kind: [f"subgraph {_dot_quote('cluster_' + instance)} {{",
                                           f"  label={_dot_quote(f'{instance} ({kind})')}; style=dashed;"],
                   lambda box: f"{_dot_quote(box.name)} [label={_dot_quote(box.label)}"
                               f"{', peripheries=2' if box.folded else ''}];")
    out += [f"  {_dot_quote(src)} -> {_dot_quote(dst)};" for src, dst in edges]
    out.append("}")
    return "\n".join(out) + "\n"


#: The output formats of Graphviz's `dot` that `archcalc export --to` offers.
GRAPHVIZ_FORMATS = ("svg", "png")


def graphviz_render(dot_text: str, fmt: str) -> bytes:
    """Run Graphviz's `dot -T<fmt>` on `dot_text` (on its stdin) and return what it wrote (its
    stdout). A SpecError when `dot` is not on PATH (install Graphviz, or write --to dot) or when
    it fails (its first line of stderr)."""
    import shutil
    import subprocess

    if fmt not in GRAPHVIZ_FORMATS:
        raise ValueError(f"fmt must be one of {GRAPHVIZ_FORMATS}, not {fmt!r}")
    exe = shutil.which("dot")
    if exe is None:
        raise SpecError(f"--to {fmt} runs Graphviz's `dot`, which is not on PATH: install Graphviz "
                        "(https://graphviz.org/download/: apt install graphviz, brew install graphviz, "
                        "conda install graphviz), or write the drawing with --to dot")
    try:
        done = subprocess.run([exe, f"-T{fmt}"], input=dot_text.encode("utf-8"), capture_output=True)
    except OSError as exc:
        raise SpecError(f"--to {fmt}: cannot run Graphviz's dot ({exe}): {exc.strerror or exc}") from None
    if done.returncode != 0:
        said = [line for line in done.stderr.decode("utf-8", "replace").splitlines() if line.strip()]
        why = said[0].strip() if said else (f"killed by signal {-done.returncode}" if done.returncode < 0
                                            else f"exit status {done.returncode}, nothing on stderr")
        raise SpecError(one_line(f"--to {fmt}: Graphviz's dot ({exe}) failed: {why}"))
    return done.stdout


def to_svg(graph: Graph, depth: int | None = None) -> bytes:
    """The drawing of `to_dot` as SVG, rendered by Graphviz's `dot` (graphviz_render)."""
    return graphviz_render(to_dot(graph, depth), "svg")


def to_png(graph: Graph, depth: int | None = None) -> bytes:
    """The drawing of `to_dot` as PNG, rendered by Graphviz's `dot` (graphviz_render)."""
    return graphviz_render(to_dot(graph, depth), "png")


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


def to_mermaid(graph: Graph, depth: int | None = None, report=None) -> str:
    """The graph as a Markdown ```mermaid block (GitHub, GitLab and many editors draw it); `depth`
    folds blocks deeper than it into one box each (a subroutine box, `[[...]]`)."""
    boxes, edges = _boxes(graph, depth, report)
    ids = _Ids()
    lines = ["```mermaid", "flowchart TD"]
    lines += [f"  {ids(i.name)}([{_mermaid_text(_input_label(graph, i))}])" for i in graph.inputs]
    lines += _nested(boxes, "end",
                     lambda instance, kind: [f"subgraph {ids('subgraph ' + instance)} "
                                             f"[{_mermaid_text(f'{instance} ({kind})')}]"],
                     lambda box: f"{ids(box.name)}[[{_mermaid_text(box.label)}]]" if box.folded
                     else f"{ids(box.name)}[{_mermaid_text(box.label)}]")
    lines += [f"  {ids(src)} --> {ids(dst)}" for src, dst in edges]
    lines.append("```")
    return "\n".join(lines) + "\n"


#: Mermaid's default `maxTextSize` (mermaid.js.org/config/schema-docs/config.html#maxtextsize;
#: MAX_TEXTLENGTH = 50_000 in mermaid's mermaidAPI.ts): a longer diagram is drawn as one box saying
#: "Maximum text size in diagram exceeded".
MERMAID_MAX_TEXT = 50_000


def mermaid_size(text: str) -> int:
    """The length Mermaid compares with maxTextSize: the diagram inside the ```mermaid fence, in
    JavaScript's string length (UTF-16 code units: a character outside the BMP counts 2)."""
    lines = text.removesuffix("\n").split("\n")
    if lines[0] == "```mermaid" and lines[-1] == "```":
        lines = lines[1:-1]
    body = "".join(line + "\n" for line in lines)  # a fenced block's text: each of its lines and its newline
    return len(body.encode("utf-16-le")) // 2


def check_mermaid_size(graph: Graph, text: str, depth: int | None = None, limit: int = MERMAID_MAX_TEXT) -> None:
    """A SpecError when `text` (to_mermaid(graph, depth)) is past Mermaid's default maxTextSize:
    it gives the size, and the largest --depth whose diagram fits (or says that none does)."""
    size = mermaid_size(text)
    if size <= limit:
        return
    report = analyze_graph(graph)
    deepest = max((len(node.name.split(".")) for node in graph.nodes), default=1)
    below = min(depth or deepest, deepest) - 1  # depths at or past the deepest name draw every layer
    fits = None
    for d in range(below, 0, -1):
        d_size = mermaid_size(to_mermaid(graph, d, report))
        if d_size <= limit:
            fits = (d, d_size)
            break
    head = (f"the Mermaid diagram is {size:,} characters, past Mermaid's default limit of {limit:,} "
            "(maxTextSize; past it Mermaid draws only \"Maximum text size in diagram exceeded\")")
    if fits:
        advice = (f"draw it with --depth {fits[0]} ({fits[1]:,} characters: blocks deeper than that folded "
                  "into one box each)")
    elif below >= 1:
        advice = "even --depth 1 is too long: draw it with --to dot or --to svg (Graphviz has no such limit)"
    else:
        advice = "its layers are not in blocks to fold: draw it with --to dot or --to svg (Graphviz has no such limit)"
    raise SpecError(f"{head}: {advice}, or write it anyway with --force for a renderer set to a larger "
                    "maxTextSize")


__all__ = ["GRAPHVIZ_FORMATS", "MERMAID_MAX_TEXT", "check_mermaid_size", "graphviz_render", "mermaid_size",
           "to_dot", "to_mermaid", "to_png", "to_svg"]
