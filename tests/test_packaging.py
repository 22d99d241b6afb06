"""The package's metadata (issue 14 point 3, in part): one version source, an SPDX licence with
its file, py.typed shipped, classifiers; read from pyproject.toml and the installed distribution."""
import sys
from pathlib import Path

import pytest

import archcalc

ROOT = Path(__file__).resolve().parents[1]

tomllib = pytest.importorskip("tomllib") if sys.version_info >= (3, 11) else pytest.importorskip("tomli")


def project():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_the_version_has_one_source():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in meta["project"] and "version" in meta["project"]["dynamic"]
    assert meta["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "archcalc.__version__"}
    from importlib.metadata import version

    assert version("archcalc") == archcalc.__version__


def test_the_licence_is_an_spdx_expression_with_its_file():
    p = project()
    assert p["license"] == "MIT" and p["license-files"] == ["LICENSE"]
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")


def test_typed_and_classified():
    assert (ROOT / "archcalc" / "py.typed").exists()
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "py.typed" in meta["tool"]["setuptools"]["package-data"]["archcalc"]
    assert "Typing :: Typed" in project()["classifiers"]


def test_typer_is_capped_below_0_29_and_says_why():
    # typer 0.29 builds a pydantic adapter per option at every start (start-up doubled): the cap stays
    text = (ROOT / "pyproject.toml").read_text()
    assert '"typer>=0.26,<0.29"' in text and "pydantic" in text
