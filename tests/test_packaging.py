"""The package's metadata (issue 14 point 3, in part): one version source, an SPDX licence with
its file, py.typed shipped, classifiers; read from pyproject.toml and the installed distribution."""
import os
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


@pytest.mark.slow
def test_the_wheel_runs_a_bundled_spec_in_an_empty_folder(tmp_path):
    """pip install archcalc && archcalc analyze zoo:resnet18, in a folder with nothing in it: the
    wheel (built here without network: --no-build-isolation) carries the specs as data files."""
    import subprocess
    import venv

    setuptools = pytest.importorskip("setuptools")
    if int(setuptools.__version__.split(".")[0]) < 77:
        pytest.skip("building needs setuptools >= 77 (PEP 639), which this environment lacks")
    wheels = tmp_path / "wheels"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation",
                            "-q", "-w", str(wheels)], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr[-2000:]
    (wheel,) = wheels.glob("archcalc-*.whl")
    import zipfile

    names = zipfile.ZipFile(wheel).namelist()
    assert any(n.endswith("data/share/archcalc/specs/zoo/resnet18.yaml") for n in names)
    assert "archcalc/py.typed" in names
    env_dir = tmp_path / "venv"
    venv.create(env_dir, system_site_packages=True, with_pip=False)  # the dependencies come from here
    python = env_dir / "bin" / "python"
    if not python.exists():
        pytest.skip("no POSIX venv layout here")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}  # only the venv's archcalc
    # --ignore-installed: the checkout's own (editable) archcalc, seen through the system site, must
    # not count as "already satisfied"
    install = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q",
                              "--ignore-installed", str(wheel)], capture_output=True, text=True, timeout=300, env=env)
    if install.returncode != 0 and "no such option: --python" in install.stderr:
        pytest.skip("this pip cannot install into another environment")
    assert install.returncode == 0, install.stderr[-2000:]
    empty = tmp_path / "empty"
    empty.mkdir()
    env["COLUMNS"] = "80"
    run = subprocess.run([str(env_dir / "bin" / "archcalc"), "analyze", "zoo:resnet18"], cwd=empty, env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "params 11,699,112" in run.stdout and "output [1000]" in run.stdout
    # every figure whole at 80 columns: conv1's MACs, a layer4 conv's parameters, nothing cut with "…"
    assert "…" not in run.stdout and "118,013,952" in run.stdout and "2,359,296" in run.stdout
    where = subprocess.run([str(python), "-c", "import archcalc; print(archcalc.__file__)"], cwd=empty, env=env,
                           capture_output=True, text=True, timeout=60).stdout
    assert str(env_dir) in where  # the wheel's archcalc, not the checkout's
