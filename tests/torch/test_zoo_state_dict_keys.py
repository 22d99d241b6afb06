"""The bundled torchvision models (specs/zoo/) carry torchvision's own names: the module that
`archcalc.torch.build` makes of each has torchvision's state_dict keys and shapes, so its weights
load with `load_state_dict(strict=True)`, and then the outputs are torchvision's.

Checked against torchvision itself where its model code imports (tests/torchvision_models.py:
its C extension does not load here), and, without it, against the reference modules that
tests/torch/test_*_reference.py write from torchvision's code (ConvNeXt-T, ShuffleNet V2, Swin-T;
their keys are torchvision's). No key is mapped: ConvNeXt's layer scale, a [C, 1, 1] tensor of the
block itself (`features.1.0.layer_scale`), is written `bare: true` in the spec and held so.
"""
import importlib.util
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import archcalc  # noqa: E402
from archcalc.torch import build  # noqa: E402
from bundled import SPECS  # noqa: E402
from torchvision_models import torchvision_models  # noqa: E402

HERE = Path(__file__).resolve().parent
# spec in specs/zoo -> torchvision.models builder
TORCHVISION = {"resnet18": "resnet18", "resnet50": "resnet50", "vgg16": "vgg16", "alexnet": "alexnet",
               "mobilenet_v2": "mobilenet_v2", "shufflenet_v2": "shufflenet_v2_x1_0", "convnext_tiny": "convnext_tiny",
               "swin_t": "swin_t", "efficientnet_b0": "efficientnet_b0", "densenet121": "densenet121"}
SIZE = (3, 112, 112)  # every one of them takes another input size; smaller is faster


def shapes(module) -> dict:
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def assert_same_keys(name: str, built, theirs) -> None:
    mine, want = shapes(built), shapes(theirs)
    assert sorted(set(mine) ^ set(want)) == [], f"{name}: keys differ"
    assert {k: s for k, s in mine.items() if want[k] != s} == {}, f"{name}: shapes differ"
    assert list(mine) == list(want), f"{name}: the keys come in another order"


def assert_loads_and_computes_the_same(name: str, theirs, spec=None) -> None:
    """Random weights (batch-norm statistics moved off their defaults), loaded strictly into the
    built spec: the outputs are equal."""
    torch.manual_seed(0)
    with torch.no_grad():
        for m in theirs.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
        for key, p in theirs.named_parameters():
            if key.endswith("layer_scale"):  # 1e-6 would hide a wrong block
                p.uniform_(0.5, 1.5)
    # Built on the meta device and given the tensors themselves (assign): no second initialisation.
    built = build(archcalc.load_spec(spec or SPECS / f"zoo/{name}.yaml", input_shape=SIZE), device="meta")
    result = built.load_state_dict(theirs.state_dict(), strict=True, assign=True)
    assert not result.missing_keys and not result.unexpected_keys
    theirs.eval(), built.eval()
    x = torch.randn(2, *SIZE)
    with torch.no_grad():
        torch.testing.assert_close(built(x), theirs(x), rtol=1e-4, atol=1e-4)


def test_every_torchvision_family_spec_is_checked():
    assert sorted(p.stem for p in (SPECS / "zoo").glob("*.yaml")) == sorted(TORCHVISION)


# --- against torchvision itself ------------------------------------------------------------------
def _models():
    models = torchvision_models()
    if models is None:
        pytest.skip("torchvision's model code does not import here")
    return models


@pytest.mark.parametrize("name", sorted(TORCHVISION))
def test_keys_and_shapes_are_torchvisions(name):
    models = _models()
    with torch.device("meta"):
        theirs = getattr(models, TORCHVISION[name])()
    assert_same_keys(name, build(SPECS / f"zoo/{name}.yaml", device="meta"), theirs)


@pytest.mark.parametrize("name", sorted(TORCHVISION))
@pytest.mark.slow
def test_torchvision_weights_load_and_give_torchvisions_outputs(name):
    models = _models()
    torch.manual_seed(0)
    assert_loads_and_computes_the_same(name, getattr(models, TORCHVISION[name])())


# --- against the reference modules of tests/torch (no torchvision needed) -----------------------
def _reference(test_file: str, factory: str):
    spec = importlib.util.spec_from_file_location(f"_ref_{test_file}", HERE / f"{test_file}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, factory)


REFERENCES = {"convnext_tiny": ("test_convnext_reference", "ConvNeXtTiny"),
              "shufflenet_v2": ("test_shufflenet_reference", "ShuffleNetV2"),
              "swin_t": ("test_swin_reference", "swin_t")}


@pytest.mark.parametrize("name", sorted(REFERENCES))
@pytest.mark.slow
def test_the_reference_modules_weights_load_and_give_their_outputs(name):
    if torchvision_models() is not None:
        pytest.skip("torchvision itself is checked (test_torchvision_weights_load_and_give_torchvisions_outputs)")
    factory = _reference(*REFERENCES[name])
    torch.manual_seed(0)
    reference = factory()
    assert_same_keys(name, build(SPECS / f"zoo/{name}.yaml", device="meta"), reference)
    assert_loads_and_computes_the_same(name, reference)


def test_a_wrong_name_is_seen():
    """The check fails on a spec whose names are not torchvision's (the names of before)."""
    text = (SPECS / "zoo/resnet18.yaml").read_text().replace("{name: downsample, downsample:", "{name: shortcut, downsample:")
    text = text.replace("from: [bn2, downsample]}", "from: [bn2, shortcut]}")
    spec = HERE / "_never_written.yaml"
    graph = archcalc.reader.parse.parse_spec(text, str(spec))
    keys = set(shapes(build(graph, device="meta")))
    assert "layer2.0.shortcut.0.weight" in keys and "layer2.0.downsample.0.weight" not in keys
