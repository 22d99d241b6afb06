"""Training checkpoints: written atomically, read with `torch.load(..., weights_only=True)`.

A checkpoint is a plain dict of tensors, numbers, strings, lists and dicts (no pickled objects), so
that `weights_only=True` can load it: PyTorch's safe loader refuses arbitrary classes, which is what
makes opening a checkpoint from someone else harmless. Random-number-generator states are uint8
tensors; the config is a plain dict.

Writes go to a temporary file in the same folder, are flushed to disk, then renamed over the old
file with `os.replace` (atomic on POSIX and Windows): a crash or Ctrl-C in the middle of a write
leaves the previous checkpoint intact, never half a file.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

from archcalc.errors import SpecError

FORMAT = 1  # bump when the layout changes; `load` refuses other formats with a clear message
KEYS = ("format", "model", "optimizer", "scheduler", "epoch", "step", "best_val_loss", "best_epoch", "rng")


def save(path, state: dict) -> Path:
    """Write `state` (see `KEYS`) to `path` atomically; returns the path."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as handle:
            torch.save({"format": FORMAT, **state}, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():  # only when the write itself failed
            tmp.unlink()
    return path


def load(path, map_location="cpu") -> dict:
    """Read a checkpoint written by `save`, safely (weights_only=True); SpecError when it is not one."""
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"{path}: no such checkpoint")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the user's to fix, in one line
        raise SpecError(f"{path}: not a readable checkpoint ({type(exc).__name__}: {exc})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT or not all(k in state for k in KEYS):
        raise SpecError(f"{path}: not an archcalc training checkpoint (format {FORMAT})")
    return state


def plain_optimizer_state(optimizer: torch.optim.Optimizer) -> dict:
    """The optimizer's state_dict with learning rates as floats: fast_step turns them into device
    tensors for CUDA graphs, and a tensor lr would not load into a non-capturable optimizer."""
    sd = optimizer.state_dict()
    for group in sd["param_groups"]:
        if isinstance(group.get("lr"), torch.Tensor):
            group["lr"] = float(group["lr"])
    return sd


def load_optimizer_state(optimizer: torch.optim.Optimizer, sd: dict, capturable: bool) -> None:
    """Load `sd`, with `capturable` set for this run's device before loading, since it decides
    where the optimizer keeps its step counters (a GPU run resumed on the CPU, or the reverse)."""
    for group in sd["param_groups"]:
        if "capturable" in group:
            group["capturable"] = capturable
    optimizer.load_state_dict(sd)


__all__ = ["FORMAT", "load", "load_optimizer_state", "plain_optimizer_state", "save"]
