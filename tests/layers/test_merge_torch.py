"""add, multiply and concat against real PyTorch."""
import pytest

pytest.importorskip("torch")

from layer_helpers import torch_check  # noqa: E402


def test_residual_add_matches_pytorch():
    torch_check([4, 8, 8], "{name: a, conv: {out: 4, kernel: 3, padding: 1}}",
                "{name: b, from: input, conv: {out: 4, kernel: 1}}", "{name: sum, add: {}, from: [a, b]}")


def test_add_of_three_and_broadcast_match_pytorch():
    torch_check([4, 8], "{name: a, relu: null}", "{name: b, from: input, tanh: null}",
                "{from: [a, b, input], add: null}")
    torch_check([1, 8, 1], "{name: a, permute: [0, 2, 1]}", "{from: [input, a], add: {}}")


def test_squeeze_excitation_matches_pytorch():
    torch_check([16, 8, 8],
                "{name: feat, conv: {out: 16, kernel: 3, padding: 1}}", "global_avgpool",
                "conv: {out: 4, kernel: 1}", "relu", "conv: {out: 16, kernel: 1}", "{name: gate, sigmoid: null}",
                "{name: scaled, multiply: {}, from: [feat, gate]}")


@pytest.mark.parametrize("shape, dim", [([3, 8, 8], 0), ([3, 8, 8], 1), ([3, 8, 8], -1), ([3, 10], 1),
                                        ([2, 3, 4, 5], 3), ([6], 0)])
def test_concat_matches_pytorch(shape, dim):
    torch_check(shape, "{name: a, relu: null}", "{name: b, from: input, sigmoid: null}",
                f"{{concat: {dim}, from: [input, a, b]}}")


def test_concat_of_branches_matches_pytorch():
    torch_check([3, 8, 8], "{name: a, conv: {out: 4, kernel: 3, padding: 1}}",
                "{name: b, from: input, conv: {out: 6, kernel: 5, padding: 2}}",
                "{name: c, from: input, maxpool: {kernel: 3, stride: 1, padding: 1}}",
                "{name: cat, concat: {}, from: [a, b, c]}", "conv: {out: 4, kernel: 1}")
