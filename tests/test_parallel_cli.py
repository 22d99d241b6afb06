"""`archcalc memory --gpus N ...` (archcalc/analysis/parallel.py through the CLI): its JSON, its
one-line refusals, and docs/memory.md's worked example (Llama-2-70B on 64 H100s) kept current."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from archcalc import api
from archcalc.analysis import parallel as par
from archcalc.cli import app

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs" / "transformers"


def _model(name: str, dtype: str = "bfloat16") -> par.Model:
    graph = api.load_graph(SPECS / f"{name}.yaml")
    return par.describe(graph, api.analyze(graph, batch=1, dtype=dtype))


def _run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_cli_plan_json_matches_the_module():
    spec = SPECS / "llama2_70b.yaml"
    result = _run("memory", spec, "--gpus", 64, "--tp", 8, "--pp", 2, "--zero", 1, "--sequence-parallel",
                  "--recompute", "selective", "--global-batch", 1024, "--dtype", "bfloat16", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["config"] == {"gpus": 64, "tp": 8, "pp": 2, "dp": 4, "zero": 1, "sequence_parallel": True,
                              "recompute": "selective", "micro_batch": 1, "global_batch": 1024,
                              "micro_batches": 256, "interleave": 1}
    plan = par.plan_parallel(_model("llama2_70b"), par.Config(64, 8, 2, 1, True, "selective", 1, 1024))
    assert data["memory"]["total_bytes"] == plan.get("total")


@pytest.mark.parametrize("args, message", [
    (["--tp", 8], "--tp plans training on several GPUs: give --gpus N"),
    (["--gpus", 64], "--gpus needs --global-batch B"),
    (["--gpus", 48, "--global-batch", 48, "--tp", 3], "--tp 3 must divide the heads (64) and key/value heads (8)"),
    (["--gpus", 64, "--global-batch", 64, "--tp", 16], "--tp 16 must divide the heads (64) and key/value heads (8)"),
    (["--gpus", 64, "--global-batch", 64, "--pp", 3], "--gpus 64 is not a multiple of --tp x --pp = 3"),
    (["--gpus", 48, "--global-batch", 48, "--pp", 3], "--pp 3 must divide the 80 layers"),
    (["--gpus", 64, "--global-batch", 100], "--global-batch 100 is not a multiple of --micro-batch"),
    (["--gpus", 64, "--global-batch", 64, "--fit"], "--fit needs --gpu-memory"),
    (["--gpus", 64, "--global-batch", 64, "--fit", "--gpu-memory", "lots"], "--gpu-memory: expected a size"),
    (["--gpus", 64, "--global-batch", 64, "--checkpointing"], "--recompute full"),
    (["--gpus", 64, "--global-batch", 64, "--interleave", 2], "--interleave needs a pipeline"),
])
def test_cli_refusals_are_one_error_line(args, message):
    result = _run("memory", SPECS / "llama2_70b.yaml", *args)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], result.output


def test_cli_refuses_a_network_without_attention():
    result = _run("memory", ROOT / "specs" / "zoo" / "resnet18.yaml", "--gpus", 8, "--global-batch", 8)
    assert result.exit_code == 2
    assert "parallel plans need transformer layers" in result.output and "Traceback" not in result.output


# --- docs/memory.md's worked example is current -------------------------------------------------------

def _doc_commands():
    text = (ROOT / "docs" / "memory.md").read_text()
    part = text.split("## Worked example: Llama-2-70B on 64 H100s", 1)[1]
    return part, re.findall(r"```sh\n(archcalc memory [^\n]*)\n```\n\n```text\n(.*?)```", part, re.S)


def test_docs_worked_example_shows_current_output():
    part, examples = _doc_commands()
    assert len(examples) >= 2
    for command, shown in examples:
        args = command.split()[1:]
        args = [str(ROOT / a) if a.startswith("specs/") else a for a in args]
        result = CliRunner().invoke(app, args, env={"COLUMNS": "120"})
        assert result.exit_code == 0, result.output
        out = result.stdout.replace(str(ROOT) + "/", "")
        assert [line.rstrip() for line in out.strip().splitlines()] == \
            [line.rstrip() for line in shown.strip().splitlines()], command
