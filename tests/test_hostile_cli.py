"""Hostile command lines and hostile names (issue 10): every bad option value is one line
`error: --option ...` with exit code 2, and no output can be injected with what a spec names.

Plain cases run in-process (typer's CliRunner); what needs a real process (a real terminal path,
the `python -m archcalc` entry point) goes through tests/hostile.py.
"""
from pathlib import Path

import pytest
from typer.testing import CliRunner

from archcalc.cli import app
from archcalc.errors import Loc, SpecError, one_line
from hostile import Run, assert_refused, run_cli

ROOT = Path(__file__).resolve().parents[1]
STACK = ROOT / "specs" / "lecture" / "conv3x3_stack.yaml"
HOMEWORK = ROOT / "specs" / "homework" / "conv_pool_fc.yaml"
ANSWER_KEY = ROOT / "specs" / "homework" / "conv_pool_fc.answers.yaml"
BIG = "9" * 5000
runner = CliRunner()


def _invoke(*args) -> Run:
    result = runner.invoke(app, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return Run(result.exit_code, result.stdout, result.stderr, 0.0)


def _option_error(run: Run, option: str, contains: str | None = None) -> str:
    line = assert_refused(run, located=False, contains=contains)
    assert line.startswith(f"error: {option}"), line
    assert len(line) < 400, line
    return line


# --- numbers on the command line ------------------------------------------------------------------
@pytest.mark.parametrize("value", ["inf", "nan", "-1", "0", "-inf", "1e-300", "1e999", "abc", ""])
def test_peak_tflops(value):
    _option_error(_invoke("memory", STACK, "--peak-tflops", value), "--peak-tflops")


@pytest.mark.parametrize("value", ["inf", "nan", "-1", "0", "1.5", "1e-300", "abc"])
def test_utilization(value):
    _option_error(_invoke("memory", STACK, "--gpu-model", "h100-sxm", "--utilization", value), "--utilization")


@pytest.mark.parametrize("option, value", [("--tokens", "0"), ("--examples", "-3"), ("--examples", str(10**40)),
                                           ("--examples", BIG), ("--batch", BIG), ("--batch", "0"),
                                           ("--batch", str(10**19)), ("--batch", "1.5"), ("--batch", "²")])
def test_memory_counts(option, value):
    _option_error(_invoke("memory", STACK, option, value), option)


@pytest.mark.parametrize("command", ["analyze", "explain", "memory"])
@pytest.mark.parametrize("value", ["1,\u00b2,8", "1,\u0663,8", "3," + BIG, "3,-8,8", "0,8,8", "", "3,H,W",
                                   "3,1" + "0" * 40 + ",8"])
def test_input_sizes_are_ascii_digits(command, value):
    _option_error(_invoke(command, STACK, "--input", value), "--input")


@pytest.mark.parametrize("value", ["H=" + BIG, "H=\u00b2", "H=\u0663", "H=0", "H=-4", "=4", "H", "H=1" + "0" * 40,
                                   "H\x00=4", "H\u00e9=4"])
def test_set_values(value):
    _option_error(_invoke("analyze", HOMEWORK, "--set", value), "--set")


def test_depth_and_batch_of_analyze():
    _option_error(_invoke("analyze", STACK, "--depth", "0"), "--depth")
    _option_error(_invoke("analyze", STACK, "--depth", BIG), "--depth")
    _option_error(_invoke("analyze", STACK, "--batch", "abc"), "--batch")


def test_the_largest_allowed_batch_still_analyses():
    run = _invoke("analyze", STACK, "--batch", str(10**18), "--json")
    assert run.rc == 0, run.stderr
    assert '"batch": 1000000000000000000' in run.stdout


def test_a_choice_and_a_missing_option_are_one_line():
    _option_error(_invoke("analyze", STACK, "--format", "nope"), "--format")
    line = assert_refused(_invoke("export", STACK), located=False)
    assert "--to" in line


def test_the_real_entry_point_gives_one_line_for_a_usage_mistake():
    run = run_cli(["memory", STACK, "--peak-tflops", "nan"], timeout=60)
    _option_error(run, "--peak-tflops")
    run = run_cli(["analyze", STACK, "--batch", BIG], timeout=60)
    _option_error(run, "--batch")


@pytest.mark.parametrize("args", [["export", STACK, "--to", "dot", "-o", "{tmp}"],
                                  ["export", STACK, "--to", "mermaid", "-o", "{tmp}/missing/x.md"],
                                  ["check", HOMEWORK, ANSWER_KEY, "--gradebook", "{tmp}"],
                                  # a name too long to look at (os.stat raises ENAMETOOLONG): was a traceback
                                  ["export", STACK, "--to", "onnx", "-o", "{tmp}/" + "a" * 300 + ".onnx"],
                                  ["export", STACK, "--to", "onnx", "-o", "{tmp}"],
                                  ["export", STACK, "--to", "pytorch", "-o", "{tmp}/" + "a" * 300 + ".py"]])
def test_an_output_path_that_cannot_be_written(tmp_path, args):
    args = [str(a).replace("{tmp}", str(tmp_path)) for a in args]
    line = assert_refused(_invoke(*args), located=False)
    assert "cannot write" in line


# --- one line, whatever the message holds ---------------------------------------------------------
@pytest.mark.parametrize("bad", ["\n", "\r", "\x00", "\x1b[2J", "\u2028", "\u2029", "\x85", "\t", "\u202e", "\x7f"])
def test_spec_error_is_always_one_printable_line(bad):
    text = str(SpecError(f"bad{bad}message", Loc(f"dir{bad}/spec.yaml", 3, 4), f"la{bad}yer", "conv"))
    assert len(text.splitlines()) == 1
    assert all(ch >= " " and ch != "\x7f" and not 0x80 <= ord(ch) < 0xA0 for ch in text), repr(text)
    assert ord(bad[0]) not in {ord(ch) for ch in text}
    assert text.startswith("dir") and ":3:4: error: layer 'la" in text


def test_one_line_keeps_ordinary_text():
    assert one_line("größe ² 中 ok") == "größe ² 中 ok"
    assert one_line("a\nb") == "a\\nb"
    assert one_line("\x1b[31m") == "\\x1b[31m"
    assert one_line("x\u2028y") == "x\\u2028y"


def test_a_control_character_in_a_value_stays_on_one_line(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text('input: [3, 8, 8]\nlayers:\n  - conv: {out: 4, kernel: 3, padding_mode: "zer\\nos\\e[2J"}\n')
    line = assert_refused(_invoke("analyze", spec), where=f"{spec}:3")
    assert "\\n" in line and "\\x1b" in line


# --- outputs cannot be injected -------------------------------------------------------------------
NASTY_NAME = 'net """ \\" \\\\ # <b>x</b> | `tick` [a](http://x) \u00e9'  # valid: the reader takes any text


def _spec(tmp_path, name: str, file: str = "spec.yaml") -> Path:
    import json

    path = tmp_path / file
    path.write_text(f"name: {json.dumps(name)}\ninput: [3, 8, 8]\nlayers:\n  - conv: {{out: 4, kernel: 3}}\n"
                    "  - relu\n  - {name: skip, from: input, conv: {out: 4, kernel: 3}}\n"
                    "  - {add: {}, from: [relu1, skip]}\n")
    return path


def _docstring_reads_back(source: str, name: str) -> None:
    import ast

    tree = ast.parse(source)
    assert ast.get_docstring(tree).splitlines()[0] == f"{one_line(name)} as a PyTorch module."


def test_export_pytorch_compiles_with_a_nasty_name_and_file_name(tmp_path):
    pytest.importorskip("torch")
    path = _spec(tmp_path, NASTY_NAME, file='we"ird\'"""#.yaml')
    run = _invoke("export", path, "--to", "pytorch")
    assert run.rc == 0, run.stderr
    compile(run.stdout, "exported.py", "exec")
    _docstring_reads_back(run.stdout, NASTY_NAME)
    assert 'we\\"ird\'\\"\\"\\"#.yaml' in run.stdout  # the file name, escaped, inside the docstring


@pytest.mark.parametrize("bad", ["\x00", "\n", "\r", "\r\n", "\u2028", "\u2029", "\x1b[2J", '"""', "\\", '\\"""',
                                 "\x0c", "\ufeff"])
def test_pytorch_source_compiles_whatever_the_name(tmp_path, bad):
    # Past the reader (which may refuse some of these itself): the writer is safe on its own.
    pytest.importorskip("torch")
    from dataclasses import replace

    import archcalc
    from archcalc.torch.source import pytorch_source

    graph = archcalc.load_spec(_spec(tmp_path, "x"))
    name = f"a{bad}b{bad}"
    source = pytorch_source(replace(graph, name=name, file=str(tmp_path / f"f{bad}.yaml")))
    compile(source, "exported.py", "exec")
    assert "\x00" not in source and "\u2028" not in source and "\x1b" not in source
    _docstring_reads_back(source, name)


def test_markdown_output_is_text_only(tmp_path):
    path = _spec(tmp_path, NASTY_NAME + "<script>alert(1)</script>")
    run = _invoke("analyze", path, "--format", "markdown")
    assert run.rc == 0, run.stderr
    header = run.stdout.splitlines()[0]
    assert header.startswith("### net ")
    assert "<" not in run.stdout and ">" not in run.stdout.replace("-&gt;", "")
    assert "&lt;script&gt;" in header and "\\|" in header and "\\`tick\\`" in header and "](" not in header
    rows = [line for line in run.stdout.splitlines() if line.startswith("| ")]
    assert all(line.count(" | ") == 5 for line in rows)  # six cells: no cell was split


@pytest.mark.parametrize("bad", ["\n", "\r", "\x00", "\u2028", "|", "<br>"])
def test_markdown_escape_keeps_one_line_and_every_cell(bad):
    from archcalc.render import markdown_escape

    text = markdown_escape(f"a{bad}b")
    assert len(text.splitlines()) == 1 and "<" not in text
    assert "|" not in text.replace("\\|", "")


def test_dot_and_mermaid_quote_everything(tmp_path):
    from dataclasses import replace

    import archcalc
    from archcalc.graph_export import to_dot, to_mermaid

    graph = archcalc.load_spec(_spec(tmp_path, "x"))
    nodes = [replace(node, name=f'{node.name}"\n<b>`#quot;') if node.name == "skip" else node for node in graph.nodes]
    nodes = [replace(node, inputs=tuple(i if i != "skip" else nodes[2].name for i in node.inputs)) for node in nodes]
    hostile = replace(graph, name='g" [color=red] "\n\x00', nodes=nodes)
    # The analysis reads only kinds, arguments and inputs; names are labels here.
    dot = to_dot(hostile)
    assert dot.splitlines()[0] == 'digraph "g\\" [color=red] \\"\\n\\\\x00" {'
    assert '"skip\\"\\n<b>`#quot;"' in dot  # one quoted ID: quote escaped, newline a dot escape
    mermaid = to_mermaid(hostile)
    lines = mermaid.splitlines()
    assert lines[0] == "```mermaid" and lines[-1] == "```" and all("```" not in line for line in lines[1:-1])
    assert '"skip#quot;<br/>#lt;b#gt;#96;#35;quot;<br/>conv<br/>[4, 6, 6]"' in mermaid


def test_an_output_that_is_a_named_pipe_is_refused_not_waited_on(tmp_path):
    import os

    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    run = run_cli(["export", STACK, "--to", "dot", "-o", pipe], timeout=60)
    assert "named pipe" in assert_refused(run, located=False)


def test_an_output_file_is_replaced_whole_and_a_link_is_followed(tmp_path):
    target = tmp_path / "drawing.dot"
    target.write_text("old")
    target.chmod(0o640)
    link = tmp_path / "link.dot"
    link.symlink_to(target)
    run = _invoke("export", STACK, "--to", "dot", "-o", link)
    assert run.rc == 0, run.stderr
    assert link.is_symlink() and target.read_text().startswith("digraph ")
    assert target.stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["drawing.dot", "link.dot"]  # no temporary left
    assert _invoke("export", STACK, "--to", "dot", "-o", "/dev/null").rc == 0


# --- sympy's own work on symbolic spec values is bounded (found while fuzzing answers) ------------
@pytest.mark.parametrize("value, contains", [
    ("min((W**30)**15, 2*W + W**13, 158, min(H, W, H)//H)", "min() of a formula of degree above 4"),  # a hang
    ("max(W**40 + 3*W**2 - 7, 2*W + W**20 - 5, 158)", "max() of a formula of degree above 4"),
    ("(H*W + W**53)//(W - W**53)", "// of a formula of degree above 8"),
    ("max(" + ",".join(f"H//{i}" for i in range(2, 12)) + ")", "at most 8"),
])
@pytest.mark.slow
def test_symbolic_min_max_and_floors_in_a_spec_are_bounded(tmp_path, value, contains):
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"input: [1, H, W]\nlayers:\n  - conv: {{out: '{value}', kernel: 1}}\n")
    run = run_cli(["analyze", spec], timeout=60)
    assert_refused(run, where=f"{spec}:3:17", contains=contains)


def test_ordinary_symbolic_min_and_floors_still_work(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text("input: [1, H, W]\nlayers:\n  - conv: {out: 'max(H//4, W % 3, 2)', kernel: 1}\n")
    run = _invoke("analyze", spec, "--json")
    assert run.rc == 0, run.stderr
    assert "Max(2, Mod(W, 3), floor(H/4))" in run.stdout
