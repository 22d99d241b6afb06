"""Review of the importers (issue 12): cases found by trying to break them, each checked against
the reference (transformers' own module with the same weights, or PyTorch)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_hf_config import _DROP, _same_as_hf, _write, hf  # noqa: E402,F401  (hf: the fixture)

_LLAMA3 = {"rope_type": "llama3", "rope_theta": 5e5, "factor": 8.0, "low_freq_factor": 1.0,
           "high_freq_factor": 4.0, "original_max_position_embeddings": 16}


@pytest.mark.parametrize("base, changes", [
    # transformers reads `rope_scaling or rope_parameters`: a rope_scaling that is not empty replaces
    # rope_parameters whole, its theta included (rope_parameters' 5e5 is not used: base 10000)
    ("tiny_llama", {"rope_parameters": _LLAMA3, "rope_scaling": {"rope_type": "default"}}),
    ("tiny_llama", {"rope_parameters": {"rope_type": "default", "rope_theta": 5e5},
                    "rope_scaling": {"rope_type": "linear", "factor": 2.0}}),
    ("tiny_llama", {"rope_parameters": _LLAMA3, "rope_scaling": {}}),  # empty: rope_parameters is read
    # original_max_position_embeddings left out: max_position_embeddings, as transformers' standardize_rope_params
    ("tiny_gemma", {"rope_parameters": {"rope_type": "llama3", "factor": 4.0, "low_freq_factor": 1.0,
                                        "high_freq_factor": 4.0}, "max_position_embeddings": 16}),
    ("tiny_llama", {"rope_parameters": _DROP, "max_position_embeddings": 16,
                    "rope_scaling": {"type": "llama3", "factor": 4.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0}}),
    ("tiny_mixtral", {"rope_parameters": _DROP, "rope_scaling": {"type": "linear", "factor": 2.0}}),  # base 1e6
    ("tiny_llama", {"rope_parameters": _DROP, "rope_scaling": {"type": "default", "rope_type": "linear", "factor": 2.5}}),
])
@pytest.mark.slow
def test_rope_layouts_are_the_same_function_as_transformers(hf, tmp_path, base, changes):  # noqa: F811
    folder = _write(tmp_path, base, **changes).parent
    _same_as_hf(hf, folder, family=base)


# --- the module importer: parameters read directly (bare layers), names -----------------------------

torch = pytest.importorskip("torch")
nn = torch.nn


class _Scaled(nn.Module):
    """A convolution, then its output times a parameter `g` of shape `shape`, read as `how` says."""

    def __init__(self, shape, how, frozen=False):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.g = nn.Parameter(torch.rand(shape), requires_grad=not frozen)
        self.how = how

    def forward(self, x):
        y = self.conv(x)
        if self.how == "rmul":
            return self.g * y
        if self.how == "method":
            return y.mul(self.g)
        if self.how == "view":
            return torch.mul(y, self.g.view(1, -1, 1, 1))
        if self.how == "twice":
            return y * self.g * self.g
        return y * self.g


class _Tokens(nn.Module):
    """A projection, a class token (first or last), a position table added (or sliced first)."""

    def __init__(self, token_last=False, table=11, inplace=False):
        super().__init__()
        self.proj = nn.Linear(12, 16)
        self.cls = nn.Parameter(torch.randn(1, 1, 16))
        self.pos = nn.Parameter(torch.randn(1, table, 16))
        self.head = nn.Linear(16, 4)
        self.token_last, self.inplace, self.sliced = token_last, inplace, table != 11

    def forward(self, x):
        x = self.proj(x)
        token = self.cls.expand(x.shape[0], -1, -1)
        x = torch.cat([x, token] if self.token_last else [token, x], dim=1)
        if self.inplace:
            x += self.pos
        else:
            x = x + (self.pos[:, :x.shape[1]] if self.sliced else self.pos)
        return self.head(x[:, 0])


def _round_trip(module, shape):
    """The imported spec's parameters (all, trainable), MACs (FlopCounterMode / 2, per example) and
    outputs with the module's own state_dict loaded, against the module's."""
    import archcalc
    from archcalc.reader.parse import parse_spec
    from archcalc.torch import build
    from archcalc.torch.verify import flop_counter

    torch.manual_seed(0)
    module.eval()
    text = archcalc.from_module(module, list(shape))
    graph = parse_spec(text)
    report = archcalc.analyze(graph)
    ours = build(graph).eval()
    ours.load_state_dict(module.state_dict(), strict=True)
    x = torch.randn(1, *shape)
    with torch.no_grad(), flop_counter() as counter:
        expected = module(x)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), expected)
    assert report.totals.params == sum(p.numel() for p in module.parameters())
    assert report.totals.trainable_params == sum(p.numel() for p in module.parameters() if p.requires_grad)
    assert report.totals.macs == counter.get_total_flops() // 2
    return text


@pytest.mark.parametrize("shape, how, frozen, line", [
    ((8, 1, 1), "rmul", False, "{name: g, scale: {broadcast: true}, bare: true}"),  # P * x (unequal values: init 1)
    ((8, 1, 1), "method", False, "bare: true"),
    ((8,), "view", False, "{name: g, scale, bare: true}"),  # viewed as [1, C, 1, 1]: a vector along C
    ((16,), "mul", False, "scale: {dim: -1}"),  # along W, the last axis
    ((16, 1), "mul", False, "scale: {dim: 1, broadcast: true}"),  # along H, held [H, 1]
    ((8, 1, 1), "mul", True, "trainable: false, bare: true"),
])
def test_a_parameter_multiplied_is_a_bare_scale(shape, how, frozen, line):
    assert line in _round_trip(_Scaled(shape, how, frozen), (3, 16, 16))


@pytest.mark.parametrize("module, words", [
    (_Scaled((8, 1, 1), "twice"), ["'g' (a parameter)", "each its only use"]),  # used twice
    (_Scaled((1, 8, 1, 1), "mul"), ["'g' (a parameter)"]),  # with the batch axis: not a shape scale holds
    (_Tokens(token_last=True), ["'cls' (a parameter)"]),  # the token after the sequence
    (_Tokens(table=20), ["'pos' (a parameter)"]),  # a longer table sliced to T
])
def test_other_direct_reads_are_refused_by_name(module, words):
    import archcalc
    from archcalc.errors import SpecError

    with pytest.raises(SpecError) as err:
        archcalc.from_module(module.eval(), [3, 16, 16] if isinstance(module, _Scaled) else [10, 12])
    assert all(w in str(err.value) for w in words), str(err.value)


@pytest.mark.parametrize("inplace", [False, True])
def test_a_class_token_and_a_position_table_round_trip(inplace):
    text = _round_trip(_Tokens(inplace=inplace), (10, 12))
    assert "{name: cls, class_token, bare: true}" in text and "{name: pos, positional: {broadcast: true}, bare: true}" in text


def test_a_module_named_input_is_refused_saying_why():
    import archcalc
    from archcalc.errors import SpecError

    module = nn.Sequential()
    module.add_module("pre", nn.Linear(4, 4))
    module.add_module("input", nn.Linear(4, 3))
    with pytest.raises(SpecError, match="input \\(Linear\\): the name 'input' cannot be a spec layer's"):
        archcalc.from_module(module, [4])
    with pytest.raises(SpecError, match="input \\(a parameter of the top level .*the name 'input' cannot be"):
        archcalc.from_module(_InputScaled().eval(), [3, 16, 16])


class _InputScaled(nn.Module):
    """A parameter read directly (a bare scale) named `input`."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 1)
        self.input = nn.Parameter(torch.ones(8, 1, 1))

    def forward(self, x):
        return self.conv(x) * self.input


class _Functional(nn.Module):
    """A module whose forward is one functional call reading its own parameters (LayerNorm2d's way)."""

    def __init__(self, call, shapes):
        super().__init__()
        self.call = call
        for name, shape in shapes.items():
            self.register_parameter(name, nn.Parameter(torch.randn(shape)))

    def forward(self, x):
        f = torch.nn.functional
        if self.call == "group_norm":
            return f.group_norm(x, 4, self.weight, getattr(self, "bias", None))
        if self.call == "conv_same":
            return f.conv2d(x, self.weight, None, 1, "same", 2)
        if self.call == "conv1d":
            return f.conv1d(x, self.weight, self.bias, stride=2)
        return f.layer_norm(x, (16,), getattr(self, "weight", None), self.bias)


def _after(first, call, shapes):
    return nn.Sequential(first, _Functional(call, shapes))


def test_group_norm_with_a_weight_and_no_bias_is_refused():
    """groupnorm's affine holds a weight and a bias (nn.GroupNorm's): imported as it, the bias was
    a parameter the module does not have (8 more parameters, a missing state_dict key)."""
    import archcalc
    from archcalc.errors import SpecError

    module = _after(nn.Conv2d(3, 8, 1), "group_norm", {"weight": (8,)})
    with pytest.raises(SpecError, match="group_norm with a weight and no bias"):
        archcalc.from_module(module.eval(), [3, 8, 8])


@pytest.mark.parametrize("first, call, shapes, shape", [
    (nn.Conv2d(3, 8, 1), "group_norm", {"weight": (8,), "bias": (8,)}, (3, 8, 8)),
    (nn.Conv2d(3, 8, 1), "conv_same", {"weight": (6, 8, 3, 3)}, (3, 8, 8)),  # padding 'same', dilation 2
    (nn.Identity(), "conv1d", {"weight": (6, 4, 3), "bias": (6,)}, (4, 9)),
])
def test_a_modules_one_functional_call_round_trips(first, call, shapes, shape):
    _round_trip(_after(first, call, shapes), shape)


class _ThreeTokens(nn.Module):
    """One learned row expanded to three tokens before the sequence: not a class token."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(12, 16)
        self.cls = nn.Parameter(torch.randn(1, 1, 16))

    def forward(self, x):
        x = self.proj(x)
        return torch.cat([self.cls.expand(x.shape[0], 3, -1), x], dim=1)


def test_a_token_expanded_to_several_rows_is_not_a_class_token():
    """It was imported as class_token: output [11, 16] for the module's [13, 16]."""
    import archcalc
    from archcalc.errors import SpecError

    with pytest.raises(SpecError, match="'cls' \\(a parameter\\) is read directly"):
        archcalc.from_module(_ThreeTokens().eval(), [10, 12])


def test_a_module_that_does_not_run_on_the_input_is_one_line_naming_its_error(capfd):
    """torch.fx's ShapeProp printed the failing node's traceback and wrapped the module's error in
    'ShapeProp error for: node=...'; the user sees only the error line, with the module's message."""
    import archcalc
    from archcalc.errors import SpecError

    with pytest.raises(SpecError) as err:
        archcalc.from_module(nn.Sequential(nn.Conv2d(3, 8, 1)).eval(), [3, 16])
    message = str(err.value)
    assert "does not run on an input of shape [3, 16]" in message and "channels" in message
    assert "ShapeProp" not in message and "Traceback" not in capfd.readouterr().err


def test_a_tensor_held_by_two_modules_is_refused_as_shared():
    """b.weight = a.weight: imported as two linears, 144 parameters for the module's 80."""
    import archcalc
    from archcalc.errors import SpecError

    a, b = nn.Linear(8, 8), nn.Linear(8, 8)
    b.weight = a.weight
    with pytest.raises(SpecError, match="'2.weight' is the same tensor as '0.weight' \\(tied weights\\)"):
        archcalc.from_module(nn.Sequential(a, nn.ReLU(), b).eval(), [8])
