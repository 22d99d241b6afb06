"""`-` where a path goes reads the standard input (issue 14 point 5): the same reader as a file's
(size limit, UTF-8, safe YAML), mistakes located in `<stdin>`, and read once per stream (a spec
that is read twice, by check or train, gets the same text)."""
import io
import sys

import pytest

from archcalc.errors import SpecError
from archcalc.reader.parse import load_spec
from archcalc.reader.yaml_source import read_source, source_name

SPEC = b"name: piped\ninput: [3]\nlayers:\n  - linear: 2\n"


def _stdin(monkeypatch, data: bytes):
    stream = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8")
    monkeypatch.setattr(sys, "stdin", stream)
    return stream


def test_a_spec_from_stdin(monkeypatch):
    _stdin(monkeypatch, SPEC)
    graph = load_spec("-")
    assert graph.name == "piped" and graph.input_shape == (3,)
    assert load_spec("-").name == "piped"  # read once: the second read gets the same text
    _stdin(monkeypatch, SPEC.replace(b"piped", b"other"))
    assert load_spec("-").name == "other"  # another stream is read afresh


def test_mistakes_are_located_in_stdin(monkeypatch):
    _stdin(monkeypatch, SPEC.replace(b"linear: 2", b"linear: two"))
    with pytest.raises(SpecError) as err:
        load_spec("-")
    assert err.value.loc.file == "<stdin>" and (err.value.loc.line, err.value.loc.col) == (4, 13)
    assert source_name("-") == "<stdin>" and source_name("net.yaml") == "net.yaml"


def test_the_limits_of_a_file_hold(monkeypatch):
    _stdin(monkeypatch, b"x" * 11)
    with pytest.raises(SpecError, match=r"<stdin>: the spec is larger than the limit of 10 bytes"):
        read_source("-", "spec", limit=10)
    _stdin(monkeypatch, b"a: \xe9\n")
    with pytest.raises(SpecError, match="not UTF-8") as err:
        read_source("-")
    assert (err.value.loc.file, err.value.loc.line, err.value.loc.col) == ("<stdin>", 1, 4)
    _stdin(monkeypatch, b" \n")
    with pytest.raises(SpecError, match="the standard input is empty"):
        read_source("-")
    _stdin(monkeypatch, b"input: [3]\nlayers: !!python/object/apply:os.system [echo]\n")
    with pytest.raises(SpecError) as err:
        load_spec("-")
    assert err.value.loc.file == "<stdin>"  # safe loading: a tag is refused, never run


def test_no_stdin_at_all(monkeypatch):
    monkeypatch.setattr(sys, "stdin", None)
    with pytest.raises(SpecError, match="no standard input"):
        read_source("-")
