"""Data-parallel training primitives: process setup from torchrun's environment, DDP wrapping,
per-rank data shards and an in-process launcher (`archcalc train --gpus N`).

The goal (issue 5, section 4) is that N processes with a per-rank batch B train exactly like one
process with batch N*B, up to floating-point order. Three things give it:
- `shard` hands rank r the r-th slice of each *global* batch of one shared permutation, so the
  union of the ranks' step-s batches is the single-process step-s batch;
- every rank gets the same number of equally sized batches (trim or pad to a multiple of
  world_size * batch_size), so DDP's average of per-rank mean losses is the global mean loss;
- DDP broadcasts rank 0's weights at wrap time and averages gradients, so all ranks stay equal.
Batch norm is the exception: under DDP each rank normalises with its own batch's statistics,
unless `wrap(..., sync_batchnorm=True)` (CUDA only, PyTorch's SyncBatchNorm).

Multi-node with torchrun (one process per GPU; run the same command on every node):

    torchrun --nnodes 2 --nproc-per-node 8 --node-rank $NODE_RANK \\
             --rdzv-backend c10d --rdzv-endpoint $HEAD_NODE:29500 \\
             -m archcalc train SPEC --data ... --out runs/NAME

torchrun sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT, which `setup` reads.
"""
from __future__ import annotations

import os
import socket
import sys
from dataclasses import dataclass

import torch
import torch.distributed as tdist
from torch import nn


@dataclass
class Dist:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    backend: str | None  # None: a single process, no process group

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that logs and writes checkpoints."""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


# launch() passes its backend to the children here; it applies to CPU processes only (see launch).
_BACKEND_ENV = "ARCHCALC_DIST_BACKEND"


def _resolve_device(device: str, local_rank: int, world_size: int) -> torch.device:
    if device == "auto":
        if torch.cuda.is_available():
            device = "cuda"
        elif world_size == 1 and torch.backends.mps.is_available():
            device = "mps"  # no multi-process backend for MPS
        else:
            device = "cpu"
    dev = torch.device(device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(f"device {device!r} was asked for, but CUDA is not available here")
        if dev.index is None:  # one GPU per process: the node-local rank picks it
            dev = torch.device("cuda", local_rank % torch.cuda.device_count())
    elif dev.type == "mps" and world_size > 1:
        raise RuntimeError("more than one process on the 'mps' device is not supported; use --device cpu")
    return dev


def setup(device: str = "auto") -> Dist:
    """This process's place in the job, from torchrun's environment variables (a single process when
    they are absent). Joins the process group when WORLD_SIZE > 1: nccl for CUDA, gloo for CPU."""
    env = os.environ
    rank, world, local = int(env.get("RANK", 0)), int(env.get("WORLD_SIZE", 1)), int(env.get("LOCAL_RANK", 0))
    dev = _resolve_device(device, local, world)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)  # NCCL and default-device allocations follow the current device
    backend = None
    if world > 1:
        backend = "nccl" if dev.type == "cuda" else env.get(_BACKEND_ENV, "gloo")
        if not tdist.is_initialized():
            tdist.init_process_group(backend, rank=rank, world_size=world)
    return Dist(rank, world, local, dev, backend)


def cleanup(dist: Dist) -> None:
    if dist.enabled and tdist.is_initialized():
        # On a normal exit every rank reaches this point before any tears the group down: rank 0
        # hosts the store, and a rank still talking to it when it goes aborts in gloo ("terminate
        # called without an active exception", seen in the two-process test here). Not while an
        # exception unwinds (called from a `finally`): the other ranks may never arrive.
        try:
            if sys.exc_info()[0] is None:
                tdist.barrier()
        finally:
            tdist.destroy_process_group()


def wrap(model: nn.Module, dist: Dist, *, sync_batchnorm: bool = False) -> nn.Module:
    """`model` (already on dist.device) in DistributedDataParallel when there is more than one process."""
    if not dist.enabled:
        return model
    if sync_batchnorm:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    if dist.device.type != "cuda":
        return nn.parallel.DistributedDataParallel(model)
    # Built on a side stream, as PyTorch's CUDA-graph notes ask of DDP for whole-step capture
    # (fast_step.StepRunner); harmless for eager training.
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        ddp = nn.parallel.DistributedDataParallel(model, device_ids=[dist.device.index],
                                                  output_device=dist.device.index)
    torch.cuda.current_stream().wait_stream(stream)
    return ddp


def shard(n: int, dist: Dist, *, epoch: int, seed: int, shuffle: bool = True, drop_last: bool = True,
          batch_size: int) -> torch.Tensor:
    """The example indices (int64, CPU) this rank visits this epoch, in order, batch after batch.

    As DistributedSampler: one permutation of range(n) from a generator seeded with seed + epoch (the
    same on every rank), trimmed (drop_last) or padded by wrapping around to a multiple of
    world_size * batch_size. Then rank r takes the r-th batch of every group of world_size batches, so
    the ranks' step-s batches, concatenated in rank order, are exactly the step-s batch of one process
    with batch world_size * batch_size: the same examples, which is what makes N processes train like
    one (up to float order). DistributedSampler deals single examples round-robin instead; that gives
    the same examples per step but in another order, which would make equality checks (and any
    per-position randomness) depend on the world size. With world_size 1 this is the plain epoch order.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if shuffle:
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed + epoch))
    else:
        order = torch.arange(n)
    group = dist.world_size * batch_size
    if drop_last:
        order = order[: n // group * group]
    elif n % group:
        if n == 0:
            return order
        pad = group - n % group
        order = torch.cat([order, order.repeat(pad // n + 1)[:pad]])
    return order.view(-1, dist.world_size, batch_size)[:, dist.rank].reshape(-1)


def all_reduce_sum(t: torch.Tensor, dist: Dist) -> torch.Tensor:
    """Sum `t` over all ranks, in place; returns `t` (unchanged with one process)."""
    if dist.enabled:
        tdist.all_reduce(t, op=tdist.ReduceOp.SUM)
    return t


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _child(rank: int, nprocs: int, port: int, backend: str, threads: int, fn, args) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(nprocs), LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE=str(nprocs),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), **{_BACKEND_ENV: backend})
    torch.set_num_threads(threads)  # as torchrun does: N processes must not each take every core
    fn(*args)


def launch(fn, nprocs: int, *args, backend: str = "gloo") -> None:
    """Run `fn(*args)` in `nprocs` fresh processes on this machine, each with torchrun's environment set
    so that `fn` can call `setup()`. `backend` is the process group's backend for processes on the CPU;
    processes on CUDA always use nccl. `fn` must be picklable (a module-level function). An exception
    in a child is raised here (torch's ProcessRaisedException, carrying the child's traceback)."""
    if nprocs < 1:
        raise ValueError(f"nprocs must be >= 1, got {nprocs}")
    threads = max(1, (os.cpu_count() or 1) // nprocs)
    torch.multiprocessing.spawn(_child, args=(nprocs, _free_port(), backend, threads, fn, args),
                                nprocs=nprocs, join=True)


__all__ = ["Dist", "all_reduce_sum", "cleanup", "launch", "setup", "shard", "wrap"]
