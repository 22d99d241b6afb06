"""Receptive fields measured with gradients: in a float64 copy of the network with weights 1,
biases 0 and max pooling replaced by average pooling of the same geometry, the input pixels with a
nonzero gradient for one output pixel are its receptive field. For conv/pool/zeropad chains the
analytic field (clipped to the input) must be exactly that extent."""
import pytest

pytest.importorskip("torch")

from hypothesis import HealthCheck, assume, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import archcalc  # noqa: E402
from archcalc.torch import build  # noqa: E402
from layer_helpers import analytic_extent, gradient_extent, spec  # noqa: E402

CHAINS = [
    ([1, 40], ["conv: {out: 2, kernel: 3, padding: 1}"] * 3),
    ([1, 64], ["conv: {out: 2, kernel: 3, stride: 2, padding: 1}"] * 3),
    ([1, 40], ["conv: {out: 1, kernel: 3, dilation: 2, padding: 2}", "conv: {out: 1, kernel: 3, padding: same}"]),
    ([1, 41], ["conv: {out: 2, kernel: 4, padding: same}", "conv: {out: 1, kernel: 4, dilation: 2, padding: same}"]),
    ([1, 50], ["zeropad: [2, 1]", "conv: {out: 1, kernel: 5, stride: 2}", "avgpool: 2"]),
    ([1, 31], ["maxpool: {kernel: 2, ceil_mode: true}", "conv: {out: 1, kernel: 3, stride: 2, padding: 1}",
               "maxpool: {kernel: 3, stride: 2, padding: 1, ceil_mode: true}"]),
    ([1, 40], ["maxpool: {kernel: 3, stride: 1, dilation: 2}", "conv: {out: 1, kernel: 2, stride: 2}"]),
    ([1, 24], ["conv: {out: 1, kernel: 3, padding: 1}", "adaptive_avgpool: 6"]),  # windows of 4
    ([1, 30, 30], ["conv: {out: 2, kernel: [3, 5], stride: [1, 2], padding: [1, 2]}", "maxpool: 2",
                   "conv: {out: 1, kernel: 3}"]),
    ([2, 48, 48], ["conv: {out: 4, kernel: 7, stride: 2, padding: 3}", "maxpool: {kernel: 3, stride: 2, padding: 1}",
                   "conv: {out: 4, kernel: 3, padding: 1}", "conv: {out: 4, kernel: 3, stride: 2, padding: 1}"]),
    ([1, 20, 20], ["zeropad: [1, 2, 3, 0]", "conv: {out: 1, kernel: 3, stride: 2, padding: [0, 1]}",
                   "avgpool: {kernel: 3, stride: 1, padding: 1}"]),
    ([1, 12, 12, 12], ["conv: {out: 1, kernel: 3, stride: 2, padding: 1}", "avgpool: 2",
                       "conv: {out: 1, kernel: [1, 3, 2]}"]),
]


def _model(shape, entries):
    text = spec(shape, *entries)
    return archcalc.analyze_text(text), build(archcalc.parse_spec(text))


@pytest.mark.parametrize("shape, entries", CHAINS)
@pytest.mark.slow
def test_analytic_rf_is_the_gradient_extent(shape, entries):
    report, model = _model(shape, entries)
    rf, out, spatial = report.layers[-1].rf, report.output_shape[1:], shape[1:]
    central = tuple(m // 2 for m in out)
    # the central field lies inside the input, so nothing is clipped there
    for (first, last), n in zip(analytic_extent(rf, [10 ** 9] * len(out), central), spatial):
        assert 0 <= first and last < n, "choose a larger input for this chain"
    for position in {(0,) * len(out), central, tuple(m - 1 for m in out)}:
        assert gradient_extent(model, shape, position) == analytic_extent(rf, spatial, position), position


@pytest.mark.parametrize("args", [
    "{out: 1, kernel: 4, stride: 2, padding: 1}",
    "{out: 1, kernel: 3, stride: 2}",
    "{out: 1, kernel: 5, stride: 2, padding: 2, output_padding: 1}",
    "{out: 1, kernel: 3, stride: 3}",
    "{out: 1, kernel: 7, stride: 3, padding: 1}",
    "{out: 1, kernel: 3, stride: 2, padding: 1, dilation: 2}",
    "{out: 1, kernel: 3, stride: 1, padding: 1}",
])
@pytest.mark.slow
def test_conv_transpose_rf_is_the_largest_gradient_extent(args):
    shape = [1, 16]
    report, model = _model(shape, [f"conv_transpose: {args}"])
    rf, (_, m) = report.layers[-1].rf, report.output_shape
    extents = [gradient_extent(model, shape, (o,)) for o in range(m)]
    widths = [last - first + 1 for (first, last), in filter(None, extents)
              if 0 < first and last < shape[1] - 1]  # not clipped by either end
    assert max(widths) == rf.size[0]
    # output 0: the first input it reads is rf.start (clipped to the input)
    if extents[0] is not None:
        assert extents[0][0][0] == max(rf.start[0], 0)


# --- random dense chains: kernel >= stride and no dilation keep every field gap-free ------------


@st.composite
def dense_chain(draw):
    axes = draw(st.integers(1, 2))
    entries = []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["conv", "maxpool", "avgpool", "zeropad"]))
        if kind == "zeropad":
            entries.append(f"zeropad: {[draw(st.integers(0, 3)) for _ in range(2 * axes)]}")
            continue
        k = draw(st.integers(1, 5))
        s = draw(st.integers(1, k))
        p = draw(st.integers(0, k // 2))
        ceil = "true" if kind != "conv" and draw(st.booleans()) else "false"
        extra = f", ceil_mode: {ceil}" if kind != "conv" else ", out: 1"
        entries.append(f"{kind}: {{kernel: {k}, stride: {s}, padding: {p}{extra}}}")
    return [1] + [draw(st.integers(24, 60)) for _ in range(axes)], entries


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dense_chain())
@pytest.mark.slow
def test_random_dense_chain_rf_is_the_gradient_extent(case):
    shape, entries = case
    try:
        report, model = _model(shape, entries)
    except archcalc.SpecError:
        assume(False)
    rf, out, spatial = report.layers[-1].rf, report.output_shape[1:], shape[1:]
    for position in {(0,) * len(out), tuple(m // 2 for m in out), tuple(m - 1 for m in out)}:
        measured = gradient_extent(model, shape, position)
        unclipped = analytic_extent(rf, [10 ** 9] * len(out), position)
        if measured is None:  # the output lies in a layer's padding: no input pixel reaches it
            continue
        for (first, last), (a_first, a_last), n in zip(measured, unclipped, spatial):
            assert first == max(a_first, 0), (position, entries)
            if a_last <= n - 1:
                assert last == a_last, (position, entries)
            else:  # the field runs into padding on the right, or into input an earlier layer dropped
                assert last <= n - 1, (position, entries)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(1, 6), st.integers(1, 4), st.integers(0, 3), st.integers(1, 3))
@pytest.mark.slow
def test_random_conv_transpose_rf_is_the_largest_gradient_extent(k, s, p, d):
    shape = [1, 20]
    try:
        report, model = _model(shape, [f"conv_transpose: {{out: 1, kernel: {k}, stride: {s}, padding: {p}, dilation: {d}}}"])
    except archcalc.SpecError:
        assume(False)
    rf, (_, m) = report.layers[-1].rf, report.output_shape
    extents = [gradient_extent(model, shape, (o,)) for o in range(m)]
    widths = [last - first + 1 for (first, last), in filter(None, extents) if 0 < first and last < shape[1] - 1]
    assume(widths)
    assert max(widths) == rf.size[0]
    if extents[0] is not None:  # exact without dilation; dilated taps can skip the first input
        first = extents[0][0][0]
        assert first == max(rf.start[0], 0) if d == 1 else first >= max(rf.start[0], 0)
