import sys
import textwrap
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/bundled.py for every test folder

import archcalc


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
