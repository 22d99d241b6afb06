"""The README's `$ archcalc ...` transcripts are what those commands print now (issue 14 point 11:
docs say what the code does). Every line shown (a "..." row stands for rows left out) must be a
line of the command's output; a `| grep -E "^(a|b)"` keeps the lines it keeps."""
import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from archcalc.cli import app

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def _transcripts():
    for block in re.findall(r"```\n(\$ archcalc .*?)```", README, re.S):
        for part in re.split(r"^\$ ", block, flags=re.M)[1:]:
            command, *shown = part.splitlines()
            yield command, shown


TRANSCRIPTS = list(_transcripts())
# the ones a test here runs: what they need exists in the tree, and their output is the machine's own
# only where it says so (train's speed), so those two are left to tests/test_docs_claims.py
RUN = [(c, s) for c, s in TRANSCRIPTS if s and not c.startswith(("archcalc train", "archcalc analyze net.yaml"))]


def test_the_readme_has_the_transcripts_this_file_checks():
    commands = [c for c, _ in RUN]
    assert len(commands) >= 7 and any(c.startswith("archcalc verify") for c in commands)
    assert any("--json" in c for c in commands) and any("| grep" in c for c in commands)


@pytest.mark.parametrize("command,shown", [pytest.param(c, s, id=c.split("#")[0].strip()[9:60],
                                                        marks=[pytest.mark.slow] if " verify " in c else [])
                                           for c, s in RUN])
def test_a_readme_transcript_is_the_current_output(command, shown, monkeypatch):
    monkeypatch.chdir(ROOT)
    words = shlex.split(command.split(" #")[0])
    keep = None
    if "|" in words:
        at = words.index("|")
        assert words[at + 1:at + 3] == ["grep", "-E"], command
        keep, words = re.compile(words[at + 3]), words[:at]
    assert words[0] == "archcalc"
    result = CliRunner(env={"COLUMNS": "200"}).invoke(app, words[1:])
    assert result.exit_code == 0, (command, result.output[-2000:])
    printed = [line.rstrip() for line in result.stdout.splitlines() if keep is None or keep.search(line)]
    for line in shown:
        if re.fullmatch(r"[│ .]*\.\.\.[│ ]*|\s*\.\.\.,?", line):  # rows left out
            continue
        assert line.rstrip() in printed, (command, line)
    if keep is not None:
        assert [line.rstrip() for line in shown] == printed, command


@pytest.mark.slow
def test_the_readme_training_run_gives_its_losses(tmp_path):
    # the seed fixes every loss and accuracy of the README's digits run; only the speed is the machine's
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    (command, shown), = [(c, s) for c, s in TRANSCRIPTS if c.startswith("archcalc train")]
    words = shlex.split(command)
    words[words.index("--output") + 1] = str(tmp_path / "digits")
    words[2] = str(ROOT / words[2])
    result = CliRunner(env={"COLUMNS": "200"}).invoke(app, words[1:])
    assert result.exit_code == 0, result.output[-2000:]
    speed = re.compile(r"  [\d.]+ k?ex/s  [\d.]+ [MG]?FLOP/s$")
    printed = [speed.sub("", line.rstrip()) for line in result.stdout.splitlines()]
    for line in shown:
        assert speed.sub("", line) in printed, line
    # and evaluate's JSON on that run has the keys docs/json.md gives, the figures under the split's name
    import json

    doc = " ".join((ROOT / "docs" / "json.md").read_text().split())
    documented = doc.split("`archcalc evaluate RUN --json`: `{", 1)[1].split("}`", 1)[0]
    for split in ("test", "val"):
        got = json.loads(CliRunner().invoke(app, ["evaluate", str(tmp_path / "digits"), "--split", split,
                                                  "--json"]).stdout)
        top = re.findall(r'"(\w+)"', re.sub(r"\{[^}]*\}", "", documented))
        assert top[:-1] + [split] == list(got)
        assert re.findall(r'"(\w+)"', documented.split('"test": {')[1]) == list(got[split])
    assert got["val"]["examples"] == 270 and got["split"] == "val"  # 15% of digits' 1,797, as train's val line
