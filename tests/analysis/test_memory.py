"""Memory and cost planning: hand-computed figures (docs/memory.md)."""
import textwrap
from pathlib import Path

import pytest

import archcalc
from archcalc import api
from archcalc.analysis.memory import GPU_PEAK_TFLOPS, plan_memory
from archcalc.layers import KINDS

ROOT = Path(__file__).resolve().parents[2]
RESNET18 = ROOT / "specs" / "zoo" / "resnet18.yaml"
PT, PN = 11_689_512, 9_600  # torchvision's count; BatchNorm running statistics

# resnet18's saved tensors for one example, float32, by hand. A tensor two layers save counts once:
# - stem: conv1's input [3, 224, 224]; bn1's input [64, 112, 112]; the ReLU's output (the max
#   pool's input too) and the max pool's int64 indices [64, 56, 56];
# - each stage (C x S x S: 64 x 56, 128 x 28, 256 x 14, 512 x 7) keeps 9 tensors of C*S*S: its
#   input (the first stage's: the max pool output; later ones: counted in the stage before), and
#   per block conv1's output (bn1's input), relu's output (conv2's input), conv2's output (bn2's
#   input), the final relu's output (the next conv's input); the downsampling block's extra conv
#   output (its bn's input) takes the place of the stage input counted before;
# - fc's input: the flattened global average [512]; the pooling (a mean) keeps nothing.
RESNET18_SAVED = (4 * (3 * 224 * 224 + 2 * 64 * 112 * 112 + 9 * (200_704 + 100_352 + 50_176 + 25_088) + 512)
                  + 8 * 64 * 56 * 56)
assert RESNET18_SAVED == 22_179_840
# Batch norm's save_mean and save_invstd: one per channel for the whole batch, 20 layers, 4,800 channels.
RESNET18_BN_STATS = 2 * 4 * (64 + 4 * 64 + 5 * 128 + 5 * 256 + 5 * 512)


def plan(spec, batch=1, dtype="float32", input_shape=None, **options):
    graph = api.load_graph(spec, input_shape=input_shape)
    report = api.analyze(graph, batch=batch, dtype=dtype)
    return report, plan_memory(graph, report, **options)


@pytest.fixture
def write(tmp_path):
    def run(text):
        path = tmp_path / "spec.yaml"
        path.write_text(textwrap.dedent(text))
        return path

    return run


def test_resnet18_fp32_adam_is_16_bytes_per_trainable_param():
    report, p = plan(RESNET18)
    tr = {i.key: i.value for i in p.training}
    assert tr["weights"] == 4 * (PT + PN)
    assert tr["gradients"] == 4 * PT
    assert tr["optimizer_states"] == 2 * 4 * PT
    assert "master_weights" not in tr and not p.master_weights
    assert tr["model_states"] == 16 * PT + 4 * PN
    # Saved activations: what autograd keeps (measured equal by tests/torch/test_saved_measured.py).
    assert tr["activations"] == RESNET18_SAVED + RESNET18_BN_STATS
    assert tr["activations"] < sum(4 * n for n in _outputs(report)) == report.totals.activation_bytes
    assert tr["total"] == tr["model_states"] + tr["activations"]
    fmt = {i.key: i.formula for i in p.training}
    assert fmt["optimizer_states"] == "Adam: 2 x 4 B x 11,689,512 trainable params"


def _outputs(report):
    out = []
    for row in report.layers:
        n = 1
        for d in row.output_shape:
            n *= d
        out.append(n)
    return out


def test_batch_scales_activations_not_model_states():
    _, one = plan(RESNET18)
    _, eight = plan(RESNET18, batch=8)
    # batch norm's statistics are per channel, whatever the batch
    assert eight.get("training", "activations") == 8 * RESNET18_SAVED + RESNET18_BN_STATS
    assert eight.get("training", "model_states") == one.get("training", "model_states")
    assert eight.get("inference", "activations") == 8 * one.get("inference", "activations")


def test_bf16_adam_mixed_precision_is_16_bytes_per_param():
    _, p = plan(RESNET18, dtype="bfloat16")
    tr = {i.key: i.value for i in p.training}
    assert p.master_weights
    assert tr["weights"] == 2 * (PT + PN) and tr["gradients"] == 2 * PT
    assert tr["master_weights"] == 4 * PT and tr["optimizer_states"] == 8 * PT  # fp32 moments
    assert tr["model_states"] == 16 * PT + 2 * PN
    assert any("fp32 master" in note for note in p.notes)


def test_pure_half_precision_keeps_states_in_the_dtype():
    _, p = plan(RESNET18, dtype="float16", master_weights=False)
    assert p.get("training", "optimizer_states") == 2 * 2 * PT
    assert p.get("training", "model_states") == 8 * PT + 2 * PN
    with pytest.raises(archcalc.SpecError, match="half-precision"):
        plan(RESNET18, master_weights=True)


@pytest.mark.parametrize("optimizer, states", [("sgd", 0), ("momentum", 1), ("adam", 2), ("adamw", 2)])
def test_optimizer_states(optimizer, states):
    _, p = plan(RESNET18, optimizer=optimizer)
    assert p.get("training", "optimizer_states") == states * 4 * PT
    _, mixed = plan(RESNET18, dtype="bfloat16", optimizer=optimizer)
    assert mixed.get("training", "model_states") == (2 + 4 + 2 + 4 * states) * PT + 2 * PN


def test_inference_peak_is_the_largest_layer_input_plus_output():
    # resnet18: bn1 reads and writes [64, 112, 112]: 2 x 802,816 elements.
    _, p = plan(RESNET18, batch=2)
    assert p.get("inference", "activations") == 2 * 802_816 * 2 * 4
    assert p.get("inference", "weights") == 4 * (PT + PN)
    assert p.get("inference", "kv_cache") == 0
    assert p.get("inference", "total") == 4 * (PT + PN) + 2 * 802_816 * 2 * 4


CHAIN = """\
input: [16]
blocks:
  unit:
    layers:
      - linear: 16
      - relu
layers:
  - {unit: {}, repeat: 3}
  - linear: 2
"""


def test_checkpointing_by_hand(write):
    # Without: the first linear's input (16) and each relu's output (16, the next linear's input
    # too): 64 elements. With (torch.utils.checkpoint per unit): after the forward pass each unit
    # keeps its input (the network input, relu 1's and relu 2's outputs: 48) and the last linear
    # relu 3's output (16); recomputing unit 3 holds its three units' inputs (48) and relu 3's
    # output again (16, recomputed; the last linear's backward has freed the first copy): 64 both
    # times. With blocks this small, checkpointing saves nothing (measured in
    # tests/torch/test_saved_measured.py).
    _, p = plan(write(CHAIN), batch=4, checkpointing=True)
    assert p.get("training", "activations") == 64 * 4 * 4
    assert p.get("training", "activations_checkpointed") == 64 * 4 * 4
    assert p.get("training", "total") == p.get("training", "model_states") + 64 * 4 * 4


WRAPPED = """\
input: [16]
blocks:
  unit:
    layers:
      - linear: 16
      - relu
  features:
    layers:
      - {name: 0, unit: {}}
      - {name: 1, unit: {}, repeat: 2}
      - {name: head, linear: 16}
layers:
  - {name: features, features: {}}
  - linear: 2
"""


def test_checkpointing_splits_a_block_wrapping_the_network(write):
    # As torchvision writes its networks: one `features` block holds all but the last layer. Whole,
    # it would be one segment and save nothing; split into its three units. After the forward
    # pass: the units' inputs (the network input, two relu outputs: 48), features.head's input
    # (unit 3's relu output, 16) and the last linear's (head's output, 16) = 80, more than while
    # unit 3 is recomputed (48 + 16, the outside layers after it done). Without: the input, three
    # relu outputs and head's output, 16 each, 80 too.
    _, p = plan(write(WRAPPED), batch=1, checkpointing=True)
    assert p.get("training", "activations") == 5 * 16 * 4
    assert p.get("training", "activations_checkpointed") == (48 + 16 + 16) * 4


def test_checkpointing_saves_memory_on_resnet18():
    _, p = plan(RESNET18, checkpointing=True)
    assert p.get("training", "activations_checkpointed") < p.get("training", "activations")
    _, mlp = plan(ROOT / "specs" / "lecture" / "two_layer_mlp.yaml")
    assert mlp.get("training", "activations_checkpointed") == mlp.get("training", "activations")


def test_cost_and_training_time():
    report, p = plan(RESNET18, examples=1000, peak_tflops=100, utilization=0.5)
    fwd = 2 * 1_814_073_344
    cost = {i.key: i.value for i in p.cost}
    assert cost["forward_per_example"] == fwd and cost["training_per_example"] == 3 * fwd
    assert cost["training_total"] == 3 * fwd * 1000
    assert cost["training_time"] == pytest.approx(3 * fwd * 1000 / (100e12 * 0.5))
    assert "forward_per_token" not in cost  # not a token sequence


def test_gpu_table():
    _, p = plan(RESNET18, dtype="bfloat16", gpu="h100-sxm", examples=10)
    assert p.get("cost", "peak") == 989.5e12 and p.get("cost", "utilization") == 0.4
    assert set(GPU_PEAK_TFLOPS) == {"h100-sxm", "h100-pcie", "h200", "a100", "v100", "l4", "rtx4090"}
    with pytest.raises(archcalc.SpecError, match="no bfloat16 figure for v100"):
        plan(RESNET18, dtype="bfloat16", gpu="v100")


def test_bad_options():
    with pytest.raises(archcalc.SpecError, match="--tokens or --examples"):
        plan(RESNET18, tokens=1, examples=1)
    with pytest.raises(archcalc.SpecError, match="token sequence"):
        plan(RESNET18, tokens=1000)
    with pytest.raises(archcalc.SpecError, match="optimizer"):
        plan(RESNET18, optimizer="lion")
    with pytest.raises(archcalc.SpecError, match="numeric sizes"):
        plan(ROOT / "specs" / "homework" / "conv_pool_fc.yaml")


def test_layer_defaults():
    conv = KINDS["conv"]
    a = {"out": 8, "kernel": 3, "stride": 1, "padding": 1, "dilation": 1, "groups": 1, "bias": True,
         "padding_mode": "zeros"}
    assert conv.saved_for_backward(a, [(3, 8, 8)], (8, 8, 8)) == 192  # its input, 3 x 8 x 8
    assert conv.kv_cache(a, [(3, 8, 8)], (8, 8, 8)) == 0


DECODER = """\
input: [16, 32]
layers:
  - attention: {heads: 4, causal: true}
  - linear: 32
  - attention: {heads: 4, kv_heads: 2, causal: true}
  - attention: {heads: 4}
"""


@pytest.mark.skipif("attention" not in KINDS, reason="the attention kind has not landed yet")
def test_kv_cache_and_per_token_cost_of_a_decoder(write):
    # kv = 2 * T * kv_heads * head_dim per causal layer (head_dim = 32 / 4 = 8); none when not causal.
    report, p = plan(write(DECODER), batch=3, dtype="bfloat16", tokens=16 * 1000, peak_tflops=100)
    kv = 2 * 16 * 4 * 8 + 2 * 16 * 2 * 8
    assert p.get("inference", "kv_cache") == kv * 3 * 2
    fwd = 2 * report.totals.macs // 3
    assert p.get("cost", "forward_per_token") == pytest.approx(fwd / 16)
    assert p.get("cost", "training_total") == pytest.approx(3 * fwd * 1000)


@pytest.mark.skipif(not {"attention", "embedding", "rmsnorm"} <= set(KINDS), reason="decoder kinds not landed")
def test_docs_worked_example_7b(write):
    import re

    text = (ROOT / "docs" / "memory.md").read_text()
    spec = re.search(r"```yaml\n(name: llama2-7b.*?)```", text, re.S).group(1)
    report, p = plan(write(spec), dtype="bfloat16", checkpointing=True, tokens=2 * 10**12, gpu="h100-sxm")
    assert report.totals.trainable_params == 6_738_415_616
    assert p.get("training", "model_states") == 16 * 6_738_415_616 == 107_814_649_856
    data = p.to_json()
    for section in ("training", "cost"):
        for key, value in data[section].items():
            assert f'"{key}": {json_number(value)}' in text, key
    assert p.get("inference", "kv_cache") == 2 * 4096 * 32 * 128 * 32 * 2


def json_number(value):
    import json

    return json.dumps(value)
