"""`archcalc verify --memory`: the tensors autograd keeps for backward, measured, against the analysis.

The measurement: the spec's module (archcalc.torch.build) in training mode runs one forward on CPU
in float32 (batch 2 by default) under `torch.autograd.graph.saved_tensors_hooks`. Forward pre/post
hooks on every layer's module say which layer is running; the pack hook records each saved
tensor's storage (its untyped storage's data_ptr and nbytes) for the first layer that saves it:
several tensors saved as views of one storage (a flatten of a conv's input, split's pieces) count
once, whole, as the storage is what stays in memory. Parameters and buffers, and tensors sharing
their storage (a transposed weight, a broadcast learned tensor), are model state: not counted.
Storages with no bytes (empty reserve tensors) count nothing. A tensor saved outside any layer
(none in a built spec) is reported as `(outside)`.

The analytic side is archcalc.analysis.memory.saved_bytes, each kind's `saved_tensors`, at the
same batch size and dtype. Both are exact byte counts: they match or they do not.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import torch

from archcalc.analysis.memory import saved_bytes
from archcalc.analysis.walk import analyze_graph
from archcalc.errors import one_line
from archcalc.reader.graph import Graph
from archcalc.torch.build import build, check_torch_limits, example_inputs, layer_module, require_numbers

OUTSIDE = "(outside)"


@dataclass
class SavedRow:
    name: str
    kind: str
    analytic: int
    measured: int
    tensors: list = field(default_factory=list)  # measured: (shape, dtype, nbytes) of each storage counted
    declared: list = field(default_factory=list)  # analytic: (what, of, bytes counted here) per Saved

    @property
    def ok(self) -> bool:
        return self.analytic == self.measured

    def to_json(self) -> dict:
        return {"name": self.name, "kind": self.kind, "analytic_bytes": self.analytic,
                "measured_bytes": self.measured, "ok": self.ok,
                "analytic_tensors": [{"what": w, "of": o, "bytes": n} for w, o, n in self.declared],
                "measured_tensors": [{"shape": list(s), "dtype": d, "bytes": n} for s, d, n in self.tensors]}

    def why(self) -> str:
        """Both sides in words, for a mismatch: what the kind declares and what autograd kept."""
        declared = ", ".join(f"{w} ({o}) {n:,} B" for w, o, n in self.declared if n) or "nothing"
        measured = ", ".join(f"[{', '.join(map(str, s))}] {d} {n:,} B" for s, d, n in self.tensors) or "nothing"
        return f"declared {declared}; autograd kept {measured}"


@dataclass
class SavedCheck:
    name: str
    batch: int
    rows: list[SavedRow]
    outside: int = 0  # bytes saved while no layer ran (none in a built spec)

    @property
    def analytic(self) -> int:
        return sum(r.analytic for r in self.rows)

    @property
    def measured(self) -> int:
        return sum(r.measured for r in self.rows) + self.outside

    @property
    def ok(self) -> bool:
        return not self.outside and all(r.ok for r in self.rows)

    def mismatches(self) -> list[SavedRow]:
        return [r for r in self.rows if not r.ok]

    def to_json(self) -> dict:
        from archcalc import __version__  # every archcalc JSON begins with the version that wrote it

        return {"version": __version__, "name": self.name, "batch": self.batch, "dtype": "float32", "device": "cpu",
                "ok": self.ok, "analytic_bytes": self.analytic, "measured_bytes": self.measured,
                "outside_bytes": self.outside, "layers": [r.to_json() for r in self.rows]}


def measure_saved(model, inputs) -> tuple[dict, dict]:
    """Bytes of the storages autograd saves during `model(*inputs)` in training mode, per layer
    name (the first layer that saves a storage has it), and per layer the (shape, dtype, nbytes)
    of each storage counted. Parameters and buffers and their views are not counted."""
    state = {p.untyped_storage().data_ptr() for p in model.parameters()}
    state |= {b.untyped_storage().data_ptr() for b in model.buffers()}
    running: list[str] = []
    seen: set = set()
    per: dict = {}
    tensors: dict = {}

    def pack(t):
        if not isinstance(t, torch.Tensor) or t.layout != torch.strided:
            return t
        storage = t.untyped_storage()
        key = (storage.data_ptr(), storage.nbytes())
        if storage.nbytes() == 0 or key[0] in state or key in seen:
            return t
        seen.add(key)
        owner = running[-1] if running else OUTSIDE
        per[owner] = per.get(owner, 0) + storage.nbytes()
        tensors.setdefault(owner, []).append((tuple(t.shape), str(t.dtype).removeprefix("torch."), storage.nbytes()))
        return t

    def enter(name):
        def hook(module, args):
            running.append(name)  # returns None: the layer's inputs are left as they are
        return hook

    def leave(module, args, out):
        running.pop()  # returns None: the output is left as it is

    handles = []
    for name in model._layers:
        module = layer_module(model, name)
        handles.append(module.register_forward_pre_hook(enter(name)))
        handles.append(module.register_forward_hook(leave))
    was_training = model.training
    model.train()
    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            out = model(*inputs)
        del out  # the graph (and what it saved) goes with it
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return per, tensors


def check_saved(graph: Graph, batch: int = 2, seed: int = 0) -> SavedCheck:
    """Measure what each layer of `graph` saves for backward (CPU, float32, training mode, batch
    `batch`) and compare with the analysis (archcalc.analysis.memory.saved_bytes)."""
    require_numbers(graph)  # a symbolic spec: one error line naming --set, before any work
    report = analyze_graph(graph, batch=batch)
    check_torch_limits(graph, report, batch)
    shapes = dict(graph.input_shapes)
    shapes.update((row.name, tuple(row.output_shape)) for row in report.layers)
    details: dict = {}
    analytic = saved_bytes(graph, shapes, batch, 4, details)
    _check_fits(graph, report, sum(analytic.values()))
    torch.manual_seed(seed)
    model = build(graph)
    inputs = example_inputs(graph, batch=batch, generator=torch.Generator().manual_seed(seed))
    per, tensors = measure_saved(model, inputs)
    rows = [SavedRow(node.name, node.kind, analytic[node.name], per.get(node.name, 0), tensors.get(node.name, []),
                     [(s.what, s.of if s.of != "input" else f"input {s.index}", n) for s, n in details[node.name]])
            for node in graph.nodes]
    return SavedCheck(graph.name, batch, rows, per.get(OUTSIDE, 0))


def _check_fits(graph: Graph, report, saved: int) -> None:
    """Refuse, before allocating, a measurement that would not fit in free memory: the weights,
    the batch's input and outputs (an upper bound) and what autograd keeps."""
    from archcalc.torch.verify import _free_cpu_bytes

    free = _free_cpu_bytes()
    t = report.totals
    need = t.param_bytes + t.input_bytes + t.activation_bytes + saved
    if free is not None and need > free // 2:
        from archcalc.errors import SpecError
        from archcalc.units import binary_bytes

        raise SpecError(f"verify --memory would need about {binary_bytes(need)} (weights, a batch of {report.batch} "
                        f"and what it keeps for backward) but the CPU has {binary_bytes(free)} free; measure a "
                        "smaller size (--input, --set)", graph.input_loc)


def print_saved_table(result: SavedCheck, console=None) -> None:
    """The per-layer table (mismatches first): layer, kind, analytic and measured bytes, verdict."""
    from rich.table import Table
    from rich.text import Text

    from archcalc.render import make_console

    console = console or make_console(220)
    verdict = ("saved tensors match PyTorch" if result.ok
               else f"{len(result.mismatches()) + bool(result.outside)} mismatch(es)")
    table = Table(title=Text(one_line(f"{result.name}  verify --memory (CPU, float32, batch {result.batch}, "
                                      f"training): {verdict}")), title_justify="left")
    for head in ("layer", "kind"):
        table.add_column(head, no_wrap=True)
    for head in ("analytic B", "measured B"):
        table.add_column(head, no_wrap=True, justify="right")
    table.add_column("", no_wrap=True)
    ordered = result.mismatches() + [r for r in result.rows if r.ok]
    for r in ordered:
        table.add_row(Text(r.name), Text(r.kind), f"{r.analytic:,}", f"{r.measured:,}", "✓" if r.ok else "✗")
    if result.outside:
        table.add_row(Text(OUTSIDE), Text(""), "0", f"{result.outside:,}", "✗")
    table.add_row(Text("total"), Text(""), f"{result.analytic:,}", f"{result.measured:,}",
                  "✓" if result.ok else "✗", style="bold")
    console.print(table)
    console.print("bytes autograd keeps for backward: analytic (saved_tensors of each kind) and measured "
                  "(saved_tensors_hooks, storages once, parameters and buffers apart)", highlight=False)
    for r in result.mismatches():
        console.print(Text(one_line(f"MISMATCH {r.name}.saved_bytes: analytic {r.analytic:,}, measured "
                                    f"{r.measured:,}: {r.why()}")), highlight=False, soft_wrap=True)


def json_text(result: SavedCheck) -> str:
    return json.dumps(result.to_json(), indent=1)


__all__ = ["SavedCheck", "SavedRow", "check_saved", "json_text", "measure_saved", "print_saved_table"]
