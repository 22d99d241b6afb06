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
    _option_error(_invoke("memory", STACK, "--gpu", "h100-sxm", "--utilization", value), "--utilization")


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
                                  ["check", HOMEWORK, ANSWER_KEY, "--gradebook", "{tmp}"]])
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
