"""Review of `archcalc grade`, `key` and `variants` as a TA uses them: keys, answers files and
outputs that the other tests do not write (a question or answer given twice under two spellings,
a variant at which the key's spec is invalid, a non-UTF-8 locale)."""
import csv
import io
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from archcalc.cli import app
from archcalc.errors import SpecError
from archcalc.homework.classroom import grade_class
from archcalc.homework.key import load_key, parse_key

ROOT = Path(__file__).resolve().parents[2]
HOMEWORK = ROOT / "specs" / "homework"
runner = CliRunner()


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_a_key_asking_one_question_twice_under_two_spellings_is_refused():
    # YAML sees two keys; both are the question conv1.params: graded twice, the max counted twice
    with pytest.raises(SpecError) as info:
        parse_key('spec: written_assignment_1.yaml\nquestions:\n  conv1.params: 2\n  "conv1.params ": 3\n',
                  "k.key.yaml", base=HOMEWORK)
    assert info.value.loc.line == 4 and "asked twice (first at line 3)" in info.value.message


def test_an_answer_given_twice_under_two_spellings_makes_the_file_invalid_not_the_later_one_graded(tmp_path):
    # before: the later answer (400) silently replaced the first (416), with no note
    key = load_key(HOMEWORK / "written_assignment_1.key.yaml")
    twice = write(tmp_path / "twice.yaml", """\
        answers:
          conv1.params: 416
          "conv1.params ": 400
        """)
    fine = write(tmp_path / "fine.yaml", "answers:\n  conv1.params: 416\n")
    rows = grade_class(key, [twice, fine]).rows
    assert rows[0].status == "invalid"
    assert rows[0].error == f"{twice}:3:3: error: answer 'conv1.params' is given twice (first at line 2); " \
                            "give each answer once"
    assert rows[1].status == "graded" and rows[1].total == 2  # the class is still graded


def test_a_student_whose_variant_breaks_the_spec_is_not_told_to_fix_their_file(tmp_path):
    write(tmp_path / "net.yaml", """\
        name: net
        vars: {K: 5}
        input: [1, 8, 8]
        layers:
          - {name: conv1, conv: {out: 4, kernel: K}}
        """)
    key_file = write(tmp_path / "net.key.yaml", """\
        spec: net.yaml
        questions: {conv1.params: 1}
        vary: {K: [3, 9]}
        """)
    key = load_key(key_file)
    # K = 9 on an 8 x 8 image: which students get it follows from (seed, student) alone
    students = [f"s{i}" for i in range(20)]
    bad = next(s for s in students if key.variant(s, 1) == {"K": 9})
    good = next(s for s in students if key.variant(s, 1) == {"K": 3})
    files = [write(tmp_path / f"{s}.yaml", f"student: {s}\nanswers:\n  conv1.params: {(3 * 3 + 1) * 4}\n")
             for s in (bad, good)]
    grades = grade_class(key, files, seed=1)
    assert [r.status for r in grades.rows] == ["invalid", "graded"] and grades.rows[1].total == 1
    feedback = grades.feedback()
    assert "through no fault of your file" in feedback[f"{bad}.md"]
    assert "Fix the file" not in feedback[f"{bad}.md"] and "Your TA will look at it" in feedback[f"{bad}.md"]
    broken = write(tmp_path / "broken.yaml", "answers: [1]\n")  # the file's own mistake: asked for again
    assert "Fix the file and hand it in again" in grade_class(key, [broken], seed=1).feedback()["broken.md"]


@pytest.mark.slow
def test_csv_and_feedback_are_written_as_utf8_whatever_the_locale(tmp_path):
    # Windows' cp1252 or a C locale without UTF-8 mode could not write a student named 李雷: a traceback
    answers = write(tmp_path / "li.yaml", 'student: "李雷"\nanswers:\n  conv1.params: 416\n')
    env = dict(os.environ, LC_ALL="C", LANG="C", PYTHONCOERCECLOCALE="0", PYTHONUTF8="0")
    out = subprocess.run([sys.executable, "-X", "utf8=0", "-m", "archcalc", "grade",
                          str(HOMEWORK / "written_assignment_1.key.yaml"), str(answers), "--json",
                          "--csv", str(tmp_path / "g.csv"), "--feedback", str(tmp_path / "fb")],
                         capture_output=True, env=env, cwd=ROOT)
    assert out.returncode == 0, out.stderr.decode(errors="replace")[-2000:]
    table = list(csv.reader(io.StringIO((tmp_path / "g.csv").read_text(encoding="utf-8"))))
    assert table[1][0] == "李雷" and table[1][1] == "2"
    assert "feedback for 李雷" in (tmp_path / "fb" / "student.md").read_text(encoding="utf-8")


    key_file = write(tmp_path / "k.key.yaml", f"""\
        spec: {HOMEWORK / 'written_assignment_1.yaml'}
        title: "Übung 1 — 李"
        questions: {{conv1.params: 1}}
        """)
    out = subprocess.run([sys.executable, "-X", "utf8=0", "-m", "archcalc", "key", str(key_file),
                          "-o", str(tmp_path / "sheet.md")], capture_output=True, env=env, cwd=ROOT)
    assert out.returncode == 0, out.stderr.decode(errors="replace")[-2000:]
    assert (tmp_path / "sheet.md").read_text(encoding="utf-8").startswith("# Übung 1 — 李: solution sheet")


def test_the_cli_grades_a_key_with_a_question_twice_as_one_error_line(tmp_path):
    key_file = write(tmp_path / "k.key.yaml", f"""\
        spec: {HOMEWORK / 'written_assignment_1.yaml'}
        questions:
          conv1.params: 2
          " conv1.params": 2
        """)
    answers = write(tmp_path / "a.yaml", "answers:\n  conv1.params: 416\n")
    result = runner.invoke(app, ["grade", str(key_file), str(answers)])
    assert result.exit_code == 2
    assert result.stderr == f"{key_file}:4:3: error: question ' conv1.params' is asked twice (first at line 3); " \
                            "give each question once\n"


def test_one_file_given_twice_is_one_row_but_a_link_to_it_stays_its_own_row(tmp_path):
    from archcalc.homework.classroom import answer_files

    folder = tmp_path / "answers"
    folder.mkdir()
    alice = write(folder / "alice.yaml", "answers:\n  conv1.params: 416\n")
    write(folder / "bob.yaml", "answers:\n  conv1.params: 400\n")
    (folder / "mallory.yaml").symlink_to(alice)  # another student's file: their own row
    key = load_key(HOMEWORK / "written_assignment_1.key.yaml")
    # `grade KEY answers/ answers/alice.yaml`: before, alice was two rows, 'the same student as' herself
    files, _ = answer_files([folder, alice, folder / ".." / "answers" / "bob.yaml"], key)
    assert [f.name for f in files] == ["alice.yaml", "bob.yaml", "mallory.yaml"]
    rows = grade_class(key, files).rows
    assert [(r.student, r.status) for r in rows] == [("alice", "graded"), ("bob", "graded"), ("mallory", "graded")]


@pytest.mark.parametrize("body, where, message", [
    # before: each was wrapped as "set {H: 28}: the spec is invalid at these sizes: ..." at the set: line
    ("set: {H: 28}\nquestions: {conv9.params: 1}\n", "3:13",
     "question 'conv9.params': the spec has no layer 'conv9' (did you mean 'conv1'?); layers are named as in "
     "`archcalc analyze`"),
    ("vary: {H: [28]}\nquestions: {conv9.params: 1}\n", "3:13", "question 'conv9.params': the spec has no layer"),
    ("set: {H: 27}\nquestions: {fc.params: 1}\n", "2:10",
     "set H: 27 is not a multiple of 2 (the spec constrains H to {multiple_of: 2, min: 2})"),
    ("vary: {H: [16, 27]}\nquestions: {fc.params: 1}\n", "2:8",
     "vary H: 27 is not a multiple of 2 (the spec constrains H to {multiple_of: 2, min: 2})"),
    ("vary: {Q: [28]}\nquestions: {fc.params: 1}\n", "2:8", "vary Q: the spec has no var or symbol 'Q'"),
])
def test_a_mistake_of_the_key_is_said_at_its_own_line_not_as_the_spec_invalid_at_its_sizes(tmp_path, body, where,
                                                                                           message):
    key_file = write(tmp_path / "k.key.yaml", f"spec: {HOMEWORK / 'conv_pool_fc.yaml'}\n" + body)
    for command in (["key", str(key_file), "--student", "ana", "--seed", "3"],
                    ["grade", str(key_file), str(HOMEWORK / "conv_pool_fc.answers.yaml"), "--seed", "3"]):
        result = runner.invoke(app, command)
        assert result.exit_code == 2
        assert result.stderr.startswith(f"{key_file}:{where}: error: {message}"), result.stderr
        assert "invalid at these sizes" not in result.stderr and "invalid for the variant" not in result.stderr


def test_points_in_tenths_add_up_to_a_max_without_float_noise(tmp_path):
    key_file = write(tmp_path / "k.key.yaml", f"""\
        spec: {HOMEWORK / 'written_assignment_1.yaml'}
        assume: divisible
        questions: {{conv1.params: 0.1, fc.params: 0.2}}
        """)
    answers = write(tmp_path / "a.yaml", 'answers:\n  conv1.params: 416\n  fc.params: "40*(H-4)*(W-4) + 10"\n')
    assert load_key(key_file).max_points == 0.3  # 0.1 + 0.2 == 0.30000000000000004 in floats
    result = runner.invoke(app, ["grade", str(key_file), str(answers), "--csv", str(tmp_path / "g.csv")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "g.csv").read_text().splitlines()[1] == "a,0.1,0.2,0.3,0.3,100.0,graded,"
    assert "0.30000000000000004" not in result.stdout


def test_a_sheet_of_one_question_says_one_question(tmp_path):
    from archcalc.homework import sheet as sheets

    key_file = write(tmp_path / "k.key.yaml", f"spec: {HOMEWORK / 'written_assignment_1.yaml'}\n"
                                              "questions: {conv1.params: 1}\n")
    solved = sheets.solve(load_key(key_file))
    assert "· 1 question, 1 point" in sheets.markdown(solved)  # was '1 questions'
    assert "1 question, 1 point" in sheets.latex(solved) and "1 questions" not in sheets.latex(solved)


def test_the_key_itself_in_the_answers_folder_is_not_graded_as_a_student(tmp_path):
    from archcalc.homework.classroom import answer_files

    (tmp_path / "wa1.yaml").write_text((HOMEWORK / "written_assignment_1.yaml").read_text())
    key_file = write(tmp_path / "grading.yaml", "spec: wa1.yaml\nquestions: {conv1.params: 1}\n")  # not *.key.yaml
    alice = write(tmp_path / "alice.yaml", "answers:\n  conv1.params: 416\n")
    files, left_out = answer_files([tmp_path], load_key(key_file))
    assert files == [alice]  # before: a row 'grading', invalid (unknown top-level key 'spec')
    assert sorted(p.name for p in left_out) == ["grading.yaml", "wa1.yaml"]


def test_a_link_to_nothing_in_the_answers_folder_is_an_invalid_row_not_no_row(tmp_path):
    from archcalc.homework.classroom import answer_files

    write(tmp_path / "alice.yaml", "answers:\n  conv1.params: 416\n")
    (tmp_path / "bob.yaml").symlink_to(tmp_path / "gone.yaml")  # an upload that lost its file
    (tmp_path / "carl.yaml").symlink_to(tmp_path / "carl.yaml")  # a loop
    key = load_key(HOMEWORK / "written_assignment_1.key.yaml")
    files, _ = answer_files([tmp_path], key)
    rows = grade_class(key, files).rows
    assert [(r.student, r.status) for r in rows] == [("alice", "graded"), ("bob", "invalid"), ("carl", "invalid")]
    assert rows[1].error == f"error: {tmp_path / 'bob.yaml'}: no such file"


def test_key_notes_a_seed_it_ignores_as_variants_and_grade_do():
    key_file = str(HOMEWORK / "written_assignment_1.key.yaml")
    result = runner.invoke(app, ["key", key_file, "--seed", "7"])
    assert result.exit_code == 0 and result.stderr == "note: --seed is ignored: the key has no vary:\n"
    assert result.stdout == runner.invoke(app, ["key", key_file]).stdout  # the same sheet


def test_an_mlps_field_is_global_on_the_solution_sheet_as_grade_expects(tmp_path):
    # before: the sheet answered 'not tracked' (explain's 'no spatial axes') while grade counts only
    # 'global' right for a layer after a linear one on a vector input (docs/homework.md, An MLP)
    from archcalc.homework import sheet as sheets

    mlp = ROOT / "specs" / "lecture" / "two_layer_mlp.yaml"  # [784] -> linear 100 -> sigmoid -> linear 10
    key_file = write(tmp_path / "k.key.yaml", f"spec: {mlp}\nquestions: {{hidden.rf: 1, output.rf: 1}}\n")
    key = load_key(key_file)
    solved = sheets.solve(key)
    assert [w.answer for w in solved.items] == ["global", "global"]
    assert "not tracked" not in sheets.markdown(solved)
    answers = write(tmp_path / "a.yaml", "answers:\n" + "".join(f"  {w.question.id}: {w.answer}\n"
                                                                for w in solved.items))
    row = grade_class(key, [answers]).rows[0]
    assert [q.verdict for q in row.questions] == ["right", "right"] and row.total == 2


def test_a_key_asking_a_field_archcalc_does_not_track_is_refused_at_the_question(tmp_path):
    # before: the sheet's answer was 'not tracked' and every student's answer, that one too, was graded
    # wrong (or unreadable): a question nobody could earn
    lenet = ROOT / "specs" / "lecture" / "lenet_fully_connected.yaml"  # a reshape: the axes no longer match
    key_file = write(tmp_path / "k.key.yaml", f"spec: {lenet}\nquestions:\n  linear1.params: 1\n  reshape1.rf: 1\n")
    answers = write(tmp_path / "a.yaml", "answers:\n  conv1.params: 1\n")
    for command in (["key", str(key_file)], ["grade", str(key_file), str(answers)]):
        result = runner.invoke(app, command)
        assert result.exit_code == 2
        assert result.stderr == (f"{key_file}:4:3: error: question reshape1.rf: archcalc does not track the receptive "
                                 "field of reshape1 (the axes no longer match the input's), so no answer could be "
                                 "graded right; ask another figure (or, after adaptive pooling or a resize, give the "
                                 "sizes numbers under set:)\n")
    write(tmp_path / "mlp.yaml", "name: mlp\ninput: [8]\nlayers:\n  - {name: drop, dropout: 0.5}\n"
                                 "  - {name: fc, linear: 4}\n")
    with pytest.raises(SpecError, match="question drop.rf: archcalc does not track"):  # before any linear layer
        from archcalc.homework import sheet as sheets

        sheets.check_key(parse_key("spec: mlp.yaml\nquestions: {drop.rf: 1}\n", "m.key.yaml", base=tmp_path))
    sheets.check_key(parse_key("spec: mlp.yaml\nquestions: {fc.rf: 1}\n", "m.key.yaml", base=tmp_path))  # global
