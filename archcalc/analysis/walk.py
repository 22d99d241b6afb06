"""One pass over the graph: ask each node's kind for its figures."""
from __future__ import annotations

from archcalc.analysis.report import DTYPE_BYTES, LayerResult, Report, make_totals
from archcalc.analysis.rf import RF
from archcalc.errors import LayerError, SpecError
from archcalc.layers import KINDS
from archcalc.layers._window import is_num
from archcalc.spec.graph import INPUT, Graph
from archcalc.spec.parse import gc_paused


def analyze_graph(graph: Graph, batch: int = 1, dtype: str = "float32") -> Report:
    with gc_paused():  # see parse_spec: allocation-only work, no cycles to collect
        return _walk(graph, batch, dtype)


def _walk(graph: Graph, batch: int, dtype: str) -> Report:
    if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1:
        raise SpecError(f"batch must be a positive integer, got {batch!r}")
    if dtype not in DTYPE_BYTES:
        raise SpecError(f"unknown dtype '{dtype}'; expected one of {', '.join(DTYPE_BYTES)}")
    size = DTYPE_BYTES[dtype]
    for n in graph.input_shape:
        if is_num(n) and n < 1:
            raise SpecError(f"input sizes must be positive, got {list(graph.input_shape)}", graph.input_loc)
    shapes = {INPUT: tuple(graph.input_shape)}
    rfs = {INPUT: RF.identity(len(graph.input_shape) - 1) if len(graph.input_shape) > 1 else None}
    rows = []
    for node in graph.nodes:
        layer = KINDS[node.kind]
        a = node.args
        in_shapes = [shapes[i] for i in node.inputs]
        try:
            out = tuple(layer.output_shape(a, in_shapes))
            for n in out:
                if is_num(n) and n < 1:
                    raise LayerError(f"the output shape would be {list(out)}; sizes must be positive "
                                     f"(input {', '.join(str(list(s)) for s in in_shapes)})")
            trainable, frozen = layer.params(a, in_shapes)
            macs = layer.macs(a, in_shapes, out) * batch
            rf = layer.rf(a, [rfs[i] for i in node.inputs], in_shapes, out)
        except LayerError as exc:
            loc = node.arg_locs.get(exc.arg, node.loc) if exc.arg else node.loc
            raise SpecError(exc.message, loc, node.name, node.kind) from None
        shapes[node.name] = out
        rfs[node.name] = rf
        elements = batch
        for n in out:
            elements *= n
        rows.append(LayerResult(node.name, node.kind, node.inputs, out, trainable, frozen, macs, rf,
                                elements * size, node.blocks))
    output = shapes[graph.output]
    return Report(graph.name, tuple(graph.input_shape), batch, dtype, rows, output,
                  make_totals(rows, graph.input_shape, batch, dtype))
