"""Padding assumed or left out, seen in the figures of the layers after it and in the totals: a
student who takes Written Assignment 1's unpadded 5 x 5 convolution as 'same' gets 40*H*W + 426
trainable parameters instead of 40*(H - 4)*(W - 4) + 426 (the fully connected layer's weights follow
the sizes). The network is analysed again with the convolution(s) padded the mistaken way; these
rules need the spec's graph (archcalc check and grade have it)."""
from __future__ import annotations

import dataclasses

from archcalc.errors import SpecError
from archcalc.homework.check import _axes_text, format_expected, sum_
from archcalc.homework.mistakes.base import Wrong, mistake

FIGURES = ("params", "trainable_params", "macs", "flops", "activation_bytes", "output_shape")
WHAT = {"params": "parameter count", "trainable_params": "parameter count", "macs": "MAC count",
        "flops": "FLOP count", "activation_bytes": "activation memory", "output_shape": "output shape"}
MAX_SINGLES = 8  # convolutions changed one at a time up to this many; beyond, only all of them together
_TOTALS = {"params": "params", "trainable_params": "trainable_params", "macs": "macs", "flops": "flops",
           "activation_bytes": "activation_bytes"}


def _convs(net, padded: bool) -> list:
    """(node, row, geometry) of the convolutions that pad (padded) or do not pad (not padded, and
    whose every window D(K-1) is even, so that 'same' is symmetric)."""
    out = []
    for node in getattr(net.graph, "nodes", ()) or ():
        row = net.rows.get(node.name)
        if node.kind != "conv" or row is None:
            continue
        geometry = net.window_geometry(row)
        if geometry is None:
            continue
        _, spans, _, pads = geometry
        if padded and any(p != 0 for p in pads):
            out.append((node, row, geometry))
        elif not padded and not any(p != 0 for p in pads) and any(k > 0 for k in spans) \
                and all(k % 2 == 0 for k in spans):
            out.append((node, row, geometry))
    return out


def variant(net, changes: dict):
    """The network analysed with `changes` ({node name: {argument: value}}); None where it does not
    analyse (or without the spec's graph). Cached on `net`."""
    if net.graph is None:
        return None
    cache = net.__dict__.setdefault("_variants", {})
    key = tuple(sorted((k, tuple(sorted((a, str(v)) for a, v in c.items()))) for k, c in changes.items()))
    if key not in cache:
        from archcalc.analysis.walk import analyze_graph

        graph = net.graph
        nodes = [dataclasses.replace(n, args={**n.args, **changes[n.name]}) if n.name in changes else n
                 for n in graph.nodes]
        try:
            cache[key] = analyze_graph(dataclasses.replace(graph, nodes=nodes), batch=net.batch,
                                       dtype=net.report.dtype)
        except (SpecError, ArithmeticError, TypeError, ValueError):
            cache[key] = None
    return cache[key]


def figure_of(net, report, case):
    """The asked figure of the asked layer, block or total in another analysis of the network."""
    figure = case.figure
    if figure == "output_shape":
        name = case.target.rows[-1].name if not case.is_total else None
        shape = report.output_shape if name is None else \
            next((r.output_shape for r in report.layers if r.name == name), None)
        return None if shape is None else tuple(net.norm(n) for n in shape)
    if case.is_total:
        return net.norm(getattr(report.totals, _TOTALS[figure]))
    names = {r.name for r in case.target.rows}
    rows = [r for r in report.layers if r.name in names]
    if len(rows) != len(names):
        return None
    return net.norm(sum_(getattr(r, figure) for r in rows))


def _padding(values):
    values = [int(v) for v in values]
    return values[0] if len(set(values)) == 1 else values


def _wrongs(case, convs, padding_of, fields_of):
    """One Wrong per single changed convolution, and one with all of them changed."""
    net = case.net
    if net.graph is None or not convs:
        return None
    # each one alone (on a homework-sized network: every variant is one more analysis), and all together
    singles = [[c] for c in convs] if len(convs) <= MAX_SINGLES else []
    groups = singles + ([convs] if len(convs) > 1 or not singles else [])
    out = []
    for group in groups:
        changes = {node.name: {"padding": padding_of(geometry)} for node, _, geometry in group}
        report = variant(net, changes)
        if report is None:
            continue
        value = figure_of(net, report, case)
        if value is None:
            continue
        first = group[0][0].name
        mistaken = next((r.output_shape for r in report.layers if r.name == first), None)
        names = [node.name for node, _, _ in group]
        layers = names[0] if len(names) == 1 else ", ".join(names[:-1]) + f" and {names[-1]}"
        fields = {"what": WHAT[case.figure], "layers": layers, "first": first,
                  "mistaken": format_expected(tuple(net.norm(n) for n in mistaken), "output_shape"),
                  "actual": format_expected(tuple(net.norm(n) for n in group[0][1].output_shape), "output_shape")}
        fields.update(fields_of(group))
        out.append(Wrong(value, **fields))
    return out


@mistake("padding_assumed", FIGURES, rank=60,
         hint="that is the {what} if {layers} padded {pad} ('same'); {layers} {has} no padding: {first}'s "
              "output is {actual}, not {mistaken}, and every later size (a linear layer's weights too) follows "
              "from it")
def padding_assumed(case):
    """The figure with an unpadded convolution (or all of them) padded 'same' (P = D(K-1)/2)."""
    return _wrongs(case, _convs(case.net, padded=False), lambda g: _padding(k // 2 for k in g[1]),
                   lambda group: {"pad": _axes_text(tuple(k // 2 for k in group[0][2][1])),
                                  "has": "has" if len(group) == 1 else "have"})


@mistake("padding_left_out", FIGURES, rank=60,
         hint="that is the {what} without the padding of {layers}; {layers} {pads} {pad}: {first}'s output is "
              "{actual}, not {mistaken}, and every later size (a linear layer's weights too) follows from it")
def padding_left_out(case):
    """The figure with a padded convolution (or all of them) unpadded (P = 0)."""
    return _wrongs(case, _convs(case.net, padded=True), lambda g: 0,
                   lambda group: {"pad": _axes_text(tuple(group[0][2][3])),
                                  "pads": "pads" if len(group) == 1 else "pad"})
