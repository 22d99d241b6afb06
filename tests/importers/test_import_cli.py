"""`archcalc import SOURCE [--input] [-o]` and import sources where a spec goes (`archcalc analyze
model.onnx`, `archcalc memory llama/config.json`, `archcalc explain ...`): output, one-line errors
with exit code 2, and no torch imported for ONNX files and Hugging Face configs."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from archcalc.cli import app

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

CONFIGS = Path(__file__).parent / "configs"
runner = CliRunner()


def small_onnx(path: Path, dynamic=False) -> str:
    """Conv(2 -> 4, 3x3, pad 1) + Relu + GlobalAveragePool + Flatten + Gemm(4 -> 3) on [N, 2, 8, 8]:
    params 4*2*9 + 4 + 4*3 + 3 = 91, MACs 8*8*9*2*4 + 4*3 = 4620, output [3]."""
    rng = np.random.default_rng(0)
    inits = {"w": rng.standard_normal((4, 2, 3, 3)).astype(np.float32), "b": np.zeros(4, np.float32),
             "fw": rng.standard_normal((3, 4)).astype(np.float32), "fb": np.zeros(3, np.float32)}
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], name="/conv/Conv", pads=[1, 1, 1, 1], kernel_shape=[3, 3]),
             helper.make_node("Relu", ["c"], ["r"], name="/act/Relu"),
             helper.make_node("GlobalAveragePool", ["r"], ["g"], name="/pool/GlobalAveragePool"),
             helper.make_node("Flatten", ["g"], ["f"], name="/Flatten"),
             helper.make_node("Gemm", ["f", "fw", "fb"], ["y"], name="/fc/Gemm", transB=1)]
    dims = ["N", 2, "H", "W"] if dynamic else ["N", 2, 8, 8]
    graph = helper.make_graph(nodes, "small", [helper.make_tensor_value_info("x", TensorProto.FLOAT, dims)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(v, k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return str(path)


def test_import_to_stdout_and_to_a_file(tmp_path):
    path = small_onnx(tmp_path / "small.onnx")
    result = runner.invoke(app, ["import", path])
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert text.startswith("# Imported by `archcalc import` from small.onnx (ONNX, opset 17")
    assert "input: [2, 8, 8]" in text
    assert "- {name: conv, conv: {out: 4, kernel: 3, padding: 1}}" in text
    assert "- {name: fc, linear: {out: 3}}" in text
    out = tmp_path / "spec.yaml"
    result = runner.invoke(app, ["import", path, "-o", str(out)])
    assert result.exit_code == 0 and result.stdout == ""
    assert out.read_text() == text
    result = runner.invoke(app, ["analyze", str(out), "--json"])
    totals = json.loads(result.stdout)["totals"]
    assert (totals["params"], totals["macs"], totals["output_shape"]) == (91, 4620, [3])


def test_analyze_and_explain_take_an_onnx_file(tmp_path):
    path = small_onnx(tmp_path / "small.onnx", dynamic=True)
    result = runner.invoke(app, ["analyze", path, "--input", "2,8,8", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["input"] == [2, 8, 8]
    assert (data["totals"]["params"], data["totals"]["macs"]) == (91, 4620)
    # another size: the graph is fully convolutional, so --input chooses it
    data = json.loads(runner.invoke(app, ["analyze", path, "--input", "2,16,16", "--json"]).stdout)
    assert data["totals"]["macs"] == 16 * 16 * 9 * 2 * 4 + 12
    result = runner.invoke(app, ["explain", path, "fc", "--input", "2,8,8"])
    assert result.exit_code == 0 and "fc  params = (Nin + 1)*Nout = (4 + 1)*3 = 15" in result.stdout


def test_verify_and_export_take_an_onnx_file(tmp_path):
    pytest.importorskip("torch")
    path = small_onnx(tmp_path / "small.onnx")
    result = runner.invoke(app, ["verify", path, "--json"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["export", path, "--to", "pytorch"])
    assert result.exit_code == 0 and "class " in result.stdout


def test_memory_takes_a_hugging_face_config():
    folder = CONFIGS / "tiny_gpt2"
    if not (folder / "config.json").is_file():
        pytest.skip("the tiny GPT-2 config (tests/importers/configs) is not here")
    result = runner.invoke(app, ["memory", str(folder / "config.json"), "--json"])
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    # same plan as the imported spec's
    spec = runner.invoke(app, ["import", str(folder)]).stdout
    assert spec.startswith("#")
    result_folder = runner.invoke(app, ["memory", str(folder), "--json"])
    assert json.loads(result_folder.stdout) == plan


def test_errors_are_one_line_with_exit_code_2(tmp_path):
    cases = {
        str(tmp_path / "missing.onnx"): "no such ONNX file",
        str(tmp_path / "notes.txt"): "not an import source",
    }
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not protobuf at all \xff\xfe")
    cases[str(bad)] = "not an ONNX file"
    for source, words in cases.items():
        result = runner.invoke(app, ["import", source])
        assert result.exit_code == 2, (source, result.output)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], lines
    dyn = small_onnx(tmp_path / "dyn.onnx", dynamic=True)
    for command in (["import", dyn], ["analyze", dyn]):
        result = runner.invoke(app, command)
        assert result.exit_code == 2
        assert "dynamic size ('H') at axis 2" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    result = runner.invoke(app, ["import", dyn, "--input", "2,H,8"])
    assert result.exit_code == 2 and "positive sizes" in result.stderr
    for given, words in (("nope=2,8,8", "no input named 'nope'"), ("input=2,8,8;input=2,4,4", "given twice")):
        result = runner.invoke(app, ["import", dyn, "--input", given])
        assert result.exit_code == 2 and words in result.stderr and len(result.stderr.strip().splitlines()) == 1
    result = runner.invoke(app, ["import", str(tmp_path / "small.onnx"), "-o", str(tmp_path)])
    assert result.exit_code == 2 and "it is a folder" in result.stderr


NET_PY = '''
from torch import nn


def make(width=8):
    return nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(width, 4))
'''


def test_a_module_file_where_a_spec_goes(tmp_path):
    pytest.importorskip("torch")
    (tmp_path / "net.py").write_text(NET_PY)
    source = f"{tmp_path / 'net.py'}:make"
    result = runner.invoke(app, ["analyze", source, "--input", "3,16,16", "--json"])
    assert result.exit_code == 0, result.output
    totals = json.loads(result.stdout)["totals"]
    # by hand: conv 8*3*9 + 8 = 224, linear 8*4 + 4 = 36; MACs 16*16*27*8 + 32
    assert (totals["params"], totals["macs"], totals["output_shape"]) == (260, 55328, [4])
    result = runner.invoke(app, ["import", source, "--input", "3,16,16"])
    assert result.exit_code == 0 and "conv: {out: 8, kernel: 3, padding: 1}" in result.stdout
    result = runner.invoke(app, ["import", f"{tmp_path / 'net.py'}:nothing", "--input", "3,16,16"])
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1 and "nothing" in result.stderr


def _no_torch_run(args, cwd):
    """Run the CLI in a fresh interpreter where `import torch` fails; report torch's absence."""
    code = (
        "import sys\n"
        "sys.modules['torch'] = None  # `import torch` raises ImportError\n"
        "from archcalc.cli import app\n"
        f"sys.argv = ['archcalc', *{args!r}]\n"
        "try:\n"
        "    app()\n"
        "except SystemExit as exc:\n"
        "    code = exc.code\n"
        "print('EXIT', code, 'torch-loaded' if sys.modules.get('torch') is not None else 'no-torch')\n"
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd, timeout=120)


def test_onnx_and_configs_need_no_torch(tmp_path):
    path = small_onnx(tmp_path / "small.onnx")
    done = _no_torch_run(["analyze", path, "--json"], tmp_path)
    assert done.stdout.strip().endswith("EXIT 0 no-torch"), done.stdout + done.stderr
    assert json.loads(done.stdout[:done.stdout.rindex("EXIT")])["totals"]["params"] == 91
    if (CONFIGS / "tiny_gpt2" / "config.json").is_file():
        done = _no_torch_run(["memory", str(CONFIGS / "tiny_gpt2")], tmp_path)
        assert "EXIT 0 no-torch" in done.stdout, done.stdout + done.stderr
        done = _no_torch_run(["import", str(CONFIGS / "tiny_gpt2" / "config.json")], tmp_path)
        assert "EXIT 0 no-torch" in done.stdout, done.stdout + done.stderr


def test_from_module_is_exported_without_importing_torch():
    code = ("import sys\nimport archcalc\nassert 'torch' not in sys.modules\n"
            "assert callable(archcalc.from_module) and callable(archcalc.import_source)\n"
            "assert 'torch' not in sys.modules\nprint('ok')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "ok", done.stderr


def test_a_spec_written_in_json_stays_a_spec_and_a_config_is_known_by_its_model_type(tmp_path):
    # YAML reads JSON, so a spec may be a .json file: only an object with "model_type" (or a file
    # named config.json) is read as a Hugging Face config.
    import archcalc
    from archcalc.importers import is_import_source

    spec = tmp_path / "net.json"
    spec.write_text('{"input": [3, 8, 8], "layers": [{"conv": {"out": 4, "kernel": 3}}, "relu"]}')
    assert not is_import_source(spec)
    assert archcalc.analyze(spec).totals.params == 3 * 3 * 3 * 4 + 4
    config = tmp_path / "llama.json"
    config.write_text((Path(__file__).parent / "configs" / "tiny_llama" / "config.json").read_text())
    assert is_import_source(config)
    bad = tmp_path / "typo.json"
    bad.write_text('{"model_typ": "llama"}')
    result = runner.invoke(app, ["analyze", str(bad)])
    assert result.exit_code == 2 and "unknown top-level key 'model_typ'" in result.output
