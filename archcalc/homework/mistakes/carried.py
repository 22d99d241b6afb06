"""A total carried through from wrong per-layer answers: the student's total is the sum of the
student's own layer answers (those given; the others as they are), so the addition is right and
the mistakes are in the layers named. A TA gives follow-through credit for that."""
from __future__ import annotations

from archcalc.homework.answers import Exact, Symbolic
from archcalc.homework.check import _is_zero, sum_, values_equal
from archcalc.homework.mistakes.base import Wrong, mistake

FIGURES = ("params", "trainable_params", "non_trainable_params", "macs", "flops")


def _given(case, row):
    """(quantity, value) of the file's answer for `row`'s figure (for trainable_params also its
    params where it has no buffers, and the other way round); None when not given as an exact
    number or formula."""
    names = [f"{row.name}.{case.figure}"]
    if case.figure == "trainable_params" and _is_zero(case.net.norm(row.non_trainable_params)):
        names.append(f"{row.name}.params")
    if case.figure == "params" and _is_zero(case.net.norm(row.non_trainable_params)):
        names.append(f"{row.name}.trainable_params")
    for name in names:
        answer = case.answers.get(name)
        if answer is not None and isinstance(answer.value, (Exact, Symbolic)):
            return name, answer.value.value
    return None


@mistake("carried_from_layers", FIGURES, rank=5, aside=True,
         hint="it is the sum of your own per-layer answers (the addition is right): the mistake is in {wrong}")
def carried_from_layers(case):
    """A block or the total: the sum over its layers of the file's answer for that layer where one
    is given (the true figure elsewhere), when some of those answers are wrong."""
    if case.single is not None or not case.answers:
        return None
    net, values, wrong = case.net, [], []
    for row in case.target.rows:
        truth = net.norm(getattr(row, case.figure))
        found = _given(case, row)
        if found is None:
            values.append(truth)
            continue
        quantity, given = found
        values.append(given)
        if not values_equal(given, truth):
            wrong.append(quantity)
    if not wrong:
        return None
    return Wrong(net.norm(sum_(values)), wrong=", ".join(wrong))
