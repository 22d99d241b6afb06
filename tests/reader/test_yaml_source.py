import pytest

from archcalc.errors import SpecError
from archcalc.reader.yaml_source import YList, YMap, load_yaml


def test_locations_are_kept():
    doc = load_yaml("a: 1\nb:\n  - x\n  - {c: 2}\n", "f.yaml")
    assert isinstance(doc, YMap) and isinstance(doc["b"], YList)
    assert (doc.key_locs["b"].line, doc.key_locs["b"].col) == (2, 1)
    assert doc["b"].where(1).line == 4 and doc["b"].where(1).col == 5
    assert doc["b"][1].where("c").col == 9
    assert str(doc.where("a")) == "f.yaml:1:4"


def test_plain_values():
    doc = load_yaml("i: 3\nf: 0.5\nb: true\nn: null\ns: same\n", "f")
    assert doc == {"i": 3, "f": 0.5, "b": True, "n": None, "s": "same"}


def test_python_tags_are_refused():
    with pytest.raises(SpecError, match="not allowed") as info:
        load_yaml("x: !!python/object/apply:os.system ['echo hi']\n", "f.yaml")
    assert info.value.loc.line == 1


def test_custom_tags_are_refused():
    with pytest.raises(SpecError, match="not allowed"):
        load_yaml("x: !mytag 3\n", "f.yaml")


def test_duplicate_keys_are_an_error():
    with pytest.raises(SpecError, match="duplicate key 'a' \\(first given at line 1\\)") as info:
        load_yaml("a: 1\nb: 2\na: 3\n", "f.yaml")
    assert info.value.loc.line == 3


def test_billion_laughs_fails_fast():
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 10):
        lines.append(f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 10) + "]")
    # Unbounded, this would expand to 10**10 strings; the reader stops at its alias budget.
    with pytest.raises(SpecError, match="aliases expand"):
        load_yaml("\n".join(lines) + "\n", "bomb.yaml")


def test_small_aliases_and_merge_keys_work():
    doc = load_yaml("base: &b {kernel: 3, stride: 1}\nx: {<<: *b, stride: 2}\n", "f")
    assert doc["x"] == {"kernel": 3, "stride": 2}


def test_syntax_error_has_position():
    with pytest.raises(SpecError, match="invalid YAML") as info:
        load_yaml("a: [1, 2\nb: 3\n", "f.yaml")
    assert info.value.loc.file == "f.yaml" and info.value.loc.line >= 1


def test_a_directory_is_one_error_line_for_every_command(tmp_path):
    # os.open takes a directory read-only on Linux; only os.fdopen refuses it, with a traceback
    from typer.testing import CliRunner

    from archcalc.cli import app
    from archcalc.reader.yaml_source import read_source

    with pytest.raises(SpecError, match="is a directory, expected a YAML answers file"):
        read_source(tmp_path, "answers")
    spec = tmp_path / "net.yaml"
    spec.write_text("input: [4]\nlayers:\n  - linear: 2\n")
    for args in (["analyze", str(tmp_path)], ["check", str(spec), str(tmp_path)], ["explain", str(tmp_path)]):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert f"{tmp_path}: is a directory" in result.output and "Traceback" not in result.output
