"""Bundled specs by name (`zoo:resnet18`), wherever archcalc runs (issue 14 point 3, in part)."""
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

import archcalc
from archcalc.cli import app
from archcalc.reader import bundled

ROOT = Path(__file__).resolve().parents[2]


def test_a_bundled_name_is_its_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # an empty folder: nothing of the user's is called so
    assert bundled.resolve("zoo:resnet18") == ROOT / "specs" / "zoo" / "resnet18.yaml"
    assert bundled.resolve("homework:written_assignment_1.key.yaml") == \
        ROOT / "specs" / "homework" / "written_assignment_1.key.yaml"
    report = archcalc.analyze("zoo:resnet18")
    assert report.totals.trainable_params == 11_689_512  # torchvision's resnet18
    assert bundled.resolve("torchvision:resnet18") is None and bundled.resolve("resnet18.yaml") is None


def test_an_unknown_name_says_what_there_is(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(archcalc.SpecError, match=r"no bundled spec zoo:resnet19 \(did you mean 'resnet18'\?\)"):
        archcalc.analyze("zoo:resnet19")
    result = CliRunner().invoke(app, ["analyze", "zoo:resnet19"])
    assert result.exit_code == 2 and "Traceback" not in result.output


def test_the_users_own_file_of_that_name_comes_first(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("zoo:resnet18").write_text("name: mine\ninput: [4]\nlayers:\n  - linear: 2\n")
    assert archcalc.analyze("zoo:resnet18").totals.params == 4 * 2 + 2


def test_examples_lists_every_bundled_spec(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner(env={"COLUMNS": "200"}).invoke(app, ["examples"])
    assert result.exit_code == 0
    files = sorted(p for c in bundled.CATEGORIES for p in (ROOT / "specs" / c).glob("*.yaml"))
    assert len(files) > 40
    for path in files:
        assert f"{path.parent.name}:{path.stem}" in result.output, path


def test_an_installed_wheels_data_folder_is_found(tmp_path, monkeypatch):
    # Without the source tree, the wheel's data files under <prefix>/share/archcalc/specs are used.
    data = tmp_path / "share" / "archcalc" / "specs" / "zoo"
    data.mkdir(parents=True)
    (data / "tiny.yaml").write_text("# a tiny net\ninput: [4]\nlayers:\n  - linear: 3\n")
    monkeypatch.setattr(bundled, "__file__", str(tmp_path / "site" / "archcalc" / "spec" / "bundled.py"))
    monkeypatch.setattr(bundled.sys, "prefix", str(tmp_path))
    monkeypatch.setattr(bundled.sysconfig, "get_paths", lambda: {"data": str(tmp_path)})
    assert bundled.root() == tmp_path / "share" / "archcalc" / "specs"
    assert bundled.resolve("zoo:tiny") == data / "tiny.yaml"
    assert bundled.listing()["zoo"] == [("tiny", "a tiny net")]
