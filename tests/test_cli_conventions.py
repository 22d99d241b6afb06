"""The command line follows the conventions of the ecosystem (issue 14 point 5): `-` reads the spec
from stdin; `--json` on every command that prints figures, each document carrying archcalc's
version; one name per concept across commands (old spellings still work, hidden, with a note);
shell completion offering the typed choices; `-q` for train and verify; help text that rich wraps
(no line cut where the source broke it)."""
import inspect
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import archcalc
from archcalc.cli import app
from hostile import assert_refused, run_cli

ROOT = Path(__file__).resolve().parents[1]
RESNET18 = str(ROOT / "specs" / "zoo" / "resnet18.yaml")
runner = CliRunner()

TINY = """\
name: tiny
input: [1, 8, 8]
layers:
  - conv: {out: 4, kernel: 3}
  - flatten
  - linear: 10
"""
# By hand: conv 3*3*1*4 + 4 = 40 params, output [4, 6, 6], MACs 6*6 * 3*3*1*4 = 1,296;
# flatten [144]; linear 144*10 + 10 = 1,450 params, 1,440 MACs. Totals: 1,490 params, 2,736 MACs.
TINY_PARAMS, TINY_MACS = 1490, 2736


def invoke(*args, input=None, env=None):
    return runner.invoke(app, [str(a) for a in args], input=input, env=env)


def data_of(result):
    assert result.exit_code in (0, 1), result.output
    return json.loads(result.stdout)


# --- 1. `-` reads the spec from stdin ----------------------------------------------------------------
def test_analyze_reads_the_spec_from_stdin():
    data = data_of(invoke("analyze", "-", "--json", input=TINY))
    assert data["name"] == "tiny"
    assert data["totals"]["params"] == TINY_PARAMS and data["totals"]["macs"] == TINY_MACS
    assert [row["output_shape"] for row in data["layers"]] == [[4, 6, 6], [144], [10]]


def test_a_real_pipe_and_its_mistakes_located_in_stdin():
    ok = run_cli(["analyze", "-", "--json"], stdin=TINY)
    assert ok.rc == 0, ok.stderr
    assert json.loads(ok.stdout)["totals"]["macs"] == TINY_MACS
    assert json.loads(ok.stdout)["version"] == archcalc.__version__  # the console script's own fast path too
    bad = run_cli(["analyze", "-"], stdin=TINY.replace("linear: 10", "linear: x10"))
    assert_refused(bad, where="<stdin>:6:13")  # line 6, the value's column: as a file's would be
    assert "unknown name 'x10'" in bad.stderr


@pytest.mark.parametrize("stdin, message", [
    ("", "<stdin>: the standard input is empty"),
    ("   \n\n", "<stdin>: the standard input is empty"),
    (b"input: [4]\nlayers: [{linear: 2}]\nname: \xff\n", "<stdin>:3:7: error: the file is not UTF-8 text"),
    ("input: [4]\nlayers:\n  - !!python/object:os.system x\n", "<stdin>:3:5"),  # safe loading, as for files
])
def test_stdin_is_read_as_a_file_is(stdin, message):
    result = runner.invoke(app, ["analyze", "-"], input=stdin)
    assert result.exit_code == 2 and message in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_stdin_keeps_the_size_limit():
    from archcalc.reader.yaml_source import MAX_SOURCE_BYTES

    result = runner.invoke(app, ["analyze", "-"], input=b"#" * (MAX_SOURCE_BYTES + 1))
    assert result.exit_code == 2
    assert f"<stdin>: the spec is larger than the limit of {MAX_SOURCE_BYTES:,} bytes" in result.stderr


def test_every_command_that_takes_a_spec_takes_stdin(tmp_path):
    memory = data_of(invoke("memory", "-", "--json", input=TINY))
    assert memory["params"] == TINY_PARAMS
    explain = data_of(invoke("explain", "-", "linear1", "--json", input=TINY))
    params = next(s for s in explain["layers"][0]["steps"] if s["figure"] == "params")
    assert params["result"] == 1450 and params["substituted"] == "(144 + 1)*10"
    dot = invoke("export", "-", "--to", "dot", input=TINY)
    assert dot.exit_code == 0 and "linear1" in dot.stdout
    answers = tmp_path / "a.yaml"
    answers.write_text("answers:\n  total.params: 1490\n  total.macs: 2737\n")
    [checked] = data_of(invoke("check", "-", answers, "--json", input=TINY))
    assert [a["verdict"] for a in checked["answers"]] == ["right", "wrong"]
    spec = tmp_path / "tiny.yaml"
    spec.write_text(TINY)
    [from_stdin] = data_of(invoke("check", spec, "-", "--json", input="answers:\n  conv1.params: 40\n"))
    assert from_stdin["answers"][0]["verdict"] == "right"


def test_stdin_given_twice_and_import_from_stdin_are_refused():
    twice = invoke("check", "-", "-", input=TINY)
    assert twice.exit_code == 2 and "'-' (stdin) is given twice" in twice.stderr
    imported = invoke("import", "-", input="{}")
    assert imported.exit_code == 2 and "import -: a model to import is read from its file" in imported.stderr
    assert "Traceback" not in imported.output and len(imported.stderr.strip().splitlines()) == 1


# --- 2. --json everywhere, each document with "version" -----------------------------------------------
def _versioned(doc):
    assert isinstance(doc, dict) and next(iter(doc)) == "version", list(doc)[:3]
    assert doc["version"] == archcalc.__version__


def test_every_json_document_begins_with_the_version(tmp_path):
    answers = tmp_path / "a.yaml"
    answers.write_text("answers:\n  total.params: 1490\n")
    spec = tmp_path / "tiny.yaml"
    spec.write_text(TINY)
    for args in (["analyze", spec, "--json"], ["analyze", spec, "--format", "json"],
                 ["analyze", spec, "--json", "--memory"], ["memory", spec, "--json"],
                 ["explain", spec, "--json"], ["kinds", "--json"], ["kinds", "conv", "--json"]):
        doc = data_of(invoke(*args))
        _versioned(doc)
    memory_inside = data_of(invoke("analyze", spec, "--json", "--memory"))["memory"]
    assert "version" not in memory_inside  # one version per document, at its top
    one = data_of(invoke("check", spec, answers, "--json"))
    two = data_of(invoke("check", spec, answers, answers, "--json"))
    assert isinstance(one, list) and len(one) == 1 and len(two) == 2  # always a list, one object per file
    for doc in one + two:
        _versioned(doc)
        assert doc["right"] == 1 and doc["answers_file"] == str(answers)


def test_grade_json_has_the_version():
    klass = ROOT / "tests" / "homework" / "class" / "wa2"
    doc = data_of(invoke("grade", ROOT / "specs" / "homework" / "denoiser.key.yaml", klass / "alice.yaml", "--json"))
    _versioned(doc)
    assert doc["students"][0]["student"] == "alice"


def test_kinds_json_lists_every_kind_and_describes_one():
    from archcalc.layers import KINDS

    listed = data_of(invoke("kinds", "--json"))["kinds"]
    assert [k["name"] for k in listed] == sorted(KINDS)
    conv = data_of(invoke("kinds", "conv", "--json"))
    args = {a["name"]: a for a in conv["arguments"]}
    assert args["out"]["required"] is True and args["stride"]["default"] == 1
    assert conv["formulas"] == dict(KINDS["conv"].formulas)
    both = invoke("kinds", "--markdown", "--json")
    assert both.exit_code == 2 and "give one" in both.stderr


def test_explain_json_holds_the_same_steps_as_the_text(tmp_path):
    spec = tmp_path / "tiny.yaml"
    spec.write_text(TINY)
    doc = data_of(invoke("explain", spec, "--json", "--batch-size", "2"))
    assert doc["name"] == "tiny" and doc["batch"] == 2
    conv = doc["layers"][0]
    assert conv["name"] == "conv1" and conv["kind"] == "conv" and conv["inputs"] == ["input"]
    macs = next(s for s in conv["steps"] if s["figure"] == "macs")
    assert macs["result"] == 2 * 1296  # batch 2
    shape = next(s for s in conv["steps"] if s["figure"] == "output" and isinstance(s["result"], list))
    assert shape["result"] == [4, 6, 6]
    text = invoke("explain", spec, "--batch-size", "2").stdout
    assert f"= {2 * 1296:,}" in text and macs["substituted"] in text
    symbolic = data_of(invoke("explain", "-", "--json", input=TINY.replace("[1, 8, 8]", "[1, H, H]")))
    first = symbolic["layers"][0]["steps"][0]
    assert first["result"] == "H - 2"  # a formula: its text, as the table writes it


def test_the_json_shapes_are_documented():
    text = (ROOT / "docs" / "json.md").read_text()
    for command in ("analyze", "memory", "explain", "kinds", "check", "grade", "verify", "train", "evaluate"):
        assert f"`archcalc {command}" in text, command
    assert '"version"' in text and "docs/json.md" in (ROOT / "README.md").read_text()


# --- 3. one name per concept ----------------------------------------------------------------------------
def _help(*command, width=200):
    result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": str(width)})
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.mark.parametrize("command", ["analyze", "memory", "explain", "train"])
def test_batch_size_is_one_name(command):
    shown = _help(command)
    assert "--batch-size" in shown and "-b" in shown
    assert "--batch " not in shown.replace("--batch-size", "")


def test_old_spellings_still_work_with_a_note(tmp_path):
    spec = tmp_path / "tiny.yaml"
    spec.write_text(TINY)
    new = invoke("analyze", spec, "--json", "--batch-size", "8")
    old = invoke("analyze", spec, "--json", "--batch", "8")
    assert json.loads(old.stdout) == json.loads(new.stdout) and json.loads(new.stdout)["batch"] == 8
    assert "note: --batch is now called --batch-size" in old.stderr and new.stderr == ""
    assert json.loads(new.stdout)["totals"]["macs"] == 8 * TINY_MACS
    plan = invoke("memory", RESNET18, "--json", "--gpu", "a100", "--examples", "10")
    assert "note: --gpu is now called --gpu-model" in plan.stderr
    assert json.loads(plan.stdout) == data_of(invoke("memory", RESNET18, "--json", "--gpu-model", "a100",
                                                     "--examples", "10"))
    assert "--gpu " not in _help("memory").replace("--gpu-model", "")
    clash = invoke("analyze", spec, "--batch", "2", "--batch-size", "3")
    assert clash.exit_code == 2 and "give --batch-size only" in clash.stderr


@pytest.mark.parametrize("short, long", [("fp32", "float32"), ("fp16", "float16"), ("bf16", "bfloat16")])
def test_dtype_takes_both_spellings(short, long):
    a = data_of(invoke("memory", RESNET18, "--json", "--dtype", short))
    b = data_of(invoke("memory", RESNET18, "--json", "--dtype", long))
    assert a == b and a["dtype"] == long
    assert data_of(invoke("analyze", RESNET18, "--json", "--dtype", short))["dtype"] == long
    bad = invoke("memory", RESNET18, "--dtype", "fp17")
    assert bad.exit_code == 2 and "'fp17' is not one of" in bad.stderr and "float16" in bad.stderr


def test_train_names_match_the_other_commands():
    shown = _help("train")
    assert "--dtype" in shown and "--precision" not in shown
    assert "--output" in shown and "--out " not in shown
    assert "--quiet" in shown and "--json" in shown
    assert "--input" in _help("export") and "--json" in _help("explain") and "--json" in _help("kinds")
    assert "--quiet" in _help("verify") and "auto" in _help("verify")


def test_train_choices_are_train_s_own():
    tr = pytest.importorskip("archcalc.torch.train")
    from archcalc import cli

    for enum, key in ((cli.Task, "task"), (cli.TrainOptimizer, "optimizer"), (cli.Schedule, "schedule"),
                      (cli.CudaGraph, "cuda_graph")):
        assert tuple(e.value for e in enum) == tr.CHOICES[key]
    assert cli.TRAIN_DEVICES == tr.CHOICES["device"]
    assert tuple(cli.TRAIN_PRECISION[e.value] for e in cli.TrainDtype) == tr.CHOICES["precision"]
    # a config file may write torch's names too: float16 is fp16
    cfg = tr.TrainConfig.from_sources(None, {"precision": "bfloat16"})
    assert cfg.precision == "bf16"


def test_export_takes_input(tmp_path):
    spec = tmp_path / "tiny.yaml"
    spec.write_text(TINY.replace("  - flatten\n  - linear: 10\n", ""))
    default = invoke("export", spec, "--to", "dot")
    other = invoke("export", spec, "--to", "dot", "--input", "1,10,10")
    assert default.exit_code == 0 and other.exit_code == 0, other.output
    assert "[4, 6, 6]" in default.stdout and "[4, 8, 8]" in other.stdout  # 10 - 3 + 1 = 8


# --- 4. shell completion offers the typed choices ----------------------------------------------------------
def _complete(words: str):
    cword = len(words.split()) if words.endswith(" ") else len(words.split()) - 1
    result = runner.invoke(app, [], prog_name="archcalc", env={
        "_ARCHCALC_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": str(cword)})
    assert result.exit_code == 0, result.output
    return result.stdout.split()


def test_completion_is_installed_and_offers_choices():
    shown = runner.invoke(app, ["--show-completion", "bash"], prog_name="archcalc")
    assert shown.exit_code == 0 and "_ARCHCALC_COMPLETE=complete_bash" in shown.stdout
    assert "--install-completion" in _help()
    assert _complete("archcalc memory x.yaml --dtype ") == ["float64", "float32", "float16", "bfloat16", "float8",
                                                            "int8"]
    assert _complete("archcalc memory x.yaml --optimizer ") == ["sgd", "momentum", "adam", "adamw"]
    assert _complete("archcalc export x.yaml --to m") == ["mermaid"]
    assert _complete("archcalc analyze x.yaml --format ") == ["table", "json", "csv", "markdown"]
    assert _complete("archcalc verify x.yaml --device ") == ["auto", "cpu", "cuda", "meta"]
    assert _complete("archcalc train x.yaml --device ") == ["auto", "cpu", "cuda", "mps"]
    assert _complete("archcalc train x.yaml --schedule ") == ["none", "step", "cosine"]
    assert _complete("archcalc train x.yaml --optimizer ") == ["sgd", "adam", "adamw"]
    assert _complete("archcalc train x.yaml --dtype ") == ["float32", "bfloat16", "float16"]
    assert _complete("archcalc train x.yaml --task ") == ["classify", "binary", "regress", "denoise"]
    assert _complete("archcalc evaluate run --split ") == ["test", "val"]
    assert _complete("archcalc kinds con") == ["concat", "conv", "conv_transpose"]
    assert "--batch-size" in _complete("archcalc analyze x.yaml --ba")
    assert "--batch" not in _complete("archcalc analyze x.yaml --ba")  # the old spelling stays hidden


# --- 6. help text: paragraphs that rich wraps --------------------------------------------------------------
def _source_breaks():
    """(command, last word of a docstring line, first word of the next line of the same paragraph)."""
    out = []
    for info in app.registered_commands:
        lines = inspect.cleandoc(info.callback.__doc__ or "").splitlines()
        for a, b in zip(lines, lines[1:]):
            if a.strip() and b.strip():
                out.append((info.name or info.callback.__name__, a.split()[-1], b.split()[0]))
    return out


def _hard_breaks(rendered: str, breaks) -> list:
    """Rendered lines that end where the source broke a line although the next word would have fit."""
    found = []
    lines = rendered.splitlines()
    for line, following in zip(lines, lines[1:]):
        inner = line[:-1] if line.endswith("│") else line
        text, room = inner.rstrip(), len(inner) - len(inner.rstrip())
        head_of_next = following.strip(" │").split(" ")[0] if following.strip(" │") else ""
        for _, tail, head in breaks:
            if text.endswith(" " + tail) and head_of_next == head and room >= len(head) + 2:
                found.append(f"{text.strip(' │')[-40:]!r} / {head!r}")
    return found


@pytest.mark.parametrize("width", [80, 120])
def test_no_help_line_ends_where_the_source_broke_it(width):
    breaks = _source_breaks()
    assert len(breaks) > 10  # the docstrings do span lines: the test looks at something
    pages = [_help(width=width)] + [_help(info.name or info.callback.__name__.replace("_", "-"), width=width)
                                    for info in app.registered_commands]
    assert [b for page in pages for b in _hard_breaks(page, breaks)] == []


def test_a_paragraph_is_one_line_where_it_fits():
    overview = _help(width=120)  # the source breaks the line after "or an"
    assert "a Hugging Face config or an ONNX file" in overview
    assert "a Hugging Face config or an ONNX file" in _help("import", width=120)
    wide = _help(width=1000)
    doc = inspect.cleandoc(app.registered_commands[0].callback.__doc__)
    assert " ".join(doc.split()) in wide  # the whole docstring, one line, when the terminal is wide enough


def test_hard_breaks_are_found_where_they_exist():
    """The check above can fail: a text broken as the source broke it is caught."""
    breaks = [("import", "or", "an")]
    page = "│ a Hugging Face config or                      │\n│ an ONNX file                                   │"
    assert _hard_breaks(page, breaks) != []
    assert _hard_breaks(page.replace("or   ", "or an", 1).replace("│ an ONNX", "│ ONNX"), breaks) == []


# --- 5. -q, and the commands that need torch -----------------------------------------------------------------
torch_needed = pytest.mark.skipif(not __import__("importlib").util.find_spec("torch"), reason="needs torch")


@torch_needed
def test_verify_quiet_json_and_device_auto(tmp_path):
    import torch

    spec = tmp_path / "tiny.yaml"
    spec.write_text(TINY)
    full = invoke("verify", spec)
    quiet = invoke("verify", spec, "-q")
    assert full.exit_code == 0 and quiet.exit_code == 0, quiet.output
    lines = quiet.stdout.strip().splitlines()
    assert lines[0] == "tiny  verify on cpu: all figures match PyTorch"
    assert lines[1].startswith("total: ") and "1,450" not in quiet.stdout  # totals only: no per-layer row
    assert "✓ 1,490" in lines[1] and f"MACs ✓ {TINY_MACS:,}" in lines[1]
    assert len(lines) == 2 and "linear1" in full.stdout and "linear1" not in quiet.stdout
    doc = data_of(invoke("verify", spec, "--json", "--device", "auto"))
    _versioned(doc)
    assert doc["ok"] is True and doc["device"] == ("cuda" if torch.cuda.is_available() else "cpu")
    assert doc["totals"]["macs"] == {"analytic": TINY_MACS, "measured": TINY_MACS, "ok": True}
    from_stdin = data_of(invoke("verify", "-", "--json", "--device", "meta", input=TINY))
    assert from_stdin["totals"]["macs"]["measured"] == TINY_MACS
    _versioned(data_of(invoke("verify", spec, "--memory", "--json")))


DIGITS = ROOT / "specs" / "lecture" / "digits_cnn.yaml"


@torch_needed
def test_train_from_stdin_in_several_processes_is_refused(tmp_path):
    result = invoke("train", "-", "--gpus", "2", "--device", "cpu", "--output", tmp_path / "r", input=DIGITS.read_text())
    assert result.exit_code == 2 and "give it as a file, not '-'" in result.stderr
    assert not (tmp_path / "r").exists()


@torch_needed
@pytest.mark.slow
def test_train_from_stdin_quiet_and_json(tmp_path):
    """One short run (1 epoch on the 8x8 digits) from stdin with --json, the old spellings --out and
    --precision, then evaluate --json and a quiet resume."""
    out = tmp_path / "run"
    text = DIGITS.read_text()
    result = invoke("train", "-", "--json", "--epochs", "1", "--device", "cpu", "--out", out, "--precision", "fp32",
                    "--batch-size", "128", input=text)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)  # stdout holds the JSON only: no epoch lines, no table
    _versioned(doc)
    summary = json.loads((out / "summary.json").read_text())
    assert {k: v for k, v in doc.items() if k not in ("version", "run_dir")} == summary
    assert doc["run_dir"] == str(out) and "test" in doc
    assert "note: --precision is now called --dtype" in result.stderr
    assert (out / "spec.yaml").read_text() == text  # the run keeps the spec read from stdin
    assert "precision: fp32" in (out / "config.yaml").read_text()
    evaluated = data_of(invoke("evaluate", out, "--json", "--split", "val", "--device", "cpu"))
    _versioned(evaluated)
    assert evaluated["split"] == "val"
    more = invoke("train", "--resume", out, "--epochs", "2", "-q", "--dtype", "float32")
    assert more.exit_code == 0, more.output
    assert more.stdout.startswith("best epoch ") and "run folder:" in more.stdout  # the final figures only
    assert "epoch 2" not in more.stdout.split("best epoch")[0]
