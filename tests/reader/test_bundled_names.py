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
    monkeypatch.setattr(bundled.sysconfig, "get_paths", lambda *a, **k: {"data": str(tmp_path)})
    assert bundled.root() == tmp_path / "share" / "archcalc" / "specs"
    assert bundled.resolve("zoo:tiny") == data / "tiny.yaml"
    assert bundled.listing()["zoo"] == [("tiny", "a tiny net")]


def test_examples_says_what_every_bundled_spec_is(tmp_path, monkeypatch):
    # The transformer and sequence specs say it in `description:` (no leading comment): their rows
    # were empty; a leading comment's sentence was cut at its first line break.
    listed = {f"{c}:{n}": what for c, rows in bundled.listing().items() for n, what in rows}
    assert len(listed) > 40 and all(listed.values()), [k for k, v in listed.items() if not v]
    assert listed["transformers:bert_base"] == ("BERT-base uncased (Devlin et al. 2019), as Hugging Face's "
                                                "BertModel with its pooler: 12 post-norm encoder blocks of 768 "
                                                "with 12 heads.")
    assert listed["zoo:alexnet"] == ('AlexNet as torchvision builds it (torchvision.models.alexnet, the "one weird '
                                     'trick" variant: 64-192-384-256-256 channels, no grouped convolutions, no '
                                     'local response normalisation).')
    # an indented comment line (a command, a formula) ends the paragraph
    assert listed["homework:written_assignment_1.key"] == \
        "Answer key of Written Assignment 1 (written_assignment_1.yaml), for `archcalc grade`"
    assert listed["lecture:conv7x7"].endswith("feature map 256x256 ('same' padding keeps 256x256).")
    monkeypatch.chdir(tmp_path)
    result = CliRunner(env={"COLUMNS": "300"}).invoke(app, ["examples"])
    assert result.exit_code == 0 and "12 post-norm encoder blocks of 768 with 12 heads." in result.output


def test_a_summary_reads_comment_then_description():
    assert bundled.summary("# One. Two.\n# more\n#\n# Three.\ninput: [4]\n") == "One."
    assert bundled.summary("\n# Lee et al. 2020 wrote it. Then\ninput: [4]\n") == "Lee et al. 2020 wrote it."
    assert bundled.summary("name: x\ndescription: >\n  A net\n  of two.\ninput: [4]\n") == "A net of two."
    assert bundled.summary("input: [4]\n") == "" and bundled.summary("input: [\n") == ""


def test_a_user_install_finds_its_data_files(tmp_path, monkeypatch):
    # pip install --user: the package under <userbase>/lib/pythonX.Y/site-packages, the wheel's data
    # files under <userbase>/share; neither the default scheme's data folder nor sys.prefix holds
    # them ("error: no bundled specs are installed" after a real `pip install --user` of the wheel).
    import sysconfig

    real = sysconfig.get_paths
    user = sysconfig.get_preferred_scheme("user")
    base = tmp_path / "userbase"
    user_paths = real(user, vars={"userbase": str(base)})

    def get_paths(scheme=None, vars=None, expand=True):
        if scheme is None:
            return {"data": str(tmp_path / "nowhere"), "purelib": str(tmp_path / "nowhere")}
        return user_paths if scheme == user else real(scheme)

    data = Path(user_paths["data"]) / "share" / "archcalc" / "specs" / "zoo"
    data.mkdir(parents=True)
    (data / "tiny.yaml").write_text("# a tiny net\ninput: [4]\nlayers:\n  - linear: 3\n")
    package = Path(user_paths["purelib"]) / "archcalc" / "reader"
    package.mkdir(parents=True)
    monkeypatch.setattr(bundled, "__file__", str(package / "bundled.py"))
    monkeypatch.setattr(bundled.sys, "prefix", str(tmp_path / "nowhere"))
    monkeypatch.setattr(bundled.sysconfig, "get_paths", get_paths)
    assert bundled.root() == data.parent
    assert bundled.resolve("zoo:tiny") == data / "tiny.yaml"
    # a package in no scheme's library folder finds nothing (and says so), never another install's specs
    monkeypatch.setattr(bundled, "__file__", str(tmp_path / "elsewhere" / "archcalc" / "reader" / "bundled.py"))
    assert bundled.root() is None


def test_keys_and_answers_listed_by_examples_are_read_by_name(tmp_path, monkeypatch):
    # `archcalc examples` lists homework:written_assignment_1.key and homework:conv_pool_fc.answers;
    # key, grade and check said "no such file" for them
    from archcalc.homework.answers import load_answers
    from archcalc.homework.key import load_key

    monkeypatch.chdir(tmp_path)
    key = load_key("homework:written_assignment_1.key")
    assert key.max_points == 2 + 2 + 3 + 1 + 2  # the key's questions: conv1, fc, total, pool1 shape and rf
    assert len(load_answers("homework:conv_pool_fc.answers").answers) == 7
    runner = CliRunner(env={"COLUMNS": "200"})
    checked = runner.invoke(app, ["check", "homework:conv_pool_fc", "homework:conv_pool_fc.answers"])
    assert checked.exit_code == 0 and "7/7 right" in checked.output, checked.output
    sheet = runner.invoke(app, ["key", "homework:written_assignment_1.key"])
    assert sheet.exit_code == 0 and "5 questions, 10 points" in sheet.output
    wrong = runner.invoke(app, ["check", "homework:conv_pool_fc", "homework:conv_pool_fc.answerz"])
    assert wrong.exit_code == 2 and "did you mean 'conv_pool_fc.answers'?" in wrong.output
    assert "Traceback" not in wrong.output
    # and examples says which command reads them (its title said only `archcalc analyze NAME`)
    listed = " ".join(runner.invoke(app, ["examples"]).output.split())
    assert "NAME.key: archcalc key or grade; NAME.answers: archcalc check SPEC NAME.answers" in listed
