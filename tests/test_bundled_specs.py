"""The specs shipped under specs/: the lecture's worked examples give the lecture's numbers, the zoo
nets give torchvision's published parameter counts, and every spec agrees with the real PyTorch
module that archcalc.torch builds from it (parameters, output shape, MACs from FlopCounterMode)."""
from pathlib import Path

import pytest

import archcalc
from bundled import SPEC_FILES, numeric_graph, torch_device

SPECS = Path(__file__).resolve().parent.parent / "specs"
ALL_SPECS = SPEC_FILES
LECTURE = SPECS / "lecture"
ZOO = SPECS / "zoo"


def _id(path):
    return str(path.relative_to(SPECS))


def analyze(path):
    return archcalc.analyze(path)


# --- every spec ---------------------------------------------------------------------------------------
def test_the_expected_specs_are_bundled():
    names = {_id(p) for p in ALL_SPECS}
    for expected in ["zoo/alexnet.yaml", "zoo/vgg16.yaml", "zoo/resnet18.yaml", "zoo/resnet50.yaml",
                     "zoo/mobilenet_v2.yaml", "lecture/conv7x7.yaml", "lecture/conv3x3_stack.yaml",
                     "lecture/lenet_first_layer.yaml", "lecture/lenet_fully_connected.yaml",
                     "lecture/two_layer_mlp.yaml", "lecture/rf_stack_stride1.yaml",
                     "lecture/rf_stack_stride2.yaml"]:
        assert expected in names


@pytest.mark.parametrize("path", ALL_SPECS, ids=_id)
def test_every_spec_analyses(path):
    report = analyze(path)
    assert report.layers
    assert report.totals.params == report.totals.trainable_params + report.totals.non_trainable_params
    assert report.totals.macs - sum(row.macs for row in report.layers) == 0


# --- zoo: torchvision's published parameter counts -----------------------------------------------------
ZOO_PARAMS = {
    "alexnet": 61_100_840,
    "vgg16": 138_357_544,
    "resnet18": 11_689_512,
    "resnet50": 25_557_032,
    "mobilenet_v2": 3_504_872,
    "shufflenet_v2": 2_278_604,  # shufflenet_v2_x1_0
    "efficientnet_b0": 5_288_548,
    "densenet121": 7_978_856,
    "convnext_tiny": 28_589_128,
}
# torchvision's published "GFLOPS" (multiply-accumulates, really), rounded to 2 decimals.
ZOO_GMACS = {"alexnet": 0.71, "vgg16": 15.47, "resnet18": 1.81, "resnet50": 4.09, "mobilenet_v2": 0.30,
             "shufflenet_v2": 0.14, "efficientnet_b0": 0.39,
             "densenet121": 2.83, "convnext_tiny": 4.46}


@pytest.mark.parametrize("name", sorted(ZOO_PARAMS))
def test_zoo_matches_torchvision(name):
    report = analyze(ZOO / f"{name}.yaml")
    assert report.input_shape == (3, 224, 224)
    assert report.output_shape == (1000,)
    assert report.totals.trainable_params == ZOO_PARAMS[name]
    assert round(report.totals.macs / 1e9, 2) == ZOO_GMACS[name]


def test_zoo_batchnorm_running_stats_are_non_trainable():
    # AlexNet and VGG have no batch norm; the others count 2C running statistics per batchnorm,
    # the same 2C as its trainable scale and shift.
    for name in ("alexnet", "vgg16"):
        assert analyze(ZOO / f"{name}.yaml").totals.non_trainable_params == 0
    for name in ("resnet18", "resnet50", "mobilenet_v2", "shufflenet_v2", "efficientnet_b0", "densenet121"):
        report = analyze(ZOO / f"{name}.yaml")
        bn = sum(row.trainable_params for row in report.layers if row.kind == "batchnorm")
        assert report.totals.non_trainable_params == bn > 0


# --- lecture: the worked examples ------------------------------------------------------------------
def test_conv7x7():
    report = analyze(LECTURE / "conv7x7.yaml")
    assert report.totals.params == 12_560  # 16 x 16 x 7 x 7 + 16 = 12,544 + 16
    assert report.totals.macs == 822_083_584  # 16 x 16 x 7 x 7 x 256 x 256 = 12,544 x 65,536
    assert report.output_shape == (16, 256, 256)  # 'same' padding keeps 256 x 256
    assert report.layer("conv1").rf.size == (7, 7)


def test_conv3x3_stack():
    report = analyze(LECTURE / "conv3x3_stack.yaml")
    assert report.totals.params == 6_960  # 3 x (16 x 16 x 3 x 3 + 16) = 3 x 2,320
    assert report.totals.macs == 452_984_832  # 3 x (16 x 16 x 3 x 3 x 256 x 256) = 3 x 150,994,944
    assert report.output_shape == (16, 256, 256)
    assert [report.layer(f"conv{i}").rf.size for i in (1, 2, 3)] == [(3, 3), (5, 5), (7, 7)]
    assert sum(row.kind == "relu" for row in report.layers) == 3  # 3 non-linear activations
    # Same receptive field as one 7x7 layer, fewer parameters and multiplications.
    one = analyze(LECTURE / "conv7x7.yaml")
    assert report.layers[-1].rf == one.layers[-1].rf
    assert report.totals.params < one.totals.params and report.totals.macs < one.totals.macs


def test_lenet_first_layer():
    report = analyze(LECTURE / "lenet_first_layer.yaml")
    assert report.output_shape == (6, 28, 28)  # 32 - 5 + 1 = 28
    assert report.totals.params == 156  # 6 x 5 x 5 + 6 = 150 + 6


def test_lenet_fully_connected():
    report = analyze(LECTURE / "lenet_fully_connected.yaml")
    # 32 x 32 x 6 x 28 x 28 + 6 x 28 x 28 = 1,024 x 4,704 + 4,704 = 4,816,896 + 4,704
    assert report.totals.params == 4_821_600
    assert report.output_shape == (6, 28, 28)
    conv = analyze(LECTURE / "lenet_first_layer.yaml")
    assert report.output_shape == conv.output_shape
    assert report.totals.params // conv.totals.params == 30_907  # 4,821,600 / 156 = 30,907.7


def test_two_layer_mlp():
    report = analyze(LECTURE / "two_layer_mlp.yaml")
    # N_H (d + 1) + K (N_H + 1) with d = 784, N_H = 100, K = 10: 100 x 785 + 10 x 101 = 78,500 + 1,010
    assert report.totals.params == 79_510
    assert report.layer("hidden").params == 78_500  # N_H d weights + N_H biases
    assert report.layer("output").params == 1_010  # K N_H weights + K biases
    assert report.input_shape == (784,)
    assert report.output_shape == (10,)


def test_two_layer_mlp_formula_holds_for_other_sizes():
    text = (LECTURE / "two_layer_mlp.yaml").read_text()
    text = text.replace("vars: {d: 784, N_H: 100, K: 10}", "vars: {d: 20, N_H: 7, K: 3}")
    assert "d: 20" in text
    report = archcalc.analyze_text(text)
    assert report.totals.params == 7 * (20 + 1) + 3 * (7 + 1)  # = 147 + 24 = 171


def test_rf_stack_stride1():
    report = analyze(LECTURE / "rf_stack_stride1.yaml")
    # r' = r + (k - 1) j with j = 1: 1 + 2 = 3, 3 + 2 = 5, 5 + 2 = 7
    assert report.layer("conv1").rf.size == (3, 3)
    assert report.layer("conv2").rf.size == (5, 5)
    assert report.layer("conv3").rf.size == (7, 7)


def test_rf_stack_stride2():
    report = analyze(LECTURE / "rf_stack_stride2.yaml")
    # r' = r + (k - 1) j, j' = j s: 1 + 2 x 1 = 3 (j 2), 3 + 2 x 2 = 7 (j 4), 7 + 2 x 4 = 15 (j 8)
    assert report.layer("conv1").rf.size == (3, 3)
    assert report.layer("conv2").rf.size == (7, 7)
    assert report.layer("conv3").rf.size == (15, 15)
    assert report.layer("conv3").rf.stride == (8, 8)
    # "The two networks have the same number of parameters"
    assert report.totals.params == analyze(LECTURE / "rf_stack_stride1.yaml").totals.params


def test_alexnet_2012():
    report = analyze(LECTURE / "alexnet_2012.yaml")
    # 34,944 + 307,456 + 885,120 + 663,936 + 442,624 + 37,752,832 + 16,781,312 + 4,097,000
    assert report.totals.params == 60_965_224  # "60 million parameters"
    assert report.layer("conv1").output_shape == (96, 55, 55)  # "96 feature maps of size 55x55"
    assert report.layer("conv1").params == 34_944  # 96 filters of 11 x 11 x 3, plus 96 biases
    kinds = [row.kind for row in report.layers]
    assert kinds.count("conv") == 5 and kinds.count("linear") == 3  # "5 conv layers + 3 FC layers"
    assert report.output_shape == (1000,) and kinds[-1] == "softmax"  # "1000-way softmax"
    # "650000 neurons": 290,400 + 186,624 + 64,896 + 64,896 + 43,264 + 4,096 + 4,096 + 1,000
    neurons = 0
    for row in report.layers:
        if row.kind in ("conv", "linear"):
            size = 1
            for n in row.output_shape:
                size *= n
            neurons += size
    assert neurons == 659_272


# --- every spec against the real PyTorch module -----------------------------------------------------
@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


@pytest.mark.parametrize("path", ALL_SPECS, ids=_id)
@pytest.mark.slow
def test_spec_matches_torch_module(torch, path):
    import archcalc.torch
    from archcalc.torch.build import example_inputs
    from archcalc.torch.verify import flop_counter

    graph = numeric_graph(path)  # homework specs have symbolic sizes: give them numbers
    report = archcalc.analyze(graph)
    device = torch_device(graph)
    model = archcalc.torch.build(graph, device=device).eval()
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == report.totals.trainable_params
    # Floating buffers only, as verify counts them: batch-norm's num_batches_tracked and Swin's
    # relative_position_index (int64) are bookkeeping, not parameters; frozen parameters
    # (trainable: false, Whisper's position table) are non-trainable.
    buffers = sum(b.numel() for b in model.buffers() if b.is_floating_point())
    frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    assert buffers + frozen == report.totals.non_trainable_params
    counter = flop_counter()
    with torch.no_grad(), counter:
        out = model(*example_inputs(graph, 1, device=device))  # one tensor per input (Whisper: two)
    assert tuple(out.shape) == (1, *report.output_shape)
    assert counter.get_total_flops() // 2 == report.totals.macs
