"""Activations, softmax, prelu and dropout against real PyTorch (eval mode for dropout)."""
import pytest

pytest.importorskip("torch")

from layer_helpers import torch_check  # noqa: E402

ENTRIES = [
    "relu", "relu6", "leaky_relu", "leaky_relu: 0.2", "elu", "elu: 0.5", "gelu", "gelu: tanh", "silu",
    "sigmoid", "tanh", "hardswish", "hardsigmoid", "identity", "dropout", "dropout: 0.3", "dropout2d",
    "dropout2d: {p: 0.1}", "softmax", "softmax: -1", "log_softmax", "log_softmax: -1", "prelu", "prelu: 6",
    "prelu: {num_parameters: 6, init: 0.1}",
]


@pytest.mark.filterwarnings("error:dropout2d")  # channel dropout must not use a deprecated form
@pytest.mark.parametrize("shape", [[6], [6, 5], [6, 4, 4], [6, 2, 3, 4]])
@pytest.mark.parametrize("entry", ENTRIES)
def test_activation_matches_pytorch(entry, shape):
    if entry.startswith("dropout2d") and len(shape) == 1:
        pytest.skip("channel dropout needs spatial axes")
    torch_check(shape, entry)
