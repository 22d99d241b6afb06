"""Training throughput: archcalc's training step (`archcalc.torch.fast_step.StepRunner` on a model
built from a spec) against a hand-written, idiomatic PyTorch loop on the same model, batch and
precision, in the same process, with synthetic data already on the device.

    python bench/train_throughput.py --device cuda            # the issue's four cases
    python bench/train_throughput.py --quick                  # a CPU-sized check that it runs
    python bench/train_throughput.py --cases lenet5,cnn3 --steps 200

The hand-written loop is eager: zero_grad(set_to_none=True), forward and loss under autocast,
backward, optimizer.step(). Both loops use the same optimizer kind (SGD with momentum by default;
--optimizer adamw gives archcalc a capturable AdamW and the hand-written loop a plain one, as a user
would write it), cudnn.benchmark on, channels_last where the case asks. Warm-up steps (archcalc's
include its graph capture) are not timed; each loop is timed --repeats times, alternating, and the
best is kept; CUDA work is synchronised before the clock is read. Issue 5 measured on an H100 (eager
hand-written loop / whole step as one CUDA graph, images/s): LeNet-5 263k / 967k, ResNet-18 at 32x32
46k / 136k, 3-conv CNN bf16 channels_last 157k / 212k; ResNet-50 224 bf16 channels_last 4.0k (eager).
Targets: archcalc >= 2.5x the hand-written loop on the lecture-sized nets, >= 1.0x on ResNet-50.
"""
from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from torch.nn import functional as F  # noqa: E402

import archcalc  # noqa: E402
from archcalc.torch import build  # noqa: E402
from archcalc.torch.fast_step import PRECISIONS, StepRunner  # noqa: E402

LENET5 = """
name: lenet5
input: [1, 28, 28]
layers:
  - conv: {out: 6, kernel: 5, padding: 2}
  - tanh
  - avgpool: 2
  - conv: {out: 16, kernel: 5}
  - tanh
  - avgpool: 2
  - flatten
  - linear: 120
  - tanh
  - linear: 84
  - tanh
  - linear: 10
"""

# A lecture-sized CNN: three conv / batch norm / ReLU / 2x2 max-pool stages on 32x32 colour images.
CNN3 = """
name: cnn3
input: [3, 32, 32]
layers:
  - conv: {out: 32, kernel: 3, padding: 1, bias: false}
  - batchnorm
  - relu
  - maxpool: 2
  - conv: {out: 64, kernel: 3, padding: 1, bias: false}
  - batchnorm
  - relu
  - maxpool: 2
  - conv: {out: 128, kernel: 3, padding: 1, bias: false}
  - batchnorm
  - relu
  - maxpool: 2
  - global_avgpool
  - flatten
  - linear: 10
"""

# name: (spec text or path, input override, batch, precision, channels_last, target ratio)
CASES = {
    "lenet5": (LENET5, None, 512, "fp32", False, 2.5),
    "cnn3": (CNN3, None, 512, "bf16", True, 2.5),
    "resnet18": (ROOT / "specs" / "zoo" / "resnet18.yaml", (3, 32, 32), 512, "fp32", False, 2.5),
    "resnet50": (ROOT / "specs" / "zoo" / "resnet50.yaml", None, 256, "bf16", True, 1.0),
}


def load(spec, input_shape):
    if isinstance(spec, Path):
        return archcalc.load_spec(spec, input_shape=input_shape)
    return archcalc.parse_spec(spec, input_shape=input_shape)


def make_optimizer(name, params, capturable):
    if name == "sgd":
        return torch.optim.SGD(params, lr=1e-3, momentum=0.9)
    return torch.optim.AdamW(params, lr=1e-4, capturable=capturable)  # StepRunner drops it off-GPU


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def seconds(step, steps, device):
    sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    return time.perf_counter() - start


def run_case(name, opts, device):
    spec, input_shape, batch, precision, channels_last, target = CASES[name]
    if opts.quick and device.type == "cpu":
        batch = max(8, batch // 32)  # a CPU cannot do the GPU batch sizes in a quick run
    graph = load(spec, input_shape)
    classes = archcalc.analyze(graph).layers[-1].output_shape[-1]
    torch.manual_seed(0)
    theirs = build(graph, device=device).train()
    ours = copy.deepcopy(theirs)  # the same initial weights
    layout = torch.channels_last if channels_last else torch.contiguous_format
    x = torch.randn(batch, *graph.input_shape, device=device).contiguous(memory_format=layout)
    y = torch.randint(0, classes, (batch,), device=device)
    dtype = PRECISIONS[precision]

    # The hand-written loop, as the PyTorch tutorials write it.
    theirs.to(memory_format=layout)
    opt = make_optimizer(opts.optimizer, theirs.parameters(), capturable=False)

    def hand_written():  # no case uses fp16, so no GradScaler
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            loss = F.cross_entropy(theirs(x), y)
        loss.backward()
        opt.step()

    runner = StepRunner(ours, F.cross_entropy, make_optimizer(opts.optimizer, ours.parameters(), capturable=True),
                        device=device, precision=precision, channels_last=channels_last, cuda_graph=opts.cuda_graph)
    losses = []

    def archcalc_step():
        losses.append(runner.step(x, y))

    seconds(hand_written, opts.warmup, device)
    seconds(archcalc_step, opts.warmup, device)
    best = {"theirs": float("inf"), "ours": float("inf")}
    for _ in range(opts.repeats):
        best["theirs"] = min(best["theirs"], seconds(hand_written, opts.steps, device))
        losses.clear()
        best["ours"] = min(best["ours"], seconds(archcalc_step, opts.steps, device))
        if not torch.isfinite(torch.stack(losses)).all():
            raise RuntimeError(f"{name}: archcalc's loss is not finite")
    rate = {k: opts.steps * batch / v for k, v in best.items()}
    mode = runner.mode if runner.mode != "eager" else f"eager ({runner.reason})"
    shape = "x".join(map(str, graph.input_shape))
    layout_name = "channels_last" if channels_last else "contiguous"
    print(f"{name:<10}{shape:<10}{batch:>6}  {precision:<6}{layout_name:<15}{rate['theirs']:>16,.0f}"
          f"{rate['ours']:>16,.0f}{rate['ours'] / rate['theirs']:>7.2f}x{target:>7.1f}x  {mode}", flush=True)
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps")
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, from {', '.join(CASES)}")
    parser.add_argument("--steps", type=int, help="timed steps per repeat (default 100 on CUDA, 5 on CPU)")
    parser.add_argument("--warmup", type=int, help="untimed steps first (default 20 on CUDA, 2 on CPU)")
    parser.add_argument("--repeats", type=int, help="timed repeats, best kept (default 3; 2 with --quick)")
    parser.add_argument("--optimizer", choices=["sgd", "adamw"], default="sgd")
    parser.add_argument("--cuda-graph", choices=["auto", "on", "off"], default="auto",
                        help="archcalc's CUDA-graph setting (off: both loops eager, to see the rest of the overhead)")
    parser.add_argument("--quick", action="store_true", help="few steps; on CPU also batches / 32")
    opts = parser.parse_args()
    cases = [c.strip() for c in opts.cases.split(",") if c.strip()]
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        parser.error(f"unknown case(s) {', '.join(unknown)}; choose from {', '.join(CASES)}")
    if opts.device == "auto":
        opts.device = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    device = torch.device(opts.device)
    gpu = device.type == "cuda"
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    if opts.steps is None:
        opts.steps = (20 if opts.quick else 100) if gpu else (3 if opts.quick else 5)
    opts.warmup = opts.warmup if opts.warmup is not None else (20 if gpu else 2)  # >= StepRunner's warm-up + capture
    opts.repeats = opts.repeats or (2 if opts.quick else 3)
    torch.backends.cudnn.benchmark = True  # fixed shapes: both loops get the fastest kernels

    card = f" ({torch.cuda.get_device_name(device)})" if gpu else ""
    print(f"device {device}{card}, torch {torch.__version__}, optimizer {opts.optimizer}, "
          f"{opts.steps} timed steps x best of {opts.repeats}, {opts.warmup} warm-up steps")
    if not gpu:
        print("not a CUDA device: archcalc runs eagerly here, so the ratio only shows its overhead (~1.0x); "
              "the targets are for CUDA")
    print(f"\n{'case':<10}{'input':<10}{'batch':>6}  {'prec':<6}{'layout':<15}{'hand img/s':>16}"
          f"{'archcalc img/s':>16}{'ratio':>8}{'target':>8}  archcalc mode")
    for name in cases:
        run_case(name, opts, device)
        if gpu:
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
