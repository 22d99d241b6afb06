"""ONNX files imported as specs (archcalc.importers.onnx_file): files made by torch.onnx.export of
modules written here and of archcalc-built modules, and by onnx.helper. Each import is checked
against its source: parameters (trainable and non-trainable), MACs (FlopCounterMode / 2 of the
torch source, or counted by hand for onnx.helper graphs) and the output shape; then the file's
initializers are loaded into the built spec (`onnx_file.state_dict`) and its outputs compared
with onnxruntime's on a random input. Operators archcalc cannot represent are refused by name."""
from __future__ import annotations

import logging
import warnings

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
torch = pytest.importorskip("torch")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

import archcalc  # noqa: E402
from archcalc.errors import SpecError  # noqa: E402
from archcalc.importers import import_source, is_import_source  # noqa: E402
from archcalc.importers.onnx_file import import_onnx, state_dict  # noqa: E402
from archcalc.torch.build import build  # noqa: E402


def export(module, shape, path, *, dynamo=False, dynamic_batch=True, **kw):
    """torch.onnx.export in eval mode. dynamo=False with do_constant_folding=False keeps
    BatchNormalization as an operator (both exporters otherwise fold it into the convolution)."""
    module = module.eval()
    x = torch.randn(1, *shape)
    options = dict(input_names=["input"], output_names=["output"], verbose=False)
    if dynamo:
        options.update(dynamo=True)
    else:
        options.update(dynamo=False, do_constant_folding=False)
        if dynamic_batch:
            options["dynamic_axes"] = {"input": {0: "batch"}, "output": {0: "batch"}}
    options.update(kw)
    logging.disable(logging.CRITICAL)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(module, (x,), str(path), **options)
    finally:
        logging.disable(logging.NOTSET)
    return str(path)


def built_from(path, input_spec=None):
    """The imported spec's module with the file's weights loaded (strictly: every key)."""
    text = import_onnx(path, input_spec)
    model = build(archcalc.parse_spec(text, "<import>"))
    weights = {k: torch.from_numpy(np.array(v)) for k, v in state_dict(path, input_spec).items()}
    model.load_state_dict(weights, strict=True)
    return text, model.eval()


def run_onnxruntime(path, x: np.ndarray):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def torch_figures(module, shape):
    """(trainable, non-trainable, MACs, output shape) of a torch module: non-trainable are the
    buffers archcalc counts (BatchNorm's running mean and variance; num_batches_tracked is not)."""
    trainable = sum(p.numel() for p in module.parameters())
    buffers = sum(b.numel() for name, b in module.named_buffers() if not name.endswith("num_batches_tracked"))
    x = torch.randn(1, *shape)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        out = module.eval()(x)
    return trainable, buffers, counter.get_total_flops() // 2, tuple(out.shape[1:])


def assert_same_function(path, shape, batch=3, atol=1e-5, input_spec=None):
    text, model = built_from(path, input_spec)
    x = torch.randn(batch, *shape)
    with torch.no_grad():
        ours = model(x).numpy()
    theirs = run_onnxruntime(path, x.numpy())
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, atol=atol, rtol=1e-4)
    return text


# --- modules written here -------------------------------------------------------------------------
class Basic(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class TinyResNet(nn.Module):
    """torchvision's ResNet layout (stem, maxpool, basic blocks with a downsample, pooled head)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = nn.Sequential(Basic(16, 16, 1), Basic(16, 16, 1))
        self.layer2 = nn.Sequential(Basic(16, 32, 2), Basic(32, 32, 1))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(32, 10)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer2(self.layer1(x))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def _randomise_bn(module):
    torch.manual_seed(0)
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
    return module


@pytest.mark.slow
def test_resnet_written_here_round_trips(tmp_path):
    net = _randomise_bn(TinyResNet())
    shape = (3, 32, 32)
    path = export(net, shape, tmp_path / "resnet.onnx")
    text = assert_same_function(path, shape)
    report = archcalc.analyze_text(text)
    trainable, buffers, macs, out = torch_figures(net, shape)
    assert (report.totals.trainable_params, report.totals.non_trainable_params) == (trainable, buffers)
    assert report.totals.macs == macs
    assert report.output_shape == out == (10,)
    # names from the module paths the exporter recorded: blocks and repeat, the module's own names
    names = [row.name for row in report.layers]
    assert names[:4] == ["conv1", "bn1", "relu", "maxpool"]
    assert "layer1.0.conv1" in names and "layer2.0.downsample.0" in names and names[-1] == "fc"
    assert "# Imported by `archcalc import` from resnet.onnx" in text.splitlines()[0]
    assert "repeat: 2" in text
    # so the torch module's own state_dict loads into the built spec, key for key
    model = build(archcalc.parse_spec(text, "<import>"))
    assert set(model.state_dict()) == set(net.state_dict())
    model.load_state_dict(net.state_dict(), strict=True)
    x = torch.randn(2, *shape)
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(x), net.eval()(x), atol=1e-5, rtol=1e-4)


def test_hyphenated_module_names_are_kept(tmp_path):
    # torchvision's RegNet names its blocks block1-0: the spec's layer names may join words by '-'
    net = nn.Sequential()
    net.add_module("block1-0", nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU()))
    net.add_module("block1-1", nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.ReLU()))
    shape = (3, 8, 8)
    path = export(net, shape, tmp_path / "dash.onnx")
    text = assert_same_function(path, shape)
    model = build(archcalc.parse_spec(text, "<import>"))
    assert set(model.state_dict()) == set(net.state_dict()) == {"block1-0.0.weight", "block1-0.0.bias",
                                                                "block1-1.0.weight", "block1-1.0.bias"}


@pytest.mark.slow
def test_dynamo_export_folds_batchnorm_and_is_still_faithful(tmp_path):
    """The dynamo exporter folds BatchNorm into the convolution (a bias appears): the file has
    fewer parameters than the module, and the import counts the file's; MACs are unchanged."""
    net = _randomise_bn(TinyResNet())
    shape = (3, 32, 32)
    path = export(net, shape, tmp_path / "resnet_dynamo.onnx", dynamo=True)
    text = assert_same_function(path, shape, batch=1)
    report = archcalc.analyze_text(text)
    model = onnx.load(path)
    stored = sum(int(np.prod(t.dims)) for t in model.graph.initializer if t.data_type == TensorProto.FLOAT)
    assert report.totals.params == stored
    assert report.totals.non_trainable_params == 0
    _, _, macs, out = torch_figures(net, shape)
    assert report.totals.macs == macs and report.output_shape == out


class Mixer(nn.Module):
    """A transformer block on [T, D]: nn.Linear on 3-d inputs (MatMul + Add), attention written
    with matmul, softmax, reshape and transpose, a scalar scale, LayerNorm and GELU."""

    def __init__(self, d=16, heads=2):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.norm2 = nn.LayerNorm(d, eps=1e-6)
        self.fc1 = nn.Linear(d, 4 * d)
        self.act = nn.GELU(approximate="tanh")
        self.fc2 = nn.Linear(4 * d, d)
        self.head = nn.Linear(d, 5, bias=False)

    def forward(self, x):
        b, t, d = x.shape
        h = self.heads
        qkv = self.qkv(self.norm1(x)).reshape(b, t, 3, h, d // h)
        q, k, v = (qkv[:, :, i].transpose(1, 2) for i in range(3))  # [b, h, t, d/h], the batch first
        att = torch.softmax((q @ k.transpose(-2, -1)) * (d // h) ** -0.5, dim=-1)
        x = x + self.proj((att @ v).transpose(1, 2).reshape(b, t, d))
        x = x + self.fc2(self.act(self.fc1(self.norm2(x))))
        return self.head(x)


@pytest.mark.parametrize("dynamo", [False, True])
@pytest.mark.slow
def test_transformer_block_round_trips(tmp_path, dynamo):
    net = Mixer()
    shape = (6, 16)
    path = export(net, shape, tmp_path / "mixer.onnx", dynamo=dynamo, **({} if dynamo else {"dynamic_batch": False}))
    text, _ = built_from(path)
    x = torch.randn(1, *shape)
    with torch.no_grad():
        expected = net(x).numpy()
    np.testing.assert_allclose(run_onnxruntime(path, x.numpy()), expected, atol=1e-5)
    assert_same_function(path, shape, batch=1)
    report = archcalc.analyze_text(text)
    trainable, buffers, macs, out = torch_figures(net, shape)
    assert report.totals.params == trainable and buffers == 0
    assert report.totals.macs == macs
    assert report.output_shape == out == (6, 5)
    kinds = {row.name: row.kind for row in report.layers}
    # MatMul by a constant + Add of a constant: one linear with its bias (nn.Linear's own count)
    assert kinds["qkv"] == kinds["fc1"] == kinds["head"] == "linear"
    assert [row.params for row in report.layers if row.name == "qkv"] == [16 * 48 + 48]


ARCHCALC_SPEC = """
name: mixed
input: [3, 20, 20]
layers:
  - conv: {out: 8, kernel: 3, stride: 2, padding: 1}
  - batchnorm
  - {name: stem, relu6: {}}
  - {name: left, conv: {out: 8, kernel: 3, padding: 1, groups: 8, bias: false}}
  - {name: left_act, hardswish: {}}
  - {name: right, from: stem, conv: {out: 4, kernel: 1}}
  - {name: right_act, leaky_relu: 0.2}
  - {concat: 0, from: [left_act, right_act]}
  - avgpool: {kernel: 2}
  - {conv_transpose: {out: 6, kernel: 2, stride: 2}}
  - sigmoid
  - maxpool: {kernel: 3, stride: 2, padding: 1}
  - global_avgpool
  - flatten
  - dropout: 0.1
  - linear: 7
  - softmax: -1
"""


def test_archcalc_built_module_round_trips_to_its_own_figures(tmp_path):
    """A spec built by archcalc, exported, imported again: the figures are the spec's own."""
    original = archcalc.analyze_text(ARCHCALC_SPEC)
    net = build(archcalc.parse_spec(ARCHCALC_SPEC, "<spec>"))
    _randomise_bn(net)
    path = export(net, (3, 20, 20), tmp_path / "mixed.onnx")
    text = assert_same_function(path, (3, 20, 20))
    again = archcalc.analyze_text(text)
    for figure in ("params", "trainable_params", "non_trainable_params", "macs"):
        assert getattr(again.totals, figure) == getattr(original.totals, figure), figure
    assert again.output_shape == original.output_shape == (7,)
    # the exporter drops Dropout in eval mode (the file has no such operator): every other layer
    assert [r.kind for r in again.layers] == [r.kind for r in original.layers if r.kind != "dropout"]


def test_token_model_embedding_round_trips(tmp_path):
    class Tokens(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(50, 8)
            self.out = nn.Linear(8, 50)

        def forward(self, ids):
            return self.out(self.embed(ids))

    net = Tokens().eval()
    ids = torch.randint(0, 50, (1, 7))
    path = str(tmp_path / "tokens.onnx")
    logging.disable(logging.CRITICAL)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (ids,), path, dynamo=False, input_names=["ids"], verbose=False)
    logging.disable(logging.NOTSET)
    text, model = built_from(path)
    assert "input: {tokens: [7]}" in text
    with torch.no_grad():
        np.testing.assert_allclose(model(ids).numpy(), run_onnxruntime(path, ids.numpy()), atol=1e-5)
    report = archcalc.analyze_text(text)
    assert report.totals.params == 50 * 8 + 8 * 50 + 50
    assert report.totals.macs == 7 * 8 * 50


class ShuffleAndToken(nn.Module):
    """ShuffleNet's channel shuffle (a view whose sizes are computed with x.size() and //: ONNX's
    graph-wide shape inference cannot follow the Div), then patches with a class token expanded
    over the batch, a learned position table, the class token picked (x[:, 0]) and the patch
    tokens sliced (x[:, 1:])."""

    def __init__(self, c=8, groups=2, d=6):
        super().__init__()
        self.groups = groups
        self.conv = nn.Conv2d(3, c, 1)
        self.patch = nn.Conv2d(c, d, 4, 4)
        self.cls_token = nn.Parameter(torch.randn(1, 1, d))
        self.pos = nn.Parameter(torch.randn(1, 5, d))
        self.head = nn.Linear(d, 3)

    def forward(self, x):
        x = self.conv(x)
        b, c, h, w = x.size()
        x = x.view(b, self.groups, c // self.groups, h, w).transpose(1, 2).reshape(b, -1, h, w)
        t = self.patch(x).flatten(2).transpose(1, 2)  # [b, 4, d]
        t = torch.cat([self.cls_token.expand(t.shape[0], -1, -1), t], dim=1) + self.pos
        return self.head(t[:, 0]) + self.head(t[:, 1:].mean(1))


def test_channel_shuffle_and_class_token_round_trip(tmp_path):
    net = ShuffleAndToken()
    shape = (3, 8, 8)
    path = export(net, shape, tmp_path / "shuffle_token.onnx")  # a dynamic batch: Shape, Gather, Div
    text = assert_same_function(path, shape, batch=4)
    report = archcalc.analyze_text(text)
    trainable, _, macs, out = torch_figures(net, shape)
    # the head is used twice: its initializer counts once per use, as archcalc's two linears do
    assert report.totals.params == trainable + 6 * 3 + 3
    assert report.totals.macs == macs and report.output_shape == out == (3,)
    kinds = [r.kind for r in report.layers]
    assert kinds.count("parameter") == 2 and "select" in kinds and "split" in kinds and "concat" in kinds


class Upsampler(nn.Module):
    """F.interpolate as decoders use it: nearest x2, bilinear x2, bilinear to a size with
    align_corners, bicubic x2; a skip connection concatenated."""

    def __init__(self):
        super().__init__()
        self.down = nn.Conv2d(3, 4, 3, 2, 1)
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.mix = nn.Conv2d(7, 4, 1)

    def forward(self, x):
        y = torch.cat([self.up(self.down(x)), x], 1)
        y = self.mix(y)
        y = nn.functional.interpolate(y, scale_factor=2, mode="bilinear", align_corners=False)
        y = nn.functional.interpolate(y, size=(9, 11), mode="bilinear", align_corners=True)
        return nn.functional.interpolate(y, scale_factor=2, mode="bicubic", align_corners=False)


@pytest.mark.parametrize("dynamo", [False, True])
@pytest.mark.slow
def test_resize_round_trips(tmp_path, dynamo):
    net = Upsampler()
    shape = (3, 8, 8)
    path = export(net, shape, tmp_path / "up.onnx", dynamo=dynamo, **({} if dynamo else {"dynamic_batch": False}))
    text = assert_same_function(path, shape, batch=1, atol=1e-4)
    report = archcalc.analyze_text(text)
    trainable, _, macs, out = torch_figures(net, shape)
    assert report.totals.params == trainable and report.totals.macs == macs
    assert report.output_shape == out == (4, 18, 22)
    assert [r.kind for r in report.layers].count("upsample") == 4


# --- graphs made with onnx.helper -----------------------------------------------------------------
def _model(nodes, inputs, outputs, inits, opset=17):
    graph = helper.make_graph(nodes, "g", inputs, outputs,
                              [numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def _save(model, path):
    onnx.save(model, str(path))
    return str(path)


def test_helper_graph_same_padding_gemm_prelu_clip(tmp_path):
    """Conv with auto_pad SAME_UPPER and stride 2 pads unequally (0 before, 1 after on a 10x10
    input): a zeropad, then the convolution; a Gemm with transB = 0 and alpha; PRelu per channel;
    Clip(0, 6); a Reshape whose target is computed from Shape; a Transpose; a MaxPool."""
    rng = np.random.default_rng(0)
    w = rng.standard_normal((4, 2, 3, 3)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    slope = rng.uniform(0, 0.5, (4, 1, 1)).astype(np.float32)
    gw = rng.standard_normal((4 * 3 * 3, 5)).astype(np.float32)  # [in, out]: transB = 0
    gc = rng.standard_normal(5).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], name="stem", auto_pad="SAME_UPPER", strides=[2, 2],
                         kernel_shape=[3, 3]),
        helper.make_node("PRelu", ["c", "slope"], ["p"], name="act"),
        helper.make_node("Clip", ["p", "lo", "hi"], ["r"], name="clip"),
        helper.make_node("MaxPool", ["r"], ["m"], name="pool", kernel_shape=[2, 2], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Transpose", ["m"], ["t"], name="swap", perm=[0, 1, 3, 2]),
        helper.make_node("Shape", ["t"], ["s"], name="shape"),
        helper.make_node("Gather", ["s", "zero"], ["n"], name="batch", axis=0),
        helper.make_node("Unsqueeze", ["n", "axes0"], ["n1"], name="unsq"),
        helper.make_node("Concat", ["n1", "minus1"], ["target"], name="target", axis=0),
        helper.make_node("Reshape", ["t", "target"], ["f"], name="flat"),
        helper.make_node("Gemm", ["f", "gw", "gc"], ["y"], name="head", alpha=0.5),
    ]
    inits = {"w": w, "b": b, "slope": slope, "lo": np.array(0, np.float32), "hi": np.array(6, np.float32),
             "zero": np.array(0, np.int64), "axes0": np.array([0], np.int64), "minus1": np.array([-1], np.int64),
             "gw": gw, "gc": gc}
    model = _model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, 10, 10])],
                   [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    path = _save(model, tmp_path / "helper.onnx")
    text = assert_same_function(path, (2, 10, 10))
    report = archcalc.analyze_text(text)
    kinds = [(r.name, r.kind) for r in report.layers]
    assert kinds == [("stem_pad", "zeropad"), ("stem", "conv"), ("act", "prelu"), ("clip", "relu6"),
                     ("pool", "maxpool"), ("swap", "permute"), ("flat", "flatten"), ("head", "linear")]
    # by hand: SAME on 10 with stride 2 -> ceil(10/2) = 5 outputs; pool (5 + 2 - 2)//2 + 1 = 3
    assert report.layer("stem").output_shape == (4, 5, 5)
    assert report.output_shape == (5,)
    assert report.totals.params == w.size + b.size + 4 + gw.size + gc.size
    assert report.totals.macs == 5 * 5 * 3 * 3 * 2 * 4 + 36 * 5


def test_refused_operator_names_its_type_node_and_index(tmp_path):
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="first"),
             helper.make_node("Erf", ["r"], ["e"], name="my_erf"),
             helper.make_node("Relu", ["e"], ["y"], name="last")]
    model = _model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                   [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])], {})
    path = _save(model, tmp_path / "erf.onnx")
    with pytest.raises(SpecError) as info:
        import_onnx(path)
    message = str(info.value)
    assert "Erf" in message and "'my_erf'" in message and "#1" in message and "\n" not in message


def test_two_computed_tensors_subtracted_are_refused(tmp_path):
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="r"),
             helper.make_node("Sub", ["x", "r"], ["y"], name="diff")]
    model = _model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                   [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])], {})
    with pytest.raises(SpecError, match=r"ONNX operator Sub at node 'diff' \(#1\)"):
        import_onnx(_save(model, tmp_path / "sub.onnx"))


def test_dynamic_sizes_need_input(tmp_path):
    nodes = [helper.make_node("GlobalAveragePool", ["x"], ["g"], name="gap"),
             helper.make_node("Flatten", ["g"], ["y"], name="flat")]
    model = _model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, "H", "W"])],
                   [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], {})
    path = _save(model, tmp_path / "dyn.onnx")
    with pytest.raises(SpecError, match=r"dynamic size \('H'\) at axis 2: give every size but the batch with --input"):
        import_onnx(path)
    text = import_onnx(path, "3,32,48")
    assert "input: [3, 32, 48]" in text
    assert archcalc.analyze_text(text).output_shape == (3,)
    with pytest.raises(SpecError, match="--input gives 2 sizes"):
        import_onnx(path, "32,48")


def test_not_an_onnx_file_and_dispatch(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00garbage\xff" * 10)
    with pytest.raises(SpecError, match="not an ONNX file"):
        import_source(str(bad))
    with pytest.raises(SpecError, match="no such ONNX file"):
        import_source(str(tmp_path / "missing.onnx"))
    assert is_import_source("model.onnx") and is_import_source("net.py:Net") and is_import_source("timm:vit_b")
    assert not is_import_source("specs/zoo/resnet18.yaml")


MALFORMED = [  # (nodes, initializers, input dims, words of the message)
    ([helper.make_node("MaxPool", ["x"], ["y"], name="p")], {}, [1, 3, 8, 8], "MaxPool at node 'p' (#0) has no kernel_shape"),
    ([helper.make_node("Conv", ["x", "w"], ["y"], name="c", group=2)], {"w": np.zeros((4, 3, 3, 3), np.float32)},
     [1, 3, 8, 8], "group 2 that do not fit its input's 3 channels"),
    ([helper.make_node("Relu", ["z"], ["y"], name="r")], {}, [1, 3], "reads 'z', which nothing before it makes"),
    ([helper.make_node("Reshape", ["x", "s"], ["y"], name="all")], {"s": np.array([-1], np.int64)}, [1, 3, 8, 8],
     "mixes the batch axis into others (output shape [192] for a batch of 1)"),
    ([helper.make_node("ConstantOfShape", ["s"], ["c"], name="big"), helper.make_node("Add", ["x", "c"], ["y"])],
     {"s": np.array([100000, 100000, 10], np.int64)}, [1, 3], "computes a constant of 100,000,000,000 values"),
    ([helper.make_node("Relu", ["x"], ["y"])], {}, [1], "has rank 1"),
]


@pytest.mark.parametrize("nodes, inits, dims, words", MALFORMED)
def test_malformed_graphs_are_one_line_errors(tmp_path, nodes, inits, dims, words):
    model = _model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, dims)],
                   [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    with pytest.raises(SpecError) as info:
        import_onnx(_save(model, tmp_path / "m.onnx"))
    assert words in str(info.value) and "\n" not in str(info.value)


def test_several_inputs_become_inputs_by_name(tmp_path):
    rng = np.random.default_rng(1)
    w = rng.standard_normal((4, 3)).astype(np.float32)
    nodes = [helper.make_node("MatMul", ["a", "w"], ["m"], name="proj"),
             helper.make_node("Add", ["m", "b"], ["s"], name="sum"),
             helper.make_node("Relu", ["s"], ["y"], name="act")]
    model = _model(nodes, [helper.make_tensor_value_info("a", TensorProto.FLOAT, ["N", 5, 4]),
                           helper.make_tensor_value_info("b", TensorProto.FLOAT, ["N", 5, 3])],
                   [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], {"w": w})
    path = _save(model, tmp_path / "two.onnx")
    text, built = built_from(path)
    assert "inputs:\n  a: [5, 4]\n  b: [5, 3]\n" in text and "from: [proj, b]" in text
    a, b = torch.randn(2, 5, 4), torch.randn(2, 5, 3)
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    expected = session.run(None, {"a": a.numpy(), "b": b.numpy()})[0]
    with torch.no_grad():
        np.testing.assert_allclose(built(a, b).numpy(), expected, atol=1e-5)
    report = archcalc.analyze_text(text)
    assert (report.totals.params, report.totals.macs, report.output_shape) == (12, 5 * 4 * 3, (5, 3))


def test_gelu_written_with_erf_before_opset_20_is_one_gelu(tmp_path):
    """Opset 17's export of nn.GELU: x / sqrt(2) -> Erf -> + 1 -> x * . -> * 0.5, one gelu;
    an Erf anywhere else is still refused (test_refused_operator_names_its_type_node_and_index)."""
    net = nn.Sequential(nn.Linear(8, 16), nn.GELU(), nn.Linear(16, 4))
    path = export(net, (5, 8), tmp_path / "gelu17.onnx", opset_version=17)
    assert "Erf" in [n.op_type for n in onnx.load(path).graph.node]
    text = assert_same_function(path, (5, 8))
    report = archcalc.analyze_text(text)
    assert [r.kind for r in report.layers] == ["linear", "gelu", "linear"]
    trainable, _, macs, out = torch_figures(net, (5, 8))
    assert (report.totals.params, report.totals.macs, report.output_shape) == (trainable, macs, out)


@pytest.mark.parametrize("norm", [nn.LayerNorm(8), nn.LayerNorm([5, 8], eps=1e-6)])
def test_layernorm_written_out_before_opset_17_is_one_layernorm(tmp_path, norm):
    """Opset 14's export of nn.LayerNorm: ReduceMean, Sub, Pow, ReduceMean, Add, Sqrt, Div, Mul,
    Add: one layernorm with the scale and shift (over 1 or 2 trailing axes)."""
    net = nn.Sequential(norm, nn.Linear(8, 4))
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
        norm.bias.uniform_(-0.5, 0.5)
    path = export(net, (5, 8), tmp_path / "ln14.onnx", opset_version=14)
    assert "LayerNormalization" not in [n.op_type for n in onnx.load(path).graph.node]
    text = assert_same_function(path, (5, 8))
    report = archcalc.analyze_text(text)
    assert [r.kind for r in report.layers] == ["layernorm", "linear"]
    trainable, _, macs, out = torch_figures(net, (5, 8))
    assert (report.totals.params, report.totals.macs, report.output_shape) == (trainable, macs, out)


def test_reduce_max_and_cast(tmp_path):
    nodes = [helper.make_node("Cast", ["x"], ["c"], to=TensorProto.FLOAT, name="cast"),
             helper.make_node("ReduceMax", ["c"], ["m"], axes=[2, 3], name="gmp"),
             helper.make_node("Flatten", ["m"], ["y"], name="flat")]
    model = _model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 5, 5])],
                   [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], {})
    path = _save(model, tmp_path / "max.onnx")
    text = assert_same_function(path, (3, 5, 5))
    assert [r.kind for r in archcalc.analyze_text(text).layers] == ["global_maxpool", "flatten"]
    nodes[0] = helper.make_node("Cast", ["x"], ["c"], to=TensorProto.INT64, name="to_int")
    model = _model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 5, 5])],
                   [helper.make_tensor_value_info("y", TensorProto.INT64, None)], {})
    with pytest.raises(SpecError, match=r"Cast at node 'to_int' \(#0\) changes integers to reals or back"):
        import_onnx(_save(model, tmp_path / "int.onnx"))
