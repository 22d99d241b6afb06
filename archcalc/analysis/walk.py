"""One pass over the graph: ask each node's kind for its figures."""
from __future__ import annotations

from archcalc.analysis.report import DTYPE_BYTES, LayerResult, Report, make_totals
from archcalc.geometry import receptive_field as rf_module
from archcalc.geometry.receptive_field import RF
from archcalc.errors import LayerError, SpecError
from archcalc.layers import KINDS
from archcalc.geometry.window import is_num
from archcalc.layers.base import prod
from archcalc.reader.graph import INPUT, Graph
from archcalc.reader.parse import gc_paused


#: Largest figure of one layer (values in its output, parameters, MACs): far past any real network,
#: and short enough to print (Python refuses to print integers of over 4,300 digits; a shape of
#: 200 sizes of 10^30 would have 6,000).
MAX_FIGURE = 10**308



def moved_axes(layer, rfs) -> bool:
    """Do the layer's inputs have their spatial axes elsewhere than [C, spatial...], for a kind
    that only passes such fields on (archcalc.geometry.receptive_field.moved)?"""
    return not layer.moves_axes and any(isinstance(r, RF) and r.layout is not None for r in rfs)


def layer_field(layer, a, rfs, shapes, out):
    """The receptive field of a layer's output: its kind's rule, or, where a permute moved the
    spatial axes, kept only through what mixes none of them."""
    if moved_axes(layer, rfs):
        return rf_module.moved(rfs, shapes, out, layer.mixed_dims(a, shapes))
    return layer.rf(a, rfs, shapes, out)

def input_fields(graph: Graph) -> dict:
    """Receptive fields of the network's inputs. Fields are measured in pixels of the FIRST input,
    when it has spatial axes (rank 2 or more, real values): it starts with the identity field. Token
    ids, inputs of rank 1 and every other input have no field, so a value that depends on one of
    them (alone, or merged with the first input's) has none either."""
    first = graph.inputs[0]
    spatial = len(first.shape) > 1 and not first.tokens  # token ids have no spatial axes
    rfs = {i.name: None for i in graph.inputs}
    rfs[first.name] = RF.identity(len(first.shape) - 1) if spatial else None
    return rfs


def _past_limit(value) -> bool:
    return is_num(value) and abs(value) > MAX_FIGURE


def analyze_graph(graph: Graph, batch: int = 1, dtype: str = "float32") -> Report:
    with gc_paused():  # see parse_spec: allocation-only work, no cycles to collect
        return _walk(graph, batch, dtype)


def _walk(graph: Graph, batch: int, dtype: str) -> Report:
    rf_module.reset_work()
    if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1:
        raise SpecError(f"batch must be a positive integer, got {batch!r}")
    if dtype not in DTYPE_BYTES:
        raise SpecError(f"unknown dtype '{dtype}'; expected one of {', '.join(DTYPE_BYTES)}")
    size = DTYPE_BYTES[dtype]
    for net_input in graph.inputs:
        what = "input" if not graph.named_inputs else f"input '{net_input.name}'"
        for n in net_input.shape:
            if is_num(n) and n < 1:
                raise SpecError(f"{what} sizes must be positive, got {list(net_input.shape)}", net_input.loc)
        if _past_limit(prod(net_input.shape)):
            raise SpecError(f"the {what} would hold more than 1e308 values ({len(net_input.shape)} sizes)",
                            net_input.loc)
    shapes = dict(graph.input_shapes)
    rfs = input_fields(graph)
    tokens = set(graph.token_inputs)  # values holding integer token ids
    ties = {}  # tied layer -> the node that shares its weight
    for node in graph.nodes:
        target = KINDS[node.kind].tied_to(node.args)
        if target is not None:
            ties[target] = node
    order = {node.name: i for i, node in enumerate(graph.nodes)} if ties else {}  # not list.index: O(n) each
    rows = []
    for node in graph.nodes:
        layer = KINDS[node.kind]
        a = node.args
        in_shapes = [shapes[i] for i in node.inputs]
        try:
            _check_reads(layer, node, tokens)
            out = tuple(layer.output_shape(a, in_shapes))
            if _past_limit(prod(out)):
                raise LayerError(f"the output would hold more than 1e308 values ({len(out)} sizes)")
            for n in out:
                if is_num(n) and n < 1:
                    raise LayerError(f"the output shape would be {list(out)}; sizes must be positive "
                                     f"(input {', '.join(str(list(s)) for s in in_shapes)})")
            trainable, frozen = layer.params(a, in_shapes)
            inactive = layer.inactive_params(a, in_shapes)  # routed experts a token is not sent to
            if not node.trainable:  # `trainable: false`: every parameter frozen (requires_grad=False)
                trainable, frozen = 0, trainable + frozen
            shared = 0
            if node.name in ties:
                owner = ties[node.name]
                if order[owner.name] > order[node.name]:
                    raise LayerError(f"'{owner.name}' ties its weight to this layer, which comes before it; "
                                     "tie to a later layer")
                if owner.trainable != node.trainable:  # one tensor has one requires_grad
                    frozen_one, other = (owner, node) if not owner.trainable else (node, owner)
                    raise SpecError(f"'{owner.name}' shares its weight with '{node.name}', but "
                                    f"'{frozen_one.name}' is frozen (trainable: false) and '{other.name}' is not; "
                                    "a shared weight is trainable in both or in neither",
                                    owner.arg_locs.get("tie", owner.loc), owner.name, owner.kind)
                try:
                    shared = KINDS[owner.kind].shared_params(owner.args, [shapes[i] for i in owner.inputs],
                                                             node.kind, a, in_shapes)
                except LayerError as exc:  # reported where the tie is written
                    raise SpecError(exc.message, owner.arg_locs.get("tie", owner.loc), owner.name,
                                    owner.kind) from None
            macs = layer.macs(a, in_shapes, out) * batch
            if _past_limit(trainable + frozen) or _past_limit(macs):
                raise LayerError("the layer would have more than 1e308 parameters or MACs")
            try:
                rf = layer_field(layer, a, [rfs[i] for i in node.inputs], in_shapes, out)
            except TypeError:
                if not graph.symbols:
                    raise
                rf = None  # windows that depend on symbolic sizes (adaptive pooling, resizing)
        except LayerError as exc:
            loc = node.arg_locs.get(exc.arg, node.loc) if exc.arg else node.loc
            raise SpecError(exc.message, loc, node.name, node.kind) from None
        except OverflowError:  # a size past what a float holds (upsampling by 1e30 ten times)
            raise SpecError("a figure of this layer is too large to compute (past 1e308)", node.loc, node.name,
                            node.kind) from None
        except TypeError:
            if not graph.symbols:
                raise
            # A rule had to compare sizes that are formulas (sympy cannot decide H > 3).
            raise SpecError(f"{node.kind} cannot be analysed with symbolic sizes here; give the symbols "
                            f"numbers with --set (e.g. --set {graph.symbols[0]}=28)", node.loc, node.name,
                            node.kind) from None
        shapes[node.name] = out
        rfs[node.name] = rf
        if layer.reads == "any" and all(i in tokens for i in node.inputs):
            tokens.add(node.name)
        elements = batch
        for n in out:
            elements *= n
        rows.append(LayerResult(node.name, node.kind, node.inputs, out, trainable, frozen, macs, rf,
                                elements * size, node.blocks, shared, ties[node.name].name if shared else None,
                                frozen=not node.trainable,
                                active_params=None if inactive is None else trainable + frozen - inactive))
    output = shapes[graph.output]
    report = Report(graph.name, tuple(graph.input_shape), batch, dtype, rows, output,
                    make_totals(rows, [i.shape for i in graph.inputs], batch, dtype))
    if graph.named_inputs:  # `inputs:`: each listed
        report.inputs = tuple((i.name, tuple(i.shape), i.tokens) for i in graph.inputs)
    if graph.symbols:
        report = _in_user_symbols(report, graph)
    return report


def _check_reads(layer, node, tokens: set) -> None:
    """Token ids (integers) go into an embedding; real values do not."""
    given = [name in tokens for name in node.inputs]
    if layer.reads == "tokens" and not all(given):
        raise LayerError(f"{node.kind} reads integer token ids, but its input holds real values; token ids "
                         "come from the input (written `input: {tokens: [T]}`) or an index operation on it")
    if layer.reads == "float" and any(given):
        raise LayerError(f"{node.kind} reads real values, but its input holds integer token ids; "
                         "token ids go through an embedding first")


def _in_user_symbols(report: Report, graph: Graph) -> Report:
    """Show symbolic figures simplified and in the user's own symbols (H, not H_4 = H/4)."""
    from dataclasses import replace

    from archcalc.reader.symbols import shown

    def fix(value):
        return shown(value, graph.back)

    rows = [replace(row, output_shape=tuple(map(fix, row.output_shape)), trainable_params=fix(row.trainable_params),
                    non_trainable_params=fix(row.non_trainable_params), macs=fix(row.macs),
                    activation_bytes=fix(row.activation_bytes),
                    active_params=None if row.active_params is None else fix(row.active_params))
            for row in report.layers]
    t = report.totals
    totals = replace(t, params=fix(t.params), trainable_params=fix(t.trainable_params),
                     active_params=None if t.active_params is None else fix(t.active_params),
                     non_trainable_params=fix(t.non_trainable_params), macs=fix(t.macs),
                     param_bytes=fix(t.param_bytes), activation_bytes=fix(t.activation_bytes),
                     input_bytes=fix(t.input_bytes))
    return replace(report, input_shape=tuple(map(fix, report.input_shape)), layers=rows,
                   inputs=tuple((n, tuple(map(fix, s)), t) for n, s, t in report.inputs),
                   output_shape=tuple(map(fix, report.output_shape)), totals=totals, symbols=graph.symbols,
                   constraints=graph.constraints)
