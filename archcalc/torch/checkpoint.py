"""Training checkpoints: written atomically, checksummed, read with `torch.load(..., weights_only=True)`.

A checkpoint is a plain dict of tensors, numbers, strings, lists and dicts (no pickled objects), so
that `weights_only=True` can load it: PyTorch's safe loader refuses arbitrary classes, which is what
makes opening a checkpoint from someone else harmless. Random-number-generator states are uint8
tensors; the config is a plain dict; `network` describes the layers it was trained with.

Writes go through `runfolder.write`: a new temporary file in the same folder, flushed, then renamed
over the old file with `os.replace` (atomic on POSIX and Windows): a crash or Ctrl-C in the middle of
a write leaves the previous checkpoint intact, never half a file, and a link in its place is refused.

Two checksums, both checked at every load, since PyTorch's zip reader does not check its CRCs (a
flipped bit in the weights would otherwise load, and resume, silently):
- the file's: the zip's comment (the last bytes of a zip, which any zip reader skips) is
  `archcalc-sha256:` and the sha256 of every byte before it, so any changed bit of the file is
  caught, also in zip padding or headers that loading would never look at;
- the contents': `sha256` in the dict is a digest of everything else in it (`digest`: keys, types,
  every tensor's dtype, shape and bytes, in a fixed order), independent of the zip layout.
"""
from __future__ import annotations

import hashlib
import io
import json
import struct
from pathlib import Path

import torch

from archcalc.errors import SpecError
from archcalc.torch import runfolder

FORMAT = 2  # bump when the layout changes; `load` refuses other formats with a clear message
KEYS = ("format", "model", "optimizer", "scheduler", "epoch", "step", "best_val_loss", "best_epoch", "bad_epochs",
        "stopped", "rng", "partial_losses", "config", "network", "sha256")


class _Unhashable(Exception):
    pass


def _feed(h, value) -> None:
    """Hash `value` with its type, unambiguously (lengths before contents)."""
    if isinstance(value, torch.Tensor):
        t = value.detach().cpu().contiguous().reshape(-1)
        raw = t.view(torch.uint8).numpy().tobytes() if t.numel() else b""
        head = f"T{t.dtype}{tuple(value.shape)}".encode()
        h.update(struct.pack("<Q", len(head)) + head + struct.pack("<Q", len(raw)))
        h.update(raw)
    elif isinstance(value, dict):
        h.update(b"D" + struct.pack("<Q", len(value)))
        for key in sorted(value, key=lambda k: (type(k).__name__, repr(k))):
            _feed(h, key)
            _feed(h, value[key])
    elif isinstance(value, (list, tuple)):
        h.update(b"L" + struct.pack("<Q", len(value)))
        for item in value:
            _feed(h, item)
    elif value is None or isinstance(value, (bool, int, float, str)):
        text = (value.hex() if isinstance(value, float) else str(value)).encode("utf-8", "surrogatepass")
        h.update(type(value).__name__[:1].encode() + struct.pack("<Q", len(text)) + text)
    else:
        raise _Unhashable(type(value).__name__)


def digest(state: dict) -> str:
    """sha256 of a checkpoint's contents, its own `sha256` entry left out."""
    h = hashlib.sha256()
    _feed(h, {k: v for k, v in state.items() if k != "sha256"})
    return h.hexdigest()


_TRAILER = b"archcalc-sha256:"
_TRAILER_LEN = len(_TRAILER) + 64
_EOCD = b"PK\x05\x06"  # a zip's end-of-central-directory record: 22 bytes, then the comment


def _sealed(data: bytes) -> bytes:
    """torch.save's zip with the file checksum as its comment (see the module's docstring)."""
    if data[-22:-18] != _EOCD or data[-2:] != b"\0\0":
        raise RuntimeError("torch.save wrote an unexpected zip layout; archcalc cannot seal the checkpoint")
    body = data[:-2] + _TRAILER_LEN.to_bytes(2, "little")
    return body + _TRAILER + hashlib.sha256(body).hexdigest().encode()


def _seal_holds(data: bytes) -> bool | None:
    """Whether the file checksum matches; None when the file has none (not archcalc's, or older)."""
    if len(data) < 22 + _TRAILER_LEN or data[-_TRAILER_LEN:-64] != _TRAILER:
        return None
    body = data[:-_TRAILER_LEN]
    return (body[-22:-18] == _EOCD and body[-2:] == _TRAILER_LEN.to_bytes(2, "little")
            and hashlib.sha256(body).hexdigest().encode() == data[-64:])


def save(path, state: dict) -> Path:
    """Write `state` (see `KEYS`; `format` and `sha256` are added here) to `path` atomically."""
    full = {"format": FORMAT, **state}
    full["sha256"] = digest(full)
    buffer = io.BytesIO()  # serialised first: a failing write is then a plain OSError (disk full), not torch's
    torch.save(full, buffer)
    return runfolder.write(path, _sealed(buffer.getvalue()))


def load(path, map_location="cpu") -> dict:
    """Read a checkpoint written by `save`, safely (weights_only=True) and verified against its
    checksum; SpecError when it is not one, is damaged, or is a link or not a regular file."""
    path = Path(path)
    try:
        handle = runfolder.open_file(path)
    except FileNotFoundError:
        raise SpecError(f"{path}: no such checkpoint") from None
    with handle:
        data = handle.read()
    sealed = _seal_holds(data)
    if sealed is False:
        raise SpecError(f"{path}: checksum mismatch (the file was damaged or altered since it was written); "
                        "refusing to use it")
    try:
        state = torch.load(io.BytesIO(data), map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the user's to fix, in one line
        why = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
        raise SpecError(f"{path}: not a readable checkpoint ({why}); it is damaged or not archcalc's") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT or not all(k in state for k in KEYS):
        old = isinstance(state, dict) and state.get("format") == 1
        raise SpecError(f"{path}: not an archcalc training checkpoint (format {FORMAT})"
                        + ("; it was written by an older archcalc, without a checksum: train afresh" if old else ""))
    if sealed is None:
        raise SpecError(f"{path}: has no file checksum, so it was not written by archcalc's save (or was rewritten "
                        "since); refusing to use it")
    try:
        ok = digest(state) == state["sha256"]
    except _Unhashable as exc:
        raise SpecError(f"{path}: holds a {exc} value, which archcalc never writes: the file was altered") from None
    if not ok:
        raise SpecError(f"{path}: checksum mismatch (the file was damaged or altered since it was written); "
                        "refusing to use it")
    bad = _malformed(state)
    if bad:
        raise SpecError(f"{path}: not an archcalc training checkpoint ({bad})")
    return state


def _malformed(state: dict) -> str | None:
    """What is wrong with the layout of a checkpoint whose checksum holds (a forged one), or None."""
    count = lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0
    if not all(count(state[k]) for k in ("epoch", "step", "best_epoch", "bad_epochs")):
        return "epoch, step, best_epoch and bad_epochs must be whole numbers"
    if isinstance(state["best_val_loss"], bool) or not isinstance(state["best_val_loss"], (int, float)):
        return "best_val_loss must be a number"
    if not isinstance(state["model"], dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                                       for k, v in state["model"].items()):
        return "model must map names to tensors"
    if not all(isinstance(state[k], dict) for k in ("optimizer", "scheduler", "config", "rng")):
        return "optimizer, scheduler, config and rng must be mappings"
    rng = state["rng"].get("torch")
    if not isinstance(rng, torch.Tensor) or rng.dtype != torch.uint8 or rng.dim() != 2:
        return "rng must hold each process's torch RNG state"
    partial = state["partial_losses"]
    if state["step"] and (not isinstance(partial, torch.Tensor) or tuple(partial.shape) != (state["step"],)):
        return "partial_losses must hold one loss per step done"
    net = state["network"]
    layer = lambda r: (isinstance(r, list) and len(r) == 4 and all(isinstance(x, str) for x in r[:3])
                       and isinstance(r[3], list) and all(isinstance(x, str) for x in r[3]))
    if (not isinstance(net, dict) or not isinstance(net.get("input"), list) or not all(count(d) for d in net["input"])
            or not isinstance(net.get("layers"), list) or not all(layer(r) for r in net["layers"])):
        return "network must list the layers as [name, kind, arguments, inputs]"
    for row in net["layers"]:
        try:
            args = json.loads(row[2])
        except (ValueError, RecursionError):
            args = None
        if not isinstance(args, dict):
            return "each layer's arguments must be a JSON mapping"
    return None


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
    for group in optimizer.param_groups:  # load_state_dict checks counts, not shapes: a misfit would fail mid-step
        for param in group["params"]:
            for name, value in optimizer.state.get(param, {}).items():
                if isinstance(value, torch.Tensor) and value.dim() and value.shape != param.shape:
                    raise ValueError(f"optimizer state {name} is {list(value.shape)} for a {list(param.shape)} weight")


__all__ = ["FORMAT", "digest", "load", "load_optimizer_state", "plain_optimizer_state", "save"]
