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
