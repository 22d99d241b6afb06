"""Grade answer files against a spec: what `archcalc check` runs (the CLI only renders)."""
from __future__ import annotations

from archcalc import api
from archcalc.analysis.walk import analyze_graph
from archcalc.errors import SpecError
from archcalc.homework.answers import load_answers
from archcalc.homework.check import CheckResult, check

# The explain step whose formula is shown beside a wrong answer of each figure.
_STEP_FOR = {"params": ("params",), "trainable_params": ("trainable", "params"),
             "non_trainable_params": ("non-trainable",), "macs": ("macs",), "flops": ("macs",),
             "output_shape": ("output",), "rf": ("rf",)}


def grade(spec, answers_path, assume_divisible: bool = False, strict: bool = True) -> CheckResult:
    """Check one answers file: its `set:` bindings are applied to the spec's symbols;
    `assume_divisible` takes every size symbol as a multiple of the network's total stride
    (`--assume divisible`), so that floors simplify. With `strict=False` an answer that cannot be
    read (or names no layer) gets the verdict "invalid" and the others are graded."""
    sheet = load_answers(answers_path, strict=strict)
    if sheet.bindings:
        check_bindings(api.load_spec(spec).constraints, sheet)
    try:
        graph = api.load_graph(spec, bindings=sheet.bindings or None, assume_divisible=assume_divisible)
        report = analyze_graph(graph)
    except SpecError as exc:
        # The spec reader words binding mistakes for the command line (`--set Q: ...`); here the
        # binding was written in the answers file, so say so there.
        name = exc.message[len("--set "):].partition(":")[0]
        if exc.loc is None and exc.message.startswith("--set ") and name in sheet.binding_locs:
            raise SpecError("set " + exc.message[len("--set "):], sheet.binding_locs[name]) from None
        if sheet.bindings and exc.loc is not None:
            _blame_bindings(spec, sheet, exc)
        raise
    result = check(report, sheet, spec_graph=graph)
    _add_formulas(graph, result)
    return result


def _blame_bindings(spec, sheet, exc: SpecError) -> None:
    """A spec valid for its symbols that fails at the `set:` sizes (a kernel larger than H = 3):
    the mistake is the `set:`, so the error is located there, the spec's own message quoted."""
    try:
        api.analyze(spec)
    except SpecError:
        return  # invalid without the set: values too: the spec's own error stands
    values = ", ".join(f"{k}: {v}" for k, v in sheet.bindings.items())
    who = f"layer '{exc.layer}': " if exc.layer else ""
    first = next(iter(sheet.bindings))
    raise SpecError(f"set {{{values}}}: the spec is invalid at these sizes: {who}{exc.message} (at {exc.loc})",
                    sheet.binding_locs.get(first)) from None


def check_bindings(constraints: dict, sheet) -> None:
    """A `set:` number must satisfy the spec's constraints on its symbol (multiple_of, min, max):
    the formulas hold only there. SpecError at the number otherwise (the key's check, one wording)."""
    from archcalc.homework.key import check_numbers

    check_numbers([(name, value, sheet.binding_locs.get(name), "set") for name, value in sheet.bindings.items()],
                  constraints)


def _add_formulas(graph, result: CheckResult, every: bool = False) -> None:
    """Beside each wrong answer (each answer with `every`), the formula that gives the right one
    (from `explain`)."""
    wanted = [r for r in result.results if every or not r.correct]
    if not wanted:
        return
    lookup = formula_lookup(graph)
    for r in wanted:
        r.formula = lookup(r.quantity)


def formula_lookup(graph):
    """A function from a quantity (`conv1.params`) to the formula behind its figure, as `explain`
    words it (`params = (K1*K2*Cin + 1)*Cout`), or None (totals, block sums, figures with no step)."""
    from archcalc.explain import explain

    by_layer = {e.name: e for e in explain(graph)}

    def formula(quantity: str):
        layer, _, figure = quantity.strip().rpartition(".")
        steps = by_layer[layer].steps if layer in by_layer else []
        for wanted in _STEP_FOR.get(figure, ()):
            step = next((s for s in steps if s.figure == wanted), None)
            if step is not None and step.formula:  # an untracked field has no formula: no empty `rf =`
                return f"{wanted} = {step.formula}"
        return None

    return formula


def worked_lookup(graph):
    """A function from a quantity (`conv1.params`) to `explain`'s lines working out its figure
    (`params = (K1*K2*Cin + 1)*Cout = (5*5*1 + 1)*16 = 416`, formula, values, result), [] where
    explain has no step for it (totals, block sums, bytes)."""
    from dataclasses import replace

    from archcalc.explain import explain, figure_steps, lines

    by_layer = {e.name: e for e in explain(graph)}

    def worked(quantity: str) -> list[str]:
        layer, _, figure = quantity.strip().rpartition(".")
        entry = by_layer.get(layer)
        if entry is None:
            return []
        steps = figure_steps(entry, figure)
        return lines(replace(entry, steps=steps)) if steps else []

    return worked
