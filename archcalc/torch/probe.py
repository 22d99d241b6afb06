"""Measure receptive fields with a gradient probe: the oracle for archcalc's analytic fields.

The probe network is a linear, positive stand-in of the spec with the same geometry:
- every layer with an `out` argument gets one output channel (`groups` 1, no bias, zero padding
  mode): receptive fields do not depend on channel counts, and one channel keeps the probe cheap
  even for very wide networks;
- weights are 1; activations, normalisation and dropout become identities and max pooling a
  window of ones (each layer kind's `probe_module` says how it is stood in for);
- it runs in float64 on the CPU, on inputs of ones.

Where fields are measured:
- on the spec's own input size, every field that fits there (two periods of outputs whose windows
  lie clear of the input's edges on every axis), and every "global" one;
- every other field on thin strips, one per spatial axis: the input made longer along that axis
  (k times the spec's size, k = 2, 3, 4, 6, 8, 12, ...: the first that holds the field) and left
  at the spec's size along the others. A strip carries only the layers the measured ones read
  (so a network whose later layers need a fixed size, flatten -> linear, is probed up to where
  fields become global). The gradient of outputs c, c + 1, ... along the long axis, summed over
  every position of the other axes, is nonzero along that axis exactly on the pixels those outputs
  see: with positive weights nothing cancels, and along the long axis each route through the
  network reads the same pixels at every position of the others.

For a layer whose field is tracked, per spatial axis, from 2q + 1 consecutive outputs (q: the
claimed period of the windows along that axis, 1 for whole strides):
- the period p: the smallest after which the windows repeat, shifted by the same amount;
- size: the widest window over one period (after upsampling or a transposed convolution
  neighbouring outputs see different extents, and archcalc reports the largest);
- stride: how far the first pixel moves over one period, divided by its length;
- start: extrapolated to output 0 from an output c in the same phase, first(c) - c * stride
  (output 0's window may lie partly in the padding, which has no gradient to measure).
Outputs reported "global" are checked to depend, one output alone, on every input pixel that
the layer's outputs depend on together (every pixel unless strides larger than kernels skip
some). After a plain `flatten`, "global" is a convention (later layers treat the tensor as a
vector) and is not measured.

Bounds: every probe run plans its tensors (float64 values and gradients of every output it
keeps) before allocating and stays within MAX_PROBE_BYTES, taking fewer examples per backward
pass where two periods of outputs would not fit at once; a strip is at most MAX_STRIP pixels
long; periods longer than MAX_PERIOD outputs are not read. Work: one forward pass on the spec's
size and at most one per strip length and axis; per layer and axis ceil((2q + 1) / examples)
backward passes (one for ordinary fields). What cannot be measured within these bounds is
reported as not measured, with the reason, per layer.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import torch

from archcalc.geometry.receptive_field import GLOBAL, RF, spatial_dims
from archcalc.analysis.walk import analyze_graph
from archcalc.errors import SpecError
from archcalc.layers import KINDS
from archcalc.reader.graph import INPUT, Graph, NetInput, Node

#: Arguments set for the probe: one channel, no bias, plain zero padding.
PROBE_ARGS = {"out": 1, "groups": 1, "bias": False, "padding_mode": "zeros", "num_parameters": 1}
MAX_STRIP = 1 << 16  # longest strip: pixels along its long axis
MAX_PERIOD = 64  # longest period (in outputs) of a field that the probe reads (2q + 1 outputs)
MAX_FIXED_TRIES = 64  # strip lengths tried for a layer whose output has a fixed size (`_scan_fixed`)
#: Memory one probe run may plan for (float64 values and their gradients, every layer's output
#: kept for the backward pass): checked from the planned shapes before anything is allocated.
MAX_PROBE_BYTES = 1 << 30


def strip_multiples():
    """Strip lengths, as multiples of the spec's own size along the axis: 2, 3, 4, 6, 8, 12, ...
    (each within 3/2 of the one before, so a field is measured on a strip less than 3/2 of the
    shortest that would hold it, as the lengths go)."""
    k = 2
    while True:
        yield k
        yield k * 3 // 2
        k *= 2


@dataclass
class Probed:
    expected: object  # the analytic field of the probe network (RF or GLOBAL)
    measured: object  # RF, GLOBAL, or None when not measured
    note: str = ""
    at: tuple = ()  # the probe inputs it was measured on: the spec's size, or one strip per axis

    @property
    def at_text(self) -> str:
        return ", ".join(str(list(shape)) for shape in self.at)

    @property
    def ok(self):
        if self.measured is None:
            return None
        if isinstance(self.expected, RF) and isinstance(self.measured, RF):
            e, m = self.expected, self.measured
            return (e.size, e.stride, e.start) == (m.size, m.stride, m.start)
        return self.expected == self.measured


def _period(rf: RF) -> int:
    """Outputs after which the claimed windows repeat on every axis at once: the probe looks at
    two such periods, so that the measured period (found from the gradients alone) rests on
    enough outputs."""
    return math.lcm(*(_axis_period(rf, axis) for axis in range(len(rf.size))))


def _axis_period(rf: RF, axis: int) -> int:
    """Outputs after which the claimed windows repeat along one axis."""
    return math.lcm(Fraction(rf.stride[axis]).denominator, rf.exact_axes()[axis].q)


def _centre(m: int, q: int) -> int | None:
    """A multiple of q near the middle of an axis of m outputs with room for c .. c + 2q."""
    if m < 2 * q + 1:
        return None
    return (m - 2 * q) // 2 // q * q


def _spatial_sizes(rf: RF, shape: tuple) -> list:
    """The output's sizes along its spatial axes, wherever a permute put them (RF.layout)."""
    return [shape[d] for d in spatial_dims(rf, len(shape))]


def _fits(rf: RF, out: tuple, size: tuple) -> bool:
    """Do two periods of outputs near the middle see windows clear of the input's edges, on every
    axis at once (outputs c + t on the diagonal, q the period over all axes)?"""
    q = _period(rf)
    return q <= MAX_PERIOD and all(_fits_axis(rf, out, size[axis], axis, q) for axis in range(len(size)))


def _fits_axis(rf: RF, out: tuple, n: int, axis: int, q: int) -> bool:
    """Outputs c .. c + 2q along `axis` (c near the middle of its m outputs) see windows clear of
    the ends of an input of n pixels along it."""
    c = _centre(_spatial_sizes(rf, out)[axis], q)
    if c is None:
        return False
    lo = rf.start[axis] + c * rf.stride[axis]
    hi = rf.start[axis] + (c + 2 * q) * rf.stride[axis] + rf.size[axis] - 1
    return lo >= 1 and hi <= n - 2  # a pixel of margin: fractional windows round either way


def _probe_graph(graph: Graph, keep: list[Node], size: tuple) -> Graph:
    nodes = []
    for node in keep:
        args = KINDS[node.kind].probe_args({k: PROBE_ARGS.get(k, v) if k in PROBE_ARGS else v
                                            for k, v in node.args.items()})
        # Fields are measured against the first input (several inputs: `inputs:`), which the probe
        # network reads as its one input; layers with a field read no other input.
        inputs = tuple(INPUT if i == graph.input_names[0] else i for i in node.inputs)
        nodes.append(Node(node.name, node.kind, args, inputs, node.loc, node.arg_locs, node.blocks))
    return Graph(graph.name, nodes, (NetInput(INPUT, (1,) + tuple(size), False, graph.input_loc),), graph.file)


def probe_receptive_fields(graph: Graph, report) -> tuple[dict[str, Probed], list[tuple]]:
    """Measured fields per layer name, and the probe inputs used (none when nothing is probed).

    Each field is measured on the spec's own input size when it fits there, so the figures of
    size-dependent layers (adaptive pooling) are checked at the user's size wherever possible;
    every other one on strips, one per spatial axis (`_strips`).

    It runs on one CPU thread: its one-channel tensors are small, and PyTorch's threads cost
    more to keep in step than they save (DenseNet-121's probe took 42 s of wall time on two
    busy cores, 4 s on one)."""
    if len(graph.input_shape) < 2 or graph.tokens:  # token ids have no spatial axes
        return {}, []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _probe(graph, report)
    finally:
        torch.set_num_threads(threads)


def _probe(graph: Graph, report) -> tuple[dict[str, Probed], list[tuple]]:
    fields = {row.name: row.rf for row in report.layers}
    keep = [n for n in graph.nodes if isinstance(fields[n.name], RF) or fields[n.name] == GLOBAL]
    if not keep:
        return {}, []
    size = tuple(graph.input_shape[1:])
    try:
        probe_graph = _probe_graph(graph, keep, size)
        rows = {row.name: row for row in analyze_graph(probe_graph).layers}
    except SpecError as exc:
        note = f"the one-channel probe network cannot be built: {exc.message}"
        return {n.name: Probed(fields[n.name], None, note) for n in keep}, []
    results: dict[str, Probed] = {}
    used = []
    for node in keep:
        if not (isinstance(rows[node.name].rf, RF) or rows[node.name].rf == GLOBAL):
            results[node.name] = Probed(fields[node.name], None, "the one-channel probe network does not track "
                                                                  "this field")
    todo = [n.name for n in keep if n.name not in results and (
        rows[n.name].rf == GLOBAL or _fits(rows[n.name].rf, rows[n.name].output_shape, size))]
    if todo:
        nodes = _ancestors(probe_graph.nodes, todo)
        batch = _examples(nodes, rows, (1,) + size, _reads(rows, todo))
        if batch == 0:  # refuse before allocating: a [3, 1e5, 1e5] input would take 240 GB
            note = "not probed: " + _over_budget(nodes, rows, (1,) + size, "input")
            results.update({name: Probed(rows[name].rf, None, note) for name in todo})
        else:
            results.update(_measure(nodes, rows, size, set(todo), batch))
            used.append((1,) + size)
    waiting = [n.name for n in keep if n.name not in results]
    if waiting:
        found, strips = _strips(graph, keep, rows, waiting, size)
        results.update(found)
        used += strips
    return results, used


def _strips(graph: Graph, keep: list[Node], rows: dict, waiting: list, size: tuple):
    """Fields measured on strips: per spatial axis, the input made k times longer along it (the
    first k of `strip_multiples` that holds the field) and left at the spec's size along the
    others. The figures of each axis come from its own strip; a field is measured when every
    axis is."""
    parts: dict[str, list] = {name: [] for name in waiting}
    used = []
    for axis in range(len(size)):
        found, strips = _strip_axis(graph, keep, rows, waiting, size, axis)
        used += strips
        for name in waiting:
            parts[name].append(found[name])
    results = {}
    for name in waiting:
        spec_rf = rows[name].rf
        notes = [part for part in parts[name] if isinstance(part, str)]
        if notes:
            results[name] = Probed(spec_rf, None, notes[0])
            continue
        measured = [part[0] for part in parts[name]]
        claimed = [part[1] for part in parts[name]]
        expected = RF(*(tuple(c[i] for c in claimed) for i in range(3)), spec_rf.misaligned, layout=spec_rf.layout)
        if expected == spec_rf:
            expected = spec_rf
        results[name] = Probed(expected, RF(*(tuple(m[i] for m in measured) for i in range(3))), "",
                               tuple(part[2] for part in parts[name]))
    return results, used


def _strip_axis(graph: Graph, keep: list[Node], spec_rows: dict, waiting: list, size: tuple, axis: int):
    """Per waiting layer, along `axis`: (measured (size, stride, start), the probe network's
    claim on that strip, the strip) or why it is not measured; and the strips used."""
    dim = axis + 1  # as the spec counts its input's dims (0: channels)
    pending = list(waiting)
    found: dict[str, object] = {}
    used = []
    first_sizes = {name: _spatial_sizes(spec_rows[name].rf, spec_rows[name].output_shape)[axis] for name in pending}
    seen, grew = set(), set()  # layers analysed on a strip; those whose output along this axis grew
    reason = None
    for k in strip_multiples():
        length = size[axis] * k
        strip = size[:axis] + (length,) + size[axis + 1:]
        if length > MAX_STRIP:
            reason = (f"along dim {dim} the field needs an input longer than {MAX_STRIP:,} pixels, the probe's "
                      "longest strip")
            break
        # Thin first: the other axes as narrow as the network builds at (halving the spec's
        # sizes); the spec's own sizes where none narrower builds.
        for thin in _strip_shapes(size, axis, length):
            try:
                nodes, rows = _strip_network(graph, keep, pending, thin)
                break
            except SpecError as exc:
                error = exc
        else:  # not even on the spec's own sizes across
            reason = (f"the one-channel probe network does not build on a {_shape_text(strip)} input, as measuring "
                      f"along dim {dim} needs: {error.message}")
            break
        ready = []
        for name in pending:
            rf, out = rows[name].rf, rows[name].output_shape
            if not isinstance(rf, RF):
                found[name] = f"on a {_shape_text(strip)} input the one-channel probe network does not track this field"
                continue
            q = _axis_period(rf, axis)
            seen.add(name)
            if _spatial_sizes(rf, out)[axis] != first_sizes[name]:
                grew.add(name)
            if q > MAX_PERIOD:
                found[name] = (f"along dim {dim} its windows repeat every {q} outputs; the probe reads two periods "
                               f"of at most {MAX_PERIOD}")
            elif _fits_axis(rf, out, length, axis, q):
                ready.append(name)
        if ready:
            reads = max(2 * _axis_period(rows[r].rf, axis) + 1 for r in ready)
            measured, why = None, None
            for shape in dict.fromkeys((thin, strip)):  # thin, and the spec's sizes across where it is not enough
                if shape != thin:
                    try:
                        nodes, rows = _strip_network(graph, keep, ready, shape)
                    except SpecError as exc:
                        why = (f"the one-channel probe network does not build on a {_shape_text(shape)} input, as "
                               f"measuring along dim {dim} needs: {exc.message}")
                        break
                sub = _ancestors(nodes, ready)
                batch = _examples(sub, rows, (1,) + shape, reads)
                if batch == 0:
                    why = _over_budget(sub, rows, (1,) + shape, f"strip along dim {dim}")
                    break
                measured = _measure_strip(sub, rows, shape, axis, ready, batch, check_across=shape != strip)
                if measured is not None:
                    found.update(measured)
                    used.append((1,) + shape)
                    break
            if measured is None:
                found.update({name: why for name in ready})
        pending = [name for name in pending if name not in found]
        if not pending:
            break
        # Going on costs at least the shallowest waiting layer's network on a longer strip.
        shallow = _ancestors(nodes, pending[:1])
        if _example_bytes(shallow, rows, (1,) + strip) * 3 // 2 > MAX_PROBE_BYTES:
            reason = (f"along dim {dim} the field needs an input longer than {_shape_text(strip)}, on which the "
                      f"one-channel probe network would need more than its budget of {_budget_text()}")
            break
    fixed = seen - grew  # adaptive pooling, resizing to a size: more input gives no more outputs
    for name in [name for name in pending if name in fixed]:
        more = _scan_fixed(graph, keep, spec_rows, name, size, axis)
        if more is not None:
            found[name], strip = more
            used.append(strip)
    pending = [name for name in pending if name not in found]
    for name in pending:
        if name in fixed:
            m = first_sizes[name]
            found[name] = (f"along dim {dim} its output keeps {m} position{'s' * (m != 1)} at every input length "
                           "tried, too few with windows clear of the input's edges to read two periods of them")
        else:
            found[name] = reason
    return found, used


def _scan_fixed(graph: Graph, keep: list[Node], spec_rows: dict, name: str, size: tuple, axis: int):
    """A layer whose output keeps its m positions along `axis` whatever the input's length
    (adaptive pooling, resizing to a size): its windows repeat with a period set by how its
    input's length and m divide (adaptive pooling from 13 to 6 repeats every 6 outputs, from 12 to
    6 every one), so strips of lengths 2n + t s are tried (n: the spec's length, s: the stride of
    the layer's input's field, so that its input grows by about one each time), at most
    MAX_FIXED_TRIES of them, for one where two periods of its windows lie clear of the input's
    edges. Returns (what `_measure_strip` found for it, the strip) or None."""
    node = next(n for n in keep if n.name == name)
    source = spec_rows.get(node.inputs[0]) if node.inputs else None
    step = max(1, math.floor(source.rf.stride[axis])) if source is not None and isinstance(source.rf, RF) else 1
    for t in range(MAX_FIXED_TRIES):
        length = 2 * size[axis] + t * step
        if length > MAX_STRIP:
            return None
        for thin in _strip_shapes(size, axis, length):
            try:
                nodes, rows = _strip_network(graph, keep, [name], thin)
                break
            except SpecError:
                continue
        else:
            continue
        rf, out = rows[name].rf, rows[name].output_shape
        if not isinstance(rf, RF):
            continue
        q = _axis_period(rf, axis)
        if q > MAX_PERIOD or not _fits_axis(rf, out, length, axis, q):
            continue
        strip = size[:axis] + (length,) + size[axis + 1:]
        for shape in dict.fromkeys((thin, strip)):
            if shape != thin:
                try:
                    nodes, rows = _strip_network(graph, keep, [name], shape)
                except SpecError:
                    return None
            batch = _examples(nodes, rows, (1,) + shape, 2 * q + 1)
            if batch == 0:
                return None
            measured = _measure_strip(nodes, rows, shape, axis, [name], batch, check_across=shape != strip)
            if measured is not None:
                return measured[name], (1,) + shape
        return None
    return None


def _strip_shapes(size: tuple, axis: int, length: int):
    """Strips `length` long along `axis`, thinnest first: the other axes at the spec's sizes
    halved j times (j = as many as leave them at least 1 .. 0), the spec's own sizes last."""
    halvings = max((n.bit_length() - 1 for i, n in enumerate(size) if i != axis), default=0)
    for j in range(halvings, -1, -1):
        yield tuple(length if i == axis else max(1, n >> j) for i, n in enumerate(size))


def _strip_network(graph: Graph, keep: list[Node], wanted: list, shape: tuple):
    """The probe network of the layers `wanted` read, on an input of `shape`, and its analysis."""
    strip_graph = _probe_graph(graph, _ancestors(keep, wanted), shape)
    return strip_graph.nodes, {row.name: row for row in analyze_graph(strip_graph).layers}


def _alive_across(nodes: list[Node], rows: dict, values: dict, axis: int) -> bool:
    """On a thin strip, does every position along every other axis of every output hold a
    nonzero value somewhere (in the forward pass of ones)? Then along those axes each output
    position reads at least one input position that itself sees the input, for every layer, so
    every route through the network reaches the input from every output: summing over the other
    axes, the gradient along `axis` shows exactly what it would on an input as wide as one likes.
    Where some position is zero (zero padding, strides skipping pixels, a transposed
    convolution's empty phases), the strip is measured again at the spec's sizes across."""
    for node in nodes:
        rf = rows[node.name].rf
        if not isinstance(rf, RF):
            return False
        value = values[node.name][0].ne(0)
        dims = spatial_dims(rf, value.dim())
        for other, d in enumerate(dims):
            if other != axis and not value.any(dim=tuple(i for i in range(value.dim()) if i != d)).all():
                return False
    return True


def _shape_text(size: tuple) -> str:
    return " x ".join(map(str, size))


def _ancestors(nodes: list[Node], wanted) -> list[Node]:
    """`wanted` and every node they read, directly or not, in graph order."""
    by_name = {node.name: node for node in nodes}
    seen, stack = set(), list(wanted)
    while stack:
        name = stack.pop()
        if name in by_name and name not in seen:
            seen.add(name)
            stack.extend(by_name[name].inputs)
    return [node for node in nodes if node.name in seen]


def _reads(rows: dict, todo) -> int:
    """Outputs read per layer on the spec's size: two full periods (of the longest), so that a
    period can be recognised."""
    periods = [_period(rows[name].rf) for name in todo if isinstance(rows[name].rf, RF)]
    return 2 * max(periods, default=1) + 1


def _example_bytes(nodes: list[Node], rows: dict, input_shape: tuple) -> int:
    """Bytes of one example's probe tensors: the input and every output, in float64, with their
    gradients (an upper bound: autograd keeps no more than that)."""
    return 2 * 8 * (math.prod(input_shape) + sum(math.prod(rows[n.name].output_shape) for n in nodes))


def _examples(nodes: list[Node], rows: dict, input_shape: tuple, reads: int) -> int:
    """Examples per forward pass: one per output read at once (fewer, read in rounds, where the
    budget would not hold them all); 0 where not even one fits."""
    return min(reads, MAX_PROBE_BYTES // _example_bytes(nodes, rows, input_shape))


def _over_budget(nodes, rows, input_shape, what: str) -> str:
    from archcalc.units import binary_bytes

    return (f"the one-channel probe network on a {_shape_text(input_shape[1:])} {what} would need "
            f"{binary_bytes(_example_bytes(nodes, rows, input_shape))}, more than its budget of {_budget_text()}")


def _budget_text() -> str:
    from archcalc.units import binary_bytes

    return binary_bytes(MAX_PROBE_BYTES)


def _forward(nodes: list[Node], rows: dict, input_shape: tuple, batch: int):
    """The probe network's forward pass on `batch` examples of ones: (input, outputs by name,
    shapes by name)."""
    shapes = {INPUT: tuple(input_shape), **{node.name: rows[node.name].output_shape for node in nodes}}
    x = torch.ones((batch,) + tuple(input_shape), dtype=torch.float64, requires_grad=True)
    values = {INPUT: x}
    with torch.no_grad():
        modules = {}
        for node in nodes:
            module = KINDS[node.kind].probe_module(node.args, [shapes[i] for i in node.inputs]).double()
            for p in module.parameters():
                p.fill_(1.0)
                p.requires_grad_(False)
            modules[node.name] = module.eval()
    for node in nodes:
        values[node.name] = modules[node.name](*(values[i] for i in node.inputs))
    return x, values, shapes


def _measure(nodes: list[Node], rows: dict, size: tuple, todo: set, batch: int) -> dict[str, Probed]:
    """Fields on the spec's own size: every axis read at once, example t picking output c + t on
    every axis (the diagonal: axes are independent)."""
    x, values, shapes = _forward(nodes, rows, (1,) + size, batch)
    results: dict[str, Probed] = {}
    mixed: dict[str, bool] = {INPUT: False}  # does this output truly see the whole input?
    measured_tensors: dict[int, Probed] = {}
    for node in nodes:
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
                results[node.name] = _measure_field(row, values[node.name], x, batch)
                measured_tensors[id(values[node.name])] = results[node.name]
    for probed in results.values():
        probed.at = ((1,) + size,)
    return results


def _measure_strip(nodes: list[Node], rows: dict, strip: tuple, axis: int, todo: list, batch: int,
                   check_across: bool = False) -> dict | None:
    """Fields along `axis` on a strip: example t picks output c + t along it, every position of
    the other axes summed. Per layer: (measured (size, stride, start), claimed, the strip input) or
    why not measured. None when `check_across` and the strip is too thin (`_alive_across`)."""
    x, values, _ = _forward(nodes, rows, (1,) + strip, batch)
    if check_across and not _alive_across(nodes, rows, values, axis):
        return None
    found: dict[str, object] = {}
    done: dict[tuple, object] = {}  # identity stand-ins return their input: measured once
    for name in todo:
        rf, shape, out = rows[name].rf, rows[name].output_shape, values[name]
        q = _axis_period(rf, axis)
        c = _centre(_spatial_sizes(rf, shape)[axis], q)
        d = spatial_dims(rf, len(shape))[axis]
        key = (id(out), c, q)
        if key not in done:
            def index(t, c=c, d=d, rank=len(shape)):
                return tuple(c + t if i == d else slice(None) for i in range(rank))

            supports = _supports(out, x, index, 2 * q + 1, batch, [axis])
            done[key] = _read(supports, [c], f" along dim {axis + 1}")
        read = done[key]
        claimed = (rf.size[axis], rf.stride[axis], rf.start[axis])
        found[name] = read if isinstance(read, str) else (read[0], claimed, (1,) + strip)
    return found


def _supports(out: torch.Tensor, x: torch.Tensor, index, count: int, batch: int, axes: list) -> list:
    """For picks t = 0 .. count - 1 (index(t): the output positions pick t sums, batch excluded),
    the (first, last) input pixel with a nonzero gradient along each of `axes` (None where none
    has one). Example b of a round carries one pick: rounds of `batch` picks per backward pass."""
    found = []
    for first in range(0, count, batch):
        n = min(batch, count - first)
        picked = sum(out[(b,) + index(first + b)].sum() for b in range(n))
        (grad,) = torch.autograd.grad(picked, x, retain_graph=True)
        found += [_support(grad[b, 0], axes) for b in range(n)]
    return found


def _read(supports: list, centres: list, where: str = ""):
    """Per axis read, (size, stride, start) from the supports of consecutive outputs c, c + 1, ...
    (c: that axis' entry of `centres`); or why they cannot be read."""
    if any(s is None for sup in supports for s in sup):
        return f"no gradient reached the input{where}"
    parts = []
    for axis, c in enumerate(centres):
        firsts = [sup[axis][0] for sup in supports]
        extents = [sup[axis][1] - sup[axis][0] + 1 for sup in supports]
        period = _repeat_length(firsts, extents)
        if period is None:
            return (f"windows vary between outputs{where}, and the {len(supports)} outputs read do not show "
                    "them repeat")
        stride = Fraction(firsts[period] - firsts[0], period)
        b = -c % period  # extrapolate from an output in the same phase of the period as output 0
        parts.append((max(extents[:period]), _plain(stride), _plain(firsts[b] - (c + b) * stride)))
    return parts


def _mixes(node: Node, shapes: dict) -> bool:
    """Does this kind itself make every output see its whole input? Asked of the kind's own rule,
    with tracked fields coming in (flatten says "global" only by convention)."""
    layer = KINDS[node.kind]
    if layer.global_by_convention:
        return False
    in_shapes = [shapes[i] for i in node.inputs]
    fields = [RF.identity(max(1, len(s) - 1)) for s in in_shapes]
    return layer.rf(node.args, fields, in_shapes, shapes[node.name]) == GLOBAL


def _support(grad: torch.Tensor, axes) -> list[tuple[int, int] | None]:
    """(first, last) nonzero index along each of `axes` (spatial axes, 0 the first) of one
    example's gradient, whatever the other axes hold; None along an axis where none is nonzero."""
    nonzero = grad.ne(0)
    out = []
    for axis in axes:
        others = tuple(a for a in range(grad.dim()) if a != axis)
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
    support = _support(one[0, 0], range(len(size)))
    if any(s is None for s in support):
        return None
    return RF(tuple(last - first + 1 for first, last in support), (0,) * len(size),
              tuple(first for first, _ in support))


def _measure_field(row, out: torch.Tensor, x: torch.Tensor, batch: int) -> Probed:
    """A field that fits the spec's size (`_fits`): example t picks output c + t on every axis
    (the diagonal), every channel summed; axes are independent, so each is read from its own
    coordinate."""
    rf, shape = row.rf, row.output_shape
    q = _period(rf)
    centre = [_centre(m, q) for m in _spatial_sizes(rf, shape)]
    dims = spatial_dims(rf, len(shape))

    def index(t):
        at = [slice(None)] * len(shape)  # every channel (wherever it is) of one position
        for d, c in zip(dims, centre):
            at[d] = c + t
        return tuple(at)

    read = _read(_supports(out, x, index, 2 * q + 1, batch, range(len(centre))), centre)
    if isinstance(read, str):
        return Probed(rf, None, read)
    return Probed(rf, RF(*(tuple(part[i] for part in read) for i in range(3))))


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
