"""Grading a class against an answer key: what `archcalc grade KEY ANSWERS...` runs (the CLI only
renders).

    key = load_key("specs/homework/written_assignment_1.key.yaml")
    grades = grade_class(key, paths, seed=None)   # every file becomes a row, whatever it holds
    grades.csv_text()                              # student, one column per question, total, max, percent, status, note
    grades.to_json()                               # per student and question: verdict, expected, given, hint, points
    grades.feedback()                              # {safe file name: Markdown} one per student
    grades.summary()                               # per question: how many right, commonest mistakes

The policy is the key's alone: its questions, points, tolerances, `set:` and `assume:`; a
student's own `tolerance:` and `set:` are ignored and reported. Scores are over the key's
questions: an unanswered question earns 0 and is listed; an answer to a question the key does not
ask earns nothing and is listed. Verdicts and points:

- right, close (an approximate answer within the question's tolerance): the question's points;
- wrong: 0;
- undecided (a formula too large for archcalc to compare within its bounds): 0, and the row's
  status is `review`: the TA looks at it and decides;
- an answer that cannot be read (`40(H-4)(W-4)`: check's verdict "invalid", with the reader's
  message as its hint): 0, the file's other answers graded, and the row's status is `review`;
- unanswered: 0.

Row status: `graded`; `review` (a TA should look: an undecided or unreadable answer, or the file
set its own `tolerance:`/`set:`, which were ignored); `duplicate` (another file names the same student: both
rows are kept, neither merged); `invalid` (the file could not be read or is not a valid answers
file: the row holds the one-line error and 0 points; the other files are graded all the same).
"""
from __future__ import annotations

import csv
import io
import os
import re
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

from archcalc.errors import SpecError, one_line
from archcalc.homework.answers import Approx, Exact, Invalid, RFAnswer, Shape, format_given, parse_answers
from archcalc.homework.check import CLOSE, RIGHT, UNDECIDED, WRONG, csv_cell, ungrouped

UNREADABLE = "invalid"  # check's verdict for one answer that cannot be read (the file's others are graded)
from archcalc.homework.key import Key, Question
from archcalc.reader.yaml_source import YMap, load_yaml, read_source
from archcalc.render import markdown_code, markdown_fence

UNANSWERED = "unanswered"
NOT_IN_KEY = "not in the key"
GRADED, REVIEW, DUPLICATE, INVALID = "graded", "review", "duplicate", "invalid"
STATUSES = (GRADED, REVIEW, DUPLICATE, INVALID)  # from least to most in need of the TA
ANSWER_SUFFIXES = (".yaml", ".yml")
MAX_MISTAKES = 3  # commonest diagnosed mistakes listed per question in the summary
MAX_FILE_NAME = 80  # characters of a feedback file's stem
_WINDOWS_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)),
                     *(f"lpt{i}" for i in range(1, 10))}


# --- results ----------------------------------------------------------------------------------
@dataclass
class QuestionGrade:
    question: Question
    verdict: str  # right, close, wrong, undecided, unanswered
    expected: str | None = None
    given: object = None  # as written (plain YAML value); None when unanswered
    given_text: str | None = None
    hint: str | None = None
    formula: str | None = None  # the formula behind the figure (explain's notation)
    worked: tuple = ()  # explain's lines working the figure out (for feedback)
    mistake: str | None = None  # the diagnosed mistake's rule (archcalc.homework.mistakes), if any

    @property
    def earned(self):
        return self.question.points if self.verdict in (RIGHT, CLOSE) else 0

    def to_json(self, tolerance: float) -> dict:
        return {"verdict": self.verdict, "expected": ungrouped(self.expected), "given": self.given, "hint": self.hint,
                "points": self.earned, "max_points": self.question.points, "tolerance": tolerance,
                "formula": self.formula}


@dataclass
class StudentGrade:
    student: str
    file: str
    status: str = GRADED
    questions: list = field(default_factory=list)  # QuestionGrade, in the key's order (empty if invalid)
    not_in_key: list = field(default_factory=list)  # (quantity, given) answered but not asked
    ignored: dict = field(default_factory=dict)  # the file's own set:/tolerance:, as written
    variant: dict = field(default_factory=dict)  # the student's values of the key's vary: names
    error: str | None = None  # the one-line error of an invalid file
    notes: list = field(default_factory=list)  # why the status is not `graded`, in words
    file_at_fault: bool = True  # an invalid row: False when the key (at their variant) or archcalc failed
    max: object = 0

    @property
    def total(self):
        return _number(sum(q.earned for q in self.questions))

    @property
    def percent(self) -> float:
        return round(100 * self.total / self.max, 1) if self.max else 0.0

    @property
    def unanswered(self) -> list:
        return [q.question.id for q in self.questions if q.verdict == UNANSWERED]

    @property
    def undecided(self) -> list:
        return [q.question.id for q in self.questions if q.verdict == UNDECIDED]

    def note(self) -> str:
        """The row's remarks in one line: the error, duplicates, ignored fields, undecided,
        unanswered and unasked answers."""
        parts = list(self.notes)
        if self.error:
            parts.insert(0, self.error)
        if self.unanswered:
            parts.append("unanswered: " + ", ".join(self.unanswered))
        if self.not_in_key:
            parts.append("not in the key (0 points): " + ", ".join(q for q, _ in self.not_in_key))
        return one_line("; ".join(parts))

    def to_json(self, key: Key) -> dict:
        out = {"student": self.student, "file": self.file, "status": self.status, "total": self.total,
               "max": self.max, "percent": self.percent, "note": self.note()}
        if self.variant:
            out["variant"] = self.variant
        if self.error:
            out["error"] = self.error
        if self.ignored:
            out["ignored"] = self.ignored
        out["questions"] = {q.question.id: q.to_json(key.tolerance_of(q.question)) for q in self.questions}
        out["unanswered"] = self.unanswered
        out["not_in_key"] = [{"quantity": q, "given": g} for q, g in self.not_in_key]
        return out


@dataclass
class QuestionSummary:
    question: Question
    right: int = 0  # right or close
    close: int = 0
    wrong: int = 0
    undecided: int = 0
    unreadable: int = 0  # answers that could not be read
    unanswered: int = 0
    mistakes: list = field(default_factory=list)  # (hint, how many), commonest first

    def to_json(self) -> dict:
        return {"points": self.question.points, "right": self.right, "close": self.close, "wrong": self.wrong,
                "undecided": self.undecided, "unreadable": self.unreadable, "unanswered": self.unanswered,
                "mistakes": [{"hint": h, "count": n} for h, n in self.mistakes]}


@dataclass
class ClassGrades:
    key: Key
    rows: list  # StudentGrade, in the order the files were given
    seed: int | None = None

    @property
    def graded(self) -> list:
        return [r for r in self.rows if r.status != INVALID]

    @property
    def needs_review(self) -> bool:
        """Some row is not plainly `graded`: the TA should look before uploading."""
        return any(r.status != GRADED for r in self.rows)

    def summary(self) -> list:
        out = []
        for i, q in enumerate(self.key.questions):
            s = QuestionSummary(q)
            # Counted by the diagnosed rule, not its text: a hint also says how far each answer is off,
            # which differs from student to student. An undiagnosed hint counts by its text.
            hints, texts = Counter(), {}
            for row in self.graded:
                g = row.questions[i]
                if g.verdict in (RIGHT, CLOSE):
                    s.right += 1
                    s.close += g.verdict == CLOSE
                elif g.verdict == WRONG:
                    s.wrong += 1
                    if g.hint:
                        rule = g.mistake or g.hint
                        hints[rule] += 1
                        texts.setdefault(rule, []).append(g.hint)
                elif g.verdict == UNDECIDED:
                    s.undecided += 1
                elif g.verdict == UNREADABLE:
                    s.unreadable += 1
                else:
                    s.unanswered += 1
            s.mistakes = [(texts[rule][0] if len(set(texts[rule])) == 1 else f"{rule}, e.g. {texts[rule][0]}", n)
                          for rule, n in hints.most_common(MAX_MISTAKES)]
            out.append(s)
        return out

    def header(self) -> list:
        return ["student", *(q.id for q in self.key.questions), "total", "max", "percent", "status", "note"]

    def csv_rows(self) -> list:
        rows = [self.header()]
        for r in self.rows:
            cells = [r.student, *("" if r.status == INVALID else _number(q.earned) for q in r.questions)]
            if r.status == INVALID:
                cells += [""] * len(self.key.questions)
            rows.append(cells + [r.total, r.max, r.percent, r.status, r.note()])
        return [[csv_cell(c) for c in row] for row in rows]

    def csv_text(self) -> str:
        out = io.StringIO(newline="")
        csv.writer(out).writerows(self.csv_rows())
        return out.getvalue()

    def to_json(self) -> dict:
        key = self.key
        return {"key": key.file, "title": key.title, "spec": str(key.spec), "seed": self.seed,
                "max": key.max_points,
                "questions": [{"id": q.id, "points": q.points, "tolerance": key.tolerance_of(q)}
                              for q in key.questions],
                "students": [r.to_json(key) for r in self.rows],
                "summary": {s.question.id: s.to_json() for s in self.summary()},
                "duplicates": self.duplicates()}

    def duplicates(self) -> list:
        """The files of each student named by more than one file."""
        groups: dict = {}
        for r in self.rows:
            groups.setdefault(_same_student(r.student), []).append(r.file)
        return [files for files in groups.values() if len(files) > 1]

    def feedback(self) -> dict:
        """One Markdown text per row, under a safe, unique file name (`alice.md`, `alice-2.md`)."""
        out, taken = {}, set()
        for r in self.rows:
            stem = safe_stem(r.student)
            name, n = f"{stem}.md", 1
            while name.casefold() in taken:  # case-insensitive file systems too
                n += 1
                name = f"{stem}-{n}.md"
            taken.add(name.casefold())
            out[name] = feedback_markdown(self.key, r)
        return out


# --- grading ----------------------------------------------------------------------------------
def prepare(key: Key) -> None:
    """Check a key against its spec before grading with it (SpecError at the key's line): its
    questions name layers of the spec, its varied names are the spec's, and its `set:` and
    `vary:` numbers keep the spec's constraints (`key.check_against_spec`), with a spec error met
    at the key's sizes located at the key, as `archcalc key` and `archcalc variants` do."""
    from archcalc.homework import sheet

    sheet.check_key(key)


def grade_class(key: Key, paths, seed: int | None = None) -> ClassGrades:
    """Grade every answers file in `paths` against `key` (call `prepare(key)` first). A key with
    `vary:` needs the seed: each student is graded at `key.bindings_for(student, seed)`."""
    if key.vary and seed is None:
        raise SpecError(f"the key varies {', '.join(key.vary)} per student: give the seed the variants were "
                        "made with (--seed N)", next(iter(key.vary_locs.values()), None))
    specs = _Specs(key)
    rows = [grade_file(key, Path(p), seed, specs) for p in paths]
    _mark_duplicates(rows)
    return ClassGrades(key, rows, seed)


def answer_files(paths, key: Key | None = None) -> tuple[list, list]:
    """(the files to grade, the files left out). Each path given is graded, whatever it holds (a
    path that does not exist becomes an `invalid` row); a folder gives every *.yaml and *.yml inside
    it (sorted, at any depth) except answer keys (*.key.yaml) and copies of the key's spec (a file
    named as it is: `archcalc variants` puts each student's spec beside their answers), which
    are left out."""
    out, left_out = [], []
    spec_name = key.spec.name.casefold() if key is not None else None
    seen = set()  # one file given twice (`answers/ answers/alice.yaml`) is one row, not a duplicate student

    def first_time(f: Path) -> bool:
        where = os.path.abspath(f)  # not realpath: a link to another student's file stays its own row
        if where in seen:
            return False
        seen.add(where)
        return True

    for p in map(Path, paths):
        if not p.is_dir():
            if first_time(p):
                out.append(p)
            continue
        # a link to nothing (or a loop) is a row too, invalid, not silently no row for that student
        for f in sorted(f for f in p.rglob("*") if (f.is_file() or f.is_symlink())
                        and f.suffix.lower() in ANSWER_SUFFIXES):
            name = f.name.casefold()
            is_key = name.endswith(".key.yaml") or (key is not None and os.path.abspath(f) == os.path.abspath(key.file))
            if first_time(f):
                (left_out if is_key or name == spec_name else out).append(f)
    if not out:
        raise SpecError(f"no answers files in {', '.join(map(str, paths))} (files *.yaml or *.yml)")
    return out, left_out


def student_name(path: Path) -> str:
    """The student a file names when it has no `student:`: its file name without .yaml/.yml."""
    name = path.name
    for suffix in ANSWER_SUFFIXES:
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            return name[:-len(suffix)]
    return name


def grade_file(key: Key, path: Path, seed, specs=None) -> StudentGrade:
    """One row: the file graded, or `invalid` with the one-line error. Never raises for the file."""
    specs = specs or _Specs(key)
    fallback = student_name(path)
    row = StudentGrade(student=fallback, file=str(path), max=key.max_points)
    text = None
    try:
        text = read_source(path, "answers")
        chosen: dict = {}

        def policy(student):
            chosen["bindings"] = key.bindings_for(student or fallback, seed)
            return chosen["bindings"], key.tolerance

        # strict=False: an answer that cannot be read is that question's verdict "invalid" (0 points)
        sheet = parse_answers(text, str(path), policy=policy, strict=False)
        row.student = sheet.student or fallback
        row.variant = key.variant(row.student, seed) if key.vary else {}
        row.ignored = sheet.ignored
        try:
            spec = specs.at(chosen["bindings"])
        except SpecError:  # the key's spec at this student's variant: not the file's mistake
            row.file_at_fault = False
            raise
        _grade_sheet(key, sheet, spec, row, seed)
    except SpecError as exc:
        _invalid(row, exc.cli_line(), text)
    except Exception as exc:  # noqa: BLE001 - one file must never stop the class
        row.file_at_fault = False
        _invalid(row, f"{path}: error: archcalc could not grade this file ({type(exc).__name__}: "
                      f"{one_line(str(exc))[:200]}); please report it", text)
    return row


def _invalid(row: StudentGrade, message: str, text) -> None:
    row.status, row.error, row.questions = INVALID, one_line(message), []
    named = _student_field(text) if text is not None else None
    if named:
        row.student = named


def _student_field(text: str):
    """The `student:` of a file that is otherwise invalid, where it can still be read."""
    try:
        doc = load_yaml(text, "<answers>")
    except SpecError:
        return None
    value = doc.get("student") if isinstance(doc, YMap) else None
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if isinstance(value, str) and value.strip() and len(value) <= 200 and "\n" not in value.strip():
        return value.strip()
    return None


def _grade_sheet(key: Key, sheet, spec, row: StudentGrade, seed=None) -> None:
    from archcalc.homework.check import check

    asked = {_qid(q.layer, q.figure): q for q in key.questions}
    answers, first_at = {}, {}
    for a in sheet.answers:
        qid = _qid(a.layer, a.figure)
        if qid in first_at:  # `conv1.params` and `"conv1.params "`: two YAML keys, one answer given twice
            where = f" (first at line {first_at[qid].line})" if first_at[qid] is not None else ""
            raise SpecError(f"answer '{one_line(a.quantity.strip())}' is given twice{where}; give each answer once",
                            a.key_loc)
        first_at[qid] = a.key_loc or a.loc
        q = asked.get(qid)
        if q is None:
            row.not_in_key.append((a.quantity.strip(), a.given))
            if isinstance(a.value, Invalid):  # a misspelt question (conv1.parms): the TA looks
                row.notes.append(f"{a.quantity.strip()}: {a.value.message}")
            continue
        if a.given is None or (isinstance(a.given, str) and not a.given.strip()):
            continue  # left blank (`conv1.params:` with nothing after it): not answered
        value = a.value
        if isinstance(value, Approx):  # the question's own tolerance, the key's otherwise
            value = replace(value, tolerance=key.tolerance_of(q))
        answers[qid] = replace(a, value=value)
    checked = {}
    if answers:
        result = check(spec.report, replace(sheet, answers=list(answers.values())), spec_graph=spec.graph)
        checked = dict(zip(answers, result.results))
    missing = [q for q in key.questions if _qid(q.layer, q.figure) not in checked
               or not checked[_qid(q.layer, q.figure)].expected]  # unanswered, or unreadable
    expected = spec.expected(sheet, missing)
    for q in key.questions:
        qid = _qid(q.layer, q.figure)
        worked = spec.worked_of(q, row.student, seed)
        r = checked.get(qid)
        if r is None:
            row.questions.append(QuestionGrade(q, UNANSWERED, expected.get(qid), formula=spec.formula(q.id),
                                               worked=worked))
        else:
            row.questions.append(QuestionGrade(q, r.verdict, r.expected or expected.get(qid), r.given, r.given_text,
                                               _under_key(r.hint), spec.formula(q.id), worked,
                                               r.mistake))
    if sheet.ignored:
        shown = ", ".join(f"{k}: {format_given(v)}" for k, v in sheet.ignored.items())
        row.notes.append(f"ignored the file's own {shown} (the key's policy applies)")
    unreadable = [q.question.id for q in row.questions if q.verdict == UNREADABLE]
    if unreadable:
        row.notes.append("unreadable answers (0 points, for the TA to look at): " + ", ".join(unreadable))
    if row.undecided:
        row.notes.append("undecided (0 points, for the TA to look at): " + ", ".join(row.undecided))
    if row.notes:
        row.status = REVIEW


_SET_ADVICE = re.compile(r",? or give (?:their|its) values? under set:")


def _under_key(hint):
    """A hint as graded under a key: `check` may advise giving sizes under `set:`, which a student's
    file cannot do here (the key sets the sizes), so that advice is left out."""
    return _SET_ADVICE.sub("", hint) if hint else hint


def _mark_duplicates(rows: list) -> None:
    groups: dict = {}
    for r in rows:
        groups.setdefault(_same_student(r.student), []).append(r)
    for group in groups.values():
        if len(group) < 2:
            continue
        for r in group:
            others = ", ".join(o.file for o in group if o is not r)
            r.notes.insert(0, f"duplicate: the same student as {others} (both rows kept, not merged)")
            if r.status != INVALID:
                r.status = DUPLICATE


def _same_student(name: str) -> str:
    return " ".join(name.casefold().split())


def _qid(layer: str, figure: str) -> str:
    return f"{layer}.{figure}"


class _Specs:
    """The key's spec analysed once per set of sizes (one per variant)."""

    def __init__(self, key: Key):
        self.key = key
        self.cache: dict = {}

    def at(self, bindings: dict) -> "_Spec":
        index = tuple(sorted(bindings.items()))
        if index not in self.cache:
            self.cache[index] = _Spec(self.key, dict(bindings))
        return self.cache[index]


class _Spec:
    def __init__(self, key: Key, bindings: dict):
        from archcalc import api
        from archcalc.analysis.walk import analyze_graph
        from archcalc.homework.grade import formula_lookup, worked_lookup

        try:
            self.graph = api.load_graph(key.spec, bindings=bindings or None, assume_divisible=key.assume_divisible)
            self.report = analyze_graph(self.graph)
        except SpecError as exc:
            if not bindings:
                raise
            sizes = ", ".join(f"{k} = {v}" for k, v in bindings.items())
            raise SpecError(f"the key's spec is invalid at this student's sizes ({sizes}): {exc.message}"
                            + (f" (at {exc.loc})" if exc.loc else "")) from None
        self.formula = formula_lookup(self.graph)
        self.worked = worked_lookup(self.graph)
        self.key = key
        self._expected: dict = {}
        self._solved = None

    def worked_of(self, question: Question, student: str, seed) -> tuple:
        """The working of a question's answer: the solution sheet's lines (archcalc.homework.sheet:
        a total's layers and their sum too), explain's steps for the layer where the sheet cannot
        be made."""
        if self._solved is None:
            try:
                from archcalc.homework import sheet as sheets

                solved = sheets.solve(self.key, student if self.key.vary else None, seed if self.key.vary else None)
                self._solved = {w.question.id: tuple(w.lines) for w in solved.items}
            except (ImportError, SpecError, AttributeError):
                self._solved = {}
        return self._solved.get(question.id) or tuple(self.worked(question.id))

    def expected(self, sheet, questions) -> dict:
        """The expected value, formatted, of questions no answer was given to: checked with a
        stand-in answer of the figure's type, whose verdict is thrown away."""
        from archcalc.homework.answers import Answer
        from archcalc.homework.check import check

        todo = [q for q in questions if q.id not in self._expected]
        if todo:
            stand_ins = [Answer(q.id, q.layer, q.figure, _stand_in(q.figure), 0, None, q.loc) for q in todo]
            result = check(self.report, replace(sheet, answers=stand_ins), spec_graph=self.graph)
            for q, r in zip(todo, result.results):
                self._expected[q.id] = r.expected
        return {_qid(q.layer, q.figure): self._expected[q.id] for q in questions}


def _stand_in(figure: str):
    zero = Exact(0, "0")
    if figure == "output_shape":
        return Shape((zero,), "[0]")
    if figure == "rf":
        return RFAnswer(size=zero, text="0")
    return zero


# --- output -----------------------------------------------------------------------------------
def safe_stem(name: str) -> str:
    """A file-name stem from a student's name: letters, digits, '.', '-' and '_' only (others
    become '_'), no leading dot, at most MAX_FILE_NAME characters, never a Windows device name."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "student"
    stem = stem[:MAX_FILE_NAME]
    if stem.split(".")[0].lower() in _WINDOWS_RESERVED:
        stem = "_" + stem
    return stem


def _number(value):
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return round(value, 4) if isinstance(value, float) else value


_VERDICT_WORDS = {RIGHT: "right", CLOSE: "right (close enough: within the tolerance)", WRONG: "wrong",
                  UNDECIDED: "undecided (your TA will look at it)", UNANSWERED: "not answered",
                  UNREADABLE: "could not be read (your TA will look at it)"}


def feedback_markdown(key: Key, row: StudentGrade) -> str:
    from archcalc.render import markdown_escape as md

    title = key.title or Path(key.spec).stem
    out = [f"# {md(title)}: feedback for {md(row.student)}", ""]
    if row.status == INVALID and not row.file_at_fault:  # the key at their variant, or archcalc itself
        out += ["Your answers could not be graded, through no fault of your file:", "", f"    {row.error}", "",
                f"Score: {row.total} / {_number(row.max)} points for now. Your TA will look at it.", ""]
        return "\n".join(out)
    if row.status == INVALID:
        out += ["Your answers file could not be graded:", "", f"    {row.error}", "",
                f"Score: {row.total} / {_number(row.max)} points. Fix the file and hand it in again, or ask your TA.",
                ""]
        return "\n".join(out)
    out += [f"Score: **{row.total} / {_number(row.max)}** points ({row.percent:g} %).", ""]
    if row.variant:
        out += ["Your variant: " + ", ".join(f"{md(k)} = {v}" for k, v in row.variant.items()) + ".", ""]
    if row.ignored:
        fields = " and ".join(f"`{k}:`" for k in row.ignored)
        out += [f"Your file's own {fields} {'were' if len(row.ignored) > 1 else 'was'} ignored: the answer key "
                "sets the tolerance and the sizes.", ""]
    out += ["| question | points | verdict |", "|---|---:|---|"]
    for q in row.questions:
        out.append(f"| {markdown_code(q.question.id)} | {_number(q.earned)} / {_number(q.question.points)} | "
                   f"{md(_VERDICT_WORDS.get(q.verdict, q.verdict))} |")
    out.append("")
    for q in row.questions:
        out += [f"## {md(q.question.id)}: {md(_VERDICT_WORDS.get(q.verdict, q.verdict))}", ""]
        if q.given is not None:
            out.append(f"- your answer: {markdown_code(q.given_text)}")
        if q.expected is not None:
            out.append(f"- expected: {markdown_code(q.expected)}")
        if q.hint:
            out.append(f"- why: {md(q.hint)}")
        if q.worked:
            out += ["- worked out:", "", *markdown_fence(q.worked, indent="  ")]
        elif q.formula:
            out.append(f"- formula: {markdown_code(q.formula)}")
        out.append("")
    if row.not_in_key:
        out += ["Answers to questions the assignment does not ask (no points): "
                + ", ".join(markdown_code(qid) for qid, _ in row.not_in_key), ""]
    return "\n".join(out)


__all__ = ["ClassGrades", "QuestionGrade", "QuestionSummary", "StudentGrade", "answer_files", "csv_cell", "feedback_markdown",
           "grade_class", "grade_file", "prepare", "safe_stem", "student_name"]
