"""archcalc.torch.build: names, graph-following forward, devices and torch.compile."""
import pytest

torch = pytest.importorskip("torch")

import archcalc  # noqa: E402
from archcalc.torch import build  # noqa: E402

SPEC = """
input: [3, 16, 16]
blocks:
  unit:
    args: {c: 8}
    layers:
      - conv: {out: c, kernel: 3, padding: 1, bias: false}
      - {name: bn, batchnorm: {}}
      - relu
layers:
  - {name: stem, unit: {c: 8}}
  - {name: stage, unit: {c: 8}, repeat: 2}
  - {name: both, add: {}, from: [stem, stage]}      # `stem` is used twice: here and by `stage`
  - {name: cat, concat: 0, from: [both, stem]}
  - global_avgpool
  - flatten
  - linear: 10
"""


def graph():
    return archcalc.parse_spec(SPEC, "net.yaml")


def test_state_dict_keys_carry_the_dotted_names():
    keys = list(build(graph()).state_dict())
    assert keys[:2] == ["stem.conv1.weight", "stem.bn.weight"]
    assert "stage.2.conv1.weight" in keys and "stage.1.bn.running_var" in keys
    assert keys[-2:] == ["linear1.weight", "linear1.bias"]


def test_forward_follows_the_graph():
    model = build(graph()).eval()
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        stem = model.stem.relu1(model.stem.bn(model.stem.conv1(x)))
        s1 = model.stage._modules["1"]
        s2 = model.stage._modules["2"]
        stage = s2.relu1(s2.bn(s2.conv1(s1.relu1(s1.bn(s1.conv1(stem))))))
        cat = torch.cat([stem + stage, stem], 1)
        expected = model.linear1(torch.flatten(cat.mean((2, 3), keepdim=True), 1))
        assert torch.allclose(model(x), expected, atol=1e-6)


def test_meta_device_allocates_nothing():
    model = build(graph(), device="meta")
    assert all(p.is_meta for p in model.parameters())
    out = model(torch.empty(4, 3, 16, 16, device="meta"))
    assert out.shape == (4, 10) and out.is_meta


@pytest.mark.slow
def test_torch_compile_traces_the_whole_graph():
    model = build(graph()).eval()
    compiled = torch.compile(model, backend="aot_eager", fullgraph=True)  # no graph breaks
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        assert torch.allclose(compiled(x), model(x), atol=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda():
    model = build(graph(), device="cuda").eval()
    assert model(torch.randn(2, 3, 16, 16, device="cuda")).shape == (2, 10)


def test_a_layer_named_like_a_module_attribute_is_a_clear_error():
    graph = archcalc.parse_spec("input: [3, 8, 8]\nlayers:\n  - relu\n  - {name: forward, relu: {}}\n", "n.yaml")
    with pytest.raises(archcalc.SpecError, match="'forward' is an attribute of torch.nn.Module") as info:
        build(graph)
    assert info.value.loc.line == 4 and info.value.layer == "forward"
