"""Memory and cost planning (`archcalc memory`): inference and training memory, FLOPs, training time.

Every figure and convention is documented in docs/memory.md. What a layer keeps for backward and
for decoding comes from its kind (`Layer.saved_tensors`, `Layer.kv_cache`); this module only
adds up. Figures are exact integers (bytes, FLOPs); time is an estimate from a peak and a utilisation.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from archcalc.analysis.report import DTYPE_BYTES, Report, _package_version  # JSON "version": archcalc's
from archcalc.errors import SpecError
from archcalc.layers import KINDS
from archcalc.layers.base import (channels_last_strides, contiguous_strides, is_dense, prod,
                                  suggests_channels_last, view_of)
from archcalc.reader.graph import INPUT, Graph

#: Optimizer states per trainable parameter (SGD none; momentum one buffer; Adam/AdamW two moments).
OPTIMIZER_STATES = {"sgd": 0, "momentum": 1, "adam": 2, "adamw": 2}
OPTIMIZER_NAMES = {"sgd": "SGD", "momentum": "SGD with momentum", "adam": "Adam", "adamw": "AdamW"}
MASTER_BYTES = 4  # mixed precision keeps fp32 master weights and fp32 optimizer states
TRAIN_FACTOR = 3  # forward + backward (2 x forward: gradients of inputs and of weights)
DEFAULT_UTILIZATION = 0.4  # a typical model FLOP utilisation (MFU) for well-tuned training
# Bounds of the cost options: beyond them a time estimate means nothing (and 1/0 or a float past
# 1e308 would follow).
MIN_UTILIZATION = 1e-3
MIN_PEAK_TFLOPS, MAX_PEAK_TFLOPS = 1e-6, 1e9
MAX_COUNT = 10**18  # --tokens, --examples (a 2T-token LLM run is 2e12)
MAX_FLOPS = 10**300  # a training FLOP count past this is not turned into a float time

#: Dense (non-sparse) peak tensor throughput in TFLOP/s (TOPS for int8) per dtype, from NVIDIA's
#: datasheets (H100 SXM/PCIe, H200 SXM, A100 SXM 80GB, V100 SXM2, L4) and the Ada Lovelace
#: architecture whitepaper (RTX 4090, FP32 accumulate). float32 is TF32 tensor cores (V100: plain
#: FP32, it has no TF32); float64 the FP64 tensor cores where there are some.
GPU_PEAK_TFLOPS = {
    "h100-sxm": {"float64": 67, "float32": 494.5, "bfloat16": 989.5, "float16": 989.5, "float8": 1979, "int8": 1979},
    "h100-pcie": {"float64": 51, "float32": 378, "bfloat16": 756, "float16": 756, "float8": 1513, "int8": 1513},
    "h200": {"float64": 67, "float32": 494.5, "bfloat16": 989.5, "float16": 989.5, "float8": 1979, "int8": 1979},
    "a100": {"float64": 19.5, "float32": 156, "bfloat16": 312, "float16": 312, "int8": 624},
    "v100": {"float64": 7.8, "float32": 15.7, "float16": 125},
    "l4": {"float32": 60, "bfloat16": 121, "float16": 121, "float8": 242.5, "int8": 242.5},
    "rtx4090": {"float32": 82.6, "bfloat16": 165.2, "float16": 165.2, "float8": 330.3, "int8": 660.6},
}


@dataclass
class Item:
    key: str  # JSON key (without unit suffix)
    label: str  # what the table shows
    value: int | float | None
    unit: str  # "bytes", "flops", "flop/s", "seconds", "ratio", "count"
    formula: str = ""


@dataclass
class MemoryPlan:
    name: str
    input_shape: tuple
    batch: int
    dtype: str
    optimizer: str
    checkpointing: bool
    master_weights: bool
    params: int
    trainable_params: int
    inference: list[Item] = field(default_factory=list)
    training: list[Item] = field(default_factory=list)
    cost: list[Item] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # Active parameters per token (a network with routed experts), else None: see Totals.active_params.
    active_params: int | None = None
    # A spec with `inputs:`: every input as (name, shape, token ids?), as Report.inputs; else empty.
    inputs: tuple = ()

    def sections(self):
        return (("inference", self.inference), ("training", self.training), ("cost", self.cost))

    def get(self, section: str, key: str):
        return next(i.value for i in dict(self.sections())[section] if i.key == key)

    def to_json(self) -> dict:
        suffix = {"bytes": "_bytes", "flops": "_flops", "flop/s": "_flops_per_s", "seconds": "_s"}
        listed = {"inputs": {n: {"tokens": list(s)} if t else list(s) for n, s, t in self.inputs}} if self.inputs else {}
        out = {"version": _package_version(), "name": self.name, "input": list(self.input_shape), **listed, "batch": self.batch,
               "dtype": self.dtype, "optimizer": self.optimizer, "checkpointing": self.checkpointing,
               "master_weights": self.master_weights, "params": self.params,
               "trainable_params": self.trainable_params}
        if self.active_params is not None:
            out["active_params"] = self.active_params
        for name, items in self.sections():
            out[name] = {i.key + suffix.get(i.unit, ""): i.value for i in items}
        out["formulas"] = {name: {i.key: i.formula for i in items} for name, items in self.sections()}
        out["notes"] = list(self.notes)
        return out


def _n(x) -> str:
    return f"{x:,}"


def plan_memory(graph: Graph, report: Report, *, optimizer: str = "adam", checkpointing: bool = False,
                master_weights: bool | None = None, tokens: int | None = None, examples: int | None = None,
                gpu: str | None = None, peak_tflops: float | None = None,
                utilization: float = DEFAULT_UTILIZATION) -> MemoryPlan:
    """The memory and cost plan of `graph`, analysed as `report` (whose batch and dtype it uses).
    `master_weights` None means: fp32 master weights exactly when the dtype is under 4 bytes."""
    if graph.symbols:
        # The sizes are written in the spec's input: point there (the fix is --set or a number).
        raise SpecError("memory planning needs numeric sizes; give every symbol a number with --set "
                        f"(symbols: {', '.join(graph.symbols)})", graph.input_loc)
    if optimizer not in OPTIMIZER_STATES:
        raise SpecError(f"unknown optimizer '{optimizer}'; expected one of {', '.join(OPTIMIZER_STATES)}")
    if tokens is not None and examples is not None:
        raise SpecError("give --tokens or --examples, not both")
    if not MIN_UTILIZATION <= utilization <= 1:  # NaN fails this too
        raise SpecError(f"--utilization must be a fraction from {MIN_UTILIZATION:g} to 1, got {utilization}")
    for option, value in (("--tokens", tokens), ("--examples", examples)):
        if value is not None and not 1 <= value <= MAX_COUNT:
            raise SpecError(f"{option} must be a count from 1 to {MAX_COUNT:.0e}, got {_short_int(value)}")
    B, dtype, b = report.batch, report.dtype, DTYPE_BYTES[report.dtype]
    half = b < 4
    if master_weights is None:
        master_weights = half
    elif master_weights and not half:
        raise SpecError(f"--master-weights applies to half-precision dtypes; {dtype} weights are their own master copy")
    t = report.totals
    P, Pt, Pn = t.params, t.trainable_params, t.non_trainable_params
    plan = MemoryPlan(graph.name, tuple(graph.input_shape), B, dtype, optimizer, checkpointing, master_weights, P, Pt)
    plan.inputs = report.inputs

    # Per-node figures, per example, from each kind's own rules.
    shapes = dict(graph.input_shapes)
    shapes.update((row.name, tuple(row.output_shape)) for row in report.layers)
    tensors, bases = {}, {}
    saved = saved_bytes(graph, shapes, B, b, tensors=tensors, bases=bases)
    kv, peak, peak_at = 0, 0, None
    kv_layers, state_layers = 0, 0  # state: a fixed-size recurrent state (Mamba), not keys and values
    cross, cross_layers = 0, 0  # cross-attention K/V: the encoder output's keys and values
    for node in graph.nodes:
        layer, ins, out = KINDS[node.kind], [shapes[i] for i in node.inputs], shapes[node.name]
        cache = layer.kv_cache(node.args, ins, out)
        kv, kv_layers = kv + cache, kv_layers + bool(cache)
        state_layers += bool(cache) and layer.cache_is_state
        cache = layer.cross_kv_cache(node.args, ins, out)
        cross, cross_layers = cross + cache, cross_layers + bool(cache)
        live = sum(prod(s) for s in ins) + prod(out)
        if live > peak:
            peak, peak_at = live, node.name

    # --- inference ---------------------------------------------------------------------------
    weights = P * b
    inf = plan.inference
    inf.append(Item("weights", f"weights ({dtype})", weights, "bytes", f"{b} B x {_n(P)} params"))
    inf.append(Item("activations", "activations (peak layer)", peak * B * b, "bytes",
                    f"largest layer input + output ({peak_at}): {_n(peak)} elements x batch {B} x {b} B"))
    holders = (f"{kv_layers} layer(s) with K/V" if not state_layers
               else f"{state_layers} layer(s) with a recurrent state" if state_layers == kv_layers
               else f"{kv_layers - state_layers} layer(s) with K/V, {state_layers} with a recurrent state")
    inf.append(Item("kv_cache", "KV cache" if not state_layers else "KV cache / recurrent state", kv * B * b,
                    "bytes", f"{holders}: {_n(kv)} elements x batch {B} x {b} B" if kv
                    else "none: no causal attention layer"))
    if cross:  # beside the self-attention cache: computed once from the encoder output, then only read
        inf.append(Item("cross_kv_cache", "cross-attention KV cache", cross * B * b, "bytes",
                        f"{cross_layers} cross-attention layer(s), K/V of the encoder output (computed once): "
                        f"{_n(cross)} elements x batch {B} x {b} B"))
    inf.append(Item("total", "total", sum(i.value for i in inf), "bytes",
                    "weights + activations + KV cache" + (" + cross-attention KV cache" if cross else "")))

    # --- training ----------------------------------------------------------------------------
    k = OPTIMIZER_STATES[optimizer]
    sb = MASTER_BYTES if master_weights else b
    tr = plan.training
    tr.append(Item("weights", f"weights ({dtype})", weights, "bytes", f"{b} B x {_n(P)} params"))
    if master_weights:
        tr.append(Item("master_weights", "master weights (fp32)", MASTER_BYTES * Pt, "bytes",
                       f"{MASTER_BYTES} B x {_n(Pt)} trainable params (mixed precision)"))
    tr.append(Item("gradients", f"gradients ({dtype})", b * Pt, "bytes", f"{b} B x {_n(Pt)} trainable params"))
    states = f"{k} x {sb} B x {_n(Pt)} trainable params" + (" (fp32)" if master_weights and k else "")
    tr.append(Item("optimizer_states", "optimizer states", k * sb * Pt, "bytes",
                   f"{OPTIMIZER_NAMES[optimizer]}: {states}"))
    split = ((b, "weights"), (MASTER_BYTES if master_weights else 0, "master"), (b, "grads"), (k * sb, "states"))
    per = sum(v for v, _ in split)
    parts = " + ".join(f"{v} {w}" for v, w in split if v)
    model = per * Pt + b * Pn
    tr.append(Item("model_states", "model states", model, "bytes",
                   f"{per} B per trainable param ({parts})" + (f" + {b} B x {_n(Pn)} non-trainable" if Pn else "")))
    full = sum(saved.values())
    tr.append(Item("activations", "activations saved", full, "bytes",
                   f"the tensors {len(saved)} layers save for backward, each once (batch {B}, {b} B "
                   "values, int64 indices 8 B)"))
    ck, ck_text = _checkpointed(graph, shapes, saved, B, b, tensors, bases)
    tr.append(Item("activations_checkpointed", "activations saved, checkpointing", ck, "bytes",
                   f"{ck_text} (batch {B})"))
    act = ck if checkpointing else full
    tr.append(Item("total", "total", model + act, "bytes",
                   "model states + activations" + (" (checkpointing)" if checkpointing else "")))

    # --- cost ----------------------------------------------------------------------------------
    fwd = 2 * (t.macs // B)
    c = plan.cost
    c.append(Item("forward_per_example", "forward FLOPs / example", fwd, "flops", f"2 x {_n(t.macs // B)} MACs"))
    T, source = _sequence_length(graph)
    if T:
        c.append(Item("forward_per_token", "forward FLOPs / token", _div(fwd, T), "flops",
                      f"forward / T = {_n(fwd)} / {T}" + (f" (the tokens of input '{source}')" if source else "")))
    if t.active_params is not None:
        plan.active_params = t.active_params
        c.append(Item("active_params", "active params / token", t.active_params, "count",
                      f"all {_n(P)} params but the routed experts a token is not sent to: the FLOPs count "
                      "its top_k experts (dropless routing)"))
    c.append(Item("training_per_example", "training FLOPs / example", TRAIN_FACTOR * fwd, "flops",
                  "3 x forward (backward = 2 x forward)"))
    total = None
    if tokens is not None:
        if not T:
            raise SpecError("--tokens needs a token sequence: an input {tokens: [T]}, or [T, D] with an "
                            "attention or recurrent layer; use --examples for other networks")
        total = _div(TRAIN_FACTOR * fwd * tokens, T)
        c.append(Item("training_total", "training FLOPs", total, "flops",
                      f"3 x forward / token x {_n(tokens)} tokens"))
    elif examples is not None:
        total = TRAIN_FACTOR * fwd * examples
        c.append(Item("training_total", "training FLOPs", total, "flops",
                      f"3 x forward / example x {_n(examples)} examples"))
    peak_flops, source = _peak(gpu, peak_tflops, dtype)
    if peak_flops:
        c.append(Item("peak", "peak", peak_flops, "flop/s", source))
        c.append(Item("utilization", "utilization (MFU)", utilization, "ratio",
                      "achieved / peak; 0.4 is typical of well-tuned training" if utilization == DEFAULT_UTILIZATION
                      else "achieved / peak (--utilization)"))
        if max(TRAIN_FACTOR * fwd * B, total or 0) > MAX_FLOPS:
            raise SpecError("the FLOP counts are too large (over 1e300) for a time estimate; leave out "
                            "--gpu-model and --peak-tflops")
        c.append(Item("step_time", f"training step (batch {B})", TRAIN_FACTOR * fwd * B / (peak_flops * utilization),
                      "seconds", f"3 x forward x batch {B} / (peak x {utilization:g})"))
        if total is not None:
            c.append(Item("training_time", "training time (one GPU)", total / (peak_flops * utilization),
                          "seconds", f"training FLOPs / (peak x {utilization:g}); divide by the GPU count"))

    if master_weights:
        plan.notes.append(f"mixed precision: {dtype} weights and gradients, an fp32 master copy and fp32 optimizer "
                          f"states ({per} B per trainable param with {OPTIMIZER_NAMES[optimizer]}; ZeRO, "
                          "Rajbhandari et al. 2020)")
    plan.notes.append("activations saved: what eager PyTorch's autograd keeps for backward (each kind's saved_tensors; "
                      "a tensor two layers save counts once; archcalc verify --memory measures it); checkpointing "
                      "(torch.utils.checkpoint per top-level block) keeps each block's inputs and recomputes one "
                      "block at a time: its figure is the peak of the two")
    if not any(n.blocks for n in graph.nodes):
        plan.notes.append("no blocks in this spec: checkpointing has nothing to recompute")
    if t.active_params is not None:
        plan.notes.append(f"routed experts: each token uses {_n(t.active_params)} of the {_n(P)} parameters, and the "
                          "FLOPs count only those experts; weights, gradients and optimizer states hold every expert")
    return plan


def saved_bytes(graph: Graph, shapes: dict, batch: int, itemsize: int, details: dict | None = None,
                tensors: dict | None = None, bases: dict | None = None) -> dict:
    """Bytes each layer keeps for its backward pass at this batch size, activations of `itemsize`
    bytes: its kind's `saved_tensors`, each input or output tensor counted ONCE, for the first
    layer in forward order that saves it (ReLU's output saved by ReLU and by the next conv as its
    input is one tensor). A tensor is known by the node that made its memory: a view
    (`Layer.output_storage`: flatten, permute, select, split) is its base, whole, as autograd keeps
    the base's storage; a view of a layer's weights is none (model state). "own" tensors (masks,
    indices, statistics) always count. `details`, when given, receives per layer the list of
    (Saved, bytes counted here). `tensors`, when given, receives per layer every tensor it keeps
    as (key, bytes), whoever else keeps it: key the name of the input or layer whose memory it
    is, or (layer, position) for one of its own; `bases` receives each tensor's key (None: a view
    of weights). `shapes` holds every input's and layer's shape.

    Autograd records nothing for an operation none of whose inputs needs a gradient: the network
    input does not (training data), a layer's output does when an input does or the layer has
    trainable parameters. A layer without either (a ReLU or a pooling straight on the input, a
    reshape of it) saves nothing.

    Memory order is followed as PyTorch lays tensors out (strides, batch first): a permute is a
    view in another order, an elementwise kind's output keeps a dense input's order, other outputs
    are contiguous; a flatten or reshape that no view can express (of a permuted tensor) is a copy,
    new memory; a linear keeps its input as a [positions, in] matrix, a copy of its own where the
    input cannot be viewed so."""
    base: dict = {name: name for name in graph.input_shapes}  # tensor -> the tensor whose memory it is
    grad: dict = {name: False for name in graph.input_shapes}  # tensor -> requires a gradient
    strides: dict = {name: contiguous_strides((batch,) + tuple(s)) for name, s in graph.input_shapes.items()}
    seen: set = set()
    out: dict = {}
    for node in graph.nodes:
        layer, ins, shape = KINDS[node.kind], [shapes[i] for i in node.inputs], shapes[node.name]
        where = layer.output_storage(node.args, ins)
        full = (batch,) + tuple(shape)
        view = None
        if isinstance(where, int):
            view = layer.view_strides(node.args, ins, strides[node.inputs[where]], batch)
        if where == "weights":
            base[node.name], strides[node.name] = None, (0,) + contiguous_strides(tuple(shape))
        elif view is not None:
            base[node.name], strides[node.name] = base[node.inputs[where]], tuple(view)
        else:  # new memory (or a view PyTorch cannot make: a copy)
            base[node.name], strides[node.name] = node.name, contiguous_strides(full)
            first = node.inputs[0] if node.inputs else None
            own = layer.output_strides(node.args, ins, batch) if where is None else None
            if own is not None:  # laid out its own way (a recurrent layer's time-major result)
                strides[node.name] = tuple(own)
            elif (where is None and layer.keeps_layout and first is not None and tuple(shapes[first]) == tuple(shape)
                    and is_dense(full, strides[first])):
                strides[node.name] = strides[first]
            elif (where is None and layer.keeps_memory_format and first is not None and len(full) in (4, 5)
                  and len(shapes[first]) + 1 == len(full)
                  and suggests_channels_last((batch,) + tuple(shapes[first]), strides[first])):
                strides[node.name] = channels_last_strides(full)
        grad[node.name] = any(grad[i] for i in node.inputs) or (
            node.trainable and bool(layer.params(node.args, ins)[0]))
        total, rows = 0, []
        frozen_weights = not node.trainable and layer.saves_input_for_weights
        needs = tuple(grad[i] for i in node.inputs)
        for s in layer.saved_tensors_for(node.args, ins, shape, needs) if grad[node.name] else ():
            size = s.itemsize or itemsize
            key, full = None, 0  # the tensor (a node whose memory it is) and its bytes, where others may share it
            if (s.of == "input" and frozen_weights) or (s.weights_only and not node.trainable):
                n = 0  # kept only for the weights' gradient, which a frozen layer does not compute
            elif s.for_grad_of and not any(grad[node.inputs[j]] for j in s.for_grad_of):
                n = 0  # kept only for other inputs' gradients, and none of them needs one
            elif s.expand is not None and _expanded_view(shapes[node.inputs[s.index]], strides[node.inputs[s.index]],
                                                         s.expand, batch):
                key = base[node.inputs[s.index]]  # the expansion is a view: the input itself (None: weights)
                full = 0 if key is None else prod(shapes[key]) * size * batch
                n = 0 if key in seen else full
                seen.add(key)
            elif s.batch1 is not None and s.batch1 != "input" and batch == 1:
                # a view, at a batch of 1, of a tensor this layer keeps already, or of one it would
                # not keep otherwise (its elements)
                n = 0 if s.batch1 == "view" else s.batch1 * size
            elif s.batch1 == "input" and batch == 1:
                key = base[node.inputs[s.index]]  # the input itself, at a batch of 1
                full = 0 if key is None else prod(shapes[key]) * size * batch
                n = 0 if key in seen else full
                seen.add(key)
            elif s.of == "input" and layer.saves_input_as_matrix and not _matrix_view(
                    shapes[node.inputs[s.index]], strides[node.inputs[s.index]], batch):
                n = prod(ins[s.index]) * size * batch  # the matrix is a contiguous copy, its own
            elif s.of == "input" and layer.saves_contiguous_input and not _laid_out(
                    layer.saves_contiguous_input, shapes[node.inputs[s.index]], strides[node.inputs[s.index]], batch):
                n = prod(ins[s.index]) * size * batch  # kept as a contiguous copy, its own
            elif s.of == "own":
                n = s.elements * size * (1 if s.per_batch else batch)
                if s.align:  # a region that starts on a page (oneDNN's workspace): the batch's bytes rounded up
                    n = -(-n // s.align) * s.align
            else:
                key = base[node.inputs[s.index]] if s.of == "input" else base[node.name]
                full = 0 if key is None else prod(shapes[key]) * size * batch
                n = 0 if key in seen else full
                seen.add(key)
            if tensors is not None and (full if key is not None else n):
                tensors.setdefault(node.name, []).append((key, full) if key is not None else ((node.name, len(rows)), n))
            total += n
            rows.append((s, n))
        out[node.name] = total
        if details is not None:
            details[node.name] = rows
    if bases is not None:
        bases.update(base)
    return out


def _laid_out(rule: str, shape: tuple, strides: tuple, batch: int) -> bool:
    """Whether a [batch, *shape] tensor of these strides is kept as it is by a kind whose
    `saves_contiguous_input` is `rule` (else the kind keeps a contiguous copy)."""
    full = (batch,) + tuple(shape)
    contiguous = all(s == c for s, c, n in zip(strides, contiguous_strides(full), full) if n != 1)
    return contiguous or rule == "memory_format" and suggests_channels_last(full, strides)


def _expanded_view(shape: tuple, strides: tuple, lead: tuple, batch: int) -> bool:
    """Whether a [batch, *shape] tensor of these strides, expanded to [batch, *lead, M, K]
    (broadcast dims stride 0), folds into [batch * prod(lead), M, K] as a view (at::matmul's
    reshape before bmm): else it copies."""
    full = (batch,) + tuple(lead) + tuple(shape[-2:])
    grown = tuple(0 if n == 1 and want != 1 else st
                  for n, want, st in zip((batch,) + tuple(shape), full, strides))
    return view_of(full, grown, (prod(full[:-2]),) + full[-2:]) is not None


def _matrix_view(shape: tuple, strides: tuple, batch: int) -> bool:
    """Whether a [batch, *shape] tensor of these strides can be viewed as the [positions, in]
    matrix a linear multiplies (always for [batch, in]: addmm takes it as it is)."""
    if len(shape) < 2:
        return True
    full = (batch,) + tuple(shape)
    return view_of(full, strides, (prod(full[:-1]), full[-1])) is not None


def _checkpointed(graph: Graph, shapes: dict, saved: dict, batch: int, itemsize: int, tensors: dict,
                  bases: dict) -> tuple:
    """Peak bytes autograd holds with activation checkpointing per block instance (the top
    level's, or inside a single wrapping instance the first level with several), as
    torch.utils.checkpoint keeps them: in the forward pass, layers outside the blocks keep what
    they keep, and each block only its inputs (the network input too); in the backward pass, when
    block j is recomputed, what the layers outside blocks before j and the inputs of blocks 1..j
    still hold plus everything block j's layers keep (its inputs shared, the rest recomputed).
    The peak is the larger of the forward pass's end and the largest such moment. `tensors` and
    `bases` are saved_bytes's (each layer's tensors, whoever else keeps them; each tensor's key)."""
    owner = checkpoint_segments(graph, saved)
    if not owner:
        return sum(saved.values()), "no blocks: as without checkpointing"
    return _checkpoint_peak(graph, shapes, owner, batch, itemsize, tensors, bases)


def checkpoint_segments(graph: Graph, saved: dict) -> dict:
    """The checkpointed segment (block instance) of each layer inside one; layers outside all
    are absent. `saved` is saved_bytes's per-layer figure."""
    # Segments are block instances, the top level's first. One that would keep more than half of
    # all saved activations and holds instances of its own (torchvision's `features` Sequential
    # wrapping the whole network) is split into them, again as needed: checkpointing it whole
    # would save nothing. Its layers outside those instances count as outside.
    total = sum(saved.values()) or 1
    split: set = set()
    while True:
        owner = {}
        for n in graph.nodes:
            depth = 0
            while depth < len(n.blocks) and n.blocks[depth][0] in split:
                depth += 1
            if depth < len(n.blocks):
                owner[n.name] = n.blocks[depth][0]
        per: dict = {}
        for name, inst in owner.items():
            per[inst] = per.get(inst, 0) + saved[name]
        holders = {n.blocks[i - 1][0] for n in graph.nodes for i in range(1, len(n.blocks))}  # hold instances
        big = [inst for inst, size in per.items() if 2 * size > total and inst in holders]
        if not big:
            break
        split.update(big)
    return owner


def _checkpoint_peak(graph: Graph, shapes: dict, owner: dict, batch: int, itemsize: int, tensors: dict,
                     bases: dict) -> tuple:
    # Runs of layers in forward order: one block instance's, or one outside layer.
    runs: list = []
    for n in graph.nodes:
        inst = owner.get(n.name)
        if inst is not None and runs and runs[-1][0] == inst:
            runs[-1][1].append(n)
        else:
            runs.append((inst, [n]))
    ids = {i.name for i in graph.inputs if i.tokens}  # token ids: int64, 8 B each
    live: dict = {}  # tensor key -> bytes, held at this point of the forward pass
    peak, peak_at = 0, None
    for inst, nodes in runs:
        if inst is None:
            live.update(tensors.get(nodes[0].name, ()))
            continue
        names = {n.name for n in nodes}
        for n in nodes:
            for i in n.inputs:
                key = bases[i]
                if i not in names and key is not None:  # a block input (not a view of weights)
                    live[key] = prod(shapes[key]) * batch * (8 if key in ids else itemsize)
        recomputed = dict(live)  # this block's backward: everything its layers keep, once more
        for n in nodes:
            recomputed.update(tensors.get(n.name, ()))
        if sum(recomputed.values()) > peak:
            peak, peak_at = sum(recomputed.values()), inst
    end = sum(live.values())
    blocks = len({inst for inst, _ in runs if inst is not None})
    first, then = (f"{_n(end)} B after the forward pass (outside layers' tensors, {blocks} blocks' inputs)",
                   f"{_n(peak)} B while recomputing {peak_at}")
    return max(peak, end), (f"the peak: {then}; {first}" if peak > end else f"the peak: {first}; {then}")


def _short_int(value: int) -> str:
    return str(value) if abs(value) < 10**40 else f"a number of about {int(value.bit_length() * 0.30103) + 1} digits"


def _div(a: int, b: int):
    return a // b if a % b == 0 else a / b


def _sequence_length(graph: Graph) -> tuple:
    """(T, the input it is read from, or None for the one input) of the per-token figures, or
    (None, None). With several inputs (`inputs:`), T is the length of the first input of token
    ids (an encoder–decoder's target tokens: Whisper's decoder_input_ids); without one, the first
    input's, under the rule for one input."""
    if graph.named_inputs:
        for net_input in graph.inputs:
            if net_input.tokens:
                return net_input.shape[0], net_input.name
    if _is_sequence(graph):
        return graph.input_shape[0], (graph.inputs[0].name if graph.named_inputs else None)
    return None, None


def _is_sequence(graph: Graph) -> bool:
    """A `{tokens: [T]}` input, or [T, D] read by a sequence layer (attention, recurrent): FLOPs
    are then also given per token."""
    if graph.tokens:
        return True
    return len(graph.input_shape) == 2 and any(KINDS[n.kind].sequence for n in graph.nodes)


def _peak(gpu, peak_tflops, dtype):
    if peak_tflops is not None:
        # NaN fails every comparison, so it is refused here too; the bounds keep peak x time finite.
        if not MIN_PEAK_TFLOPS <= peak_tflops <= MAX_PEAK_TFLOPS:
            raise SpecError(f"--peak-tflops must be a number from {MIN_PEAK_TFLOPS:g} to {MAX_PEAK_TFLOPS:g} "
                            f"(TFLOP/s), got {peak_tflops}")
        return round(peak_tflops * 1e12), f"{peak_tflops:g} TFLOP/s (--peak-tflops)"
    if gpu is None:
        return None, ""
    if gpu not in GPU_PEAK_TFLOPS:
        raise SpecError(f"unknown GPU '{gpu}'; expected one of {', '.join(GPU_PEAK_TFLOPS)}")
    table = GPU_PEAK_TFLOPS[gpu]
    if dtype not in table:
        raise SpecError(f"no {dtype} figure for {gpu} (it has {', '.join(table)}); give --peak-tflops")
    what = " (TF32)" if dtype == "float32" and gpu != "v100" else ""
    where = "Ada whitepaper" if gpu == "rtx4090" else "NVIDIA datasheet"
    return round(table[dtype] * 1e12), f"{gpu} {dtype}{what}: {table[dtype]:g} TFLOP/s dense ({where})"


__all__ = ["GPU_PEAK_TFLOPS", "Item", "MemoryPlan", "OPTIMIZER_STATES", "plan_memory", "saved_bytes"]
