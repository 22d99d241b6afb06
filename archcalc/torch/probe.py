"""Measure receptive fields with a gradient probe: the oracle for archcalc's analytic fields.

The probe network is a linear, positive stand-in of the spec with the same geometry:
- every layer with an `out` argument gets one output channel (`groups` 1, no bias, zero padding
  mode): receptive fields do not depend on channel counts, and one channel keeps the probe cheap
  even for very wide networks;
- weights are 1; activations, normalisation and dropout become identities and max pooling a
  window of ones (each layer kind's `probe_module` says how it is stood in for);
- it runs in float64 on the CPU, on an input of ones large enough for the deepest field to fit:
  the spec's own input size when that is enough, else doubled until it is.

For a layer whose field is tracked, the gradient of one output position with respect to the
input is nonzero exactly on the pixels that position sees. Per spatial axis:
- size: the extent of that support, the largest over q + 1 consecutive outputs, where q is the
  denominator of the stride (1 for whole strides; after upsampling or a transposed convolution
  neighbouring outputs see different extents, and archcalc reports the largest);
- stride: how far the support's first pixel moves from output c to output c + q, divided by q;
- start: extrapolated to output 0 from output c, first(c) - c * stride (output 0's window may
  lie partly in the padding, which has no gradient to measure).
Outputs reported "global" are checked to depend, one output alone, on every input pixel that
the layer's outputs depend on together (every pixel unless strides larger than kernels skip
some). After a plain `flatten`, "global" is a convention (later layers treat the tensor as a
vector) and is not measured.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import torch

from archcalc.analysis.rf import GLOBAL, RF, spatial_dims
from archcalc.analysis.walk import analyze_graph
from archcalc.errors import SpecError
from archcalc.layers import KINDS
from archcalc.spec.graph import INPUT, Graph, Node

#: Arguments set for the probe: one channel, no bias, plain zero padding.
PROBE_ARGS = {"out": 1, "groups": 1, "bias": False, "padding_mode": "zeros", "num_parameters": 1}
MAX_ELEMENTS = 1 << 20  # largest probe input (pixels of one example) the doubling may reach
MAX_PERIOD = 8  # longest period (in outputs) of a field that the probe recognises
#: Memory the probe may plan for (float64 values and their gradients, every layer's output kept
#: for the backward pass): checked from the planned shapes before anything is allocated.
MAX_PROBE_BYTES = 1 << 30


@dataclass
class Probed:
    expected: object  # the analytic field of the probe network (RF or GLOBAL)
    measured: object  # RF, GLOBAL, or None when not measured
    note: str = ""
    at: tuple | None = None  # the probe input it was measured on

    @property
    def ok(self):
        if self.measured is None:
            return None
        if isinstance(self.expected, RF) and isinstance(self.measured, RF):
            e, m = self.expected, self.measured
            return (e.size, e.stride, e.start) == (m.size, m.stride, m.start)
        return self.expected == self.measured


def _period(rf: RF) -> int:
    """Outputs after which the claimed windows repeat: the probe looks at two such periods, so
    that the measured period (found from the gradients alone) rests on enough outputs."""
    return math.lcm(*(Fraction(j).denominator for j in rf.stride), *(a.q for a in rf.exact_axes()))


def _centre(m: int, q: int) -> int | None:
    """A multiple of q near the middle of an axis of m outputs with room for c .. c + 2q."""
    if m < 2 * q + 1:
        return None
    return (m - 2 * q) // 2 // q * q


def _spatial_sizes(rf: RF, shape: tuple) -> list:
    """The output's sizes along its spatial axes, wherever a permute put them (RF.layout)."""
    return [shape[d] for d in spatial_dims(rf, len(shape))]


def _fits(rf: RF, out: tuple, size: tuple) -> bool:
    q = _period(rf)
    for axis, (m, n) in enumerate(zip(_spatial_sizes(rf, out), size)):
        c = _centre(m, q)
        if c is None:
            return False
        lo = rf.start[axis] + c * rf.stride[axis]
        hi = rf.start[axis] + (c + 2 * q) * rf.stride[axis] + rf.size[axis] - 1
        if lo < 1 or hi > n - 2:  # a pixel of margin: fractional windows round either way
            return False
    return True


def _probe_graph(graph: Graph, keep: list[Node], size: tuple) -> Graph:
    nodes = []
    for node in keep:
        args = KINDS[node.kind].probe_args({k: PROBE_ARGS.get(k, v) if k in PROBE_ARGS else v
                                            for k, v in node.args.items()})
        # Fields are measured against the first input (several inputs: `inputs:`), which the probe
        # network reads as its one input; layers with a field read no other input.
        inputs = tuple(INPUT if i == graph.input_names[0] else i for i in node.inputs)
        nodes.append(Node(node.name, node.kind, args, inputs, node.loc, node.arg_locs, node.blocks))
    return Graph(graph.name, (1,) + tuple(size), nodes, graph.file, graph.input_loc)


def probe_receptive_fields(graph: Graph, report) -> tuple[dict[str, Probed], list[tuple]]:
    """Measured fields per layer name, and the probe inputs used (none when nothing is probed).

    Each field is measured on the spec's own input size when it fits there, else on the
    smallest doubling of it where it does, so the figures of size-dependent layers (adaptive
    pooling) are checked at the user's size wherever possible."""
    if len(graph.input_shape) < 2 or graph.tokens:  # token ids have no spatial axes
        return {}, []
    fields = {row.name: row.rf for row in report.layers}
    keep = [n for n in graph.nodes if isinstance(fields[n.name], RF) or fields[n.name] == GLOBAL]
    results: dict[str, Probed] = {}
    used = []
    previous = None  # output shapes of the layers still waiting, at the last size tried
    size = tuple(graph.input_shape[1:])
    while keep and len(results) < len(keep):
        try:
            probe_graph = _probe_graph(graph, keep, size)
            probe_report = analyze_graph(probe_graph)
        except SpecError as exc:
            note = f"the one-channel probe network cannot be built: {exc.message}"
            return {n.name: results.get(n.name, Probed(fields[n.name], None, note)) for n in keep}, used
        waiting = {row.name: row.output_shape for row in probe_report.layers
                   if row.name not in results and isinstance(row.rf, RF)
                   and not _fits(row.rf, row.output_shape, size)}
        # Stop doubling at the size budget, or when doubling stopped helping: the layers still
        # waiting have outputs of fixed size (adaptive pooling, resizing to a size).
        last_try = (math.prod(size) * 2 ** len(size) > MAX_ELEMENTS
                    or (previous is not None and all(previous.get(n) == s for n, s in waiting.items())))
        todo = {row.name for row in probe_report.layers if row.name not in results
                and (row.name not in waiting or last_try)}
        need = _planned_bytes(probe_graph, probe_report, todo) if todo else 0
        if need > MAX_PROBE_BYTES:  # refuse before allocating: a [3, 1e5, 1e5] input would take 240 GB
            from archcalc.render import human_bytes

            note = (f"not probed: the one-channel probe network on a {' x '.join(map(str, size))} input would "
                    f"need {human_bytes(need)}, more than its budget of {human_bytes(MAX_PROBE_BYTES)}")
            return {n.name: results.get(n.name, Probed(fields[n.name], None, note)) for n in keep}, used
        if todo:
            results.update(_measure(probe_graph, probe_report, size, todo))
            used.append((1,) + size)
        previous = waiting
        size = tuple(2 * n for n in size)
    return results, used


def _probe_batch(rows: dict, todo: set) -> int:
    """Two full periods of outputs (of the longest period measured), so that a period can be recognised."""
    periods = [_period(rows[name].rf) for name in todo if isinstance(rows[name].rf, RF)]
    return 2 * max(1, min(MAX_PERIOD, max(periods, default=1))) + 1


def _planned_bytes(graph: Graph, report, todo: set) -> int:
    """Bytes of the probe's tensors at this size: the input and every output, in float64, with
    their gradients (an upper bound: autograd keeps no more than that)."""
    batch = _probe_batch({row.name: row for row in report.layers}, todo)
    elements = math.prod(graph.input_shape) + sum(math.prod(row.output_shape) for row in report.layers)
    return 2 * 8 * batch * elements


def _measure(graph: Graph, report, size: tuple, todo: set) -> dict[str, Probed]:
    rows = {row.name: row for row in report.layers}
    shapes = {INPUT: graph.input_shape, **{name: row.output_shape for name, row in rows.items()}}
    batch = _probe_batch(rows, todo)
    x = torch.ones((batch,) + tuple(graph.input_shape), dtype=torch.float64, requires_grad=True)
    values = {INPUT: x}
    with torch.no_grad():
        modules = {}
        for node in graph.nodes:
            module = KINDS[node.kind].probe_module(node.args, [shapes[i] for i in node.inputs]).double()
            for p in module.parameters():
                p.fill_(1.0)
                p.requires_grad_(False)
            modules[node.name] = module.eval()
    for node in graph.nodes:
        values[node.name] = modules[node.name](*(values[i] for i in node.inputs))

    results: dict[str, Probed] = {}
    mixed: dict[str, bool] = {INPUT: False}  # does this output truly see the whole input?
    measured_tensors: dict[int, Probed] = {}
    for node in graph.nodes:
        row = rows[node.name]
        if row.rf == GLOBAL:
            mixed[node.name] = _mixes(node, shapes) or any(mixed[i] for i in node.inputs)
            if node.name not in todo:
                continue
            if not mixed[node.name]:
                results[node.name] = Probed(GLOBAL, None, "global by convention after flatten (not measured)")
                continue
            results[node.name] = Probed(GLOBAL, _whole_input(values[node.name], x, size))
            continue
        mixed[node.name] = False
        if node.name in todo:
            # Stand-ins that are identities return their input tensor itself: its support was
            # measured already, and measuring the same tensor again would give the same answer.
            same = measured_tensors.get(id(values[node.name]))
            if same is not None and same.expected == row.rf:
                results[node.name] = Probed(row.rf, same.measured, same.note)
            else:
                results[node.name] = _measure_field(row, values[node.name], x, size, batch)
                measured_tensors[id(values[node.name])] = results[node.name]
    for probed in results.values():
        probed.at = (1,) + size
    return results


def _mixes(node: Node, shapes: dict) -> bool:
    """Does this kind itself make every output see its whole input? Asked of the kind's own rule,
    with tracked fields coming in (flatten says "global" only by convention)."""
    layer = KINDS[node.kind]
    if layer.global_by_convention:
        return False
    in_shapes = [shapes[i] for i in node.inputs]
    fields = [RF.identity(max(1, len(s) - 1)) for s in in_shapes]
    return layer.rf(node.args, fields, in_shapes, shapes[node.name]) == GLOBAL


def _support(grad: torch.Tensor, axes: int) -> list[tuple[int, int] | None]:
    """(first, last) nonzero index along each spatial axis of one example's gradient."""
    nonzero = grad.ne(0)
    out = []
    for axis in range(axes):
        others = tuple(a for a in range(axes) if a != axis)
        line = nonzero.any(dim=others) if others else nonzero
        idx = line.nonzero().flatten()
        out.append((int(idx[0]), int(idx[-1])) if len(idx) else None)
    return out


def _whole_input(out: torch.Tensor, x: torch.Tensor, size: tuple):
    """GLOBAL when one output depends on every input pixel that the layer's outputs depend on at
    all: every pixel, unless strides larger than kernels skip some (then none of the outputs sees
    those, and "global" still means "sees all that this network reads")."""
    (one,) = torch.autograd.grad(out[0].flatten()[0], x, retain_graph=True)
    (every,) = torch.autograd.grad(out[0].sum(), x, retain_graph=True)
    if torch.equal(one[0, 0].ne(0), every[0, 0].ne(0)):
        return GLOBAL
    support = _support(one[0, 0], len(size))
    if any(s is None for s in support):
        return None
    return RF(tuple(last - first + 1 for first, last in support), (0,) * len(size),
              tuple(first for first, _ in support))


def _measure_field(row, out: torch.Tensor, x: torch.Tensor, size: tuple, batch: int) -> Probed:
    rf, shape = row.rf, row.output_shape
    q = _period(rf)
    if q > MAX_PERIOD:
        return Probed(rf, None, f"stride period {q} is too long to probe")
    centre = [_centre(m, q) for m in _spatial_sizes(rf, shape)]
    if any(c is None for c in centre) or not _fits(rf, shape, size):
        return Probed(rf, None, f"the probe input {list(size)} is too small for this field")
    # Example b of the batch picks output position c + b on every axis (the diagonal), as far
    # as the outputs reach and their windows stay clear of the input's edges; axes are
    # independent, so each is read from its own coordinate.
    count = q + 1
    while count < min(batch, 2 * q + 1) and all(
            c + count < m and rf.start[a] + (c + count) * rf.stride[a] + rf.size[a] - 1 <= n - 2
            for a, (c, m, n) in enumerate(zip(centre, _spatial_sizes(rf, shape), size))):
        count += 1
    picked = 0
    dims = spatial_dims(rf, len(shape))
    for b in range(count):
        index = [slice(None)] * len(shape)  # every channel (wherever it is) of one position
        for d, c in zip(dims, centre):
            index[d] = c + b
        picked = picked + out[(b, *index)].sum()
    (grad,) = torch.autograd.grad(picked, x, retain_graph=True)
    if count < 2 * q + 1:
        return Probed(rf, None, f"only {count} outputs lie clear of the input's edges; two periods of "
                                f"{q} are needed to measure this field")
    supports = [_support(grad[b, 0], len(size)) for b in range(count)]
    if any(s is None for sup in supports for s in sup):
        return Probed(rf, None, "no gradient reached the input")
    sizes, strides, starts = [], [], []
    for axis, c in enumerate(centre):
        firsts = [sup[axis][0] for sup in supports]
        extents = [sup[axis][1] - sup[axis][0] + 1 for sup in supports]
        period = _repeat_length(firsts, extents)
        if period is None:
            return Probed(rf, None, f"windows vary between outputs, and the {count} outputs clear of the "
                                    "input's edges are too few to see them repeat")
        sizes.append(max(extents[:period]))
        stride = Fraction(firsts[period] - firsts[0], period)
        strides.append(_plain(stride))
        # Extrapolate from an output in the same phase of the period as output 0.
        b = -c % period
        starts.append(_plain(firsts[b] - (c + b) * stride))
    return Probed(rf, RF(tuple(sizes), tuple(strides), tuple(starts)))


def _repeat_length(firsts: list, extents: list) -> int | None:
    """The smallest p for which consecutive outputs repeat with period p: equal extents and an
    equal shift of the first pixel, checked over every pair the probed outputs allow."""
    n = len(firsts)
    for p in range(1, n):
        if 2 * p >= n and p > 1:
            break
        shift = firsts[p] - firsts[0]
        if all(firsts[b + p] - firsts[b] == shift and extents[b + p] == extents[b] for b in range(n - p)):
            return p
    return None


def _plain(value: Fraction):
    return value.numerator if value.denominator == 1 else value
