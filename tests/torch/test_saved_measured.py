"""`archcalc verify --memory`: PyTorch as the oracle of the saved activations. Every bundled spec
(transformers at small sizes, symbolic homework at 32 x 32) keeps for backward exactly the bytes
archcalc.analysis.memory.saved_bytes counts, per layer, measured with saved_tensors_hooks on the
built module (one training-mode forward, CPU, float32, batch 2; storages once, parameters and
buffers apart); and so does every variant of the CNN kinds below."""
import textwrap
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from typer.testing import CliRunner  # noqa: E402

from archcalc import api  # noqa: E402
from archcalc.cli import app  # noqa: E402
from archcalc.layers import KINDS  # noqa: E402
from archcalc.torch.saved import check_saved  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SPECS = ROOT / "specs"
runner = CliRunner()

# Small sizes for the transformers (the published sizes do not fit a CPU test): the same layers.
SMALL_LM = {"d": 64, "heads": 4, "depth": 2, "vocab": 1000}
GQA = {**SMALL_LM, "kv_heads": 2, "ffn": 128}
SIZES = {
    "transformers/bert_base": ({**SMALL_LM, "mlp": 128}, (2, 64)),
    "transformers/gpt2_small": ({**SMALL_LM, "context": 64}, (64,)),
    "transformers/gpt3_175b": ({**SMALL_LM, "context": 64}, (64,)),
    "transformers/llama2_70b": (GQA, (64,)),
    "transformers/llama_7b": ({**GQA, "kv_heads": 4}, (64,)),
    "transformers/mamba_130m": ({"d": 64, "depth": 2, "vocab": 1000}, (32,)),
    "transformers/mixtral_8x7b": (GQA, (64,)),
    "transformers/qwen2_0_5b": (GQA, (64,)),
    "transformers/t5_small": ({**SMALL_LM, "d_kv": 16, "d_ff": 128}, None),
    "transformers/t5_small_encoder": ({**SMALL_LM, "d_kv": 16, "d_ff": 128}, (64,)),
    "transformers/vit_b16": ({"d": 64, "heads": 4, "mlp": 128, "depth": 2}, None),
    "transformers/whisper_tiny": ({**SMALL_LM, "ffn": 128, "pad": 1, "sources": 50, "targets": 16},
                                  {"input_features": (80, 100), "decoder_input_ids": (16,)}),
    "homework/conv_pool_fc": ({"H": 32, "W": 32}, None),
    "homework/denoiser": ({"H": 32, "W": 32}, None),
    "homework/written_assignment_1": ({"H": 32, "W": 32}, None),
    "homework/written_assignment_2": ({"H": 32, "W": 32}, None),
}
# The zoo at 64 x 64 (the same layers as at 224, a tenth of the time); resnet18 at 224 (docs/memory.md).
for _path in sorted((SPECS / "zoo").glob("*.yaml")):
    if _path.stem != "resnet18":
        SIZES[f"zoo/{_path.stem}"] = ({}, (3, 64, 64))

# Layers of a bundled spec that differ from PyTorch, and why (none today: the LSTM's oneDNN workspace
# counts exactly with its page rounding, Saved.align).
PENDING: dict = {}


def bundled_specs():
    return sorted(str(p.relative_to(SPECS).with_suffix("")) for p in SPECS.glob("*/*.yaml")
                  if "layers:" in p.read_text() and not p.stem.endswith((".answers", ".key")))


def test_every_bundled_spec_is_listed():
    listed = set(bundled_specs())
    assert {"zoo/resnet18", "zoo/swin_t", "lecture/digits_cnn", "transformers/llama_7b",
            "homework/denoiser", "sequence/tcn"} <= listed
    assert set(SIZES) <= listed


def _load(name):
    bindings, shape = SIZES.get(name, ({}, None))
    return api.load_graph(SPECS / f"{name}.yaml", bindings=bindings or None, input_shape=shape)


@pytest.mark.parametrize("batch", [2, 1])
@pytest.mark.parametrize("name", bundled_specs())
@pytest.mark.slow
def test_saved_bytes_match_pytorch(name, batch):
    # batch 1 too: views where a batch of 2 copies (recurrent inputs, mamba, Swin's last stage)
    if batch == 1 and name == "zoo/resnet18":
        pytest.skip("resnet18 at 224 and batch 1: test_resnet18_at_224_figures")
    result = check_saved(_load(name), batch=batch)
    wrong = {(row.name, row.kind, row.analytic, row.measured) for row in result.mismatches()}
    pending = PENDING.get(name, set())
    assert {kind for _, kind, _, _ in wrong} <= pending, sorted(wrong)
    assert result.outside == 0
    if not pending:
        assert result.ok and result.analytic == result.measured > 0


@pytest.mark.slow
def test_resnet18_at_224_figures():
    # The figures docs/memory.md quotes: batch 2, float32. By hand (tests/analysis/test_memory.py):
    # 2 x 22,179,840 per example + 38,400 of batch-norm statistics.
    result = check_saved(_load("zoo/resnet18"))
    assert result.ok
    assert result.measured == result.analytic == 2 * 22_179_840 + 38_400 == 44_398_080
    rows = {r.name: r for r in result.rows}
    assert rows["conv1"].measured == 2 * 3 * 224 * 224 * 4  # the network input, kept by conv1
    assert rows["relu1"].measured == 2 * 64 * 112 * 112 * 4  # its output
    assert rows["maxpool1"].measured == 2 * 64 * 56 * 56 * 8  # int64 indices; its input is relu's output
    assert rows["layer1.0.conv1"].measured == 2 * 64 * 56 * 56 * 4  # the max pool's output
    assert rows["layer1.0.conv2"].measured == 0  # relu's output, counted there
    assert rows["fc"].measured == 2 * 512 * 4  # flatten's view of the pooled [512, 1, 1]
    one = check_saved(_load("zoo/resnet18"), batch=1)
    assert one.ok and one.measured == 22_179_840 + 38_400 == 22_218_240


# Each variant of the CNN kinds, behind a 1x1 conv (so that gradients flow: a layer on the
# network input with no parameters saves nothing, which the last case checks).
CNN = [
    ("[4, 6, 6]", ["relu", "sigmoid", "tanh", "gelu", "gelu: tanh", "silu", "elu", "leaky_relu", "hardswish",
                   "hardsigmoid", "softplus", "mish", "relu6", "selu", "celu", "hardtanh", "softsign",
                   "tanhshrink", "logsigmoid", "quick_gelu", "rrelu", "hardshrink", "softshrink",
                   "{threshold: {threshold: 0.1, value: 0}}", "identity", "softmax", "log_softmax", "softmin",
                   "softmax2d"]),
    ("[4, 6, 6]", ["dropout: 0", "dropout: 1", "dropout: 0.3", "dropout2d: 0", "dropout2d: 0.5", "dropout2d: 1"]),
    ("[4, 6, 6]", ["batchnorm", "{batchnorm: {affine: false}}", "{batchnorm: {track_running_stats: false}}",
                   "layernorm", "{layernorm: {dims: 3}}", "{layernorm: {affine: false}}",
                   "{layernorm: {bias: false}}", "groupnorm: 2", "{groupnorm: {groups: 2, affine: false}}",
                   "instancenorm", "{instancenorm: {affine: true}}", "{instancenorm: {track_running_stats: true}}",
                   "{instancenorm: {affine: true, track_running_stats: true}}"]),
    ("[4, 8, 8]", ["{conv: {out: 4, kernel: 3, padding: 1, padding_mode: reflect}}",
                   "{conv: {out: 4, kernel: 3, padding: 1, padding_mode: replicate}}",
                   "{conv: {out: 4, kernel: 3, padding: 1, padding_mode: circular}}",
                   "{conv: {out: 4, kernel: 3, padding: [1, 0], padding_mode: reflect}}",
                   "{conv: {out: 4, kernel: 2, padding: same}}", "{conv: {out: 4, kernel: 4, padding: same}}",
                   "{conv: {out: 4, kernel: 3, padding: same}}", "{conv: {out: 4, kernel: 3, stride: 2, groups: 2}}",
                   "{conv_transpose: {out: 4, kernel: 2, stride: 2}}", "prelu", "prelu: 4"]),
    ("[4, 8, 8]", ["maxpool: 2", "{avgpool: {kernel: 3, stride: 1, padding: 1}}", "adaptive_avgpool: 1",
                   "adaptive_avgpool: 3", "global_maxpool", "global_avgpool", "{zeropad: 1}",
                   "upsample: 2", "{upsample: {scale: 2, mode: bilinear}}", "channel_shuffle: 2", "flatten",
                   "linear: 5"]),
    ("[4, 6]", ["maxpool: 2", "avgpool: 2", "global_maxpool", "adaptive_avgpool: 2", "dropout2d: 0.5",
                "{linear: {out: 6, bias: false}}", "{stochastic_depth: {p: 0.5}}",
                "{stochastic_depth: {p: 0.5, mode: batch}}", "{stochastic_depth: {p: 0}}",
                "{scale: {init: 0.1}}", "{multiply_by: 0.5}", "{roll: {shifts: [1], dims: [1]}}",
                "{permute: [1, 0]}", "linear: 4", "{reshape: [24]}", "linear: 3"]),
    ("[4, 4, 4, 4]", ["maxpool: 2", "{avgpool: 2}", "global_avgpool", "global_maxpool", "dropout2d: 0.5"]),
]


def _spec(shape, layers, first="{conv: {out: 4, kernel: 1}}"):
    lines = "".join(f"  - {layer}\n" for layer in [first, *layers])
    return f"input: {shape}\nlayers:\n{lines}"


@pytest.mark.parametrize("shape, layers", CNN, ids=[f"{s}-{ls[0]}" for s, ls in CNN])
def test_cnn_kinds_match_pytorch(tmp_path, shape, layers):
    path = tmp_path / "spec.yaml"
    path.write_text(_spec(shape, layers))
    result = check_saved(api.load_graph(path))
    assert result.ok, [(r.name, r.analytic, r.measured, r.tensors) for r in result.mismatches()]


MERGES = """\
input: [4, 6, 6]
layers:
  - {name: a, conv: {out: 4, kernel: 1}}
  - {name: b, conv: {out: 4, kernel: 1}, from: input}
  - {name: gate, global_avgpool, from: b}
  - {name: m2, multiply, from: [a, gate]}
  - {name: m3, multiply, from: [a, b, gate]}
  - {name: sum, add, from: [m2, m3, a]}
  - {name: cat, concat, from: [sum, a]}
  - {name: piece, split: {sizes: 4, dim: 0, index: 1}, from: cat}
  - {name: pick, select: {dim: 0, index: 1}, from: cat}
  - {name: tok, class_token, from: pick}
  - {name: pos, positional, from: tok}
  - {name: w, parameter: {shape: [7, 6]}, from: pos}
  - {name: both, multiply, from: [pos, w]}
  - {name: last, linear: 3, from: both}
  - {name: first, conv: {out: 2, kernel: 1}, from: piece}
"""


def test_merges_views_and_learned_tensors_match_pytorch(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text(MERGES)
    result = check_saved(api.load_graph(path))
    assert result.ok, [(r.name, r.analytic, r.measured, r.tensors) for r in result.mismatches()]
    rows = {r.name: r for r in result.rows}
    one = 2 * 4 * 36 * 4  # a [4, 6, 6] tensor at batch 2
    assert rows["a"].measured == one and rows["b"].measured == 0  # the network input, kept once
    assert rows["m2"].measured == one + 2 * 4 * 4  # a's output and the gate [4, 1, 1], not broadcast
    assert rows["m3"].measured == 2 * one  # b's output and the product a * b (a and gate are kept)
    assert rows["both"].measured == 2 * 7 * 6 * 4  # positional's output; w is a view of the weights
    assert rows["first"].measured == 2 * one  # a split piece keeps the whole concat's storage
    assert sum(rows[n].measured for n in ("sum", "cat", "piece", "pick", "tok", "pos", "w")) == 0


WINDOWS = """\
input: [4, 7, 7]
layers:
  - conv: {out: 4, kernel: 1}
  - {name: cl, permute: [1, 2, 0]}
  - relu
  - {name: w, window_partition: 4}
  - linear: 4
  - {window_merge: 4, from: [linear1, cl]}
  - relu
  - patch_merging
  - linear: 3
  - {patch_merging: {}}
  - {mean: {dim: [0, 1]}}
  - {chunk: {chunks: 2, dim: 0, index: 1}}
  - linear: 2
"""


def test_windows_patch_merging_mean_and_chunk_match_pytorch(tmp_path):
    # 7 x 7 padded to whole 4 x 4 windows, and odd sizes padded by patch merging (torchvision's Swin).
    path = tmp_path / "spec.yaml"
    path.write_text(WINDOWS)
    result = check_saved(api.load_graph(path))
    assert result.ok, [(r.name, r.analytic, r.measured, r.tensors) for r in result.mismatches()]
    rows = {r.name: r.measured for r in result.rows}
    assert rows["w"] == rows["window_merge1"] == rows["mean1"] == 0
    # [4, 4, 16] patches and normalised patches + mean and rstd per position, batch 2
    assert rows["patch_merging1"] == 2 * 4 * (2 * 4 * 4 * 16 + 2 * 4 * 4)


def test_a_layer_without_gradients_saves_nothing(tmp_path):
    # relu and max pooling straight on the input: nothing needs a gradient there.
    path = tmp_path / "spec.yaml"
    path.write_text(_spec("[2, 8, 8]", ["maxpool: 2", "{conv: {out: 3, kernel: 1}}"], first="relu"))
    result = check_saved(api.load_graph(path))
    assert result.ok
    assert [r.measured for r in result.rows] == [0, 0, 2 * 2 * 4 * 4 * 4]


# Memory order: a view PyTorch cannot make is a copy, which is new memory a later layer keeps.
# After relu (which keeps its output) a permuted tensor flattened, or a split piece of the last
# dim, is copied, and the linear keeps the copy; a channels-last tensor (the permute back from a
# channels-last linear) stays channels-last through conv, pooling, padding, resizing and norms,
# elementwise kinds keep a permuted tensor's order, softmax writes a contiguous result.
LAYOUTS = [
    ["relu", "{permute: [1, 2, 0]}", "flatten", "linear: 3"],
    ["relu", "{permute: [1, 2, 0]}", "linear: 3"],
    ["relu", "{permute: [1, 2, 0]}", "{reshape: [36, 4]}", "linear: 3"],
    ["relu", "{permute: [1, 2, 0]}", "{split: {sizes: 2, dim: -1, index: 0}}", "linear: 3"],
    ["relu", "{split: {sizes: 2, dim: 0, index: 1}}", "linear: 3"],
    ["relu", "{split: {sizes: 2, dim: 0, index: 1}}", "flatten", "linear: 3"],
    ["relu", "{select: {dim: 0, index: 1}}", "linear: 3"],
    ["relu", "{select: {dim: -1, index: 1}}", "linear: 3"],
    ["relu", "{permute: [1, 2, 0]}", "{permute: [2, 0, 1]}", "flatten", "linear: 3"],
    *[["{permute: [1, 2, 0]}", kind, "relu", "{reshape: [144]}", "linear: 3"]
      for kind in ("prelu", "multiply_by: 2", "{stochastic_depth: {p: 0.5}}", "{scale: {dim: -1}}", "gelu",
                   "dropout", "softmax", "sigmoid", "layernorm", "{roll: {shifts: [1], dims: [0]}}")],
    *[["{permute: [1, 2, 0]}", "linear: 4", "{permute: [2, 0, 1]}", kind, "relu", "flatten", "linear: 3"]
      for kind in ("{zeropad: 1}", "upsample: 2", "{upsample: {scale: 2, mode: bilinear}}", "maxpool: 2",
                   "avgpool: 2", "{conv: {out: 6, kernel: 1}}",
                   "{conv: {out: 6, kernel: 3, padding: 1, padding_mode: reflect}}",
                   "{conv_transpose: {out: 6, kernel: 2, stride: 2}}", "batchnorm", "gelu", "groupnorm: 2",
                   "adaptive_avgpool: 2", "channel_shuffle: 2", "instancenorm", "{layernorm: {dims: 3}}",
                   "dropout2d: 0.5", "softmax", "global_maxpool")],
    # group norm keeps a contiguous copy of a split piece or a permuted view (a channels-last one as
    # it is), instance norm of anything not contiguous; identity is its input itself
    *[[*before, kind] for before in (["relu", "{split: {sizes: 2, dim: 0, index: 1}}"], ["relu", "{permute: [0, 2, 1]}"],
                                     ["{permute: [1, 2, 0]}", "linear: 4", "relu", "{permute: [2, 0, 1]}"])
      for kind in ("instancenorm", "{instancenorm: {affine: true}}", "groupnorm: 1", "groupnorm: 2", "batchnorm")],
    ["tanh", "{split: {sizes: 1, dim: 0, index: 2}}", "identity", "maxpool: 1"],
    ["{name: same, identity}", "{multiply, from: [same, conv1]}"],
]


@pytest.mark.parametrize("layers", LAYOUTS, ids=[" ".join(ls) for ls in LAYOUTS])
def test_memory_order_matches_pytorch(tmp_path, layers):
    path = tmp_path / "spec.yaml"
    path.write_text(_spec("[4, 6, 6]", layers))
    result = check_saved(api.load_graph(path))
    assert result.ok, [(r.name, r.analytic, r.measured, r.tensors) for r in result.mismatches()]


def test_a_copy_is_kept_where_no_view_exists(tmp_path):
    # conv -> relu (keeps its output [4, 6, 6]) -> permute -> flatten (a copy) -> linear keeps the
    # copy: the same values twice, as PyTorch holds them.
    path = tmp_path / "spec.yaml"
    path.write_text(_spec("[4, 6, 6]", ["relu", "{permute: [1, 2, 0]}", "flatten", "linear: 3"]))
    rows = {r.name: r.measured for r in check_saved(api.load_graph(path)).rows}
    assert rows["relu1"] == rows["linear1"] == 2 * 144 * 4
    path.write_text(_spec("[4, 6, 6]", ["relu", "flatten", "linear: 3"]))
    rows = {r.name: r.measured for r in check_saved(api.load_graph(path)).rows}
    assert rows["relu1"] == 2 * 144 * 4 and rows["linear1"] == 0  # a view of relu's output


FROZEN = """\
input: [4, 6, 6]
layers:
  - {conv: {out: 4, kernel: 3, padding: 1}, trainable: false}
  - relu
  - conv: {out: 4, kernel: 1}
  - {conv: {out: 4, kernel: 3, padding: 1}, trainable: false}
  - {conv: {out: 4, kernel: 3, padding: 1, padding_mode: reflect}, trainable: false}
  - {conv_transpose: {out: 4, kernel: 1}, trainable: false}
  - {prelu: {}, trainable: false}
  - {scale: {}, trainable: false}
  - {batchnorm: {}, trainable: false}
  - {layernorm: {}, trainable: false}
  - {groupnorm: 2, trainable: false}
  - {linear: 6, trainable: false}
  - linear: 3
"""


def test_frozen_layers_match_pytorch(tmp_path):
    # trainable: false. On the input, a frozen conv and the relu after it need no gradient: nothing.
    # Later, a convolution still keeps its input (aten's convolution saves input and weight
    # whatever needs a gradient), a frozen linear or scale does not (mm and mul keep an input
    # only for the other operand's gradient), norms keep theirs (the input's gradient needs it).
    path = tmp_path / "spec.yaml"
    path.write_text(FROZEN)
    result = check_saved(api.load_graph(path))
    assert result.ok, [(r.name, r.analytic, r.measured, r.tensors) for r in result.mismatches()]
    rows = {r.name: r.measured for r in result.rows}
    one = 2 * 4 * 36 * 4
    assert rows["conv1"] == rows["relu1"] == 0 and rows["conv2"] == one  # relu's output, kept by conv2
    assert rows["conv3"] == one and rows["linear1"] == 0 and rows["scale1"] == 0
    assert rows["conv4"] == one + 2 * 4 * 64 * 4  # the reflection pad's input + the padded [4, 8, 8]


GRADLESS_OPERANDS = """\
inputs:
  x: [4, 6]
  y: [4, 6]
  z: [6, 5]
layers:
  - {name: k, linear: 6, from: x}
  - {name: m3, multiply, from: [x, y, k]}
  - {name: m3b, multiply, from: [k, x, y]}
  - {name: mm, matmul, from: [k, z]}
  - {name: mm2, matmul, from: [x, z]}
  - {name: w, parameter: {shape: [4, 6]}, trainable: false, from: x}
  - {name: mw, multiply, from: [k, w]}
  - {name: g, global_avgpool, from: y}
  - {name: mg, multiply, from: [mw, g]}
  - {name: o, linear: 2, from: mg}
  - {name: o2, linear: 2, from: m3}
  - {name: o3, linear: 2, from: m3b}
  - {name: o4, linear: 2, from: mm}
"""


def test_an_operand_is_kept_only_for_the_other_operands_gradient(tmp_path):
    # mul and bmm keep each operand for the other's gradient: beside a network input (or a frozen
    # parameter, or anything computed from inputs alone) only that operand is kept, not the one
    # that needs a gradient (archcalc counted both).
    path = tmp_path / "spec.yaml"
    path.write_text(GRADLESS_OPERANDS)
    for batch in (1, 2):
        result = check_saved(api.load_graph(path), batch=batch)
        assert result.ok, [(r.name, r.analytic, r.measured, r.tensors) for r in result.mismatches()]
    rows = {r.name: r.measured for r in result.rows}  # batch 2, float32
    assert rows["m3"] == 2 * 4 * 6 * 4  # x * y (needs no gradient) kept for k's; k not kept
    assert rows["m3b"] == 2 * 4 * 6 * 4  # y, for (k * x)'s gradient; x is linear k's input, counted there
    assert rows["mm"] == 2 * 6 * 5 * 4  # z, for k's gradient; k not kept
    assert rows["mm2"] == rows["mw"] == 0  # no gradient at all; k beside a frozen weight
    assert rows["mg"] == 2 * 4 * 1 * 4  # the pooled y [4, 1], for mw's gradient


def test_pads_and_rmsnorm_on_the_network_input_keep_it_only_for_its_gradient(tmp_path):
    # A reflection pad and RMSNorm's x, rsqrt keep them for the input's gradient: on the network
    # input only the padded copy (conv) and x * rsqrt (the weight's gradient) are kept.
    path = tmp_path / "spec.yaml"
    path.write_text("input: [3, 8, 8]\nlayers:\n"
                    "  - {conv: {out: 4, kernel: 3, padding: 1, padding_mode: reflect}}\n"
                    "  - {conv_transpose: {out: 4, kernel: 3, stride: 2}, from: input}\n"
                    "  - {name: seq, reshape: [3, 64], from: input}\n  - {name: r, rmsnorm: {dims: 1}}\n")
    result = check_saved(api.load_graph(path))
    assert result.ok, [(r.name, r.analytic, r.measured, r.tensors) for r in result.mismatches()]
    rows = {r.name: r.measured for r in result.rows}
    assert rows["conv1"] == 2 * 3 * 10 * 10 * 4  # the padded [3, 10, 10] alone
    assert rows["conv_transpose1"] == 2 * 3 * 8 * 8 * 4  # the input, which the pad did not keep
    assert rows["r"] == 2 * 3 * 64 * 4  # x * rsqrt; x is the input (kept above), rsqrt not kept


# The recurrent kinds' output is their time-major result transposed (strides (W, N*W, 1) for a batch
# of N > 1): a relu keeps that order and a linear after it keeps a contiguous copy. oneDNN's LSTM
# (one direction) returns a view of the last layer's output it saves: whoever keeps the layer's
# output shares it. With a batch of 1 the time-major input (mamba: x_proj's input) is a view.
RECURRENT = ["{rnn: {hidden: 8}}", "{gru: {hidden: 8, layers: 2}}", "{gru: {hidden: 8, bidirectional: true}}",
             "{lstm: {hidden: 8}}", "{lstm: {hidden: 8, bidirectional: true, layers: 2}}",
             "{lstm: {hidden: 8, proj_size: 4}}", "{rnn: {hidden: 8, layers: 3, dropout: 0.2}}", "{mamba: {}}"]
AFTER = [["linear: 2"], ["gelu", "linear: 2"], ["relu", "linear: 2"], ["layernorm"],
         ["{permute: [1, 0]}", "{conv: {out: 3, kernel: 3}}"], ["{select: {dim: 0, index: -1}}", "linear: 2"]]


@pytest.mark.parametrize("kind", RECURRENT)
def test_recurrent_outputs_and_inputs_are_laid_out_as_pytorch_does(tmp_path, kind):
    path = tmp_path / "spec.yaml"
    for before in (["linear: 16", "relu"], []):
        for after in AFTER:
            lines = [*before, kind, *after]
            path.write_text("input: [6, 16]\nlayers:\n" + "".join(f"  - {line}\n" for line in lines))
            for batch in (1, 2, 3):
                result = check_saved(api.load_graph(path), batch=batch)
                assert result.ok, (lines, batch, [(r.name, r.analytic, r.measured) for r in result.mismatches()])


def test_recurrent_figures_by_hand(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text("input: [6, 16]\nlayers:\n  - {rnn: {hidden: 8}}\n  - relu\n  - linear: 2\n")
    rows = {r.name: r.measured for r in check_saved(api.load_graph(path), batch=2).rows}
    assert rows["relu1"] == rows["linear1"] == 2 * 6 * 8 * 4  # relu's output, and the linear's copy of it
    path.write_text("input: [6, 16]\nlayers:\n  - linear: 16\n  - {lstm: {hidden: 8}}\n  - gelu\n")
    rows = {r.name: r.measured for r in check_saved(api.load_graph(path), batch=2).rows}
    assert rows["gelu1"] == 0  # the LSTM's output: oneDNN's saved last-layer output, counted there
    path.write_text("input: [6, 16]\nlayers:\n  - linear: 16\n  - relu\n  - {gru: {hidden: 8, bidirectional: true}}\n")
    one = check_saved(api.load_graph(path), batch=1)
    two = check_saved(api.load_graph(path), batch=2)
    assert one.ok and two.ok
    # at a batch of 2 each direction copies relu's [6, 16] time-major; at a batch of 1 both view it
    gru1, gru2 = ({r.name: r.measured for r in c.rows}["gru1"] for c in (one, two))
    assert gru2 - 2 * gru1 == 2 * 2 * 6 * 16 * 4


@pytest.mark.parametrize("size, window, extra", [(7, 7, ""), (2, 7, ""), (4, 4, ", shift: 2"), (8, 4, ""),
                                                 (7, 7, ", attention_dropout: 0.1, dropout: 0.1")])
def test_window_attention_with_one_window_in_all(tmp_path, size, window, extra):
    # A batch of 1 and one window (Swin's last stage): k^T and v are views of qkv's whole output,
    # as with one head; with several windows or examples, copies.
    path = tmp_path / "spec.yaml"
    path.write_text(f"input: [{size}, {size}, 16]\nlayers:\n  - linear: 16\n"
                    f"  - {{name: w, window_attention: {{heads: 2, window: {window}{extra}}}}}\n  - linear: 2\n")
    for batch in (1, 2):
        result = check_saved(api.load_graph(path), batch=batch)
        assert result.ok, [(r.name, r.analytic, r.measured, r.tensors) for r in result.mismatches()]
    if size <= window:
        one = {r.name: r for r in check_saved(api.load_graph(path), batch=1).rows}["w"]
        qkv = window * window * 3 * 16 * 4  # qkv's output [M*M (padded), 3C], whole
        assert (qkv, "float32") in {(n, d) for _, d, n in one.tensors}


MATMUL_CASES = [("[3, 4, 6]", "[1, 6, 5]"), ("[1, 4, 6]", "[3, 6, 5]"), ("[2, 1, 4, 6]", "[1, 3, 6, 5]"),
                ("[2, 3, 4, 6]", "[1, 1, 6, 5]"), ("[1, 1, 4, 6]", "[2, 3, 6, 5]")]


@pytest.mark.parametrize("first, second", MATMUL_CASES)
@pytest.mark.parametrize("param", [False, True], ids=["activation", "parameter"])
def test_matmul_broadcast_copies_only_where_the_fold_is_no_view(tmp_path, first, second, param):
    # at::matmul expands broadcast leading dims and folds them into bmm's batch: a copy where that
    # is no view (an activation at a batch of 2 or more), none where it is (a batch of 1; a
    # parameter's stride-0 batch when its own leading dims are all 1) - then a parameter with
    # leading dims > 1 is copied at a batch of 2 (it has no batch dim of its own).
    second_layer = (f"{{name: y, parameter: {{shape: {second}}}, from: x}}" if param
                    else "{name: y, linear: 5, from: z}")
    path = tmp_path / "spec.yaml"
    path.write_text(f"inputs:\n  x: {first}\n  z: {second}\nlayers:\n  - {{name: k, linear: 6, from: x}}\n"
                    f"  - {second_layer}\n  - {{name: mm, matmul, from: [k, y]}}\n"
                    "  - {name: mm2, matmul, from: [x, y]}\n  - {name: o, add, from: [mm, mm2]}\n"
                    "  - {name: o2, linear: 2, from: o}\n")
    for batch in (1, 2, 3):
        result = check_saved(api.load_graph(path), batch=batch)
        assert result.ok, (batch, [(r.name, r.analytic, r.measured, r.why()) for r in result.mismatches()])
    if (first, second, param) == ("[1, 4, 6]", "[3, 6, 5]", True):  # by hand, batch 3
        mm = {r.name: r.measured for r in result.rows}["mm"]
        assert mm == 3 * 3 * (4 * 6 + 6 * 5) * 4  # k expanded [9, 4, 6] and the parameter's [9, 6, 5]


BIAS_INPUT = """\
inputs:
  x: [8, 16]
  bias: [2, 8, 8]
layers:
  - {name: l, linear: 16, from: x}
  - {name: a, attention: {heads: 2}, from: [l, bias]}
  - {name: a1, attention: {heads: 2, causal: true}, from: [a, bias]}
  - {name: a2, attention: {heads: 2, window: 3, causal: true}, from: [a1, bias]}
  - {name: a3, attention: {heads: 2, dropout: 0.1}, from: [a2, bias]}
  - {name: a4, attention: {heads: 2, rotary: true}, from: [a3, bias]}
  - {name: s, scale: {}, from: bias}
  - {name: a5, attention: {heads: 2, causal: true}, from: [a4, s]}
  - {name: o, linear: 2, from: a5}
"""


def test_a_score_bias_that_needs_no_gradient_keeps_the_flash_kernel(tmp_path):
    # A score bias given as a network input (a padding mask) needs no gradient: SDPA runs the CPU
    # flash kernel with it as attn_mask and keeps it; only a learned bias (scale) takes the math
    # kernel (and masked_fill's bool mask).
    path = tmp_path / "spec.yaml"
    path.write_text(BIAS_INPUT)
    for batch in (1, 2):
        result = check_saved(api.load_graph(path), batch=batch)
        assert result.ok, [(r.name, r.analytic, r.measured, r.why()) for r in result.mismatches()]
    a = {r.name: r.measured for r in result.rows}["a"]  # batch 2, float32, H = 2, T = 8, d = 8
    # l's output [8, 16]; q, k, v, the output [2, 8, 8] each; logsumexp [2, 8]; the bias [2, 8, 8]
    assert a == 2 * 4 * (8 * 16 + 4 * 2 * 8 * 8 + 2 * 8 + 2 * 8 * 8) == 6272


def _checkpointed_peak(graph, batch):
    """The most bytes autograd holds at once for one training step with torch.utils.checkpoint
    (reentrant: a block's inputs kept, its layers recomputed whole in its backward) around each
    segment archcalc checkpoints: every saved storage (parameters and buffers apart) counted
    from its pack to the release of the last holder, measured with saved_tensors_hooks through
    the forward and the backward pass. A scalar that needs a gradient goes into each checkpoint
    so that a block on the network input still records its weights' gradients (not counted)."""
    from torch.utils.checkpoint import checkpoint

    from archcalc.analysis.memory import checkpoint_segments, saved_bytes
    from archcalc.analysis.walk import analyze_graph
    from archcalc.torch.build import build, example_inputs, layer_module

    report = analyze_graph(graph, batch=batch)
    shapes = dict(graph.input_shapes)
    shapes.update((row.name, tuple(row.output_shape)) for row in report.layers)
    owner = checkpoint_segments(graph, saved_bytes(graph, shapes, batch, 4))
    torch.manual_seed(0)
    model = build(graph).train()
    xs = example_inputs(graph, batch=batch, generator=torch.Generator().manual_seed(0))
    dummy = torch.zeros((), requires_grad=True)
    state = {t.untyped_storage().data_ptr() for t in [*model.parameters(), *model.buffers(), dummy]}
    live, now = {}, [0, 0]  # storage -> [holders, bytes]; bytes now, the peak

    class Held:
        def __init__(self, t, key):
            self.t, self.key = t, key
            if key is not None:
                if key not in live:
                    live[key] = [0, key[1]]
                    now[0] += key[1]
                    now[1] = max(now)
                live[key][0] += 1

        def __del__(self):
            if self.key is not None:
                live[self.key][0] -= 1
                if not live[self.key][0]:
                    now[0] -= live.pop(self.key)[1]

    def pack(t):
        s = t.untyped_storage() if t.layout == torch.strided else None
        counted = s is not None and s.nbytes() and s.data_ptr() not in state
        return Held(t, (s.data_ptr(), s.nbytes()) if counted else None)

    users = {}
    for n in graph.nodes:
        for i in n.inputs:
            users.setdefault(i, set()).add(n.name)
    values = dict(zip(model.input_names, xs))
    nodes, last = graph.nodes, graph.nodes[-1].name
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda held: held.t):
        i = 0
        while i < len(nodes):
            inst = owner.get(nodes[i].name)
            j = i + 1
            while inst is not None and j < len(nodes) and owner.get(nodes[j].name) == inst:
                j += 1
            group = nodes[i:j]
            names = {n.name for n in group}
            ext = list(dict.fromkeys(x for n in group for x in n.inputs if x not in names))
            outs = [n.name for n in group if users.get(n.name, set()) - names or n.name == last]

            def run(_, *args, group=group, ext=ext, outs=outs):
                v = dict(zip(ext, args))
                for n in group:
                    v[n.name] = layer_module(model, n.name)(*(v[x] for x in n.inputs))
                return tuple(v[o] for o in outs)

            got = (checkpoint(run, dummy, *(values[x] for x in ext), use_reentrant=True) if inst is not None
                   else run(None, *(values[x] for x in ext)))
            values.update(zip(outs, got))
            i = j
        values[last].float().sum().backward()
    return now[1]


CHECKPOINTED = """\
input: [4, 6, 6]
blocks:
  res:
    args: {c: 4}
    layers:
      - {name: conv1, conv: {out: c, kernel: 3, padding: 1}}
      - {name: bn, batchnorm: {}}
      - gelu
      - {add: {}, from: [gelu1, input]}
layers:
  - {name: b0, res: {c: 4}}
  - {name: b1, res: {c: 4}}
  - {name: mid, conv: {out: 4, kernel: 1}}
  - {name: b2, res: {c: 4}, repeat: 2}
  - {name: fz, res: {c: 4}, trainable: false}
  - {name: skip, add, from: [fz, b1]}
  - flatten
  - linear: 2
"""


@pytest.mark.parametrize("name", ["CHECKPOINTED", "zoo/resnet18", "zoo/mobilenet_v2", "zoo/densenet121",
                                  "transformers/gpt2_small", "transformers/whisper_tiny"])
def test_checkpointing_peak_matches_torch_utils_checkpoint(tmp_path, name):
    # A block on the network input, an outside conv between blocks, a frozen block, a residual
    # across blocks, a head on a block's output; torchvision's networks at 64 x 64 (MobileNetV2's
    # and DenseNet's `features` split into their blocks). The old formula (block outputs instead of
    # inputs, the largest block's first-saved bytes on top) was off by 6 to 25 %.
    from archcalc.analysis.memory import plan_memory
    from archcalc.analysis.walk import analyze_graph

    if name == "CHECKPOINTED":
        path = tmp_path / "spec.yaml"
        path.write_text(CHECKPOINTED)
        graph = api.load_graph(path)
    elif name.startswith("zoo/"):
        graph = api.load_graph(SPECS / f"{name}.yaml", input_shape=(3, 64, 64))
    else:  # token ids into the first block (8 B each); an encoder-decoder's two inputs
        graph = _load(name)
    for batch in (1, 2):
        plan = plan_memory(graph, analyze_graph(graph, batch=batch), checkpointing=True)
        assert plan.get("training", "activations_checkpointed") == _checkpointed_peak(graph, batch)
    if name == "zoo/resnet18":
        assert _checkpointed_peak(graph, 2) == 2_397_696  # measured (the old formula: 2,446,848)


@pytest.mark.slow
def test_random_specs_save_what_pytorch_saves():
    # The random networks of test_random_specs.py (convs, pools, norms, activations, dropout,
    # residual adds, concats, gates, blocks, 1-3 axes); 1,100 drawn in a longer hunt were all exact.
    from hypothesis import HealthCheck, given, settings

    import archcalc
    from test_random_specs import random_specs

    @settings(max_examples=100, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(random_specs())
    def check(text):
        result = check_saved(archcalc.parse_spec(text, "random.yaml"))
        assert result.ok, ([(r.name, r.analytic, r.measured) for r in result.mismatches()], text)

    check()


CHAIN_KINDS = ["relu", "gelu", "softmax", "sigmoid", "tanh", "silu", "identity", "layernorm", "batchnorm",
               "groupnorm: 1", "dropout: 0.3", "{scale: {dim: -1}}", "multiply_by: 2", "flatten", "maxpool: 1",
               "avgpool: 1", "upsample: 2", "zeropad: 1", "{conv: {out: 2, kernel: 1}}", "prelu"]


def _random_chain(rng):
    """A chain of views (permute, select, split, reshape, flatten), elementwise kinds, norms,
    convs, linears and merges with earlier tensors, on [C, H, W] after a 1x1 conv."""
    import archcalc

    shape = [rng.choice([2, 3, 4]), rng.choice([3, 4, 5]), rng.choice([4, 6])]
    lines, shapes = [f"{{name: n0, conv: {{out: {shape[0]}, kernel: 1}}}}"], [tuple(shape)]
    for i in range(1, rng.randint(4, 12)):
        s, r = shapes[-1], len(shapes[-1])
        pick = rng.randrange(len(CHAIN_KINDS) + 8)
        if pick < len(CHAIN_KINDS):
            entry = CHAIN_KINDS[pick]
        elif pick == len(CHAIN_KINDS):
            entry = f"{{linear: {rng.randint(2, 5)}}}"
        elif pick == len(CHAIN_KINDS) + 1:
            dims = list(range(r))
            rng.shuffle(dims)
            entry = f"{{permute: {dims}}}"
        elif pick == len(CHAIN_KINDS) + 2 and r > 1:
            entry = f"{{select: {{dim: {rng.randrange(r)}, index: 0}}}}"
        elif pick == len(CHAIN_KINDS) + 3:
            d = rng.randrange(r)
            entry = f"{{split: {{sizes: 1, dim: {d}, index: {rng.randrange(s[d])}}}}}"
        elif pick == len(CHAIN_KINDS) + 4:
            entry = f"{{roll: {{shifts: [1], dims: [{rng.randrange(r)}]}}}}"
        elif pick == len(CHAIN_KINDS) + 5:
            entry = f"{{reshape: [{s[0]}, -1]}}" if r > 1 and rng.random() < 0.5 else "{reshape: [-1]}"
        else:
            same = [j for j, t in enumerate(shapes) if t == s]
            kind = rng.choice(["add", "multiply", "concat: 0"])
            entry = f"{{{kind}, from: [n{len(shapes) - 1}, n{rng.choice(same)}]}}"
        body = entry[1:-1] if entry.startswith("{") else entry if ":" in entry else entry + ": {}"
        lines.append(f"{{name: n{i}, {body}}}")
        text = f"input: {shape}\nlayers:\n" + "".join(f"  - {line}\n" for line in lines)
        try:
            report = archcalc.analyze_text(text)
        except archcalc.SpecError:
            lines.pop()
            continue
        if max(max(row.output_shape) for row in report.layers) > 64:
            lines.pop()
            continue
        shapes.append(tuple(report.layers[-1].output_shape))
    return f"input: {shape}\nlayers:\n" + "".join(f"  - {line}\n" for line in lines)


@pytest.mark.slow
def test_random_chains_of_views_and_norms_save_what_pytorch_saves():
    import random

    import archcalc

    rng = random.Random(15)
    for _ in range(300):
        text = _random_chain(rng)
        result = check_saved(archcalc.parse_spec(text, "chain.yaml"))
        assert result.ok, ([(r.name, r.kind, r.analytic, r.measured, r.tensors) for r in result.mismatches()], text)


def test_verify_memory_cli(tmp_path, monkeypatch):
    path = tmp_path / "spec.yaml"
    path.write_text(_spec("[3, 8, 8]", ["relu", "{conv: {out: 4, kernel: 3}}"]))
    ok = runner.invoke(app, ["verify", "--memory", str(path)])
    assert ok.exit_code == 0, ok.output
    assert "saved tensors match PyTorch" in ok.stdout and "relu1" in ok.stdout
    quiet = runner.invoke(app, ["verify", "--memory", "--quiet", str(path)])
    total = 2 * 4 * (3 * 64 + 4 * 64)  # conv1's input, relu's output
    assert quiet.exit_code == 0 and f"analytic {total:,} B; measured {total:,} B" in quiet.stdout
    data = api_json(runner.invoke(app, ["verify", "--memory", "--json", str(path)]).stdout)
    assert data["ok"] and data["measured_bytes"] == data["analytic_bytes"] == total
    # A kind declaring too little is a mismatch: exit 1, the layers named. ReLU's output [4, 8, 8]
    # is then counted for the conv after it, which saves it too: the totals agree, the layers not.
    monkeypatch.setattr(type(KINDS["relu"]), "saved_tensors", lambda self, a, shapes, out: [])
    bad = runner.invoke(app, ["verify", "--memory", "--quiet", str(path)])
    assert bad.exit_code == 1
    assert "MISMATCH relu1.saved_bytes: analytic 0, measured 2,048" in bad.stdout
    assert "MISMATCH conv2.saved_bytes: analytic 2,048, measured 0" in bad.stdout
    table = runner.invoke(app, ["verify", "--memory", str(path)])
    assert table.exit_code == 1 and "2 mismatch(es)" in table.stdout
    wrong = runner.invoke(app, ["verify", "--memory", "--device", "meta", str(path)])
    assert wrong.exit_code == 2 and "error: verify --memory measures on the CPU" in wrong.stderr
    assert "Traceback" not in wrong.output


def test_verify_memory_refuses_what_it_cannot_measure(tmp_path):
    # A symbolic spec, a model too large for the CPU: one error line each, exit 2, nothing allocated.
    symbolic = runner.invoke(app, ["verify", "--memory", str(SPECS / "homework" / "conv_pool_fc.yaml")])
    assert symbolic.exit_code == 2 and "--set" in symbolic.stderr and "Traceback" not in symbolic.output
    huge = tmp_path / "huge.yaml"
    huge.write_text("input: [3, 100000, 100000]\nlayers:\n  - conv: {out: 4, kernel: 3}\n")
    result = runner.invoke(app, ["verify", "--memory", str(huge)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "huge.yaml:1:8: error: verify --memory would need about" in result.stderr


def api_json(text):
    import json

    return json.loads(text)
