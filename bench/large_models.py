"""Analysis cost of very large transformers (GPT-3 175B, Llama-2 70B, ...): archcalc's whole
process against the floor of every PyTorch-based counter (`import torch`) and against torchinfo and
fvcore on the same architecture, all measured in this same run.

    python bench/large_models.py                         # GPT-3 175B, Llama-2 70B, LLaMA 7B, GPT-2 small
    python bench/large_models.py --quick                 # GPT-2 small and GPT-3 175B, 3 repeats
    python bench/large_models.py --models gpt3_175b      # any of the bundled transformer specs

Every measurement of a whole process runs in a fresh wrapper process (`python -c ...`) that starts
the measured command and reads `getrusage(RUSAGE_CHILDREN).ru_maxrss`, so that the peak resident
memory reported is the measured process's own, not this script's. archcalc and `import torch` are
run several times (median wall time, largest peak); each peer 3 times
(--peer-repeats; once with --quick, as the peers are slow).

The peers get archcalc's own PyTorch module for the spec (`archcalc.torch.build`), the same
architecture, built on the meta device (no weights allocated):

* torchinfo  `summary(model, input_data=[x], device="meta", verbose=0)`: `total_mult_adds`
* fvcore     `FlopCountAnalysis(model, (x,)).total()` (one "flop" per multiply-accumulate)

If a peer fails on the meta device, it is run again on a scaled-down width (the spec's `d` and
`ffn` divided by --width-div, same depth) on the CPU, and compared with archcalc's MACs for that
same scaled-down spec; the table says which. A peer that runs past --timeout shows as "did not
finish"; one that raises shows the first line of its error. The peer's wall time and peak memory
are its whole process (import torch + building the module + the tool); the "tool s" column is the
tool call alone.

No timing is hard-coded: every ratio is against figures measured in this run.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import archcalc  # noqa: E402  (light: never imports torch)

SPECS = ROOT / "specs" / "transformers"
MODELS = ["gpt3_175b", "llama2_70b", "llama_7b", "gpt2_small"]
QUICK = ["gpt2_small", "gpt3_175b"]
WIDTH_VARS = ("d", "ffn")  # the vars scaled down for the fallback; depth, heads, context stay

# Runs one command, waits for it (killing it after a timeout) and reports its wall time and the
# peak RSS of that child alone (RUSAGE_CHILDREN of a process that has no other children).
WRAPPER = r"""
import json, resource, subprocess, sys, time
argv, timeout = json.loads(sys.argv[1]), float(sys.argv[2])
start = time.perf_counter()
try:
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    rc, out, err = p.returncode, p.stdout, p.stderr
except subprocess.TimeoutExpired as exc:  # run() has killed and reaped the child
    rc, out, err = None, exc.stdout or b"", exc.stderr or b""
wall = time.perf_counter() - start
rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
kib = rss / 1024 if sys.platform == "darwin" else rss  # bytes on macOS, KiB on Linux
print(json.dumps({"rc": rc, "wall": wall, "rss_kib": kib,
                  "stdout": out.decode(errors="replace"), "stderr": err.decode(errors="replace")[-4000:]}))
"""


def run_measured(argv: list[str], timeout: float) -> dict:
    """Wall seconds and peak RSS (KiB) of one run of `argv` in a fresh wrapper process.
    rc is None when the command ran past `timeout` (and was killed)."""
    p = subprocess.run([sys.executable, "-c", WRAPPER, json.dumps(argv), str(timeout)],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout + 60)
    if p.returncode != 0:
        raise RuntimeError("measuring wrapper failed: " + p.stderr.decode(errors="replace")[-500:])
    return json.loads(p.stdout)


def first_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    line = lines[-1] if lines else "no output"  # a traceback's last line is the exception
    return line if len(line) <= 100 else line[:97] + "..."


def repeated(argv: list[str], repeats: int, timeout: float) -> dict:
    """Median wall time and largest peak RSS over `repeats` runs, after one warm-up run."""
    warm = run_measured(argv, timeout)
    if warm["rc"] != 0:
        return {"error": "did not finish" if warm["rc"] is None else first_line(warm["stderr"])}
    runs = [run_measured(argv, timeout) for _ in range(repeats)]
    bad = [r for r in runs if r["rc"] != 0]
    if bad:
        return {"error": "did not finish" if bad[0]["rc"] is None else first_line(bad[0]["stderr"])}
    return {"wall": statistics.median(r["wall"] for r in runs),
            "rss_mib": max(r["rss_kib"] for r in runs) / 1024, "stdout": runs[-1]["stdout"]}


def inprocess_seconds(path, repeats: int = 3, bindings: dict | None = None) -> float:
    """Median time of `archcalc.analyze(path)` (read + parse + analyse) in this process."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        report = archcalc.analyze(path, bindings=bindings)
        times.append(time.perf_counter() - start)
        del report
    return statistics.median(times)


def scaled_bindings(path, div: int) -> dict:
    """The spec's width vars divided by `div` (depth, heads, context unchanged)."""
    import yaml  # archcalc's own dependency
    doc = yaml.safe_load(Path(path).read_text())
    found = doc.get("vars", {}) or {}
    return {k: found[k] // div for k in WIDTH_VARS if isinstance(found.get(k), int)}


# --- a peer, in its own process --------------------------------------------------------------

def peer_child(tool: str, spec: str, device: str, bindings: dict) -> None:
    """Runs in the measured subprocess: import torch, build the spec, run the tool, print a result
    line. Phases are timed from inside; the figure is the tool's own total."""
    import warnings
    warnings.simplefilter("ignore")
    out = {}
    start = time.perf_counter()
    import torch  # noqa: F401
    from archcalc.api import load_graph
    from archcalc.torch.build import build, example_input
    out["import_s"] = time.perf_counter() - start
    try:
        graph = load_graph(spec, bindings=bindings or None)
        t = time.perf_counter()
        model = build(graph, device=device).eval()
        x = example_input(graph, device=device)
        out["build_s"] = time.perf_counter() - t
        t = time.perf_counter()
        if tool == "torchinfo":
            import torchinfo
            stats = torchinfo.summary(model, input_data=[x], device=device, verbose=0, mode="eval")
            out["figure"], out["params"] = int(stats.total_mult_adds), int(stats.total_params)
        elif tool == "fvcore":
            from fvcore.nn import FlopCountAnalysis
            analysis = FlopCountAnalysis(model, (x,))
            analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
            out["figure"] = int(analysis.total())
            out["skipped"] = dict(sorted(analysis.unsupported_ops().items()))
        else:
            raise ValueError(f"unknown tool {tool}")
        out["tool_s"] = time.perf_counter() - t
    except Exception as exc:  # noqa: BLE001 - a peer's failure is a result to report
        text = " ".join(f"{type(exc).__name__}: {exc}".split())
        out["error"] = text if len(text) <= 100 else text[:97] + "..."
    print("RESULT " + json.dumps(out), flush=True)


def run_peer_once(tool: str, spec: Path, device: str, bindings: dict, timeout: float) -> dict:
    argv = [sys.executable, str(Path(__file__).resolve()), "--peer", tool, str(spec), "--device", device,
            "--bindings", json.dumps(bindings)]
    got = run_measured(argv, timeout)
    measured = {"wall": got["wall"], "rss_mib": got["rss_kib"] / 1024}
    if got["rc"] is None:
        return {"error": f"did not finish in {timeout:.0f} s", **measured}
    lines = [ln for ln in got["stdout"].splitlines() if ln.startswith("RESULT ")]
    if not lines:
        return {"error": f"exit {got['rc']}: {first_line(got['stderr'])}", **measured}
    return {**json.loads(lines[-1][7:]), **measured}


def run_peer(tool: str, spec: Path, device: str, bindings: dict, timeout: float, repeats: int) -> dict:
    """Median wall time and phase times, largest peak RSS over `repeats` runs (stops at the first
    failure, which is then the result)."""
    runs = []
    for _ in range(repeats):
        got = run_peer_once(tool, spec, device, bindings, timeout)
        if "error" in got:
            return got
        runs.append(got)
    out = dict(runs[-1])
    for key in ("wall", "import_s", "build_s", "tool_s"):
        out[key] = statistics.median(r[key] for r in runs)
    out["rss_mib"] = max(r["rss_mib"] for r in runs)
    return out


# --- formatting ------------------------------------------------------------------------------

def table(headers, rows) -> str:
    """A Markdown table, the first two columns left-aligned, the others right-aligned."""
    sep = ["---", "---"] + ["---:"] * (len(headers) - 2)
    out = ["| " + " | ".join(headers) + " |", "| " + " | ".join(sep) + " |"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def row(label, mode, wall=None, rss=None, tool_s=None, figure=None, ref_macs=None, base=None):
    """One table row; `base` is archcalc's whole-process {wall, rss_mib} measured in this run."""
    def f(x, fmt):
        return "—" if x is None else format(x, fmt)
    ratio = f"{figure / ref_macs:.4f}" if figure is not None and ref_macs else "—"
    twall = f"{wall / base['wall']:.1f}x" if wall is not None and base else "—"
    trss = f"{rss / base['rss_mib']:.1f}x" if rss is not None and base else "—"
    return [label, mode, f(wall, ".3f"), f(rss, ".0f"), f(tool_s, ".3f"), f(figure, ","), ratio, twall, trss]


HEADERS = ["tool", "mode", "wall s", "peak MiB", "tool s", "figure (MACs)", "figure / archcalc",
           "wall / archcalc", "peak / archcalc"]


def versions() -> str:
    import importlib.metadata
    parts = [f"Python {platform.python_version()}"]
    for dist in ("torch", "torchinfo", "fvcore"):
        try:
            parts.append(f"{dist} {importlib.metadata.version(dist)}")
        except importlib.metadata.PackageNotFoundError:
            parts.append(f"{dist} not installed")
    parts.append(f"archcalc {archcalc.__version__}")
    return ", ".join(parts)


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


# --- one model -------------------------------------------------------------------------------

def one_model(name: str, opts) -> str:
    spec = SPECS / f"{name}.yaml"
    report = archcalc.analyze(spec)
    macs, params = report.totals.macs, report.totals.params
    py = sys.executable

    ours = repeated([py, "-m", "archcalc", "analyze", str(spec), "--json"], opts.repeats, opts.timeout)
    rows = []
    if "error" in ours:
        rows.append(["archcalc analyze --json", "whole process", f"failed: {ours['error']}"] + [""] * 6)
        base = None
    else:
        cli_macs = json.loads(ours["stdout"])["totals"]["macs"]
        base = ours
        rows.append(row("archcalc analyze --json", f"whole process, median of {opts.repeats}",
                        ours["wall"], ours["rss_mib"], None, cli_macs, macs, base))
    rows.append(row("archcalc.analyze()", f"in process, median of {opts.repeats}",
                    None, None, inprocess_seconds(spec, opts.repeats), macs, macs, None))
    # Measured again for every model, so that its ratios come from the same stretch of the run.
    floor = repeated([py, "-c", "import torch"], opts.repeats, opts.timeout)
    if "error" in floor:
        rows.append(["python -c \"import torch\"", "floor", f"n/a ({floor['error']})"] + [""] * 6)
    else:
        rows.append(row("python -c \"import torch\"", f"floor, median of {opts.repeats}",
                        floor["wall"], floor["rss_mib"], None, None, None, base))

    notes = []
    scaled = scaled_bindings(spec, opts.width_div)
    for tool in () if opts.no_peers else ("torchinfo", "fvcore"):
        attempts = [] if opts.scaled else [("meta", {})]
        attempts.append(("cpu", scaled))
        for device, bindings in attempts:
            got = run_peer(tool, spec, device, bindings, opts.timeout, opts.peer_repeats)
            if bindings:
                ref = archcalc.analyze(spec, bindings=bindings).totals.macs
                mode = "cpu, " + ", ".join(f"{k}={v}" for k, v in bindings.items()) + f" (1/{opts.width_div} width)"
            else:
                ref, mode = macs, "meta device, full size"
            if "error" in got:
                rows.append([tool, mode, f"{got['wall']:.3f}", f"{got['rss_mib']:.0f}", "—",
                             f"n/a ({got['error']})", "—", "—", "—"])
                if device == "meta" and "did not finish" in got["error"]:
                    break  # a smaller width would not tell more than "too slow"
                continue
            rows.append(row(tool, mode, got["wall"], got["rss_mib"], got.get("tool_s"), got["figure"], ref, base))
            phases = f"import torch {got['import_s']:.2f} s, build {got['build_s']:.2f} s, tool {got['tool_s']:.2f} s"
            if tool == "torchinfo":
                notes.append(f"torchinfo ({mode}): total_params {got['params']:,} (archcalc "
                             f"{archcalc.analyze(spec, bindings=bindings or None).totals.params:,}); {phases}.")
            else:
                skipped = ", ".join(f"{op} x{k}" for op, k in got["skipped"].items()) or "none"
                notes.append(f"fvcore ({mode}): operators it met and did not count: {skipped}; {phases}.")
            break

    head = (f"### {name}: {params:,} params, {macs:,} MACs, {len(report.layers):,} layers "
            f"(input {list(report.input_shape)}, batch 1)")
    return "\n".join([head, "", table(HEADERS, rows), ""] + [f"- {n}" for n in notes] + [""])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="GPT-2 small and GPT-3 175B only, 3 repeats")
    parser.add_argument("--models", nargs="+", metavar="NAME",
                        help=f"specs/transformers names (default: {' '.join(MODELS)})")
    parser.add_argument("--repeats", type=int, help="runs of archcalc / import torch (default 5, --quick 3)")
    parser.add_argument("--peer-repeats", type=int, help="runs of each peer (default 3, --quick 1)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per measured process")
    parser.add_argument("--width-div", type=int, default=16, help="width divisor of the fallback")
    parser.add_argument("--scaled", action="store_true", help="run the peers on the scaled-down width only")
    parser.add_argument("--no-peers", action="store_true", help="archcalc and import torch only")
    # internal: one peer run, in the measured subprocess
    parser.add_argument("--peer", nargs=2, metavar=("TOOL", "SPEC"), help=argparse.SUPPRESS)
    parser.add_argument("--device", default="meta", help=argparse.SUPPRESS)
    parser.add_argument("--bindings", default="{}", help=argparse.SUPPRESS)
    opts = parser.parse_args(argv)
    if opts.peer:
        peer_child(opts.peer[0], opts.peer[1], opts.device, json.loads(opts.bindings))
        return
    names = opts.models or (QUICK if opts.quick else MODELS)
    unknown = [n for n in names if not (SPECS / f"{n}.yaml").exists()]
    if unknown:
        parser.error(f"no spec specs/transformers/<name>.yaml for: {', '.join(unknown)}")
    opts.repeats = opts.repeats or (3 if opts.quick else 5)
    opts.peer_repeats = opts.peer_repeats or (1 if opts.quick else 3)

    print(f"{cpu_name()}; {versions()}\n")
    peers_note = ("peers skipped (--no-peers)" if opts.no_peers
                  else f"peers: torchinfo and fvcore, median of {opts.peer_repeats}")
    print(f"wall s: median; peak MiB: largest peak RSS of the process itself; {peers_note}.\n")
    for name in names:
        print(one_model(name, opts), flush=True)


if __name__ == "__main__":
    main()
