"""The quick run and the whole run (tests/conftest.py imports these hooks).

A test marked ``@pytest.mark.slow`` (or a file with ``pytestmark = pytest.mark.slow``) is a slow
cross-check: a network built and measured in PyTorch at full size, a training run, a process
group, a Hugging Face or torchvision reference, a wheel build, a fuzzer. Where it is left out:

- ``python -m pytest`` (and any run over folders) leaves the slow tests out, saying how many;
- ``python -m pytest --all`` runs every test: .ci/run and the README's test command do;
- a test file or test id named on the command line runs whole, slow tests included
  (``python -m pytest tests/torch/test_verify.py``), so a run never finds nothing to do;
- ``-m EXPR`` is obeyed as written (``-m slow`` runs only the slow ones).

The slow tests are deselected, not skipped: the quick run's summary says ``N deselected``.

When to mark a test slow: it costs more than about half a second of CPU on the project's 2-core
machine, or it builds, trains or exports a full-size network, starts processes, or compares with
a Hugging Face or torchvision reference. Keep a quick case of each behaviour in the quick run:
``pytest.param(..., marks=pytest.mark.slow)`` marks single cases of a parametrized test.
"""

from pathlib import Path

import pytest

ALL_OPTION = "--all"


def pytest_addoption(parser):
    parser.addoption(
        ALL_OPTION,
        action="store_true",
        dest="archcalc_all",
        help="run the slow cross-checks too (tests marked slow); .ci/run and the README's "
        "test command do",
    )


def _named_files(config):
    """The test files named on the command line (as FILE or FILE::TEST), resolved."""
    named = set()
    for arg in config.args:  # testpaths (a run without arguments) name only folders
        path = Path(config.invocation_params.dir, arg.split("::", 1)[0])
        if path.is_file():
            named.add(path.resolve())
    return named


def pytest_collection_modifyitems(config, items):
    if config.getoption("archcalc_all") or config.getoption("markexpr"):
        return
    named = _named_files(config)
    keep, slow = [], []
    for item in items:
        if item.get_closest_marker("slow") is not None and Path(item.path).resolve() not in named:
            slow.append(item)
        else:
            keep.append(item)
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = keep
    config.stash[_left_out] = len(slow)


_left_out = pytest.StashKey[int]()


def pytest_terminal_summary(terminalreporter, config):
    left_out = config.stash.get(_left_out, 0)
    if left_out:
        terminalreporter.write_line(
            f"{left_out} slow cross-checks were left out of this quick run; "
            f"`python -m pytest {ALL_OPTION}` runs every test."
        )
