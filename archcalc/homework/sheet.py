"""An answer key as sheets: the solution sheet (each question, its answer and the worked formula)
and the question sheet (the same questions, no answers), in Markdown or LaTeX.

    key = load_key("wa1.key.yaml")
    sheet = solve(key)                          # a key with `vary:` needs student= and seed=
    markdown(sheet), latex(sheet)               # `archcalc key KEY --format markdown|latex`
    questions_markdown(sheet)                   # what `archcalc variants` gives each student

The answers are computed by archcalc from the key's spec, at the key's sizes (`set:`, the
student's variant, `assume: divisible`): the same figures `archcalc analyze` reports and `grade`
grades against. The worked formula of a question about one layer is `archcalc explain`'s steps for
that figure; a question about a block instance or the whole network (`total.*`) shows the steps of
each layer that contributes, then their sum with one term per layer, as a student writes it
(`416 + 10*(...) + 10`). A figure with no explain step of its own (bytes) is worked from the
output's size and the dtype's width, and only where that reproduces archcalc's figure.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from fractions import Fraction

from archcalc.analysis.formula import latex_escape
from archcalc.geometry.receptive_field import GLOBAL, RF
from archcalc.errors import SpecError, one_line
from archcalc.homework.answers import TOTAL
from archcalc.homework.key import Key, Question
from archcalc.render import markdown_code, markdown_fence

#: A question's figure in words, for the sheets: (what, how it is counted).
FIGURE_WORDS = {
    "params": ("the number of parameters", ""),
    "trainable_params": ("the number of trainable parameters", ""),
    "non_trainable_params": ("the number of non-trainable parameters", ""),
    "macs": ("the number of multiply-accumulates", "MACs, batch 1"),
    "flops": ("the number of floating-point operations", "FLOPs = 2 x MACs, batch 1"),
    "output_shape": ("the output shape", "batch excluded"),
    "rf": ("the receptive field", "in pixels of the input image"),
    "activation_bytes": ("the size of the activations in bytes", "float32, batch 1"),
    "param_bytes": ("the size of the parameters in bytes", "float32"),
}

_SUMMED = ("params", "trainable_params", "non_trainable_params", "macs", "flops", "activation_bytes")


@dataclass(frozen=True)
class Worked:
    """One question of the key, answered: `answer` as text, `lines` the working (explain's notation)."""

    question: Question
    answer: str
    value: object  # the figure itself: int, sympy expression, shape tuple, RF, "global" or None
    lines: tuple
    tolerance: float


@dataclass(frozen=True)
class Sheet:
    key: Key
    items: tuple  # Worked, in the key's order
    spec_name: str
    student: str | None = None
    variant: dict = field(default_factory=dict)  # the student's values of the varied names
    bindings: dict = field(default_factory=dict)  # every size given a number (set: and variant)
    symbols: tuple = ()  # size symbols left free: answers are formulas in them
    multiples: dict = field(default_factory=dict)  # assume: divisible: symbol -> its multiple

    @property
    def title(self) -> str:
        return self.key.title or self.spec_name

    @property
    def max_points(self):
        return self.key.max_points


def solve(key: Key, student: str | None = None, seed: int | None = None) -> Sheet:
    """Answer every question of `key` (for `student`'s variant with `seed`, when the key varies).
    SpecError for a key with `vary:` given no student or seed, or a spec invalid at the sizes."""
    from archcalc import api
    from archcalc.explain import explain
    from archcalc.analysis.walk import analyze_graph

    if key.vary and (student is None or seed is None):
        names = ", ".join(key.vary)
        raise SpecError(f"the key varies {names} per student: give the student and the seed "
                        f"(--student ID --seed N), as `archcalc variants` does")
    variant = key.variant(student, seed) if key.vary else {}
    bindings = key.bindings_for(student, seed)
    graph, report = _graph(key, bindings, variant)
    steps = {e.name: e for e in explain(graph)}
    back = dict(getattr(graph, "back", None) or {})
    multiples = {}
    if key.assume_divisible and graph.symbols:
        multiples = {k: v for k, v in api.divisible_multiples(analyze_graph(api.load_graph(
            key.spec, bindings=dict(bindings) or None)), graph).items() if k in graph.symbols}
    work = _Work(report, steps, back, graph)
    items = tuple(work.question(q, key.tolerance_of(q)) for q in key.questions)
    return Sheet(key, items, report.name, student, variant, bindings, tuple(sorted(graph.symbols)), multiples)


def _graph(key: Key, bindings: dict, variant: dict):
    from archcalc import api
    from archcalc.analysis.walk import analyze_graph

    try:
        graph = api.load_graph(key.spec, bindings=dict(bindings) or None, assume_divisible=key.assume_divisible)
        return graph, analyze_graph(graph)
    except SpecError as exc:
        raise _blamed(key, exc, variant) from None


def check_key(key: Key) -> None:
    """`key.check_against_spec`, its binding mistakes located at the key's `set:`/`vary:`."""
    from archcalc.homework.key import check_against_spec

    first = {name: values[0] for name, values in key.vary.items()}
    try:
        check_against_spec(key)
    except SpecError as exc:  # it analyses the first combination of the varied values
        raise _blamed(key, exc, first) from None
    _check_answerable(key, first)


def _check_answerable(key: Key, variant: dict) -> None:
    """A field question has an answer: where archcalc tracks no field (after adaptive pooling or a
    resize with symbolic sizes, on a vector input before any linear layer) every answer would be
    graded wrong, so the key is refused at the question."""
    asked = [q for q in key.questions if q.figure == "rf"]
    if not asked:
        return
    bindings = dict(key.bindings)
    bindings.update(variant)
    graph, report = _graph(key, bindings, variant)
    work = _Work(report, {}, {}, graph)
    for q in asked:
        rows = work.rows(q)
        if rows and rows[-1].rf is None and not work.mlp_global(rows[-1]):
            from archcalc.explain import explain

            entry = next(iter(explain(graph, [rows[-1].name])), None)
            why = next((s.note for s in (entry.steps if entry else ()) if s.figure == "rf" and s.note), "")
            raise SpecError(f"question {q.id}: archcalc does not track the receptive field of {rows[-1].name}"
                            + (f" ({why})" if why else "") + ", so no answer could be graded right; ask another "
                            "figure (or, after adaptive pooling or a resize, give the sizes numbers under set:)",
                            q.loc)


def _blamed(key: Key, exc: SpecError, variant: dict) -> SpecError:
    """A spec error met at the key's sizes, located at the key where the key caused it: the spec
    reader words a binding mistake for the command line (`--set Q: ...`), and a spec valid on its
    own may be invalid at the sizes the key sets or a variant gives."""
    from archcalc import api

    if exc.loc is not None and exc.loc.file == key.file:
        return exc  # already the key's own mistake, at its line (a question naming no layer, a set: number)
    if exc.loc is None and exc.message.startswith("--set "):
        rest = exc.message[len("--set "):]
        name = rest.partition(":")[0]
        where = key.binding_locs.get(name) or key.vary_locs.get(name)
        return SpecError(("vary " if name in key.vary and name not in key.bindings else "set ") + rest, where)
    if not variant and not key.bindings:
        return exc
    try:
        api.analyze(key.spec)
    except SpecError:
        return exc  # invalid without the key's sizes too: the spec's own error stands
    where = f" (at {exc.loc})" if exc.loc is not None else ""
    fixed = ", ".join(f"{k}: {v}" for k, v in key.bindings.items())
    values = ", ".join(f"{k} = {v}" for k, v in variant.items())
    if not variant:
        return SpecError(f"set {{{fixed}}}: the spec is invalid at these sizes: {exc.message}{where}",
                         next(iter(key.binding_locs.values()), None))
    also = f" (with set {{{fixed}}})" if fixed else ""
    return SpecError(f"vary: the spec is invalid for the variant {values}{also}: {exc.message}{where}",
                     next(iter(key.vary_locs.values()), None))


class _Work:
    def __init__(self, report, steps, back, graph=None):
        from archcalc.homework.mistakes.network import Network

        self.report, self.steps, self.back = report, steps, back
        self.net = Network(report, graph)  # check's view of the network (an MLP's global fields)

    def mlp_global(self, row) -> bool:
        """A layer of a vector input whose every output depends on every input feature: its field
        is global, as `check` and `grade` expect, though the analysis tracks none (no spatial axes)."""
        return row.rf is None and self.net.sees_every_feature(row)

    def shown(self, value):
        from archcalc.reader.symbols import shown

        if isinstance(value, tuple):
            return tuple(self.shown(v) for v in value)
        if isinstance(value, RF):
            return RF(tuple(self.shown(v) for v in value.size), tuple(self.shown(v) for v in value.stride),
                      tuple(self.shown(v) for v in value.start), value.misaligned)
        if isinstance(value, Fraction) and value.denominator == 1:
            return value.numerator
        if value is None or value == GLOBAL:
            return value
        return shown(value, self.back)

    def rows(self, q: Question) -> list:
        if q.is_total:
            return list(self.report.layers)
        exact = [r for r in self.report.layers if r.name == q.layer]
        return exact or [r for r in self.report.layers if r.name.startswith(q.layer + ".")]

    def value(self, q: Question, rows: list):
        figure = q.figure
        if q.is_total:
            if figure == "output_shape":
                return self.report.output_shape
            return getattr(self.report.totals, figure)
        if figure == "rf" and self.mlp_global(rows[-1]):
            return GLOBAL
        if figure in ("output_shape", "rf"):
            return getattr(rows[-1], figure)
        return _sum(getattr(r, figure) for r in rows)

    def question(self, q: Question, tolerance: float) -> Worked:
        rows = self.rows(q)
        if not rows:
            raise SpecError(f"question {q.id}: the spec has no layer '{q.layer}'", q.loc)
        value = self.shown(self.value(q, rows))
        pairs = self.working(q, rows, value)
        width = max((len(name) for name, _ in pairs), default=0)
        lines = tuple(f"{name:<{width}}  {text}" if name else text for name, text in pairs)
        return Worked(q, answer_text(value, q.figure), value, lines, tolerance)

    # --- the working ------------------------------------------------------------------------
    def working(self, q: Question, rows: list, value) -> list[tuple]:
        """(layer name, step) pairs: the layers' steps, then (for several layers) their sum."""
        figure = q.figure
        whole = TOTAL if q.is_total else q.layer
        if figure == "rf" and self.mlp_global(rows[-1]):  # explain says 'not tracked (no spatial axes)'
            return [(rows[-1].name, "rf = global   (a vector input: every output is a weighted sum of every "
                                    "input feature, through a linear layer at or before this one)")]
        if figure in ("output_shape", "rf"):  # the last layer's, whatever the layers before it
            return self.layer_lines(rows[-1], figure)
        if figure == "param_bytes":
            return [(whole, line) for line in self.param_bytes(value)]
        single = len(rows) == 1 and not q.is_total
        if figure == "activation_bytes":
            lines, terms = [], []
            for row in rows:
                line = self.activation_line(row)
                if line is None:
                    return []
                lines.append(line)
                terms.append((row.name, self.shown(row.activation_bytes)))
            return lines if single else lines + [(whole, t) for t in self.sum_lines(figure, terms, value)]
        lines, terms = [], []
        for row in rows:
            own = self.shown(_sum([getattr(row, figure)]))
            if _is_zero(own) and not single:
                continue
            lines += self.layer_lines(row, figure)
            terms.append((row.name, own))
        if single:
            return lines
        if not terms:
            return [(whole, f"{figure} = 0   (no layer has any)")]
        return lines + [(whole, t) for t in self.sum_lines(figure, terms, value)]

    def layer_lines(self, row, figure: str) -> list[tuple]:
        from archcalc.explain import figure_steps, lines as explain_lines

        e = self.steps.get(row.name)
        picked = figure_steps(e, figure) if e is not None else []
        if figure == "non_trainable_params" and not picked:
            return [(row.name, "non-trainable = 0")]
        if not picked:
            return [(row.name, f"{figure} = {_number(self.shown(getattr(row, figure)))}")]
        lines = [(row.name, line) for line in explain_lines(replace(e, steps=picked))]
        if figure == "flops":
            macs = self.shown(row.macs)
            lines.append((row.name, f"flops = 2*macs = 2*{_par(_number(macs))} = {_number(self.shown(row.flops))}"))
        return lines

    def sum_lines(self, figure: str, terms: list, value) -> list[str]:
        name = {"params": "params", "trainable_params": "trainable", "non_trainable_params": "non-trainable",
                "macs": "macs", "flops": "flops", "activation_bytes": "activation_bytes"}[figure]
        formula = " + ".join(n for n, _ in terms)
        values = " + ".join(_number(v) for _, v in terms)
        total = _sum(v for _, v in terms)
        if not _same(total, value):  # shared parameters are counted once in the total
            return [f"{name} = {formula} = {values} = {_number(total)}; counted once where layers share "
                    f"parameters: {_number(value)}"]
        parts = [f"{name} = {formula}"] + ([values] if values != formula else []) + [_number(value)]
        return [" = ".join(dict.fromkeys(parts))]

    def activation_line(self, row) -> tuple | None:
        """`[16, 24, 24] = 9,216 values * 4 bytes = 36,864`, when that is archcalc's figure."""
        from archcalc.analysis.report import DTYPE_BYTES

        width = DTYPE_BYTES.get(self.report.dtype, 4)
        count = _sum([1])
        for n in row.output_shape:
            count = count * n
        count = count * self.report.batch
        if not _same(count * width, row.activation_bytes):
            return None
        shape = _shape(self.shown(row.output_shape))
        return (row.name, f"activation_bytes = output values*bytes = {shape} = "
                f"{_number(self.shown(count))} values*{width} bytes = {_number(self.shown(row.activation_bytes))}")

    def param_bytes(self, value) -> list[str]:
        from archcalc.analysis.report import DTYPE_BYTES

        width = DTYPE_BYTES.get(self.report.dtype, 4)
        params = self.shown(self.report.totals.params)
        if not _same(params * width, value):
            return []
        return [f"param_bytes = params*bytes = {_par(_number(params))}*{width} = {_number(value)}"]


# --- values as text ---------------------------------------------------------------------------
def answer_text(value, figure: str) -> str:
    """An answer as a sheet shows it: numbers with thousands separators, formulas as archcalc
    prints them, shapes as lists, receptive fields as size, stride and start."""
    from archcalc.homework.check import format_expected

    if figure == "rf":
        return format_expected(value, "rf")
    if isinstance(value, tuple):
        return _shape(value)
    return _number(value)


def _number(value) -> str:
    from archcalc.explain import number

    return number(value)


def _shape(values) -> str:
    return _number(tuple(values))  # explain's shapes: sizes as PyTorch writes them


def _par(text: str) -> str:
    return f"({text})" if any(c in text for c in " +-/") else text


def _sum(values):
    total = 0
    for v in values:
        total = total + v
    return total


def _is_zero(value) -> bool:
    return value == 0


def _same(a, b) -> bool:
    if a == b:
        return True
    if hasattr(a, "free_symbols") or hasattr(b, "free_symbols"):
        import sympy

        return sympy.expand(sympy.sympify(a) - sympy.sympify(b)) == 0
    return False


# --- Markdown ---------------------------------------------------------------------------------
def _md(text) -> str:
    """Text as Markdown that is only text: the house escapes, and no emphasis (`*`, `_`)."""
    from archcalc.render import markdown_escape

    return markdown_escape(text).replace("*", "\\*").replace("_", "\\_")


def _points(p) -> str:
    return f"{p:g} point" + ("" if p == 1 else "s")


def _questions(n: int) -> str:
    return f"{n} question" + ("" if n == 1 else "s")  # "1 question, 2 points"


def _sizes_words(sheet: Sheet, student_facing: bool = False) -> list[str]:
    out = []
    if sheet.variant:
        values = ", ".join(f"{k} = {v}" for k, v in sheet.variant.items())
        out.append(("your values: " if student_facing else "the variant: ") + values)
    fixed = {k: v for k, v in sheet.bindings.items() if k not in sheet.variant}
    if fixed:
        out.append("sizes: " + ", ".join(f"{k} = {v}" for k, v in fixed.items()))
    if sheet.symbols:
        out.append("answers are formulas in " + ", ".join(sheet.symbols))
    if sheet.multiples:
        out.append("take " + ", ".join(f"{k} as a multiple of {m}" for k, m in sheet.multiples.items())
                   + " (every size divides evenly)")
    return out


def question_words(q: Question) -> str:
    """`conv1.params` in words: "the number of parameters of layer conv1"."""
    what, how = FIGURE_WORDS.get(q.figure, (q.figure, ""))
    of = "the whole network" if q.is_total else f"layer {q.layer}"
    return f"{what} of {of}" + (f" ({how})" if how else "")


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def markdown(sheet: Sheet) -> str:
    """The solution sheet in Markdown."""
    out = [f"# {_md(sheet.title)}: solution sheet", ""]
    out += _header_md(sheet)
    for i, w in enumerate(sheet.items, 1):
        q = w.question
        out += [f"## {i}. {markdown_code(q.id)} ({_points(q.points)})", "",
                f"{_cap(_md(question_words(q)))}.", "",
                f"**Answer:** {markdown_code(w.answer)}" + _tolerance_md(w), ""]
        if w.lines:
            out += markdown_fence(w.lines, info="text") + [""]
    return "\n".join(out)


def _tolerance_md(w: Worked) -> str:
    if w.question.figure in ("output_shape", "rf") or getattr(w.value, "free_symbols", None):
        return ""
    return f" (an approximate answer is right within {_pct(w.tolerance)})"


def _pct(t: float) -> str:
    return f"{t * 100:.4g} %"


def _header_md(sheet: Sheet, student_facing: bool = False) -> list[str]:
    facts = [f"spec {markdown_code(sheet.key.spec.name)}"]
    if sheet.student is not None:
        facts.append(f"student {markdown_code(sheet.student)}")
    facts.append(f"{_questions(len(sheet.items))}, {_points(sheet.max_points)}")
    out = [" · ".join(facts), ""]
    words = _sizes_words(sheet, student_facing)
    if words:
        out += [_cap("; ".join(_md(w) for w in words)) + ".", ""]
    return out


def questions_markdown(sheet: Sheet, spec_text: str | None = None, spec_file: str | None = None) -> str:
    """The question sheet: the network (the student's spec, when given), the questions and their
    points, and an answers file to fill in. No answers."""
    out = [f"# {_md(sheet.title)}", ""]
    out += _header_md(sheet, student_facing=True)
    if spec_text is not None:
        where = f" ({markdown_code(spec_file)})" if spec_file else ""
        out += [f"The network{where}:", "", *_yaml_block(spec_text), ""]
    out += ["## Questions", ""]
    for i, w in enumerate(sheet.items, 1):
        q = w.question
        out.append(f"{i}. {_cap(_md(question_words(q)))}: {markdown_code(q.id)} ({_points(q.points)})")
    out += ["", "## Your answers", "",
            "Write them in a YAML file, one line per question (a number, a formula in the "
            "sizes such as `2*(H - 1)*W + 8`, a shape such as `[8, H/2, W/2]`, or a receptive field size):", ""]
    template = answers_template(sheet)
    out += _yaml_block(template) + [""]
    return "\n".join(out)


def _yaml_block(text: str) -> list[str]:
    lines = text.rstrip("\n").split("\n")
    run = max((len(m) for line in lines for m in re.findall(r"`+", line)), default=0)
    fence = "`" * max(3, run + 1)
    return [fence + "yaml", *lines, fence]


def answers_template(sheet: Sheet) -> str:
    """An answers file with the student's name and every question left blank (a comment says what)."""
    import json

    out = ["# Write each answer after its question's colon; a question left blank is unanswered."]
    if sheet.student is not None:
        out.append(f"student: {json.dumps(sheet.student, ensure_ascii=False)}")
    out.append("answers:")
    width = max(len(w.question.id) for w in sheet.items) + 1
    for w in sheet.items:
        q = w.question
        out.append(f"  {q.id + ':':<{width}}      # {one_line(question_words(q))} ({_points(q.points)})")
    return "\n".join(out) + "\n"


# --- LaTeX ------------------------------------------------------------------------------------
# latex_escape (imported above) lives with the formula printer: explain --latex uses it too.

def _tt(text) -> str:
    return r"\texttt{" + latex_escape(text) + "}"


def _latex_head(sheet: Sheet, title: str, student_facing: bool) -> list[str]:
    out = [r"\documentclass[11pt]{article}", r"\usepackage[T1]{fontenc}", r"\usepackage[utf8]{inputenc}",
           r"\usepackage{textcomp}", r"\usepackage[margin=2cm]{geometry}", r"\setlength{\parindent}{0pt}",
           r"\setlength{\parskip}{4pt}",
           r"\begin{document}", r"\sloppy", "", r"\section*{" + latex_escape(title) + "}", ""]
    facts = [f"spec {_tt(sheet.key.spec.name)}"]
    if sheet.student is not None:
        facts.append(f"student {_tt(sheet.student)}")
    facts.append(latex_escape(f"{_questions(len(sheet.items))}, {_points(sheet.max_points)}"))
    out += [r" \textperiodcentered{} ".join(facts), ""]
    words = _sizes_words(sheet, student_facing)
    if words:
        out += [latex_escape(_cap("; ".join(words)) + "."), ""]
    return out


def questions_latex(sheet: Sheet, spec_text: str | None = None, spec_file: str | None = None) -> str:
    """The question sheet as a LaTeX document: the network (when given), the questions and their
    points, no answers."""
    out = _latex_head(sheet, sheet.title, student_facing=True)
    if spec_text is not None:
        out += [latex_escape("The network" + (f" ({spec_file})" if spec_file else "") + ":"), ""]
        lines = spec_text.rstrip("\n").split("\n")
        if any("\\end{verbatim}" in line for line in lines) or any(ord(c) > 0xFF for c in spec_text):
            out += [r"\begin{flushleft}"] + [_tt(line) + r"\\" for line in lines] + [r"\end{flushleft}", ""]
        else:
            out += [r"\begin{verbatim}", *lines, r"\end{verbatim}", ""]
    out.append(r"\begin{enumerate}")
    for w in sheet.items:
        q = w.question
        out.append(r"\item " + latex_escape(_cap(question_words(q)) + ": ") + _tt(q.id)
                   + latex_escape(f" ({_points(q.points)})"))
    out += [r"\end{enumerate}", "", r"\end{document}"]
    return "\n".join(out) + "\n"


def latex(sheet: Sheet) -> str:
    """The solution sheet as a LaTeX document (article class, T1 fonts, utf8 input)."""
    out = _latex_head(sheet, f"{sheet.title}: solution sheet", student_facing=False)
    for i, w in enumerate(sheet.items, 1):
        q = w.question
        tol = _tolerance_md(w).replace(" %", "%")
        out += [r"\subsection*{" + latex_escape(f"{i}. ") + _tt(q.id) + latex_escape(f" ({_points(q.points)})") + "}",
                latex_escape(_cap(question_words(q)) + "."), "",
                r"\textbf{Answer:} " + _tt(w.answer) + latex_escape(tol), ""]
        if w.lines:
            out += [r"\begin{itemize}"] + [r"\item " + _tt(line) for line in w.lines] + [r"\end{itemize}", ""]
    out.append(r"\end{document}")
    return "\n".join(out) + "\n"


__all__ = ["FIGURE_WORDS", "Sheet", "Worked", "answer_text", "answers_template", "check_key", "latex",
           "latex_escape", "markdown", "question_words", "questions_latex", "questions_markdown", "solve"]
