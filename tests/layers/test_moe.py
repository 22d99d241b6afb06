"""moe by hand: router + experts + shared experts, active parameters per token, MACs of dropless
routing, errors; the active figure in the totals, the table, JSON, explain, memory and --depth."""
import json

import pytest

import archcalc
from archcalc.geometry.receptive_field import GLOBAL
from layer_helpers import analyze, last, spec, spec_error

MIXTRAL_LIKE = "moe: {experts: 4, top_k: 2, hidden: 8}"
EVERYTHING = ("moe: {experts: 4, top_k: 1, hidden: 8, expert: mlp, bias: true, router_bias: true, "
              "renormalize: false, shared_experts: 2, shared_hidden: 3, shared_gate: true}")


def test_gated_experts_by_hand():
    row = last([5, 16], MIXTRAL_LIKE)
    # router D*E = 16*4 = 64; one gated expert 3*D*h = 3*16*8 = 384, four of them 1,536
    assert row.output_shape == (5, 16)
    assert (row.trainable_params, row.non_trainable_params) == (64 + 4 * 384, 0) == (1600, 0)
    assert row.active_params == 64 + 2 * 384 == 832  # the router and the top 2 experts
    # T*D*E + T*k*3*D*h = 5*16*4 + 5*2*384 = 320 + 3,840
    assert row.macs == 4160


def test_plain_experts_with_biases_shared_experts_and_their_gate_by_hand():
    row = last([5, 16], EVERYTHING)
    router = 16 * 4 + 4  # with its bias
    expert = 2 * 16 * 8 + 8 + 16  # up and down, with biases: 280
    shared = 2 * 16 * 6 + 6 + 16  # two shared experts of 3 as one FFN of 6 (DeepSeek's form): 214
    gate = 16  # sigmoid(x wg), D -> 1 without bias (Qwen2-MoE)
    assert row.params == router + 4 * expert + shared + gate == 1418
    assert row.active_params == router + 1 * expert + shared + gate == 578
    # router 5*16*4, one expert a token 5*2*16*8, shared 5*2*16*6, gate 5*16
    assert row.macs == 320 + 1280 + 960 + 80 == 2640


def test_shared_width_defaults_to_the_experts_width():
    row = last([3, 10], "moe: {experts: 6, top_k: 2, hidden: 4, shared_experts: 2}")
    assert row.params == 10 * 6 + 6 * 3 * 10 * 4 + 3 * 10 * 8
    assert row.active_params == 10 * 6 + 2 * 3 * 10 * 4 + 3 * 10 * 8
    assert row.macs == 3 * (10 * 6 + 2 * 3 * 10 * 4 + 3 * 10 * 8)


def test_every_expert_chosen_makes_every_parameter_active():
    row = last([2, 8], "moe: {experts: 3, top_k: 3, hidden: 4}")
    assert row.active_params == row.params == 8 * 3 + 3 * 3 * 8 * 4


@pytest.mark.parametrize("shape, positions", [([16], 1), ([5, 16], 5), ([2, 3, 16], 6)])
def test_any_leading_dimensions_are_positions(shape, positions):
    row = last(shape, MIXTRAL_LIKE)
    assert row.output_shape == tuple(shape)
    assert row.macs == positions * (16 * 4 + 2 * 3 * 16 * 8)


def test_field_follows_linear():
    # [C, L]: mixes the only spatial axis (global); [C, H, W]: not tracked; [F]: no spatial axes
    assert last([5, 16], MIXTRAL_LIKE).rf == GLOBAL
    assert last([2, 3, 16], MIXTRAL_LIKE).rf is None
    assert last([16], MIXTRAL_LIKE).rf is None


def test_a_network_without_experts_has_no_active_figure():
    report = analyze([5, 16], "linear: 8")
    assert report.layers[0].active_params is None and report.totals.active_params is None
    data = report.to_json()
    assert "active_params" not in data["totals"] and "active_params" not in data["layers"][0]


def test_totals_json_and_table_footer():
    from archcalc.render import footer_lines, json_text

    report = analyze([5, 16], "linear: 16", MIXTRAL_LIKE, EVERYTHING)
    lin = 16 * 16 + 16
    assert report.totals.params == lin + 1600 + 1418
    assert report.totals.active_params == lin + 832 + 578
    data = json.loads(json_text(report))
    assert data["totals"]["active_params"] == lin + 832 + 578
    keys = list(data["totals"])
    assert keys.index("active_params") == keys.index("non_trainable_params") + 1
    assert [row.get("active_params") for row in data["layers"]] == [None, 832, 578]
    lines = footer_lines(report)
    assert lines[1] == ("active params per token 1,682 (1.68 k): all 3,290 but the routed experts a token is not "
                        "sent to (2 layer(s) with experts: moe1, moe2)")


def test_frozen_and_tied_parameters_still_add_up():
    text = spec({"tokens": [6]}, "{name: emb, embedding: {num: 10, dim: 8, tie: head}}",
                "{moe: {experts: 4, top_k: 1, hidden: 4}, trainable: false}",
                "{name: head, linear: {out: 10, bias: false}}")
    report = archcalc.analyze_text(text)
    moe = report.layer("moe1")
    assert (moe.trainable_params, moe.non_trainable_params) == (0, 8 * 4 + 4 * 96)
    assert moe.active_params == 8 * 4 + 96
    t = report.totals
    assert t.params == 80 + 8 * 4 + 4 * 96  # the tied table once
    assert t.active_params == t.params - 3 * 96 == 80 + 32 + 96
    assert t.trainable_params == 80 and t.non_trainable_params == 416


def test_folded_groups_add_active_parameters():
    text = """
input: [4, 8]
blocks:
  b:
    layers:
      - linear: 8
      - moe: {experts: 2, top_k: 1, hidden: 4}
layers:
  - {b: {}, repeat: 2}
  - linear: 3
"""
    report = archcalc.analyze_text(text)
    rows = {row.name: row for row in report.folded(1)}
    lin, moe, active = 72, 8 * 2 + 2 * 96, 8 * 2 + 96
    assert rows["b1"].params == 2 * (lin + moe) and rows["b1"].active_params == 2 * (lin + active)
    assert rows["linear1"].active_params is None
    folded = report.to_json(depth=1)["folded"]
    assert folded[0]["active_params"] == 2 * (lin + active) and "active_params" not in folded[1]
    assert report.totals.active_params == 2 * (lin + active) + 27


def test_symbolic_positions():
    text = "input: [T, 16]\nlayers:\n  - " + MIXTRAL_LIKE + "\n"
    report = archcalc.analyze_text(text)
    row = report.layers[0]
    assert row.active_params == 832 and report.totals.active_params == 832
    assert str(row.macs) == "832*T"  # 16*4 + 2*3*16*8 MACs a position


def test_explain_gives_the_active_step():
    from archcalc.explain import explain, text

    [e] = explain(archcalc.parse_spec(spec([5, 16], EVERYTHING)))
    steps = {s.figure: s for s in e.steps}
    assert steps["params"].result == 1418 and steps["active"].result == 578 and steps["macs"].result == 2640
    assert steps["active"].formula == "D*E + E + k*(2*D*h + h + D) + (2*D*hs + hs + D) + D"
    assert steps["active"].substituted == "16*4 + 4 + 1*(2*16*8 + 8 + 16) + (2*16*6 + 6 + 16) + 16"
    assert steps["macs"].formula == "T*D*E + T*k*2*D*h + T*2*D*hs + T*D"
    assert "active = D*E + E + k*(2*D*h + h + D)" in text([e])


def test_memory_gives_active_parameters_and_keeps_every_expert_in_the_weights():
    from archcalc.analysis.memory import plan_memory

    graph = archcalc.parse_spec(spec([5, 16], MIXTRAL_LIKE))
    plan = plan_memory(graph, archcalc.analyze(graph))
    assert plan.get("inference", "weights") == 4 * 1600  # all four experts are held
    assert plan.get("cost", "active_params") == 832
    assert plan.get("cost", "forward_per_token") == 2 * 4160 // 5  # MACs of the routed experts only
    data = plan.to_json()
    assert data["active_params"] == 832 and data["cost"]["active_params"] == 832
    assert any("each token uses 832 of the 1,600 parameters" in note for note in plan.notes)
    dense = plan_memory(archcalc.parse_spec(spec([5, 16], "linear: 8")),
                        archcalc.analyze(archcalc.parse_spec(spec([5, 16], "linear: 8"))))
    assert "active_params" not in dense.to_json()


def test_the_command_line_shows_the_active_figure(tmp_path):
    from typer.testing import CliRunner

    from archcalc.cli import app

    path = tmp_path / "moe.yaml"
    path.write_text(spec([5, 16], MIXTRAL_LIKE))
    table = CliRunner().invoke(app, ["analyze", str(path)])
    assert table.exit_code == 0
    assert ("active params per token 832: all 1,600 but the routed experts a token is not sent to "
            "(1 layer(s) with experts: moe1)") in table.stdout
    as_json = json.loads(CliRunner().invoke(app, ["analyze", str(path), "--json"]).stdout)
    assert as_json["totals"]["active_params"] == 832
    memory = CliRunner().invoke(app, ["memory", str(path)])
    assert memory.exit_code == 0
    line = next(x for x in memory.stdout.splitlines() if "active params / token" in x)
    assert "832" in line and "all 1,600 params but the routed experts" in line
    dense = tmp_path / "dense.yaml"
    dense.write_text(spec([5, 16], "linear: 8"))
    assert "active" not in CliRunner().invoke(app, ["analyze", str(dense)]).stdout
    assert "active" not in CliRunner().invoke(app, ["memory", str(dense)]).stdout


@pytest.mark.parametrize("entry, message, arg", [
    ("moe: {experts: 2, top_k: 3, hidden: 4}", "top_k 3 is more than the 2 experts", "top_k"),
    ("moe: {experts: 2, top_k: 1, hidden: 4, shared_hidden: 3}", "shared_hidden applies to shared experts",
     "shared_hidden"),
    ("moe: {experts: 2, top_k: 1, hidden: 4, shared_gate: true}", "shared_gate applies to shared experts",
     "shared_gate"),
])
def test_inconsistent_arguments_are_located(entry, message, arg):
    err = spec_error([3, 8], entry)
    assert message in err.message
    assert err.loc.col == 5 + entry.index(arg) + 1 or err.loc.line == 3


@pytest.mark.parametrize("entry", ["moe: {experts: 2, hidden: 4}", "moe: {experts: 0, top_k: 1, hidden: 4}",
                                   "moe: {experts: 2, top_k: 1, hidden: 4, expert: swiglu}",
                                   "moe: {experts: 2, top_k: 1, hidden: 4, activation: tanh}",
                                   "moe: {experts: 2, top_k: 1}"])
def test_bad_arguments_are_refused(entry):
    spec_error([3, 8], entry)


def test_token_ids_must_be_embedded_first():
    assert "integer token ids" in spec_error({"tokens": [4]}, MIXTRAL_LIKE).message
