"""Render a Report as a rich table, CSV, Markdown or JSON. rich is imported only for tables."""
from __future__ import annotations

import csv
import io
import json
import re

from archcalc.analysis import formula
from archcalc.analysis.report import Report
from archcalc.geometry.receptive_field import GLOBAL
from archcalc.errors import one_line
from archcalc.units import binary_bytes, count

def grouped(n) -> str:
    """A figure for people: numbers grouped by thousands, formulas in their readable form
    (archcalc/analysis/formula.py)."""
    return f"{n:,}" if isinstance(n, int) else formula.text(n)


def shape_text(shape, fmt=None) -> str:
    """A shape: sizes as PyTorch prints them (no grouping: commas separate the sizes), formulas in
    their readable form (or `fmt`'s)."""
    fmt = fmt or (lambda n: formula.text(n, group=False))
    return "[" + ", ".join(str(n) if isinstance(n, int) else fmt(n) for n in shape) + "]"


def inputs_text(report) -> str:
    """`input [3, 224, 224]`, or for a spec with `inputs:` each by name: `inputs features [80, 3000],
    ids tokens [448]`."""
    if not report.inputs:
        return f"input {shape_text(report.input_shape)}"
    return "inputs " + ", ".join(f"{one_line(name)} {'tokens ' if tokens else ''}{shape_text(shape)}"
                                 for name, shape, tokens in report.inputs)


def _axis_text(values) -> str:
    texts = [formula.text(v) for v in values]
    return texts[0] if len(set(texts)) == 1 else "x".join(texts)


def rf_text(rf) -> str:
    """'7' size, '/2' stride: '7 /2'; 'global'; '-' where not tracked; '~' marks misaligned merges."""
    if rf is None:
        return "-"
    if rf == GLOBAL:
        return "global"
    mark = "~" if rf.misaligned else ""
    return f"{mark}{_axis_text(rf.size)} /{_axis_text(rf.stride)}"


def _rows(report: Report, depth):
    return report.folded(depth) if depth else report.layers


HEADERS = ("name", "kind", "output shape", "params", "MACs", "RF size /stride")


def _cells(row, fmt=None):
    latex = fmt is latex_text
    fmt = fmt or grouped
    return (row.name, row.kind, shape_text(row.output_shape, latex_shape if latex else None), fmt(row.params),
            fmt(row.macs), rf_text(row.rf))


def latex_text(value) -> str:
    """A figure for a LaTeX write-up: formulas as $...$, numbers grouped."""
    if isinstance(value, int):
        return grouped(value)
    return f"${formula.latex(value)}$"


def latex_shape(value) -> str:
    """A size in a shape for LaTeX: as latex_text, numbers not grouped."""
    return f"${formula.latex(value, group=False)}$"


def footer_lines(report: Report, latex: bool = False) -> list[str]:
    t = report.totals
    if report.symbols:
        return _symbolic_footer(report, latex)
    lines = [
        f"params {grouped(t.params)} ({count(t.params)}): trainable {grouped(t.trainable_params)}, "
        f"non-trainable {grouped(t.non_trainable_params)}",
        *active_lines(report, grouped, count),
        f"MACs {grouped(t.macs)} ({count(t.macs)}), FLOPs = 2 x MACs = {grouped(t.flops)} ({count(t.flops)})",
        f"memory ({report.dtype}, batch {report.batch}): parameters {binary_bytes(t.param_bytes)}, "
        f"activations {binary_bytes(t.activation_bytes)}, input {binary_bytes(t.input_bytes)}",
        f"output {shape_text(report.output_shape)}",
    ]
    frozen = [row.name for row in report.layers if row.frozen]
    if frozen:
        lines.append(f"note: non-trainable counts the parameters of {len(frozen)} frozen layer(s) (trainable: false: "
                     f"{_listed(frozen)}) and any buffers (BatchNorm running mean and variance); PyTorch's sum of "
                     "p.numel() over parameters with requires_grad equals the trainable count")
    elif t.non_trainable_params:
        lines.append("note: params include non-trainable buffers (BatchNorm running mean and variance); "
                     "PyTorch's sum of p.numel() equals the trainable count")
    lines += shared_notes(report)
    return lines


def active_lines(report: Report, fmt, short=None) -> list[str]:
    """The active parameters per token, for a network with routed experts (moe) only."""
    t = report.totals
    if t.active_params is None:
        return []
    routed = [row for row in report.layers if row.active_params is not None]
    text = fmt(t.active_params)
    if short and short(t.active_params) != text.replace(",", ""):
        text += f" ({short(t.active_params)})"
    return [f"active params per token {text}: all {fmt(t.params)} but the routed experts a token is not sent "
            f"to ({len(routed)} layer(s) with experts: {_listed([row.name for row in routed])})"]


def _listed(names: list[str], most: int = 3) -> str:
    return ", ".join(names[:most]) + (f" and {len(names) - most:,} more" if len(names) > most else "")


def shared_notes(report: Report) -> list[str]:
    """Tied weights: shown in both layers' rows (as PyTorch's modules hold them), counted once."""
    return [f"note: {row.name} shares {grouped(row.shared_params)} parameters with {row.shared_with} "
            "(tied weights): both rows show them, the total counts them once"
            for row in report.layers if row.shared_params]


def _symbolic_footer(report: Report, latex: bool) -> list[str]:
    t, f = report.totals, (latex_text if latex else grouped)
    symbols = ", ".join(name + (f" ({', '.join(f'{k} {v}' for k, v in report.constraints[name].items())})"
                                if report.constraints.get(name) else "") for name in report.symbols)
    return [
        f"symbols: {symbols}; floors are PyTorch's (give numbers with --set, simplify with --assume divisible)",
        f"params {f(t.params)}: trainable {f(t.trainable_params)}, non-trainable {f(t.non_trainable_params)}",
        *active_lines(report, f),
        f"MACs {f(t.macs)}, FLOPs = 2 x MACs = {f(t.flops)}",
        f"memory ({report.dtype}, batch {report.batch}, bytes): parameters {f(t.param_bytes)}, "
        f"activations {f(t.activation_bytes)}, input {f(t.input_bytes)}",
        f"output {shape_text(report.output_shape, latex_shape if latex else None)}",
    ] + shared_notes(report)


def table(report: Report, depth=None, console=None, latex: bool = False) -> None:
    from rich.text import Text

    console = console or make_console()
    title = f"{one_line(report.name)}  {inputs_text(report)}"
    if report.batch != 1:
        title += f"  batch {report.batch}"
    fmt = latex_text if latex else None
    rows = _rows(report, depth)
    cells = [_cells(row, fmt) for row in rows]
    lines = plain_table(title, HEADERS, cells, RIGHT_COLUMNS) if len(rows) > RICH_ROWS else _as_rich(console, title, cells)
    if lines is not None:
        if not console.encoding.startswith("utf"):  # as rich draws it there (its ASCII box): no encoding error
            lines = [line.translate(ASCII_BOX) for line in lines]
        console.print(Text("\n".join(lines)), highlight=False, soft_wrap=True, no_wrap=True)
    else:
        from rich.table import Table

        # Text, not a str: rich would read "[bold]" or "[link=...]" in a spec's name as markup.
        tab = Table(title=Text(title), title_justify="left", show_footer=False, header_style="bold")
        for i, head in enumerate(HEADERS):
            tab.add_column(head, justify="right" if i in RIGHT_COLUMNS else "left", no_wrap=True)
        for row in cells:
            tab.add_row(*map(Text, row))  # plain Text: no markup parsing of "[64, 56, 56]"
        print_whole(console, tab)
    for line in footer_lines(report, latex):
        console.print(Text(one_line(line)), highlight=False, soft_wrap=True)


def _as_rich(console, title: str, cells: list) -> list[str] | None:
    """The lines of plain_table when they are, character for character, what rich's Table would
    print through print_whole here, else None (rich lays it out). They are when no style reaches the
    output (no colour: a pipe, a file, NO_COLOR, TERM=dumb), every text is printable ASCII (one
    column per character, as plain_table counts), the table fits the console and its title fits
    the table (rich would wrap either), and there is a row. rich measures every cell several times:
    resnet50's 177 rows took it 20 times as long as this (issue 14 point 8: the table's start-up);
    tests/test_startup.py compares both on every bundled spec at 60 to 200 columns."""
    if console.color_system is not None or not cells:
        return None
    texts = (title, *HEADERS, *(c for row in cells for c in row))
    if not all(t.isascii() and t.isprintable() for t in texts):
        return None
    lines = plain_table(title, HEADERS, cells, RIGHT_COLUMNS)
    width = len(lines[1])
    return lines if width <= console.width and len(title) <= width else None


def _cell_width(cell) -> int:
    from rich.cells import cell_len

    text = cell.plain if hasattr(cell, "plain") else str(cell)
    return max((cell_len(line) for line in text.split("\n")), default=0)


def _longest_word(cell) -> int:
    from rich.cells import cell_len

    text = cell.plain if hasattr(cell, "plain") else str(cell)
    return max((cell_len(word) for word in text.split()), default=0)


def print_whole(console, tab) -> None:
    """Print a rich Table with every cell whole, never cut with "…": a column that may not wrap
    (no_wrap: names, shapes) or holds figures (right-justified) is never narrower than its widest
    cell; others wrap at spaces, never below their longest word. When that is wider than the
    console the table is printed wider than the terminal (as torchinfo does), its lines left for
    the terminal to wrap, never cropped."""
    from rich.measure import Measurement
    from rich.segment import Segment, Segments

    for column in tab.columns:
        cells = [column.header, *column.cells]
        if column.no_wrap or column.justify == "right":  # names, shapes, figures: never narrower
            column.no_wrap = True
            column.min_width = max(column.min_width or 0, *map(_cell_width, cells))
        else:  # text: wraps at spaces
            column.min_width = max(column.min_width or 0, *map(_longest_word, cells))
        column.overflow = "fold"  # a cell wider than its column is folded, never cut with "…"
    need = Measurement.get(console, console.options.update_width(10**6), tab).minimum
    lines = console.render_lines(tab, console.options.update_width(max(need, console.width)), pad=False)
    segments = []
    for line in lines:
        if need > console.width:  # wider than the terminal: no padding after the title to wrap into a blank line
            while line and not line[-1].control and not line[-1].text.strip():
                line = line[:-1]
            if line and not line[-1].control:
                line = [*line[:-1], Segment(line[-1].text.rstrip(), line[-1].style)]
        segments += [*line, Segment.line()]
    console.print(Segments(segments), crop=False, soft_wrap=True)


#: Above this many rows the table is laid out here, in one pass, instead of by rich, whose layout
#: measures every cell several times: 100,000 rows took rich 32 s and 590 MB, this 1 s. Same box.
RICH_ROWS = 2000
RIGHT_COLUMNS = (3, 4)  # params and MACs
#: plain_table's box in rich's box.ASCII, which rich draws instead of the heavy head where the output's
#: encoding is not UTF (PYTHONIOENCODING=ascii, a latin-1 terminal): the other box is an encoding error.
ASCII_BOX = str.maketrans("┏┳┓━┃┡╇┩│└┴┘─", "+-+-||+||+-+-")


def plain_table(title: str, headers, rows, right=()) -> list[str]:
    """The lines of a table in rich's heavy-head box, columns as wide as their widest cell."""
    rows = [tuple(map(one_line, row)) for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]

    def line(cells, bar):
        return bar + bar.join(f" {c.rjust(w) if i in right else c.ljust(w)} "
                              for i, (c, w) in enumerate(zip(cells, widths))) + bar

    def rule(left, mid, right_end, fill):
        return left + mid.join(fill * (w + 2) for w in widths) + right_end

    total = sum(widths) + 3 * len(widths) + 1
    out = [one_line(title).ljust(total), rule("┏", "┳", "┓", "━"), line(headers, "┃"), rule("┡", "╇", "┩", "━")]
    out += [line(r, "│") for r in rows]
    out.append(rule("└", "┴", "┘", "─"))
    return out


def make_console(width: int = 200):
    """A rich console: the terminal's width, or `width` columns when output goes to a file or
    pipe (rich would otherwise wrap wide tables at 80). Its tables never cut a figure: a Table
    printed alone goes through print_whole (so verify's, check's and every command's do)."""
    import sys

    # sys.stdout is None when the process starts with standard output closed (`archcalc ... >&-`):
    # rich then writes nowhere, as print() and click.echo do (it was an AttributeError traceback).
    terminal = sys.stdout is not None and sys.stdout.isatty()
    return whole_console_class()(width=None if terminal else width)


def whole_console_class():
    """rich's Console, but a Table printed alone (console.print(table)) keeps every cell whole
    (print_whole). A function, so that rich is imported only where a table is printed."""
    global _WHOLE_CONSOLE
    if _WHOLE_CONSOLE is None:
        from rich.console import Console
        from rich.table import Table

        class WholeConsole(Console):
            def print(self, *objects, **kwargs):
                if len(objects) == 1 and isinstance(objects[0], Table) and not kwargs:
                    print_whole(self, objects[0])
                else:
                    super().print(*objects, **kwargs)

        _WHOLE_CONSOLE = WholeConsole
    return _WHOLE_CONSOLE


_WHOLE_CONSOLE = None


def csv_text(report: Report, depth=None) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["name", "kind", "from", "output_shape", "params", "trainable_params",
                     "non_trainable_params", "macs", "flops", "rf_size", "rf_stride", "rf_start"])
    for row in _rows(report, depth):
        rf = row.rf
        if rf is None or rf == GLOBAL:
            size = stride = start = "" if rf is None else GLOBAL
        else:
            size, stride, start = (" ".join(str(v) for v in part) for part in (rf.size, rf.stride, rf.start))
        writer.writerow([row.name, row.kind, " ".join(row.inputs), "x".join(map(str, row.output_shape)),
                         row.params, row.trainable_params, row.non_trainable_params, row.macs, row.flops,
                         size, stride, start])
    t = report.totals
    writer.writerow(["total", "", "", "x".join(map(str, report.output_shape)), t.params, t.trainable_params,
                     t.non_trainable_params, t.macs, t.flops, "", "", ""])
    return out.getvalue()


# What could end a table cell, start HTML, a link or code, or an entity in Markdown, written so
# that it shows as itself. Backslashes are left alone: LaTeX formulas (--latex) are made of them.
# Shapes keep their brackets: only "](" (which makes "[text](url)" a link) is broken up.
_MARKDOWN = str.maketrans({"|": "\\|", "<": "&lt;", ">": "&gt;", "&": "&amp;", "`": "\\`"})


def markdown_escape(text) -> str:
    """Text from a spec (a name, a formula) as one line of Markdown that is only text."""
    return one_line(str(text)).translate(_MARKDOWN).replace("](", "]\\(")


def report_text(report: Report, fmt: str, depth=None, latex: bool = False) -> str:
    """The report as `archcalc analyze --format FMT` prints it (json, csv or markdown), ending in a
    newline: the CLI and its fast path (archcalc/__main__.py) write this text."""
    if fmt == "json":
        return json_text(report, depth) + "\n"
    if fmt == "csv":
        return csv_text(report, depth)
    if fmt == "markdown":
        return markdown_text(report, depth, latex=latex)
    raise ValueError(f"no text format {fmt!r}")


def markdown_code(text) -> str:
    """A Markdown code span holding `text` as one line, whatever backticks it holds (CommonMark:
    a fence one backtick longer than the longest run inside, padded by spaces where needed)."""
    text = one_line(str(text))
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    return f"{fence} {text} {fence}" if longest or text.startswith(" ") else f"{fence}{text}{fence}"


def markdown_fence(lines, info: str = "", indent: str = "") -> list[str]:
    """Lines as a fenced code block (each one line, `indent` before each, as under a list item),
    whatever backticks they hold: the fence is longer than any run of backticks inside."""
    body = [one_line(str(line)) for line in lines]
    longest = max((len(m) for line in body for m in re.findall(r"`+", line)), default=0)
    fence = "`" * max(3, longest + 1)
    return [f"{indent}{fence}{info}", *(f"{indent}{line}" for line in body), f"{indent}{fence}"]


def markdown_text(report: Report, depth=None, latex: bool = False) -> str:
    md = markdown_escape
    lines = [f"### {md(report.name)} ({md(inputs_text(report))}, batch {report.batch})", "",
             "| " + " | ".join(HEADERS) + " |",
             "|" + "|".join("---:" if i in RIGHT_COLUMNS else "---" for i in range(len(HEADERS))) + "|"]
    fmt = latex_text if latex else None
    for row in _rows(report, depth):
        lines.append("| " + " | ".join(md(c) for c in _cells(row, fmt)) + " |")
    lines.append("")
    lines.extend(f"- {md(line)}" for line in footer_lines(report, latex))
    return "\n".join(lines) + "\n"


def json_text(report: Report, depth=None) -> str:
    """Valid JSON laid out for people too: one line per layer, one line per top-level value."""
    data = report.to_json(depth)
    parts = []
    for key, value in data.items():
        if isinstance(value, list) and value and isinstance(value[0], dict):
            rows = ",\n".join("    " + json.dumps(row) for row in value)
            parts.append(f"  {json.dumps(key)}: [\n{rows}\n  ]")
        else:
            parts.append(f"  {json.dumps(key)}: {json.dumps(value)}")
    return "{\n" + ",\n".join(parts) + "\n}"
