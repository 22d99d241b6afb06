"""Running archcalc on hostile input the way a user's shell does, and the checks every case makes.

Each case runs `python -m archcalc ...` in its own process, under a wall-clock limit and an
address-space limit (RLIMIT_AS), so that a hang or a memory blow-up fails the test instead of the
machine. The checks are the issue-10 guarantees: exit code 2, exactly one line on stderr, located
(`FILE:LINE:COL: error: ...`) where the mistake is in a file, no traceback, and nothing written
outside the folders the user named.
"""
from __future__ import annotations

import os
import re
import resource
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

#: Address space for a command that must not import torch (the analysis path): generous for
#: Python + sympy, far below what the bombs would take.
ANALYSIS_MEMORY_MB = 1024
#: Address space for torch commands (torch maps large regions at import).
TORCH_MEMORY_MB = 8192
LOCATED = re.compile(r"^.+:\d+:\d+: error: ")


@dataclass
class Run:
    rc: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def lines(self) -> list[str]:
        return self.stderr.strip().splitlines()


def run_cli(args, *, cwd=None, stdin: str | None = None, timeout: float = 30,
            memory_mb: int = ANALYSIS_MEMORY_MB, env: dict | None = None, file_size_bytes: int | None = None) -> Run:
    """Run `archcalc ARGS` in a fresh process. A run past `timeout` seconds fails the test (the
    process is killed first), as does one that dies of a signal. `file_size_bytes` caps every file
    the child writes (RLIMIT_FSIZE, with SIGXFSZ ignored so a write past it fails with EFBIG, as on
    a full disk)."""
    def limit():  # in the child, before exec
        cap = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
        if file_size_bytes is not None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an ignored signal stays ignored across exec
            resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_bytes, file_size_bytes))

    full_env = {**os.environ, "COLUMNS": "120", "PYTHONHASHSEED": "0", **(env or {})}
    full_env.pop("PYTHONDONTWRITEBYTECODE", None)
    if file_size_bytes is not None:  # CPython would write truncated .pyc files past the cap (a short write)
        full_env["PYTHONDONTWRITEBYTECODE"] = "1"
    start = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, "-m", "archcalc", *map(str, args)], cwd=cwd,
                              input=stdin if stdin is not None else "", capture_output=True, text=True,
                              timeout=timeout, preexec_fn=limit, env=full_env)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"archcalc {' '.join(map(str, args))} ran past {timeout} s (a hang)") from None
    seconds = time.perf_counter() - start
    assert proc.returncode >= 0, f"killed by signal {-proc.returncode}: {proc.stderr[-2000:]}"
    return Run(proc.returncode, proc.stdout, proc.stderr, seconds)


def assert_refused(run: Run, where: str | None = None, contains: str | None = None,
                   located: bool = True) -> str:
    """Exit 2, one line on stderr, no traceback; `where` is the line's start (`path:3:17`),
    `located` asks for some FILE:LINE:COL. Returns the line."""
    assert "Traceback" not in run.stderr + run.stdout, run.stderr[-3000:]
    assert run.rc == 2, f"exit {run.rc}\nstdout: {run.stdout[-1500:]}\nstderr: {run.stderr[-1500:]}"
    assert len(run.lines) == 1, run.stderr
    line = run.lines[0]
    assert "error" in line, line
    assert all(ch == "\t" or ch >= " " for ch in line), repr(line)
    if where is not None:
        assert line.startswith(f"{where}: error: ") or line.startswith(f"{where}:"), line
    elif located:
        assert LOCATED.match(line), line
    if contains is not None:
        assert contains in line, line
    return line


def snapshot(root: Path) -> dict:
    """Every path under `root` with its size and modification time, symlinks not followed."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            st = path.lstat()
            out[str(path.relative_to(root))] = (st.st_size, st.st_mtime_ns)
    return out
