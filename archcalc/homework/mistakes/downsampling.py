"""A pooling layer's downsampling forgotten, seen in the layers after it and in the totals: in
Written Assignment 1 the fully connected layer then gets 16*(H - 4)*(W - 4)*10 weights instead of
16*(H - 4)/2*(W - 4)/2*10. The network is analysed again with the pooling made a 1 x 1 window of
stride 1 (it passes its input through); needs the spec's graph."""
from __future__ import annotations

from archcalc.homework.check import _axes_text, format_expected
from archcalc.homework.mistakes.base import Wrong, mistake
from archcalc.homework.mistakes.padding import FIGURES, MAX_SINGLES, WHAT, figure_of, variant

POOLS = ("maxpool", "avgpool")


@mistake("downsampling_forgotten", FIGURES, rank=60,
         hint="that is the {what} without {layer}'s downsampling, as if its output were {mistaken}; {layer} has "
              "stride {stride}: its output is {actual}, and every later size (a linear layer's weights too) "
              "follows from it")
def downsampling_forgotten(case):
    """The figure with one pooling layer of stride > 1 passing its input through (kernel 1, stride 1)."""
    net = case.net
    if net.graph is None:
        return None
    out = []
    pools = [n for n in net.graph.nodes if n.kind in POOLS]
    if len(pools) > MAX_SINGLES:  # each is one more analysis: homework-sized networks only
        return None
    for node in pools:
        row = net.rows.get(node.name)
        if node.kind not in POOLS or row is None or case.single is not None and case.single.name == node.name:
            continue
        geometry = net.window_geometry(row)
        if geometry is None or not any(s > 1 for s in geometry[2]):
            continue
        args = {"kernel": 1, "stride": 1, "padding": 0}
        if "dilation" in node.args:
            args["dilation"] = 1
        report = variant(net, {node.name: args})
        if report is None:
            continue
        value = figure_of(net, report, case)
        if value is None:
            continue
        mistaken = next(r.output_shape for r in report.layers if r.name == node.name)
        out.append(Wrong(value, what=WHAT[case.figure], layer=node.name, stride=_axes_text(geometry[2]),
                         mistaken=format_expected(tuple(net.norm(n) for n in mistaken), "output_shape"),
                         actual=format_expected(tuple(net.norm(n) for n in row.output_shape), "output_shape")))
    return out or None
