"""`archcalc explain`: every figure of a layer as its formula, the formula with the layer's values
put in, and the result, in the lecture's notation:

    conv1  params = (K1*K2*Cin + 1)*Cout = (5*5*1 + 1)*16 = 416

The knowledge lives with each kind (`Layer.explain` in archcalc/layers); this module walks the
graph, hands every layer its input shapes and receptive fields, and lays the steps out as text or
Markdown. Every result equals the figure `archcalc analyze` reports (the tests check it).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace
from fractions import Fraction

from archcalc.analysis import formula
from archcalc.geometry.receptive_field import GLOBAL, RF
from archcalc.analysis.walk import analyze_graph, input_fields, layer_field, moved_axes
from archcalc.errors import SpecError, did_you_mean, one_line
from archcalc.layers import KINDS
from archcalc.layers import _explain as ex
from archcalc.layers.base import Step
from archcalc.render import markdown_escape
from archcalc.reader.graph import INPUT, Graph
from archcalc.reader.symbols import is_symbolic

#: The figures a step may explain, in the order `text` and `markdown` show them.
FIGURES = ("output", "trainable", "non-trainable", "params", "active", "macs", "rf", "jump", "start")


@dataclass(frozen=True)
class Explanation:
    """The steps of one layer."""

    name: str
    kind: str
    inputs: tuple
    steps: list[Step]


def explain(graph: Graph, layers: list[str] | None = None, batch: int = 1) -> list[Explanation]:
    """Explain the layers of `graph` (all of them, or those named in `layers`: a layer's dotted
    name, or a block instance's name for all of its layers). MACs are for `batch` examples.
    Raises SpecError for a spec mistake or a name that is no layer."""
    report = analyze_graph(graph, batch=batch)
    wanted = _select(graph, layers)
    symbolic = bool(getattr(graph, "symbols", ()))
    back = getattr(graph, "back", {}) or {}
    show = _display(back) if symbolic else None

    shapes = dict(graph.input_shapes)
    rfs = input_fields(graph)  # as the analysis: fields in pixels of the first input
    token = ex.DISPLAY.set(_display_text(show) if symbolic else None)
    try:
        out_list = []
        for node, row in zip(graph.nodes, report.layers):
            layer = KINDS[node.kind]
            in_shapes = [shapes[i] for i in node.inputs]
            in_rfs = [rfs[i] for i in node.inputs]
            if symbolic:  # the analysis' own values, before they are shown in the user's symbols
                out = tuple(layer.output_shape(node.args, in_shapes))
                try:
                    rf = layer_field(layer, node.args, in_rfs, in_shapes, out)
                except TypeError:
                    rf = None
            else:
                out, rf = row.output_shape, row.rf
            shapes[node.name], rfs[node.name] = out, rf
            if node.name not in wanted:
                continue
            steps = layer.explain(node.args, in_shapes, out, in_rfs, rf, row)
            if moved_axes(layer, in_rfs):  # its own field rule reads [C, spatial...]: not used here
                steps = [s for s in steps if s.figure not in ("rf", "jump", "start")] + [_moved_step(rf)]
            if not node.trainable:
                steps = _frozen(steps)
            steps = [_batched(s, batch) for s in steps]
            if show is not None:
                steps = [replace(s, result=_map(show, s.result)) for s in steps]
            out_list.append(Explanation(node.name, node.kind, tuple(node.inputs), steps))
        return out_list
    finally:
        ex.DISPLAY.reset(token)


def _moved_step(rf) -> Step:
    """The field step of a layer after a permute moved the spatial axes (docs/spec.md, Moved axes)."""
    if rf is None:
        return ex.rf_untracked("the spatial axes were moved by a permute, and this layer mixes one of "
                               "them (or does not say what it mixes)")
    where = ", ".join(map(str, rf.layout)) if isinstance(rf, RF) and rf.layout else ""
    return ex.rf_unchanged(rf, f"position by position over the moved spatial axes (dims {where})")


def _frozen(steps: list[Step]) -> list[Step]:
    """A layer written with `trainable: false`: all of its parameters are non-trainable, whatever
    the kind's own split; the steps say so after its parameter count."""
    split = {s.figure: s for s in steps if s.figure in ("trainable", "non-trainable")}
    kept = [s for s in steps if s.figure not in split]
    at = next((i for i, s in enumerate(kept) if s.figure == "params"), None)
    if at is None:
        return steps
    params = kept[at]
    if len(split) == 2 and params.formula == "trainable + non-trainable":  # the kind's split, in its terms
        parts = split["trainable"], split["non-trainable"]
        params = replace(params, formula=" + ".join(p.formula for p in parts),
                         substituted=" + ".join(p.substituted or ex.val(p.result) for p in parts))
    return kept[:at] + [
        params,
        Step("trainable", "0", "", 0, note="trainable: false"),
        Step("non-trainable", "params", "", params.result, note="every parameter frozen (requires_grad=False)"),
    ] + kept[at + 1:]


def _display(back: dict):
    """Values in the user's own symbols, simplified (as the report shows them)."""
    from archcalc.reader.symbols import shown

    return lambda value: shown(value, back)


def _display_text(show):
    """How a formula is written inside a step's formula text (the kinds' `ex.val`): in the user's
    symbols and the one printer's readable form (archcalc/analysis/formula.py), its numbers not
    grouped (the text also writes shapes, whose commas separate sizes); numbers stay numbers."""
    def text(value):
        value = show(value)
        return formula.text(value, group=False) if is_symbolic(value) else value

    return text


def _select(graph: Graph, layers) -> set:
    names = [node.name for node in graph.nodes]
    if layers is None:
        return set(names)
    known = set(names)
    wanted = set()
    for name in layers:
        if name in known:
            wanted.add(name)
            continue
        inside = {n for n in names if n.startswith(name + ".")}
        if not inside:
            raise SpecError(f"no layer named '{name}' in {graph.name}" + did_you_mean(name, names))
        wanted |= inside
    return wanted


def _batched(step: Step, batch: int) -> Step:
    """MACs count the whole batch: batch*(per example)."""
    if step.figure != "macs" or batch == 1 or (isinstance(step.result, int) and step.result == 0):
        return step
    formula = step.formula if _is_product(step.formula) else f"({step.formula})"
    subs = step.substituted if _is_product(step.substituted) else f"({step.substituted})"
    return replace(step, formula=f"batch*{formula}", substituted=f"{batch}*{subs}" if step.substituted else "",
                   result=batch * step.result)


def _is_product(text: str) -> bool:
    depth = 0
    for ch in text:
        depth += ch == "("
        depth -= ch == ")"
        if depth == 0 and ch in " +-":
            return False
    return True


def _map(f, value):
    if isinstance(value, tuple):
        return tuple(f(v) for v in value)
    if isinstance(value, RF) or value is None or value == GLOBAL:
        return value
    return f(value)


# --- layout -------------------------------------------------------------------------------------

def number(value) -> str:
    """A result as text: ints with thousands separators, shapes as lists, fields in words."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, Fraction):
        return str(value)
    if isinstance(value, tuple):
        return formula.shape(value)  # as analyze's output shape column
    if value is None or value == GLOBAL or isinstance(value, RF):
        return ex.rf_text(value)
    return formula.text(value)  # a formula: as analyze's columns write it


def _chain(step: Step) -> str:
    """figure = formula = substituted = result, leaving out repeats."""
    parts = []
    for part in (step.formula, step.substituted, number(step.result)):
        if part and (not parts or part != parts[-1]):
            parts.append(part)
    return f"{step.figure} = " + " = ".join(parts)


def _remarks(step: Step) -> str:
    return "; ".join(filter(None, [step.where, step.note]))


#: The steps that work out each figure of one layer, in the order shown (the answer key's working,
#: the feedback beside a graded answer).
FIGURE_STEPS = {"params": ("trainable", "non-trainable", "params"), "trainable_params": ("trainable",),
                "non_trainable_params": ("non-trainable",), "macs": ("macs",), "flops": ("macs",),
                "output_shape": ("output",), "rf": ("rf", "jump", "start")}


def figure_steps(explanation: Explanation, figure: str) -> list[Step]:
    """The steps of one layer that work out `figure` (a quantity's last part: params, macs, rf, ...);
    a layer whose parameters are all trainable has no trainable step: its params step works out
    trainable_params. [] where explain has none (bytes, totals)."""
    wanted = FIGURE_STEPS.get(figure, ())
    picked = [s for s in explanation.steps if s.figure in wanted]
    if figure == "trainable_params" and not picked:
        picked = [s for s in explanation.steps if s.figure == "params"]
    return picked


def lines(explanation: Explanation) -> list[str]:
    """The lines of one layer, without the name: a field's size, jump and start along the same
    axes share a line."""
    out: list[str] = []
    steps = explanation.steps
    i = 0
    while i < len(steps):
        step = steps[i]
        group = [step]
        if step.figure == "rf" and step.at:
            while (i + len(group) < len(steps) and steps[i + len(group)].figure in ("jump", "start")
                   and steps[i + len(group)].at == step.at):
                group.append(steps[i + len(group)])
        text = ", ".join(_chain(s) for s in group)
        remarks = "; ".join(filter(None, [step.where] + [s.note for s in group]))
        out.append(text + (f"   ({remarks})" if remarks else ""))
        i += len(group)
    return out


def text(explanations: list[Explanation]) -> str:
    """Plain text, one step a line, layer names aligned."""
    width = max((len(e.name) for e in explanations), default=0)
    rows = [one_line(f"{e.name:<{width}}  {line}") for e in explanations for line in lines(e)]
    return "\n".join(rows) + ("\n" if rows else "")


def _cell(text: str) -> str:
    """A Markdown table cell holding code spans: one line, `|` escaped (even inside code)."""
    return one_line(text).replace("|", "\\|")


def _code(text: str) -> str:
    if not text:
        return ""
    return f"`` {text} ``" if "`" in text else f"`{text}`"  # a backtick inside must not end the span


def markdown(explanations: list[Explanation]) -> str:
    """A Markdown table: layer, figure (and axes), formula, values, result, note."""
    out = ["| layer | figure | formula | values | result | note |", "|---|---|---|---|---|---|"]
    for e in explanations:
        first = True
        for step in e.steps:
            layer = f"`{e.name}` ({e.kind})" if first else ""
            figure = step.figure + (f" ({step.where})" if step.where else "")
            result = number(step.result)
            formula = _code(step.formula)
            subs = _code(step.substituted) if step.substituted not in ("", step.formula) else ""
            cells = [_cell(layer), markdown_escape(figure), _cell(formula), _cell(subs), markdown_escape(result),
                     markdown_escape(step.note)]
            out.append("| " + " | ".join(cells) + " |")
            first = False
    return "\n".join(out) + "\n"


# --- LaTeX: `archcalc explain --latex` ---------------------------------------------------------------
# A step's formula and substituted values are the lecture's notation as text, (K1*K2*Cin + 1)*Cout;
# in LaTeX that is (K_{1} \cdot K_{2} \cdot C_{\mathrm{in}} + 1) \cdot C_{\mathrm{out}}. Results are
# figures: written by the formula printer's LaTeX form (analyze --latex), in the user's symbols.
_TOKEN = re.compile(r"""
    (?P<phrase>(?<![\w'])(?:[a-z]{2,}|\d+'s)(?:[ -](?:[a-z]{2,}(?:'s)?|\d+'s))+(?![\w(]))  # input shape, non-trainable
  | (?P<ellipsis>\.\.\.|…)
  | (?P<number>\d+(?:\.\d+)?)
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<power>\*\*)
  | (?P<floordiv>//)
  | (?P<space>\s+)
  | (?P<char>.)""", re.VERBOSE)
_MATH_CHARS = {"*": r" \cdot ", "%": r" \bmod ", "{": r"\{", "}": r"\}", "×": r" \times ", "·": r" \cdot ",
               "≤": r" \le ", "≥": r" \ge ", "−": "-", "|": r"\vert "}
_MATH_FUNCTIONS = {"max": r"\max", "min": r"\min"}


def _latex_name(name: str) -> str:
    """A name of the notation in math mode: K1 -> K_{1}, Cin -> C_{\\mathrm{in}}, r_i -> r_{i},
    N_H -> N_{H} (as sympy writes a symbol), groups -> \\mathrm{groups}."""
    if re.fullmatch(r"[A-Za-z]", name):
        return name
    if m := re.fullmatch(r"([A-Za-z])(\d+)", name):
        return f"{m[1]}_{{{m[2]}}}"
    if m := re.fullmatch(r"([A-Z])([a-z]{1,3})", name):
        return f"{m[1]}_{{\\mathrm{{{m[2]}}}}}"
    base, _, sub = name.rpartition("_")
    if base and sub and len(sub) <= 3 and not base.endswith("_"):
        head = _latex_name(base)
        if "_" in head.replace(r"\_", ""):  # H_in_2, Cin_2: the head has a subscript of its own; a group
            head = "{" + head + "}"  # takes the next one (H_{in}_{2} is a LaTeX "Double subscript" error)
        return f"{head}_{{{_latex_name(sub)}}}"
    return r"\mathrm{" + formula.latex_escape(name) + "}"


def latex_math(text: str) -> str:
    """One of explain's formula texts as LaTeX math (without $...$): floor(x) as \\lfloor x \\rfloor,
    ceil(x) as \\lceil x \\rceil, a**b as a^{b}. Every group it opens, it closes (also where the
    text's parentheses do not balance)."""
    out: list[str] = []
    closers: list[str] = []  # per open parenthesis, what closes it
    power = False  # after **: the next atom (a parenthesised group included) is the exponent
    opener = None  # floor/ceil just written: the next "(" opens its brackets
    for m in _TOKEN.finditer(text):
        kind, tok = m.lastgroup, m.group()
        if kind == "space":
            out.append(" ")
            continue
        if kind == "power":
            power = True
            out.append("^")
            continue
        exponent, power = power, False
        if kind == "word" and text[m.end():m.end() + 1] == "(" and len(tok) > 1:
            if tok in ("floor", "ceil"):
                opener = tok
                continue
            piece = _MATH_FUNCTIONS.get(tok, r"\operatorname{" + formula.latex_escape(tok) + "}")
        elif tok == "(" and kind == "char":
            if opener is not None:
                left, right = (r"\lfloor", r"\rfloor") if opener == "floor" else (r"\lceil", r"\rceil")
                piece, closer, opener = r"\left" + left + " ", r" \right" + right, None
            else:
                piece, closer = "(", ")"
            if exponent:
                piece, closer = "{" + piece, closer + "}"
            closers.append(closer)
            out.append(piece)
            continue
        elif tok == ")" and kind == "char":
            piece = closers.pop() if closers else ")"
        elif kind == "phrase":
            piece = r"\text{" + formula.latex_escape(tok) + "}"
        elif kind == "ellipsis":
            piece = r"\ldots "
        elif kind == "number":
            piece = tok
        elif kind == "word":
            piece = _latex_name(tok)
        elif kind == "floordiv":
            piece = r" \mathbin{//} "
        elif tok in _MATH_CHARS:
            piece = _MATH_CHARS[tok]
        elif tok in "[],+-/=<>.:;!'":
            piece = tok
        else:
            piece = r"\text{" + formula.latex_escape(tok) + "}"
        out.append("{" + piece + "}" if exponent else piece)
    out += reversed(closers)
    return "".join(out).strip()


def _latex_result(value) -> str:
    """A step's result in math mode: numbers grouped as 40{,}320, formulas as analyze --latex
    writes them, shapes as [16, H, W], receptive fields in words."""
    if isinstance(value, bool):
        return r"\text{" + str(value).lower() + "}"
    if isinstance(value, tuple):
        return "[" + ", ".join(formula.latex(v, group=False) for v in value) + "]"
    if value is None or value == GLOBAL or isinstance(value, RF) or isinstance(value, str):
        return r"\text{" + formula.latex_escape(number(value)) + "}"
    return formula.latex(value)


def _latex_row(step: Step) -> str:
    """figure &= formula = substituted = result, as _chain leaves out repeats; remarks after."""
    parts = []
    for raw, tex in ((step.formula, latex_math(step.formula)), (step.substituted, latex_math(step.substituted)),
                     (number(step.result), _latex_result(step.result))):
        if raw and (not parts or raw != parts[-1][0]):
            parts.append((raw, tex))
    row = r"\text{" + formula.latex_escape(step.figure) + "} &= " + " = ".join(tex for _, tex in parts)
    remarks = _remarks(step)
    return row + (r" &&\text{(" + formula.latex_escape(remarks) + ")}" if remarks else "")


def latex(explanations: list[Explanation], title: str = "") -> str:
    """A LaTeX document (article, amsmath): per layer a heading and one align* environment, a step
    a row: the figure, its formula, the values put in and the result."""
    out = [r"\documentclass[11pt]{article}", r"\usepackage[T1]{fontenc}", r"\usepackage[utf8]{inputenc}",
           r"\usepackage{textcomp}", r"\usepackage{amsmath}", r"\usepackage[margin=2cm]{geometry}",
           r"\allowdisplaybreaks",
           r"\begin{document}", ""]
    if title:
        out += [r"\section*{" + formula.latex_escape(title) + r": the working}", ""]
    for e in explanations:
        out += [r"\subsection*{\texttt{" + formula.latex_escape(e.name) + "} (" + formula.latex_escape(e.kind) + ")}",
                r"\begin{align*}", " \\\\\n".join(_latex_row(s) for s in e.steps), r"\end{align*}", ""]
    out.append(r"\end{document}")
    return "\n".join(out) + "\n"


def _json_value(value):
    """A step's result in JSON: a whole number as a number, a shape as a list of them, anything
    else (a formula, a fraction, a receptive field in words) as the text `text` shows."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, tuple) and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        return list(value)
    return number(value)


def to_json(explanations: list[Explanation]) -> list[dict]:
    """`archcalc explain --json`'s "layers": per layer its name, kind, inputs (the layers or spec
    inputs it reads) and steps, each step's figure, axes (where), formula, substituted values,
    result and note."""
    return [{"name": e.name, "kind": e.kind, "inputs": [str(i) for i in e.inputs],
             "steps": [{"figure": s.figure, "where": s.where, "formula": s.formula, "substituted": s.substituted,
                        "result": _json_value(s.result), "note": s.note} for s in e.steps]}
            for e in explanations]


__all__ = ["Explanation", "Step", "explain", "latex", "latex_math", "markdown", "text", "to_json"]
