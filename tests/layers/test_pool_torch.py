"""Pooling kinds against real PyTorch: forward shapes, (no) parameters, (no) MACs, and agreement
on which geometries are invalid."""
import pytest

torch = pytest.importorskip("torch")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from layer_helpers import assert_accepts_what_torch_accepts, torch_check  # noqa: E402

WINDOW_CASES = [
    ([3, 20], "{kernel: 3}"),
    ([3, 20], "{kernel: 4, stride: 3, padding: 2, ceil_mode: true}"),
    ([1, 5], "{kernel: 2, padding: 1, ceil_mode: true}"),
    ([1, 6], "{kernel: 3, stride: 2, padding: 1, ceil_mode: true}"),
    ([3, 7, 7], "{kernel: 2, ceil_mode: true}"),
    ([64, 28, 28], "{kernel: 3, stride: 2, padding: 1}"),
    ([2, 9, 10], "{kernel: [3, 2], stride: [1, 2], padding: [1, 0]}"),
    ([2, 11, 11], "{kernel: 5, stride: 3, padding: 2, ceil_mode: true}"),
    ([2, 4, 9, 9], "{kernel: [1, 3, 3], stride: [1, 2, 2], padding: [0, 1, 1]}"),
    ([2, 5, 6, 7], "{kernel: 2, ceil_mode: true}"),
    ([2, 5, 6, 7], "{kernel: 3, stride: [2, 1, 3], padding: 1}"),
    ([1, 1], "{kernel: 2, ceil_mode: true}"),
    ([1, 1], "{kernel: 4, stride: 2, padding: 1, ceil_mode: true}"),
    ([2, 3, 3], "{kernel: 4, stride: 3, ceil_mode: true}"),
]


@pytest.mark.parametrize("kind", ["maxpool", "avgpool"])
@pytest.mark.parametrize("shape, args", WINDOW_CASES)
def test_window_pools_match_pytorch(kind, shape, args):
    torch_check(shape, f"{kind}: {args}")


@pytest.mark.parametrize("shape, args", [
    ([1, 2, 4, 4], "{kernel: 3, padding: 1}"),  # avgpool rejects this one (3-d kernel > input)
    ([2, 13], "{kernel: 3, dilation: 2}"),
    ([2, 13], "{kernel: 3, stride: 2, padding: 1, dilation: 3, ceil_mode: true}"),
    ([2, 12, 12], "{kernel: 2, stride: 1, padding: 1, dilation: [2, 3]}"),
    ([1, 6, 7, 8], "{kernel: 3, stride: 2, padding: 1, dilation: 2, ceil_mode: true}"),
])
def test_dilated_maxpool_matches_pytorch(shape, args):
    torch_check(shape, f"maxpool: {args}")


@pytest.mark.parametrize("shape", [[3, 11], [3, 11, 12], [3, 5, 6, 7]])
def test_avgpool_without_padding_count_matches_pytorch(shape):
    torch_check(shape, "avgpool: {kernel: 3, stride: 2, padding: 1, count_include_pad: false, ceil_mode: true}")


@pytest.mark.parametrize("kind", ["global_avgpool", "global_maxpool"])
@pytest.mark.parametrize("shape", [[3, 10], [8, 7, 7], [2, 3, 4, 5]])
def test_global_pools_match_pytorch(kind, shape):
    torch_check(shape, kind)


@pytest.mark.parametrize("shape, size", [
    ([3, 10], 3), ([3, 10], 10), ([3, 4], 7),
    ([512, 14, 14], 7), ([3, 10, 10], [7, 5]), ([3, 5, 9], 1),
    ([4, 6, 9, 12], [2, 3, 4]), ([2, 5, 5, 5], 2),
])
def test_adaptive_avgpool_matches_pytorch(shape, size):
    torch_check(shape, f"adaptive_avgpool: {size}")


# --- agreement on invalid geometry --------------------------------------------------------------

@st.composite
def pool_geometry(draw, dilation):
    axes = draw(st.integers(1, 3))
    values = {
        "kernel": tuple(draw(st.integers(1, 5)) for _ in range(axes)),
        "stride": tuple(draw(st.integers(1, 4)) for _ in range(axes)),
        "padding": tuple(draw(st.integers(0, 3)) for _ in range(axes)),
        "ceil_mode": draw(st.booleans()),
    }
    if dilation:
        values["dilation"] = tuple(draw(st.integers(1, 3)) for _ in range(axes))
    shape = [draw(st.integers(1, 3))] + [draw(st.integers(1, 9 if axes < 3 else 6)) for _ in range(axes)]
    return shape, values


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pool_geometry(dilation=True))
def test_maxpool_rejects_exactly_what_pytorch_rejects(case):
    shape, v = case
    cls = (torch.nn.MaxPool1d, torch.nn.MaxPool2d, torch.nn.MaxPool3d)[len(shape) - 2]
    assert_accepts_what_torch_accepts(shape, "maxpool", v, lambda: cls(
        v["kernel"], v["stride"], v["padding"], v["dilation"], ceil_mode=v["ceil_mode"]))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pool_geometry(dilation=False))
def test_avgpool_rejects_exactly_what_pytorch_rejects(case):
    shape, v = case
    cls = (torch.nn.AvgPool1d, torch.nn.AvgPool2d, torch.nn.AvgPool3d)[len(shape) - 2]
    assert_accepts_what_torch_accepts(shape, "avgpool", v, lambda: cls(
        v["kernel"], v["stride"], v["padding"], ceil_mode=v["ceil_mode"]))
