"""The benchmark scripts' pure helpers still work (no timing is asserted, no peer is run)."""
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def load(name):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_large_models_helpers():
    bench = load("large_models")
    gpt2 = bench.SPECS / "gpt2_small.yaml"
    assert bench.inprocess_seconds(gpt2, repeats=1) > 0
    assert bench.scaled_bindings(gpt2, 16) == {"d": 48}
    cells = bench.row("archcalc", "whole process", 0.5, 20.0, None, 10, 10, {"wall": 0.5, "rss_mib": 20.0})
    text = bench.table(bench.HEADERS, [cells])
    assert text.splitlines()[1].startswith("| --- | --- | ---: |")
    assert "| archcalc | whole process | 0.500 | 20 | — | 10 | 1.0000 | 1.0x | 1.0x |" in text


@pytest.mark.slow
def test_startup_bench_runs_one_round(capsys):
    bench = load("startup")
    assert bench.entry_point() == "archcalc.__main__:main"  # what pip's console script runs
    labels = [label for label, _, _ in bench.commands()]
    assert labels[:3] == ["python -c pass", "analyze --json", "analyze (table)"]
    assert bench.main(["--rounds", "1"]) == 0
    out = capsys.readouterr().out
    assert "ratios (median wall time / python -c pass): json " in out and "table " in out
    # every command ran and exited as it should (check exits 1: one answer in the file is wrong)
    assert "(exit" not in out, out
    assert bench.ratios({"python -c pass": [1.0, 2.0, 3.0], "x": [4.0, 6.0, 8.0]}) == {"python -c pass": 1.0, "x": 3.0}
