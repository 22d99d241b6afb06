"""Importing PyTorch modules (archcalc.importers.module): modules written here, a FILE.py:NAME,
and torchvision's models where torchvision imports (tests/torchvision_models.py).

Every round trip checks what the issue asks: the spec's trainable / non-trainable parameters, MACs
(FlopCounterMode / 2) and output shape equal the module's, the module's state_dict loads into
`archcalc.torch.build(spec)` (same keys and shapes) and both give the same outputs on a random
input. Hand values are written beside the figures they check.
"""
import textwrap

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import archcalc  # noqa: E402
from archcalc.errors import SpecError  # noqa: E402
from archcalc.importers.module import compare, from_module, import_module_source  # noqa: E402
from archcalc.torch.build import build  # noqa: E402


def round_trip(module, shape):
    torch.manual_seed(0)
    text = from_module(module, shape)
    result = compare(module, text)
    assert result["spec"] == result["module"], text
    assert result["max_abs_diff"] <= 1e-5 * max(1.0, 1.0), result
    built = build(archcalc.parse_spec(text))
    assert {k: tuple(v.shape) for k, v in built.state_dict().items()} == \
        {k: tuple(v.shape) for k, v in module.state_dict().items()}
    return text, result


# --- modules written here ----------------------------------------------------------------------

def test_mlp_sequential_keeps_its_indices():
    mlp = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Dropout(0.1), nn.Linear(64, 10))
    text, result = round_trip(mlp, (20,))
    # 20*64 + 64 + 64*10 + 10 parameters; 20*64 + 64*10 MACs
    assert result["spec"] == {"trainable": 1994, "non_trainable": 0, "macs": 1920, "output": (10,)}
    assert "- {name: 0, linear: {out: 64}}" in text
    assert "- {name: 2, dropout: 0.1}" in text or "{name: 2, dropout: {p: 0.1}}" in text
    assert text.startswith("# imported by archcalc from torch.nn.modules.container.Sequential")


class Residual(nn.Module):
    def __init__(self, c, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(c // stride, c, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)
        self.short = nn.Sequential(nn.Conv2d(c // stride, c, 1, stride, bias=False), nn.BatchNorm2d(c)) \
            if stride != 1 else nn.Identity()

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.short(x))


class SmallCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.block = Residual(8)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 5)

    def forward(self, x):
        x = nn.functional.relu(self.bn(self.stem(x)))
        x = self.block(x)
        return self.fc(torch.flatten(self.pool(x), 1))


def test_small_cnn_with_batchnorm_and_residual():
    text, result = round_trip(SmallCNN(), (3, 16, 16))
    # stem 3*9*8 + 8 = 224; bn 16 (+16 running); block 2 * 8*9*8 = 1152 and 2 bn 32 (+32); fc 45
    assert result["spec"]["trainable"] == 224 + 16 + 1152 + 32 + 45
    assert result["spec"]["non_trainable"] == 16 + 32
    # MACs: stem 16*16*27*8, block 2 * 16*16*72*8, fc 40
    assert result["spec"]["macs"] == 16 * 16 * 27 * 8 + 2 * 16 * 16 * 72 * 8 + 40
    assert "{name: block, residual}" in text
    assert "{add, from: [bn2, short]}" in text


class ResNetLike(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.layer1 = nn.Sequential(*[Residual(8) for _ in range(3)])
        self.layer2 = nn.Sequential(Residual(16, 2), *[Residual(16) for _ in range(2)])
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))

    def forward(self, x):
        return self.head(self.layer2(self.layer1(self.stem(x))))


def test_repeated_blocks_become_one_block_with_arguments_and_repeat():
    text, result = round_trip(ResNetLike(), (3, 16, 16))
    assert result["spec"]["output"] == (10,)
    assert "repeat: 3" in text  # layer1: three equal blocks, named 0, 1, 2
    assert "repeat: 2" in text  # layer2: a first block that differs, then two equal ones
    assert text.count("  residual:") == 1 and "args: {out: 8}" in text  # one block, its width an argument
    assert len(text.splitlines()) <= 50


@pytest.mark.slow
def test_symbolic_input_gives_a_symbolic_spec():
    text = from_module(ResNetLike(), (3, "H", "W"))
    assert "input: [3, H, W]" in text
    report = archcalc.analyze_text(text, input_shape=(3, 32, 24))
    module = ResNetLike()
    result = compare(module, text, input_shape=(3, 32, 24))
    assert result["spec"] == result["module"] and result["equal"]
    assert report.totals.macs == result["module"]["macs"]


class FixedReshape(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x):
        x = self.conv(x)
        return x.reshape(x.shape[0], 4, -1)


def test_symbolic_input_refused_where_a_layer_fixes_a_size():
    with pytest.raises(SpecError, match="depend on the input's size"):
        from_module(FixedReshape(), (3, "H", "W"))
    text, result = round_trip(FixedReshape(), (3, 8, 8))
    assert "reshape: [4, 64]" in text or "reshape: {shape: [4, 64]}" in text


def test_transformer_style_layer_norm_gelu_and_permute():
    class MLPBlock(nn.Module):
        def __init__(self):
            super().__init__()
            self.norm = nn.LayerNorm(16)
            self.fc1 = nn.Linear(16, 32)
            self.act = nn.GELU()
            self.fc2 = nn.Linear(32, 16)

        def forward(self, x):  # x: [N, T, D]
            y = self.fc2(self.act(self.fc1(self.norm(x))))
            return (x + y).permute(0, 2, 1).mean(dim=2)

    text, result = round_trip(MLPBlock(), (7, 16))
    assert result["spec"]["output"] == (16,)
    assert result["spec"]["trainable"] == 32 + 16 * 32 + 32 + 32 * 16 + 16


def test_module_list_loop_and_channel_slices():
    class Ghost(nn.Module):  # GhostNet-like: a cheap branch concatenated, then sliced back
        def __init__(self):
            super().__init__()
            self.primary = nn.Conv2d(4, 6, 1)
            self.cheap = nn.Conv2d(6, 6, 3, padding=1, groups=6)

        def forward(self, x):
            a = self.primary(x)
            return torch.cat([a, self.cheap(a)], dim=1)[:, :8]

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = nn.ModuleList([nn.Conv2d(4, 4, 3, padding=1) for _ in range(3)])
            self.ghost = Ghost()

        def forward(self, x):
            for block in self.blocks:
                x = torch.relu(block(x))
            return self.ghost(x)[:, 2]

    text, result = round_trip(Net(), (4, 8, 8))
    assert result["spec"]["output"] == (8, 8)
    assert "split: {sizes: [8, 4], dim: 0, index: 0}" in text and "select: {index: 2}" in text
    assert "{name: blocks, blocks}" in text  # the ModuleList, looped over, is a scope named as it is


# --- refusals name what, which class and where --------------------------------------------------

class Cumsum(nn.Module):
    def forward(self, x):
        return torch.cumsum(x, 1)


def test_unsupported_function_is_named_with_its_module():
    net = nn.Sequential(nn.Linear(4, 4), Cumsum())
    with pytest.raises(SpecError) as err:
        from_module(net, (4,))
    assert "cumsum" in str(err.value) and "'1' (Cumsum)" in str(err.value)


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_transformer_encoder_layer_round_trip(norm_first, activation):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(8, 16), nn.TransformerEncoderLayer(
        16, 2, 32, batch_first=True, norm_first=norm_first, activation=activation))
    with torch.no_grad():  # nn.MultiheadAttention starts its biases at zero: make them count
        net[1].self_attn.in_proj_bias.normal_()
        net[1].self_attn.out_proj.bias.normal_()
    text, result = round_trip(net, (5, 8))
    assert "attention: {heads: 2, dropout: 0.1, layout: packed}" in text
    # by hand: linear 5*8*16; attention 5*16*48 + 2*2*5*5*8 + 5*16*16; feed-forward 2*5*16*32
    assert result["spec"]["macs"] == 640 + 3840 + 800 + 1280 + 5120
    # parameters: 8*16+16, 4*16*16+4*16, two layernorms 4*16, 16*32+32 + 32*16+16
    assert result["spec"]["trainable"] == 144 + 1088 + 64 + 544 + 528
    built = build(archcalc.parse_spec(text)).eval()
    built.load_state_dict(net.state_dict())
    net.eval()
    x = torch.randn(3, 5, 8)
    with torch.no_grad():  # also against the module's fused fast path (eval, no grad)
        assert torch.allclose(built(x), net(x), atol=1e-5)


def test_multihead_attention_without_bias_unpacked_as_output_and_weights():
    class Attend(nn.Module):
        def __init__(self):
            super().__init__()
            self.attn = nn.MultiheadAttention(16, 4, bias=False, batch_first=True)

        def forward(self, x):
            y, _ = self.attn(x, x, x)  # need_weights=True (the default): the weights go unread
            return y

    text, result = round_trip(Attend(), (6, 16))
    assert "{name: attn, attention: {heads: 4, bias: false, layout: packed}}" in text
    # 4*16*16 weights; 6*16*48 + 2*4*6*6*4 + 6*16*16 MACs
    assert result["spec"]["trainable"] == 1024 and result["spec"]["macs"] == 4608 + 1152 + 1536


def test_multihead_attention_uses_not_mapped_are_refused_by_name():
    net = nn.Sequential(nn.Linear(8, 16), nn.TransformerEncoderLayer(16, 2, 32))  # batch_first=False
    with pytest.raises(SpecError, match=r"MultiheadAttention with batch_first=False.*1\.self_attn"):
        from_module(net, (5, 8))

    class Cross(nn.Module):
        def __init__(self):
            super().__init__()
            self.kv = nn.Linear(16, 16)
            self.attn = nn.MultiheadAttention(16, 2, batch_first=True)

        def forward(self, x):
            kv = self.kv(x)
            return self.attn(x, kv, kv)[0]

    with pytest.raises(SpecError, match=r"module 'attn' \(MultiheadAttention\) .* differ \(cross-attention\)"):
        from_module(Cross(), (5, 16))

    class Weights(nn.Module):
        def __init__(self):
            super().__init__()
            self.attn = nn.MultiheadAttention(16, 2, batch_first=True)

        def forward(self, x):
            return self.attn(x, x, x)[1]

    with pytest.raises(SpecError, match=r"attention weights"):
        from_module(Weights(), (5, 16))

    encoder = nn.TransformerEncoder(nn.TransformerEncoderLayer(16, 2, 32, batch_first=True), 2)
    with pytest.raises(SpecError, match=r"TransformerEncoder"):
        from_module(encoder, (5, 16))


def test_bare_parameter_unused_module_shared_module_and_batch_ops_refused():
    class Bias(nn.Module):
        def __init__(self):
            super().__init__()
            self.b = nn.Parameter(torch.zeros(4))

        def forward(self, x):
            return x + self.b

    with pytest.raises(SpecError, match=r"'b' \(a parameter\) is read directly by the forward of the top level \(Bias\)"):
        from_module(Bias(), (4,))

    class Unused(nn.Module):
        def __init__(self):
            super().__init__()
            self.used = nn.Linear(4, 4)
            self.spare = nn.Linear(4, 2)

        def forward(self, x):
            return self.used(x)

    with pytest.raises(SpecError, match=r"'spare' \(Linear\) holds 10 parameters.*never calls it"):
        from_module(Unused(), (4,))

    class Shared(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x):
            return self.fc(self.fc(x))

    with pytest.raises(SpecError, match=r"'fc' \(Linear\) is called twice"):
        from_module(Shared(), (4,))

    class BatchMean(nn.Module):
        def forward(self, x):
            return x.mean(dim=0)

    with pytest.raises(SpecError, match="batch"):
        from_module(BatchMean(), (4,))

    with pytest.raises(SpecError, match="momentum=None"):
        from_module(nn.Sequential(nn.BatchNorm1d(4, momentum=None)), (4,))


def test_trace_failure_is_one_error():
    class Branchy(nn.Module):
        def forward(self, x):
            return x if x.sum() > 0 else -x

    with pytest.raises(SpecError, match="torch.fx cannot trace Branchy"):
        from_module(Branchy(), (4,))


def test_import_leaves_the_module_as_it_was():
    net = SmallCNN().train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    from_module(net, (3, 8, 8))
    assert net.training and all(torch.equal(before[k], v) for k, v in net.state_dict().items())


# --- FILE.py:NAME -------------------------------------------------------------------------------

def test_file_source_function_and_class(tmp_path):
    path = tmp_path / "mynet.py"
    path.write_text(textwrap.dedent("""
        import torch
        from torch import nn

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = nn.Conv2d(1, 4, 3)
                self.head = nn.Linear(4 * 6 * 6, 3)

            def forward(self, x):
                return self.head(torch.flatten(torch.relu(self.conv(x)), 1))

        def make():
            return nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU())
    """))
    text = import_module_source(f"{path}:Net", "1,8,8")
    assert f"# imported by archcalc from {path}:Net" in text
    report = archcalc.analyze_text(text)
    assert report.totals.trainable_params == 4 * 9 + 4 + 144 * 3 + 3
    assert archcalc.analyze_text(import_module_source(f"{path}:make", "1,H,W"), input_shape=(1, 5, 5)) \
        .layers[-1].output_shape == (2, 3, 3)
    with pytest.raises(SpecError, match="defines no 'Missing'"):
        import_module_source(f"{path}:Missing", "1,8,8")
    with pytest.raises(SpecError, match="give the input's shape with --input"):
        import_module_source(f"{path}:Net")
    with pytest.raises(SpecError, match="no such file"):
        import_module_source(f"{tmp_path}/absent.py:Net", "1,8,8")
    bad = tmp_path / "bad.py"
    bad.write_text("raise ValueError('broken on purpose')\n")
    with pytest.raises(SpecError, match="running it failed: ValueError: broken on purpose"):
        import_module_source(f"{bad}:Net", "1,8,8")
    quits = tmp_path / "quits.py"  # sys.exit in the user's file (or in NAME()) is an error too, not an exit
    quits.write_text("import sys\n\ndef make():\n    sys.exit(5)\n\nif __name__ == '__main__':\n    pass\n")
    with pytest.raises(SpecError, match=r"calling make\(\) failed: SystemExit: 5"):
        import_module_source(f"{quits}:make", "1,8,8")
    quits.write_text("import sys\nsys.exit(5)\n")
    with pytest.raises(SpecError, match="running it failed: SystemExit: 5"):
        import_module_source(f"{quits}:make", "1,8,8")


# --- torchvision --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tv():
    from torchvision_models import torchvision_models

    models = torchvision_models()
    if models is None:
        pytest.skip("torchvision does not import here")
    return models


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v3_small", "squeezenet1_1", "densenet121",
                                  "shufflenet_v2_x0_5"])
@pytest.mark.slow
def test_torchvision_round_trip(tv, name):
    torch.manual_seed(0)
    module = tv.get_model(name, weights=None)
    text = from_module(module, (3, 32, 32), source=f"torchvision:{name}")
    result = compare(module, text)
    assert result["spec"] == result["module"] and result["equal"], result


@pytest.mark.slow
def test_torchvision_resnet50_in_at_most_80_lines_with_torchvision_names(tv):
    torch.manual_seed(0)
    module = tv.resnet50()
    text = from_module(module, (3, 64, 64), source="torchvision:resnet50")
    assert len(text.splitlines()) <= 80
    result = compare(module, text)
    assert result["equal"], result
    # 25,557,032 trainable parameters (torchvision's documented count) and 53,120 running statistics
    assert result["spec"]["trainable"] == 25_557_032 and result["spec"]["non_trainable"] == 53_120
    names = {n.name for n in archcalc.parse_spec(text).nodes}
    assert {"layer1.0.conv1", "layer1.0.downsample.0", "layer3.5.bn3", "fc"} <= names


@pytest.mark.slow
def test_torchvision_efficientnet_b0_with_stochastic_depth(tv):
    # torchvision.ops.StochasticDepth(p, "row") -> stochastic_depth, p = 0.2 * k / 16 for the k-th of
    # the 16 blocks (from 0; a stage's first block changes the shape, has no residual and never calls
    # it): equal in eval, and in training with the same seed the spec's module draws what
    # torchvision's draws (same order, same noise)
    torch.manual_seed(0)
    module = tv.efficientnet_b0()
    text = from_module(module, (3, 32, 32), source="torchvision:efficientnet_b0")
    result = compare(module, text)
    assert result["spec"] == result["module"] and result["equal"], result
    # 5,288,548 trainable parameters (torchvision's documented count), 42,016 running statistics
    assert result["spec"]["trainable"] == 5_288_548 and result["spec"]["non_trainable"] == 42_016
    graph = archcalc.parse_spec(text)
    drops = {n.name: n.args for n in graph.nodes if n.kind == "stochastic_depth"}
    assert drops == {f"features.{s}.{b}.stochastic_depth": {"p": pytest.approx(0.2 * k / 16), "mode": "row"}
                     for s, b, k in [(2, 1, 2), (3, 1, 4), (4, 1, 6), (4, 2, 7), (5, 1, 9), (5, 2, 10), (6, 1, 12),
                                     (6, 2, 13), (6, 3, 14)]}
    built = build(graph)
    built.load_state_dict(module.state_dict())
    built.train()
    module.train()
    x = torch.randn(4, 3, 32, 32)
    torch.manual_seed(5)
    theirs = module(x)
    torch.manual_seed(5)
    ours = built(x)
    assert torch.equal(ours, theirs)
    torch.manual_seed(6)
    assert not torch.equal(built(x), theirs)  # another seed drops other rows: the training path is random


def test_a_module_name_no_spec_layer_can_have_is_refused():
    net = nn.Sequential()
    net.add_module("block 1", nn.Linear(4, 4))  # nn.Module takes any name without a dot
    with pytest.raises(SpecError, match=r"module 'block 1' \(Linear\) is named 'block 1', which no spec layer can be "
                                        r"named \(words of letters, digits and '_' joined by '-', or a number\)"):
        from_module(net, (4,))


@pytest.mark.slow
def test_regnets_hyphenated_names_are_kept(tv):
    # torchvision's RegNet names its blocks block1-0, block1-1, ...: layer names may hold '-' between words
    module = tv.regnet_x_400mf().eval()
    text = from_module(module, (3, 64, 64))
    assert "{name: 'block1-0', res_bottleneck_block}" in text
    result = compare(module, text)
    assert result["spec"] == result["module"] and result["equal"], result
    assert "trunk_output.block1.block1-0.proj.0.weight" in build(archcalc.parse_spec(text)).state_dict()


@pytest.mark.slow
def test_torchvision_refusals_name_the_construct(tv):
    with pytest.raises(SpecError, match=r"'aux1\..*never calls it"):
        from_module(tv.googlenet(init_weights=False), (3, 64, 64))


@pytest.mark.slow
def test_timm_round_trip_where_timm_imports(tv):
    from archcalc.importers.module import _timm

    try:
        module = _timm("regnety_002")  # BatchNormAct2d (batchnorm keys kept, then its activation), squeeze-excite
    except SpecError:
        pytest.skip("timm does not import here")
    torch.manual_seed(0)
    text = import_module_source("timm:regnety_002", "3,32,32")
    assert text.startswith("# imported by archcalc from timm:regnety_002")
    result = compare(module, text)
    assert result["spec"] == result["module"] and result["equal"], result


@pytest.mark.slow
def test_bench_import_coverage_rows(tv):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "bench" / "import_coverage.py"
    spec = importlib.util.spec_from_file_location("bench_import_coverage", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.round_trip(tv, "squeezenet1_1") == (36, "equal")
    lines, result = bench.round_trip(tv, "googlenet")
    assert lines is None and result.startswith("refused: module 'aux1.conv.conv' (Conv2d)")
    assert "resnet50" in bench.models_to_run(tv) and bench.models_to_run(tv, ["alexnet"]) == ["alexnet"]


def test_a_spec_whose_output_differs_from_the_modules_is_refused(monkeypatch):
    # A mapping that keeps the parameters but not the shape (here: max-pooling written as an
    # identity) must be caught by the import itself, never reach the user's figures.
    import archcalc.importers.module as importer

    table = importer._module_kinds()

    def wrong_kinds():
        out = dict(table)
        out[nn.MaxPool2d] = lambda m, i, o: ("identity", {})
        return out

    monkeypatch.setattr(importer, "_module_kinds", wrong_kinds)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.MaxPool2d(2))
    with pytest.raises(SpecError, match=r"gives an output of \[4, 6, 6\], the module one of \[4, 3, 3\]"):
        from_module(net, (3, 8, 8))


def test_blocks_that_differ_by_an_argument_left_at_its_default_are_one_block():
    # the writer compares entries argument by argument with each kind's defaults (stride 1 is the
    # default, 2 is not): two instances of one module class are one block with a stride argument.
    # The lazy kind registry is a Mapping, not a dict; the writer once found no defaults in it.
    from torch import nn

    class Stage(nn.Module):
        def __init__(self, stride):
            super().__init__()
            self.conv, self.relu = nn.Conv2d(4, 4, 3, stride=stride, padding=1), nn.ReLU()

        def forward(self, x):
            return self.relu(self.conv(x))

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = Stage(1), Stage(2)

        def forward(self, x):
            return self.b(self.a(x))

    text = from_module(Net(), (4, 16, 16), source="test")
    assert "stride: stride" in text and "- {name: b, stage: {stride: 2}}" in text, text
    assert text.count("conv: {") == 1, text
