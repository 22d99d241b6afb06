"""Layer kinds: one module per kind (or small family), each registering itself in `KINDS`.

A kind's module is imported when a spec first uses the kind (`KINDS[name]`), not here: MODULES says
which module registers each name, so `in KINDS`, the list of names (`archcalc kinds`, error
messages' suggestions) and len() import nothing. A new kind: write its module, then add its names
here; tests/layers/test_registry.py imports every module of this folder and fails, naming the line
to add, while MODULES and the modules disagree. The order is the order the modules register them in.
"""
from __future__ import annotations

from archcalc.layers.base import KINDS, Arg, Layer, register

MODULES = {name: f"{__name__}.{module}" for name, module in {
    "relu": "activation", "relu6": "activation", "leaky_relu": "activation", "elu": "activation",
    "gelu": "activation", "silu": "activation", "sigmoid": "activation", "tanh": "activation",
    "hardswish": "activation", "hardsigmoid": "activation", "identity": "activation", "selu": "activation",
    "celu": "activation", "rrelu": "activation", "hardtanh": "activation", "threshold": "activation",
    "mish": "activation", "softplus": "activation", "softsign": "activation", "hardshrink": "activation",
    "softshrink": "activation", "tanhshrink": "activation", "logsigmoid": "activation",
    "softmax": "activation", "log_softmax": "activation", "softmin": "activation", "softmax2d": "activation",
    "quick_gelu": "activation", "adaptive_avgpool": "adaptive_avgpool", "rotary": "rotary",
    "attention": "attention", "maxpool": "maxpool", "avgpool": "avgpool", "causal_mask": "causal_mask",
    "channel_shuffle": "channel_shuffle", "class_token": "class_token", "conv": "conv",
    "conv_transpose": "conv_transpose", "cross_attention": "cross_attention", "dropout": "dropout",
    "dropout2d": "dropout", "embedding": "embedding", "flatten": "flatten", "global_avgpool": "global_pool",
    "global_maxpool": "global_pool", "glu": "glu", "linear": "linear", "mamba": "mamba", "matmul": "matmul",
    "add": "merge", "multiply": "merge", "concat": "merge", "moe": "moe", "multiply_by": "multiply_by",
    "batchnorm": "norm", "layernorm": "norm", "groupnorm": "norm", "instancenorm": "norm",
    "parameter": "parameter", "patch_merging": "patch_merging", "permute": "permute",
    "positional": "positional", "prelu": "prelu", "rnn": "recurrent", "lstm": "recurrent", "gru": "recurrent",
    "relative_position_bias": "relative_position_bias", "reshape": "reshape", "rmsnorm": "rmsnorm",
    "roll": "roll", "scale": "scale", "select": "select", "mean": "select", "split": "split", "chunk": "split",
    "stochastic_depth": "stochastic_depth", "upsample": "upsample", "window_attention": "window_attention",
    "window_partition": "window_partition", "window_merge": "window_merge", "zeropad": "zeropad",
}.items()}

KINDS.index(MODULES)


def import_all() -> None:
    """Import every kind's module (what `KINDS.values()` does): the documentation and the tests."""
    for name in KINDS:
        KINDS[name]


__all__ = ["KINDS", "MODULES", "Arg", "Layer", "import_all", "register"]
