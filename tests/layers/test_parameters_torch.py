"""Free and frozen parameters against real PyTorch: frozen layers are built with requires_grad=False
(verify counts them non-trainable and is clean), the built module computes what a hand-written one
computes, and an exported file keeps them frozen."""
import importlib.util

import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

import archcalc  # noqa: E402
from archcalc.torch import build  # noqa: E402
from archcalc.torch.source import pytorch_source  # noqa: E402
from archcalc.torch.verify import verify  # noqa: E402
from layer_helpers import spec, torch_check  # noqa: E402


def verified(text):
    result = verify(archcalc.parse_spec(text))
    assert result.ok, result.mismatches()
    for layer in result.layers:
        for figure in ("output_shape", "trainable_params", "non_trainable_params", "macs"):
            assert layer.checks[figure].ok is True, (layer.name, figure)
    return result


# --- trainable: false -------------------------------------------------------------------------------

FROZEN_ENCODER = spec(
    {"tokens": [12]},
    "{name: embed, embedding: {num: 40, dim: 16}, trainable: false}",
    "{name: pos, positional: {num: 12}, trainable: false}",
    "{name: norm, layernorm: {}, trainable: false}",
    "{name: head, linear: 5}",
)


def test_frozen_layers_are_built_without_gradients_and_verify_agrees():
    torch_check({"tokens": [12]}, *FROZEN_ENCODER.split("\n  - ")[1:])
    model = build(archcalc.parse_spec(FROZEN_ENCODER))
    grads = {name: p.requires_grad for name, p in model.named_parameters()}
    assert grads == {"embed.weight": False, "pos.weight": False, "norm.weight": False, "norm.bias": False,
                     "head.weight": True, "head.bias": True}
    verified(FROZEN_ENCODER)


def test_a_frozen_spec_computes_what_the_hand_written_module_computes():
    class Reference(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(40, 16)
            self.pos = nn.Parameter(torch.randn(12, 16))
            self.norm = nn.LayerNorm(16)
            self.head = nn.Linear(16, 5)
            for module in (self.embed, self.norm):
                module.requires_grad_(False)
            self.pos.requires_grad_(False)

        def forward(self, ids):
            return self.head(self.norm(self.embed(ids) + self.pos))

    ref = Reference()
    model = build(archcalc.parse_spec(FROZEN_ENCODER))
    with torch.no_grad():
        model.embed.weight.copy_(ref.embed.weight)
        model.pos.weight.copy_(ref.pos)
        model.norm.load_state_dict(ref.norm.state_dict())
        model.head.load_state_dict(ref.head.state_dict())
    ids = torch.randint(0, 40, (3, 12))
    assert torch.equal(model(ids), ref(ids))
    frozen = sum(p.numel() for p in ref.parameters() if not p.requires_grad)
    report = archcalc.analyze_text(FROZEN_ENCODER)
    assert report.totals.non_trainable_params == frozen == 40 * 16 + 12 * 16 + 32
    assert report.totals.trainable_params == sum(p.numel() for p in ref.parameters() if p.requires_grad)


def test_one_training_step_leaves_frozen_weights_unchanged():
    model = build(archcalc.parse_spec(FROZEN_ENCODER))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    model(torch.randint(0, 40, (4, 12))).square().mean().backward()
    opt.step()
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in ("embed.weight", "pos.weight", "norm.weight"))
    assert not torch.equal(before["head.weight"], after["head.weight"])
    assert model.embed.weight.grad is None


def test_a_frozen_batchnorm_and_block_verify_clean():
    text = """
input: [3, 12, 12]
blocks:
  stem:
    layers:
      - conv: {out: 8, kernel: 3, padding: 1, bias: false}
      - batchnorm
      - relu
layers:
  - {stem: {}, trainable: false, repeat: 2}
  - {batchnorm: {}, trainable: false}
  - conv: {out: 4, kernel: 3}
"""
    model = build(archcalc.parse_spec(text))
    assert not model.get_submodule("stem1.1.batchnorm1").weight.requires_grad
    assert model.get_submodule("conv1").weight.requires_grad
    result = verified(text)
    checks = {layer.name: layer.checks for layer in result.layers}
    # 2C scale/shift + 2C running statistics, measured as parameters without grad and float buffers.
    assert checks["batchnorm1"]["non_trainable_params"].measured == 4 * 8
    assert checks["batchnorm1"]["trainable_params"].measured == 0


def test_an_exported_file_keeps_frozen_layers_frozen(tmp_path):
    path = tmp_path / "frozen_model.py"
    path.write_text(pytorch_source(archcalc.parse_spec(FROZEN_ENCODER)))
    loaded = importlib.util.spec_from_file_location("frozen_model", path)
    module = importlib.util.module_from_spec(loaded)
    loaded.loader.exec_module(module)
    cls = next(v for v in vars(module).values() if isinstance(v, type) and issubclass(v, nn.Module)
               and v.__module__ == "frozen_model" and "PositionEmbedding" != v.__name__)
    exported = cls()
    assert sum(p.numel() for p in exported.parameters() if p.requires_grad) == 16 * 5 + 5
    assert sum(p.numel() for p in exported.parameters() if not p.requires_grad) == 40 * 16 + 12 * 16 + 32


def test_tied_frozen_weights_are_one_frozen_tensor():
    text = spec({"tokens": [6]}, "{name: embed, embedding: {num: 50, dim: 8, tie: head}, trainable: false}",
                "{name: head, linear: {out: 50, bias: false}, trainable: false}")
    model = build(archcalc.parse_spec(text))
    assert model.embed.weight is model.head.weight and not model.head.weight.requires_grad
    verified(text)


# --- scale -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape, entry", [
    ([96, 7, 7], "scale: 1.0e-6"), ([197, 384], "scale: {dim: -1, init: 0.1}"), ([6, 5], "scale: {dim: 1}"),
    ([4, 3, 5, 6], "scale: {dim: 2, init: -2}"), ([10], "scale"),
])
def test_scale_matches_pytorch(shape, entry):
    torch_check(shape, entry)


def test_scale_computes_convnexts_layer_scale():
    # torchvision's CNBlock: nn.Parameter(torch.ones(dim, 1, 1) * layer_scale), times the branch.
    text = spec([96, 7, 7], "{name: ls, scale: 1.0e-6}")
    model = build(archcalc.parse_spec(text))
    layer_scale = nn.Parameter(torch.ones(96, 1, 1) * 1e-6)
    x = torch.randn(2, 96, 7, 7)
    assert torch.equal(model(x), layer_scale * x)
    assert torch.equal(model.ls.gamma, torch.full((96,), 1e-6))
    with torch.no_grad():
        model.ls.gamma.copy_(torch.randn(96))
        layer_scale.copy_(model.ls.gamma.view(96, 1, 1))
    assert torch.equal(model(x), layer_scale * x)


def test_scale_computes_caits_layer_scale_on_a_sequence():
    # timm's LayerScale: x * gamma, gamma = init_values * ones(dim), along the last dimension.
    text = spec([197, 384], "{name: ls, scale: {dim: -1, init: 0.1}}")
    model = build(archcalc.parse_spec(text))
    gamma = nn.Parameter(0.1 * torch.ones(384))
    x = torch.randn(3, 197, 384)
    assert torch.equal(model(x), x * gamma)
    assert [name for name, _ in model.named_parameters()] == ["ls.gamma"]


def test_a_convnext_style_block_with_layer_scale_verifies_clean():
    text = """
input: [8, 12, 12]
layers:
  - {name: dw, conv: {out: 8, kernel: 7, padding: 3, groups: 8}}
  - permute: [1, 2, 0]
  - layernorm
  - linear: 32
  - gelu
  - linear: 8
  - {scale: {dim: -1, init: 0.000001}}
  - {name: back, permute: [2, 0, 1]}
  - {scale: 0.5}
  - {add: {}, from: [back, input]}
"""
    verified(text)
    r = archcalc.analyze_text(text)
    assert r.layer("scale1").params == 8 and r.layer("scale2").params == 8


# --- parameter ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape, entry", [
    ([4], "parameter: [169, 3]"), ([2, 5, 5], "parameter: {shape: [2, 1, 1], init: ones}"),
    ({"tokens": [6]}, "parameter: {shape: [1536, 16], init: normal, std: 0.5}"),
    ([3, 4], "parameter: {shape: [7], init: constant, value: -0.25}"),
])
def test_parameter_matches_pytorch(shape, entry):
    torch_check(shape, entry)


@pytest.mark.parametrize("init, expected", [
    ("init: zeros", lambda: torch.zeros(3, 4)), ("init: ones", lambda: torch.ones(3, 4)),
    ("init: constant, value: -0.5", lambda: torch.full((3, 4), -0.5)),
    ("init: normal, std: 0.3", lambda: torch.empty(3, 4).normal_(std=0.3)),
    ("init: normal", lambda: torch.empty(3, 4).normal_(std=0.02)),
])
def test_parameter_starting_values(init, expected):
    torch.manual_seed(7)
    model = build(archcalc.parse_spec(spec([2], f"{{name: p, parameter: {{shape: [3, 4], {init}}}}}")))
    torch.manual_seed(7)
    assert torch.equal(model.p.weight, expected())


def test_parameter_output_is_its_weight_for_every_example_and_trains():
    text = spec([5, 4], "{name: bias, parameter: {shape: [5, 4], init: normal}}", "{add: {}, from: [input, bias]}")
    model = build(archcalc.parse_spec(text))
    x = torch.randn(3, 5, 4)
    assert torch.equal(model(x), x + model.bias.weight)
    model(x).sum().backward()
    assert torch.equal(model.bias.weight.grad, torch.full((5, 4), 3.0))  # one gradient per example
    with torch.no_grad():  # under no_grad the output needs no gradient (FlopCounterMode relies on it)
        assert not model.bias(x).requires_grad


def test_mamba_a_log_and_d_as_the_reference_holds_them():
    # Mamba's mixer: A_log = log(arange(1, N + 1)) repeated over d_inner, D = ones(d_inner); both
    # nn.Parameters. Written here as two parameter entries, loaded from the reference's values.
    d_inner, n = 48, 16
    text = spec([d_inner, 10], f"{{name: A_log, parameter: [{d_inner}, {n}], from: input}}",
                f"{{name: D, parameter: {{shape: [{d_inner}], init: ones}}, from: input}}")
    model = build(archcalc.parse_spec(text))
    a_log = torch.log(torch.arange(1, n + 1, dtype=torch.float32)).repeat(d_inner, 1)
    with torch.no_grad():
        model.A_log.weight.copy_(a_log)
    x = torch.randn(2, d_inner, 10)
    assert torch.equal(model.A_log(x)[1], a_log) and torch.equal(model(x)[0], torch.ones(d_inner))
    report = archcalc.analyze_text(text)
    assert report.totals.trainable_params == a_log.numel() + d_inner
    verified(text)


def test_parameters_and_scales_verify_clean_with_the_field_measured_through_scale():
    text = spec([4, 10, 10], "conv: {out: 6, kernel: 3}", "{name: ls, scale: 0.01}",
                "{name: bias, parameter: {shape: [6, 1, 1]}, from: input}", "{add: {}, from: [ls, bias]}",
                "{parameter: {shape: [3, 3], init: ones}, trainable: false}")
    result = verified(text)
    rf = {layer.name: layer.checks["rf"] for layer in result.layers}
    assert rf["ls"].ok is True and rf["ls"].measured == rf["conv1"].measured


def test_training_a_network_whose_every_parameter_is_frozen_is_refused_where_frozen(tmp_path):
    from typer.testing import CliRunner

    from archcalc.cli import app

    path = tmp_path / "frozen.yaml"
    path.write_text("input: [1, 8, 8]\nlayers:\n  - flatten\n  - {linear: 10, trainable: false}\n")
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["train", str(path), "--data", "digits", "--task", "classify",
                                      "--epochs", "1", "--out", str(out)])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert lines == [f"{path}:4:5: error: layer 'linear1': frozen has nothing to train: every parameter is "
                     "frozen (trainable: false)"]
    assert not out.exists()
