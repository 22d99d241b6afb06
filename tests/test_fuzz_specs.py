"""Hundreds of mutants of the bundled specs and answer keys (tests/spec_fuzz.py): every one is
analysed or refused with one located line and exit 2; none raises, hangs or exits otherwise.

CI runs 300 mutants of a fixed seed (the three fuzz runs are marked slow: `python -m pytest --all`).
A longer hunt:
    ARCHCALC_FUZZ=5000 ARCHCALC_FUZZ_SEED=7 python -m pytest tests/test_fuzz_specs.py
or `python tests/spec_fuzz.py --count 5000 --seed 7`, which prints each failing mutant.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import spec_fuzz

COUNT = int(os.environ.get("ARCHCALC_FUZZ", "300"))
SEED = int(os.environ.get("ARCHCALC_FUZZ_SEED", "0"))


@pytest.mark.slow
def test_mutants_are_analysed_or_refused_with_one_located_line():
    script = Path(spec_fuzz.__file__)
    proc = subprocess.run([sys.executable, str(script), "--count", str(COUNT), "--seed", str(SEED), "--json"],
                          capture_output=True, text=True, timeout=60 + COUNT)
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    assert summary["count"] == COUNT
    # The mutants exercise both sides of the guarantee, not only one.
    assert summary["outcomes"].get("accepted", 0) > COUNT // 10, summary["outcomes"]
    assert summary["outcomes"].get("refused", 0) > COUNT // 10, summary["outcomes"]
    report = "\n".join(f"#{f['index']} {f['source']} {f['mutations']} {f['command']}: {f['problem']}\n{f['text']}"
                       for f in summary["failures"])
    assert not summary["failures"], report


def test_mutations_change_the_text_and_are_reproducible():
    import random

    text = Path(spec_fuzz.SPECS[0]).read_text()
    assert spec_fuzz.mutate(random.Random(5), text) == spec_fuzz.mutate(random.Random(5), text)
    changed = sum(spec_fuzz.mutate(random.Random(seed), text)[0] != text for seed in range(50))
    assert changed >= 40


def test_the_judge_rejects_what_the_guarantee_forbids():
    """The oracle itself: a traceback, two lines, an unlocated line and exit 1 all fail."""
    from typer.testing import CliRunner

    from archcalc.cli import app

    class Fake:
        def __init__(self, code, stderr="", stdout="", exception=None):
            self.exit_code, self.stderr, self.stdout, self.exception = code, stderr, stdout, exception

    args = ["analyze", "x.yaml", "--json"]
    assert spec_fuzz.judge(Fake(2, "x.yaml:3:5: error: bad\n"), args) is None
    assert spec_fuzz.judge(Fake(2, "x.yaml:3:5: error: bad\nmore\n"), args)
    assert spec_fuzz.judge(Fake(2, "error: bad\n"), args)
    assert spec_fuzz.judge(Fake(2, "error: --input '0,8': expected positive sizes\n"), args) is None
    assert spec_fuzz.judge(Fake(2, "x.yaml:3:5: error: a\x1b[2Jb\n"), args)
    assert spec_fuzz.judge(Fake(1, "boom\n"), args)
    assert spec_fuzz.judge(Fake(0, stdout="{not json"), args)
    assert spec_fuzz.judge(Fake(0, stdout='{"a": NaN}'), args)
    assert spec_fuzz.judge(Fake(1, exception=ValueError("x")), args)
    # And a real good run passes it.
    result = CliRunner().invoke(app, ["analyze", str(spec_fuzz.SPECS[0]), "--json"])
    assert spec_fuzz.judge(result, ["analyze", "s", "--json"]) is None


@pytest.mark.slow
def test_run_config_mutants_are_read_or_refused_with_one_located_line():
    import pytest

    pytest.importorskip("torch")
    script = Path(spec_fuzz.__file__)
    count = max(100, COUNT // 3)
    proc = subprocess.run([sys.executable, str(script), "--configs", "--count", str(count), "--seed", str(SEED),
                           "--json", "--memory-mb", "8192"], capture_output=True, text=True, timeout=60 + count)
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    assert summary["outcomes"].get("accepted", 0) > count // 10, summary["outcomes"]
    assert summary["outcomes"].get("refused", 0) > count // 10, summary["outcomes"]
    assert not summary["failures"], "\n".join(f"#{f['index']} {f['mutations']}: {f['problem']}\n{f['text']}"
                                              for f in summary["failures"])


@pytest.mark.slow
def test_accepted_mutants_measure_in_pytorch_as_analysed():
    """No silent wrong figure: mutants that analyse are built and measured by `verify`."""
    import pytest

    pytest.importorskip("torch")
    script = Path(spec_fuzz.__file__)
    count = max(60, COUNT // 5)
    proc = subprocess.run([sys.executable, str(script), "--verify", "--count", str(count), "--seed", str(SEED),
                           "--json", "--memory-mb", "8192"], capture_output=True, text=True, timeout=120 + 3 * count)
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    assert summary["outcomes"].get("verified", 0) > count // 5, summary["outcomes"]
    assert not summary["failures"], "\n".join(f"#{f['index']} {f['source']} {f['mutations']}: {f['problem']}\n"
                                              f"{f['text']}" for f in summary["failures"])
