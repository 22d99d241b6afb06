"""The quick run and the whole run (issue 14 point 9; the rule is in tests/slow_marker.py).

`python -m pytest` leaves out the tests marked slow; `python -m pytest --all` runs every test, and
that is the README's test command and what .ci/run runs. The rule itself is tested on a small
tree of its own (in process, a fraction of a second); the real suite's two collections are
compared in a slow test of their own (two collections of the whole suite, run by --all and CI).
"""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    tomllib = pytest.importorskip("tomli")


def _pytest_options():
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["pytest"]["ini_options"]


def _readme_setup_commands():
    """The sh blocks of the README's Set-up section, in order."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Set-up\n", 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"```sh\n(.*?)```", section, flags=re.S)]


def _ci_command():
    """.ci/run's one command (its lines other than comments, `set` and `cd`)."""
    lines = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    body = [line.strip() for line in lines
            if line.strip() and not line.lstrip().startswith(("#", "set ", "cd "))]
    assert len(body) == 1, body
    return body[0]


def test_the_slow_marker_is_registered_and_markers_are_strict():
    options = _pytest_options()
    assert any(m.split(":", 1)[0].strip() == "slow" for m in options["markers"]), options["markers"]
    assert options["strict_markers"] is True  # a misspelt marker is an error (pytest >= 9)
    assert "not slow" not in options.get("addopts", "")  # the rule is in tests/slow_marker.py, once


BUILTIN_MARKERS = {"parametrize", "skip", "skipif", "xfail", "usefixtures", "filterwarnings"}


def test_every_marker_the_tests_use_is_registered():
    """Whatever pytest's version: a marker that is neither built in nor registered is a typo."""
    registered = {m.split(":", 1)[0].strip() for m in _pytest_options()["markers"]} | BUILTIN_MARKERS
    used = {}
    for path in sorted((ROOT / "tests").rglob("*.py")):
        for name in re.findall(r"pytest\.mark\.(\w+)", path.read_text(encoding="utf-8")):
            used.setdefault(name, str(path.relative_to(ROOT)))
    assert "slow" in used
    assert {name: where for name, where in used.items() if name not in registered} == {}


def test_ci_runs_the_readmes_test_command_and_it_runs_every_test():
    commands = _readme_setup_commands()
    assert len(commands) == 2, commands  # install and analyse; install the test deps and test
    assert _ci_command() == commands[1]
    assert commands[1].endswith("&& python -m pytest --all"), commands[1]


SMALL_TREE = {
    "tests/test_quick.py": "def test_one():\n    pass\n\ndef test_two():\n    pass\n",
    "tests/test_mixed.py": ("import pytest\n\ndef test_quick():\n    pass\n\n"
                            "@pytest.mark.slow\ndef test_slow():\n    pass\n"),
    "tests/test_whole_file_slow.py": ("import pytest\n\npytestmark = pytest.mark.slow\n\n"
                                      "def test_a():\n    pass\n\ndef test_b():\n    pass\n"),
}


@pytest.fixture
def tree(pytester):
    """A project of 6 tests, 3 of them slow, with this suite's rule and marker."""
    pytester.makeini("[pytest]\ntestpaths = tests\nstrict_markers = true\nmarkers =\n    slow: a slow cross-check\n"
                     "addopts = -p no:cacheprovider -p no:benchmark -p no:hypothesispytest -p no:anyio\n")
    pytester.makeconftest(
        f"import sys\nsys.path.insert(0, {str(Path(__file__).resolve().parent)!r})\n"
        "from slow_marker import pytest_addoption, pytest_collection_modifyitems, pytest_terminal_summary\n")
    for name, text in SMALL_TREE.items():
        path = pytester.path / name
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
    return pytester


def test_a_plain_run_leaves_the_slow_tests_out_and_says_so(tree):
    result = tree.runpytest()
    result.assert_outcomes(passed=3, deselected=3)
    assert result.ret == 0
    result.stdout.fnmatch_lines(["3 slow cross-checks were left out of this quick run; "
                                 "`python -m pytest --all` runs every test."])
    result = tree.runpytest("tests")  # a folder named: the same quick run
    result.assert_outcomes(passed=3, deselected=3)


def test_all_runs_every_test(tree):
    result = tree.runpytest("--all")
    result.assert_outcomes(passed=6)
    assert "left out" not in result.stdout.str()


def test_a_file_or_test_named_on_the_command_line_runs_whole(tree):
    tree.runpytest("tests/test_whole_file_slow.py").assert_outcomes(passed=2)
    tree.runpytest("tests/test_mixed.py").assert_outcomes(passed=2)
    tree.runpytest("tests/test_mixed.py::test_slow").assert_outcomes(passed=1)
    # A file named beside a folder: the file runs whole, the folder's other files run quick.
    tree.runpytest("tests", "tests/test_mixed.py").assert_outcomes(passed=4, deselected=2)


def test_a_marker_expression_is_obeyed_as_written(tree):
    tree.runpytest("-m", "slow").assert_outcomes(passed=3, deselected=3)
    tree.runpytest("-m", "not slow").assert_outcomes(passed=3, deselected=3)


def test_a_misspelt_marker_is_an_error(tree):
    typo = "pytest.mark." + "slwo"  # spelt apart: test_every_marker_the_tests_use_is_registered reads this file
    (tree.path / "tests" / "test_typo.py").write_text(f"import pytest\n\n@{typo}\ndef test_x():\n    pass\n")
    result = tree.runpytest()
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*'slwo' not found in `markers` configuration option*"])


_COLLECTED = re.compile(r"^(\d+)(?:/(\d+))? tests? collected(?: \((\d+) deselected\))?", re.M)


def _collect(*args):
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}
    return subprocess.Popen([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *args],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _finish(proc):
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out[-3000:]  # never 5 (nothing collected), never an error
    selected, total, deselected = _COLLECTED.search(out).groups()
    ids = {line for line in out.splitlines() if "::" in line}
    assert len(ids) == int(selected)
    return ids, int(total or selected), int(deselected or 0)


@pytest.mark.slow
def test_the_real_suites_quick_and_whole_runs_differ_by_the_slow_tests():
    """Three collections of the whole suite, side by side: the quick run, --all, and -m slow."""
    quick, whole, slow = _collect(), _collect("--all"), _collect("-m", "slow")
    quick_ids, quick_total, quick_left_out = _finish(quick)
    whole_ids, whole_total, whole_left_out = _finish(whole)
    slow_ids, _, _ = _finish(slow)
    assert whole_left_out == 0 and whole_total == quick_total == len(whole_ids)
    assert slow_ids and quick_ids and not quick_ids & slow_ids
    assert quick_ids | slow_ids == whole_ids
    assert quick_left_out == len(slow_ids)
    assert len(quick_ids) > len(slow_ids)  # the quick run still holds most of the tests
