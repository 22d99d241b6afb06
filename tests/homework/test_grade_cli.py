"""`archcalc grade KEY ANSWERS...` from the command line (issue 13 points 1, 2 and 4's grading):
the class in tests/homework/class/ graded against the bundled keys."""
import csv
import io
import json
from pathlib import Path

from typer.testing import CliRunner

from archcalc.cli import app
from archcalc.homework.key import parse_key

ROOT = Path(__file__).resolve().parents[2]
HOMEWORK = ROOT / "specs" / "homework"
CLASS = Path(__file__).resolve().parent / "class"
WA1_KEY = str(HOMEWORK / "written_assignment_1.key.yaml")
WA2_KEY = str(HOMEWORK / "denoiser.key.yaml")
runner = CliRunner()


def grade(*args):
    return runner.invoke(app, ["grade", *map(str, args)])


def test_a_whole_class_grades_into_a_csv_the_ta_can_upload(tmp_path):
    out = tmp_path / "grades.csv"
    result = grade(WA1_KEY, CLASS / "wa1", "--csv", out)
    assert result.exit_code == 1, result.output  # graded, but some rows need the TA (invalid, duplicate, review)
    assert f"wrote {out}" in result.stderr
    table = list(csv.reader(io.StringIO(out.read_text())))
    assert table[0][:2] == ["student", "conv1.params"] and table[0][-6:] == ["pool1.rf", "total", "max", "percent",
                                                                             "status", "note"]
    assert len(table) == 12  # every file a row, the malformed ones too
    statuses = sorted(line[-2] for line in table[1:])
    assert statuses.count("invalid") == 3 and statuses.count("duplicate") == 2 and statuses.count("review") == 2
    assert not [c for line in table for c in line if c and c[0] in "=+-@\t\r"]
    # the table on stdout: every student, and the per-question summary
    for name in ("Bob Smith", "Frank Li", "=HYPERLINK(...)", "carol", "dave"):
        assert name in result.stdout
    assert "per question" in result.stdout and "commonest mistakes" in result.stdout


def test_a_clean_class_exits_0(tmp_path):
    result = grade(WA2_KEY, CLASS / "wa2" / "alice.yaml", CLASS / "wa2" / "bob.yaml", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [(s["student"], s["total"], s["max"], s["status"]) for s in data["students"]] == [
        ("alice", 12, 12, "graded"), ("bob", 4, 12, "graded")]
    assert data["summary"]["conv2.params"]["right"] == 2
    assert data["summary"]["conv3.params"]["unanswered"] == 1


def test_json_per_question(tmp_path):
    result = grade(WA2_KEY, CLASS / "wa2", "--json")
    assert result.exit_code == 1  # dave.yaml is invalid, erin set her own policy
    data = json.loads(result.stdout)
    carol = next(s for s in data["students"] if s["student"] == "carol")
    macs = carol["questions"]["total.macs"]
    assert (macs["verdict"], macs["given"], macs["points"], macs["max_points"], macs["tolerance"]) == (
        "wrong", "about 2.49 G", 0, 2, 0.02)
    assert macs["expected"].replace(",", "") == "1245708288" and "FLOP" in macs["hint"]
    dave = next(s for s in data["students"] if s["student"] == "dave")
    assert dave["status"] == "invalid" and dave["error"].startswith(str(CLASS / "wa2" / "dave.yaml") + ":1:10: error:")


def test_feedback_folder(tmp_path):
    folder = tmp_path / "feedback"
    result = grade(WA1_KEY, CLASS / "wa1", "--feedback", folder)
    assert result.exit_code == 1
    names = sorted(p.name for p in folder.iterdir())
    assert len(names) == 11 and "HYPERLINK.md" in names and "alice.md" in names and "alice-2.md" in names
    assert "wrote 11 feedback files" in result.stderr
    erin = (folder / "erin.md").read_text()
    assert "Score: **2 / 10** points" in erin and "`set:` and `tolerance:` were ignored" in erin


def test_an_invalid_key_is_exit_2_with_its_place(tmp_path):
    key = tmp_path / "bad.key.yaml"
    key.write_text(f"spec: {HOMEWORK / 'written_assignment_1.yaml'}\nquestions:\n  conv1.params: {{points: 0}}\n")
    result = grade(key, CLASS / "wa1" / "alice.yaml")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"{key}:3:26: error: question 'conv1.params': points must be a number above 0")
    assert result.stderr.count("\n") == 1
    key.write_text(f"spec: {HOMEWORK / 'written_assignment_1.yaml'}\nquestions: {{conv2.params: 1}}\n")
    result = grade(key, CLASS / "wa1" / "alice.yaml")
    assert result.exit_code == 2 and result.stderr.startswith(f"{key}:2:13: error: question 'conv2.params': "
                                                              "the spec has no layer 'conv2'")
    result = grade(tmp_path / "nokey.yaml", CLASS / "wa1" / "alice.yaml")
    assert result.exit_code == 2 and "nokey.yaml: no such file" in result.stderr


def test_variants_need_the_seed_and_grade_each_student_at_theirs(tmp_path):
    text = f"spec: {HOMEWORK / 'conv_pool_fc.yaml'}\nquestions: {{fc.params: 2}}\nvary: {{H: [8, 16], W: [8, 16]}}\n"
    key_file = tmp_path / "v.key.yaml"
    key_file.write_text(text)
    (tmp_path / "answers").mkdir()
    student = tmp_path / "answers" / "s1.yaml"
    values = parse_key(text, str(key_file)).variant("s1", 11)
    student.write_text(f"answers: {{fc.params: {40 * values['H'] * values['W'] + 10}}}\n")  # by hand: 40*H*W + 10
    result = grade(key_file, student)
    assert result.exit_code == 2 and "varies H, W per student: give the seed" in result.stderr
    assert result.stderr.startswith(f"{key_file}:3:8: error:")
    result = grade(key_file, student, "--seed", 11, "--json")
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout)["students"][0]
    assert row["variant"] == values and row["total"] == 2


def test_a_seed_without_vary_is_noted(tmp_path):
    result = grade(WA2_KEY, CLASS / "wa2" / "alice.yaml", "--seed", 3)
    assert result.exit_code == 0 and "--seed is ignored: the key has no vary:" in result.stderr


def test_an_unwritable_csv_is_exit_2(tmp_path):
    result = grade(WA2_KEY, CLASS / "wa2" / "alice.yaml", "--csv", tmp_path / "no" / "such" / "g.csv")
    assert result.exit_code == 2 and result.stderr.startswith("error: --csv")


def test_check_gradebook_still_works(tmp_path):
    # `archcalc check SPEC ANSWERS --gradebook` is documented; `grade` is the TA's tool beside it.
    out = tmp_path / "book.csv"
    result = runner.invoke(app, ["check", str(HOMEWORK / "denoiser.yaml"), str(HOMEWORK / "denoiser.answers.yaml"),
                                 "--gradebook", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text().splitlines()[0] == "student,right,total,score,wrong"


def test_variants_then_grade_each_student_at_their_own(tmp_path):
    # The TA's round trip: `variants` hands out each student's folder (their spec and an answers
    # file naming them); the students fill it in; `grade` the folder with the same seed.
    key_file = tmp_path / "v.key.yaml"
    key_file.write_text(f"spec: {HOMEWORK / 'conv_pool_fc.yaml'}\nquestions: {{conv1.params: 1, fc.params: 2}}\n"
                        "vary: {H: [16, 28, 32], W: [16, 28]}\n")
    (tmp_path / "roster.csv").write_text("student\nana\nben\ncai\n")
    made = runner.invoke(app, ["variants", str(key_file), "--roster", str(tmp_path / "roster.csv"), "--seed", "7",
                               "-o", str(tmp_path / "out")])
    assert made.exit_code == 0, made.output
    values = {}
    for line in list(csv.DictReader(io.StringIO((tmp_path / "out" / "variants.csv").read_text()))):
        values[line["student"]] = (int(line["H"]), int(line["W"]))
    h, w = values["ana"]
    for student in ("ana", "ben", "cai"):  # all answer ana's figures (by hand: 416, 40*H*W + 10)
        answers = tmp_path / "out" / "students" / student / "answers.yaml"
        assert f'student: "{student}"' in answers.read_text()
        answers.write_text(f"student: {student}\nanswers:\n  conv1.params: 416\n  fc.params: {40 * h * w + 10}\n")
    result = grade(key_file, tmp_path / "out" / "students", "--seed", 7, "--json")
    assert "left out 3 spec or key files" in result.stderr  # each student's conv_pool_fc.yaml
    rows = {s["student"]: s for s in json.loads(result.stdout)["students"]}
    assert sorted(rows) == ["ana", "ben", "cai"]
    for student, row in rows.items():
        assert tuple(row["variant"][k] for k in ("H", "W")) == values[student]
        same = values[student] == values["ana"]
        assert row["total"] == (3 if same else 1), (student, row)
