"""Written Assignment 2 (the colour denoiser, specs/homework/written_assignment_2.yaml) graded as a
class (tests/homework/class/wa2_colour/): every figure worked by hand, every verdict and hint pinned."""
from pathlib import Path

import pytest

import archcalc
from archcalc.homework.classroom import GRADED, INVALID, answer_files, grade_class, prepare
from archcalc.homework.key import load_key

ROOT = Path(__file__).resolve().parents[2]
KEY = ROOT / "specs" / "homework" / "written_assignment_2.key.yaml"
CLASS = Path(__file__).resolve().parent / "class" / "wa2_colour"


@pytest.fixture(scope="module")
def grades():
    key = load_key(KEY)
    prepare(key)
    return grade_class(key, answer_files([CLASS])[0])


def by_student(grades):
    return {r.student: r for r in grades.rows}


def test_the_figures_by_hand():
    report = archcalc.analyze(ROOT / "specs" / "homework" / "written_assignment_2.yaml")
    rows = {r.name: r for r in report.layers}
    assert rows["conv1"].params == (3 * 3 * 3 + 1) * 64 == 1792
    assert rows["conv2"].params == (3 * 3 * 64 + 1) * 64 == 36928
    assert rows["conv3"].params == (3 * 3 * 64 + 1) * 3 == 1731
    assert report.totals.trainable_params == 40451 and 64 + 64 + 3 == 131
    assert [rows[n].rf.size for n in ("conv1", "conv2", "conv3")] == [(3, 3), (5, 5), (7, 7)]
    assert report.output_shape[0] == 3  # the colour channels of the denoised image


def test_scores_over_the_keys_nine_points(grades):
    rows = by_student(grades)
    assert {s: (r.total, r.status) for s, r in rows.items()} == {
        "alice": (9, GRADED), "bob": (3, GRADED), "carol": (6, GRADED), "dave": (0, GRADED), "erin": (0, INVALID)}
    assert grades.key.max_points == 9


def test_each_verdict_and_hint(grades):
    rows = by_student(grades)
    bob = {q.question.id: q for q in rows["bob"].questions}
    # 40 k is 451 below 40,451: 1.1 %, outside the key's 1 %; not "forgot the biases" (40,320 is no
    # closer to 40 k at its precision of a thousand)
    assert bob["total.trainable_params"].verdict == "wrong"
    assert "1.1 % below" in bob["total.trainable_params"].hint and "bias" not in bob["total.trainable_params"].hint
    assert bob["conv2.rf"].verdict == "wrong" and "adds up the kernel sizes" in bob["conv2.rf"].hint  # 3 + 3
    assert bob["conv3.rf"].verdict == "unanswered"
    carol = {q.question.id: q for q in rows["carol"].questions}
    assert "forgot the bias of one of conv1 or conv2" in carol["total.trainable_params"].hint  # 40,451 - 64
    dave = {q.question.id: q for q in rows["dave"].questions}
    assert "conv3" in dave["total.trainable_params"].hint  # 40,448 = 40,451 - 3: conv3's 3 biases
    assert "erin.yaml:1:10: error:" in rows["erin"].error and "non-empty mapping" in rows["erin"].error


def test_the_summary_counts_one_mistake_made_at_two_layers_together(grades):
    total = {s.question.id: s for s in grades.summary()}["total.trainable_params"]
    assert (total.right, total.wrong) == (1, 3)
    text, count = total.mistakes[0]
    assert count == 2 and text.startswith("forgot_one_bias, e.g. ")  # carol's conv1/conv2 and dave's conv3
