"""Specs nobody wrote: hypothesis draws random valid networks and PyTorch checks every figure.

CI runs a bounded number of examples; for a long hunt:
    ARCHCALC_HYPOTHESIS=long python -m pytest tests/torch/test_random_specs.py
Every bug found here becomes a named regression test in tests/layers/ or below.
"""
import os

import pytest

torch = pytest.importorskip("torch")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import archcalc  # noqa: E402
from archcalc.torch.verify import verify  # noqa: E402

pytestmark = pytest.mark.slow

settings.register_profile("ci", max_examples=150, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("long", max_examples=3000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
PROFILE = os.environ.get("ARCHCALC_HYPOTHESIS", "ci")

BLOCK = """blocks:
  unit:
    args: {c: 4, k: 3}
    layers:
      - conv: {out: c, kernel: k, padding: k // 2, bias: false}
      - batchnorm
      - {name: act, relu: {}}
      - {name: skip, from: input, conv: {out: c, kernel: 1}}
      - {add: {}, from: [act, skip]}
"""


def flow(values: dict) -> str:
    def text(v):
        if isinstance(v, bool):
            return str(v).lower()
        return str(list(v)) if isinstance(v, tuple) else str(v)

    return "{" + ", ".join(f"{k}: {text(v)}" for k, v in values.items()) + "}"


def per_axis(draw, axes, lo, hi):
    values = tuple(draw(st.integers(lo, hi)) for _ in range(axes))
    return values if len(set(values)) > 1 or draw(st.booleans()) else values[0]


def draw_layer(draw, shape, index, names):
    """One or a few entries acting on the current output (named `n{index}` when it matters)."""
    axes, c = len(shape) - 1, shape[0]
    name = f"n{index}"
    op = draw(st.sampled_from(
        ["conv", "conv", "conv_transpose", "maxpool", "avgpool", "upsample", "zeropad", "norm",
         "act", "dropout", "adaptive", "merge_add", "merge_concat", "merge_multiply", "block"]))
    if op == "conv":
        groups = draw(st.sampled_from([g for g in (1, 2, 3) if c % g == 0]))
        args = {"out": groups * draw(st.integers(1, 3)), "kernel": per_axis(draw, axes, 1, 3)}
        if draw(st.booleans()):
            args["stride"] = per_axis(draw, axes, 1, 2)
        if draw(st.booleans()):
            args["padding"] = draw(st.sampled_from([0, 1, 2])) if "stride" in args else \
                draw(st.sampled_from([0, 1, "same", "valid"]))
        if draw(st.booleans()):
            args["dilation"] = per_axis(draw, axes, 1, 2)
        args.update(groups=groups, bias=draw(st.booleans()))
        return [f"{{name: {name}, conv: {flow(args)}}}"]
    if op == "conv_transpose":
        stride = draw(st.integers(1, 3))
        dilation = draw(st.integers(1, 2))
        args = {"out": draw(st.integers(1, 4)), "kernel": draw(st.integers(1, 4)), "stride": stride,
                "padding": draw(st.integers(0, 1)), "dilation": dilation,
                "output_padding": draw(st.integers(0, max(stride, dilation) - 1))}
        return [f"{{name: {name}, conv_transpose: {flow(args)}}}"]
    if op in ("maxpool", "avgpool"):
        kernel = draw(st.integers(1, 3))
        args = {"kernel": kernel, "stride": draw(st.integers(1, 3)), "padding": draw(st.integers(0, kernel // 2)),
                "ceil_mode": draw(st.booleans())}
        if op == "maxpool":
            args["dilation"] = draw(st.integers(1, 2))
        return [f"{{name: {name}, {op}: {flow(args)}}}"]
    if op == "upsample":
        mode = draw(st.sampled_from(["nearest", {1: "linear", 2: "bilinear", 3: "trilinear"}[axes]]))
        if draw(st.booleans()):
            args = {"scale": draw(st.sampled_from([2, 3, 1.5])), "mode": mode}
        else:
            args = {"size": tuple(draw(st.integers(n, 2 * n)) for n in shape[1:]), "mode": mode}
        return [f"{{name: {name}, upsample: {flow(args)}}}"]
    if op == "zeropad":
        pads = [draw(st.integers(0, 2)) for _ in range(2 * axes)]
        return [f"{{name: {name}, zeropad: {pads}}}"]
    if op == "norm":
        kind = draw(st.sampled_from(["batchnorm", "groupnorm: 1", "instancenorm: {affine: true}", "layernorm"]))
        return [f"{{name: {name}, {kind if ':' in kind else kind + ': {}'}}}"]
    if op == "act":
        kind = draw(st.sampled_from(["relu", "gelu", "silu", "sigmoid", "tanh", "leaky_relu", "elu",
                                     "hardswish", "softmax", "prelu: " + str(c)]))
        return [f"{{name: {name}, {kind if ':' in kind else kind + ': {}'}}}"]
    if op == "dropout":
        return [f"{{name: {name}, {draw(st.sampled_from(['dropout', 'dropout2d']))}: 0.25}}"]
    if op == "adaptive":
        size = tuple(draw(st.integers(1, n)) for n in shape[1:])
        return [f"{{name: {name}, adaptive_avgpool: {list(size)}}}"]
    previous = names[-1] if names else "input"
    if op == "merge_add":  # a residual: a 1x1 branch from the same input, added
        return [f"{{name: {name}a, conv: {{out: {c}, kernel: 3, padding: 1}}}}",
                f"{{name: {name}b, from: {previous}, conv: {{out: {c}, kernel: 1}}}}",
                f"{{name: {name}, add: {{}}, from: [{name}a, {name}b]}}"]
    if op == "merge_concat":
        return [f"{{name: {name}a, conv: {{out: 2, kernel: 1}}}}",
                f"{{name: {name}, concat: 0, from: [{name}a, {previous}]}}"]
    if op == "merge_multiply":  # squeeze-and-excitation style gate
        return [f"{{name: {name}g, global_avgpool: {{}}}}",
                f"{{name: {name}s, sigmoid: {{}}}}",
                f"{{name: {name}, multiply: {{}}, from: [{previous}, {name}s]}}"]
    return [f"{{name: {name}, unit: {{c: {draw(st.integers(1, 4))}, k: {draw(st.sampled_from([1, 3]))}}}, "
            f"repeat: {draw(st.integers(1, 2))}}}"]


def spec_text(shape, entries):
    return (f"input: {list(shape)}\n" + BLOCK + "layers:\n" + "".join(f"  - {e}\n" for e in entries))


@st.composite
def random_specs(draw):
    axes = draw(st.integers(1, 3))
    shape = [draw(st.integers(1, 4))] + [draw(st.integers(5, 9 if axes == 3 else 20)) for _ in range(axes)]
    entries, names, current = [], [], tuple(shape)
    for index in range(draw(st.integers(1, 6))):
        new = draw_layer(draw, current, index, names)
        try:
            report = archcalc.analyze_text(spec_text(shape, entries + new))
        except archcalc.SpecError:
            continue  # e.g. a kernel larger than what is left: try another layer
        if max(n for row in report.layers for n in row.output_shape) > 200:
            continue  # keep examples small
        entries += new
        names.append(report.layers[-1].name.split(".")[0])
        current = report.layers[-1].output_shape
    if entries and axes == 1 and draw(st.booleans()):
        entries.append("linear: 5")  # on [C, L]: acts on L, as on a sequence
    elif entries and draw(st.booleans()):
        entries += ["flatten", "linear: 3"]
    if not entries:
        entries = ["relu"]
    return spec_text(shape, entries)


@settings(settings.get_profile(PROFILE))
@given(random_specs())
def test_random_specs_match_pytorch(text):
    result = verify(archcalc.parse_spec(text, "random.yaml"))
    assert result.ok, f"{result.mismatches()} in\n{text}"
    for layer in result.layers:
        for figure in ("output_shape", "trainable_params", "non_trainable_params", "macs"):
            assert layer.checks[figure].ok is True, (layer.name, figure, text)
