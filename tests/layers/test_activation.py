"""Activations, softmax, prelu and dropout: elementwise shapes, parameters, receptive fields and
errors (no torch needed)."""
import pytest

from layer_helpers import GLOBAL, RF, analyze, last, rf_axes, spec_error

ELEMENTWISE = [
    "relu", "relu6", "leaky_relu", "elu", "gelu", "silu", "sigmoid", "tanh", "hardswish", "hardsigmoid",
    "identity", "dropout", "dropout2d", "selu", "celu", "rrelu", "hardtanh", "mish", "softplus", "softsign",
    "hardshrink", "softshrink", "tanhshrink", "logsigmoid", "quick_gelu", "threshold: {threshold: 0.5, value: 0}",
]


@pytest.mark.parametrize("kind", ELEMENTWISE)
@pytest.mark.parametrize("shape", [[10], [20, 64], [3, 8, 8], [2, 3, 4, 5]])
def test_elementwise_kinds_change_nothing(kind, shape):
    if kind == "dropout2d" and len(shape) == 1:
        pytest.skip("channel dropout needs spatial axes (see test_dropout2d_needs_channels)")
    r = analyze(shape, "conv: {out: 4, kernel: 3, padding: 1}" if len(shape) > 1 else "linear: 4", kind)
    before, row = r.layers
    assert row.output_shape == before.output_shape
    assert (row.trainable_params, row.non_trainable_params, row.macs) == (0, 0, 0)
    assert row.rf == before.rf


@pytest.mark.parametrize("entry", [
    "leaky_relu: 0.2", "leaky_relu: {negative_slope: 0.1}", "elu: 0.5", "gelu: tanh",
    "gelu: {approximate: none}", "dropout: 0.3", "dropout2d: {p: 0.1}", "celu: 0.5", "celu: {alpha: -2}",
    "rrelu: {lower: 0.1, upper: 0.1}", "rrelu: {lower: -0.5, upper: 2}", "hardtanh: {min_val: -2, max_val: 3.5}",
    "hardtanh: {max_val: 6}", "threshold: {threshold: -1, value: 1e3}", "softplus: 2",
    "softplus: {beta: -1, threshold: -5}", "hardshrink: 0", "hardshrink: -1", "softshrink: 0",
    "softshrink: {lambd: 2.5}", "softmin", "softmin: -1", "softmax2d",
])
def test_arguments_accepted(entry):
    assert last([3, 8, 8], entry).output_shape == (3, 8, 8)


@pytest.mark.parametrize("kind", ["softmax", "log_softmax", "softmin", "softmax2d"])
def test_softmax_over_channels_keeps_rf(kind):
    row = last([10, 8, 8], kind)  # dim 0: over the classes/channels at each position
    assert row.output_shape == (10, 8, 8)
    assert row.rf == rf_axes(2, 1, 1, 0)
    assert (row.trainable_params, row.macs) == (0, 0)


@pytest.mark.parametrize("kind", ["softmax", "log_softmax", "softmin"])
@pytest.mark.parametrize("dim", [1, -1])
def test_softmax_over_the_only_spatial_axis_is_global(kind, dim):
    assert last([10, 8], f"{kind}: {dim}").rf == GLOBAL


@pytest.mark.parametrize("kind", ["softmax", "log_softmax", "softmin"])
@pytest.mark.parametrize("dim", [1, -1, 2])
def test_softmax_over_one_of_two_spatial_axes_is_not_tracked(kind, dim):
    # Output (h, w) of a softmax over H reads all of column w and nothing else: not "global"
    # (which verify's probe refutes), and not one window either.
    assert last([10, 8, 8], f"{kind}: {dim}").rf is None


def test_softmax_of_logits_vector():
    row = last([784], "linear: 10", "softmax")
    assert row.output_shape == (10,) and row.rf is None


@pytest.mark.parametrize("shape, args, params", [
    ([16, 8, 8], "{}", 1),  # one shared slope
    ([16, 8, 8], "16", 16),  # one per channel
    ([64], "{num_parameters: 64, init: 0.1}", 64),
    ([20, 64], "20", 20),  # [C, L]: channels first
])
def test_prelu(shape, args, params):
    row = last(shape, f"prelu: {args}")
    assert row.output_shape == tuple(shape)
    assert (row.trainable_params, row.non_trainable_params, row.macs) == (params, 0, 0)


# --- errors ------------------------------------------------------------------------------------

def test_prelu_parameters_must_match_channels():
    err = spec_error([16, 8, 8], "prelu: 8")
    assert "num_parameters is 8; expected 1 or the 16 input channels" in err.message


@pytest.mark.parametrize("kind", ["softmax", "log_softmax"])
def test_softmax_dim_out_of_range(kind):
    assert "'dim' is 3 but the input has 3 dimensions" in spec_error([10, 8, 8], f"{kind}: 3").message


@pytest.mark.parametrize("entry, message", [
    ("dropout: 1.5", "between 0 and 1"),
    ("dropout2d: -0.1", "between 0 and 1"),
    ("gelu: exact", "expected one of none, tanh"),
    ("relu: 1", "relu takes no single value"),
    ("sigmoid: {inplace: true}", "sigmoid has no argument 'inplace'"),
    ("leaky_relu: {slope: 0.1}", "no argument 'slope' (did you mean 'negative_slope'?); expected: negative_slope"),
    # PyTorch's own ranges: each refused where PyTorch refuses it (see test_activation_torch.py)
    ("rrelu: {lower: 0.5, upper: 0.1}", "'upper' is 0.1 but 'lower' is 0.5; expected upper >= lower"),
    ("rrelu: {lower: 0.5}", "'upper' is 0.3333333333333333 but 'lower' is 0.5"),
    ("hardtanh: {min_val: 1, max_val: 1}", "'max_val' is 1 but 'min_val' is 1; expected max_val > min_val"),
    ("hardtanh: {min_val: 2}", "'max_val' is 1.0 but 'min_val' is 2"),
    ("celu: 0", "'alpha' is 0; expected a nonzero number (CELU divides by it)"),
    ("softplus: {beta: 0.0}", "'beta' is 0; expected a nonzero number"),
    ("softshrink: -0.1", "softshrink argument 'lambd' must be a number >= 0, got -0.1"),
    ("threshold: {threshold: 0.1}", "threshold needs argument 'value'"),
    ("threshold", "threshold needs argument 'threshold'"),
    ("softplus: {beta: 1, threshold: .nan}", ".nan is not a finite number"),
    ("celu: -.inf", "-.inf is not a finite number"),
    ("hardtanh: {min_val: '1 / 0'}", "division by zero"),
    ("softmax2d: 0", "softmax2d takes no single value"),
    ("quick_gelu: {approximate: tanh}", "quick_gelu has no argument 'approximate'"),
])
def test_argument_errors(entry, message):
    assert message in spec_error([3, 8, 8], entry).message


def test_dropout2d_needs_channels():
    # Channel dropout zeroes whole channels of [C, L], [C, H, W] or [C, D, H, W]; a vector has none.
    assert "dropout2d needs an input shaped" in spec_error([10], "dropout2d").message


@pytest.mark.parametrize("shape", [[10], [10, 8], [2, 3, 4, 5]])
def test_softmax2d_needs_channels_height_width(shape):
    assert f"softmax2d needs an input shaped [C, H, W], got {shape}" in spec_error(shape, "softmax2d").message


@pytest.mark.parametrize("entry, where, formula", [
    ("relu", "relu1", "y = max(0, x)"),
    ("leaky_relu: 0.2", "leaky_relu1", "y = x if x > 0 else negative_slope * x; negative_slope = 0.2"),
    ("softplus: {beta: 2, threshold: 10}", "softplus1",
     "y = log(1 + exp(beta x)) / beta; x where beta x > threshold; beta = 2, threshold = 10"),
    ("hardtanh: {min_val: -2}", "hardtanh1", "y = min(max(x, min_val), max_val); min_val = -2, max_val = 1"),
    ("threshold: {threshold: 0.5, value: -1}", "threshold1",
     "y = x if x > threshold else value; threshold = 0.5, value = -1"),
    ("quick_gelu", "quick_gelu1", "y = x * sigmoid(1.702 x)"),
    ("softmin", "softmin1", "y = exp(-x) / sum(exp(-x)) along dim, dim 0"),
])
def test_explain_writes_the_formula_with_the_values(entry, where, formula):
    from archcalc.explain import explain, text

    import archcalc
    from layer_helpers import spec

    lines = text(explain(archcalc.parse_spec(spec([3, 8, 8], entry)))).splitlines()
    output = next(line for line in lines if line.startswith(where) and " output = " in line)
    assert output.startswith(f"{where}  output = input shape = [3, 8, 8]   ({formula}")
    params = next(line for line in lines if line.startswith(where) and " params = " in line)
    assert params.endswith("params = 0")


# --- glu: halves one dimension into value a and gate b, a * sigmoid(b) ------------------------------

@pytest.mark.parametrize("shape, entry, out", [
    ([8, 5, 6], "glu: 0", (4, 5, 6)),  # over the channels
    ([8, 6, 5], "glu: 1", (8, 3, 5)),
    ([8, 5, 6], "glu", (8, 5, 3)),  # PyTorch's default dim -1: the last
    ([8, 5, 6], "glu: {dim: -3}", (4, 5, 6)),
    ([10, 64], "glu", (10, 32)),  # [T, D] features, as in a gated feed-forward
    ([64], "glu", (32,)),
])
def test_glu_halves_its_dim(shape, entry, out):
    row = last(shape, entry)
    assert row.output_shape == out
    assert (row.trainable_params, row.non_trainable_params, row.macs) == (0, 0, 0)


def test_glu_over_channels_keeps_the_field():
    # conv 3x3 pad 1: field 3, stride 1, start -1; a GLU over the channels reads channels c and c + C/2
    # of the same pixel
    assert last([4, 8, 8], "conv: {out: 8, kernel: 3, padding: 1}", "glu: 0").rf == rf_axes(2, 3, 1, -1)


def test_glu_over_a_spatial_axis_is_a_two_tap_window_at_dilation_half():
    # conv 3, stride 2 on [4, 14, 18]: [6, 6, 8], field 3 /2 @0. glu over W (N = 8): output o reads
    # o and o + 4, so r = 3 + 4 * (2 - 1) * 2 = 11 along W, H unchanged; then glu over H (N = 6):
    # r = 3 + 3 * 2 = 9 along H
    r = analyze([4, 14, 18], "conv: {out: 6, kernel: 3, stride: 2}", "glu: -1", "glu: 1")
    assert r.layers[1].rf == RF((3, 11), (2, 2), (0, 0))
    assert r.layers[2].output_shape == (6, 3, 4) and r.layers[2].rf == RF((9, 11), (2, 2), (0, 0))


@pytest.mark.parametrize("shape, entry, where", [
    ([7, 4, 4], "glu: 0", "dim 0 into value and gate, so its size must be even, got 7"),
    ([8, 4, 5], "glu", "dim 2 into value and gate, so its size must be even, got 5"),
    ([9], "glu", "dim 0 into value and gate, so its size must be even, got 9"),
])
def test_glu_odd_size_is_an_error_at_the_argument(shape, entry, where):
    err = spec_error(shape, entry)
    assert f"glu halves {where}" in err.message


def test_glu_odd_size_is_located_at_dim(tmp_path):
    from typer.testing import CliRunner

    from archcalc.cli import app

    path = tmp_path / "spec.yaml"
    path.write_text("input: [8, 4, 5]\nlayers:\n  - conv: {out: 6, kernel: 1}\n  - glu: {dim: 2}\n")
    result = CliRunner().invoke(app, ["analyze", str(path)])
    assert result.exit_code == 2
    assert result.output.strip() == (f"{path}:4:16: error: layer 'glu1' (glu): glu halves dim 2 into value and "
                                     "gate, so its size must be even, got 5")


def test_glu_dim_out_of_range():
    assert "'dim' is 3 but the input has 3 dimensions" in spec_error([8, 4, 4], "glu: 3").message


def test_glu_symbolic_size_must_be_known_even():
    import sympy

    import archcalc

    text = "input: [8, H, W]\nsymbols: {W: {multiple_of: 2}}\nlayers:\n  - glu: -1\n"
    row = archcalc.analyze_text(text).layers[0]
    H, W = sympy.symbols("H W", integer=True, positive=True)
    assert row.output_shape == (8, H, W / 2)
    assert row.rf is None  # the gate's offset W/2 is a formula, not a number of pixels
    with pytest.raises(archcalc.SpecError, match="but H may be odd; declare the symbol a multiple of 2"):
        archcalc.analyze_text("input: [8, H, W]\nlayers:\n  - glu: 1\n")


def test_glu_explain():
    from archcalc.explain import explain, text

    import archcalc
    from layer_helpers import spec

    lines = text(explain(archcalc.parse_spec(spec([4, 14, 18], "conv: {out: 6, kernel: 3, stride: 2}",
                                                  "glu: -1")))).splitlines()
    glu = [line[len("glu1"):].lstrip() for line in lines if line.startswith("glu1")]
    assert "output = N/2 = 8/2 = 4   (W; a and b: the two halves of dim, value and gate)" in glu
    assert "output = [C, H, W/2] = [6, 6, 4]   (y = a * sigmoid(b))" in glu
    assert "params = 0" in glu
    assert ("rf = r + D(K-1)*j = 3 + 4*(2 - 1)*2 = 11, jump = j*S = 2*1 = 2, start = start - P*j = "
            "0 - 0*2 = 0   (W)") in glu
