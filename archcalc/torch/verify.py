"""`archcalc verify`: measure every analytic figure in PyTorch and compare.

- output shapes: a real forward pass (batch 1) on the chosen device, hooks on every layer; on the
  meta device no memory is used, so models too large to hold can be checked;
- parameters: trainable = parameters with requires_grad; non-trainable = parameters without it
  plus floating-point buffers (BatchNorm's running mean and variance). Integer buffers
  (BatchNorm's `num_batches_tracked`, Swin's `relative_position_index`) are counters or indices, not
  parameters: they are not counted, only reported, by name;
- MACs: `torch.utils.flop_counter.FlopCounterMode` per module, FLOPs / 2;
- receptive fields: the gradient probe of `archcalc.torch.probe`.

`verify --memory` checks the saved activations instead (archcalc.torch.saved: what autograd keeps
for backward, measured with saved_tensors_hooks, against each kind's `saved_tensors`).
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field

import torch
from torch.utils.flop_counter import FlopCounterMode

from archcalc.analysis.report import rf_json
from archcalc.geometry.receptive_field import GLOBAL, RF
from archcalc.analysis.walk import analyze_graph
from archcalc.errors import SpecError, one_line
from archcalc.reader.graph import Graph
from archcalc.torch.build import build, example_inputs, layer_module, require_numbers
from archcalc.torch.probe import probe_receptive_fields
from archcalc.torch.progress import report as report_progress

def _cpu_formulas() -> dict:
    """FlopCounterMode's formulas for CPU kernels its registry lacks, which it would count as 0:
    - attention: scaled_dot_product_attention runs `_scaled_dot_product_flash_attention_for_cpu`;
      it gets the registry's own SDPA formula;
    - LSTM: float32 nn.LSTM runs oneDNN's `mkldnn_rnn_layer` once per layer and direction, with
      w_ih [4H, in] and w_hh [4H, H]: one multiply-accumulate per weight and time step."""
    from torch.utils import flop_counter

    aten, formulas = torch.ops.aten, {}
    sdpa = getattr(flop_counter, "sdpa_flop_count", None)
    op = getattr(aten, "_scaled_dot_product_flash_attention_for_cpu", None)
    if op is not None and sdpa is not None and op not in flop_counter.flop_registry:
        def cpu_sdpa(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs):
            return sdpa(query_shape, key_shape, value_shape)

        formulas[op] = cpu_sdpa
    op = getattr(aten, "mkldnn_rnn_layer", None)
    if op is not None and op not in flop_counter.flop_registry:
        def onednn_rnn_layer(input_shape, w_ih_shape, w_hh_shape, *args, out_shape=None, **kwargs):
            steps = math.prod(input_shape) // input_shape[-1]
            return 2 * steps * (math.prod(w_ih_shape) + math.prod(w_hh_shape))

        formulas[op] = onednn_rnn_layer
    return formulas


def flop_counter() -> FlopCounterMode:
    """A FlopCounterMode that also counts the CPU kernels above (used by verify and the tests)."""
    return FlopCounterMode(display=False, custom_mapping=_cpu_formulas())


FIGURES = ("output_shape", "trainable_params", "non_trainable_params", "macs", "rf")


@dataclass
class Check:
    analytic: object
    measured: object
    ok: bool | None  # None: not measured
    note: str = ""

    def to_json(self) -> dict:
        out = {"analytic": _jsonable(self.analytic), "measured": _jsonable(self.measured), "ok": self.ok}
        if self.note:
            out["note"] = self.note
        return out


def _jsonable(value):
    if isinstance(value, RF) or value == GLOBAL:
        return rf_json(value)
    if isinstance(value, tuple):
        return list(value)
    return value


@dataclass
class LayerCheck:
    name: str
    kind: str
    checks: dict[str, Check]

    @property
    def ok(self) -> bool:
        return all(c.ok is not False for c in self.checks.values())


@dataclass
class VerifyResult:
    name: str
    device: str
    input_shape: tuple
    layers: list[LayerCheck]
    totals: dict[str, Check]
    probe_inputs: list = field(default_factory=list)  # the one-channel inputs fields were probed on
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(layer.ok for layer in self.layers) and all(c.ok is not False for c in self.totals.values())

    def mismatches(self) -> list[tuple[str, str]]:
        out = [(layer.name, fig) for layer in self.layers for fig, c in layer.checks.items() if c.ok is False]
        return out + [("total", fig) for fig, c in self.totals.items() if c.ok is False]

    def to_json(self) -> dict:
        return {
            "name": self.name, "device": self.device, "input": list(self.input_shape), "ok": self.ok,
            "mismatches": [f"{name}.{fig}" for name, fig in self.mismatches()],
            "probe_inputs": [list(shape) for shape in self.probe_inputs],
            "layers": [{"name": layer.name, "kind": layer.kind, "ok": layer.ok,
                        "figures": {k: c.to_json() for k, c in layer.checks.items()}} for layer in self.layers],
            "totals": {k: c.to_json() for k, c in self.totals.items()},
            "notes": self.notes,
        }


def _check(analytic, measured, note="") -> Check:
    return Check(analytic, measured, None if measured is None else analytic == measured, note)


def verify(graph: Graph, device: str = "cpu", receptive_fields: bool = True, progress=None) -> VerifyResult:
    """Every figure of the graph, analytic and measured. `progress(stage, done, total, item)`,
    when given, hears each stage and each layer of the forward pass (archcalc/torch/progress.py)."""
    require_numbers(graph)
    report = analyze_graph(graph)
    if device == "cuda" and not torch.cuda.is_available():
        raise SpecError(f"--device cuda: CUDA is not available to this PyTorch ({torch.__version__})")
    _check_fits(graph, report, device)
    report_progress(progress, "building the model")
    model = build(graph, device=device).eval()
    shapes: dict[str, tuple] = {}
    passed = "forward pass: shapes and MACs"

    def seen(name, out):  # a layer's output: its shape, and how far the pass has come
        shapes[name] = tuple(out.shape[1:])
        report_progress(progress, passed, len(shapes), len(report.layers), name)

    report_progress(progress, passed, 0, len(report.layers))
    hooks = [layer_module(model, row.name).register_forward_hook(
        lambda module, args, out, name=row.name: seen(name, out))
        for row in report.layers]
    xs = example_inputs(graph, 1, device=device)  # one per input; token ids as integers
    with torch.no_grad(), flop_counter() as counter:
        y = model(*xs)
    for hook in hooks:
        hook.remove()
    flops = counter.get_flop_counts()
    root = type(model).__name__

    if receptive_fields:
        report_progress(progress, "probing receptive fields (gradients)")
    probed, probe_inputs = probe_receptive_fields(graph, report) if receptive_fields else ({}, [])
    report_progress(progress, "counting parameters")
    layers = []
    integer_buffers, integer_names = 0, set()  # BatchNorm's num_batches_tracked, Swin's relative_position_index
    for row in report.layers:
        module = layer_module(model, row.name)
        trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
        frozen = sum(p.numel() for p in module.parameters() if not p.requires_grad)
        frozen += sum(b.numel() for b in module.buffers() if b.is_floating_point())
        for buffer_name, b in module.named_buffers():
            if not b.is_floating_point():
                integer_buffers += b.numel()
                integer_names.add(buffer_name.rsplit(".", 1)[-1])
        layer_flops = sum(flops.get(f"{root}.{row.name}", {}).values())
        checks = {
            "output_shape": _check(tuple(row.output_shape), shapes.get(row.name)),
            "trainable_params": _check(row.trainable_params, trainable),
            "non_trainable_params": _check(row.non_trainable_params, frozen),
            "macs": _check(row.macs, _macs(layer_flops)),
            "rf": _rf_check(row.rf, probed.get(row.name), graph.input_shape),
        }
        layers.append(LayerCheck(row.name, row.kind, checks))
    total_flops = counter.get_total_flops()
    totals = {
        "output_shape": _check(tuple(report.output_shape), tuple(y.shape[1:])),
        "trainable_params": _check(report.totals.trainable_params,
                                   sum(p.numel() for p in model.parameters() if p.requires_grad)),
        "non_trainable_params": _check(
            report.totals.non_trainable_params,
            sum(p.numel() for p in model.parameters() if not p.requires_grad)
            + sum(b.numel() for b in model.buffers() if b.is_floating_point())),
        "macs": _check(report.totals.macs, _macs(total_flops)),
    }
    notes = []
    if integer_buffers:
        notes.append(f"{integer_buffers} integer buffer value(s) ({', '.join(sorted(integer_names))}) are "
                     "counters or indices, not parameters: counted by neither side")
    larger = [list(shape) for shape in probe_inputs if tuple(shape[1:]) != tuple(graph.input_shape[1:])]
    if larger:
        notes.append("receptive fields larger than the input were probed on larger one-channel inputs "
                     + ", ".join(map(str, larger)))
    return VerifyResult(graph.name, device, tuple(graph.input_shape), layers, totals, probe_inputs, notes)


def _check_fits(graph: Graph, report, device: str) -> None:
    """Refuse, before allocating, a model whose weights and activations would not fit (LLaMA 7B
    needs 25 GiB of float32 weights; a [3, 100000, 100000] input 120 GB of input alone): the
    meta device checks shapes, parameters and MACs without memory. One example, float32: weights,
    the input and every layer's output (an upper bound: the forward pass frees outputs early)."""
    if device == "meta":
        return
    if device == "cuda":
        free = torch.cuda.mem_get_info()[0]
    else:
        free = _free_cpu_bytes()
        if free is None:  # not on this system: nothing to compare with
            return
    t = report.totals
    weights, data = t.param_bytes, t.input_bytes + t.activation_bytes
    if weights + data > free // 2:
        from archcalc.units import binary_bytes

        # Located where the bulk comes from: the largest layer's weights, or the input's sizes.
        if weights > data:
            largest = max(zip(graph.nodes, report.layers), key=lambda pair: pair[1].params)[0]
            what, detail, loc = "weights", f"the largest layer: {largest.name}; with one example's " \
                f"activations {binary_bytes(weights + data)}", largest.loc
        else:
            what, detail, loc = "activations of one example", f"with the weights {binary_bytes(weights + data)}", \
                graph.input_loc
        raise SpecError(f"the model's {what} need {binary_bytes(max(weights, data))} ({detail}) but {device} has "
                        f"{binary_bytes(free)} free; check it with --device meta, which allocates nothing", loc)


def _free_cpu_bytes() -> int | None:
    """Free memory for this process: the system's, or less where an address-space limit
    (ulimit -v, RLIMIT_AS) leaves less room than that."""
    try:
        free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft != resource.RLIM_INFINITY:
            with open("/proc/self/statm") as handle:
                used = int(handle.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
            free = min(free, max(0, soft - used))
    except (ImportError, OSError, ValueError):
        pass
    return free


def _macs(flops: int):
    """FlopCounterMode's FLOPs as MACs (an odd count, which would be a surprise, stays visible)."""
    return flops // 2 if flops % 2 == 0 else flops / 2


def _rf_check(analytic, probed, input_shape) -> Check:
    if analytic is None:
        return Check(None, None, None, "receptive fields the analysis does not track (token axes, after "
                                       "reshapes) are not measured")
    if probed is None:
        return Check(analytic, None, None, "no spatial axes" if len(input_shape) < 2 else "not probed")
    if probed.measured is None:
        return Check(analytic, None, None, probed.note)
    note = probed.note
    if probed.expected != analytic:
        # Only size-dependent layers (adaptive pooling, upsampling to a size) differ at the
        # enlarged probe input; the formula is checked there.
        note = (f"depends on the input size: analytic {_rf_text(probed.expected)} at the probe input "
                f"{probed.at_text} is what was measured against")
    return Check(analytic, probed.measured, probed.ok, note)


# --- output ---------------------------------------------------------------------------------------

def _rf_text(rf) -> str:
    if rf is None:
        return "-"
    if rf == GLOBAL:
        return "global"
    from archcalc.render import rf_text

    starts = ",".join(str(v) for v in dict.fromkeys(rf.start))
    return f"{rf_text(rf)} @{starts}"


def _cell(check: Check, fmt) -> str:
    if check.ok is None:
        shown = fmt(check.analytic)
        return f"· {shown}" if check.analytic is not None else "·"
    if check.ok:
        return f"✓ {fmt(check.analytic)}"
    return f"✗ {fmt(check.analytic)} ≠ {fmt(check.measured)}"


def _num(v) -> str:
    return f"{v:,}" if isinstance(v, int) else str(v)


def _shape(v) -> str:
    return "[" + ", ".join(map(str, v)) + "]" if v is not None else "-"


COLUMNS = (("output shape", "output_shape", _shape), ("trainable", "trainable_params", _num),
           ("non-trainable", "non_trainable_params", _num), ("MACs", "macs", _num),
           ("RF size /stride @start", "rf", _rf_text))


def print_table(result: VerifyResult, console=None) -> None:
    from rich.table import Table
    from rich.text import Text

    from archcalc.render import make_console

    console = console or make_console(220)
    verdict = "all figures match PyTorch" if result.ok else f"{len(result.mismatches())} mismatch(es)"
    table = Table(title=Text(one_line(f"{result.name}  verify on {result.device}: {verdict}")), title_justify="left")
    table.add_column("layer", no_wrap=True)
    table.add_column("kind", no_wrap=True)
    for head, _, _ in COLUMNS:
        table.add_column(head, no_wrap=True)
    # Mismatches first, then the rest in graph order.
    ordered = [layer for layer in result.layers if not layer.ok] + [layer for layer in result.layers if layer.ok]
    for layer in ordered:
        cells = [_cell(layer.checks[key], fmt) for _, key, fmt in COLUMNS]
        table.add_row(Text(layer.name), Text(layer.kind), *map(Text, cells))
    totals = [_cell(result.totals[key], fmt) if key in result.totals else "" for _, key, fmt in COLUMNS]
    table.add_row(Text("total"), Text(""), *map(Text, totals), style="bold")
    console.print(table)
    console.print("✓ matches PyTorch   ✗ differs (analytic ≠ measured)   · not measured", highlight=False)
    notes = {c.note for layer in result.layers for c in layer.checks.values() if c.note and c.ok is not False}
    for note in sorted(notes) + result.notes:
        console.print(Text(one_line(f"note: {note}")), highlight=False, soft_wrap=True)
    for name, fig in result.mismatches():
        console.print(f"MISMATCH {name}.{fig}", highlight=False)


def json_text(result: VerifyResult) -> str:
    return json.dumps(result.to_json(), indent=1)
