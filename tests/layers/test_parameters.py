"""Free and frozen parameters, by hand: `trainable: false` on entries and block instances (counted
non-trainable in rows, totals, JSON, explain and the memory plan), and its mistakes refused where
they are written."""
import json

import pytest
from typer.testing import CliRunner

import archcalc
from archcalc.analysis.memory import plan_memory
from archcalc.cli import app
from archcalc.explain import explain
from layer_helpers import analyze, spec, spec_error

runner = CliRunner()


def rows(report):
    return {row.name: (row.trainable_params, row.non_trainable_params) for row in report.layers}


# --- trainable: false -------------------------------------------------------------------------------

def test_a_frozen_embedding_counts_its_table_non_trainable():
    r = analyze({"tokens": [8]}, "{embedding: {num: 100, dim: 16}, trainable: false}", "linear: 10")
    assert rows(r) == {"embedding1": (0, 100 * 16), "linear1": (16 * 10 + 10, 0)}
    assert (r.totals.trainable_params, r.totals.non_trainable_params) == (170, 1600)
    assert r.totals.params == 1770


def test_whispers_fixed_position_table_is_a_frozen_learned_table():
    # Whisper-tiny's encoder: 1500 positions of width 384, held as a parameter without gradient.
    r = analyze([1500, 384], "{positional: {num: 1500}, trainable: false}")
    assert rows(r) == {"positional1": (0, 1500 * 384)}


def test_a_frozen_batchnorm_has_its_scale_and_shift_non_trainable_too():
    r = analyze([8, 5, 5], "{batchnorm: {}, trainable: false}", "batchnorm")
    # 2C scale/shift + 2C running statistics, all non-trainable; the second stays 2C + 2C.
    assert rows(r) == {"batchnorm1": (0, 4 * 8), "batchnorm2": (2 * 8, 2 * 8)}


def test_trainable_true_is_the_default():
    assert rows(analyze([4], "{linear: 3, trainable: true}")) == rows(analyze([4], "linear: 3"))


BLOCK = """
input: [16]
blocks:
  mlp:
    args: {d: 16, train: true}
    layers:
      - linear: d
      - {layernorm: {}, trainable: train}
layers:
  - {mlp: {}, trainable: false, repeat: 3}
  - mlp: {train: false}
  - {name: head, linear: 2}
"""


def test_a_frozen_block_instance_freezes_every_layer_inside_every_copy():
    r = archcalc.analyze_text(BLOCK)
    lin, ln = 16 * 16 + 16, 2 * 16
    frozen = {n: v for n, v in rows(r).items() if n.startswith("mlp1.")}
    assert len(frozen) == 6
    assert all(v in ((0, lin), (0, ln)) for v in frozen.values()), frozen
    # The block argument `train: false` stands for trainable: false on the layernorm only.
    assert rows(r)["mlp2.linear1"] == (lin, 0) and rows(r)["mlp2.layernorm1"] == (0, ln)
    assert rows(r)["head"] == (16 * 2 + 2, 0)
    assert r.totals.trainable_params == lin + 34
    assert r.totals.non_trainable_params == 3 * (lin + ln) + ln


def test_trainable_true_inside_a_frozen_instance_stays_frozen():
    text = BLOCK.replace("- {mlp: {}, trainable: false, repeat: 3}", "- {mlp: {train: true}, trainable: false}")
    r = archcalc.analyze_text(text)
    assert rows(r)["mlp1.layernorm1"] == (0, 32)


def test_folded_rows_are_frozen_when_every_part_is():
    folded = {row["name"]: row for row in archcalc.analyze_text(BLOCK).to_json(depth=1)["folded"]}
    assert folded["mlp1"]["trainable"] is False and folded["mlp1"]["non_trainable_params"] == 3 * (272 + 32)
    assert "trainable" not in folded["mlp2"]  # its linear trains, its layernorm does not
    assert (folded["mlp2"]["trainable_params"], folded["mlp2"]["non_trainable_params"]) == (272, 32)


def test_json_marks_frozen_layers_and_splits_the_totals():
    r = analyze({"tokens": [8]}, "{embedding: {num: 100, dim: 16}, trainable: false}", "linear: 10")
    data = r.to_json()
    assert data["layers"][0]["trainable"] is False
    assert data["layers"][0]["trainable_params"] == 0 and data["layers"][0]["non_trainable_params"] == 1600
    assert "trainable" not in data["layers"][1]
    assert (data["totals"]["trainable_params"], data["totals"]["non_trainable_params"]) == (170, 1600)


def test_the_table_says_which_layers_are_frozen(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(spec({"tokens": [8]}, "{embedding: {num: 100, dim: 16}, trainable: false}", "linear: 10"))
    out = runner.invoke(app, ["analyze", str(path)]).output
    assert "trainable 170, non-trainable 1,600" in out
    assert "1 frozen layer(s) (trainable: false: embedding1)" in out
    data = json.loads(runner.invoke(app, ["analyze", str(path), "--json"]).output)
    assert data["totals"]["non_trainable_params"] == 1600


def test_explain_gives_a_frozen_layer_all_its_parameters_as_non_trainable():
    graph = archcalc.parse_spec(spec([8, 5, 5], "{batchnorm: {}, trainable: false}",
                                     "{conv: {out: 4, kernel: 3}, trainable: false}"))
    steps = {(e.name, s.figure): s for e in explain(graph) for s in e.steps}
    assert steps[("batchnorm1", "params")].result == 32
    assert steps[("batchnorm1", "params")].substituted == "2*8 + 2*8"
    assert steps[("batchnorm1", "trainable")].result == 0
    assert steps[("batchnorm1", "non-trainable")].result == 32
    conv = 3 * 3 * 8 * 4 + 4
    assert steps[("conv1", "trainable")].result == 0 and steps[("conv1", "non-trainable")].result == conv


def test_memory_gives_gradients_and_optimizer_states_to_trainable_parameters_only():
    text = spec({"tokens": [8]}, "{embedding: {num: 100, dim: 16}, trainable: false}", "linear: 10")
    graph = archcalc.parse_spec(text)
    plan = plan_memory(graph, archcalc.analyze_text(text), optimizer="adam")
    assert (plan.params, plan.trainable_params) == (1770, 170)
    assert plan.get("training", "weights") == 4 * 1770
    assert plan.get("training", "gradients") == 4 * 170
    assert plan.get("training", "optimizer_states") == 2 * 4 * 170
    assert plan.get("training", "model_states") == (4 + 4 + 8) * 170 + 4 * 1600
    half = plan_memory(graph, archcalc.analyze_text(text, dtype="bfloat16"), optimizer="adamw")
    assert half.get("training", "master_weights") == 4 * 170  # fp32 copies of trainable weights only


TIED = """
input: {tokens: [6]}
layers:
  - {name: embed, embedding: {num: 50, dim: 8, tie: head}%s}
  - {name: head, linear: {out: 50, bias: false}%s}
"""


def test_tied_frozen_weights_count_once_on_the_non_trainable_side():
    r = archcalc.analyze_text(TIED % (", trainable: false", ", trainable: false"))
    assert (r.totals.trainable_params, r.totals.non_trainable_params) == (0, 50 * 8)


@pytest.mark.parametrize("first, second", [(", trainable: false", ""), ("", ", trainable: false")])
def test_a_weight_cannot_be_frozen_in_one_tied_layer_only(first, second):
    with pytest.raises(archcalc.SpecError) as info:
        archcalc.analyze_text(TIED % (first, second))
    err = info.value
    assert "a shared weight is trainable in both or in neither" in err.message
    assert (err.loc.line, err.layer) == (4, "embed")  # where the tie is written


# --- mistakes: one located line, exit 2 --------------------------------------------------------------

@pytest.mark.parametrize("value, message", [
    ("3", "'trainable' must be true or false, got 3"),
    ("yes", "'trainable' must be true or false, got 'yes' (yes/no/on/off are read as words"),
    ("'false'", "'trainable' must be true or false, got 'false'"),
    ("", "'trainable' must be true or false, got None"),
    ("[false]", "'trainable' must be true or false, got [False]"),
])
def test_a_trainable_value_that_is_no_boolean_is_refused_where_written(tmp_path, value, message):
    path = tmp_path / "bad.yaml"
    path.write_text(f"input: [4]\nlayers:\n  - relu\n  - linear: 3\n    trainable: {value}\n")
    result = runner.invoke(app, ["analyze", str(path)])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith(f"{path}:5:16: error: " if value else f"{path}:5:"), lines[0]
    assert message in lines[0] and "layer 'linear1'" in lines[0]
    assert "Traceback" not in result.output


def test_trainable_among_the_arguments_is_refused_with_a_hint():
    err = spec_error([4], "linear: {out: 3, trainable: false}")
    assert "linear has no argument 'trainable'" in err.message
    assert "'trainable' and 'bare' go beside the kind" in err.message
    err = spec_error([4], "{linear: 3, trainable: 3}")
    assert err.loc.line == 3


def test_trainable_inside_a_block_call_is_refused_with_a_hint():
    text = "input: [4]\nblocks:\n  b: {layers: [relu]}\nlayers:\n  - b: {trainable: false}\n"
    with pytest.raises(archcalc.SpecError) as info:
        archcalc.analyze_text(text)
    assert "block 'b' has no argument 'trainable'" in info.value.message
    assert "go beside the block" in info.value.message
    assert info.value.loc.line == 5


# --- scale: a learned vector along one dimension (layer scale) ---------------------------------------

def test_scale_is_one_gamma_per_channel_of_an_image():
    conv, ls = analyze([8, 7, 7], "conv: {out: 96, kernel: 3, padding: 1}", "{name: ls, scale: 1.0e-6}").layers
    assert ls.output_shape == (96, 7, 7)
    assert (ls.trainable_params, ls.non_trainable_params, ls.macs) == (96, 0, 0)
    assert ls.rf == conv.rf  # elementwise: the field passes unchanged


def test_scale_along_the_features_of_a_sequence():
    # CaiT / DeiT-III layer scale on [T, D] = [197, 384]: D learned values.
    row = analyze([197, 384], "scale: {dim: -1, init: 0.1}").layers[0]
    assert (row.output_shape, row.params, row.macs) == ((197, 384), 384, 0)
    assert analyze([197, 384], "scale: {dim: 1}").layers[0].params == 384
    assert analyze([197, 384], "scale").layers[0].params == 197  # dim 0 by default, as prelu and batchnorm


def test_scale_macs_are_zero_for_any_batch():
    assert analyze([16, 4, 4], "scale", batch=8).totals.macs == 0


def test_scale_dimension_out_of_range_is_refused_at_the_argument():
    err = spec_error([16, 4, 4], "scale: {dim: 3}")
    assert "'dim' is 3 but the input has 3 dimensions" in err.message
    assert (err.loc.line, err.loc.col) == (3, 18)  # the 3


@pytest.mark.parametrize("entry, message", [
    ("scale: {init: true}", "scale argument 'init' must be a number, got True"),
    ("scale: {dim: 0.5}", "scale argument 'dim' must be an integer"),
    ("scale: {gamma: 1}", "scale has no argument 'gamma'"),
])
def test_scale_argument_mistakes(entry, message):
    assert message in spec_error([4, 3], entry).message


# --- parameter: a learned tensor of a given shape ----------------------------------------------------

def test_parameter_holds_a_learned_tensor_of_its_shape():
    # Swin-T's relative position bias table of stage 1: (2*7 - 1)^2 rows, 3 heads.
    row = analyze([96, 56, 56], "parameter: [169, 3]").layers[0]
    assert row.output_shape == (169, 3)
    assert (row.trainable_params, row.non_trainable_params, row.macs, row.rf) == (169 * 3, 0, 0, None)


def test_mambas_a_log_and_d_of_mamba_130m():
    # d_inner = 2 * 768, d_state = 16: A_log [1536, 16] and D [1536].
    r = analyze([1536, 64], "{name: A_log, parameter: {shape: [1536, 16], init: ones}, from: input}",
                "{name: D, parameter: {shape: [1536], init: ones}, from: input}")
    assert {row.name: row.params for row in r.layers} == {"A_log": 24576, "D": 1536}
    assert r.totals.params == 26112


def test_parameter_reads_only_the_batch_size_of_token_ids():
    r = analyze({"tokens": [6]}, "{name: bias, parameter: [6, 4]}", "linear: 3", batch=5)
    assert r.layers[0].output_shape == (6, 4)
    assert r.layers[1].macs == 5 * 6 * 4 * 3  # its output holds real values: a linear may read it
    err = spec_error({"tokens": [6]}, "parameter: [6]", "embedding: {num: 4, dim: 2}")
    assert "embedding reads integer token ids, but its input holds real values" in err.message


def test_a_frozen_parameter_is_non_trainable():
    row = analyze([4], "{parameter: {shape: [448, 384], init: normal}, trainable: false}").layers[0]
    assert (row.trainable_params, row.non_trainable_params) == (0, 448 * 384)


def test_parameter_output_is_a_view_kept_by_nobody_for_backward():
    text = spec([4, 5], "{name: p, parameter: [4, 5]}", "{add: {}, from: [input, p]}", "relu")
    plan = plan_memory(archcalc.parse_spec(text), archcalc.analyze_text(text))
    # Only relu's output (20 values) is kept: the add keeps nothing, and the parameter's output is
    # its weight (archcalc verify --memory measures the same).
    assert plan.get("training", "activations") == 20 * 4
    text = spec([4, 5], "{name: p, parameter: [4, 5]}", "{multiply: {}, from: [input, p]}")
    plan = plan_memory(archcalc.parse_spec(text), archcalc.analyze_text(text))
    assert plan.get("training", "activations") == 20 * 4  # the input; p is a view of the weight


def test_explain_parameter_and_scale():
    graph = archcalc.parse_spec(spec([8, 3, 3], "parameter: {shape: [2, 3, 4], init: constant, value: 0.5}",
                                     "{scale: {dim: -1}, from: input}"))
    steps = {(e.name, s.figure): s for e in explain(graph) for s in e.steps}
    assert steps[("parameter1", "params")].substituted == "2*3*4"
    assert steps[("parameter1", "params")].result == 24
    assert steps[("parameter1", "output")].result == (2, 3, 4)
    assert steps[("parameter1", "macs")].result == 0
    assert steps[("scale1", "params")].formula == "W" and steps[("scale1", "params")].result == 3


@pytest.mark.parametrize("entry, at, message", [
    ("parameter: {shape: [4], init: constant}", "constant}", "init: constant needs 'value'"),
    ("parameter: {shape: [4], value: 2}", "2}", "'value' is the starting value of init: constant; init is zeros"),
    ("parameter: {shape: [4], init: ones, std: 0.1}", "0.1}", "'std' is the spread of init: normal; init is ones"),
    ("parameter: {shape: [4], init: normal, std: -1}", "-1}", "parameter argument 'std' must be a number >= 0"),
    ("parameter: {shape: [4, 0]}", "0]}", "parameter argument 'shape' must be a list of integers >= 1, got 0"),
    ("parameter: {shape: [4], init: random}", "random}", "parameter argument 'init' is 'random'"),
    ("parameter: {init: ones}", "{init: ones}", "parameter needs argument 'shape'"),
])
def test_parameter_mistakes_are_refused_at_the_argument(tmp_path, entry, at, message):
    path = tmp_path / "bad.yaml"
    path.write_text(spec([4], entry))
    result = runner.invoke(app, ["analyze", str(path)])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.output
    where = lines[0][len(str(path)) + 1:].split(": error: ")[0]
    line, col = (int(n) for n in where.split(":"))
    assert line == 3 and spec([4], entry).splitlines()[2][col - 1:] == at, lines[0]
