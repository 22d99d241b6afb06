"""How long `archcalc` takes to start, against the floor of every Python program (`python -c pass`).

    python bench/startup.py             # 15 interleaved rounds
    python bench/startup.py --quick     # 3 rounds
    python bench/startup.py --rounds 31 # (tests/test_bench_scripts.py runs one)

Each command runs as its own process, the way a user's shell runs it: the console script that
`pip install archcalc` writes (pyproject's [project.scripts], run by this Python), with .pyc files
written (PYTHONDONTWRITEBYTECODE is removed from the children's environment; a first untimed
round writes them and warms the file cache). The commands are interleaved, round after round, so a
load that comes and goes on a shared machine falls on all of them alike; each figure is the median
over the rounds, and the ratios (command / `python -c pass`) are taken within this one run, never
against times measured another day. Targets (issue 14 point 8): `analyze resnet50 --json` <= 2x,
the table <= 3x. `--help`, `check` and `memory` are printed for information, and so are `import
typer` alone and the same two `analyze` commands run through typer (archcalc.cli:main, the entry
point before archcalc.__main__'s fast path): why `analyze SPEC` skips typer. Each line gives the
median wall time and the child's CPU time (user + system, from getrusage): on a machine shared
with other jobs the CPU ratio is the steadier one. The exit code is 0 whatever the figures (a
bench, not a test).
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESNET50 = str(ROOT / "specs" / "zoo" / "resnet50.yaml")
HOMEWORK = ROOT / "specs" / "homework"
TARGETS = {"analyze --json": 2.0, "analyze (table)": 3.0}


def entry_point() -> str:
    """The console script's `module:function`, read from pyproject.toml (archcalc.__main__:main)."""
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    section = text.split("[project.scripts]", 1)[1].split("\n[", 1)[0]
    for line in section.splitlines():
        name, _, value = line.partition("=")
        if name.strip() == "archcalc":
            return value.strip().strip('"')
    raise SystemExit("pyproject.toml names no `archcalc` console script")


def script(target: str) -> str:
    """What pip's console script for `target` runs (its launcher, written out as -c code)."""
    module, _, function = target.partition(":")
    return (f"import re\nimport sys\nfrom {module} import {function}\n"
            "sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])\n"
            f"sys.exit({function}())\n")


def commands() -> list[tuple[str, list[str], bool]]:
    """(label, argv, has a target). argv[0] is this Python; archcalc's commands run the console
    script's code, so what is measured is what `archcalc ...` costs, less the shell's own exec."""
    py = sys.executable
    cli = [py, "-c", script(entry_point())]
    typer_cli = [py, "-c", script("archcalc.cli:main")]  # every command through typer (the entry point before)
    return [
        ("python -c pass", [py, "-c", "pass"], False),
        ("analyze --json", cli + ["analyze", RESNET50, "--json"], True),
        ("analyze (table)", cli + ["analyze", RESNET50], True),
        ("--help", cli + ["--help"], False),
        ("check", cli + ["check", str(HOMEWORK / "conv_pool_fc.yaml"),
                         str(HOMEWORK / "conv_pool_fc.answers.yaml")], False),
        ("memory", cli + ["memory", RESNET50], False),
        # why `analyze` runs without typer: typer alone, and the same two commands through it
        ("import typer", [py, "-c", "import typer"], False),
        ("json via typer", typer_cli + ["analyze", RESNET50, "--json"], False),
        ("table via typer", typer_cli + ["analyze", RESNET50], False),
    ]


def child_env() -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["COLUMNS"] = "120"  # the table's layout is the same in every round
    env.setdefault("PYTHONHASHSEED", "0")
    return env


def _children_cpu() -> float:
    try:
        import resource
    except ImportError:  # Windows: wall time only
        return float("nan")
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_once(argv: list[str], env: dict) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds of the child, exit code) of one run."""
    cpu = _children_cpu()
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    return wall, _children_cpu() - cpu, done.returncode


def measure(cmds, rounds: int):
    """Every command once per round, in the same order; the first (untimed) round writes the .pyc.
    Returns {label: [wall, ...]}, {label: [cpu, ...]}, {label: exit code}."""
    env = child_env()
    codes = {label: run_once(argv, env)[2] for label, argv, _ in cmds}
    walls: dict[str, list[float]] = {label: [] for label, _, _ in cmds}
    cpus: dict[str, list[float]] = {label: [] for label, _, _ in cmds}
    for _ in range(rounds):
        for label, argv, _ in cmds:
            wall, cpu, _code = run_once(argv, env)
            walls[label].append(wall)
            cpus[label].append(cpu)
    return walls, cpus, codes


def ratios(times: dict) -> dict:
    """median of each command / median of `python -c pass`."""
    floor = statistics.median(times["python -c pass"])
    return {label: statistics.median(values) / floor for label, values in times.items()}


def report(cmds, walls, cpus, codes) -> str:
    wall_x, cpu_x = ratios(walls), ratios(cpus)
    lines = [f"{'command':<18}{'wall s':>8}{'x pass':>8}{'cpu s':>8}{'x pass':>8}{'target':>9}  verdict (wall)"]
    for label, _, has_target in cmds:
        target = f"<= {TARGETS[label]:g}x" if has_target else ""
        verdict = ("met" if wall_x[label] <= TARGETS[label] else "NOT met") if has_target else ""
        if codes[label] not in (0, 1):  # check exits 1 when an answer is wrong: still a run
            verdict += f" (exit {codes[label]})"
        lines.append(f"{label:<18}{statistics.median(walls[label]):>8.3f}{wall_x[label]:>7.2f}x"
                     f"{statistics.median(cpus[label]):>8.3f}{cpu_x[label]:>7.2f}x{target:>9}  {verdict}")
    lines.append(f"\nratios (median wall time / python -c pass): json {wall_x['analyze --json']:.2f}x (target <= 2x), "
                 f"table {wall_x['analyze (table)']:.2f}x (target <= 3x)")
    lines.append(f"ratios of CPU time (steadier on a loaded machine): json {cpu_x['analyze --json']:.2f}x, "
                 f"table {cpu_x['analyze (table)']:.2f}x")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 rounds")
    parser.add_argument("--rounds", type=int, default=15)
    opts = parser.parse_args(argv)
    rounds = 3 if opts.quick else max(1, opts.rounds)
    cmds = commands()
    print(f"Python {platform.python_version()} ({sys.executable}), {os.cpu_count()} CPUs, "
          f"entry point {entry_point()}; median of {rounds} interleaved rounds, .pyc written")
    walls, cpus, codes = measure(cmds, rounds)
    print(report(cmds, walls, cpus, codes))
    return 0


if __name__ == "__main__":
    main()
    sys.exit(0)
