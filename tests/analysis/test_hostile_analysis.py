"""Hostile numbers in the analysis (issue 10): every receptive-field step costs a bounded amount
whatever the spec's numbers, and stays exact, checked against a brute-force reference that
lists every input position each output reads (the way the analysis worked before the bound)."""
import itertools
import json
import math
from fractions import Fraction

import pytest

from archcalc.geometry import receptive_field as rf_module
from archcalc.geometry.receptive_field import RF, Axis, merge
from archcalc.layers.adaptive_avgpool import _adaptive_reads
from archcalc.layers.conv_transpose import _transposed_reads
from archcalc.layers.upsample import Upsample
from tests.hostile import assert_refused, run_cli

# --- a brute-force reference ---------------------------------------------------------------------


def _upsample_list(mode, ratio):
    taps = {"nearest": 1, "linear": 2, "bicubic": 4}[mode]

    def reads(o):
        if mode == "nearest":
            return [math.floor(o * ratio)]
        src = (o + Fraction(1, 2)) * ratio - Fraction(1, 2)
        whole = math.floor(src)
        return [whole] if src == whole else list(range(whole - (taps // 2 - 1), whole + taps // 2 + 1))
    return reads


def _transposed_list(k, s, p, d):
    return lambda o: [(o + p - t * d) // s for t in range(k) if (o + p - t * d) % s == 0]


def _adaptive_list(n, m):
    return lambda o: list(range(o * n // m, -(-(o + 1) * n // m)))


def _reference(window, reads, period, stride):
    """(widest window, start) over two periods of outputs, from explicit position lists;
    `window(i)` is the (lo, hi) input i sees."""
    widest, start = 0, None
    for o in range(2 * period):
        seen = [window(i) for i in reads(o)]
        if not seen:
            continue
        lo, hi = min(w[0] for w in seen), max(w[1] for w in seen)
        widest = max(widest, hi - lo + 1)
        if start is None:
            start = lo - o * stride
    return widest, start


def _after_conv(k, s, p, d):
    """A 1-d convolution's field (one window per output, moving by s) and its window function."""
    field = RF.identity(1).window((k,), (s,), (p,), (d,))
    return field, (lambda i: (i * s - p, i * s - p + d * (k - 1)))


STEPS = []
for k, s, p, d in [(1, 1, 0, 1), (3, 2, 1, 1), (2, 3, 0, 2)]:
    for mode, ratio in itertools.product(("nearest", "linear", "bicubic"),
                                         (Fraction(1, 3), Fraction(2, 5), Fraction(7, 4), Fraction(5, 7))):
        scale = 1 / ratio
        STEPS.append(((k, s, p, d), f"upsample {mode} x{scale}",
                      Upsample._axis_reads({"align_corners": None, "mode": mode}, 0, 0, scale),
                      _upsample_list(mode, ratio), ratio))
    for kt, st, pt, dt in [(3, 2, 0, 1), (4, 3, 1, 2), (2, 5, 3, 1), (7, 3, 2, 2)]:
        STEPS.append(((k, s, p, d), f"conv_transpose k{kt} s{st} p{pt} d{dt}", _transposed_reads(kt, st, pt, dt),
                      _transposed_list(kt, st, pt, dt), Fraction(1, st)))
    for n, m in [(5, 3), (7, 4), (4, 6), (9, 7)]:
        STEPS.append(((k, s, p, d), f"adaptive {n}->{m}", _adaptive_reads(n, m), _adaptive_list(n, m), Fraction(n, m)))


@pytest.mark.parametrize("listed", [True, False], ids=["windows listed", "closed form"])
def test_fractional_steps_match_the_brute_force_reference(listed, monkeypatch):
    if not listed:  # every period counts as too long to list: the closed form answers
        monkeypatch.setattr(rf_module, "MAX_PERIOD", 0)
    for conv, what, reads, reference_reads, ratio in STEPS:
        field, window = _after_conv(*conv)
        out = field.map([reads])
        stride = ratio * conv[1]
        period = reads.a
        assert out is not None, what
        assert out.stride == (stride,), what
        assert (out.size[0], out.start[0]) == _reference(window, reference_reads, period, stride), (conv, what)
        assert out.resolved == listed, what


def test_windows_known_by_their_summary_only_stop_at_the_next_step(monkeypatch):
    monkeypatch.setattr(rf_module, "MAX_PERIOD", 0)
    field = RF.identity(1).map([Upsample._axis_reads({"align_corners": None, "mode": "nearest"}, 0, 0, 3)])
    assert field.size == (1,) and field.stride == (Fraction(1, 3),) and not field.resolved
    assert field.window((3,), (1,), (0,), (1,)) is None  # its windows are needed, and not listed
    assert merge([field, field]) is field  # x + x
    twin = RF.identity(1).map([Upsample._axis_reads({"align_corners": None, "mode": "nearest"}, 0, 0, 3)])
    assert twin == field and merge([field, twin]) is None  # equal summaries, windows not known to agree


def test_a_merge_whose_common_period_is_too_long_is_not_tracked():
    # stride 1 on both sides, windows repeating every 9,973 and every 9,967 outputs (primes):
    # they line up only after 99,400,891 outputs
    def periodic(q):
        windows = ((0, 2),) + tuple((p, p) for p in range(1, q))
        return RF((3,), (1,), (0,), axes=(Axis(q, q, windows),))
    a, b = periodic(9973), periodic(9967)
    assert merge([a, a]).size == (3,)
    assert merge([a, b]) is None


# --- the issue's hangs, as a user meets them -----------------------------------------------------

def _fields(run):
    assert run.rc == 0, run.stderr
    return {row["name"]: row["rf"] for row in json.loads(run.stdout)["layers"]}


HUGE_STEPS = [
    # (entry, exact field of that layer after a 3x3 convolution: r 3, j 1, start 0)
    ("upsample: {scale: 1.0e+9}", {"size": [3, 3], "stride": [1e-9, 1e-9], "start": [0, 0]}),
    ("upsample: {size: 1000000000}", {"size": [3, 3], "stride": [5e-9, 5e-9], "start": [0, 0]}),
    # nearest from 5 to 10^9 - 1: ratio 5/(10^9 - 1), outputs read one pixel each
    ("upsample: {size: 999999999}", {"size": [3, 3], "stride": [5 / 999999999] * 2, "start": [0, 0]}),
    # bilinear: output 0's source is (1/2)(1/s) - 1/2 < 0: it reads pixels -1 and 0: size 3 + 1
    ("upsample: {scale: 1.000001, mode: bilinear}",
     {"size": [4, 4], "stride": [1 / 1.000001] * 2, "start": [-1, -1]}),
    ("upsample: {scale: 1.0e+9, mode: bicubic}",
     {"size": [6, 6], "stride": [1e-9, 1e-9], "start": [-2, -2]}),
    ("adaptive_avgpool: 1000000000", {"size": [3, 3], "stride": [5e-9, 5e-9], "start": [0, 0]}),
    ("conv_transpose: {out: 1, kernel: 3, stride: 1000000000}",
     {"size": [3, 3], "stride": [1e-9, 1e-9], "start": [0, 0]}),
    # output 0 takes tap 2 only (0 + P = 2 D), reading input 0: found without trying 10^9 outputs
    ("conv_transpose: {out: 1, kernel: 5, stride: 1000000001, padding: 2}",
     {"size": [3, 3], "stride": [1 / 1000000001] * 2, "start": [0, 0]}),
]


@pytest.mark.parametrize("entry, expected", HUGE_STEPS, ids=[e for e, _ in HUGE_STEPS])
def test_a_huge_period_is_answered_at_once_and_exactly(entry, expected, tmp_path):
    path = tmp_path / "huge.yaml"
    path.write_text(f"input: [1, 7, 7]\nlayers:\n  - conv: {{out: 1, kernel: 3}}\n  - {entry}\n"
                    "  - conv: {out: 1, kernel: 3}\n  - relu\n")
    fields = _fields(run_cli(["analyze", path, "--json"], timeout=60))
    got = list(fields.values())
    assert got[0] == {"size": [3, 3], "stride": [1, 1], "start": [0, 0]}
    assert got[1]["size"] == expected["size"] and got[1]["start"] == expected["start"]
    assert got[1]["stride"] == pytest.approx(expected["stride"], rel=1e-12)
    assert got[2] is None and got[3] is None  # the windows after are not listed: not tracked


def test_explain_says_why_a_field_is_not_tracked(tmp_path):
    path = tmp_path / "huge.yaml"
    path.write_text("input: [1, 9]\nlayers:\n  - upsample: 1.0e+9\n  - conv: {out: 1, kernel: 3}\n")
    run = run_cli(["explain", path], timeout=60)
    assert run.rc == 0, run.stderr
    assert "repeat only every 1,000,000,000 outputs, more than the 10,000" in run.stdout


def test_wide_kernels_over_long_periods_stay_bounded(tmp_path):
    # a period of 1,001 windows, then a kernel of 10^6 taps: 10^9 look-ups listed naively
    path = tmp_path / "wide.yaml"
    path.write_text("input: [1, 3000000]\nlayers:\n  - upsample: {scale: 1.001}\n"
                    "  - conv: {out: 1, kernel: 1000000}\n  - {name: seq, conv: {out: 1, kernel: 3}}\n")
    fields = _fields(run_cli(["analyze", path, "--json"], timeout=60))
    assert fields["upsample1"]["size"] == [1]
    assert fields["conv1"] is None and fields["seq"] is None


def test_huge_but_finite_integers_are_analysed_exactly(tmp_path):
    # Python ints are unbounded: stride 2**64 gives exactly 2**64, sizes past int64 stay exact.
    path = tmp_path / "big.yaml"
    path.write_text("input: [1, '2**70']\nlayers:\n  - conv: {out: 1, kernel: 3, stride: '2**64'}\n"
                    "  - conv_transpose: {out: 1, kernel: 2, stride: '2**40'}\n")
    run = run_cli(["analyze", path, "--json"], timeout=60)
    assert run.rc == 0, run.stderr
    layers = json.loads(run.stdout)["layers"]
    assert layers[0]["output_shape"] == [1, (2**70 - 3) // 2**64 + 1]
    assert layers[0]["rf"] == {"size": [3], "stride": [2**64], "start": [0]}
    assert layers[1]["output_shape"] == [1, (64 - 1) * 2**40 + 1 * (2 - 1) + 1]
    assert layers[1]["rf"] == {"size": [3], "stride": [2**24], "start": [0]}


@pytest.mark.parametrize("text, where, message", [
    # 200 sizes of 10^27: 5,400 digits, past what Python prints (4,300)
    ("input: [1, 32, 32]\nlayers:\n  - flatten\n  - reshape: [" + ", ".join(["10" + "0" * 26] * 200) + "]\n",
     "4:14", "(over 1e308 values)"),
    ("input: [" + ", ".join(["10" + "0" * 26] * 200) + "]\nlayers: [relu]\n",
     "1:8", "the input would hold more than 1e308 values (200 sizes)"),
    # integer scales stay exact: 8 * (10^30)^10 is fine, the 11th copy passes 1e308
    ("input: [3, 8]\nlayers:\n  - {upsample: '10**30', repeat: 200}\n", "3:5",
     "layer 'upsample1.11' (upsample): the output would hold more than 1e308 values"),
    ("input: [3, 8]\nlayers:\n  - {upsample: 1.0e+30, repeat: 12}\n", "3:5",
     "layer 'upsample1.11' (upsample): a figure of this layer is too large to compute (past 1e308)"),
    # a last axis of 8 * 10^300, then a linear layer to 10^30 features: 8e330 weights
    ("input: [1, 8]\nlayers:\n  - {upsample: '10**30', repeat: 10}\n  - linear: '10**30'\n", "4:5",
     "more than 1e308 parameters or MACs"),
])
def test_figures_past_1e308_are_refused_at_their_layer(text, where, message, tmp_path):
    path = tmp_path / "big.yaml"
    path.write_text(text)
    line = assert_refused(run_cli(["analyze", path], timeout=60), where=f"{path}:{where}", contains=message)
    assert len(line) < 12_000


@pytest.mark.slow
def test_listing_windows_has_a_budget_per_analysis(tmp_path):
    # period 1,001 after the upsampling; each 49-tap convolution lists 1,001 windows of up to 49
    # look-ups at both ends: 98,098 a layer, so about 100 of them fit the 10,000,000 of one analysis
    path = tmp_path / "chain.yaml"
    path.write_text("input: [1, 100000000]\nlayers:\n  - upsample: {scale: 1.001}\n"
                    "  - {conv: {out: 1, kernel: 49}, repeat: 200}\n")
    fields = _fields(run_cli(["analyze", path, "--json"], timeout=120))
    # after 100 convolutions output o reads upsampled pixels o .. o + 4800: input pixels
    # floor(o 1000/1001) .. floor((o + 4800) 1000/1001), widest over a period of 1,001
    widest = max((o + 4800) * 1000 // 1001 - o * 1000 // 1001 + 1 for o in range(1001))
    assert fields["conv1.100"] == {"size": [widest], "stride": [1000 / 1001], "start": [0]}
    assert fields["conv1.102"] is None and fields["conv1.200"] is None
