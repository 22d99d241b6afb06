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

import io
import json
import math
import os
import re
import signal
import threading
import time
import warnings
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F

from archcalc.errors import Loc, SpecError, did_you_mean
from archcalc import units
from archcalc.reader.cli_text import parse_bindings, parse_sizes
from archcalc.reader.graph import Graph
from archcalc.reader.yaml_source import read_source
from archcalc.torch import checkpoint, distributed, runfolder

TASKS = ("classify", "binary", "regress", "denoise")
CHOICES = {"task": TASKS, "optimizer": ("sgd", "adam", "adamw"), "schedule": ("none", "step", "cosine"),
           "device": ("auto", "cpu", "cuda", "mps"), "precision": ("fp32", "bf16", "fp16"),
           "cuda_graph": ("auto", "on", "off")}
#: Tasks whose outputs are scored by accuracy (and a confusion matrix); the others by their loss only.
SCORED = ("classify", "binary")
LOG_POINTS = 20  # progress updates (and device syncs) per epoch
#: Bounds of the whole-number settings: seeds are what numpy, torch and scikit-learn all accept; counts
#: (epochs, batch sizes, ...) past a billion are a typo, and would only fail later, deep in torch.
MAX_SEED = 2**32 - 1
MAX_COUNT = 10**9
#: A --config file is a page of settings; a bigger file (or /dev/zero) is refused before it is read.
MAX_CONFIG_BYTES = 2**20
#: Settings that define the network, its data and its split: a resumed run keeps them (changing one
#: would silently train something else, or on other examples).
FIXED_ON_RESUME = ("task", "data", "input", "sizes", "seed", "val_fraction", "test_fraction", "folds",
                   "synthetic_size", "num_classes", "optimizer")


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
    crop: int = 0  # random zoom-in: a window this many pixels smaller per side, resized back
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
    #: not a setting: setting -> the FILE:LINE:COL it was read from, so that checks made later (an
    #: augmentation against the spec's input, a batch against the data) point at the mistake too
    where: dict = field(default_factory=dict, repr=False, compare=False)

    def settings(self) -> dict:
        """The settings as plain values (config.yaml, checkpoints, the --gpus children)."""
        return {name: getattr(self, name) for name in FIELDS}

    def error(self, name: str, message: str) -> SpecError:
        """A SpecError about setting `name`, at its place in a config file or naming its flag."""
        return SpecError(f"{_label(name, self.where)} {message}", self.where.get(name))

    @classmethod
    def from_sources(cls, config_yaml_path=None, cli_overrides: dict | None = None) -> "TrainConfig":
        """Settings from YAML file(s) (a path, or a list applied in order, later ones winning), then
        `cli_overrides` (flag name -> value; None means not given) on top. Unknown keys and bad
        values raise SpecError, with FILE:LINE:COL for values from a file."""
        return _build(_gather(config_yaml_path, cli_overrides))

    def checked(self, where: dict | None = None) -> "TrainConfig":
        """Raise SpecError for any value out of range; returns self. `where` maps a setting to the
        FILE:LINE:COL it was read from (the message then names the key there, else the flag)."""
        where = where if where is not None else self.where

        def fail(name, message):
            raise SpecError(f"{_label(name, where)} {message}", where.get(name))

        for name, choices in CHOICES.items():
            value = getattr(self, name)
            if value not in choices:
                fail(name, f"'{value}' is not one of {', '.join(choices)}{did_you_mean(value, choices)}")
        for name in FLOAT_FIELDS:
            value = getattr(self, name)
            if value is not None and not math.isfinite(value):
                fail(name, f"must be a finite number, got {value}")
        for name in INT_FIELDS:
            value = getattr(self, name)
            top = MAX_SEED if name == "seed" else MAX_COUNT
            if value is not None and not -top <= value <= top:
                fail(name, f"must be at most {top:,}, got a number of {len(str(abs(value))):,} digits"
                     if abs(value) > 10**30 else f"must be at most {top:,}, got {value:,}")
        if not 0 <= self.seed <= MAX_SEED:
            fail("seed", f"must be between 0 and {MAX_SEED:,} (what numpy, torch and scikit-learn all accept), "
                 f"got {self.seed}")
        for name in ("epochs", "batch_size", "gpus", "step_size", "synthetic_size"):
            if getattr(self, name) < 1:
                fail(name, f"must be at least 1, got {getattr(self, name)}")
        for name in ("eval_batch_size", "patience", "num_classes"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                fail(name, f"must be at least 1, got {getattr(self, name)}")
        for name in ("lr", "momentum", "weight_decay", "l1", "l2_from", "l1_from", "warmup", "min_lr", "shift",
                     "crop", "noise_std"):
            if getattr(self, name) < 0:
                fail(name, f"must not be negative, got {getattr(self, name)}")
        if not 0 < self.gamma <= 1:
            fail("gamma", f"must be in (0, 1], got {self.gamma}")
        if self.schedule == "cosine" and self.min_lr > self.lr:
            fail("min_lr", f"{self.min_lr} is above --lr {self.lr}: the cosine schedule would raise the learning "
                 "rate instead of lowering it")
        if self.grad_clip is not None and self.grad_clip <= 0:
            fail("grad_clip", f"must be positive, got {self.grad_clip}")
        if self.folds is not None and self.folds < 2:
            fail("folds", f"must be at least 2, got {self.folds}")
        for name in ("val_fraction", "test_fraction"):
            if not 0 <= getattr(self, name) < 1:
                fail(name, f"must be in [0, 1), got {getattr(self, name)}")
        if self.val_fraction + self.test_fraction >= 1:
            name = "test_fraction" if "test_fraction" in where or "val_fraction" not in where else "val_fraction"
            fail(name, f"and {_label('val_fraction' if name == 'test_fraction' else 'test_fraction', where)} must "
                 f"sum to less than 1 (they leave no training data), got {self.val_fraction} + {self.test_fraction}")
        if self.nesterov and (self.optimizer != "sgd" or self.momentum == 0):
            fail("nesterov", "needs --optimizer sgd with a non-zero --momentum")
        if self.batch_size % self.gpus:
            at = "gpus" if "gpus" in where and "batch_size" not in where else "batch_size"
            raise SpecError(f"{_label('batch_size', where)} {self.batch_size} is the global batch: it must divide "
                            f"evenly over {_label('gpus', where)} {self.gpus}", where.get(at))
        return self

    def to_yaml(self) -> str:
        import yaml

        return yaml.safe_dump(self.settings(), sort_keys=False)


FIELDS = tuple(f.name for f in fields(TrainConfig) if f.name != "where")
_TYPES = {f.name: f.type for f in fields(TrainConfig) if f.name in FIELDS}  # strings: "int | None", ...
FLOAT_FIELDS = tuple(n for n, t in _TYPES.items() if t.startswith("float"))
INT_FIELDS = tuple(n for n, t in _TYPES.items() if t.startswith("int"))


#: Settings whose flag is not their name (the names PyTorch users write on every command: --dtype,
#: -o/--output; config.yaml keeps the settings' names).
FLAGS = {"sizes": "--set", "precision": "--dtype", "out": "--output"}


def _flag(name: str) -> str:
    return FLAGS.get(name) or "--" + name.replace("_", "-")


def _label(name: str, where: dict) -> str:
    """How a message names a setting: its YAML key where it came from a file, else its flag."""
    return name if where.get(name) is not None else _flag(name)


def _file_values(text: str, path) -> dict:
    """setting -> (value, FILE:LINE:COL) of one YAML config's text."""
    from archcalc.reader.yaml_source import YMap, load_yaml, plain

    doc = load_yaml(text, str(path))
    if doc is None:
        return {}
    if not isinstance(doc, YMap):
        raise SpecError(f"{path}: a run config is a YAML mapping of settings, like 'epochs: 10'",
                        getattr(doc, "loc", None))
    values = {}
    for key in doc:
        name = str(key).replace("-", "_")
        if name not in FIELDS:
            raise SpecError(f"unknown setting '{key}'{did_you_mean(name, FIELDS)}; docs/train.md lists "
                            "them", doc.key_locs[key])
        values[name] = (plain(doc[key]), doc.where(key))
    return values


def _gather(paths, overrides: dict | None, run_file=None) -> dict:
    """setting -> (value, location or None for a flag): the run's own config.yaml (`run_file`, read
    as a run-folder file), the --config file(s) in order, then the flags that were given."""
    values = _file_values(runfolder.read_text(run_file), run_file) if run_file is not None else {}
    paths = paths if isinstance(paths, (list, tuple)) else [paths]
    for path in (p for p in paths if p is not None):
        values.update(_file_values(read_source(path, "config", limit=MAX_CONFIG_BYTES), path))
    for name, value in (overrides or {}).items():
        if value is not None:
            if name not in FIELDS:
                raise SpecError(f"unknown setting '{name}'{did_you_mean(name, FIELDS)}")
            values[name] = (value, None)
    return values


def _build(values: dict) -> TrainConfig:
    where = {name: loc for name, (_, loc) in values.items() if loc is not None}
    cfg = TrainConfig(**{name: _coerce(name, value, loc) for name, (value, loc) in values.items()}, where=where)
    return cfg.checked()


def run_config(run_dir) -> TrainConfig:
    """The settings a run folder was trained with (its config.yaml, read as a run-folder file)."""
    run_dir = Path(run_dir)
    runfolder.check(run_dir)
    if not runfolder.exists(run_dir / "config.yaml"):
        raise SpecError(f"{run_dir}: not a run folder (no config.yaml)")
    return _build(_gather(None, None, run_file=run_dir / "config.yaml"))


def resume_config(run_dir, config_yaml_path=None, cli_overrides: dict | None = None):
    """(settings, spec) to resume the run in `run_dir`: its config.yaml, then `--config`, then flags.
    A setting of FIXED_ON_RESUME given a new value is an error at the place it was given. `spec` is
    the spec named by the flags or --config (None when none was): `train` checks that it is the
    run's network."""
    run_dir = Path(run_dir)
    runfolder.check(run_dir)
    if not runfolder.exists(run_dir / "config.yaml"):
        raise SpecError(f"{run_dir}: no run to resume here (no config.yaml)")
    saved = _gather(None, None, run_file=run_dir / "config.yaml")
    later = _gather(config_yaml_path, {k: v for k, v in (cli_overrides or {}).items() if k != "spec"})
    for name in FIXED_ON_RESUME:
        if name in later:
            value, loc = later[name]
            new = _coerce(name, value, loc)
            old = _coerce(name, *saved[name]) if name in saved else getattr(TrainConfig(), name)
            if new != old:
                was = f"with {name} {old}" if old is not None else f"without {name} (the default)"
                why = ("its checkpoints hold that optimizer's state" if name == "optimizer"
                       else "it defines the network, the data or the split")
                raise SpecError(f"{_label(name, {name: loc})} {_show(new)}: the run {run_dir} was trained {was}, "
                                f"and a resumed run keeps it ({why}); train a new run with another --output to change it",
                                loc)
    spec = (cli_overrides or {}).get("spec")
    if spec is None and "spec" in later:
        spec = later["spec"][0]
    later.pop("spec", None)
    return _build({**saved, **later}), spec


def _show(value) -> str:
    return "none" if value is None else str(value)


def _text_ok(value: str, where: str, loc) -> str:
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise SpecError(f"{where}: control characters (a newline, a tab, NUL, ...) are not allowed in a setting, "
                        f"got {value!r}"[:300], loc)
    return value


_DIGITS = re.compile(r"[0-9]{1,18}")  # ASCII digits only ('²'.isdigit() is True), short enough for int()


def _coerce(name: str, value, loc):
    """A setting's value as its field's type (YAML and typer give ints where floats are meant)."""
    kind, optional = _TYPES[name].split(" |")[0], "None" in _TYPES[name]
    where = f"'{name}'" if loc is not None else _flag(name)

    def bad(expected):
        given = repr(value) if not isinstance(value, int) or abs(value) < 10**30 else "a huge number"
        return SpecError(f"{where}: expected {expected}, got {given}"[:400], loc)

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
        try:
            number = float(value)
        except OverflowError:
            raise bad("a finite number") from None
        if not math.isfinite(number):
            raise bad("a finite number (not NaN or infinity)")
        return number
    if kind == "str":
        if not isinstance(value, (str, Path)) or not str(value).strip():
            raise bad("text" if not isinstance(value, (str, Path)) else "a value, not empty text")
        if name == "precision":  # torch's names are the same setting: float16 is fp16 (as --dtype reads them)
            value = {dtype: short for short, dtype in PRECISION_DTYPE.items()}.get(str(value), value)
        return _text_ok(str(value), where, loc)
    if kind == "list":  # the input shape: [3, 32, 32] or "3,32,32" (read as --input reads it)
        parts = parse_sizes(value, digits=17) if isinstance(value, str) else value
        if not parts or not isinstance(parts, (list, tuple)) or not all(_positive_size(p) for p in parts):
            raise bad("positive sizes like [3, 32, 32]")
        return [int(p) for p in parts]
    if isinstance(value, (list, tuple)):  # sizes: ["H=32", "W=32"] from --set, read as analyze reads them
        try:
            value = parse_bindings(str(v) for v in value)
        except SpecError:
            raise bad("NAME: positive size" if all("=" in str(v) for v in value) else "NAME=SIZE items") from None
    if not isinstance(value, dict):
        raise bad("a mapping of size names to numbers, like {H: 32}")
    out = {}
    for key, size in value.items():
        if not str(key).isidentifier() or not _positive_size(size):
            raise bad("NAME: positive size")
        out[str(key)] = int(size)
    return out


def _positive_size(p) -> bool:
    if isinstance(p, bool):
        return False
    if isinstance(p, int):
        return 0 < p < 10**18
    return isinstance(p, str) and bool(_DIGITS.fullmatch(p)) and int(p) > 0


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
    if graph.symbols:  # said as build says it: the input's sizes, or a layer's (linear: N_H), at that place
        from archcalc.torch.build import symbolic_sizes

        where, loc = symbolic_sizes(graph)
        raise SpecError(f"{where}; training needs numbers: give them with --set (e.g. --set {graph.symbols[0]}=32)",
                        loc)
    if len(graph.inputs) > 1:  # the data sources give one tensor of examples (and one of targets)
        raise SpecError(f"{graph.name} takes {len(graph.inputs)} inputs ({', '.join(graph.input_names)}), but "
                        "archcalc train feeds a network one input; train it from your own loop (archcalc.torch."
                        "build gives the module, whose forward takes the inputs in order)", graph.inputs[1].loc)
    report = analyze_graph(graph)
    if not report.totals.trainable_params:  # an optimizer over no parameters, a loss with no gradient
        frozen = next((n for n in graph.nodes if not n.trainable), None)
        why = "every parameter is frozen (trainable: false)" if frozen else "the network has no parameters"
        raise SpecError(f"{graph.name} has nothing to train: {why}", frozen.loc if frozen else graph.input_loc,
                        frozen.name if frozen else None)
    out, inp, last = tuple(report.output_shape), tuple(graph.input_shape), graph.nodes[-1].kind
    task = cfg.task
    if task == "classify" and (len(out) != 1 or out[0] < 2):
        raise cfg.error("task", f"classify needs the network to end in one score per class, output [K] with "
                        f"K >= 2; {graph.name} outputs {shape_text(out)}")
    if task == "binary" and out not in ((1,), ()):
        raise cfg.error("task", f"binary needs one logit per example, output [1]; {graph.name} outputs "
                        f"{shape_text(out)}")
    if task in SCORED and last in ("softmax", "log_softmax", "sigmoid"):
        applied = "sigmoid" if task == "binary" else "softmax"
        raise cfg.error("task", f"{task} trains on logits (the loss applies the {applied} "
                        f"itself, stably): remove the final {last} layer of {graph.name}")
    if task == "denoise" and out != inp:
        raise cfg.error("task", f"denoise needs the output shaped like the input, {shape_text(inp)}; "
                        f"{graph.name} outputs {shape_text(out)}")
    if cfg.flip or cfg.shift or cfg.crop:
        from archcalc.torch.data import check_augment

        for name in ("flip", "shift", "crop"):
            value = getattr(cfg, name)
            if not value:
                continue
            if graph.tokens:
                raise cfg.error(name, f"augments images; {graph.name} takes token ids")
            try:
                check_augment(inp, **{name: value})
            except SpecError as exc:
                raise cfg.error(name, f"{'' if value is True else value}: {exc.message}".lstrip(": ")) from None
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
    loaded = resume and runfolder.exists(run_dir / "last.pt")
    if loaded:
        ck = checkpoint.load(run_dir / "last.pt", dev)  # its batch size was checked by _check_resume
        _same_network(ck["network"], run.graph, f"{run_dir / 'last.pt'} was trained on another network",
                      "the run's spec.yaml or config.yaml was edited since: put them back to resume")
        _load_weights(model, ck["model"], run_dir / "last.pt")
        if ck["step"] >= steps:
            raise SpecError(f"{run_dir / 'last.pt'}: stopped at step {ck['step']} of an epoch that has {steps} steps")
        if ck["config"].get("optimizer", cfg.optimizer) != cfg.optimizer:
            raise cfg.error("optimizer", f"{cfg.optimizer}: {run_dir / 'last.pt'} holds the state of "
                            f"{ck['config'].get('optimizer')}, and a resumed run keeps its optimizer")
        try:  # a checksum proves archcalc-made or forged, not fitting: a misfit is one line too
            checkpoint.load_optimizer_state(opt, ck["optimizer"],
                                            capturable=dev.type == "cuda" and cfg.optimizer != "sgd")
            if cfg.optimizer == "sgd":  # load_state_dict brings back the saved settings: the flags given now win
                for group in opt.param_groups:
                    group.update(momentum=cfg.momentum, nesterov=cfg.nesterov)
            if scaler is not None and ck.get("scaler"):
                scaler.load_state_dict(ck["scaler"])
            _set_rng_states(ck["rng"], dist, cfg.seed, ck["epoch"])
        except (RuntimeError, ValueError, KeyError, TypeError, IndexError) as exc:
            why = " ".join(str(exc).split())[:200]
            raise SpecError(f"{run_dir / 'last.pt'}: its optimizer or random-number state does not fit this run "
                            f"({why})") from None
        st.update({k: ck[k] for k in ("epoch", "step", "best_val_loss", "best_epoch", "bad_epochs", "stopped")})
        st["partial"] = ck.get("partial_losses")
        if main:  # where it resumes: a checkpoint holds (epochs done, steps done of the next epoch)
            where = (f"epoch {st['epoch'] + 1}, step {st['step']} of {steps} done" if st["step"]
                     else f"after epoch {st['epoch']} of {cfg.epochs}")
            console.print(f"{title}resuming from {shown(run_dir / 'last.pt')}: {where}", highlight=False)
        if runfolder.exists(run_dir / "best.pt"):
            best_state = checkpoint.load(run_dir / "best.pt", dev)["model"]
        # lines written after this checkpoint belong to a lost future
        history = [h for h in _read_metrics(run_dir) if h["epoch"] <= st["epoch"]]
    if main:
        runfolder.write(metrics_path, "".join(json.dumps(h) + "\n" for h in history))
        runfolder.write(run_dir / "data.json", json.dumps(ds.stats(), indent=1) + "\n")
    net = distributed.wrap(model, dist)
    if cfg.compile:
        net = torch.compile(net)
    gen = torch.Generator(device=dev) if cfg.task == "denoise" or cfg.flip or cfg.shift or cfg.crop else None
    eval_batch = cfg.eval_batch_size or 4 * b
    classes = len(ds.classes or ())
    ev = dict(dist=dist, batch=eval_batch, precision=cfg.precision, channels_last=cfg.channels_last, classes=classes)
    flops_per_example = 3 * 2 * int(run.report.totals.macs)  # forward + backward = 3 x forward
    peak = gpu_peak(dev, cfg.precision)

    network = network_of(run.graph)

    def snapshot(epoch, step, partial=None) -> dict:  # collective (RNG gather): every rank calls it
        return {"model": model.state_dict(), "optimizer": checkpoint.plain_optimizer_state(opt),
                "scheduler": sched.state_dict(epoch * steps + step), "epoch": epoch, "step": step,
                "best_val_loss": st["best_val_loss"], "best_epoch": st["best_epoch"], "bad_epochs": st["bad_epochs"],
                "stopped": st["stopped"], "rng": _rng_states(dist), "partial_losses": partial,
                "scaler": scaler.state_dict() if scaler is not None else None, "world_size": world,
                "config": cfg.settings(), "spec": cfg.spec, "network": network}

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
                    info = f"loss {losses[lo:s + 1].mean().item():.4g}  lr {lr:.3g}  {units.rate(rate, 'ex/s')}"
                    if flops_per_example:
                        info += f"  {units.rate(rate * flops_per_example, 'FLOP/s')}"
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
                # rewritten whole (never appended: see runfolder), before last.pt: resume trims lines past it
                runfolder.write(metrics_path, "".join(json.dumps(h) + "\n" for h in history))
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
        runfolder.write(run_dir / "summary.json", json.dumps(summary, indent=1) + "\n")
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
    parts += [f"lr {row['lr']:.3g}", units.rate(row["examples_per_s"], "ex/s")]
    if flops_per_example:
        achieved = row["examples_per_s"] * flops_per_example
        parts.append(units.rate(achieved, "FLOP/s") + (f" ({achieved / (peak[0] * world):.1%} of {world} x {peak[1]})"
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
        fig.suptitle("".join(ch if ch.isprintable() else " " for ch in title))  # a name is a label
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    runfolder.write(path, buffer.getvalue())


# --- the network a run was trained with -------------------------------------------------------------
def network_of(graph: Graph) -> dict:
    """The layers of `graph` as plain values (saved in every checkpoint): resuming and evaluating
    check that the spec they rebuild from is still this network."""
    return {"input": [int(d) for d in graph.input_shape], "tokens": bool(graph.tokens),
            "layers": [[n.name, n.kind, json.dumps(n.args, sort_keys=True, default=str), list(n.inputs)]
                       for n in graph.nodes]}


def network_change(old: dict, graph: Graph):
    """(what differs, where in graph's spec) between the network `old` (network_of) and `graph`, or None."""
    new = network_of(graph)
    shape = lambda dims: "[" + ", ".join(map(str, dims)) + "]"
    if old.get("input") != new["input"] or old.get("tokens") != new["tokens"]:
        return (f"the input is now {shape(new['input'])} (the run's network took {shape(old.get('input') or [])})",
                graph.input_loc)
    before = old.get("layers") or []
    for i, (a, b, node) in enumerate(zip(before, new["layers"], graph.nodes)):
        if a[1] != b[1]:
            if a[0] == b[0]:
                return f"layer '{b[0]}' is now {b[1]} (the run trained {a[1]})", node.loc
            return f"layer {i + 1} ('{a[0]}', {a[1]}, in the run) is now '{b[0]}' ({b[1]})", node.loc
        if a[0] != b[0]:
            return f"layer {i + 1} is now named '{b[0]}' (in the run: '{a[0]}')", node.loc
        if a[2] != b[2]:
            was, now = json.loads(a[2]), json.loads(b[2])
            arg = next((k for k in sorted(set(was) | set(now)) if was.get(k) != now.get(k)), None)
            return (f"layer '{b[0]}' ({b[1]}) now has {arg}: {now.get(arg)} (the run trained {arg}: {was.get(arg)})",
                    node.arg_locs.get(arg, node.loc))
        if a[3] != b[3]:
            return f"layer '{b[0]}' now reads {', '.join(b[3])} (the run's read {', '.join(a[3])})", node.loc
    if len(new["layers"]) > len(before):
        node = graph.nodes[len(before)]
        return (f"layer '{node.name}' ({node.kind}) is new (the run's network ended at "
                f"'{before[-1][0] if before else 'input'}')", node.loc)
    if len(new["layers"]) < len(before):
        gone = before[len(new["layers"])]
        return (f"the run's layer '{gone[0]}' ({gone[1]}) is gone",
                graph.nodes[-1].loc if graph.nodes else graph.input_loc)
    return None


def _same_network(old: dict, graph: Graph, what: str, remedy: str) -> None:
    change = network_change(old, graph)
    if change is not None:
        raise SpecError(f"{change[0]}: {what}; {remedy}", change[1])


def _load_weights(model, weights: dict, path) -> None:
    """load_state_dict, with a one-line SpecError instead of RuntimeError for another network's weights."""
    mine = model.state_dict()
    if not isinstance(weights, dict) or not all(isinstance(v, torch.Tensor) for v in weights.values()):
        raise SpecError(f"{path}: its 'model' entry is not a set of weights")
    missing = [k for k in mine if k not in weights]
    extra = [k for k in weights if k not in mine]
    wrong = [k for k in mine if k in weights and tuple(weights[k].shape) != tuple(mine[k].shape)]
    if missing or extra or wrong:
        detail = (f"{wrong[0]} is {list(weights[wrong[0]].shape)}, the spec's is {list(mine[wrong[0]].shape)}" if wrong
                  else f"no weights for {missing[0]}" if missing else f"weights {extra[0]} the spec has no place for")
        raise SpecError(f"{path}: holds the weights of another network ({detail})")
    model.load_state_dict(weights)


def _checkpoint_files(out: Path, cfg: TrainConfig) -> list:
    folders = [out / f"fold{k + 1}" for k in range(cfg.folds)] if cfg.folds else [out]
    return [f / "last.pt" for f in folders if runfolder.exists(f / "last.pt")]


def _check_resume(out: Path, cfg: TrainConfig, graph: Graph) -> None:
    """Everything --resume relies on, checked before anything is written: each last.pt and best.pt
    loads and matches its checksum, was trained on this network (the run's spec.yaml with its
    config's input and sizes), and metrics.jsonl reads."""
    for last in _checkpoint_files(out, cfg):
        best = last.with_name("best.pt")
        loaded = {path: checkpoint.load(path) for path in ((last, best) if runfolder.exists(best) else (last,))}
        for path, ck in loaded.items():
            _same_network(ck["network"], graph, f"{path} was trained on another network",
                          "the run's spec.yaml or config.yaml was edited since: put them back to resume")
        ck = loaded[last]  # each file read (and its checksums computed) once
        if ck["step"] and ck["config"].get("batch_size") != cfg.batch_size:
            raise SpecError(f"{out} stopped in the middle of an epoch: resume it with the same --batch-size "
                            f"({ck['config'].get('batch_size')})")
        _read_metrics(last.parent)
    for k in range(cfg.folds or 0):  # a finished fold is not trained again: its summary must read
        if runfolder.exists(out / f"fold{k + 1}" / "summary.json"):
            _fold_summary(out / f"fold{k + 1}" / "summary.json")


def _read_metrics(run_dir: Path) -> list:
    """The rows of a run's metrics.jsonl; a damaged line is an error at its place (the file is ours, so
    a line that is not one of our rows means someone else wrote it)."""
    path = run_dir / "metrics.jsonl"
    try:
        text = runfolder.read_text(path)
    except FileNotFoundError:
        return []
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except (ValueError, RecursionError) as exc:
            raise SpecError(f"not a JSON line of training metrics ({getattr(exc, 'msg', 'nested too deeply')}); the "
                            "run's metrics.jsonl is damaged",
                            Loc(str(path), number, getattr(exc, "colno", 1))) from None
        epoch = row.get("epoch") if isinstance(row, dict) else None
        if (not isinstance(epoch, int) or isinstance(epoch, bool) or epoch != len(rows) + 1
                or not all(v is None or isinstance(v, (int, float)) for v in row.values())):
            raise SpecError(f"not the metrics of epoch {len(rows) + 1} (one JSON object of numbers per epoch, in "
                            "order); the run's metrics.jsonl is damaged", Loc(str(path), number, 1))
        rows.append(row)
    return rows


# --- the entry points -------------------------------------------------------------------------------
def train(spec=None, config: TrainConfig | None = None, *, resume: bool = False, on_step: Callable | None = None,
          console=None) -> RunResult:
    """Train `spec` (a path, or a loaded Graph; default `config.spec`) with `config`; the run folder
    is `config.out` (default runs/<spec name>). `resume=True` continues the run in that folder, on the
    run's own copy of its spec: a `spec` given then must be the same network. `on_step(epoch, step)`
    is called after every step (1-based). Raises SpecError for bad settings, Diverged for a NaN/inf
    loss, Interrupted after Ctrl-C (a checkpoint saved)."""
    cfg = (config or TrainConfig()).checked()
    given = spec
    spec = spec if spec is not None else cfg.spec
    if spec is None and not (resume and cfg.out):
        raise SpecError("no spec to train: give SPEC (or 'spec:' in --config)")
    if not resume and not isinstance(spec, Graph):
        cfg = replace(cfg, spec=str(spec))
    if resume:
        out = Path(cfg.out) if cfg.out else Path("runs") / runfolder.folder_name(_load_graph(spec, cfg)[0].name)
    else:
        graph, report = _load_graph(spec, cfg)
        out = Path(cfg.out) if cfg.out else Path("runs") / runfolder.folder_name(graph.name)
    cfg = replace(cfg, out=str(out))
    runfolder.check(out)
    check_device(cfg.device)  # before the folder is made: an absent device leaves no half-made run
    # Rank 0 of a torchrun job (or the one process) locks the folder; our own --gpus children run
    # `_train_here` under their parent's lock.
    lock = runfolder.Lock(out) if int(os.environ.get("RANK", 0)) == 0 else None
    try:
        if lock is not None and os.path.isdir(out):
            lock.acquire()  # before anything is read for good: a run in use fails at once
        if resume:
            if not runfolder.exists(out / "config.yaml"):
                raise SpecError(f"{out}: no run to resume here (no config.yaml)")
            own = out / "spec.yaml" if runfolder.exists(out / "spec.yaml") else spec
            if own is None:
                raise SpecError(f"{out}: the run has no spec.yaml to resume from")
            graph, report = _load_graph(own, cfg)
            if given is not None and own != given:
                theirs, _ = _load_graph(given, cfg)
                _same_network(network_of(graph), theirs, f"{out} trained another network (its spec.yaml)",
                              "--resume trains the run's own network: leave out SPEC, or train a new run with "
                              "another --output")
            _check_resume(out, cfg, graph)
            spec = own if isinstance(own, Graph) else Path(own)
        else:
            _refuse_a_run_there(out)
            if not isinstance(spec, Graph):
                spec = Path(spec)
        if cfg.gpus > 1 and int(os.environ.get("WORLD_SIZE", 1)) == 1:
            if str(spec) == "-":  # each process reads the spec; only this one has the stdin
                raise SpecError("--gpus starts processes that each read the spec: give it as a file, not '-'")
            _launch_device(cfg)  # before the folder is made
            if lock is not None:
                lock.acquire()
                if not resume:
                    _refuse_a_run_there(out)
            return _launch(spec, cfg, resume, quiet=bool(getattr(console, "quiet", False)))
        return _train_here(spec, cfg, resume, on_step, console, graph, report, lock)
    finally:
        if lock is not None:
            lock.release()


def check_device(device: str) -> None:
    """SpecError unless `device` (auto, cpu, cuda, cuda:N or mps) is one this PyTorch can use here."""
    kind, _, index = device.partition(":")
    if kind not in ("auto", "cpu", "cuda", "mps") or (index and not (kind == "cuda" and index.isdigit())):
        raise SpecError(f"--device {device!r} is not one of auto, cpu, cuda (cuda:N), mps")
    if kind == "cuda" and not torch.cuda.is_available():
        raise SpecError(f"--device {device}: CUDA is not available to this PyTorch ({torch.__version__}); "
                        "use --device cpu or auto")
    if kind == "cuda" and index and int(index) >= torch.cuda.device_count():
        raise SpecError(f"--device {device}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    if kind == "mps" and not torch.backends.mps.is_available():
        raise SpecError(f"--device mps: MPS (Apple silicon's GPU) is not available to this PyTorch "
                        f"({torch.__version__}); use --device cpu or auto")


def _refuse_a_run_there(out: Path) -> None:
    if any(runfolder.exists(out / name) for name in ("last.pt", "summary.json", "fold1")):
        raise SpecError(f"{out} already holds a run: continue it with --resume {out}, or choose another --output")


def _train_here(spec, cfg, resume, on_step, console, graph=None, report=None, lock=None) -> RunResult:
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
        _check_memory(graph, report, cfg, ds, dist.device)
        if len(ds.x_train) < cfg.batch_size:
            raise cfg.error("batch_size", f"{cfg.batch_size} is larger than the training split ({len(ds.x_train)} "
                            "examples)")
        if dist.is_main:
            runfolder.make(out)
            if lock is not None:
                lock.acquire()
                if not resume:  # under the lock: another train may have started a run here meanwhile
                    _refuse_a_run_there(out)
                runfolder.remove_temporaries(out)  # left by a writer killed mid-write; none is at work now
            runfolder.check(out)
            runfolder.write(out / "config.yaml", cfg.to_yaml())
            if isinstance(spec, Path) and spec != out / "spec.yaml":
                runfolder.write(out / "spec.yaml", _spec_bytes(spec))
            _show_figures(console, graph, report, cfg, dist)
        try:
            with _CtrlC() as ctrl:
                run = _Run(cfg, graph, report, dist, console, ctrl, on_step)
                if cfg.folds:
                    summary, metrics, model = _cross_validate(run, out, resume, ds), None, None
                else:
                    summary, metrics, model = _fit(run, ds.to(dist.device), out, resume)
        except (RuntimeError, MemoryError) as exc:
            if not isinstance(exc, MemoryError) and not _OOM.search(str(exc)):
                raise
            kept = f"{out / 'last.pt'} keeps the last saved state. " if runfolder.exists(out / "last.pt") else ""
            raise SpecError(f"training {graph.name} ran out of memory on {dist.device} ({_short(exc)}); {kept}Try a "
                            "smaller --batch-size (or --eval-batch-size), or a smaller network") from None
        if dist.is_main:
            print_summary(console, summary, out)
        return RunResult(out, summary, metrics if metrics is not None else summary.get("per_fold", []),
                         model if not dist.enabled else None)
    finally:
        distributed.cleanup(dist)


_OOM = re.compile(r"out of memory|can't allocate memory|not enough memory", re.IGNORECASE)


def _short(exc) -> str:
    return " ".join(str(exc).split())[:160] or type(exc).__name__


def _device_memory(dev) -> int | None:
    """Bytes this process can use on `dev`: the GPU's memory, or the machine's (under RLIMIT_AS)."""
    if dev.type == "cuda":
        return torch.cuda.get_device_properties(dev).total_memory
    if dev.type != "cpu":
        return None
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None
    import resource

    cap = resource.getrlimit(resource.RLIMIT_AS)[0]
    return min(total, cap) if cap != resource.RLIM_INFINITY else total


def _check_memory(graph, report, cfg, ds, dev) -> None:
    """Refuse, before anything is allocated or written, a network whose weights, gradients and
    optimizer states (plus the dataset, which lives on the device) exceed the device's memory."""
    available = _device_memory(dev)
    if available is None:
        return
    t = report.totals
    from archcalc.analysis.memory import OPTIMIZER_STATES  # memory planning's count, per parameter

    states = OPTIMIZER_STATES["momentum" if cfg.optimizer == "sgd" and cfg.momentum else cfg.optimizer]
    data = sum(v.numel() * v.element_size() for v in (ds.x_train, ds.y_train, ds.x_val, ds.y_val, ds.x_test,
                                                       ds.y_test))
    need = 4 * int(t.params) + 4 * (1 + states) * int(t.trainable_params) + data
    if need > available:
        raise SpecError(f"training {graph.name} ({int(t.params):,} parameters) needs at least {need / 2**30:,.1f} GiB "
                        f"for weights, gradients, {cfg.optimizer} states and data, more than the "
                        f"{available / 2**30:,.1f} GiB of {dev}", graph.input_loc)


def _spec_bytes(spec: Path) -> bytes:
    """The spec file as it was read (it parsed just now, so it is a regular, readable file); for
    `-`, the text read from stdin (read once: the same text)."""
    if str(spec) == "-":
        return read_source(spec, "spec").encode("utf-8")
    try:
        with open(spec, "rb") as handle:
            return handle.read()
    except OSError as exc:
        raise SpecError(f"{spec}: cannot read: {exc.strerror or exc}") from None


def _cross_validate(run: _Run, out: Path, resume: bool, first) -> dict:
    """K folds of train+val, each a fresh model with the same seed, in out/foldK; the mean and the
    spread (sample standard deviation) of each fold's best validation loss and accuracy."""
    cfg, per_fold = run.cfg, []
    for k in range(cfg.folds):
        fold_dir = out / f"fold{k + 1}"
        if run.dist.is_main:
            runfolder.make(fold_dir, parents=False)
        if resume and runfolder.exists(fold_dir / "summary.json"):  # finished before the interruption
            summary = _fold_summary(fold_dir / "summary.json")
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
        runfolder.write(out / "summary.json", json.dumps(result, indent=1) + "\n")
    return result


def _fold_summary(path: Path) -> dict:
    summary = runfolder.read_json(path)
    need = ("best_epoch", "best_val_loss", "best_val_acc", "test")
    number = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)
    if (not isinstance(summary, dict) or not all(k in summary for k in need) or not number(summary["best_epoch"])
            or not number(summary["best_val_loss"])
            or not (summary["best_val_acc"] is None or number(summary["best_val_acc"]))
            or not (summary["test"] is None or isinstance(summary["test"], dict))):
        raise SpecError(f"not the summary of a finished fold (it needs {', '.join(need)}); the file is damaged",
                        Loc(str(path), 1, 1))
    return summary


_STATUS = ".launch-status.json"


def _worker(spec, cfg_dict: dict, resume: bool, quiet: bool = False) -> None:
    """One of the `--gpus N` processes (spawned by distributed.launch, torchrun's environment set). The
    expected outcomes reach the parent through a status file; anything else as a traceback. `quiet`:
    the parent prints nothing of the epochs (train -q, --json), nor do its children."""
    cfg = TrainConfig(**cfg_dict)
    console = None
    if quiet:
        from rich.console import Console

        console = Console(quiet=True)
    try:
        _train_here(spec, cfg, resume, None, console)
    except (SpecError, Diverged, Interrupted) as exc:
        if os.environ.get("RANK") == "0":
            runfolder.make(cfg.out)
            runfolder.write(Path(cfg.out) / _STATUS, json.dumps({"kind": type(exc).__name__, "message": str(exc)}))


def _launch_device(cfg: TrainConfig) -> str:
    """The device of a `--gpus N` launch, or SpecError when N processes cannot run there."""
    dev = cfg.device if cfg.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    if dev == "cuda" and torch.cuda.device_count() < cfg.gpus:
        raise cfg.error("gpus", f"{cfg.gpus}: only {torch.cuda.device_count()} CUDA device(s) here")
    if dev == "mps":
        raise SpecError("--gpus needs CUDA devices (or --device cpu): MPS runs one process")
    most = max(8, os.cpu_count() or 1)
    if dev == "cpu" and cfg.gpus > most:
        raise cfg.error("gpus", f"{cfg.gpus} with --device cpu would start {cfg.gpus} processes on "
                        f"{os.cpu_count()} cores; at most {most}")
    return dev


def _launch(spec, cfg: TrainConfig, resume: bool, quiet: bool = False) -> RunResult:
    dev = _launch_device(cfg)
    status = Path(cfg.out) / _STATUS
    status.unlink(missing_ok=True)  # unlink removes a link itself, never its target
    with _CtrlC():  # the children handle Ctrl-C (they get it too); the parent waits for their checkpoint
        distributed.launch(_worker, cfg.gpus, spec, replace(cfg, device=dev).settings(), resume, quiet,
                           backend="nccl" if dev == "cuda" else "gloo")
    if runfolder.exists(status):
        outcome = runfolder.read_json(status)
        status.unlink()
        kinds = {"SpecError": SpecError, "Diverged": Diverged, "Interrupted": Interrupted}
        if (not isinstance(outcome, dict) or outcome.get("kind") not in kinds
                or not isinstance(outcome.get("message"), str)):
            raise SpecError(f"{status}: not the outcome of a training process; the run folder was tampered with")
        raise kinds[outcome["kind"]](outcome["message"].removeprefix("error: "))
    out = Path(cfg.out)
    summary = runfolder.read_json(out / "summary.json")
    metrics = _read_metrics(out) if not cfg.folds else []
    return RunResult(out, summary, metrics)


# --- output -------------------------------------------------------------------------------------------
def shown(text) -> str:
    """User text (a spec's name, a path, a class folder's name) for the console: one line, control
    characters escaped, and rich markup ('[bold]', '[link=...]') shown as written, not applied."""
    from rich.markup import escape

    from archcalc.errors import one_line

    return escape(one_line(str(text)))


def _show_figures(console, graph, report, cfg, dist) -> None:
    from archcalc.render import shape_text
    from archcalc.units import count

    t = report.totals
    # markup is ours alone: a name, and a shape written in the spec's words ([d]), print as written
    console.print(f"[bold]{shown(graph.name)}[/bold]  input {shown(shape_text(graph.input_shape))} -> output "
                  f"{shown(shape_text(report.output_shape))}  params {t.params:,} ({count(t.params)}; trainable "
                  f"{t.trainable_params:,})  MACs/example {t.macs:,} ({count(t.macs)}); training FLOPs/example "
                  f"= 3 x 2 x MACs = {count(6 * t.macs)}", highlight=False)
    console.print(f"task {cfg.task} on --data {shown(cfg.data)}; {cfg.optimizer} lr {cfg.lr:g}, batch {cfg.batch_size}"
                  f"{f' ({dist.world_size} processes x {cfg.batch_size // dist.world_size})' if dist.enabled else ''}, "
                  f"{cfg.epochs} epochs, device {dist.device}, {cfg.precision}", highlight=False)


def print_summary(console, summary: dict, out: Path | None = None) -> None:
    """The end-of-run summary (also `archcalc evaluate`'s report)."""
    from rich.table import Table
    from rich.text import Text

    from archcalc.errors import one_line

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
                          + shown(summary["stopped"] or f"ran all {summary['epochs']} epochs"), highlight=False)
        split = summary.get("split", "test")  # evaluate's results are under their split's name
        test = summary.get(split)
        if test:
            acc = f", accuracy {test['accuracy']:.2%}" if "accuracy" in test else ""
            console.print(f"{split}: loss {test['loss']:.4f}{acc} ({test['examples']} examples)", highlight=False)
            if "confusion" in test:
                names = summary.get("classes") or [str(i) for i in range(len(test["confusion"]))]
                table = Table(title="confusion matrix (rows: true class, columns: predicted)", title_justify="left")
                table.add_column("")
                for name in names:  # class names come from folder names or label values: shown as written
                    table.add_column(Text(one_line(name)), justify="right")
                for name, row in zip(names, test["confusion"]):
                    table.add_row(Text(one_line(name)), *(str(v) for v in row))
                console.print(table)
        else:
            console.print(f"no {split} split (--test-fraction 0)", highlight=False)
    if out is not None:
        console.print(f"run folder: {shown(out)}", highlight=False)


def evaluate(run_dir, data: str | None = None, *, split: str = "test", device: str = "auto",
             checkpoint_name: str | None = None) -> dict:
    """Loss, accuracy and confusion matrix of a saved run on a split of its data (or of `data`, another
    source with the same input shape: normalised with the run's own statistics). Rebuilds the model
    from the run's copy of its spec and loads best.pt (last.pt when there is no best), checking that
    the checkpoint was trained on that network."""
    run_dir = Path(run_dir)
    if split not in ("test", "val"):
        raise SpecError(f"--split '{split}' is not one of test, val")
    check_device(device)
    fold = None
    top = run_dir
    if re.fullmatch(r"fold\d+", run_dir.name) and not runfolder.exists(run_dir / "config.yaml"):
        top, fold = run_dir.parent, int(run_dir.name[4:]) - 1  # one fold of a cross-validation run
    runfolder.check(top)
    if not runfolder.exists(top / "config.yaml"):
        raise SpecError(f"{run_dir}: not a run folder (no config.yaml)")
    cfg = run_config(top)
    if cfg.folds and fold is None:
        raise SpecError(f"{run_dir} is a {cfg.folds}-fold cross-validation run: evaluate one fold, e.g. {run_dir}/fold1")
    if fold is not None and not 0 <= fold < (cfg.folds or 0):
        raise SpecError(f"{run_dir}: the run has {cfg.folds or 'no'} folds")
    return _evaluate_run(run_dir, top, cfg, data, split, device, checkpoint_name, fold)


def _evaluate_run(run_dir, spec_dir, cfg, data, split, device, checkpoint_name, fold):
    from archcalc.torch.build import build

    spec = spec_dir / "spec.yaml" if runfolder.exists(spec_dir / "spec.yaml") else cfg.spec
    if spec is None:
        raise SpecError(f"{run_dir}: the run was trained from a Graph object, no spec file to rebuild it from")
    graph, report = _load_graph(spec, replace(cfg, flip=False, shift=0, crop=0))
    name = checkpoint_name or ("best.pt" if runfolder.exists(run_dir / "best.pt") else "last.pt")
    try:
        dev = distributed._resolve_device(device, 0, 1)
    except RuntimeError as exc:
        raise SpecError(f"--device {device}: {exc}") from None
    ck = checkpoint.load(run_dir / name, dev)
    _same_network(ck["network"], graph, f"{run_dir / name} was trained on another network",
                  "the run's spec.yaml or config.yaml was edited since")
    # normalised with the run's own statistics, whatever the source: the network knows no others
    stats = runfolder.read_json(run_dir / "data.json") if runfolder.exists(run_dir / "data.json") else None
    if stats is not None and not (isinstance(stats, dict) and isinstance(stats.get("mean"), list)
                                  and isinstance(stats.get("std"), list)
                                  and all(isinstance(v, (int, float)) and math.isfinite(v)
                                          for v in stats["mean"] + stats["std"])):
        raise SpecError("not the data statistics of a run (lists 'mean' and 'std' of finite numbers); the file "
                        "is damaged", Loc(str(run_dir / "data.json"), 1, 1))
    ds = _load_data(cfg, graph, report, fold, source=data, stats=stats).to(dev)
    x, y = (ds.x_test, ds.y_test) if split == "test" else (ds.x_val, ds.y_val)
    classes = len(ds.classes or ())
    try:
        model = build(graph, device=dev)
        _load_weights(model, ck["model"], run_dir / name)
        result = _evaluate(model, x, y, cfg.task, batch=cfg.eval_batch_size or 256, precision=cfg.precision,
                           classes=classes)
    except (RuntimeError, MemoryError) as exc:
        if not isinstance(exc, MemoryError) and not _OOM.search(str(exc)):
            raise
        raise SpecError(f"evaluating {graph.name} ran out of memory on {dev} ({_short(exc)})") from None
    if result is None:
        raise SpecError(f"the {split} split of --data {data or cfg.data} is empty")
    return {"run": str(run_dir), "checkpoint": name, "epoch": ck["epoch"], "data": data or cfg.data, "split": split,
            "task": cfg.task, "classes": _class_names(ds), split: result}  # "val": {...} for --split val


__all__ = ["Diverged", "Interrupted", "RunResult", "Schedule", "TrainConfig", "evaluate", "gpu_peak", "network_change",
           "network_of", "plot_curves", "print_summary", "resume_config", "run_config", "train"]
