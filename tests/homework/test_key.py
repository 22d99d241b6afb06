"""Answer keys (archcalc/homework/key.py): what a TA writes, read and checked against its spec."""
import hashlib
import textwrap
from pathlib import Path

import pytest

from archcalc.errors import SpecError
from archcalc.homework.key import check_against_spec, load_key, parse_key

ROOT = Path(__file__).resolve().parents[2]
HOMEWORK = ROOT / "specs" / "homework"


def key(text, tmp_path=HOMEWORK):
    return parse_key(textwrap.dedent(text), "wa.key.yaml", base=tmp_path)


def error(text, tmp_path=HOMEWORK) -> SpecError:
    with pytest.raises(SpecError) as info:
        k = key(text, tmp_path)
        check_against_spec(k)
    return info.value


def test_bundled_keys_load_and_fit_their_specs():
    wa1 = load_key(HOMEWORK / "written_assignment_1.key.yaml")
    check_against_spec(wa1)
    assert wa1.spec == HOMEWORK / "written_assignment_1.yaml"
    assert [q.id for q in wa1.questions] == ["conv1.params", "fc.params", "total.trainable_params",
                                             "pool1.output_shape", "pool1.rf"]
    assert wa1.max_points == 2 + 2 + 3 + 1 + 2
    assert wa1.assume_divisible and wa1.title == "Written Assignment 1"
    wa2 = load_key(HOMEWORK / "denoiser.key.yaml")
    check_against_spec(wa2)
    assert wa2.bindings == {"H": 256, "W": 256}
    assert wa2.max_points == 12
    macs = wa2.question("total.macs")
    assert macs.points == 2 and wa2.tolerance_of(macs) == 0.02
    assert wa2.tolerance_of(wa2.question("conv1.params")) == 0.01  # the default


def test_points_shorthand_tolerance_and_totals():
    k = key("""
        spec: conv_pool_fc.yaml
        tolerance: 5%
        questions:
          conv1.params: 2
          total.macs: {points: 1.5, tolerance: 0.1}
          fc.params: {points: 3.0}
    """)
    assert [(q.layer, q.figure, q.points) for q in k.questions] == [
        ("conv1", "params", 2), ("total", "macs", 1.5), ("fc", "params", 3)]
    assert isinstance(k.questions[2].points, int)  # 3.0 is 3 points
    assert k.max_points == 6.5
    assert k.tolerance == 0.05
    assert [k.tolerance_of(q) for q in k.questions] == [0.05, 0.1, 0.05]
    assert k.questions[1].is_total


@pytest.mark.parametrize("text, where, words", [
    ("spec: conv_pool_fc.yaml\nquestions: {conv1.params: 1}\npoints: 3\n", (3, 1), "unknown top-level key 'points'"),
    ("questions: {conv1.params: 1}\n", (1, 1), "missing 'spec:'"),
    ("spec: conv_pool_fc.yaml\n", (1, 1), "missing 'questions:'"),
    ("spec: nowhere.yaml\nquestions: {conv1.params: 1}\n", (1, 7), "spec 'nowhere.yaml' not found"),
    ("spec: conv_pool_fc.yaml\nquestions: {conv1.params: {tolerance: 0.1}}\n", (2, 27), "needs 'points'"),
    ("spec: conv_pool_fc.yaml\nquestions: {conv1.params: 0}\n", (2, 27), "points must be a number above 0"),
    ("spec: conv_pool_fc.yaml\nquestions: {conv1.params: yes}\n", (2, 27), "points must be a number above 0"),
    ("spec: conv_pool_fc.yaml\nquestions: {conv1.params: {points: 1, weight: 2}}\n", (2, 39), "unknown key 'weight'"),
    ("spec: conv_pool_fc.yaml\nquestions: {conv1.parms: 1}\n", (2, 13), "unknown figure 'parms'"),
    ("spec: conv_pool_fc.yaml\ntolerance: 2\nquestions: {conv1.params: 1}\n", (2, 12), "tolerance must be"),
    ("spec: conv_pool_fc.yaml\nassume: even\nquestions: {conv1.params: 1}\n", (2, 9), "'assume' must be one of"),
    ("spec: conv_pool_fc.yaml\nquestions: {conv9.params: 1}\n", (2, 13), "the spec has no layer 'conv9'"),
    ("spec: conv_pool_fc.yaml\nquestions: {conv1.params: 1}\nvary: {K: [3, 5]}\n", (3, 8),
     "the spec has no var or symbol 'K'"),
    ("spec: conv_pool_fc.yaml\nquestions: {conv1.params: 1}\nvary: {H: [8, 8]}\n", (3, 11), "listed twice"),
    ("spec: conv_pool_fc.yaml\nquestions: {conv1.params: 1}\nvary: {H: [8, -2]}\n", (3, 15),
     "expected positive integers"),
    ("spec: conv_pool_fc.yaml\nquestions: {conv1.params: 1}\nset: {H: 8}\nvary: {H: [8, 16]}\n", (4, 8),
     "both set"),
    # conv_pool_fc.yaml constrains H and W to {multiple_of: 2, min: 2}: the key's numbers must keep that
    ("spec: conv_pool_fc.yaml\nquestions: {conv1.params: 1}\nset: {H: 27, W: 28}\n", (3, 10),
     "set H: 27 is not a multiple of 2"),
    ("spec: conv_pool_fc.yaml\nquestions: {conv1.params: 1}\nvary: {W: [8, 9]}\n", (3, 8),
     "vary W: 9 is not a multiple of 2"),
])
def test_key_mistakes_are_located(text, where, words):
    err = error(text)
    assert words in err.message
    assert (err.loc.file, err.loc.line, err.loc.col) == ("wa.key.yaml", *where)
    assert str(err).startswith(f"wa.key.yaml:{where[0]}:{where[1]}: error: ")


def test_a_block_instance_is_a_question():
    k = key("spec: ../zoo/resnet18.yaml\nquestions: {layer1.0.params: 1, layer1.params: 1}\n")
    check_against_spec(k)  # layer1.0 and layer1 are block instances of the spec: no error


def test_a_variant_is_a_function_of_seed_and_student_only():
    k = key("""
        spec: conv_pool_fc.yaml
        questions: {fc.params: 1}
        vary: {H: [8, 16, 32], W: [8, 16]}
    """)
    assert k.variant_count() == 6
    # By hand: sha256 of "archcalc-variant\0<seed>\0<student>", its first 16 bytes as a number
    # mod 6, read as mixed-radix digits (H's first, base 3; then W's, base 2).
    index = int.from_bytes(hashlib.sha256(b"archcalc-variant\x0042\x00alice").digest()[:16], "big") % 6
    assert k.variant("alice", 42) == {"H": (8, 16, 32)[index % 3], "W": (8, 16)[index // 3]}
    assert k.variant("alice", 42) == k.variant("alice", 42)
    assert k.bindings_for("alice", 42) == k.variant("alice", 42)
    students = [f"s{i:03d}" for i in range(200)]
    drawn = [k.variant(s, 7) for s in students]
    assert {(v["H"], v["W"]) for v in drawn} == {(h, w) for h in (8, 16, 32) for w in (8, 16)}  # all six met
    assert drawn != [k.variant(s, 8) for s in students]  # another seed, other variants
    with pytest.raises(ValueError, match="needs the student and the seed"):
        k.bindings_for("alice")


def test_set_bindings_without_vary():
    k = key("spec: conv_pool_fc.yaml\nset: {H: 28, W: 28}\nquestions: {fc.params: 1}\n")
    assert k.bindings_for() == {"H": 28, "W": 28}
    assert k.variant("anyone", 1) == {}
