"""The Python API as a notebook uses it (issue 14 point 4): a short repr, Markdown/HTML tables,
records, pandas, analyze(dict), layer names suggested, SpecError a ValueError, what `archcalc`
exports, and `import archcalc` staying fast and torch-free."""
import subprocess
import sys

import pytest

import archcalc

RESNET18 = "specs/zoo/resnet18.yaml"


@pytest.fixture(scope="module")
def resnet18():
    return archcalc.analyze(RESNET18)


def test_repr_is_short_and_holds_the_totals():
    report = archcalc.analyze("specs/zoo/resnet50.yaml")
    text = repr(report)
    assert len(text) < 300 and "\n" not in text  # was 65,018 characters
    # torchvision's resnet50: 25,557,032 trainable parameters (+ 53,120 batch-norm buffers), 4.09 GMACs
    assert text == ("<archcalc Report 'resnet50': input [3, 224, 224] -> [1000], batch 1, float32, 175 layers, "
                    "25,610,152 params (25,557,032 trainable), 4,089,184,256 MACs>")


def test_markdown_table(resnet18):
    md = resnet18._repr_markdown_()
    lines = md.splitlines()
    assert lines[0] == "**resnet18**: input \\[3, 224, 224\\], batch 1, float32"
    assert lines[2] == "| name | kind | output_shape | params | macs |"
    # conv1: 64 * 3 * 7 * 7 = 9,408 weights; 9,408 * 112 * 112 = 118,013,952 MACs
    assert lines[4] == "| conv1 | conv | \\[64, 112, 112\\] | 9,408 | 118,013,952 |"
    assert len(lines) == 4 + 69 + 1  # a row per layer, then the totals
    assert lines[-1] == "| **total** | | \\[1000\\] | 11,699,112 | 1,814,073,344 |"


def test_html_table(resnet18):
    html = resnet18._repr_html_()
    assert html.count("<tr>") == 1 + 69 + 1
    assert "<tr><td>conv1</td><td>conv</td><td>[64, 112, 112]</td><td>9,408</td><td>118,013,952</td></tr>" in html
    assert "<td>11,699,112</td>" in html


HOSTILE = {"name": "<b>net</b>|[x](y)*z*", "input": [4],
           "layers": [{"name": "a_b_", "linear": 3}]}


def test_tables_escape_user_text():
    report = archcalc.analyze(HOSTILE)
    html = report._repr_html_()
    assert "<b>net" not in html  # (the one <b> is archcalc's, round the name)
    assert "<p><b>&lt;b&gt;net&lt;/b&gt;|[x](y)*z*</b>:" in html
    md = report._repr_markdown_()
    # no tag, no link, no emphasis, and the '|' does not split a cell
    assert md.startswith("**&lt;b&gt;net&lt;/b&gt;\\|\\[x\\](y)\\*z\\***:")
    row = md.splitlines()[4]
    assert row == "| a\\_b\\_ | linear | \\[3\\] | 15 | 12 |"  # 4 * 3 + 3 parameters, 4 * 3 MACs


def test_to_records_plain_values(resnet18):
    records = resnet18.to_records()
    assert len(records) == 69
    assert records[0] == {
        "name": "conv1", "kind": "conv", "from": ["input"], "output_shape": [64, 112, 112],
        "params": 9408, "trainable_params": 9408, "non_trainable_params": 0,
        "macs": 118013952, "flops": 236027904, "rf_size": [7, 7], "rf_stride": [2, 2],
        "activation_bytes": 64 * 112 * 112 * 4,
    }
    fc = records[-1]
    assert (fc["name"], fc["params"], fc["macs"], fc["rf_size"]) == ("fc", 512 * 1000 + 1000, 512 * 1000, "global")
    # batch norm: 2 * 64 trainable, running mean and variance 2 * 64 buffers
    assert (records[1]["trainable_params"], records[1]["non_trainable_params"]) == (128, 128)
    assert sum(r["params"] for r in records) == resnet18.totals.params
    allowed = (str, int, float, list, type(None))
    assert all(isinstance(v, allowed) for r in records for v in r.values())


def test_to_records_of_a_symbolic_spec_holds_text():
    report = archcalc.analyze({"input": [3, "H", "H"], "symbols": {"H": {"min": 4}},
                               "layers": [{"conv": {"out": 8, "kernel": 3, "bias": False}}]})
    (rec,) = report.to_records()
    assert rec["output_shape"] == [8, "H - 2", "H - 2"]
    assert rec["params"] == 8 * 3 * 9
    assert isinstance(rec["macs"], str) and "H" in rec["macs"]


def test_to_pandas_without_pandas_says_what_to_install(resnet18, monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas then raises ImportError
    with pytest.raises(ImportError, match="needs pandas.*pip install pandas"):
        resnet18.to_pandas()


def test_to_pandas_frame(resnet18):
    pandas = pytest.importorskip("pandas")
    frame = resnet18.to_pandas()
    assert isinstance(frame, pandas.DataFrame)
    assert frame.loc["conv1", "params"] == 9408 and len(frame) == 69


def test_analyze_accepts_a_dict():
    spec = {"name": "mlp", "input": [784],
            "layers": [{"name": "fc1", "linear": 256}, "relu", {"name": "fc2", "linear": 10}]}
    report = archcalc.analyze(spec)
    # 784 * 256 + 256 = 200,960; 256 * 10 + 10 = 2,570
    assert report.totals.params == 200960 + 2570
    assert report.totals.macs == 784 * 256 + 256 * 10
    assert report.layer("fc2").output_shape == (10,)
    assert spec["layers"][1] == "relu"  # the dict is not changed
    # options apply as to a file
    assert archcalc.analyze(spec, batch=4).totals.macs == 4 * (784 * 256 + 256 * 10)
    assert archcalc.analyze(spec, input_shape=(100,)).totals.params == 100 * 256 + 256 + 2570


def test_analyze_dict_mistakes_are_spec_errors():
    with pytest.raises(archcalc.SpecError, match="unknown layer kind 'lineer'"):
        archcalc.analyze({"input": [4], "layers": [{"lineer": 3}]})
    with pytest.raises(archcalc.SpecError, match="cannot be written in a spec"):
        archcalc.analyze({"input": [4], "layers": [{"linear": object()}]})


def test_layer_suggests_names(resnet18):
    assert resnet18.layer("fc").params == 513000
    with pytest.raises(KeyError, match=r"no layer named 'fc1' in 'resnet18' \(did you mean 'fc'\?\)"):
        resnet18.layer("fc1")
    with pytest.raises(KeyError, match=r"did you mean 'layer1\.0\.conv1', 'layer1\.0\.bn1', 'layer1\.0\.relu1', \.\.\.\?"):
        resnet18.layer("layer1")  # a block: its layers
    with pytest.raises(KeyError) as info:
        resnet18.layer("zzzzzz")
    assert "did you mean" not in str(info.value)


def test_spec_error_is_a_value_error():
    with pytest.raises(ValueError) as info:
        archcalc.analyze({"input": [4], "layers": [{"lineer": 3}]})
    exc = info.value
    assert isinstance(exc, archcalc.SpecError)
    assert "unknown layer kind 'lineer' (did you mean 'linear'?)" in str(exc)
    assert "<dict>" not in str(exc)  # a dict has no lines to point at
    assert not str(exc).startswith("error:") and str(exc).startswith("unknown layer kind")
    bare = archcalc.SpecError("expected a shape")
    assert str(bare) == "expected a shape"
    assert str(archcalc.SpecError("bad", None, "fc", "linear")) == "layer 'fc' (linear): bad"
    assert bare.cli_line() == "error: expected a shape"
    from archcalc.errors import Loc
    placed = archcalc.SpecError("bad", Loc("net.yaml", 3, 5), "fc", "linear")
    assert placed.cli_line() == "net.yaml:3:5: error: layer 'fc' (linear): bad"


def test_cli_still_prints_error_lines(tmp_path):
    from typer.testing import CliRunner

    from archcalc.cli import app

    spec = tmp_path / "bad.yaml"
    spec.write_text("input: [4]\nlayers:\n  - lineer: 3\n")
    result = CliRunner().invoke(app, ["analyze", str(spec)])
    assert result.exit_code == 2
    err = result.stderr if hasattr(result, "stderr") else result.output
    assert err.startswith(f"{spec}:3:5: error: unknown layer kind 'lineer'")
    result = CliRunner().invoke(app, ["analyze", str(spec), "--set", "H"])
    assert result.exit_code == 2
    err = result.stderr if hasattr(result, "stderr") else result.output
    assert err.startswith("error: --set 'H': expected NAME=INTEGER")


def test_package_exports():
    from archcalc.analysis.memory import plan_memory
    from archcalc.api import load_graph
    from archcalc.explain import explain

    assert archcalc.load_graph is load_graph
    # archcalc.explain is the function (the module's names stay importable: archcalc.explain.text)
    assert archcalc.explain is explain
    from archcalc.explain import text  # noqa: F401
    assert archcalc.plan_memory is plan_memory
    assert {"load_graph", "explain", "plan_memory", "analyze", "SpecError"} <= set(archcalc.__all__)
    graph = archcalc.load_graph(RESNET18)
    steps = archcalc.explain(graph, ["fc"])
    assert (steps[0].name, steps[0].kind) == ("fc", "linear")
    assert steps == explain(graph, ["fc"])
    from archcalc import explain as called
    assert called(graph, ["conv1"])[0].name == "conv1"
    plan = archcalc.plan_memory(graph, archcalc.analyze(graph))
    assert plan is not None


def test_import_archcalc_is_torch_free_and_fast():
    code = ("import sys, time; t = time.perf_counter(); import archcalc; t = time.perf_counter() - t; "
            "import archcalc.analysis.report; "
            "print(sorted(m for m in ('torch', 'pandas', 'rich', 'typer', 'sympy') if m in sys.modules), t)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert "torch" not in out[0] and "pandas" not in out[0] and "rich" not in out[0]
    assert float(out[-1]) < 1.0


def test_subpackages_are_attributes_again():
    # `import archcalc; archcalc.errors.SpecError` worked while __init__ imported the API up front
    # (which imported errors, render, reader, analysis...); the lazy package raised AttributeError.
    code = ("import sys, archcalc\n"
            "before = sorted(m for m in sys.modules if m.startswith('archcalc.'))\n"
            "assert archcalc.errors.SpecError is archcalc.SpecError\n"
            "assert archcalc.render.table and archcalc.graph_export.to_dot and archcalc.reader.parse\n"
            "from archcalc.explain import explain\n"
            "assert archcalc.explain is explain  # still the function, not the module of its name\n"
            "for bad in ('nosuch', '_private', '__wrapped__'):\n"
            "    try:\n"
            "        getattr(archcalc, bad)\n"
            "    except AttributeError as exc:\n"
            "        assert repr(bad) in str(exc)\n"
            "    else:\n"
            "        raise SystemExit(f'{bad} found')\n"
            "print(before, 'torch' in sys.modules, 'archcalc.cli' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["[]", "False", "False"]  # `import archcalc` alone imports none of them
