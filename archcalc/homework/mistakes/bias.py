"""Biases: forgotten (one layer, all of them), or counted where there is none (bias: false)."""
from __future__ import annotations

from archcalc.homework.check import _fmt, _is_zero
from archcalc.homework.mistakes.base import Wrong, mistake
from archcalc.homework.mistakes.network import BIASED_KINDS, out_units

PARAMS = ("params", "trainable_params")
FORMULAS = {"conv": "(K1*K2*Cin/groups + 1)*Cout", "conv_transpose": "Cin*(Cout/groups)*K1*K2 + Cout",
            "linear": "(in + 1)*out"}


@mistake("forgot_bias", PARAMS, rank=10,
         hint="forgot the bias: one per output {unit} (+{bias}); params = {formula}")
def forgot_bias(case):
    """One conv or linear layer: its count less its bias (one per output channel or feature)."""
    row = case.single
    if row is None or row.kind not in BIASED_KINDS:
        return None
    bias = case.net.bias_total([row])
    if _is_zero(bias):
        return None
    return Wrong(case.expected - bias, unit="feature" if row.kind == "linear" else "channel", bias=_fmt(bias),
                 formula=FORMULAS[row.kind])


@mistake("forgot_biases", PARAMS, rank=10,
         hint="forgot the biases: every conv and linear layer with a bias adds one per output channel or "
              "feature (+{bias} in all)")
def forgot_biases(case):
    """A block or the total: its count less every layer's bias."""
    if case.single is not None or not any(r.kind in BIASED_KINDS for r in case.target.rows):
        return None
    bias = case.net.bias_total(case.target.rows)
    return None if _is_zero(bias) else Wrong(case.expected - bias, bias=_fmt(bias))


@mistake("forgot_one_bias", PARAMS, rank=25,
         hint="forgot {who}: one per output {unit} (+{bias}{each}); the other layers are counted right")
def forgot_one_bias(case):
    """A block or the total with several biased layers: its count less one layer's bias (one
    candidate per biased layer; layers with as many biases are named together)."""
    if case.single is not None:
        return None
    biased = case.net.biased(case.target.rows)
    if len(biased) < 2:
        return None
    by_bias = {}
    for row in biased:
        bias = case.net.norm(out_units(row))
        by_bias.setdefault(str(bias), (bias, []))[1].append(row)
    out = []
    for bias, rows in by_bias.values():
        names = [r.name for r in rows]
        who = f"{names[0]}'s bias" if len(names) == 1 else \
            "the bias of one of " + ", ".join(names[:-1]) + f" or {names[-1]}"
        units = {"feature" if r.kind == "linear" else "channel" for r in rows}
        out.append(Wrong(case.expected - bias, who=who, unit=" or ".join(sorted(units)), bias=_fmt(bias),
                         each="" if len(names) == 1 else " each"))
    return out


@mistake("no_bias", PARAMS, rank=10,
         hint="this layer has no bias (bias: false), so there is no +{out}")
def no_bias(case):
    """One conv or linear layer built with bias: false: its count plus the bias it does not have."""
    row = case.single
    if row is None or row.kind not in BIASED_KINDS or not _is_zero(case.net.bias_total([row])):
        return None
    out = out_units(row)
    return Wrong(case.expected + out, out=_fmt(out))
