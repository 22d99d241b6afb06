"""The command line: formats, options, the JSON schema, and the torch-free analysis path."""
import csv
import io
import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from archcalc.cli import app

runner = CliRunner()

SPEC = """\
name: small
input: [3, 32, 32]
blocks:
  unit:
    args: {c: 8}
    layers:
      - conv: {out: c, kernel: 3, padding: 1, bias: false}
      - batchnorm
      - relu
layers:
  - unit: {c: 8}
  - maxpool: 2
  - unit: {c: 16}
  - global_avgpool
  - flatten
  - linear: 10
"""
# Hand-computed figures for SPEC (batch 1):
#   unit1.conv1: 3*3*3*8 = 216 params, MACs 32*32*216 = 221,184; batchnorm 2*8 + 2*8
#   unit2.conv1: 3*3*8*16 = 1,152 params, MACs 16*16*1,152 = 294,912; batchnorm 2*16 + 2*16
#   linear1: 16*10 + 10 = 170 params, 160 MACs
TRAINABLE = 216 + 16 + 1152 + 32 + 170  # 1,586
NON_TRAINABLE = 16 + 32
MACS = 221_184 + 294_912 + 160


@pytest.fixture
def spec(tmp_path):
    path = tmp_path / "small.yaml"
    path.write_text(SPEC)
    return path


def test_table_shows_rows_and_totals(spec):
    result = runner.invoke(app, ["analyze", str(spec)])
    assert result.exit_code == 0, result.output
    out = result.stdout
    for name in ("unit1.conv1", "unit1.batchnorm1", "maxpool1", "unit2.relu1", "linear1"):
        assert name in out
    assert "[16, 16, 16]" in out and "global" in out
    assert f"params {TRAINABLE + NON_TRAINABLE:,}" in out
    assert f"trainable {TRAINABLE:,}, non-trainable {NON_TRAINABLE}" in out
    assert f"MACs {MACS:,} (516 k)" in out and f"FLOPs = 2 x MACs = {2 * MACS:,}" in out
    assert "running mean and variance" in out


def test_json_schema(spec):
    result = runner.invoke(app, ["analyze", str(spec), "--json"])
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert set(data) == {"version", "name", "input", "batch", "dtype", "layers", "totals"}
    assert data["name"] == "small" and data["input"] == [3, 32, 32] and data["batch"] == 1
    first = data["layers"][0]
    assert first == {
        "name": "unit1.conv1", "kind": "conv", "from": ["input"], "output_shape": [8, 32, 32],
        "params": 216, "trainable_params": 216, "non_trainable_params": 0,
        "macs": 221_184, "flops": 442_368,
        "rf": {"size": [3, 3], "stride": [1, 1], "start": [-1, -1]},
        "activation_bytes": 8 * 32 * 32 * 4,
    }
    pool = next(row for row in data["layers"] if row["name"] == "maxpool1")
    assert pool["rf"] == {"size": [4, 4], "stride": [2, 2], "start": [-1, -1]}
    assert data["layers"][-1]["rf"] == "global"
    totals = data["totals"]
    assert totals["trainable_params"] == TRAINABLE and totals["non_trainable_params"] == NON_TRAINABLE
    assert totals["params"] == TRAINABLE + NON_TRAINABLE
    assert totals["macs"] == MACS and totals["flops"] == 2 * MACS
    assert totals["output_shape"] == [10]
    assert totals["param_bytes"] == 4 * (TRAINABLE + NON_TRAINABLE)
    assert totals["input_bytes"] == 3 * 32 * 32 * 4


def test_format_json_equals_json_flag(spec):
    a = runner.invoke(app, ["analyze", str(spec), "--json"]).stdout
    b = runner.invoke(app, ["analyze", str(spec), "--format", "json"]).stdout
    assert a == b


def test_batch_scales_macs_and_activations_not_params(spec):
    data = json.loads(runner.invoke(app, ["analyze", str(spec), "--json", "--batch-size", "8"]).stdout)
    assert data["batch"] == 8
    assert data["totals"]["macs"] == 8 * MACS
    assert data["totals"]["trainable_params"] == TRAINABLE
    assert data["layers"][0]["activation_bytes"] == 8 * 8 * 32 * 32 * 4


def test_input_override(spec):
    data = json.loads(runner.invoke(app, ["analyze", str(spec), "--json", "--input", "3,64,64"]).stdout)
    assert data["input"] == [3, 64, 64]
    assert data["layers"][0]["macs"] == 64 * 64 * 216
    assert data["totals"]["trainable_params"] == TRAINABLE  # global pooling makes it size-independent


def test_dtype_changes_memory(spec):
    data = json.loads(runner.invoke(app, ["analyze", str(spec), "--json", "--dtype", "float16"]).stdout)
    assert data["totals"]["param_bytes"] == 2 * (TRAINABLE + NON_TRAINABLE)
    bad = runner.invoke(app, ["analyze", str(spec), "--dtype", "float13"])
    assert bad.exit_code == 2 and "float13" in bad.stderr and "float16" in bad.stderr


def test_depth_folds_blocks(spec):
    result = runner.invoke(app, ["analyze", str(spec), "--format", "markdown", "--depth", "1"])
    assert result.exit_code == 0
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ")][1:]
    assert [r.split(" | ")[0].strip("| ") for r in rows] == [
        "unit1", "maxpool1", "unit2", "global_avgpool1", "flatten1", "linear1"]
    unit2 = rows[2].split(" | ")
    assert unit2[1] == "unit" and unit2[2] == "[16, 16, 16]" and unit2[3] == f"{1152 + 64:,}"
    data = json.loads(runner.invoke(app, ["analyze", str(spec), "--json", "--depth", "1"]).stdout)
    assert len(data["layers"]) == 10 and [r["name"] for r in data["folded"]][0] == "unit1"


def test_csv(spec):
    result = runner.invoke(app, ["analyze", str(spec), "--format", "csv"])
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert rows[0]["name"] == "unit1.conv1" and rows[0]["rf_size"] == "3 3" and rows[0]["macs"] == "221184"
    assert rows[-1]["name"] == "total" and int(rows[-1]["trainable_params"]) == TRAINABLE


def test_help_states_the_conventions():
    result = runner.invoke(app, ["analyze", "--help"])
    assert result.exit_code == 0
    text = " ".join(result.stdout.split())
    assert "FLOPs = 2 x MACs" in text and "FlopCounterMode" in text and "BatchNorm" in text


def test_kinds_lists_and_describes():
    listing = runner.invoke(app, ["kinds"]).stdout
    assert "conv_transpose" in listing and "global_avgpool" in listing
    conv = runner.invoke(app, ["kinds", "conv"]).stdout
    assert "kernel" in conv and "required" in conv and "params:" in conv
    bad = runner.invoke(app, ["kinds", "cnov"])
    assert bad.exit_code == 2 and "did you mean 'conv'" in bad.stderr


def test_version():
    import archcalc

    assert runner.invoke(app, ["--version"]).stdout.strip() == f"archcalc {archcalc.__version__}"


def test_analysis_never_imports_torch_or_sympy(spec):
    code = (
        "import sys, json\n"
        "from archcalc.cli import main\n"
        f"sys.argv = ['archcalc', 'analyze', {str(spec)!r}, '--json']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "bad = sorted(m for m in ('torch', 'sympy', 'rich') if m in sys.modules)\n"
        "print('IMPORTED', bad, file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "IMPORTED []" in proc.stderr
    assert json.loads(proc.stdout)["totals"]["macs"] == MACS


def test_python_module_entry_point(spec):
    proc = subprocess.run([sys.executable, "-m", "archcalc", "analyze", str(spec), "--json"],
                          capture_output=True, text=True)
    assert proc.returncode == 0 and json.loads(proc.stdout)["totals"]["trainable_params"] == TRAINABLE
