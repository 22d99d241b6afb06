"""Grading a class against an answer key (archcalc/homework/classroom.py): issue 13 points 1 and 2,
and grading each student against their own variant (point 4). The class is tests/homework/class/:
right, wrong, partial, malformed and hostile answers files for both Written Assignments. Every
expected figure below is worked out by hand from the lecture's formulas:
  WA1 (unpadded conv 5x5, 16 filters; pool 2; fc 10 on [1, H, W], H - 4 and W - 4 even):
    conv1 (5*5*1 + 1)*16 = 416; fc (16*(H-4)/2*(W-4)/2 + 1)*10 = 40*(H-4)*(W-4) + 10;
    total 40*(H-4)*(W-4) + 426; pool1 [16, (H-4)/2, (W-4)/2], field 5 + (2-1)*1 = 6, stride 2.
  WA2 (denoiser, 3x3 'same' convs 1 -> 32 -> 32 -> 32 -> 1 at 256 x 256):
    320, 9,248, 9,248, 289, total 19,105; MACs (288 + 9,216 + 9,216 + 288)*256*256 = 1,245,708,288;
    fields 3, 5, 7, 9."""
import csv
import io
import json
import textwrap
from pathlib import Path

import pytest

from archcalc.errors import SpecError
from archcalc.homework import classroom
from archcalc.homework.classroom import (DUPLICATE, GRADED, INVALID, REVIEW, answer_files, csv_cell, grade_class,
                                         prepare, safe_stem, student_name)
from archcalc.homework.key import load_key, parse_key

ROOT = Path(__file__).resolve().parents[2]
HOMEWORK = ROOT / "specs" / "homework"
CLASS = Path(__file__).resolve().parent / "class"
WA1_KEY = HOMEWORK / "written_assignment_1.key.yaml"
WA2_KEY = HOMEWORK / "denoiser.key.yaml"


@pytest.fixture(scope="module")
def wa1():
    key = load_key(WA1_KEY)
    prepare(key)
    return grade_class(key, answer_files([CLASS / "wa1"])[0])


@pytest.fixture(scope="module")
def wa2():
    key = load_key(WA2_KEY)
    prepare(key)
    return grade_class(key, answer_files([CLASS / "wa2"])[0])


def row(grades, file_name, folder=None):
    found = [r for r in grades.rows if Path(r.file).name == file_name
             and (folder is None or Path(r.file).parent.name == folder)]
    assert len(found) == 1, [r.file for r in grades.rows]
    return found[0]


def points(r) -> dict:
    return {q.question.id: q.earned for q in r.questions}


def verdicts(r) -> dict:
    return {q.question.id: q.verdict for q in r.questions}


# --- point 1: the key's questions, points and policy -----------------------------------------
def test_right_answers_earn_every_point(wa1, wa2):
    alice = row(wa1, "alice.yaml", "wa1")
    assert points(alice) == {"conv1.params": 2, "fc.params": 2, "total.trainable_params": 3,
                             "pool1.output_shape": 1, "pool1.rf": 2}
    assert (alice.total, alice.max, alice.percent) == (10, 10, 100.0)
    alice2 = row(wa2, "alice.yaml")
    assert alice2.status == GRADED and (alice2.total, alice2.max) == (12, 12)
    # "about 1.25 G" is 0.34 % off 1,245,708,288: within the question's own 2 %: close, full points
    macs = next(q for q in alice2.questions if q.question.id == "total.macs")
    assert macs.verdict == "close" and macs.earned == 2 and macs.expected.replace(",", "") == "1245708288"


def test_the_score_is_over_the_keys_questions_not_the_answers_given(wa1, wa2):
    # Issue 13: "a student who answers 1 of 5 questions scores 1.0". Bob answers 2 of 5, both right.
    bob = row(wa1, "Bob Smith.yml")
    assert points(bob) == {"conv1.params": 2, "fc.params": 0, "total.trainable_params": 3,
                           "pool1.output_shape": 0, "pool1.rf": 0}
    assert (bob.total, bob.max, bob.percent) == (5, 10, 50.0)
    assert bob.unanswered == ["fc.params", "pool1.output_shape", "pool1.rf"]
    assert "unanswered: fc.params, pool1.output_shape, pool1.rf" in bob.note()
    bob2 = row(wa2, "bob.yaml")  # 3 of 10 questions: 1 + 1 + 2 points of 12
    assert (bob2.total, bob2.max, bob2.percent) == (4, 12, 33.3)


def test_an_unanswered_question_shows_the_expected_value(wa1):
    bob = row(wa1, "Bob Smith.yml")
    fc = next(q for q in bob.questions if q.question.id == "fc.params")
    assert fc.verdict == "unanswered" and fc.given is None
    assert fc.expected == "40*(H - 4)*(W - 4) + 10"
    rf = next(q for q in bob.questions if q.question.id == "pool1.rf")
    assert rf.expected == "size 6, stride 2, start 0"


def test_a_students_own_tolerance_and_set_are_ignored_and_reported(wa1, wa2):
    # Issue 13: `tolerance: 0.99` made "about 100" count for 416, `set: {H: 8, W: 8}` gave numbers
    # for a symbolic question, and nothing showed it.
    erin = row(wa1, "erin.yaml")
    assert erin.ignored == {"tolerance": 0.99, "set": {"H": 8, "W": 8}}
    assert verdicts(erin)["conv1.params"] == "wrong"  # 100 is 76 % off 416: not within the key's 1 %
    total = next(q for q in erin.questions if q.question.id == "total.trainable_params")
    assert total.verdict == "wrong"  # 1066 = 40*(8-4)*(8-4) + 426, right at H = W = 8 only
    assert total.expected == "40*(H - 4)*(W - 4) + 426"
    assert "depends on H, W" in total.hint and "set:" not in total.hint  # the key sets the sizes, not her
    assert (erin.total, erin.status) == (2, REVIEW)
    assert "ignored the file's own" in erin.note() and "tolerance: 0.99" in erin.note()
    erin2 = row(wa2, "erin.yaml")  # "about 2 G" is 61 % off 1.25 G: within her 99 %, not the key's 2 %
    assert verdicts(erin2)["total.macs"] == "wrong" and erin2.status == REVIEW
    assert "set: {H: 128, W: 128}" in erin2.note()


def test_each_question_has_its_own_tolerance(tmp_path):
    key = load_key(WA2_KEY)  # total.macs 2 %, the others the key's 1 %
    answers = tmp_path / "tess.yaml"
    # 1,245,708,288: 1.23 G is 1.26 % off (within 2 %), 1.22 G is 2.06 % off (not);
    # 19,105: 19,300 is 1.02 % off (not within 1 %), 19,000 0.55 % (within).
    answers.write_text("answers:\n  total.macs: 1.23 G\n  total.trainable_params: about 19300\n"
                       "  conv2.params: about 9300\n")
    r = grade_class(key, [answers]).rows[0]
    assert verdicts(r)["total.macs"] == "close" and verdicts(r)["total.trainable_params"] == "wrong"
    assert verdicts(r)["conv2.params"] == "close"  # 9,300 is 0.56 % off 9,248
    answers.write_text("answers:\n  total.macs: 1.22 G\n  total.trainable_params: about 19000\n")
    r = grade_class(key, [answers]).rows[0]
    assert verdicts(r)["total.macs"] == "wrong" and verdicts(r)["total.trainable_params"] == "close"
    assert r.total == 2


def test_answers_to_questions_not_in_the_key_earn_nothing_and_are_listed(wa1):
    frank = row(wa1, "frank.yaml")
    assert frank.not_in_key == [("conv1.macs", "400*(H - 4)*(W - 4)")]
    assert "not in the key (0 points): conv1.macs" in frank.note()
    assert verdicts(frank)["conv1.params"] == "close"  # "about 420": 0.96 % off 416
    assert frank.total == 2 + 2


def test_wrong_answers_earn_zero_with_a_hint_and_the_formula(wa1):
    carol = row(wa1, "carol.yaml")
    assert carol.total == 0 and carol.status == GRADED
    conv1 = carol.questions[0]
    assert (conv1.verdict, conv1.given, conv1.expected) == ("wrong", 400, "416")
    assert "forgot the bias" in conv1.hint
    assert conv1.formula == "params = (K1*K2*Cin + 1)*Cout"
    assert any("(5*5*1 + 1)*16 = 416" in line for line in conv1.worked)
    rf = carol.questions[4]
    assert rf.verdict == "wrong" and "field of this layer's input" in rf.hint


def test_undecided_earns_zero_and_is_flagged_for_the_ta(monkeypatch, tmp_path):
    import importlib

    check_mod = importlib.import_module("archcalc.homework.check")

    real = check_mod.check

    def undecided(report, sheet, spec_graph=None):  # as if fc.params were too large to decide
        result = real(report, sheet, spec_graph)
        for r in result.results:
            if r.quantity == "fc.params":
                r.verdict = "undecided"
        return result

    monkeypatch.setattr(check_mod, "check", undecided)
    r = grade_class(load_key(WA1_KEY), [CLASS / "wa1" / "alice.yaml"]).rows[0]
    assert verdicts(r)["fc.params"] == "undecided" and points(r)["fc.params"] == 0
    assert r.total == 8 and r.status == REVIEW
    assert "undecided (0 points, for the TA to look at): fc.params" in r.note()


# --- point 2: the whole class, always ----------------------------------------------------------
def test_every_file_is_graded_and_invalid_ones_are_rows(wa1, wa2):
    assert len(wa1.rows) == 11 and len(wa2.rows) == 5
    dave = row(wa1, "dave.yaml")
    assert dave.status == INVALID and dave.total == 0 and dave.questions == []
    assert dave.error.startswith(f"{CLASS / 'wa1' / 'dave.yaml'}:4:11: error: invalid YAML")
    assert "\n" not in dave.error
    for name in ("empty.yaml", "list.yaml"):
        bad = row(wa1, name)
        assert bad.status == INVALID and ":1:1: error: an answers file is a YAML mapping" in bad.error
    dave2 = row(wa2, "dave.yaml")
    assert dave2.status == INVALID and "'answers' must be a non-empty mapping" in dave2.error
    assert [r.status for r in wa2.rows].count(INVALID) == 1
    assert sum(r.status != INVALID for r in wa1.rows) == 8


def test_a_file_that_is_missing_or_a_folder_is_an_invalid_row(tmp_path):
    key = load_key(WA1_KEY)
    grades = grade_class(key, [tmp_path / "nobody.yaml", CLASS / "wa1" / "alice.yaml"])
    assert [r.status for r in grades.rows] == [INVALID, GRADED]
    assert grades.rows[0].error.endswith("nobody.yaml: no such file") and grades.rows[0].student == "nobody"


def test_an_unreadable_answer_is_that_questions_zero_not_the_files(wa1):
    # mallory.yaml: `conv1.params: "=1+1"` and `student: "@SUM(A1:A9)"`
    mallory = row(wa1, "mallory.yaml")
    assert mallory.student == "@SUM(A1:A9)"
    conv1 = mallory.questions[0]
    assert conv1.verdict == "invalid" and conv1.earned == 0 and conv1.expected == "416"
    assert "=1+1" in conv1.hint
    assert mallory.status == REVIEW and "unreadable answers" in mallory.note()


def test_the_student_is_the_student_field_or_the_file_name(wa1):
    assert row(wa1, "Bob Smith.yml").student == "Bob Smith"  # .yml dropped too
    assert row(wa1, "frank.yaml").student == "Frank Li"
    assert row(wa1, "=HYPERLINK(...).yaml").student == "=HYPERLINK(...)"
    assert student_name(Path("x/alice.YAML")) == "alice"
    assert student_name(Path("x/.yaml")) == ".yaml"
    assert student_name(Path("notes.txt")) == "notes.txt"


def test_the_student_field_is_checked(tmp_path):
    from archcalc.homework.answers import parse_answers

    assert parse_answers("student: 12345\nanswers: {conv1.params: 416}\n").student == "12345"
    for bad in ("student: ''\n", "student: [a, b]\n", "student: \"a\\nb\"\n", f"student: {'x' * 201}\n"):
        with pytest.raises(SpecError) as info:
            parse_answers(bad + "answers: {conv1.params: 416}\n", "s.yaml")
        assert info.value.loc.line == 1 and "student" in info.value.message


def test_duplicates_are_reported_and_not_merged(wa1):
    first, second = row(wa1, "alice.yaml", "wa1"), row(wa1, "alice.yaml", "section_b")
    assert first.status == second.status == DUPLICATE
    assert (first.total, second.total) == (10, 4)  # each graded on its own answers
    assert f"the same student as {second.file}" in first.note()
    assert f"the same student as {first.file}" in second.note()
    assert wa1.duplicates() == [[first.file, second.file]]


def test_the_same_student_under_another_case_or_spacing_is_a_duplicate(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "Bob  Smith.yaml").write_text("answers: {conv1.params: 416}\n")
    (tmp_path / "bob smith.yaml").write_text("answers: {conv1.params: 416}\n")
    grades = grade_class(load_key(WA1_KEY), answer_files([tmp_path])[0])
    assert [r.status for r in grades.rows] == [DUPLICATE, DUPLICATE]


# --- CSV ---------------------------------------------------------------------------------------
def test_the_csv_columns(wa1):
    table = list(csv.reader(io.StringIO(wa1.csv_text())))
    assert table[0] == ["student", "conv1.params", "fc.params", "total.trainable_params", "pool1.output_shape",
                        "pool1.rf", "total", "max", "percent", "status", "note"]
    by_student = {}
    for line in table[1:]:
        by_student.setdefault(line[0], []).append(line)
    assert by_student["Bob Smith"] == [["Bob Smith", "2", "0", "3", "0", "0", "5", "10", "50.0", "graded",
                                        "unanswered: fc.params, pool1.output_shape, pool1.rf"]]
    assert by_student["carol"][0][1:10] == ["0"] * 6 + ["10", "0.0", "graded"]
    dave = by_student["dave"][0]
    assert dave[1:6] == [""] * 5 and dave[6:10] == ["0", "10", "0.0", "invalid"]
    assert "dave.yaml:4:11: error: invalid YAML" in dave[10]
    assert len(by_student["alice"]) == 2
    assert len(table) == 1 + 11


def test_no_csv_cell_is_a_spreadsheet_formula(wa1):
    # Issue 13: "a file named =HYPERLINK(...).yaml becomes a formula cell in the CSV".
    table = list(csv.reader(io.StringIO(wa1.csv_text())))
    cells = [c for line in table for c in line]
    assert "'=HYPERLINK(...)" in cells and "'@SUM(A1:A9)" in cells
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")]


@pytest.mark.parametrize("value, cell", [
    ("=HYPERLINK(\"http://x\",\"y\")", "'=HYPERLINK(\"http://x\",\"y\")"), ("+1", "'+1"), ("-1+2", "'-1+2"),
    ("@SUM(A1)", "'@SUM(A1)"), ("\t=1", "'\\t=1"), ("\r=1", "'\\r=1"), ("  =1", "'  =1"),
    ("alice", "alice"), ("a=b", "a=b"), ("two\nlines", "two\\nlines"), (12, "12"), (12.5, "12.5"), (-3, "-3"),
])
def test_csv_cells_are_neutralised(value, cell):
    assert csv_cell(value) == cell


# --- JSON --------------------------------------------------------------------------------------
def test_json_gives_every_question_with_verdict_expected_given_hint_points(wa1):
    data = json.loads(json.dumps(wa1.to_json()))  # plain JSON all through
    assert data["max"] == 10 and [q["id"] for q in data["questions"]][0] == "conv1.params"
    carol = next(s for s in data["students"] if s["student"] == "carol")
    assert carol["questions"]["conv1.params"] == {
        "verdict": "wrong", "expected": "416", "given": 400, "hint": carol["questions"]["conv1.params"]["hint"],
        "points": 0, "max_points": 2, "tolerance": 0.01, "formula": "params = (K1*K2*Cin + 1)*Cout"}
    assert "forgot the bias" in carol["questions"]["conv1.params"]["hint"]
    dave = next(s for s in data["students"] if s["student"] == "dave")
    assert dave["status"] == "invalid" and "invalid YAML" in dave["error"] and dave["questions"] == {}
    erin = next(s for s in data["students"] if s["student"] == "erin")
    assert erin["ignored"] == {"tolerance": 0.99, "set": {"H": 8, "W": 8}}
    frank = next(s for s in data["students"] if s["student"] == "Frank Li")
    assert frank["not_in_key"] == [{"quantity": "conv1.macs", "given": "400*(H - 4)*(W - 4)"}]
    assert frank["unanswered"] == ["pool1.output_shape", "pool1.rf"]
    assert data["duplicates"] == [[str(CLASS / "wa1" / "alice.yaml"), str(CLASS / "wa1" / "section_b" / "alice.yaml")]]


# --- the class summary -------------------------------------------------------------------------
def test_the_summary_counts_each_question_and_its_commonest_mistakes(wa1, wa2):
    summary = {s.question.id: s for s in wa1.summary()}
    # graded rows: HYPERLINK, Bob, alice, carol, erin, Frank, mallory, alice (section_b)
    conv1 = summary["conv1.params"]
    assert (conv1.right, conv1.close, conv1.wrong, conv1.unreadable, conv1.unanswered) == (5, 1, 2, 1, 0)
    rf = summary["pool1.rf"]
    assert (rf.right, rf.wrong, rf.unanswered) == (4, 1, 3)
    total = summary["total.trainable_params"]
    assert (total.right, total.wrong, total.unanswered) == (2, 3, 3)
    assert total.mistakes[0][1] == 2 and "depends on H, W" in total.mistakes[0][0]  # erin and Frank
    s2 = {s.question.id: s for s in wa2.summary()}
    assert (s2["total.macs"].right, s2["total.macs"].wrong, s2["total.macs"].unanswered) == (1, 2, 1)
    assert any("FLOP" in hint for hint, _ in s2["total.macs"].mistakes)  # carol's 2.49 G = 2 x MACs
    assert s2["conv1.params"].mistakes == [(s2["conv1.params"].mistakes[0][0], 1)]
    assert "forgot the bias" in s2["conv1.params"].mistakes[0][0]
    assert wa1.to_json()["summary"]["pool1.rf"]["right"] == 4


# --- feedback ----------------------------------------------------------------------------------
def test_feedback_is_one_markdown_file_per_student_with_safe_unique_names(wa1):
    files = wa1.feedback()
    assert sorted(files) == sorted(["HYPERLINK.md", "Bob_Smith.md", "alice.md", "carol.md", "dave.md", "empty.md",
                                    "erin.md", "Frank_Li.md", "list.md", "SUM_A1_A9.md", "alice-2.md"])
    assert all("/" not in n and "\\" not in n and not n.startswith(".") for n in files)
    carol = files["carol.md"]
    assert carol.startswith("# Written Assignment 1: feedback for carol")
    assert "Score: **0 / 10** points" in carol
    assert "## conv1.params: wrong" in carol and "- your answer: `400`" in carol and "- expected: `416`" in carol
    assert "forgot the bias" in carol and "(5*5*1 + 1)*16 = 416" in carol
    dave = files["dave.md"]
    assert "could not be graded" in dave and "invalid YAML" in dave


@pytest.mark.parametrize("name, stem", [
    ("alice", "alice"), ("Bob Smith", "Bob_Smith"), ("=HYPERLINK(...)", "HYPERLINK"), ("../../etc/passwd", "etc_passwd"),
    ("..", "student"), ("", "student"), ("CON", "_CON"), ("nul.txt", "_nul.txt"), ("José", "Jos"),
    ("a" * 300, "a" * 80),
])
def test_feedback_file_names_are_safe(name, stem):
    assert safe_stem(name) == stem


def test_feedback_does_not_let_a_student_write_markdown(tmp_path):
    answers = tmp_path / "eve.yaml"
    answers.write_text(textwrap.dedent("""\
        student: "[click](http://evil.example) <script>"
        answers:
          conv1.params: "`416` ](x)"
    """))
    files = grade_class(load_key(WA1_KEY), [answers]).feedback()
    text = next(iter(files.values()))
    assert "[click](http" not in text and "<script>" not in text
    assert "``` `416` ](x) ```" in text or "`` `416` ](x) ``" in text


# --- point 4: each student against their own variant ------------------------------------------
VARIED = """\
spec: {spec}
title: Varied
questions:
  fc.params: 2
  pool1.output_shape: 1
vary: {{H: [8, 16, 32], W: [8, 12]}}
"""


def test_each_student_is_graded_at_their_own_variant(tmp_path):
    key = parse_key(VARIED.format(spec=HOMEWORK / "conv_pool_fc.yaml"), str(tmp_path / "v.key.yaml"))
    prepare(key)
    seed = 2026
    names = [f"s{i}" for i in range(12)]
    variants = {n: key.variant(n, seed) for n in names}
    a, b = next((x, y) for x in names for y in names if variants[x] != variants[y])
    for name in (a, b):  # each answers with the figures of a's variant (by hand: 40*H*W + 10)
        h, w = variants[a]["H"], variants[a]["W"]
        (tmp_path / f"{name}.yaml").write_text(f"answers:\n  fc.params: {40 * h * w + 10}\n"
                                               f"  pool1.output_shape: [16, {h // 2}, {w // 2}]\n")
    grades = grade_class(key, [tmp_path / f"{a}.yaml", tmp_path / f"{b}.yaml"], seed=seed)
    ra, rb = grades.rows
    assert ra.variant == variants[a] and rb.variant == variants[b]
    assert ra.total == 3 and ra.status == GRADED
    assert rb.total < 3  # right for a's sizes, not for b's own
    hb, wb = variants[b]["H"], variants[b]["W"]
    assert rb.questions[0].expected.replace(",", "") == str(40 * hb * wb + 10)
    assert grades.to_json()["students"][0]["variant"] == variants[a]


def test_the_variant_follows_the_student_field(tmp_path):
    key = parse_key(VARIED.format(spec=HOMEWORK / "conv_pool_fc.yaml"), str(tmp_path / "v.key.yaml"))
    (tmp_path / "upload_1.yaml").write_text("student: s3\nanswers: {fc.params: 10}\n")
    r = grade_class(key, [tmp_path / "upload_1.yaml"], seed=5).rows[0]
    assert r.student == "s3" and r.variant == key.variant("s3", 5)


def test_a_varied_key_needs_the_seed(tmp_path):
    key = parse_key(VARIED.format(spec=HOMEWORK / "conv_pool_fc.yaml"), str(tmp_path / "v.key.yaml"))
    with pytest.raises(SpecError, match=r"varies H, W per student: give the seed"):
        grade_class(key, [CLASS / "wa1" / "alice.yaml"])


def test_a_variant_the_spec_cannot_take_is_that_students_invalid_row(tmp_path):
    # WA1's 5 x 5 kernel does not fit H = 3: the students drawn H = 3 get an invalid row saying so.
    key = parse_key(f"spec: {HOMEWORK / 'written_assignment_1.yaml'}\nquestions: {{conv1.params: 1}}\n"
                    "vary: {H: [3, 28]}\n", str(tmp_path / "v.key.yaml"))
    paths = []
    for i in range(8):
        paths.append(tmp_path / f"s{i}.yaml")
        paths[-1].write_text("answers: {conv1.params: 416}\n")
    rows = grade_class(key, paths, seed=1).rows
    small = [r for r in rows if r.variant.get("H") == 3 or r.status == INVALID]
    assert small and all(r.status == INVALID and "invalid at this student's sizes (H = 3)" in r.error for r in small)
    assert all(r.total == 1 for r in rows if r not in small)


def test_prepare_checks_the_keys_numbers_against_the_specs_constraints(tmp_path):
    # conv_pool_fc.yaml: H and W multiples of 2, min 2
    for text, words in (("set: {H: 27, W: 28}\n", "set H: 27 is not a multiple of 2"),
                        ("vary: {H: [8, 9]}\n", "vary H: 9 is not a multiple of 2")):
        key = parse_key(f"spec: {HOMEWORK / 'conv_pool_fc.yaml'}\nquestions: {{fc.params: 1}}\n" + text,
                        "k.yaml")
        with pytest.raises(SpecError, match=words) as info:
            prepare(key)
        assert info.value.loc.file == "k.yaml" and info.value.loc.line == 3


def test_a_folder_is_every_answers_file_inside(tmp_path):
    assert answer_files([CLASS / "wa2"])[0] == sorted((CLASS / "wa2").glob("*.yaml"))
    with pytest.raises(SpecError, match="no answers files"):
        answer_files([tmp_path])[0]


def test_one_file_that_breaks_the_grader_does_not_stop_the_class(monkeypatch):
    real = classroom._grade_sheet

    def broken(key, sheet, spec, row, seed=None):
        if row.student == "carol":
            raise KeyError("boom")
        return real(key, sheet, spec, row, seed)

    monkeypatch.setattr(classroom, "_grade_sheet", broken)
    grades = grade_class(load_key(WA2_KEY), answer_files([CLASS / "wa2"])[0])
    carol = row(grades, "carol.yaml")
    assert carol.status == INVALID and "could not grade this file (KeyError" in carol.error
    assert row(grades, "alice.yaml").total == 12


def test_a_folder_leaves_out_answer_keys_and_copies_of_the_spec(tmp_path):
    key = load_key(WA1_KEY)
    (tmp_path / "alice").mkdir()
    for name in ("alice/answers.yaml", "alice/written_assignment_1.yaml", "wa.key.yaml", "loose.yml"):
        (tmp_path / name).write_text("answers: {conv1.params: 416}\n")
    files, left_out = answer_files([tmp_path], key)
    assert files == [tmp_path / "alice" / "answers.yaml", tmp_path / "loose.yml"]
    assert left_out == [tmp_path / "alice" / "written_assignment_1.yaml", tmp_path / "wa.key.yaml"]
    named = tmp_path / "wa.key.yaml"  # a file named on the command line is always graded
    assert answer_files([named], key) == ([named], [])


def test_a_blank_answer_is_not_answered(tmp_path):
    # `archcalc variants` hands out files with every question's line, for the answer after the colon
    answers = tmp_path / "s.yaml"
    answers.write_text("student: s\nanswers:\n  conv1.params: 416\n  fc.params:\n  pool1.rf: ''\n")
    r = grade_class(load_key(WA1_KEY), [answers]).rows[0]
    assert verdicts(r) == {"conv1.params": "right", "fc.params": "unanswered", "total.trainable_params": "unanswered",
                           "pool1.output_shape": "unanswered", "pool1.rf": "unanswered"}
    assert r.status == GRADED and r.total == 2


def test_a_misspelt_question_is_listed_with_its_reason_for_the_ta(tmp_path):
    answers = tmp_path / "s.yaml"
    answers.write_text("answers:\n  conv1.params: 416\n  pool1.parms: 0\n  fc.params: '40*(H-4)*(W-4) + 10'\n")
    r = grade_class(load_key(WA1_KEY), [answers]).rows[0]
    assert r.total == 4 and r.status == REVIEW
    assert r.not_in_key == [("pool1.parms", 0)]
    assert "pool1.parms: unknown figure 'parms'" in r.note() and "params" in r.note()
