"""`archcalc train` / `archcalc evaluate`: the lecture's training recipe for any spec (docs/train.md).

The pieces: `TrainConfig` (every setting; YAML file + command-line flags), `train(spec, config)` (one
run, or K cross-validation folds; one process, or N under DDP) and `evaluate(run_dir)`.

Exact resume is the design constraint that shapes the loop. Nothing in a step depends on hidden state
that a checkpoint does not hold:
- the batch order is a function of (seed, epoch) only (`distributed.shard`);
- noise and augmentation draw from a generator re-seeded from (seed, epoch, step, rank) at every step,
  so they need no saved state at all, also under DDP;
- the global torch RNG (dropout) is saved per rank in every checkpoint;
- the learning rate is a pure function of the global step (`Schedule`).
So a run stopped after any step (Ctrl-C stops at a step boundary) and resumed gives the same weights,
bit for bit, as one that never stopped.

The loop syncs with the device only every `log_every` steps (to update the progress bar and look for
a non-finite loss), never per step: a CUDA-graph step costs microseconds and a sync would dominate it.
"""
from __future__ import annotations

import json
import math
import os
import re
import shutil
import signal
import threading
import time
import warnings
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F

from archcalc.errors import SpecError, did_you_mean
from archcalc.spec.graph import Graph
from archcalc.torch import checkpoint, distributed

TASKS = ("classify", "binary", "regress", "denoise")
CHOICES = {"task": TASKS, "optimizer": ("sgd", "adam", "adamw"), "schedule": ("none", "step", "cosine"),
           "device": ("auto", "cpu", "cuda", "mps"), "precision": ("fp32", "bf16", "fp16"),
           "cuda_graph": ("auto", "on", "off")}
#: Tasks whose outputs are scored by accuracy (and a confusion matrix); the others by their loss only.
SCORED = ("classify", "binary")
LOG_POINTS = 20  # progress updates (and device syncs) per epoch


# --- settings -----------------------------------------------------------------------------------
@dataclass
class TrainConfig:
    """Every setting of a run; docs/train.md describes each. Field names are the YAML keys of
    `--config run.yaml` and, with '-' for '_', the command-line flags."""

    spec: str | None = None
    data: str = "digits"
    task: str = "classify"
    out: str | None = None  # default runs/<spec name>
    input: list | None = None  # override the spec's input shape (channels first, no batch)
    sizes: dict = field(default_factory=dict)  # numbers for symbolic sizes (--set H=32)
    epochs: int = 10
    batch_size: int = 64  # global: each of N processes takes batch_size / N
    eval_batch_size: int | None = None  # default 4 x the per-process batch
    lr: float = 1e-3
    optimizer: str = "adam"
    momentum: float = 0.9  # sgd only
    nesterov: bool = False
    weight_decay: float = 0.0  # L2, the optimizer's weight_decay, on weights (not biases or norms)
    l2_from: int = 0  # turn weight decay on after this many epochs
    l1: float = 0.0  # L1 penalty l1 * sum|w| added to the loss, on the same weights
    l1_from: int = 0
    schedule: str = "none"
    step_size: int = 1  # step schedule: lr x gamma every step_size epochs
    gamma: float = 0.9
    warmup: int = 0  # epochs of linear warm-up (per step) before the schedule
    min_lr: float = 0.0  # cosine floor
    grad_clip: float | None = None  # max global gradient norm
    flip: bool = False  # augmentation (images): random horizontal flips,
    shift: int = 0  # random shifts by up to this many pixels,
    crop: int = 0  # random crops after padding by this many pixels
    noise_std: float = 0.5  # denoise: std of the Gaussian noise added to the clean input
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    folds: int | None = None  # K-fold cross-validation on train+val
    patience: int | None = None  # early stopping: epochs without a better val loss
    seed: int = 0
    synthetic_size: int = 1024
    num_classes: int | None = None
    device: str = "auto"
    precision: str = "fp32"
    channels_last: bool = False
    compile: bool = False
    cuda_graph: str = "auto"
    gpus: int = 1

    @classmethod
    def from_sources(cls, config_yaml_path=None, cli_overrides: dict | None = None) -> "TrainConfig":
        """Settings from YAML file(s) (a path, or a list applied in order, later ones winning), then
        `cli_overrides` (flag name -> value; None means not given) on top. Unknown keys and bad
        values raise SpecError, with FILE:LINE:COL for values from a file."""
        from archcalc.homework.answers import plain
        from archcalc.spec.yaml_source import YMap, load_yaml, read_source

        paths = config_yaml_path if isinstance(config_yaml_path, (list, tuple)) else [config_yaml_path]
        values = {}
        for path in (p for p in paths if p is not None):
            doc = load_yaml(read_source(path, "config"), str(path))
            if doc is None:
                continue
            if not isinstance(doc, YMap):
                raise SpecError(f"{path}: a run config is a YAML mapping of settings, like 'epochs: 10'")
            for key in doc:
                name = str(key).replace("-", "_")
                if name not in FIELDS:
                    raise SpecError(f"unknown setting '{key}'{did_you_mean(name, FIELDS)}; docs/train.md lists "
                                    "them", doc.key_locs[key])
                values[name] = (plain(doc[key]), doc.where(key))
        for name, value in (cli_overrides or {}).items():
            if value is not None:
                if name not in FIELDS:
                    raise SpecError(f"unknown setting '{name}'{did_you_mean(name, FIELDS)}")
                values[name] = (value, None)
        return cls(**{name: _coerce(name, value, loc) for name, (value, loc) in values.items()}).checked()

    def checked(self) -> "TrainConfig":
        """Raise SpecError for any value out of range; returns self."""
        for name, choices in CHOICES.items():
            value = getattr(self, name)
            if value not in choices:
                raise SpecError(f"{_flag(name)} '{value}' is not one of {', '.join(choices)}"
                                f"{did_you_mean(value, choices)}")
        for name in ("epochs", "batch_size", "gpus", "step_size", "synthetic_size"):
            if getattr(self, name) < 1:
                raise SpecError(f"{_flag(name)} must be at least 1, got {getattr(self, name)}")
        for name in ("eval_batch_size", "patience", "num_classes"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise SpecError(f"{_flag(name)} must be at least 1, got {getattr(self, name)}")
        for name in ("lr", "momentum", "weight_decay", "l1", "l2_from", "l1_from", "warmup", "min_lr", "shift",
                     "crop", "noise_std"):
            if getattr(self, name) < 0:
                raise SpecError(f"{_flag(name)} must not be negative, got {getattr(self, name)}")
        if not 0 < self.gamma <= 1:
            raise SpecError(f"--gamma must be in (0, 1], got {self.gamma}")
        if self.grad_clip is not None and self.grad_clip <= 0:
            raise SpecError(f"--grad-clip must be positive, got {self.grad_clip}")
        if self.folds is not None and self.folds < 2:
            raise SpecError(f"--folds must be at least 2, got {self.folds}")
        if not (0 <= self.val_fraction < 1 and 0 <= self.test_fraction < 1 and self.val_fraction + self.test_fraction < 1):
            raise SpecError("--val-fraction and --test-fraction must be in [0, 1) and sum to less than 1")
        if self.nesterov and (self.optimizer != "sgd" or self.momentum == 0):
            raise SpecError("--nesterov needs --optimizer sgd with a non-zero --momentum")
        if self.batch_size % self.gpus:
            raise SpecError(f"--batch-size {self.batch_size} is the global batch: it must divide evenly over "
                            f"--gpus {self.gpus}")
        return self

    def to_yaml(self) -> str:
        import yaml

        return yaml.safe_dump(asdict(self), sort_keys=False)


FIELDS = tuple(f.name for f in fields(TrainConfig))
_TYPES = {f.name: f.type for f in fields(TrainConfig)}  # strings: "int | None", ...


def _flag(name: str) -> str:
    return "--" + ("set" if name == "sizes" else name.replace("_", "-"))


def _coerce(name: str, value, loc):
    """A setting's value as its field's type (YAML and typer give ints where floats are meant)."""
    kind, optional = _TYPES[name].split(" |")[0], "None" in _TYPES[name]
    where = f"'{name}'" if loc is not None else _flag(name)

    def bad(expected):
        return SpecError(f"{where}: expected {expected}, got {value!r}", loc)

    if value is None:
        if optional:
            return None
        raise bad(kind)
    if kind == "bool":
        if not isinstance(value, bool):
            raise bad("true or false")
        return value
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad("a whole number")
        return value
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad("a number")
        return float(value)
    if kind == "str":
        if not isinstance(value, (str, Path)):
            raise bad("text")
        return str(value)
    if kind == "list":  # the input shape: [3, 32, 32] or "3,32,32"
        parts = re.split(r"[\s,x\[\]()]+", value.strip()) if isinstance(value, str) else value
        parts = [p for p in parts if p != ""] if isinstance(parts, list) else None
        if not parts or not all(str(p).isdigit() and int(p) > 0 for p in parts):
            raise bad("positive sizes like [3, 32, 32]")
        return [int(p) for p in parts]
    if isinstance(value, (list, tuple)):  # sizes: ["H=32", "W=32"] from --set
        items = [str(v).partition("=") for v in value]
        if not all(sep for _, sep, _ in items):
            raise bad("NAME=SIZE items")
        value = {k.strip(): v.strip() for k, _, v in items}
    if not isinstance(value, dict):
        raise bad("a mapping of size names to numbers, like {H: 32}")
    out = {}
    for key, size in value.items():
        size = int(size) if isinstance(size, str) and size.isdigit() else size
        if not str(key).isidentifier() or isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise bad("NAME: positive size")
        out[str(key)] = size
    return out


# --- outcomes -----------------------------------------------------------------------------------
class Diverged(RuntimeError):
    """The loss (or the weights) became NaN/inf; the last good checkpoint was kept (exit 1)."""


class Interrupted(RuntimeError):
    """Ctrl-C: a checkpoint was saved at a step boundary (exit 130)."""


@dataclass
class RunResult:
    run_dir: Path
    summary: dict  # what summary.json holds
    metrics: list  # one dict per epoch (metrics.jsonl); per fold under summary["folds"] for --folds
    model: Any = None  # the trained module with its best weights (one process, no folds)


# --- the learning-rate schedule -------------------------------------------------------------------
class Schedule:
    """The learning rate as a pure function of the global step (so resuming needs only the step):
    linear warm-up over `warmup` epochs, then none / step (x gamma every step_size epochs, counted
    from the start) / cosine (to min_lr at the last epoch)."""

    def __init__(self, cfg: TrainConfig, steps_per_epoch: int):
        self.cfg, self.steps = cfg, steps_per_epoch

    def lr(self, step: int) -> float:
        c, S = self.cfg, self.steps
        if c.warmup and step < c.warmup * S:
            return c.lr * (step + 1) / (c.warmup * S)
        if c.schedule == "step":
            return c.lr * c.gamma ** (step // S // c.step_size)
        if c.schedule == "cosine":
            span = max(1, (c.epochs - c.warmup) * S)
            done = min(1.0, (step - c.warmup * S) / span)
            return c.min_lr + (c.lr - c.min_lr) * 0.5 * (1 + math.cos(math.pi * done))
        return c.lr

    def state_dict(self, step: int) -> dict:
        c = self.cfg
        return {"kind": c.schedule, "base_lr": c.lr, "warmup": c.warmup, "step_size": c.step_size, "gamma": c.gamma,
                "steps_per_epoch": self.steps, "global_step": step, "lr": self.lr(step)}


# --- tasks: losses, checks ----------------------------------------------------------------------
def _loss(task: str):
    """The lecture's loss table, as the mean over the batch (and over pixels for images)."""
    if task == "classify":
        return lambda out, y: F.cross_entropy(out.float(), y)
    if task == "binary":
        return lambda out, y: F.binary_cross_entropy_with_logits(out.reshape(y.shape).float(), y.float())
    return lambda out, y: F.mse_loss(out.reshape(y.shape).float(), y.float())


def _with_l1(loss, l1: float, weights: list):
    if not l1:
        return loss
    return lambda out, y: loss(out, y) + l1 * sum(w.abs().sum() for w in weights)


def _load_graph(spec, cfg: TrainConfig):
    from archcalc import api
    from archcalc.analysis.walk import analyze_graph
    from archcalc.render import shape_text

    if isinstance(spec, Graph):
        graph = spec
    else:
        graph = api.load_graph(spec, input_shape=tuple(cfg.input) if cfg.input else None, bindings=cfg.sizes or None)
    if graph.symbols:
        raise SpecError(f"{graph.name} has symbolic sizes ({', '.join(graph.symbols)}); training needs numbers: "
                        f"give them with --set (e.g. --set {graph.symbols[0]}=32)", graph.input_loc)
    report = analyze_graph(graph)
    out, inp, last = tuple(report.output_shape), tuple(graph.input_shape), graph.nodes[-1].kind
    task = cfg.task
    if task == "classify" and (len(out) != 1 or out[0] < 2):
        raise SpecError(f"--task classify needs the network to end in one score per class, output [K] with "
                        f"K >= 2; {graph.name} outputs {shape_text(out)}")
    if task == "binary" and out not in ((1,), ()):
        raise SpecError(f"--task binary needs one logit per example, output [1]; {graph.name} outputs "
                        f"{shape_text(out)}")
    if task in SCORED and last in ("softmax", "log_softmax", "sigmoid"):
        raise SpecError(f"--task {task} trains on logits (the loss applies the {'sigmoid' if task == 'binary' else 'softmax'} "
                        f"itself, stably): remove the final {last} layer of {graph.name}")
    if task == "denoise" and out != inp:
        raise SpecError(f"--task denoise needs the output shaped like the input, {shape_text(inp)}; "
                        f"{graph.name} outputs {shape_text(out)}")
    if cfg.flip or cfg.shift or cfg.crop:
        from archcalc.torch.data import check_augment

        if graph.tokens:
            raise SpecError(f"--flip/--shift/--crop augment images; {graph.name} takes token ids")
        check_augment(inp, flip=cfg.flip, shift=cfg.shift, crop=cfg.crop)
    return graph, report


def _load_data(cfg: TrainConfig, graph: Graph, report, fold: int | None, source: str | None = None,
               stats: dict | None = None):
    from archcalc.render import shape_text
    from archcalc.torch import data

    out = tuple(report.output_shape)
    kw = dict(seed=cfg.seed, val_fraction=cfg.val_fraction, test_fraction=cfg.test_fraction,
              folds=cfg.folds, fold=fold or 0, synthetic_size=cfg.synthetic_size, noise_std=cfg.noise_std,
              tokens=graph.tokens, num_classes=cfg.num_classes or (out[0] if cfg.task == "classify" else None),
              target_shape=out if cfg.task == "regress" else None)
    if graph.tokens:
        kw["vocab"] = min((n.args["num"] for n in graph.nodes if n.kind == "embedding"), default=None)
    source = source or cfg.data
    try:
        ds = data.load_dataset(source, cfg.task, tuple(graph.input_shape), stats=stats, **kw)
    except SpecError:
        raise
    except (ValueError, OSError, ImportError) as exc:
        raise SpecError(f"--data {source}: {exc}") from None
    got = tuple(ds.x_train.shape[1:])
    if got != tuple(graph.input_shape):
        raise SpecError(f"the examples of --data {source} are {shape_text(got)} but {graph.name} takes "
                        f"{shape_text(graph.input_shape)}: use a spec with that input, or --input")
    if cfg.task == "classify":
        k = len(ds.classes)
        if k != out[0]:
            raise SpecError(f"--data {source} has {k} classes but {graph.name} outputs {out[0]} scores")
    if cfg.task == "regress":
        target = tuple(ds.y_train.shape[1:])
        if target != out and not (out == (1,) and target == ()):
            raise SpecError(f"--data {source} has targets {shape_text(target)} but {graph.name} outputs "
                            f"{shape_text(out)}")
    return ds


# --- small helpers --------------------------------------------------------------------------------
def _mix(*parts: int) -> int:
    """A 63-bit seed from several integers (deterministic, unlike hash() of strings)."""
    h = 0x2545F4914F6CDD1D
    for p in parts:
        h = ((h ^ int(p)) * 0x100000001B3 + 0x9E3779B9) & (2**63 - 1)
    return h


def _rate(v: float, unit: str) -> str:
    for size, prefix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if v >= size:
            return f"{v / size:.3g} {prefix}{unit}"
    return f"{v:.3g} {unit}"


GPU_NAMES = ((r"h100.*pcie", "h100-pcie"), (r"h100", "h100-sxm"), (r"h200", "h200"), (r"a100", "a100"),
             (r"v100", "v100"), (r"\bl4\b", "l4"), (r"4090", "rtx4090"))
PRECISION_DTYPE = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


def gpu_peak(device: torch.device, precision: str):
    """(peak FLOP/s, label) of this GPU from archcalc.analysis.memory's table, or None off a known GPU."""
    from archcalc.analysis.memory import GPU_PEAK_TFLOPS

    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device).lower()
    key = next((k for pattern, k in GPU_NAMES if re.search(pattern, name)), None)
    tflops = GPU_PEAK_TFLOPS.get(key, {}).get(PRECISION_DTYPE[precision])
    return (tflops * 1e12, f"{key} {PRECISION_DTYPE[precision]} peak {tflops:g} TFLOP/s") if tflops else None


class _CtrlC:
    """The first Ctrl-C only sets `hit`: the loop saves a checkpoint at the next step boundary (a
    KeyboardInterrupt in the middle of a step would leave weights and optimizer out of step). A second
    Ctrl-C interrupts at once."""

    def __init__(self):
        self.hit, self._old = False, None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.hit:
            raise KeyboardInterrupt
        self.hit = True

    def __exit__(self, *exc):
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)


def _rng_states(dist) -> dict:
    """Every rank's global RNG states (dropout), gathered to all ranks with one sum per generator (each
    rank fills its own row), so rank 0's checkpoint can restore every rank."""
    states = {"torch": torch.get_rng_state()}
    if dist.device.type == "cuda":
        states["cuda"] = torch.cuda.get_rng_state(dist.device)
    out = {}
    for name, state in states.items():
        rows = torch.zeros(dist.world_size, state.numel(), dtype=torch.int64, device=dist.device)
        rows[dist.rank] = state.to(dist.device, torch.int64)
        out[name] = distributed.all_reduce_sum(rows, dist).to("cpu", torch.uint8)
    return out


def _set_rng_states(rng: dict, dist, seed: int, epoch: int) -> None:
    if rng["torch"].shape[0] != dist.world_size:  # resumed with another process count: fresh streams
        torch.manual_seed(_mix(seed, epoch, dist.rank, 1))
        return
    torch.set_rng_state(rng["torch"][dist.rank].cpu())
    if "cuda" in rng and dist.device.type == "cuda":
        torch.cuda.set_rng_state(rng["cuda"][dist.rank].cpu(), dist.device)


def _finite(model) -> bool:
    return bool(torch.stack([p.detach().isfinite().all() for p in model.parameters()]).all())


# --- evaluation -----------------------------------------------------------------------------------
@torch.no_grad()
def _evaluate(model, x, y, task: str, *, dist=None, batch: int = 256, precision="fp32", channels_last=False,
              classes: int = 0) -> dict | None:
    """Loss (the training loss, averaged over examples and, for MSE, elements), accuracy and confusion
    matrix (rows: true class, columns: predicted) over (x, y). Under DDP each rank takes a contiguous
    slice and the sums are added up, so every rank gets the same figures."""
    n = len(x)
    if n == 0:
        return None
    if dist is not None and dist.enabled:
        chunk = -(-n // dist.world_size)
        x, y = x[dist.rank * chunk:(dist.rank + 1) * chunk], y[dist.rank * chunk:(dist.rank + 1) * chunk]
    dev = next(model.parameters()).device
    was_training = model.training
    model.eval()
    k = classes if task == "classify" else 2
    sums = torch.zeros(3, dtype=torch.float64, device=dev)  # loss sum, correct, elements per example
    confusion = torch.zeros(k, k, dtype=torch.int64, device=dev)
    autocast = (torch.autocast(dev.type, dtype={"bf16": torch.bfloat16, "fp16": torch.float16}[precision])
                if precision != "fp32" else None)
    for i in range(0, len(x), batch):
        xb, yb = x[i:i + batch].to(dev), y[i:i + batch].to(dev)
        if channels_last and xb.dim() == 4:
            xb = xb.contiguous(memory_format=torch.channels_last)
        if autocast is not None:
            with autocast:
                out = model(xb)
        else:
            out = model(xb)
        out = out.float()
        if task == "classify":
            sums[0] += F.cross_entropy(out, yb, reduction="sum")
            pred = out.argmax(1)
        elif task == "binary":
            out = out.reshape(yb.shape)
            sums[0] += F.binary_cross_entropy_with_logits(out, yb.float(), reduction="sum")
            pred = (out > 0).long()
        else:
            sums[0] += F.mse_loss(out.reshape(yb.shape), yb.float(), reduction="sum") / yb[0].numel()
            continue
        truth = yb.long()
        sums[1] += (pred == truth).sum()
        confusion += torch.bincount(truth * k + pred, minlength=k * k).view(k, k)
    model.train(was_training)
    sums[2] = len(x)
    if dist is not None:
        distributed.all_reduce_sum(sums, dist)
        distributed.all_reduce_sum(confusion, dist)
    loss, correct, count = sums.tolist()
    result = {"loss": loss / count, "examples": int(count)}
    if task in SCORED:
        result.update(accuracy=correct / count, confusion=confusion.cpu().tolist())
    return result


# --- one training run ------------------------------------------------------------------------------
@dataclass
class _Run:
    """What the folds of one `train` call share."""

    cfg: TrainConfig
    graph: Graph
    report: Any
    dist: Any
    console: Any
    ctrl: _CtrlC
    on_step: Callable | None


def _fit(run: _Run, ds, run_dir: Path, resume: bool, title: str = "") -> tuple[dict, list, Any]:
    from archcalc.torch import data
    from archcalc.torch.build import build
    from archcalc.torch.fast_step import StepRunner

    cfg, dist, console = run.cfg, run.dist, run.console
    dev, main, world = dist.device, dist.is_main, dist.world_size
    if cfg.batch_size % world:  # --gpus checks this up front; torchrun's world size only shows here
        raise SpecError(f"--batch-size {cfg.batch_size} is the global batch: it must divide evenly over {world} processes")
    b = cfg.batch_size // world
    n = len(ds.x_train)
    steps = n // cfg.batch_size  # drop_last: every step has the same shape (CUDA graphs need it)
    if steps == 0:
        raise SpecError(f"--batch-size {cfg.batch_size} is larger than the training split ({n} examples)")
    log_every = max(1, steps // LOG_POINTS)
    torch.manual_seed(cfg.seed)  # the same initial weights on every rank and in every fold
    model = build(run.graph, device=dev)
    torch.manual_seed(_mix(cfg.seed, 0, dist.rank, 1))  # dropout: one stream per rank
    weights = [p for p in model.parameters() if p.requires_grad and p.dim() > 1]
    others = [p for p in model.parameters() if p.requires_grad and p.dim() <= 1]
    groups = [{"params": weights}, {"params": others, "weight_decay": 0.0}]  # never decay biases or norms
    if cfg.optimizer == "sgd":
        opt = torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov)
    else:  # capturable on CUDA: the whole step can then be one CUDA graph (fast_step)
        cls = torch.optim.Adam if cfg.optimizer == "adam" else torch.optim.AdamW
        opt = cls(groups, lr=cfg.lr, capturable=dev.type == "cuda")
    scaler = torch.amp.GradScaler(dev.type) if cfg.precision == "fp16" else None
    sched = Schedule(cfg, steps)
    st = {"epoch": 0, "step": 0, "best_val_loss": math.inf, "best_epoch": 0, "bad_epochs": 0, "partial": None,
          "stopped": None}
    history = []
    best_state = None
    metrics_path = run_dir / "metrics.jsonl"
    loaded = resume and (run_dir / "last.pt").exists()
    if loaded:
        ck = checkpoint.load(run_dir / "last.pt", dev)
        if ck["step"] and ck["config"].get("batch_size") != cfg.batch_size:
            raise SpecError(f"{run_dir} stopped in the middle of an epoch: resume it with the same --batch-size "
                            f"({ck['config'].get('batch_size')})")
        model.load_state_dict(ck["model"])
        checkpoint.load_optimizer_state(opt, ck["optimizer"], capturable=dev.type == "cuda" and cfg.optimizer != "sgd")
        if scaler is not None and ck.get("scaler"):
            scaler.load_state_dict(ck["scaler"])
        _set_rng_states(ck["rng"], dist, cfg.seed, ck["epoch"])
        st.update({k: ck[k] for k in ("epoch", "step", "best_val_loss", "best_epoch", "bad_epochs", "stopped")})
        st["partial"] = ck.get("partial_losses")
        if (run_dir / "best.pt").exists():
            best_state = checkpoint.load(run_dir / "best.pt", dev)["model"]
        if metrics_path.exists():  # lines written after this checkpoint belong to a lost future
            history = [json.loads(line) for line in metrics_path.read_text().splitlines() if line.strip()]
            history = [h for h in history if h["epoch"] <= st["epoch"]]
    if main:
        metrics_path.write_text("".join(json.dumps(h) + "\n" for h in history))
        (run_dir / "data.json").write_text(json.dumps(ds.stats(), indent=1) + "\n")
    net = distributed.wrap(model, dist)
    if cfg.compile:
        net = torch.compile(net)
    gen = torch.Generator(device=dev) if cfg.task == "denoise" or cfg.flip or cfg.shift or cfg.crop else None
    eval_batch = cfg.eval_batch_size or 4 * b
    classes = len(ds.classes or ())
    ev = dict(dist=dist, batch=eval_batch, precision=cfg.precision, channels_last=cfg.channels_last, classes=classes)
    flops_per_example = 3 * 2 * int(run.report.totals.macs)  # forward + backward = 3 x forward
    peak = gpu_peak(dev, cfg.precision)

    def snapshot(epoch, step, partial=None) -> dict:  # collective (RNG gather): every rank calls it
        return {"model": model.state_dict(), "optimizer": checkpoint.plain_optimizer_state(opt),
                "scheduler": sched.state_dict(epoch * steps + step), "epoch": epoch, "step": step,
                "best_val_loss": st["best_val_loss"], "best_epoch": st["best_epoch"], "bad_epochs": st["bad_epochs"],
                "stopped": st["stopped"], "rng": _rng_states(dist), "partial_losses": partial,
                "scaler": scaler.state_dict() if scaler is not None else None, "world_size": world,
                "config": asdict(cfg), "spec": cfg.spec}

    if not loaded:  # the "last good" state that a NaN in epoch 1 falls back to
        state = snapshot(0, 0)
        if main:
            checkpoint.save(run_dir / "last.pt", state)

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
                        TimeRemainingColumn(), console=console, transient=True,
                        disable=not main or not console.is_terminal)  # logs and pipes get the epoch lines only
    runner, runner_key, current_lr = None, None, None
    with progress:
        epochs_bar = progress.add_task(f"{title}epochs", total=cfg.epochs, completed=st["epoch"], info="")
        for epoch in range(st["epoch"], cfg.epochs):
            if st["stopped"]:
                break
            key = (epoch >= cfg.l2_from, epoch >= cfg.l1_from)
            if key != runner_key:  # a captured CUDA graph bakes in weight decay and the loss: start afresh
                opt.param_groups[0]["weight_decay"] = cfg.weight_decay if key[0] else 0.0
                runner = StepRunner(net, _with_l1(_loss(cfg.task), cfg.l1 if key[1] else 0.0, weights), opt,
                                    device=dev, precision=cfg.precision, channels_last=cfg.channels_last,
                                    cuda_graph=cfg.cuda_graph, grad_clip=cfg.grad_clip, scaler=scaler)
                runner_key, current_lr = key, None
            net.train()
            order = distributed.shard(n, dist, epoch=epoch, seed=cfg.seed, batch_size=b).to(dev)
            losses = torch.zeros(steps, device=dev)
            first = st["step"]
            if first:
                losses[:first] = st["partial"].to(dev)
            st["step"], lo = 0, first
            steps_bar = progress.add_task(f"{title}epoch {epoch + 1}", total=steps, completed=first, info="")
            start = tick = time.perf_counter()
            for s in range(first, steps):
                lr = sched.lr(epoch * steps + s)
                if lr != current_lr:
                    runner.set_lr(lr)
                    current_lr = lr
                idx = order[s * b:(s + 1) * b]
                x, y = ds.x_train[idx], ds.y_train[idx]
                if gen is not None:  # noise and augmentation: reproducible from (seed, epoch, step, rank) alone
                    gen.manual_seed(_mix(cfg.seed, epoch, s, dist.rank))
                    if cfg.flip or cfg.shift or cfg.crop:
                        x = data.augment(x, flip=cfg.flip, shift=cfg.shift, crop=cfg.crop, generator=gen)
                        y = x if cfg.task == "denoise" else y
                    if cfg.task == "denoise":
                        x = data.add_noise(x, ds.noise_std, gen)
                losses[s] = runner.step(x, y)
                if run.on_step is not None:
                    run.on_step(epoch + 1, s + 1)
                if s + 1 == steps or (s + 1) % log_every == 0 or (run.ctrl.hit and not dist.enabled):
                    # All ranks reach these points at the same steps, so one all-reduce agrees on both
                    # "someone pressed Ctrl-C" and "someone saw a non-finite loss".
                    flags = torch.stack([torch.tensor(float(run.ctrl.hit), device=dev),
                                         (~losses[lo:s + 1].isfinite()).sum().float()])
                    hit, bad = distributed.all_reduce_sum(flags, dist).tolist()
                    if bad:
                        where = (~losses[lo:s + 1].isfinite()).nonzero()
                        at = lo + int(where[0]) + 1 if len(where) else s + 1
                        value = losses[at - 1].item() if len(where) else float("nan")
                        raise Diverged(f"the loss became {value} at epoch {epoch + 1}, step {at} of {steps} (lr "
                                       f"{lr:.3g}); training stopped. {run_dir / 'last.pt'} keeps the last good "
                                       f"weights (epoch {epoch}). Try a smaller --lr (or --weight-decay), "
                                       "--grad-clip or --warmup.")
                    now = time.perf_counter()
                    rate = (s + 1 - lo) * cfg.batch_size / max(now - tick, 1e-9)
                    info = f"loss {losses[lo:s + 1].mean().item():.4g}  lr {lr:.3g}  {_rate(rate, 'ex/s')}"
                    if flops_per_example:
                        info += f"  {_rate(rate * flops_per_example, 'FLOP/s')}"
                    progress.update(steps_bar, completed=s + 1, info=info)
                    tick, lo = now, s + 1
                    if hit:
                        partial = distributed.all_reduce_sum(losses[:s + 1].clone(), dist) / world
                        state = snapshot(epoch, s + 1, partial.cpu())
                        if main:
                            checkpoint.save(run_dir / "last.pt", state)
                        raise Interrupted(f"interrupted at epoch {epoch + 1}, step {s + 1} of {steps}: saved "
                                          f"{run_dir / 'last.pt'}; continue with --resume {run_dir}")
            train_loss = distributed.all_reduce_sum(losses.sum().double(), dist).item() / (steps * world)
            seconds = time.perf_counter() - start
            rate = (steps - first) * cfg.batch_size / max(seconds, 1e-9)
            progress.remove_task(steps_bar)
            if not _finite(model):  # the last step's update can be NaN while its loss was not
                raise Diverged(f"the weights became NaN/inf at the end of epoch {epoch + 1}; training stopped. "
                               f"{run_dir / 'last.pt'} keeps the last good weights (epoch {epoch}).")
            val = _evaluate(model, ds.x_val, ds.y_val, cfg.task, **ev)
            tr = _evaluate(model, ds.x_train, ds.y_train, cfg.task, **ev) if cfg.task in SCORED else None
            row = {"epoch": epoch + 1, "train_loss": train_loss, "train_acc": tr and tr["accuracy"],
                   "val_loss": val and val["loss"], "val_acc": val and val.get("accuracy"), "lr": current_lr,
                   "examples_per_s": rate, "seconds": seconds}
            history.append(row)
            score = val["loss"] if val else train_loss
            improved = score < st["best_val_loss"]
            if improved:
                st.update(best_val_loss=score, best_epoch=epoch + 1, bad_epochs=0)
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            else:
                st["bad_epochs"] += 1
            if cfg.patience and val and st["bad_epochs"] >= cfg.patience and epoch + 1 < cfg.epochs:
                st["stopped"] = (f"early stopping after epoch {epoch + 1}: no better validation loss for "
                                 f"{cfg.patience} epochs (best at epoch {st['best_epoch']})")
            state = snapshot(epoch + 1, 0)
            if main:
                with open(metrics_path, "a") as handle:  # before last.pt: resume trims lines past it
                    handle.write(json.dumps(row) + "\n")
                checkpoint.save(run_dir / "last.pt", state)
                if improved:
                    checkpoint.save(run_dir / "best.pt", state)
                progress.console.print(_epoch_line(title, row, cfg, flops_per_example, peak, world), highlight=False)
            progress.update(epochs_bar, completed=epoch + 1, info=f"val loss {row['val_loss']:.4g}" if val else "")
    if best_state is not None:
        model.load_state_dict(best_state)  # test on the weights with the best validation loss
    test = _evaluate(model, ds.x_test, ds.y_test, cfg.task, **ev)
    summary = {"epochs": len(history), "best_epoch": st["best_epoch"], "best_val_loss": st["best_val_loss"],
               "best_val_acc": next((h["val_acc"] for h in history if h["epoch"] == st["best_epoch"]), None),
               "stopped": st["stopped"], "test": test, "classes": _class_names(ds), "step_mode": runner and runner.mode,
               "step_mode_reason": runner and runner.reason, "world_size": world, "device": str(dev)}
    if main:
        plot_curves(history, run_dir / "curves.png", title=f"{run.graph.name}  {title}".strip())
        (run_dir / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary, history, model


def _class_names(ds):
    return [str(c) for c in ds.classes] if ds.classes else None


def _epoch_line(title, row, cfg, flops_per_example, peak, world) -> str:
    parts = [f"{title}epoch {row['epoch']:>3}/{cfg.epochs}", f"train loss {row['train_loss']:.4f}"]
    if row["train_acc"] is not None:
        parts.append(f"acc {row['train_acc']:.1%}")
    if row["val_loss"] is not None:
        parts.append(f"val loss {row['val_loss']:.4f}")
    if row["val_acc"] is not None:
        parts.append(f"acc {row['val_acc']:.1%}")
    parts += [f"lr {row['lr']:.3g}", _rate(row["examples_per_s"], "ex/s")]
    if flops_per_example:
        achieved = row["examples_per_s"] * flops_per_example
        parts.append(_rate(achieved, "FLOP/s") + (f" ({achieved / (peak[0] * world):.1%} of {world} x {peak[1]})"
                                                  if peak else ""))
    return "  ".join(parts)


def plot_curves(history: list, path: Path, title: str = "") -> None:
    """Training/validation loss and accuracy against epoch, as a PNG (matplotlib's Agg canvas, so no
    display and no global backend switch)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    scored = any(h.get("val_acc") is not None or h.get("train_acc") is not None for h in history)
    fig = Figure(figsize=(10 if scored else 5.5, 4), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2 if scored else 1, squeeze=False)[0]
    epochs = [h["epoch"] for h in history]
    for ax, what in zip(axes, ("loss", "acc")):
        for split in ("train", "val"):
            pts = [(e, h[f"{split}_{what}"]) for e, h in zip(epochs, history) if h.get(f"{split}_{what}") is not None]
            if pts:
                ax.plot(*zip(*pts), marker="o", markersize=3, label={"train": "training", "val": "validation"}[split])
        ax.set_xlabel("epoch")
        ax.set_ylabel({"loss": "loss", "acc": "accuracy"}[what])
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fig.savefig(tmp, format="png")
    os.replace(tmp, path)


# --- the entry points -------------------------------------------------------------------------------
def train(spec=None, config: TrainConfig | None = None, *, resume: bool = False, on_step: Callable | None = None,
          console=None) -> RunResult:
    """Train `spec` (a path, or a loaded Graph; default `config.spec`) with `config`; the run folder
    is `config.out` (default runs/<spec name>). `resume=True` continues the run in that folder.
    `on_step(epoch, step)` is called after every step (1-based). Raises SpecError for bad settings,
    Diverged for a NaN/inf loss, Interrupted after Ctrl-C (a checkpoint saved)."""
    cfg = (config or TrainConfig()).checked()
    spec = spec if spec is not None else cfg.spec
    if spec is None:
        raise SpecError("no spec to train: give SPEC (or 'spec:' in --config)")
    if not isinstance(spec, Graph):
        cfg = replace(cfg, spec=str(spec))
    graph, report = _load_graph(spec, cfg)
    out = Path(cfg.out or Path("runs") / graph.name)
    cfg = replace(cfg, out=str(out))
    if resume and not (out / "config.yaml").exists():
        raise SpecError(f"{out}: no run to resume here (no config.yaml)")
    if not resume and any((out / name).exists() for name in ("last.pt", "summary.json", "fold1")):
        raise SpecError(f"{out} already holds a run: continue it with --resume {out}, or choose another --out")
    if not resume and not isinstance(spec, Graph):
        spec = Path(spec)
    elif resume and (out / "spec.yaml").exists():
        spec = out / "spec.yaml"  # the spec the run was started with, even if the original changed since
    if cfg.gpus > 1 and int(os.environ.get("WORLD_SIZE", 1)) == 1:
        return _launch(spec, cfg, resume)
    return _train_here(spec, cfg, resume, on_step, console, graph, report)


def _train_here(spec, cfg, resume, on_step, console, graph=None, report=None) -> RunResult:
    from archcalc.render import make_console

    if graph is None:
        graph, report = _load_graph(spec, cfg)
    out = Path(cfg.out)
    try:
        dist = distributed.setup(cfg.device)
    except RuntimeError as exc:
        raise SpecError(f"--device {cfg.device}: {exc}") from None
    console = console or make_console()
    if dist.enabled:  # DDP's stride check trips over the meaningless stride of a size-1 dim (1-channel convs)
        warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")
    try:
        ds = _load_data(cfg, graph, report, 0 if cfg.folds else None)  # bad data fails before any file is written
        if len(ds.x_train) < cfg.batch_size:
            raise SpecError(f"--batch-size {cfg.batch_size} is larger than the training split ({len(ds.x_train)} "
                            "examples)")
        if dist.is_main:
            out.mkdir(parents=True, exist_ok=True)
            (out / "config.yaml").write_text(cfg.to_yaml())
            if isinstance(spec, Path) and spec.resolve() != (out / "spec.yaml").resolve():
                shutil.copyfile(spec, out / "spec.yaml")
            _show_figures(console, graph, report, cfg, dist)
        with _CtrlC() as ctrl:
            run = _Run(cfg, graph, report, dist, console, ctrl, on_step)
            if cfg.folds:
                summary, metrics, model = _cross_validate(run, out, resume, ds), None, None
            else:
                summary, metrics, model = _fit(run, ds.to(dist.device), out, resume)
        if dist.is_main:
            print_summary(console, summary, out)
        return RunResult(out, summary, metrics if metrics is not None else summary.get("per_fold", []),
                         model if not dist.enabled else None)
    finally:
        distributed.cleanup(dist)


def _cross_validate(run: _Run, out: Path, resume: bool, first) -> dict:
    """K folds of train+val, each a fresh model with the same seed, in out/foldK; the mean and the
    spread (sample standard deviation) of each fold's best validation loss and accuracy."""
    cfg, per_fold = run.cfg, []
    for k in range(cfg.folds):
        fold_dir = out / f"fold{k + 1}"
        if run.dist.is_main:
            fold_dir.mkdir(parents=True, exist_ok=True)
        if resume and (fold_dir / "summary.json").exists():  # finished before the interruption
            summary = json.loads((fold_dir / "summary.json").read_text())
        else:
            ds = (first if k == 0 else _load_data(cfg, run.graph, run.report, k)).to(run.dist.device)
            summary, _, _ = _fit(run, ds, fold_dir, resume, title=f"fold {k + 1}/{cfg.folds} ")
        per_fold.append({"fold": k + 1, "best_epoch": summary["best_epoch"], "val_loss": summary["best_val_loss"],
                         "val_acc": summary["best_val_acc"], "test": summary["test"]})
    result = {"folds": cfg.folds, "per_fold": per_fold}
    for name in ("val_loss", "val_acc"):
        values = [f[name] for f in per_fold if f[name] is not None]
        if values:
            mean = sum(values) / len(values)
            std = math.sqrt(sum((v - mean) ** 2 for v in values) / max(1, len(values) - 1))
            result[name] = {"mean": mean, "std": std}
    if run.dist.is_main:
        (out / "summary.json").write_text(json.dumps(result, indent=1) + "\n")
    return result


_STATUS = ".launch-status.json"


def _worker(spec, cfg_dict: dict, resume: bool) -> None:
    """One of the `--gpus N` processes (spawned by distributed.launch, torchrun's environment set). The
    expected outcomes reach the parent through a status file; anything else as a traceback."""
    cfg = TrainConfig(**cfg_dict)
    try:
        _train_here(spec, cfg, resume, None, None)
    except (SpecError, Diverged, Interrupted) as exc:
        if os.environ.get("RANK") == "0":
            Path(cfg.out).mkdir(parents=True, exist_ok=True)
            (Path(cfg.out) / _STATUS).write_text(json.dumps({"kind": type(exc).__name__, "message": str(exc)}))


def _launch(spec, cfg: TrainConfig, resume: bool) -> RunResult:
    dev = cfg.device if cfg.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    if dev == "cuda" and torch.cuda.device_count() < cfg.gpus:
        raise SpecError(f"--gpus {cfg.gpus}: only {torch.cuda.device_count()} CUDA device(s) here")
    if dev == "mps":
        raise SpecError("--gpus needs CUDA devices (or --device cpu): MPS runs one process")
    status = Path(cfg.out) / _STATUS
    status.unlink(missing_ok=True)
    with _CtrlC():  # the children handle Ctrl-C (they get it too); the parent waits for their checkpoint
        distributed.launch(_worker, cfg.gpus, spec, asdict(replace(cfg, device=dev)), resume,
                           backend="nccl" if dev == "cuda" else "gloo")
    if status.exists():
        outcome = json.loads(status.read_text())
        status.unlink()
        raise {"SpecError": SpecError, "Diverged": Diverged, "Interrupted": Interrupted}[outcome["kind"]](
            outcome["message"].removeprefix("error: "))
    out = Path(cfg.out)
    summary = json.loads((out / "summary.json").read_text())
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()] if not cfg.folds else []
    return RunResult(out, summary, metrics)


# --- output -------------------------------------------------------------------------------------------
def _show_figures(console, graph, report, cfg, dist) -> None:
    from archcalc.render import human, shape_text

    t = report.totals
    console.print(f"[bold]{graph.name}[/bold]  input {shape_text(graph.input_shape)} -> output "
                  f"{shape_text(report.output_shape)}  params {t.params:,} ({human(t.params)}; trainable "
                  f"{t.trainable_params:,})  MACs/example {t.macs:,} ({human(t.macs)}); training FLOPs/example "
                  f"= 3 x 2 x MACs = {human(6 * t.macs)}", highlight=False)
    console.print(f"task {cfg.task} on --data {cfg.data}; {cfg.optimizer} lr {cfg.lr:g}, batch {cfg.batch_size}"
                  f"{f' ({dist.world_size} processes x {cfg.batch_size // dist.world_size})' if dist.enabled else ''}, "
                  f"{cfg.epochs} epochs, device {dist.device}, {cfg.precision}", highlight=False)


def print_summary(console, summary: dict, out: Path | None = None) -> None:
    """The end-of-run summary (also `archcalc evaluate`'s report)."""
    from rich.table import Table

    if "per_fold" in summary:
        for f in summary["per_fold"]:
            acc = f" acc {f['val_acc']:.2%}" if f["val_acc"] is not None else ""
            console.print(f"fold {f['fold']}: best epoch {f['best_epoch']}, val loss {f['val_loss']:.4f}{acc}",
                          highlight=False)
        for name in ("val_loss", "val_acc"):
            if name in summary:
                m = summary[name]
                fmt = (lambda v: f"{v:.2%}") if name == "val_acc" else (lambda v: f"{v:.4f}")
                console.print(f"{summary['folds']}-fold cross-validation {name.replace('_', ' ')}: {fmt(m['mean'])} "
                              f"± {fmt(m['std'])} (mean ± std over folds)", highlight=False)
    else:
        if "best_epoch" in summary:
            console.print(f"best epoch {summary['best_epoch']} (val loss {summary['best_val_loss']:.4f}); "
                          + (summary["stopped"] or f"ran all {summary['epochs']} epochs"), highlight=False)
        test = summary.get("test")
        split = summary.get("split", "test")
        if test:
            acc = f", accuracy {test['accuracy']:.2%}" if "accuracy" in test else ""
            console.print(f"{split}: loss {test['loss']:.4f}{acc} ({test['examples']} examples)", highlight=False)
            if "confusion" in test:
                names = summary.get("classes") or [str(i) for i in range(len(test["confusion"]))]
                table = Table(title="confusion matrix (rows: true class, columns: predicted)", title_justify="left")
                table.add_column("")
                for name in names:
                    table.add_column(name, justify="right")
                for name, row in zip(names, test["confusion"]):
                    table.add_row(name, *(str(v) for v in row))
                console.print(table)
        else:
            console.print(f"no {split} split (--test-fraction 0)", highlight=False)
    if out is not None:
        console.print(f"run folder: {out}", highlight=False)


def evaluate(run_dir, data: str | None = None, *, split: str = "test", device: str = "auto",
             checkpoint_name: str | None = None) -> dict:
    """Loss, accuracy and confusion matrix of a saved run on a split of its data (or of `data`, another
    source with the same input shape: normalised with the run's own statistics). Rebuilds the model
    from the run's copy of its spec and loads best.pt (last.pt when there is no best)."""
    run_dir = Path(run_dir)
    if split not in ("test", "val"):
        raise SpecError(f"--split '{split}' is not one of test, val")
    fold = None
    top = run_dir
    if re.fullmatch(r"fold\d+", run_dir.name) and not (run_dir / "config.yaml").exists():
        top, fold = run_dir.parent, int(run_dir.name[4:]) - 1  # one fold of a cross-validation run
    if not (top / "config.yaml").exists():
        raise SpecError(f"{run_dir}: not a run folder (no config.yaml)")
    cfg = TrainConfig.from_sources(top / "config.yaml")
    if cfg.folds and fold is None:
        raise SpecError(f"{run_dir} is a {cfg.folds}-fold cross-validation run: evaluate one fold, e.g. {run_dir}/fold1")
    return _evaluate_run(run_dir, top, cfg, data, split, device, checkpoint_name, fold)


def _evaluate_run(run_dir, spec_dir, cfg, data, split, device, checkpoint_name, fold):
    from archcalc.torch.build import build

    spec = spec_dir / "spec.yaml" if (spec_dir / "spec.yaml").exists() else cfg.spec
    if spec is None:
        raise SpecError(f"{run_dir}: the run was trained from a Graph object, no spec file to rebuild it from")
    graph, report = _load_graph(spec, replace(cfg, flip=False, shift=0, crop=0))
    name = checkpoint_name or ("best.pt" if (run_dir / "best.pt").exists() else "last.pt")
    try:
        dev = distributed._resolve_device(device, 0, 1)
    except RuntimeError as exc:
        raise SpecError(f"--device {device}: {exc}") from None
    ck = checkpoint.load(run_dir / name, dev)
    # normalised with the run's own statistics, whatever the source: the network knows no others
    stats = json.loads((run_dir / "data.json").read_text()) if (run_dir / "data.json").exists() else None
    ds = _load_data(cfg, graph, report, fold, source=data, stats=stats).to(dev)
    model = build(graph, device=dev)
    model.load_state_dict(ck["model"])
    x, y = (ds.x_test, ds.y_test) if split == "test" else (ds.x_val, ds.y_val)
    classes = len(ds.classes or ())
    result = _evaluate(model, x, y, cfg.task, batch=cfg.eval_batch_size or 256, precision=cfg.precision,
                       classes=classes)
    if result is None:
        raise SpecError(f"the {split} split of --data {data or cfg.data} is empty")
    return {"run": str(run_dir), "checkpoint": name, "epoch": ck["epoch"], "data": data or cfg.data, "split": split,
            "task": cfg.task, "classes": _class_names(ds), "test": result}


__all__ = ["Diverged", "Interrupted", "RunResult", "Schedule", "TrainConfig", "evaluate", "gpu_peak", "plot_curves",
           "print_summary", "train"]
