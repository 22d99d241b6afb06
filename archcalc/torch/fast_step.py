"""One training step, made fast: autocast, channels_last and, on CUDA, the whole step (forward, loss,
backward, gradient clipping, optimizer step) captured once as a CUDA graph and replayed.

Small networks are launch-bound on a GPU: the Python and kernel-launch cost of a step exceeds its
arithmetic, so replaying one graph instead of launching hundreds of kernels is the big win (issue 5,
section 3). Capture follows PyTorch's "whole-network capture" recipe (torch.cuda.graphs docs):
- warm-up steps run eagerly on a side stream first; they are real training steps on the caller's
  batches, so no update is wasted or repeated (3 of them, 11 under DDP as its notes require);
- grads are set to None just before capture, so backward allocates them in the graph's private pool
  and every replay rewrites them in place (no zero_grad inside the graph);
- the step that captures does not run during capture, so it is replayed once right after;
- autocast runs with cache_enabled=False (a cached cast would be a tensor from outside the graph).
Conditions: data of a fixed shape (drop_last), an optimizer whose step has no host sync and no
CPU-side state that changes (SGD, or one with capturable=True such as Adam/AdamW), no GradScaler
(its step reads found_inf on the host). Anything else, or any capture error, runs eagerly, with the
reason in `reason`.

The learning rate: a Python float lr is a constant baked into the graph. For capturable optimizers
(Adam, AdamW, ...) the lr of every param group is turned into a 0-d tensor on the device before
capture, which they read on the device; `set_lr` (and LR schedulers, which fill tensors in place)
then act on the next replay for free. SGD's step does `add_(grad, alpha=-lr)`, where a tensor lr would
be read on the host (a sync, illegal in capture), so SGD keeps a float lr and a changed lr re-captures
the graph at the next step (a few milliseconds: cheap for per-epoch schedules, not for per-step ones).
Other hyper-parameters (momentum, weight decay, betas) are also frozen into the graph at capture.
"""
from __future__ import annotations

import contextlib

import torch
from torch import nn

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
WARMUP, WARMUP_DDP = 3, 11


class StepRunner:
    """Runs training steps of `model` (already on `device`) with `optimizer`, both made by the caller.

    `mode` is "cuda-graph" (from the start of the run: the first steps are the eager warm-up) or
    "eager", and `reason` says why eager ("" otherwise). `captures` counts graph captures.
    `channels_last=True` converts the model in place; under DDP convert before `wrap()` (a no-op here then).
    An optimizer's `capturable` flag is set for it while it has no state: on for a CUDA graph, off
    off the GPU (where PyTorch refuses it), so a caller may always create Adam/AdamW with capturable=True.
    """

    def __init__(self, model: nn.Module, loss_fn, optimizer: torch.optim.Optimizer, *, device,
                 precision: str = "fp32", channels_last: bool = False, cuda_graph: str = "auto",
                 grad_clip: float | None = None, scaler=None):
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        if cuda_graph not in ("auto", "on", "off"):
            raise ValueError(f"cuda_graph must be auto, on or off, got {cuda_graph!r}")
        self.model, self.loss_fn, self.optimizer = model, loss_fn, optimizer
        self.device = torch.device(device)
        self.dtype = PRECISIONS[precision]
        self.channels_last = channels_last
        self.grad_clip = grad_clip
        if precision == "fp16" and scaler is None:
            scaler = torch.amp.GradScaler(self.device.type)  # fp16 gradients underflow without loss scaling
        self.scaler = scaler
        if channels_last:
            model.to(memory_format=torch.channels_last)  # in place: the optimizer's parameters stay the same
        self.params = [p for g in optimizer.param_groups for p in g["params"]]
        self.reason = self._why_not_graph(cuda_graph)
        if self.reason and cuda_graph == "on":
            raise ValueError(f"cuda_graph='on' is impossible: {self.reason}")
        self.mode = "eager" if self.reason else "cuda-graph"
        self.strict = cuda_graph == "on"
        self.warmup = WARMUP_DDP if isinstance(model, nn.parallel.DistributedDataParallel) else WARMUP
        self.steps = 0
        self.captures = 0
        self._graph = None
        self._key = None  # what the graph was captured for: input shapes/dtypes, train mode, SGD's lrs
        self._lr_tensors = None
        self._side = None  # one side stream for warm-up and capture (lazy handles are made on it)

    def _why_not_graph(self, cuda_graph: str) -> str:
        if self.device.type != "cuda" and not self.optimizer.state:
            # capturable=True fails on the CPU; so callers may always ask for it, eager off-GPU drops it.
            for g in self.optimizer.param_groups:
                if g.get("capturable"):
                    g["capturable"] = False
        if cuda_graph == "off":
            return "cuda_graph='off'"
        if self.device.type != "cuda":
            return f"device is {self.device.type}"
        if self.scaler is not None:
            return "fp16 uses a GradScaler, whose step syncs with the host"
        opt = self.optimizer
        if "capturable" in opt.defaults:
            if not all(g.get("capturable") for g in opt.param_groups):
                if opt.state:
                    return f"{type(opt).__name__} was created without capturable=True"
                for g in opt.param_groups:  # no state yet: the same algorithm, its step counter on the GPU
                    g["capturable"] = True
            return ""
        if type(opt) is torch.optim.SGD:
            return ""
        return f"{type(opt).__name__} has no capturable mode (use SGD, Adam or AdamW)"

    # -- the step itself ------------------------------------------------------------------------
    def _autocast(self, cache: bool = True):
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype, cache_enabled=cache)

    def _input(self, x):
        if self.channels_last and x.dim() == 4:
            return x.to(self.device, memory_format=torch.channels_last, non_blocking=True)
        return x.to(self.device, non_blocking=True)

    def _forward_backward(self, x, y, cache: bool = True):
        with self._autocast(cache):
            loss = self.loss_fn(self.model(x), y)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            if self.grad_clip is not None:
                self.scaler.unscale_(self.optimizer)  # clip the true gradients, not the scaled ones
                nn.utils.clip_grad_norm_(self.params, self.grad_clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.backward()
            if self.grad_clip is not None:
                nn.utils.clip_grad_norm_(self.params, self.grad_clip)  # foreach, no host sync on CUDA
            self.optimizer.step()
        return loss.detach()

    def _eager(self, x, y, set_to_none: bool = True):
        # After a capture, grads must stay the graph's tensors: zero them in place instead.
        self.optimizer.zero_grad(set_to_none=set_to_none)
        return self._forward_backward(self._input(x), self._input(y))

    def step(self, x, y) -> torch.Tensor:
        """One training step on batch (x, y); the loss as a detached 0-d tensor on the device (no sync)."""
        self.steps += 1
        if self.mode == "eager":
            return self._eager(x, y, set_to_none=self._graph is None)
        if self.steps <= self.warmup:
            if self._side is None:
                self._side = torch.cuda.Stream(self.device)
            self._side.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(self._side):
                loss = self._eager(x, y)
            torch.cuda.current_stream(self.device).wait_stream(self._side)
            return loss
        key = self._capture_key(x, y)
        if self._graph is None or key != self._key:
            if self._graph is not None and key[:-1] != self._key[:-1]:
                return self._eager(x, y, set_to_none=False)  # an odd batch (shape, mode): this step only
            try:
                self._capture(x, y, key)
            except Exception as exc:  # noqa: BLE001 - any failure means eager, with the reason kept
                self._graph = self._key = None
                self.mode, self.reason = "eager", f"CUDA graph capture failed: {type(exc).__name__}: {exc}"
                if self.strict:
                    raise RuntimeError(self.reason) from exc
                torch.cuda.synchronize(self.device)
                return self._eager(x, y)  # the captured step never ran: run it now
        self._static_x.copy_(x, non_blocking=True)  # copy_ converts device and memory format in one go
        self._static_y.copy_(y, non_blocking=True)
        self._graph.replay()
        return self._static_loss.clone()  # the next replay overwrites the static loss

    def _capture_key(self, x, y):
        floats = tuple(g["lr"] for g in self.optimizer.param_groups if not isinstance(g["lr"], torch.Tensor))
        return (tuple(x.shape), x.dtype, tuple(y.shape), y.dtype, self.model.training, floats)

    def _capture(self, x, y, key):
        if "capturable" in self.optimizer.defaults:  # lr as device tensors, read by every replay
            groups = self.optimizer.param_groups
            if self._lr_tensors is None:
                self._lr_tensors = [torch.zeros((), device=self.device) for _ in groups]
            for g, t in zip(groups, self._lr_tensors):
                if g["lr"] is not t:  # first capture, or a float put back by someone else
                    t.fill_(float(g["lr"]))
                    g["lr"] = t
            key = self._capture_key(x, y)
        self._static_x = self._input(x).clone()
        self._static_y = self._input(y).clone()
        self._graph = None  # frees the previous graph's pool before the new capture
        self.optimizer.zero_grad(set_to_none=True)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, stream=self._side):  # the stream the warm-up ran on
            self._static_loss = self._forward_backward(self._static_x, self._static_y, cache=False)
        self._graph, self._key = graph, key
        self.captures += 1

    def set_lr(self, lr: float) -> None:
        """Set every param group's learning rate; takes effect at the next step in both modes."""
        for g in self.optimizer.param_groups:
            if isinstance(g["lr"], torch.Tensor):
                g["lr"].fill_(lr)  # read on the device by the graph (capturable optimizers)
            else:
                g["lr"] = float(lr)  # SGD under a graph: the key changes, the next step re-captures


__all__ = ["PRECISIONS", "StepRunner"]
