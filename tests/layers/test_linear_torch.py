"""linear, flatten, reshape, permute, zeropad and upsample against real PyTorch."""
import pytest

pytest.importorskip("torch")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import archcalc  # noqa: E402
from layer_helpers import analyze, torch_check  # noqa: E402


@pytest.mark.parametrize("shape, args", [
    ([784], "10"),
    ([784], "{out: 10, bias: false}"),
    ([20, 64], "32"),  # [T, F]
    ([1, 7], "{out: 3, bias: false}"),
    ([3, 4, 5], "6"),
    ([2, 3, 4, 5], "{out: 2, bias: false}"),
])
def test_linear_matches_pytorch(shape, args):
    torch_check(shape, f"linear: {args}")


def test_mlp_and_cnn_head_match_pytorch():
    torch_check([784], "linear: 256", "relu", "linear: 128", "relu", "linear: 10")
    torch_check([8, 7, 7], "flatten", "linear: 16", "relu", "linear: 10")
    torch_check([20, 64], "linear: 32", "gelu", "linear: 64")


@pytest.mark.parametrize("shape, args", [
    ([64, 7, 7], "{}"), ([4, 5, 6], "{start_dim: 1}"), ([4, 5, 6], "{end_dim: 1}"),
    ([4, 5, 6], "{start_dim: -2, end_dim: -1}"), ([4, 5, 6], "{start_dim: 1, end_dim: 1}"), ([7], "{}"),
    ([2, 3, 4, 5], "{start_dim: 1, end_dim: 2}"),
])
def test_flatten_matches_pytorch(shape, args):
    torch_check(shape, f"flatten: {args}")


@pytest.mark.parametrize("shape, target", [
    ([64, 7, 7], "[-1]"), ([12, 5], "[3, 4, 5]"), ([12, 5], "[-1, 4, 5]"), ([12, 5], "[2, -1]"),
    ([3, 8, 8], "[3, 8, 8]"), ([2, 3, 4, 5], "[6, 20]"),
])
def test_reshape_matches_pytorch(shape, target):
    torch_check(shape, f"reshape: {target}")


@pytest.mark.parametrize("shape, dims", [
    ([3, 4, 5], "[0, 2, 1]"), ([3, 4, 5], "[1, 2, 0]"), ([3, 4, 5], "[-1, 0, 1]"), ([3, 4, 5], "[0, 1, 2]"),
    ([20, 64], "[1, 0]"), ([2, 3, 4, 5], "[3, 1, 0, 2]"), ([5], "[0]"),
])
def test_permute_matches_pytorch(shape, dims):
    torch_check(shape, f"permute: {dims}")


@pytest.mark.parametrize("shape, padding", [
    ([3, 10, 10], "2"), ([3, 10, 10], "[1, 2, 3, 4]"), ([2, 5], "[0, 3]"), ([2, 5], "4"),
    ([1, 2, 2, 2], "1"), ([1, 2, 3, 4], "[1, 0, 2, 0, 0, 3]"),
])
def test_zeropad_matches_pytorch(shape, padding):
    torch_check(shape, f"zeropad: {padding}")


@pytest.mark.parametrize("shape, args", [
    ([3, 8, 8], "2"),
    ([3, 7], "{scale: 1.5}"),
    ([3, 7], "{scale: 0.5}"),
    ([3, 9], "{scale: 1.3}"),
    ([3, 7, 7], "{scale: [2, 0.5]}"),
    ([3, 5, 6], "{scale: [1.7, 2.25], mode: bilinear}"),
    ([3, 4, 4], "{size: [5, 9]}"),
    ([3, 4, 4], "{size: 6, mode: bilinear, align_corners: true}"),
    ([3, 4, 4], "{scale: 2, mode: bicubic, align_corners: false}"),
    ([3, 4], "{scale: 3, mode: linear}"),
    ([3, 4], "{size: 11, mode: linear}"),
    ([2, 2, 3, 4], "{scale: 2, mode: trilinear}"),
    ([2, 2, 3, 4], "{scale: [1, 2, 3]}"),
    ([2, 2, 3, 4], "{size: [3, 4, 5]}"),
])
def test_upsample_matches_pytorch(shape, args):
    torch_check(shape, f"upsample: {args}")


# --- upsample sizes over random scales (PyTorch floors N * scale in double precision) -----------


MODES = {1: ["nearest", "linear"], 2: ["nearest", "bilinear", "bicubic"], 3: ["nearest", "trilinear"]}


@st.composite
def upsample_case(draw):
    axes = draw(st.integers(1, 3))
    shape = [2] + [draw(st.integers(1, 9)) for _ in range(axes)]
    scales = [round(draw(st.floats(0.05, 4.0)), draw(st.integers(0, 3))) or 1.0 for _ in range(axes)]
    return shape, scales, draw(st.sampled_from(MODES[axes]))


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(upsample_case())
def test_upsample_scales_match_pytorch(case):
    shape, scales, mode = case
    entry = f"upsample: {{scale: {scales}, mode: {mode}}}"
    try:
        analyze(shape, entry)
    except archcalc.SpecError as err:
        assert "makes the output empty" in err.message
        return
    torch_check(shape, entry)
