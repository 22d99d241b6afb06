"""The layer-kind reference (docs/layers.md), generated from the kinds' own schemas and formulas
so that the documentation cannot drift from the code (a test compares the two)."""
from __future__ import annotations

from archcalc.layers.base import KINDS, REQUIRED, inputs_text

HEADER = """# Layer kinds

Generated from the code by `archcalc kinds --markdown` (a test keeps this file in sync).
Shapes exclude the batch dimension; "C" is the input's channel count (its first dimension);
N, M are input and output sizes along a spatial axis, K the kernel, S the stride, P the padding,
D the dilation. MACs are for one example; receptive-field steps use r (size), j (stride, "jump")
and start, as defined in [spec.md](spec.md#receptive-fields).
"""


def _default(arg) -> str:
    if arg.default is REQUIRED:
        return "**required**"
    if arg.default is None:
        return "none"
    if isinstance(arg.default, bool):
        return "true" if arg.default else "false"
    return f"`{arg.default}`"


def markdown_reference() -> str:
    out = [HEADER]
    for name in sorted(KINDS):
        layer = KINDS[name]
        out.append(f"## `{name}`\n")
        out.append(f"{layer.summary}.\n" if layer.summary and not layer.summary.endswith(".") else f"{layer.summary}\n")
        facts = ["inputs: " + inputs_text(layer, "`")]
        if layer.primary:
            facts.append(f"a single value sets `{layer.primary}` (`{name}: VALUE`)")
        out.append("; ".join(facts) + ".\n")
        if layer.args:
            out.append("| argument | type | default | notes |")
            out.append("|---|---|---|---|")
            for arg in layer.args:
                notes = arg.doc
                words = ", ".join(f"`{c}`" for c in arg.choices)
                bounds = ([f">= {arg.min}"] if arg.min is not None else []) + \
                         ([f"<= {arg.max}"] if arg.max is not None else [])
                if arg.choices and arg.type != "choice":  # a number or a word (mamba's dt_rank: `auto` or >= 1)
                    rule = f"{words} or {' and '.join(bounds) or 'a number'}"
                else:
                    rule = "; ".join(([f"one of {words}"] if arg.choices else []) + ([" and ".join(bounds)] if bounds else []))
                if rule:
                    notes = (notes + "; " if notes else "") + rule
                out.append(f"| `{arg.name}` | {arg.type} | {_default(arg)} | {notes} |")
            out.append("")
        if layer.formulas:
            out.append("| figure | rule |")
            out.append("|---|---|")
            for figure, rule in layer.formulas.items():
                out.append(f"| {figure} | {rule.replace('|', '/')} |")
            out.append("")
    return "\n".join(out).rstrip() + "\n"
