"""`archcalc memory --fit`: a parallel option written on the command line is held fixed even when
its value is the default (--tp 1 was enumerated like an option not given: tp 2, 4, 8 listed)."""
from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from archcalc import api
from archcalc.analysis import parallel as par
from archcalc.cli import app

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "specs" / "transformers" / "llama_7b.yaml"
FIT = ["memory", str(SPEC), "--gpus", "8", "--global-batch", "64", "--fit", "--gpu-memory", "80GiB",
       "--dtype", "bfloat16", "--json"]


def _configs(*extra):
    result = CliRunner().invoke(app, FIT + list(extra))
    assert result.exit_code == 0, result.output
    return {tuple(c["config"][k] for k in ("tp", "pp", "zero", "recompute", "sequence_parallel", "micro_batch"))
            for c in json.loads(result.stdout)["configurations"]}


def test_fit_holds_an_option_given_at_its_default_value_fixed():
    every = _configs()
    assert {c[0] for c in every} == {1, 2, 4, 8}  # nothing given: every tensor-parallel degree dividing 32 heads
    held = _configs("--tp", "1", "--zero", "0", "--recompute", "none")
    assert held and {(c[0], c[2], c[3]) for c in held} == {(1, 0, "none")}
    assert held == {c for c in every if (c[0], c[2], c[3]) == (1, 0, "none")}
    graph = api.load_graph(SPEC)
    model = par.describe(graph, api.analyze(graph, batch=1, dtype="bfloat16"))
    plans = par.fit(model, 8, 64, 80 * 2**30, dtype="bfloat16", fixed={"tp": 1, "zero": 0, "recompute": "none"})
    assert held == {(p.config.tp, p.config.pp, p.config.zero, p.config.recompute, p.config.sequence_parallel,
                     p.config.micro_batch) for p in plans}


def test_fit_with_an_interleave_no_pipeline_divides_is_refused_not_none_fits():
    """GPT-2 small has 12 layers: on 4 GPUs p is 2 or 4, and neither p x 5 divides 12; the answer was
    an empty table and 'none fits: ... a larger --gpu-memory', which no memory would change."""
    gpt2 = ROOT / "specs" / "transformers" / "gpt2_small.yaml"
    result = CliRunner().invoke(app, ["memory", str(gpt2), "--gpus", "4", "--global-batch", "8", "--fit",
                                      "--gpu-memory", "80GiB", "--interleave", "5"])
    assert result.exit_code == 2
    assert result.output.strip() == ("error: --interleave 5 fits no pipeline: no --pp p of 2 or more dividing "
                                     "--gpus 4 has p x 5 dividing the 12 layers")
    ok = CliRunner().invoke(app, ["memory", str(gpt2), "--gpus", "4", "--global-batch", "8", "--fit",
                                  "--gpu-memory", "80GiB", "--interleave", "3", "--json"])  # p = 2 or 4: 12 % 6, 12 % 12
    assert ok.exit_code == 0 and {c["config"]["pp"] for c in json.loads(ok.stdout)["configurations"]} == {2, 4}


def test_a_parallel_option_at_its_default_value_without_gpus_is_refused():
    result = CliRunner().invoke(app, ["memory", str(SPEC), "--tp", "1"])
    assert result.exit_code == 2
    assert result.output.strip() == "error: --tp plans training on several GPUs: give --gpus N"
