import importlib.util
import sys
import textwrap
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/bundled.py for every test folder

import archcalc

# The quick run and the whole run: `python -m pytest` leaves out the tests marked slow,
# `python -m pytest --all` (.ci/run, the README) runs them too; tests/slow_marker.py says how.
from slow_marker import pytest_addoption, pytest_collection_modifyitems, pytest_terminal_summary  # noqa: F401

if importlib.util.find_spec("torchvision") is not None:
    # A torchvision wheel built for another torch fails at import ("torchvision::nms does not
    # exist"), and transformers imports torchvision wherever it is installed: load its pure-Python
    # model code once, with the failing registrations skipped (tests/torchvision_models.py), so
    # that every later import finds it whole.
    from torchvision_models import torchvision_models

    torchvision_models()


@pytest.fixture
def analyze_yaml(tmp_path):
    """Write YAML text to a file and analyse it; returns the Report."""

    def run(text, **kwargs):
        path = tmp_path / "spec.yaml"
        path.write_text(textwrap.dedent(text))
        return archcalc.analyze(path, **kwargs)

    return run


@pytest.fixture
def spec_error(tmp_path):
    """Write YAML text to a file, expect a SpecError, return it."""

    def run(text, **kwargs):
        path = tmp_path / "bad.yaml"
        path.write_text(textwrap.dedent(text))
        with pytest.raises(archcalc.SpecError) as info:
            archcalc.analyze(path, **kwargs)
        return info.value

    return run
