"""`bare: true` in the built module: the layer's one tensor is a parameter of its block, under the
layer's name (torchvision's `features.1.0.layer_scale` [C, 1, 1], `class_token` [1, 1, D],
`encoder.pos_embedding` [1, T, D]), and it stays the one the layer computes with through
`load_state_dict` (also with assign=True), `to_empty` from the meta device, deepcopy and backward."""
import copy

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import archcalc  # noqa: E402
from archcalc.torch import build  # noqa: E402
from archcalc.torch.build import layer_module  # noqa: E402
from archcalc.torch.verify import verify  # noqa: E402

SPEC = """
name: scaled
input: [4, 5, 5]
blocks:
  blk:
    layers:
      - {name: conv, conv: {out: 4, kernel: 3, padding: 1}}
      - {name: layer_scale, scale: {init: 0.5, broadcast: true}, bare: true}
      - {add: {}, from: [layer_scale, input]}
layers:
  - {name: features, blk: {}, repeat: 2}
  - {flatten: {}}
  - {name: head, linear: 3}
"""


class Reference(nn.Module):
    """The same network written as torchvision writes a CNBlock: the scale a bare parameter."""

    def __init__(self):
        super().__init__()
        self.features = nn.ModuleDict({str(i): Block() for i in (1, 2)})
        self.head = nn.Linear(100, 3)

    def forward(self, x):
        for block in self.features.values():
            x = block(x)
        return self.head(x.flatten(1))


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.layer_scale = nn.Parameter(torch.full((4, 1, 1), 0.5))
        self.conv = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x):
        return self.layer_scale * self.conv(x) + x


@pytest.fixture
def graph(tmp_path):
    path = tmp_path / "scaled.yaml"
    path.write_text(SPEC)
    return archcalc.load_spec(path)


def keys(module):
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def test_the_keys_and_shapes_are_the_references(graph):
    assert keys(build(graph)) == keys(Reference())
    assert list(keys(build(graph))) == list(keys(Reference()))  # a module's own tensors before its children
    assert "features.1.layer_scale" in keys(build(graph))


def test_the_references_weights_load_and_give_its_outputs(graph):
    torch.manual_seed(0)
    theirs = Reference()
    with torch.no_grad():
        for block in theirs.features.values():
            block.layer_scale.uniform_(0.5, 1.5)  # off the starting value, so a stale copy would show
    x = torch.randn(2, 4, 5, 5)
    for assign in (False, True):
        mine = build(graph, device="meta" if assign else None)
        mine.load_state_dict(theirs.state_dict(), strict=True, assign=assign)
        torch.testing.assert_close(mine(x), theirs(x))


def test_the_layer_computes_with_the_blocks_tensor_after_to_empty_and_deepcopy(graph):
    source = build(graph)
    x = torch.randn(2, 4, 5, 5)
    empty = build(graph, device="meta").to_empty(device="cpu")
    empty.load_state_dict(source.state_dict())
    torch.testing.assert_close(empty(x), source(x))
    twin = copy.deepcopy(source)
    with torch.no_grad():
        twin.get_parameter("features.2.layer_scale").mul_(3)  # the copy's own tensor
    assert not torch.allclose(twin(x), source(x))
    assert source.get_parameter("features.2.layer_scale").eq(0.5).all()


def test_the_gradient_reaches_the_blocks_parameter(graph):
    model = build(graph)
    model(torch.randn(2, 4, 5, 5)).sum().backward()
    grad = model.get_parameter("features.1.layer_scale").grad
    assert grad is not None and grad.shape == (4, 1, 1) and grad.abs().sum() > 0


def test_parameters_are_counted_once(graph):
    model = build(graph)
    # 2 x (conv 4*4*9 + 4, scale 4) + head 100*3 + 3
    assert sum(p.numel() for p in model.parameters()) == 2 * (4 * 4 * 9 + 4 + 4) + 303
    assert layer_module(model, "features.1.layer_scale").gamma is model.get_parameter("features.1.layer_scale")


def test_verify_is_clean(graph):
    result = verify(graph)
    assert result.ok
    scale = next(layer for layer in result.layers if layer.name == "features.1.layer_scale")
    assert scale.checks["trainable_params"].measured == 4


def test_a_frozen_bare_tensor_stays_frozen(tmp_path):
    path = tmp_path / "f.yaml"
    path.write_text("name: f\ninput: [4, 8]\nlayers:\n"
                    "  - {name: class_token, class_token: {}, bare: true, trainable: false}\n"
                    "  - {name: pos_embedding, positional: {broadcast: true}, bare: true}\n")
    model = build(archcalc.load_spec(path))
    assert keys(model) == {"class_token": (1, 1, 8), "pos_embedding": (1, 5, 8)}
    assert not model.class_token.requires_grad and model.pos_embedding.requires_grad
    x = torch.randn(2, 4, 8)
    want = torch.cat([model.class_token.expand(2, -1, -1), x], dim=1) + model.pos_embedding
    torch.testing.assert_close(model(x), want)
