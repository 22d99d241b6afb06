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
    # typer 0.29 imports pydantic whenever its app runs (`archcalc kinds` 0.117 s -> 0.184 s,
    # measured): the cap stays, its comment says why, and the typer installed loads no pydantic
    import subprocess

    text = (ROOT / "pyproject.toml").read_text()
    assert '"typer>=0.26,<0.29"' in text and "pydantic" in text and "0.117 s -> 0.184 s" in text
    probe = ("import contextlib, io, sys; from archcalc.cli import app\n"
             "with contextlib.redirect_stdout(io.StringIO()):\n    app(['kinds', 'conv'], standalone_mode=False)\n"
             "print(sorted({m.split('.')[0] for m in sys.modules} & {'pydantic', 'pydantic_core'}))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stdout + done.stderr[-1000:]


def test_project_urls_are_there_and_marked_as_placeholders():
    # the README names no repository yet: the three URLs are placeholders on the reserved .invalid
    # domain, and pyproject.toml says so right above them
    urls = project()["urls"]
    assert set(urls) == {"Homepage", "Documentation", "Issues"}
    assert all(u.startswith("https://archcalc.invalid/") for u in urls.values())
    text = (ROOT / "pyproject.toml").read_text()
    assert "PLACEHOLDERS" in text.split("[project.urls]")[0].rsplit("\n\n", 1)[-1]


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


#: Tests run from the unpacked sdist: quick ones that read what the sdist must hold (the specs, the
#: docs, README and pyproject.toml, the test helpers bundled.py and conftest.py, the answers files).
SDIST_TESTS = ["tests/test_docs.py", "tests/test_docs_claims.py", "tests/test_errors.py", "tests/test_layering.py",
               "tests/test_explain_latex.py", "tests/test_help_examples.py", "tests/reader/test_parse.py",
               "tests/homework/test_check.py", "tests/test_packaging.py"]


@pytest.mark.slow
def test_the_sdist_holds_what_its_tests_need_and_they_pass_from_it(tmp_path):
    """The sdist (setuptools' build_sdist, as `python -m build --sdist --no-isolation` calls it) holds
    every file of tests/, specs/, docs/ and bench/ (MANIFEST.in), and tests run from the unpacked
    tree, with its own archcalc, pass."""
    import subprocess
    import tarfile

    setuptools = pytest.importorskip("setuptools")
    if int(setuptools.__version__.split(".")[0]) < 77:
        pytest.skip("building needs setuptools >= 77 (PEP 639), which this environment lacks")
    if os.environ.get("ARCHCALC_FROM_SDIST"):
        pytest.skip("already running from an unpacked sdist")
    out = tmp_path / "dist"
    made = subprocess.run([sys.executable, "-c", "import sys; from setuptools import build_meta; "
                           "print(build_meta.build_sdist(sys.argv[1]))", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert made.returncode == 0, made.stderr[-2000:]
    (sdist,) = out.glob("archcalc-*.tar.gz")
    with tarfile.open(sdist) as tar:
        top = f"archcalc-{archcalc.__version__}"
        names = {n.removeprefix(top + "/") for n in tar.getnames()}
        tar.extractall(tmp_path, filter="data")
    wanted = {str(p.relative_to(ROOT)) for folder in ("tests", "specs", "docs", "bench")
              for p in (ROOT / folder).rglob("*") if p.is_file() and "__pycache__" not in p.parts
              and ".pytest_cache" not in p.parts and p.suffix != ".pyc"}
    assert wanted - names == set()
    assert {"LICENSE", "README.md", "pyproject.toml", ".ci/run", ".gitignore", "archcalc/py.typed"} <= names
    tree = tmp_path / top
    pkg_info = (tree / "PKG-INFO").read_text()
    assert "Project-URL: Homepage, https://archcalc.invalid/" in pkg_info and "License-Expression: MIT" in pkg_info
    env = {**{k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, "PYTHONPATH": str(tree),
           "ARCHCALC_FROM_SDIST": "1"}
    where = subprocess.run([sys.executable, "-c", "import archcalc; print(archcalc.__file__)"], cwd=tree, env=env,
                           capture_output=True, text=True, timeout=60).stdout
    assert where.strip() == str(tree / "archcalc" / "__init__.py")  # the sdist's archcalc, not the checkout's
    # the layer reference is regenerated by hand (archcalc kinds --markdown): checked in the main run
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *SDIST_TESTS,
                          "--deselect", "tests/test_docs.py::test_layer_reference_is_in_sync"],
                         cwd=tree, env=env, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-3000:]
    assert " passed" in run.stdout and " failed" not in run.stdout
