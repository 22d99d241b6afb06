"""Examples written in --help text are real: each one runs and prints what the help says."""
import re

import typer
from typer.testing import CliRunner

from archcalc.cli import app

runner = CliRunner()


def _help(command: str, option: str) -> str:
    cmd = typer.main.get_command(app).commands[command]
    return next(p for p in cmd.params if option in p.opts).help


def test_assume_divisible_example_runs_and_prints_what_the_help_says():
    for command in ("analyze", "explain", "check"):  # one shared help text
        text = _help(command, "--assume")
        example = re.search(r"`archcalc (.+?)` gives params (.+?), not (.+?)\.$", text)
        assert example, text
        args, assumed, floored = example.group(1).split(), example.group(2), example.group(3)
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        assert f"params {assumed}: trainable {assumed}" in result.stdout
        without = runner.invoke(app, [a for a in args if a not in ("--assume", "divisible")])
        assert f"params {floored}: trainable" in without.stdout
    # both forms agree where H - 4 and W - 4 are even: 40*24*24 + 426 = 160*12*12 + 426 = 23,466
    result = runner.invoke(app, ["analyze", "homework:written_assignment_1", "--set", "H=28", "--set", "W=28"])
    assert "params 23,466 " in result.stdout
