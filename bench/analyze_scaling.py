"""How analysis time grows with network size, and how a whole `archcalc analyze` process compares
with merely importing torch (the floor of every PyTorch-based counter).

    python bench/analyze_scaling.py            # all measurements
    python bench/analyze_scaling.py --quick    # chains up to 10k layers, fewer repeats

Prints, per generated network, the time to parse + analyse and the cost per layer; the cost per
layer stays flat when time grows linearly. Then the whole-process times measured in this same run,
and their ratio.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from archcalc import analyze_text  # noqa: E402


def chain(n: int) -> str:
    """n layers: conv / batchnorm / relu repeated, written out one entry per layer."""
    body = ["- conv: {out: 16, kernel: 3, padding: 1}", "- batchnorm", "- relu"]
    lines = ["input: [16, 32, 32]", "layers:"] + ["  " + body[i % 3] for i in range(n)]
    return "\n".join(lines) + "\n"


def residual(blocks: int) -> str:
    """A deep residual graph: `blocks` copies of a 7-layer block with a skip connection."""
    return f"""
input: [16, 32, 32]
blocks:
  res:
    layers:
      - conv: {{out: 16, kernel: 3, padding: 1, bias: false}}
      - batchnorm
      - relu
      - conv: {{out: 16, kernel: 3, padding: 1, bias: false}}
      - {{name: main, batchnorm: {{}}}}
      - {{add: {{}}, from: [main, input]}}
      - relu
layers:
  - {{res: {{}}, repeat: {blocks}}}
"""


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
        del result  # freeing a 100k-layer report is not part of analysing it
    return min(times)


def process_time(args: list[str], repeats: int) -> float:
    def run():
        subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    run()  # warm the file cache
    return statistics.median(best_of(run, 1) for _ in range(repeats))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    opts = parser.parse_args()
    sizes = [1_000, 10_000] if opts.quick else [1_000, 10_000, 100_000]
    repeats = 2 if opts.quick else 3

    print("in-process parse + analyse (best of %d)" % repeats)
    print(f"{'network':<28}{'layers':>9}{'seconds':>10}{'us/layer':>10}{'vs 1k':>8}")
    base = None
    cases = [(f"chain {n:,}", chain(n)) for n in sizes]
    cases.append(("residual, 1,000 blocks", residual(1000)))
    for label, text in cases:
        n = len(analyze_text(text).layers)
        seconds = best_of(lambda: analyze_text(text), repeats)
        per = seconds / n * 1e6
        base = base or per
        print(f"{label:<28}{n:>9,}{seconds:>10.3f}{per:>10.1f}{per / base:>7.2f}x")

    print("\nwhole process (median of %d, same machine, same run)" % (5 if not opts.quick else 3))
    py = sys.executable
    runs = 3 if opts.quick else 5
    spec = str(ROOT / "specs" / "zoo" / "resnet50.yaml")
    ours = process_time([py, "-m", "archcalc", "analyze", spec, "--json"], runs)
    print(f"{'archcalc analyze resnet50 --json':<44}{ours:>8.3f} s")
    ours_table = process_time([py, "-m", "archcalc", "analyze", spec], runs)
    print(f"{'archcalc analyze resnet50 (table)':<44}{ours_table:>8.3f} s")
    try:
        torch_import = process_time([py, "-c", "import torch"], runs)
    except subprocess.CalledProcessError:
        print("torch is not installed: no baseline")
        return
    label = 'python -c "import torch" (baseline)'
    print(f"{label:<44}{torch_import:>8.3f} s")
    print(f"\nratio archcalc / import torch: json {ours / torch_import:.3f}, table {ours_table / torch_import:.3f} "
          f"(target <= 0.25)")
    try:
        import torchinfo  # noqa: F401
    except ImportError:
        print("torchinfo is not installed (pip install torchinfo): no peer measured")
        return
    # torchvision may be missing; the same network built from our spec is what torchinfo walks then.
    code = ("import torch, torchinfo\n"
            "try:\n    import torchvision; model = torchvision.models.resnet50()\n"
            "except Exception:\n    from archcalc.torch import build; model = build(%r)\n"
            "torchinfo.summary(model, (1, 3, 224, 224), verbose=0)\n" % spec)
    peer = process_time([py, "-c", code], runs)
    print(f"{'torchinfo.summary(resnet50), whole process':<44}{peer:>8.3f} s  -> archcalc (table) is "
          f"{peer / ours_table:.1f}x faster, (json) {peer / ours:.1f}x")

if __name__ == "__main__":
    main()
