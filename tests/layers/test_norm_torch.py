"""Normalisation kinds against real PyTorch: trainable parameters (requires_grad) and
non-trainable ones (floating buffers: running mean and variance; num_batches_tracked is an
integer buffer and not counted)."""
import pytest

pytest.importorskip("torch")

from layer_helpers import torch_check  # noqa: E402


@pytest.mark.parametrize("shape", [[10], [20, 64], [8, 6, 6], [4, 2, 3, 4]])
@pytest.mark.parametrize("args", ["{}", "{affine: false}", "{track_running_stats: false}",
                                  "{affine: false, track_running_stats: false, eps: 0.001, momentum: 0.3}"])
def test_batchnorm_matches_pytorch(shape, args):
    torch_check(shape, f"batchnorm: {args}")


@pytest.mark.parametrize("shape, args", [
    ([10, 512], "{}"), ([3, 4, 5], "{dims: 2}"), ([3, 4, 5], "{dims: 3}"), ([10, 16], "{bias: false}"),
    ([10, 16], "{affine: false}"), ([7], "{eps: 0.0001}"), ([2, 3, 4, 5], "{dims: 2, bias: false}"),
])
def test_layernorm_matches_pytorch(shape, args):
    torch_check(shape, f"layernorm: {args}")


@pytest.mark.parametrize("shape, args", [
    ([32, 4, 4], "8"), ([32, 4, 4], "{groups: 32, affine: false}"), ([6, 10], "{groups: 3}"), ([6], "1"),
    ([4, 2, 3, 4], "{groups: 2, eps: 0.001}"),
])
def test_groupnorm_matches_pytorch(shape, args):
    torch_check(shape, f"groupnorm: {args}")


@pytest.mark.parametrize("shape", [[16, 8], [16, 8, 8], [4, 2, 3, 4]])
@pytest.mark.parametrize("args", ["{}", "{affine: true}", "{track_running_stats: true}",
                                  "{affine: true, track_running_stats: true, momentum: 0.2}"])
def test_instancenorm_matches_pytorch(shape, args):
    torch_check(shape, f"instancenorm: {args}")


def test_conv_bn_relu_block_matches_pytorch():
    r = torch_check([3, 16, 16], "conv: {out: 8, kernel: 3, padding: 1, bias: false}", "batchnorm", "relu",
                    "conv: {out: 8, kernel: 3, stride: 2, padding: 1, bias: false}", "groupnorm: 4", "silu")
    assert r.totals.non_trainable_params == 16  # one batchnorm: 2 * 8
