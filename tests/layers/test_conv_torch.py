"""conv and conv_transpose against real PyTorch: shapes of a forward pass, parameters, MACs
(FlopCounterMode), and agreement on which geometries are invalid."""
import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same'")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from layer_helpers import assert_accepts_what_torch_accepts, torch_check  # noqa: E402

CONV_CASES = [
    # rank 1
    ([3, 20], "{out: 4, kernel: 3}"),
    ([4, 21], "{out: 6, kernel: 5, stride: 3, padding: 2, groups: 2}"),
    ([2, 17], "{out: 2, kernel: 4, padding: same, dilation: 3}"),
    ([2, 17], "{out: 3, kernel: 4, padding: same}"),
    ([2, 12], "{out: 3, kernel: 3, stride: 2, dilation: 2, bias: false}"),
    ([2, 9], "{out: 2, kernel: 3, padding: 4, padding_mode: reflect}"),
    ([2, 9], "{out: 2, kernel: 3, padding: valid}"),
    # rank 2
    ([3, 17, 17], "{out: 8, kernel: 3, stride: 2, padding: 1, dilation: 2}"),
    ([16, 32, 32], "{out: 16, kernel: 7, padding: same}"),
    ([6, 11, 13], "{out: 9, kernel: [3, 5], stride: [2, 1], padding: [0, 2], groups: 3}"),
    ([8, 10, 10], "{out: 8, kernel: 3, padding: 1, groups: 8}"),
    ([4, 15, 9], "{out: 4, kernel: [2, 4], padding: same, dilation: [2, 1]}"),
    ([3, 8, 8], "{out: 5, kernel: 1, stride: 3}"),
    ([3, 7, 9], "{out: 2, kernel: 4, stride: 3, padding: 2, padding_mode: circular}"),
    ([3, 7, 9], "{out: 2, kernel: 3, padding: [6, 1], padding_mode: reflect}"),
    ([3, 5, 5], "{out: 2, kernel: 3, padding: 7, padding_mode: replicate}"),
    ([3, 5, 5], "{out: 2, kernel: 5}"),
    # rank 3
    ([2, 6, 7, 8], "{out: 4, kernel: 3, padding: 1}"),
    ([4, 5, 9, 8], "{out: 6, kernel: [1, 3, 2], stride: [1, 2, 3], padding: [0, 1, 1], groups: 2}"),
    ([2, 9, 6, 6], "{out: 2, kernel: 3, dilation: [3, 1, 2], padding: same, bias: false}"),
]


@pytest.mark.parametrize("shape, args", CONV_CASES)
def test_conv_matches_pytorch(shape, args):
    torch_check(shape, f"conv: {args}")


CONV_TRANSPOSE_CASES = [
    ([3, 7], "{out: 4, kernel: 3}"),
    ([4, 5], "{out: 6, kernel: 3, stride: 3, output_padding: 2, groups: 2}"),
    ([2, 6], "{out: 2, kernel: 3, stride: 2, padding: 1, output_padding: 1, dilation: 2}"),
    ([2, 6], "{out: 2, kernel: 2, stride: 1, output_padding: 1, dilation: 2}"),  # op < dilation
    ([16, 8, 8], "{out: 8, kernel: 4, stride: 2, padding: 1}"),
    ([6, 5, 7], "{out: 3, kernel: [3, 2], stride: [2, 3], padding: [1, 0], output_padding: [1, 2], groups: 3}"),
    ([2, 4, 4], "{out: 2, kernel: 5, padding: 2, bias: false}"),
    ([4, 2, 3, 4], "{out: 2, kernel: [1, 2, 3], stride: [1, 2, 1], bias: false}"),
    ([2, 3, 3, 3], "{out: 4, kernel: 3, stride: 2, padding: 1, output_padding: 1, dilation: [1, 2, 1]}"),
]


@pytest.mark.parametrize("shape, args", CONV_TRANSPOSE_CASES)
def test_conv_transpose_matches_pytorch(shape, args):
    torch_check(shape, f"conv_transpose: {args}")


def test_conv_chain_with_names_matches_pytorch():
    torch_check([3, 32, 32],
                "{name: stem, conv: {out: 8, kernel: 3, stride: 2, padding: 1}}",
                "conv: {out: 8, kernel: 3, padding: 1, groups: 8}",
                "conv: {out: 16, kernel: 1}",
                "conv_transpose: {out: 4, kernel: 2, stride: 2}")


# --- agreement on invalid geometry, over random arguments ---------------------------------------

@st.composite
def conv_geometry(draw, transposed=False):
    axes = draw(st.integers(1, 3))
    n = st.integers(1, 9 if axes < 3 else 6)
    small = st.integers(1, 4)
    groups = draw(st.sampled_from([1, 2, 3]))
    values = {
        "out": groups * draw(st.integers(1, 2)),
        "kernel": tuple(draw(small) for _ in range(axes)),
        "stride": tuple(draw(st.integers(1, 3)) for _ in range(axes)),
        "padding": tuple(draw(st.integers(0, 3)) for _ in range(axes)),
        "dilation": tuple(draw(st.integers(1, 3)) for _ in range(axes)),
        "groups": groups,
    }
    if transposed:
        values["output_padding"] = tuple(draw(st.integers(0, 2)) for _ in range(axes))
    else:
        if draw(st.booleans()):
            values["padding"] = draw(st.sampled_from(["same", "valid"]))
        values["padding_mode"] = draw(st.sampled_from(["zeros", "reflect", "replicate", "circular"]))
    channels = groups * draw(st.integers(1, 2)) if draw(st.integers(0, 4)) else draw(st.integers(1, 5))
    shape = [channels] + [draw(n) for _ in range(axes)]
    return shape, values


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conv_geometry())
def test_conv_rejects_exactly_what_pytorch_rejects(case):
    shape, values = case
    cls = (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d)[len(shape) - 2]
    assert_accepts_what_torch_accepts(shape, "conv", values, lambda: cls(
        shape[0], values["out"], values["kernel"], stride=values["stride"], padding=values["padding"],
        dilation=values["dilation"], groups=values["groups"], padding_mode=values["padding_mode"]))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conv_geometry(transposed=True))
def test_conv_transpose_rejects_exactly_what_pytorch_rejects(case):
    shape, values = case
    cls = (torch.nn.ConvTranspose1d, torch.nn.ConvTranspose2d, torch.nn.ConvTranspose3d)[len(shape) - 2]
    assert_accepts_what_torch_accepts(shape, "conv_transpose", values, lambda: cls(
        shape[0], values["out"], values["kernel"], stride=values["stride"], padding=values["padding"],
        output_padding=values["output_padding"], dilation=values["dilation"], groups=values["groups"]))