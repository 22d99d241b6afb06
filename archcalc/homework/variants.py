"""Per-student variants of an answer key: `archcalc variants KEY --roster roster.csv --seed S -o DIR`.

Each student of the roster gets one value of each varied name (`vary:` in the key), drawn by
`Key.variant(student, seed)`: a function of the seed and the student's id only, so the same on
every machine and whatever the roster's order, and exactly what `grade` uses to grade them. DIR
then holds:

    DIR/variants.csv                        student, folder, one column per varied name
    DIR/students/FOLDER/SPEC.yaml           the student's network: the key's spec with their values
    DIR/students/FOLDER/questions.md        the questions and points (no answers), the network
    DIR/students/FOLDER/answers.yaml        an answers file to fill in (student: and the question ids)
    DIR/keys/FOLDER.md                      the solution sheet of their variant (for the TA)

(with `--latex`, questions.tex and keys/FOLDER.tex beside them).

A student's folder holds only what may be handed out; the keys are kept apart. The student's spec
is the key's spec with the student's values (and the key's `set:` sizes) written in as `vars`:
a plain spec that `archcalc analyze` and `explain` read as it is, with nothing to pass on the
command line; a varied symbol (an input size such as H) becomes a var too, which makes it a number
everywhere it is used. The spec is written out again from its data, so the TA's comments (which
often hold the answers) are not copied. Every student's spec is analysed once more after it is
written and must give the same answer to every question as the key at the student's values.

The roster is CSV with a header line; the student's id is read from the `student` column, or from
an `id` column where there is none (matched ignoring case and spaces); other columns are ignored.
The id must be what `grade` sees: the answers file's `student:` field or its file name. Folder
names are the ids made safe (`/ \\ : * ? " < > |` and control characters become `_`, leading and
trailing dots and spaces are dropped, Windows device names get a `_`); two ids that would share a
folder (also differing only in case) are refused.
"""
from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass, replace
from pathlib import Path

from archcalc.errors import Loc, SpecError, one_line
from archcalc.homework.check import csv_cell  # one neutraliser for every CSV archcalc writes (was a copy here)
from archcalc.homework.key import Key
from archcalc.reader.cli_text import shown as _shown
from archcalc.reader.yaml_source import load_yaml, plain, read_source

ID_COLUMNS = ("student", "id")
MAX_ID = 100  # characters of a student id
MAX_STUDENTS = 10_000
MANIFEST = "variants.csv"
_UNSAFE = set('/\\:*?"<>|')
_DEVICES = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))}


@dataclass(frozen=True)
class Student:
    id: str
    folder: str
    line: int  # in the roster


# --- the roster -------------------------------------------------------------------------------
def read_roster(path) -> list[Student]:
    """The students of a roster CSV, in its order; SpecError at FILE:LINE:COL for a file without
    a `student` (or `id`) column, a row without an id, an id listed twice, or two ids that would
    share a folder."""
    path = Path(path)
    if path.is_dir():  # read_source would open a folder and fail later, with a traceback
        raise SpecError(f"{_shown(str(path))}: is a directory, expected a CSV roster file")
    text = read_source(path, "roster")
    return parse_roster(text, str(path))


def parse_roster(text: str, filename: str = "<roster>") -> list[Student]:
    text = text.removeprefix("\ufeff")  # a spreadsheet's byte-order mark
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if header is None or not any(cell.strip() for cell in header):
            raise SpecError(f"the roster is empty: expected a header line with a '{ID_COLUMNS[0]}' column, "
                            "then one student a line", Loc(filename, 1, 1))
        names = [cell.strip().lower() for cell in header]
        column = next((names.index(c) for c in ID_COLUMNS if c in names), None)
        if column is None:
            raise SpecError(f"the roster has no '{ID_COLUMNS[0]}' column (nor '{ID_COLUMNS[1]}'); its header is "
                            f"{_shown(one_line(','.join(header)))}", Loc(filename, 1, 1))
        if names.count(names[column]) > 1:
            raise SpecError(f"the roster's header names the column '{names[column]}' twice", Loc(filename, 1, 1))
        students, seen, folders = [], {}, {}
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue  # a blank line
            where = Loc(filename, line, 1)
            student = row[column].strip() if column < len(row) else ""
            if not student:
                raise SpecError(f"no student id in the '{names[column]}' column", where)
            problem = _id_problem(student)
            if problem:
                raise SpecError(f"student {_shown(student)}: {problem}", where)
            if student in seen:
                raise SpecError(f"student {_shown(student)} is listed twice (lines {seen[student]} and {line})", where)
            folder = folder_name(student)
            other = folders.get(folder.casefold())
            if other is not None:
                raise SpecError(f"students {_shown(other.id)} (line {other.line}) and {_shown(student)} would share "
                                f"the folder {_shown(folder)} (folder names are compared ignoring case, as macOS "
                                "and Windows do); give them ids that differ in letters or digits", where)
            entry = Student(student, folder, line)
            seen[student], folders[folder.casefold()] = line, entry
            students.append(entry)
            if len(students) > MAX_STUDENTS:
                raise SpecError(f"more than {MAX_STUDENTS:,} students", where)
    except csv.Error as exc:
        raise SpecError(f"not CSV: {exc}", Loc(filename, reader.line_num or 1, 1)) from None
    if not students:
        raise SpecError("the roster lists no student (only its header)", Loc(filename, 1, 1))
    return students


def _id_problem(student: str) -> str | None:
    if len(student) > MAX_ID:
        return f"longer than {MAX_ID} characters"
    if any(ord(c) < 32 or 0x7F <= ord(c) < 0xA0 or c in "\u2028\u2029" for c in student):
        return "holds a control character"
    return None


def folder_name(student: str) -> str:
    """A student's id as the name of a folder, on any system: no path separators, no `..`."""
    name = "".join("_" if c in _UNSAFE or ord(c) < 32 or ord(c) == 127 else c for c in student)
    name = name.strip(" .")
    if not name:
        name = "_"
    if name.split(".")[0].strip().lower() in _DEVICES:
        name += "_"
    return name


# --- the student's spec -----------------------------------------------------------------------
def student_spec(key: Key, bindings: dict, header: str = "") -> str:
    """The key's spec with `bindings` (name -> int) written in as vars (a var's value replaced
    where it has one; otherwise added first, before the vars that may use it) and taken out of
    `symbols:`. Comments are not copied."""
    import yaml

    doc = plain(load_yaml(read_source(key.spec, "spec"), str(key.spec)))
    if not isinstance(doc, dict):
        raise SpecError("the key's spec is not a YAML mapping", key.spec_loc)
    old = doc.get("vars") or {}
    if not isinstance(old, dict):
        raise SpecError("the spec's 'vars' is not a mapping", key.spec_loc)
    new = {name: value for name, value in bindings.items() if name not in old}
    new.update({name: bindings.get(name, value) for name, value in old.items()})
    out = {}
    for k, v in doc.items():
        if k == "symbols" and isinstance(v, dict):
            v = {name: rules for name, rules in v.items() if name not in bindings}
            if not v:
                continue
        if k == "vars":
            continue
        if k in ("input", "inputs", "symbols", "blocks", "layers") and "vars" not in out and new:
            out["vars"] = new  # before the sizes and layers that use them
        out[k] = v
    if new and "vars" not in out:
        out["vars"] = new
    text = "".join(_emit(k, v, "") for k, v in out.items())
    if yaml.safe_load(text) != out:  # the layout must not change a value
        text = yaml.safe_dump(out, sort_keys=False, default_flow_style=None, allow_unicode=True, width=100)
    lines = [f"# {one_line(line)}" if line else "#" for line in header.split("\n")] if header else []
    return "\n".join(lines) + ("\n" if lines else "") + text


def _flow(value) -> str:
    """One value as a one-line YAML flow node ({name: conv1, conv: {out: C, kernel: K}})."""
    import yaml

    text = yaml.safe_dump([value], sort_keys=False, default_flow_style=True, allow_unicode=True,
                          width=10**9).strip()
    return text[1:-1]


def _emit(key, value, indent: str) -> str:
    """A spec's key as a person writes it: layer lists one entry a line, blocks by name, the rest
    on one line."""
    head = f"{indent}{_flow(key)}:"
    if key == "layers" and isinstance(value, list) and value:
        return head + "\n" + "".join(f"{indent}  - {_flow(item)}\n" for item in value)
    if key == "blocks" and isinstance(value, dict) and value:
        out = head + "\n"
        for name, body in value.items():
            if isinstance(body, dict):
                out += f"{indent}  {_flow(name)}:\n" + "".join(_emit(k, v, indent + "    ") for k, v in body.items())
            else:
                out += f"{indent}  {_flow(name)}: {_flow(body)}\n"
        return out
    return f"{head} {_flow(value)}\n"


# --- writing the variants ---------------------------------------------------------------------
@dataclass(frozen=True)
class Variant:
    student: Student
    values: dict  # the varied names' values
    spec_text: str
    questions: str
    answers: str
    key_sheet: str
    questions_tex: str | None = None  # with latex=True
    key_tex: str | None = None


def make_variants(key: Key, students: list[Student], seed: int | None, latex: bool = False) -> list[Variant]:
    """Every student's spec, question sheet, answers file and key (nothing written yet); with
    `latex`, the question sheet and key as LaTeX documents too."""
    from archcalc.homework import sheet as sheets

    if key.vary and seed is None:
        raise SpecError(f"the key varies {', '.join(key.vary)}: give --seed N (the same seed then grades them)")
    out, solved_at = [], {}
    for student in students:
        solved = _solved(key, student.id, seed, solved_at)
        text = sheet_spec(key, solved)
        out.append(Variant(student, dict(solved.variant), text,
                           sheets.questions_markdown(solved, text, key.spec.name),
                           sheets.answers_template(solved), sheets.markdown(solved),
                           sheets.questions_latex(solved, text, key.spec.name) if latex else None,
                           sheets.latex(solved) if latex else None))
    return out


def _solved(key: Key, student: str, seed, cache: dict):
    """`sheet.solve` for one student, worked once per set of sizes (a sheet depends on the sizes
    only; the student's name is put in)."""
    from archcalc.homework import sheet as sheets

    sizes = tuple(sorted(key.bindings_for(student, seed).items()))
    if sizes not in cache:
        cache[sizes] = sheets.solve(key, student, seed)
    return replace(cache[sizes], student=student)


def sheet_spec(key: Key, solved) -> str:
    """The spec of a solved sheet (its student's values written in), with a header line."""
    values = ", ".join(f"{k} = {v}" for k, v in solved.variant.items())
    who = f"student {solved.student}" if solved.student is not None else ""
    about = "; ".join(filter(None, [who, values]))
    header = f"{solved.title}: the network of your questions" + (f" ({about})" if about else "")
    return student_spec(key, solved.bindings, header)


def question_sheet(key: Key, solved, latex: bool = False) -> str:
    """The question sheet of a solved key: the network as `sheet_spec` writes it, the questions."""
    from archcalc.homework import sheet as sheets

    text = sheet_spec(key, solved)
    return (sheets.questions_latex if latex else sheets.questions_markdown)(solved, text, key.spec.name)


def check_variant(key: Key, variant: Variant, spec_path: Path, expected) -> None:
    """The written spec gives every question the answer of the key at the student's values."""
    from archcalc.homework import sheet as sheets

    plain = replace(key, spec=spec_path, bindings={}, vary={}, binding_locs={}, vary_locs={})
    again = sheets.solve(plain)
    for mine, theirs in zip(again.items, expected.items):
        if mine.answer != theirs.answer:
            raise SpecError(f"student {_shown(variant.student.id)}: their spec {spec_path} gives "
                            f"{mine.question.id} = {mine.answer}, the key {theirs.answer}; please report this")


def write_variants(key: Key, students: list[Student], seed: int | None, out_dir,
                   latex: bool = False) -> list[Variant]:
    """Write DIR (see the module docstring). DIR may be new, empty, or an earlier output of this
    command (its files are replaced); any other folder is refused, so that `-o .` never litters."""
    from archcalc.homework import sheet as sheets

    out_dir = Path(out_dir)
    _check_out_dir(out_dir)
    variants = make_variants(key, students, seed, latex)
    files = {Path(MANIFEST): manifest(key, variants)}
    for v in variants:
        folder = Path("students") / v.student.folder
        files[folder / key.spec.name] = v.spec_text
        files[folder / "questions.md"] = v.questions
        files[folder / "answers.yaml"] = v.answers
        files[Path("keys") / f"{v.student.folder}.md"] = v.key_sheet
        if latex:
            files[folder / "questions.tex"] = v.questions_tex
            files[Path("keys") / f"{v.student.folder}.tex"] = v.key_tex
    _write_all(out_dir, files)
    checked = set()
    for v in variants:  # the written spec, read back, answers as the key does (once per variant)
        sizes = tuple(sorted(key.bindings_for(v.student.id, seed).items()))
        if sizes not in checked:
            checked.add(sizes)
            check_variant(key, v, out_dir / "students" / v.student.folder / key.spec.name,
                          sheets.solve(key, v.student.id, seed))
    return variants


def manifest(key: Key, variants: list[Variant]) -> str:
    rows = io.StringIO(newline="")
    writer = csv.writer(rows)
    writer.writerow(["student", "folder", *key.vary])
    for v in variants:
        writer.writerow([csv_cell(v.student.id), csv_cell(v.student.folder), *(v.values[n] for n in key.vary)])
    return rows.getvalue()


def read_manifest(path) -> dict:
    """DIR/variants.csv read back: {student id: {varied name: value}}, in its order. For `grade`
    to check that each graded student is one the variants were made for, at the same values (a
    `student:` mistyped would otherwise be graded, silently, at another variant). SpecError at
    FILE:LINE for a file that is not such a manifest."""
    path = Path(path)
    if path.is_dir():
        raise SpecError(f"{_shown(str(path))}: is a directory, expected {MANIFEST}")
    text = read_source(path, "variants manifest")
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""))
    out = {}
    try:
        header = next(reader, None)
        if not header or header[:2] != ["student", "folder"]:
            raise SpecError(f"not a manifest of `archcalc variants`: expected the header student,folder,... "
                            f"(got {_shown(one_line(','.join(header or [])))})", Loc(str(path), 1, 1))
        names = header[2:]
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            where = Loc(str(path), reader.line_num, 1)
            if len(row) != len(header):
                raise SpecError(f"expected {len(header)} cells (student, folder, {', '.join(names) or 'no values'}), "
                                f"got {len(row)}", where)
            student = row[0][1:] if row[0][:1] == "'" and row[0][1:2] in ("=", "+", "-", "@") else row[0]
            try:
                values = {name: int(cell) for name, cell in zip(names, row[2:])}
            except ValueError:
                raise SpecError(f"student {_shown(student)}: the values must be whole numbers, got "
                                f"{_shown(one_line(','.join(row[2:])))}", where) from None
            if student in out:
                raise SpecError(f"student {_shown(student)} is listed twice", where)
            out[student] = values
    except csv.Error as exc:
        raise SpecError(f"not CSV: {exc}", Loc(str(path), reader.line_num or 1, 1)) from None
    return out


def _check_out_dir(out_dir: Path) -> None:
    where = f"-o {_shown(str(out_dir))}"
    try:
        _check_out_dir_at(out_dir, where)
    except OSError as exc:  # a name too long to look at, a folder without permission
        raise SpecError(f"{where}: cannot write: {exc.strerror or exc}") from None


def _check_out_dir_at(out_dir: Path, where: str) -> None:
    if out_dir.is_symlink() and not out_dir.is_dir():
        raise SpecError(f"{where}: a link to nothing")
    if out_dir.exists():
        if not out_dir.is_dir():
            raise SpecError(f"{where}: not a folder")
        try:
            entries = {p.name for p in out_dir.iterdir()}
        except OSError as exc:
            raise SpecError(f"{where}: cannot read it: {exc.strerror or exc}") from None
        if entries and MANIFEST not in entries:
            raise SpecError(f"{where}: the folder is not empty and is no earlier output of `archcalc variants` "
                            f"(it has no {MANIFEST}); name a new or empty folder")


def _write_all(out_dir: Path, files: dict) -> None:
    """Every file, or (for a link in the way) none: the paths are checked before the first write;
    each file is written beside itself (a fresh temporary name) and renamed over the old one."""
    import tempfile

    where = f"-o {_shown(str(out_dir))}"
    try:
        for rel in files:
            path = out_dir / rel
            for part in [path, *path.parents]:
                if part == out_dir:
                    break
                if part.is_symlink():
                    raise SpecError(f"{where}: {_shown(str(part))} is a link; not writing through it")
        out_dir.mkdir(parents=True, exist_ok=True)
        for rel, text in files.items():
            path = out_dir / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            try:
                with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
                    handle.write(text)
                os.chmod(tmp, 0o666 & ~_umask())
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
    except OSError as exc:
        raise SpecError(f"{where}: cannot write: {exc.strerror or exc}"
                        + (f" ({exc.filename})" if exc.filename else "")) from None


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


__all__ = ["Student", "Variant", "csv_cell", "folder_name", "make_variants", "manifest", "parse_roster",
           "question_sheet", "read_manifest", "read_roster", "sheet_spec", "student_spec", "write_variants"]
