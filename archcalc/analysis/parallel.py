"""Parallel training plans (`archcalc memory SPEC --gpus N ...`): per-GPU memory, pipeline bubble,
step time and communication of data, tensor, sequence and pipeline parallel training with ZeRO.

Conventions and every formula: docs/memory.md, "Parallel plans". In short:

* N GPUs = tensor parallel t x pipeline parallel p x data parallel d. A transformer layer is one
  top-level block instance holding one `attention`; t divides its heads and key/value heads (as
  Megatron-LM requires), p divides the number of layers (L/p layers per stage).
* Model states (Rajbhandari et al. 2020, ZeRO): per parameter b B weights, b B gradients and the
  optimizer's bytes (mixed precision: an fp32 master copy and fp32 Adam moments, 12 B; 16 B in all
  with bf16). ZeRO stage 1 partitions the optimizer bytes over the d data-parallel ranks, stage 2
  the gradients too, stage 3 the weights too (a shard is ceil(params / d) parameters).
  Tensor parallelism splits the attention projections and the MLP's linears over t (Megatron's
  column/row parallel layers; the row-parallel layers' biases and every norm stay whole), the
  token embedding and the output layer over the vocabulary.
* Activations per layer follow Korthikanti et al. 2022 ("Reducing activation recomputation in
  large transformer models", section 4): each layer keeps, in b-byte elements, the input of every
  norm, linear and activation function and both inputs of a product; attention keeps its input,
  Q, K, V, the softmax output (a x s per token) and the input of its output projection; dropout
  keeps a 1-byte mask (attention dropout: its mask and its output). The tensor-parallel regions
  follow Megatron's structure (_tp_split): a linear reading a whole tensor is column parallel, its
  output and what follows it split over t until a row-parallel linear (one reading a split tensor)
  or the attention's output projection makes it whole again; whole tensors are on each of the t
  ranks unless sequence parallel splits them. For their GPT layer (two dropouts, attention dropout)
  this is exactly sbh(34 + 5as/h) bytes, sbh(10 + 24/t + 5as/(ht)) with tensor parallelism and
  sbh(34/t + 5as/(ht)) with sequence parallelism too. Selective recomputation keeps no a x s
  tensor (34sbh/t); full recomputation keeps each layer's input (2sbh, /t with sequence parallel)
  and rebuilds one layer at a time during the backward pass.
* The first pipeline stage holds p micro-batches in flight with 1F1B (L layers' activations in
  all), with v interleaved chunks L(1 + (p - 1)/(pv)) layers'; the last stage holds one, plus the
  head (final norm, output layer input, fp32 logits for the loss). The bubble is (p - 1)/m, or
  (p - 1)/(mv) interleaved (Narayanan et al. 2021), m = B/(b d) micro-batches per step.
* Time: the executed FLOPs (6 per MAC per token trained, 8 with full recomputation, plus the
  attention core's forward again with selective recomputation) at --utilization of the peak while
  the GPUs compute, stretched by the bubble; the MFU it implies counts the model's 6 FLOPs per MAC.

Every figure is an exact integer of bytes (or FLOPs) per GPU, rounded up where a split is uneven.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from fractions import Fraction
from math import ceil

from archcalc.analysis.memory import (DEFAULT_UTILIZATION, MASTER_BYTES, MIN_UTILIZATION, OPTIMIZER_NAMES,
                                      OPTIMIZER_STATES, Item, _peak)
from archcalc.analysis.report import DTYPE_BYTES, Report, _package_version
from archcalc.errors import SpecError
from archcalc.layers.base import prod
from archcalc.reader.graph import Graph

ZERO_STAGES = (0, 1, 2, 3)
RECOMPUTE = ("none", "selective", "full")
MASK_BYTES = 1  # a dropout mask: one byte per element (PyTorch's bool)
LOGIT_BYTES = 4  # the loss keeps the logits in fp32 (Korthikanti et al.'s 4sbv/t)
MAX_GPUS = 10**7
MAX_FIT_MICRO_BATCH = 1024  # --fit tries the micro-batches dividing B/d up to this
MAX_FIT_ROWS = 15  # the text table's rows under --fit (JSON lists every configuration that fits)

#: kinds that keep their input for backward under the paper's accounting
_KEEP_INPUT = {"layernorm", "rmsnorm", "linear", "gelu", "silu", "relu", "tanh", "sigmoid", "softplus",
               "leaky_relu", "elu", "mish", "hardswish", "swish"}
#: kinds that keep nothing (index lookups, sums, views)
_KEEP_NOTHING = {"add", "embedding", "positional", "select", "reshape", "permute", "flatten", "class_token",
                 "identity"}
_LAYER_KINDS = _KEEP_INPUT | _KEEP_NOTHING | {"attention", "multiply", "dropout"}


# --- the paper's formulas, as functions --------------------------------------------------------

def zero_model_states(params: int, d: int, stage: int, *, weight_bytes: int = 2, grad_bytes: int = 2,
                      optimizer_bytes: int = 12) -> dict:
    """Per-GPU model-state bytes over d data-parallel ranks under ZeRO `stage` (Rajbhandari et al.
    2020): 0 (plain data parallel) keeps everything, 1 partitions the optimizer bytes, 2 the
    gradients too, 3 the weights too. A shard holds ceil(params / d) parameters."""
    if stage not in ZERO_STAGES:
        raise SpecError(f"--zero must be one of 0, 1, 2, 3, got {stage}")
    shard = -(-params // d)
    weights = weight_bytes * (shard if stage >= 3 else params)
    grads = grad_bytes * (shard if stage >= 2 else params)
    states = optimizer_bytes * (shard if stage >= 1 else params)
    return {"weights": weights, "gradients": grads, "optimizer_states": states, "total": weights + grads + states}


@dataclass(frozen=True)
class LayerTensors:
    """What one transformer layer keeps for backward, per token, under Korthikanti et al.'s
    accounting: elements (of b bytes) and mask bytes, each whole on every tensor-parallel rank
    (`rep`, the layer-width tensors: sequence parallelism splits them), split over t (`split`), or
    the attention scores (`score`, split; what selective recomputation drops)."""
    width: int  # h, the layer's input width (full recomputation keeps s x h of it)
    rep: int
    rep_mask: int
    split: int
    split_mask: int
    score: int
    score_mask: int

    def per_token_bytes(self, b: int, t: int = 1, sp: bool = False, recompute: str = "none") -> Fraction:
        whole = Fraction(1, t) if sp else Fraction(1)
        if recompute == "full":
            return self.width * b * whole
        kept = (self.rep * b + self.rep_mask) * whole + Fraction(self.split * b + self.split_mask, t)
        if recompute == "none":
            kept += Fraction(self.score * b + self.score_mask, t)
        return kept


def gpt_layer(s: int, h: int, a: int) -> LayerTensors:
    """The layer of Korthikanti et al. 2022 (GPT: LayerNorm, attention with dropout on the scores,
    a 4h GeLU MLP, dropout after attention and after the MLP), tensor by tensor as their section
    4.1 counts it."""
    return LayerTensors(width=h, rep=4 * h, rep_mask=2 * h, split=4 * h + 8 * h, split_mask=0,
                        score=2 * a * s, score_mask=a * s)


def layer_activation_bytes(layer: LayerTensors, s: int, micro_batch: int, b: int = 2, t: int = 1,
                           sp: bool = False, recompute: str = "none") -> Fraction:
    """Bytes one layer keeps for a micro-batch of `micro_batch` sequences of s tokens, per GPU."""
    return s * micro_batch * layer.per_token_bytes(b, t, sp, recompute)


def bubble_fraction(p: int, m: int, v: int = 1) -> Fraction:
    """Pipeline bubble over ideal compute time: (p - 1)/m, interleaved (p - 1)/(m v)
    (Narayanan et al. 2021)."""
    return Fraction(p - 1, m * v)


def in_flight_layers(layers: int, p: int, m: int, v: int = 1) -> Fraction:
    """Layers' worth of activations the first pipeline stage holds at its peak with 1F1B: p micro-
    batches of L/p layers (L), interleaved L(1 + (p - 1)/(p v)) (Korthikanti et al. 4.2.3; Megatron's
    warm-up of 2(p - 1) + (v - 1)p + 1 chunks of L/(p v) layers); never more than the step's m."""
    if v == 1:
        return Fraction(layers, p) * min(p, m)
    return Fraction(layers, p * v) * min(2 * (p - 1) + (v - 1) * p + 1, m * v)


def implied_mfu(flops: float, gpu_hours: float, peak_flops: float) -> float:
    """Model FLOP utilisation a run implies: its model FLOPs / (GPU-hours x 3600 x peak)."""
    return flops / (gpu_hours * 3600 * peak_flops)


# --- the spec, as the plan sees it ---------------------------------------------------------------

@dataclass
class _Part:
    """A node's parameters per tensor-parallel rank: split over t plus whole."""
    split: int = 0
    whole: int = 0
    vocab_rows: int = 0  # vocabulary-parallel rows (embedding, output layer): ceil(rows / t) x cols
    vocab_cols: int = 0

    def at(self, t: int) -> int:
        return -(-self.split // t) + self.whole + -(-self.vocab_rows // t) * self.vocab_cols


@dataclass
class Model:
    """A transformer spec as the parallel plan reads it (`describe`)."""
    name: str
    seq: int  # s
    width: int  # h
    heads: int  # a
    kv_heads: int
    head_dim: int
    layers: int  # L
    vocab: int | None  # the output layer's outputs (its logits), or None
    layer: LayerTensors
    layer_params: _Part  # one layer's trainable parameters
    first: _Part  # parameters before the first layer (embeddings)
    last: _Part  # after the last layer (final norm, output layer)
    tied: _Part  # the output layer's weight tied to the embedding: a copy on the last stage when p > 1
    pre_rep: int  # elements per token saved before the first layer (whole on each rank)
    pre_mask: int  # their mask bytes per token
    head_rep: int  # elements per token the head saves (its norm's and output layer's inputs)
    head_mask: int  # its dropout masks' bytes per token
    logits: Fraction  # the output layer's outputs per token (V for a language model; a classifier's / s)
    macs: int  # per sequence (the report's, batch 1)
    score_macs: int  # per sequence, every layer's q k^T and attention x V
    non_trainable: int  # buffers, kept whole on every GPU
    block: str
    notes: list = field(default_factory=list)
    #: frozen parameters (`trainable: false`), split as the trainable ones are: weights only, no
    #: gradients or optimizer states; keys layer, first, last, tied (as the fields above)
    frozen: dict = field(default_factory=dict)
    layer_macs: int = 0  # per sequence, the transformer layers' MACs (what full recomputation runs again)


def describe(graph: Graph, report: Report) -> Model:
    """Read the transformer layers of `graph` (analysed at batch 1)."""
    if graph.symbols:
        raise SpecError("parallel plans need numeric sizes; give every symbol a number with --set "
                        f"(symbols: {', '.join(graph.symbols)})", graph.input_loc)
    rows = {r.name: r for r in report.layers}
    shapes = dict(graph.input_shapes)
    shapes.update((r.name, tuple(r.output_shape)) for r in report.layers)
    instances: dict[str, list] = {}
    for node in graph.nodes:
        if node.blocks:
            instances.setdefault(node.blocks[0][0], []).append(node)
    layers = {k: v for k, v in instances.items() if any(n.kind == "attention" for n in v)}
    if not layers:
        raise SpecError(f"parallel plans need transformer layers: block instances holding an attention; "
                        f"{graph.name} has none")
    kinds = {v[0].blocks[0][1] for v in layers.values()}
    if len(kinds) > 1 or len(layers) != len(instances):
        raise SpecError("parallel plans need one kind of transformer layer repeated (a block with one attention); "
                        f"{graph.name} has blocks {', '.join(sorted({v[0].blocks[0][1] for v in instances.values()}))}")
    block = kinds.pop()
    names = list(layers)
    nodes = layers[names[0]]
    for n in nodes:
        if n.kind not in _LAYER_KINDS:
            raise SpecError(f"parallel plans know the layers of dense transformer blocks (norms, attention, linear, "
                            f"activations, products, dropout); block {block} has {n.kind} ({n.name})", n.loc)
    attn = [n for n in nodes if n.kind == "attention"]
    if len(attn) != 1:
        raise SpecError(f"parallel plans need one attention per transformer layer; block {block} has {len(attn)}",
                        attn[1].loc)
    att = attn[0]
    s, h = shapes[att.inputs[0]][0], shapes[att.inputs[0]][-1]
    a = att.args["heads"]
    kv = att.args.get("kv_heads") or a
    hd = att.args.get("head_dim") or h // a
    if len(shapes[att.inputs[0]]) != 2:
        raise SpecError(f"parallel plans need attention on a sequence [T, D]; {att.name} reads "
                        f"{list(shapes[att.inputs[0]])}", att.loc)
    layer = _layer_tensors(nodes, shapes, s, h, a, kv, hd)
    for other in names[1:]:  # every layer alike (a repeat; a block's arguments could differ)
        ns = layers[other]
        if [(n.kind, n.args, shapes[n.name], n.trainable) for n in ns] != \
                [(n.kind, n.args, shapes[n.name], n.trainable) for n in nodes]:  # frozen alike too
            raise SpecError(f"parallel plans need every transformer layer alike (frozen or trainable alike too); "
                            f"{other} differs from {names[0]}", ns[0].loc)
    layer_params, layer_frozen = _Part(), _Part()
    inside = _tp_split(nodes)
    for n in nodes:
        tr, fr = _own_params(rows[n.name])
        row = any(inside.get(i, False) for i in n.inputs)
        _add_params(layer_params, n, tr, h, row)
        _add_params(layer_frozen, n, fr, h, row)
    # every instance alike (a repeat: the same figures)
    before, after = [], []
    last_index = max(i for i, n in enumerate(graph.nodes) if n.blocks)
    for i, n in enumerate(graph.nodes):
        if not n.blocks:
            (after if i > last_index else before).append(n)
    first, last, tied = _Part(), _Part(), _Part()
    frozen = {"layer": layer_frozen, "first": _Part(), "last": _Part(), "tied": _Part()}
    pre_rep = pre_mask = head_rep = head_mask = logits = 0
    vocab = None
    # buffers: the non-trainable parameters of layers not frozen (a frozen layer's are its weights)
    nontrain = sum(r.non_trainable_params for r in report.layers if not r.frozen)
    for n in before:
        r = rows[n.name]
        tr, fr = _own_params(r)
        if n.kind == "embedding":
            part = frozen["first"] if r.frozen else first
            part.vocab_rows, part.vocab_cols = part.vocab_rows + n.args["num"], n.args["dim"]
        else:
            first.whole += tr
            frozen["first"].whole += fr
        pre_rep += _pre_saved(n, shapes, s)
        if n.kind == "dropout" and n.args.get("p"):
            pre_mask += _per_token(shapes[n.name], s)
    for n in after:
        r = rows[n.name]
        out = shapes[n.name]
        if n.kind == "linear" and out[-1] != h:  # the output layer: column (vocabulary) parallel
            vocab, logits = out[-1], _per_token(out, s)
            held = r.non_trainable_params if r.frozen else r.trainable_params
            part = (frozen["tied"] if r.frozen else tied) if r.shared_with else (frozen["last"] if r.frozen else last)
            part.vocab_rows, part.vocab_cols = vocab, held // vocab
            if r.shared_params and r.shared_params != held:
                raise SpecError(f"parallel plans need the output layer {n.name} tied whole or not at all", n.loc)
        else:
            tr, fr = _own_params(r)
            last.whole += tr
            frozen["last"].whole += fr
        if n.kind in _KEEP_INPUT:
            head_rep += sum(_per_token(shapes[i], s) for i in n.inputs)
        elif n.kind == "dropout":
            head_mask += _per_token(shapes[n.name], s) if n.args.get("p") else 0
        elif n.kind not in _KEEP_NOTHING:
            raise SpecError(f"parallel plans know a transformer's head (norm, output layer); {n.kind} ({n.name}) "
                            "is not one", n.loc)
    seq_attn = [rows[n.name] for n in graph.nodes if n.kind == "attention"]
    score = 2 * s * s * a * hd * len(seq_attn)
    model = Model(graph.name, s, h, a, kv, hd, len(names), vocab, layer, layer_params, first, last, tied,
                  pre_rep, pre_mask, head_rep, head_mask, logits, report.totals.macs // report.batch, score, nontrain, block,
                  frozen=frozen, layer_macs=sum(rows[n.name].macs for v in layers.values() for n in v) // report.batch)
    return model


def _own_params(row) -> tuple:
    """(trainable, frozen) parameters a row holds itself (a weight shared with an earlier layer counts
    there, once)."""
    if row.frozen:
        return 0, row.non_trainable_params - row.shared_params
    return row.trainable_params - row.shared_params, 0


def _per_token(shape: tuple, s: int) -> int:
    """Elements per token of a tensor [s, ...] (a per-example tensor of another shape: its elements / s)."""
    return Fraction(prod(shape), s)


def _pre_saved(n, shapes, s) -> int:
    if n.kind in _KEEP_NOTHING or n.kind == "dropout":
        return 0
    # anything else before the layers (a ViT's patch convolution): its inputs, whole on each rank
    return sum(_per_token(shapes[i], s) for i in n.inputs)


def _tp_split(nodes) -> dict:
    """Which of a layer's tensors lie inside a tensor-parallel region (split over t), by Megatron-LM's
    structure rather than by width: a linear reading a whole tensor is column parallel (its output
    split), one reading a split tensor is row parallel (its output all-reduced, whole); attention
    splits by heads inside and returns whole; the other kinds keep their inputs' split. The block's
    inputs are whole. (So an MLP as wide as the layer, f = h, is split as any other.)"""
    split: dict[str, bool] = {}
    for n in nodes:
        into = any(split.get(i, False) for i in n.inputs)
        split[n.name] = False if n.kind == "attention" else (not into) if n.kind == "linear" else into
    return split


def _layer_tensors(nodes, shapes, s, h, a, kv, hd) -> LayerTensors:
    kept: dict[str, int] = {}  # tensor -> elements per token (each counted once)
    masks_rep = masks_split = score = score_mask = split_extra = 0
    inside = _tp_split(nodes)
    for n in nodes:
        ins = list(n.inputs)
        if n.kind in _KEEP_INPUT:
            kept.update((i, _per_token(shapes[i], s)) for i in ins)
        elif n.kind == "multiply":
            kept.update((i, _per_token(shapes[i], s)) for i in ins)
        elif n.kind == "dropout":
            if not n.args.get("p"):  # p = 0 draws no mask
                continue
            width = _per_token(shapes[n.name], s)
            if inside[n.name]:
                masks_split += width
            else:
                masks_rep += width
        elif n.kind == "attention":
            kept[ins[0]] = _per_token(shapes[ins[0]], s)
            # Q, K, V and the output projection's input: split over the heads' ranks
            split_extra += a * hd + 2 * kv * hd + a * hd
            score += a * s  # the softmax output
            if n.args.get("dropout"):
                score += a * s  # the dropout's output, read by attention x V
                score_mask += a * s
    rep = sum(v for i, v in kept.items() if not inside.get(i, False))
    split = sum(v for i, v in kept.items() if inside.get(i, False)) + split_extra
    return LayerTensors(h, int(rep), int(masks_rep), int(split), int(masks_split), score, score_mask)


def _add_params(part: _Part, n, p: int, h: int, row: bool = False) -> None:
    """Deal a node's `p` parameters into `part`: split over t or whole on every rank (Megatron-LM).
    `row`: a linear reading a split tensor, row parallel (_tp_split)."""
    if not p:
        return
    if n.kind == "attention":
        a = n.args
        o_bias = a.get("o_bias") if a.get("o_bias") is not None else a.get("bias")
        whole = h if o_bias else 0  # the row-parallel output projection's bias stays whole
        if a.get("qk_norm") and (a.get("qk_norm_over") or "head") == "head":  # Qwen3: one q and one k norm of
            hd = a.get("head_dim") or h // a["heads"]  # head_dim shared by every head, whole on each rank
            whole += 2 * hd * (1 if a["qk_norm"] == "rmsnorm" else 2)
        part.split += p - whole
        part.whole += whole
    elif n.kind == "linear":
        out = n.args["out"]
        if row and n.args.get("bias"):  # row parallel (the MLP's down projection): bias whole
            part.split += p - out
            part.whole += out
        else:
            part.split += p
    else:  # norms: whole on every rank
        part.whole += p


# --- one configuration -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Config:
    gpus: int
    tp: int = 1
    pp: int = 1
    zero: int = 0
    sequence_parallel: bool = False
    recompute: str = "none"
    micro_batch: int = 1
    global_batch: int = 1
    interleave: int = 1

    @property
    def dp(self) -> int:
        return self.gpus // (self.tp * self.pp)

    @property
    def micro_batches(self) -> int:
        return self.global_batch // (self.micro_batch * self.dp)


@dataclass
class ParallelPlan:
    name: str
    config: Config
    dtype: str
    optimizer: str
    stage: str  # the stage whose GPUs hold the most memory: first, last or only
    memory: list[Item] = field(default_factory=list)
    schedule: list[Item] = field(default_factory=list)
    cost: list[Item] = field(default_factory=list)
    communication: list[Item] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    stages: dict = field(default_factory=dict)  # stage -> total bytes per GPU
    _rank: tuple = ()

    def sections(self):
        return (("memory per GPU", self.memory), ("schedule", self.schedule), ("cost", self.cost),
                ("communication per GPU per step", self.communication))

    def get(self, key: str):
        return next(i.value for _, items in self.sections() for i in items if i.key == key)

    def to_json(self) -> dict:
        suffix = {"bytes": "_bytes", "flops": "_flops", "flop/s": "_flops_per_s", "seconds": "_s",
                  "bytes/s": "_bytes_per_s"}
        c = self.config
        # "version" is archcalc's, as in every JSON document (docs/json.md; a configuration of
        # --fit's list is one too); a key already named for its unit keeps one suffix (model_flops)
        out = {"version": _package_version(), "name": self.name, "dtype": self.dtype, "optimizer": self.optimizer,
               "config": {"gpus": c.gpus, "tp": c.tp, "pp": c.pp, "dp": c.dp, "zero": c.zero,
                          "sequence_parallel": c.sequence_parallel, "recompute": c.recompute,
                          "micro_batch": c.micro_batch, "global_batch": c.global_batch,
                          "micro_batches": c.micro_batches, "interleave": c.interleave},
               "stage": self.stage, "stage_totals_bytes": dict(self.stages)}
        for key, items in (("memory", self.memory), ("schedule", self.schedule), ("cost", self.cost),
                           ("communication", self.communication)):
            out[key] = {i.key + ("" if i.key.endswith(suffix.get(i.unit, "")) else suffix.get(i.unit, "")): i.value
                        for i in items}
        out["formulas"] = {key: {i.key: i.formula for i in items} for key, items in
                           (("memory", self.memory), ("schedule", self.schedule), ("cost", self.cost),
                            ("communication", self.communication))}
        out["notes"] = list(self.notes)
        return out


def _n(x) -> str:
    return f"{x:,}"


def _up(x) -> int:
    return ceil(x)


def check_config(model: Model, c: Config) -> None:
    """Refuse a configuration that does not divide the model or the batch (one clear error)."""
    if not 1 <= c.gpus <= MAX_GPUS:
        raise SpecError(f"--gpus must be from 1 to {MAX_GPUS:,}, got {c.gpus}")
    for option, v in (("--tp", c.tp), ("--pp", c.pp), ("--micro-batch", c.micro_batch),
                      ("--global-batch", c.global_batch), ("--interleave", c.interleave)):
        if v < 1:
            raise SpecError(f"{option} must be at least 1, got {v}")
    if c.recompute not in RECOMPUTE:
        raise SpecError(f"--recompute must be one of {', '.join(RECOMPUTE)}, got {c.recompute}")
    if c.zero not in ZERO_STAGES:
        raise SpecError(f"--zero must be one of 0, 1, 2, 3, got {c.zero}")
    if c.gpus % (c.tp * c.pp):
        raise SpecError(f"--gpus {c.gpus} is not a multiple of --tp x --pp = {c.tp * c.pp}")
    if model.heads % c.tp or model.kv_heads % c.tp:
        raise SpecError(f"--tp {c.tp} must divide the heads ({model.heads}) and key/value heads ({model.kv_heads})")
    if model.layers % (c.pp * c.interleave):
        raise SpecError(f"--pp {c.pp}" + (f" x --interleave {c.interleave}" if c.interleave > 1 else "")
                        + f" must divide the {model.layers} layers")
    if c.interleave > 1 and c.pp == 1:
        raise SpecError("--interleave needs a pipeline (--pp 2 or more)")
    if c.global_batch % (c.micro_batch * c.dp):
        raise SpecError(f"--global-batch {c.global_batch} is not a multiple of --micro-batch x data-parallel "
                        f"degree = {c.micro_batch} x {c.dp}")
    if c.interleave > 1 and c.micro_batches % c.pp:
        raise SpecError(f"an interleaved pipeline needs micro-batches per step ({c.micro_batches}) a multiple of "
                        f"--pp {c.pp}")


def plan_parallel(model: Model, c: Config, *, dtype: str = "bfloat16", optimizer: str = "adam",
                  master_weights: bool | None = None, gpu: str | None = None, peak_tflops: float | None = None,
                  utilization: float = DEFAULT_UTILIZATION, tokens: int | None = None,
                  examples: int | None = None, gpu_memory: int | None = None) -> ParallelPlan:
    """The per-GPU plan of training `model` under configuration `c`."""
    check_config(model, c)
    if optimizer not in OPTIMIZER_STATES:
        raise SpecError(f"unknown optimizer '{optimizer}'; expected one of {', '.join(OPTIMIZER_STATES)}")
    if not MIN_UTILIZATION <= utilization <= 1:
        raise SpecError(f"--utilization must be a fraction from {MIN_UTILIZATION:g} to 1, got {utilization}")
    if tokens is not None and examples is not None:
        raise SpecError("give --tokens or --examples, not both")
    b = DTYPE_BYTES[dtype]
    half = b < 4
    if master_weights is None:
        master_weights = half
    elif master_weights and not half:
        raise SpecError(f"--master-weights applies to half-precision dtypes; {dtype} weights are their own master copy")
    k = OPTIMIZER_STATES[optimizer]
    opt_bytes = (MASTER_BYTES if master_weights else 0) + k * (MASTER_BYTES if master_weights else b)
    t, p, d, v, m, mb = c.tp, c.pp, c.dp, c.interleave, c.micro_batches, c.micro_batch
    sp, rc, s, h = c.sequence_parallel and t > 1, c.recompute, model.seq, model.width
    L, Lp = model.layers, model.layers // p

    # parameters per GPU on the first and last stage (one stage when p = 1)
    per_layer = model.layer_params.at(t)
    if p == 1:  # a tied output layer is the embedding's weight: counted once
        first = last = L * per_layer + model.first.at(t) + model.last.at(t)
    else:  # the last stage keeps its own copy of a tied output weight (Megatron-LM)
        first = Lp * per_layer + model.first.at(t)
        last = Lp * per_layer + model.last.at(t) + model.tied.at(t)

    # activations per GPU
    whole = Fraction(1, t) if sp else Fraction(1)
    one = layer_activation_bytes(model.layer, s, mb, b, t, sp, rc)
    full_one = layer_activation_bytes(model.layer, s, mb, b, t, sp, "none")
    held = in_flight_layers(L, p, m, v)
    pre = s * mb * (model.pre_rep * b * whole + model.pre_mask * whole)
    head = s * mb * ((model.head_rep * b + model.head_mask) * whole
                     + Fraction(LOGIT_BYTES, t) * model.logits)
    work = full_one if rc == "full" else 0  # one layer rebuilt at a time during backward
    act_first = held * one + pre * min(p, m)  # the embedding's output for each micro-batch in flight
    # the last stage: one micro-batch (1F1B); interleaved, Megatron's warm-up of (v - 1)p + 1 chunks
    last_layers = Lp if v == 1 else Fraction(L, p * v) * min((v - 1) * p + 1, m * v)
    act_last = (last_layers * one + head) if p > 1 else (L * one + pre + head)
    if p == 1:
        act_first = act_last

    def states(params):
        return zero_model_states(params, d, c.zero, weight_bytes=b, grad_bytes=b, optimizer_bytes=opt_bytes)

    # frozen parameters (trainable: false): split as the trainable ones, weights only (ZeRO-3 shards them too)
    def frz(key):
        return model.frozen[key].at(t) if key in model.frozen else 0

    frozen_layer = frz("layer")
    if p == 1:
        frozen_stage = {"first": L * frozen_layer + frz("first") + frz("last")}
        frozen_stage["last"] = frozen_stage["first"]
    else:
        frozen_stage = {"first": Lp * frozen_layer + frz("first"), "last": Lp * frozen_layer + frz("last") + frz("tied")}

    def frozen_bytes(n):
        return b * (-(-n // d) if c.zero == 3 else n)

    # ZeRO-3 gathers one module's weights whole at a time: a layer's, or the embedding's or output layer's
    # where they are larger (a large vocabulary beside narrow layers)
    units = {"first": [model.first.at(t) + frz("first")],
             "last": [model.last.at(t) + model.tied.at(t) * (p > 1) + frz("last") + frz("tied") * (p > 1)]}
    if p == 1:
        units["first"] = units["last"] = [model.first.at(t) + frz("first"), model.last.at(t) + frz("last")]
    gathered = {k: b * max([per_layer + frozen_layer] + u) if c.zero == 3 else 0 for k, u in units.items()}
    buffers = b * model.non_trainable
    totals = {}
    for stage, params, act in (("first", first, act_first), ("last", last, act_last)):
        totals[stage] = (states(params)["total"] + frozen_bytes(frozen_stage[stage]) + _up(act) + _up(work)
                         + gathered[stage] + buffers)
    stage = "only" if p == 1 else max(totals, key=totals.get)
    params = first if stage in ("only", "first") else last
    act = act_first if stage in ("only", "first") else act_last
    frozen_here = frozen_stage["last" if stage == "last" else "first"]
    gather = gathered["last" if stage == "last" else "first"]
    ms = states(params)
    plan = ParallelPlan(model.name, c, dtype, optimizer, stage)
    plan.stages = {"only": totals["first"]} if p == 1 else dict(totals)
    shard = f"ceil({_n(params)} / {d})"
    where = {"only": "every GPU", "first": "first pipeline stage", "last": "last pipeline stage"}[stage]
    mem = plan.memory
    mem.append(Item("params", f"parameters ({where})", params, "count",
                    f"{Lp if p > 1 else L} layers x {_n(per_layer)} per tensor-parallel rank + "
                    + ("embeddings and head" if p == 1 else "embeddings" if stage == "first" else "head")
                    + (f" (tp {t})" if t > 1 else "")))
    zero = f" (ZeRO-{c.zero})"
    mem.append(Item("weights", f"weights ({dtype})", ms["weights"], "bytes",
                    f"{b} B x " + (shard + zero if c.zero >= 3 else _n(params))))
    mem.append(Item("gradients", f"gradients ({dtype})", ms["gradients"], "bytes",
                    f"{b} B x " + (shard + zero if c.zero >= 2 else _n(params))))
    optdesc = (f"{MASTER_BYTES} B master + " if master_weights else "") + \
              f"{k} x {MASTER_BYTES if master_weights else b} B {OPTIMIZER_NAMES[optimizer]}"
    mem.append(Item("optimizer_states", "optimizer states", ms["optimizer_states"], "bytes",
                    f"{opt_bytes} B ({optdesc}) x " + (shard if c.zero >= 1 else _n(params))
                    + (f" (ZeRO-{c.zero})" if c.zero >= 1 else "")))
    if frozen_here:
        mem.append(Item("frozen_weights", f"frozen weights ({dtype})", frozen_bytes(frozen_here), "bytes",
                        f"{b} B x " + (f"ceil({_n(frozen_here)} / {d}){zero}" if c.zero >= 3 else _n(frozen_here))
                        + ": parameters of trainable: false layers, no gradients or optimizer states"))
    if buffers:
        mem.append(Item("buffers", "buffers", buffers, "bytes", f"{b} B x {_n(model.non_trainable)} non-trainable"))
    if gather:
        mem.append(Item("zero3_gathered", "ZeRO-3 gathered layer", gather, "bytes",
                        f"{b} B x {_n(gather // b)}: one module's weights gathered whole at a time (a layer's, or "
                        "the embedding's or output layer's where larger)"))
    lay = f"s x b x ({_form(model.layer, b, t, sp, rc, model.heads, s)})"
    held_text = (f"{L} layers ({p} micro-batches of {Lp} layers in flight, 1F1B)" if stage == "first" and v == 1
                 else f"{L} x (1 + {p - 1}/({p} x {v})) = {held} layers (interleaved)" if stage == "first"
                 else f"{last_layers} layers (last stage)" if stage == "last" else f"{L} layers")
    if held != int(held) or (stage == "first" and min(p, m) < p):
        held_text = f"{held} layers in flight (m = {m} micro-batches)"
    mem.append(Item("activations", "activations", _up(act), "bytes",
                    f"{held_text} x {lay}, s {s}, b {mb}" + (" + head (its norm's and output layer's inputs"
                                                            + (", fp32 logits)" if model.vocab else ")")
                                                            if stage in ("only", "last") else "")))
    if work:
        mem.append(Item("recompute_working", "layer being recomputed", _up(work), "bytes",
                        "full recomputation rebuilds one layer's activations during its backward"))
    total = totals["first" if stage in ("only", "first") else "last"]
    mem.append(Item("total", "total", total, "bytes", "model states + activations"
                    + (" + recomputed layer" if work else "") + (" + gathered layer" if gather else "")))
    if gpu_memory is not None:
        mem.append(Item("gpu_memory", "GPU memory", gpu_memory, "bytes",
                        "fits" if total <= gpu_memory else f"does not fit: {total - gpu_memory:,} B over"))

    sched = plan.schedule
    sched.append(Item("dp", "data-parallel degree d", d, "count", f"N / (t x p) = {c.gpus} / ({t} x {p})"))
    sched.append(Item("micro_batches", "micro-batches per step m", m, "count",
                      f"B / (b x d) = {c.global_batch} / ({mb} x {d})"))
    bub = bubble_fraction(p, m, v)
    sched.append(Item("bubble", "pipeline bubble", float(bub), "ratio",
                      f"(p - 1) / (m x v) = {p - 1} / ({m} x {v})" if v > 1 else f"(p - 1) / m = {p - 1} / {m}"))

    cost = plan.cost
    model_flops = 6 * model.macs * c.global_batch
    # full recomputation runs the transformer layers' forward again, not the embeddings' or the head's
    extra = {"none": 0, "selective": 2 * model.score_macs, "full": 2 * (model.layer_macs or model.macs)}[rc] \
        * c.global_batch
    cost.append(Item("model_flops", "model FLOPs / step", model_flops, "flops",
                     f"6 x {_n(model.macs)} MACs / sequence x B {c.global_batch}"))
    if extra:
        cost.append(Item("recompute_flops", "recomputation FLOPs / step", extra, "flops",
                         "2 x attention-core MACs (q k^T, x V) x B" if rc == "selective"
                         else f"the layers' forward again: 2 x {_n(model.layer_macs or model.macs)} MACs x B"))
    peak, source = _peak(gpu, peak_tflops, dtype)
    executed = model_flops + extra
    plan._rank = (executed * (1 + bub),)
    if peak:
        ideal = executed / (c.gpus * peak * utilization)
        step = ideal * float(1 + bub)
        cost.append(Item("peak", "peak / GPU", peak, "flop/s", source))
        cost.append(Item("step_time", "step time", step, "seconds",
                         f"executed FLOPs / (N {c.gpus} x peak x {utilization:g}) x (1 + bubble)"))
        cost.append(Item("mfu", "MFU", model_flops / (step * c.gpus * peak), "ratio",
                         "model FLOPs / (step time x N x peak)"))
        steps = None
        if tokens is not None:
            steps = Fraction(tokens, c.global_batch * s)
            what = f"{_n(tokens)} tokens / (B x s)"
        elif examples is not None:
            steps = Fraction(examples, c.global_batch)
            what = f"{_n(examples)} sequences / B"
        if steps is not None:
            cost.append(Item("steps", "steps", float(steps), "count", what))
            cost.append(Item("training_time", "training time", float(steps) * step, "seconds", "steps x step time"))
            cost.append(Item("gpu_hours", "GPU-hours", float(steps) * step * c.gpus / 3600, "count",
                             f"training time x {c.gpus} / 3600"))

    comm = plan.communication
    grad = b * params
    dp_factor = Fraction(3 if c.zero == 3 else 2) * Fraction(d - 1, d)
    # ZeRO-3 all-gathers the frozen weights too, for the forward and again for the backward
    frozen_gathers = 2 * Fraction(d - 1, d) * b * frozen_here if c.zero == 3 else 0
    dp_bytes = _up(dp_factor * grad + frozen_gathers)
    comm.append(Item("dp", "data parallel", dp_bytes, "bytes",
                     ("3 (d - 1)/d x gradient bytes: reduce-scatter + all-gather forward and backward (ZeRO-3)"
                      if c.zero == 3 else "2 (d - 1)/d x gradient bytes (all-reduce"
                      + ("; reduce-scatter + all-gather with ZeRO" if c.zero else "") + ")")
                     + f", {b} B x {_n(params)}"
                     + (f" + 2 (d - 1)/d x {b} B x {_n(frozen_here)} frozen weights gathered" if frozen_gathers else "")))
    ar = 6 if rc == "full" else 4
    layers_here = Lp if p > 1 else L
    tp_bytes = _up(ar * 2 * Fraction(t - 1, t) * s * mb * h * b * layers_here * m) if t > 1 else 0
    comm.append(Item("tp", "tensor parallel", tp_bytes, "bytes",
                     f"{ar} all-reduces per layer (2 forward, 2 backward" + (", 2 recomputed" if ar == 6 else "")
                     + ") x 2 (t - 1)/t x s b h x " + f"{b} B x {layers_here} layers x m {m}"
                     + (" (sequence parallel: all-gather + reduce-scatter, the same bytes)" if sp else "")))
    pp_bytes = _up(2 * s * mb * h * b * whole * m * v) if p > 1 else 0
    comm.append(Item("pp", "pipeline", pp_bytes, "bytes",
                     "activation forward + gradient backward: 2 x s b h x "
                     f"{b} B" + (" / t" if sp else "") + f" x m {m}" + (f" x v {v}" if v > 1 else "")))
    tie = b * model.tied.at(t) if p > 1 and model.tied.vocab_rows else 0
    if tie:
        comm.append(Item("tied_embedding", "tied embedding", tie, "bytes",
                         "all-reduce of the tied embedding's gradient between the first and last stage"))
    volume = dp_bytes + tp_bytes + pp_bytes + tie
    comm.append(Item("total", "total", volume, "bytes", "sent by one GPU per step"))
    if peak:
        comm.append(Item("bandwidth", "bandwidth to hide it", volume / step, "bytes/s", "total / step time"))
    plan._rank = (executed * (1 + bub), volume, total)

    plan.notes.append("activations per layer follow Korthikanti et al. 2022 (docs/memory.md, Parallel plans): "
                      f"{_form(model.layer, b, t, sp, rc, model.heads, s)} bytes per token for {model.block}")
    if c.sequence_parallel and t == 1:
        plan.notes.append("--sequence-parallel does nothing without tensor parallelism (--tp 2 or more)")
    plan.notes.append("not counted: CUDA context, allocator fragmentation, communication buffers and workspace")
    return plan


def _form(layer: LayerTensors, b: int, t: int, sp: bool, rc: str, a: int, s: int) -> str:
    """The per-token bytes of one layer as a formula in h, a and s (Korthikanti et al.'s form)."""
    h = layer.width

    def coef(el, mask):
        return Fraction(el * b + mask, h)

    rep, split, score = coef(layer.rep, layer.rep_mask), coef(layer.split, layer.split_mask), \
        Fraction(layer.score * b + layer.score_mask, a * s)
    if rc == "full":
        return f"{b}h" + (f"/{t}" if sp and t > 1 else "")
    parts = []
    if sp and t > 1:
        parts.append(f"{_fr(rep + split)}h/{t}")
    else:
        parts.append(f"{_fr(rep)}h")
        parts.append(f"{_fr(split)}h" + (f"/{t}" if t > 1 else ""))
    if rc == "none" and score:
        parts.append(f"{_fr(score)}as" + (f"/{t}" if t > 1 else ""))
    return " + ".join(parts)


def _fr(x: Fraction) -> str:
    return str(x.numerator) if x.denominator == 1 else f"{float(x):g}"


# --- --fit -------------------------------------------------------------------------------------------

def fit(model: Model, gpus: int, global_batch: int, gpu_memory: int, *, interleave: int = 1,
        fixed: dict | None = None, **options) -> list:
    """Every configuration (tp | heads, pp | layers, zero, recompute, micro-batch, sequence parallel)
    whose busiest GPU fits `gpu_memory`, best first: shortest step (executed FLOPs x (1 + bubble)),
    then the fewest bytes sent per GPU, then the least memory. `fixed` holds dimensions given, not
    enumerated: {"tp": 8, "zero": 1, ...} (Config's field names)."""
    fixed = fixed or {}
    if not 1 <= gpus <= MAX_GPUS:
        raise SpecError(f"--gpus must be from 1 to {MAX_GPUS:,}, got {gpus}")

    def choices(name, values):
        return [fixed[name]] if name in fixed else values

    # a dimension given that can never divide: the error a plan of it gives, not an empty list
    check_config(model, Config(gpus, fixed.get("tp", 1), fixed.get("pp", 1), global_batch=gpus * 10**6,
                               micro_batch=1, interleave=interleave if fixed.get("pp", 1) > 1 else 1))
    if interleave > 1 and "pp" not in fixed and not any(model.layers % (pp * interleave) == 0
                                                        for pp in _divisors(gpus) if pp > 1):
        raise SpecError(f"--interleave {interleave} fits no pipeline: no --pp p of 2 or more dividing --gpus {gpus} "
                        f"has p x {interleave} dividing the {model.layers} layers")

    found = []
    for tp in choices("tp", _divisors(gpus)):
        if model.heads % tp or model.kv_heads % tp or gpus % tp:
            continue
        for pp in choices("pp", _divisors(gpus // tp)):
            if (gpus // tp) % pp or model.layers % (pp * interleave) or (interleave > 1 and pp == 1):
                continue
            d = gpus // (tp * pp)
            if global_batch % d:
                continue
            per_rank = global_batch // d
            for mb in choices("micro_batch", [x for x in range(1, min(per_rank, MAX_FIT_MICRO_BATCH) + 1)
                                              if per_rank % x == 0]):
                if per_rank % mb:
                    continue
                for sp in choices("sequence_parallel", [False, True] if tp > 1 else [False]):
                    for rc in choices("recompute", list(RECOMPUTE)):
                        for zero in choices("zero", list(ZERO_STAGES)):
                            c = Config(gpus, tp, pp, zero, sp, rc, mb, global_batch, interleave)
                            if interleave > 1 and c.micro_batches % pp:
                                continue
                            plan = plan_parallel(model, c, gpu_memory=gpu_memory, **options)
                            if plan.get("total") <= gpu_memory:
                                found.append(plan)
    found.sort(key=lambda pl: pl._rank)
    return found


def _divisors(n: int) -> list:
    small = [i for i in range(1, int(n ** 0.5) + 1) if n % i == 0]
    return sorted(set(small + [n // i for i in small]))


_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def parse_size(text: str) -> int:
    """'80GiB', '80 GB', '141e9' -> bytes."""
    # At most two exponent digits: Fraction('1e99999999') builds 10**99999999 first (1e9999999 took
    # 5 s here, one more digit minutes), and anything past 1e18 B is refused below anyway.
    m = re.fullmatch(r"\s*([0-9]{1,30}(?:\.[0-9]{1,30})?(?:e[0-9]{1,2})?)\s*([a-zA-Z]*)\s*", text)
    if not m or m.group(2).lower() not in _UNITS:
        raise SpecError(f"--gpu-memory: expected a size such as 80GiB or 141GB, got '{text}'")
    value = Fraction(m.group(1)) * _UNITS[m.group(2).lower()]
    if not 1 <= value <= 10**18:
        raise SpecError(f"--gpu-memory must be from 1 B to 1e18 B, got '{text}'")
    return int(value)


def fit_json(plans: list, gpu_memory: int) -> dict:
    return {"version": _package_version(), "gpu_memory_bytes": gpu_memory, "fits": len(plans),
            "configurations": [pl.to_json() for pl in plans]}


__all__ = ["Config", "LayerTensors", "Model", "ParallelPlan", "bubble_fraction", "check_config", "describe",
           "fit", "fit_json", "gpt_layer", "implied_mfu", "in_flight_layers", "layer_activation_bytes",
           "parse_size", "plan_parallel", "zero_model_states"]
