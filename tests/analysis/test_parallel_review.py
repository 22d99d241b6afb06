"""Parallel plans (archcalc.analysis.parallel): frozen parameters, full recomputation's FLOPs and
ZeRO-3's gathered module, each checked against a hand computation or the one-GPU memory plan
(archcalc.analysis.memory), an independent implementation of the same model states."""
from __future__ import annotations

from pathlib import Path

import pytest

import archcalc
from archcalc import api
from archcalc.analysis import parallel as par
from archcalc.analysis.memory import plan_memory

ROOT = Path(__file__).resolve().parents[2]
SPECS = ROOT / "specs" / "transformers"
LLAMA_7B = (SPECS / "llama_7b.yaml").read_text()
H, F, V, S, LAYERS = 4096, 11008, 32000, 2048, 32
LAYER = 4 * H * H + 3 * H * F + 2 * H  # q, k, v, o; gate, up, down; two RMSNorm weights


def _spec(tmp_path, text, name="spec.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def _model(path, dtype="bfloat16"):
    graph = api.load_graph(path)
    return par.describe(graph, api.analyze(graph, batch=1, dtype=dtype))


def _frozen_embedding(tmp_path):
    text = LLAMA_7B.replace("embedding: {num: vocab, dim: d}}", "embedding: {num: vocab, dim: d}, trainable: false}")
    assert text != LLAMA_7B
    return _spec(tmp_path, text)


def test_a_frozen_embedding_holds_weights_only_once(tmp_path):
    """A frozen token embedding is 2 B x 32000 x 4096 of weights and nothing else; it was counted as
    trainable (gradients, Adam) and again as a buffer. On one GPU the model states equal the one-GPU
    memory plan's (weights for every parameter, gradients and states for the trainable ones)."""
    path = _frozen_embedding(tmp_path)
    plan = par.plan_parallel(_model(path), par.Config(1, global_batch=1), dtype="bfloat16")
    trainable = LAYERS * LAYER + H + V * H  # the layers, the final norm, the output layer
    assert plan.get("params") == trainable
    assert plan.get("frozen_weights") == 2 * V * H
    assert "buffers" not in [i.key for i in plan.memory]
    states = sum(plan.get(k) for k in ("weights", "gradients", "optimizer_states", "frozen_weights"))
    assert states == 16 * trainable + 2 * V * H
    graph = api.load_graph(path)
    one_gpu = plan_memory(graph, api.analyze(graph, batch=1, dtype="bfloat16"))
    assert states == one_gpu.get("training", "model_states")


def test_a_frozen_embedding_is_split_over_the_vocabulary_on_the_first_stage(tmp_path):
    model = _model(_frozen_embedding(tmp_path))
    plan = par.plan_parallel(model, par.Config(16, tp=4, pp=2, global_batch=16), dtype="bfloat16")
    assert plan.stage == "first"
    assert plan.get("frozen_weights") == 2 * (V // 4) * H
    assert plan.get("params") == 16 * ((LAYER - 2 * H) // 4 + 2 * H)
    # the last stage holds no frozen weight: its total is the trainable states and activations alone
    last = par.plan_parallel(model, par.Config(16, tp=4, pp=2, global_batch=16), dtype="bfloat16").stages["last"]
    untouched = par.plan_parallel(_model(SPECS / "llama_7b.yaml"), par.Config(16, tp=4, pp=2, global_batch=16),
                                  dtype="bfloat16").stages["last"]
    assert last == untouched


def test_frozen_layers_split_over_tensor_and_pipeline_ranks_and_zero3_shards_them(tmp_path):
    """Every layer frozen (a fine-tuned head only): per GPU L/p layers of (projections / t + norms),
    2 B each, sharded over d by ZeRO-3, gathered for the forward and the backward (2 (d - 1)/d each)."""
    text = LLAMA_7B.replace("llama_block: {}, repeat: depth}", "llama_block: {}, repeat: depth, trainable: false}")
    assert text != LLAMA_7B
    model = _model(_spec(tmp_path, text))
    t, p, d = 4, 2, 2
    plan = par.plan_parallel(model, par.Config(16, tp=t, pp=p, zero=3, global_batch=16), dtype="bfloat16")
    per_rank = (LAYER - 2 * H) // t + 2 * H
    frozen = LAYERS // p * per_rank
    assert plan.stage == "first"
    assert plan.get("params") == V // t * H  # the embedding is all the first stage trains
    assert plan.get("frozen_weights") == 2 * frozen // d
    assert plan.get("zero3_gathered") == 2 * per_rank
    dp = next(i.value for i in plan.communication if i.key == "dp")
    assert dp == 3 * 2 * (V // t * H) * (d - 1) // d + 2 * 2 * frozen * (d - 1) // d


def test_layers_frozen_in_some_instances_only_are_refused(tmp_path):
    text = LLAMA_7B.replace("  - {name: layers, llama_block: {}, repeat: depth}",
                            "  - {name: frozen, llama_block: {}, repeat: 2, trainable: false}\n"
                            "  - {name: layers, llama_block: {}, repeat: 30}")
    assert text != LLAMA_7B
    with pytest.raises(archcalc.SpecError, match="frozen or trainable alike"):
        _model(_spec(tmp_path, text))


def test_full_recomputation_runs_the_layers_again_not_the_head():
    """Narayanan et al. 2021's count: the layers' forward twice, the output layer's once. By hand per
    layer and sequence: 4 h^2 s projections + 3 h f s MLP + 2 s^2 h attention core MACs."""
    model = _model(SPECS / "llama_7b.yaml")
    plan = par.plan_parallel(model, par.Config(8, tp=8, recompute="full", global_batch=8), dtype="bfloat16")
    layer_macs = 4 * H * H * S + 3 * H * F * S + 2 * S * S * H
    assert plan.get("recompute_flops") == 2 * LAYERS * layer_macs * 8
    assert plan.get("model_flops") == 6 * (LAYERS * layer_macs + S * H * V) * 8


def test_the_worked_examples_tensor_parallel_claims():
    """docs/memory.md (Llama-2-70B on 64 H100s, 80 GiB): keeping the scores fits only with t = 8;
    t = 1, 2, 4 recompute; t = 1 recomputes fully and needs ZeRO except with a 16-stage pipeline."""
    model = _model(SPECS / "llama2_70b.yaml")
    plans = par.fit(model, 64, 1024, 80 * 2**30, dtype="bfloat16", peak_tflops=989.5)
    configs = [pl.config for pl in plans]
    assert {c.tp for c in configs if c.recompute == "none"} == {8}
    assert {c.recompute for c in configs if c.tp == 1} == {"full"}
    assert {c.pp for c in configs if c.tp == 1 and c.zero == 0} == {16}
    assert 16 * model.layer_params.at(1) * 80 > 10**12  # 1.1 TB of model states on one stage
    text = " ".join((ROOT / "docs" / "memory.md").read_text().split())
    assert "t = 1 needs full recomputation, and ZeRO unless a 16-stage pipeline" in text


def test_gpt3_model_flops_are_the_papers_formula_and_selective_reruns_the_core_forward():
    """Narayanan et al. 2021 / Korthikanti et al. 2022: model FLOPs per sequence = 72 s L h^2 (1 +
    s/(6h) + V/(12 h L)); archcalc's 6 x MACs of gpt3_175b is that exactly. Selective recomputation
    reruns the attention core's forward, 4 s^2 h per layer: s/(18h) of that, 0.90% for GPT-3 (the
    paper quotes 2.7%, s/(6h): the core's forward and backward; docs/memory.md says so)."""
    from fractions import Fraction

    model = _model(SPECS / "gpt3_175b.yaml")
    s, h, layers, v = 2048, 12288, 96, 50257
    paper = 72 * s * layers * h * h * (1 + Fraction(s, 6 * h) + Fraction(v, 12 * h * layers))
    assert 6 * model.macs == paper
    plan = par.plan_parallel(model, par.Config(8, tp=8, sequence_parallel=True, recompute="selective",
                                               global_batch=8))
    assert plan.get("recompute_flops") == 4 * s * s * h * layers * 8
    assert round(plan.get("recompute_flops") / plan.get("model_flops"), 4) == 0.0090
    assert round(float(Fraction(s, 6 * h) * 72 * s * layers * h * h / paper), 3) == 0.027
    text = " ".join((ROOT / "docs" / "memory.md").read_text().split())
    assert "0.90 % for GPT-3" in text and "2.7 %" in text


@pytest.mark.parametrize("over, whole, split", [("head", 2 * 128, 0), ("all", 0, 2 * H)])
def test_per_head_qk_norm_weights_stay_whole(tmp_path, over, whole, split):
    """Qwen3's q/k RMSNorm over each head: one weight of head_dim (128) for q and one for k, shared by
    every head, so whole on each tensor-parallel rank; OLMo-2's over the whole projection is split."""
    text = LLAMA_7B.replace("rotary: true, bias: false}", f"rotary: true, bias: false, qk_norm: rmsnorm, "
                                                          f"qk_norm_over: {over}}}")
    assert text != LLAMA_7B
    model = _model(_spec(tmp_path, text))
    t = 4
    assert model.layer_params.at(1) == LAYER + whole + split
    assert model.layer_params.at(t) == (LAYER - 2 * H + split) // t + 2 * H + whole


NARROW_MLP = """
name: narrow_mlp
input: {tokens: [128]}
vars: {d: 256}
blocks:
  layer:
    layers:
      - {name: ln_1, layernorm: {}}
      - {name: attn, attention: {heads: 4}}
      - {name: res_1, add: {}, from: [input, attn]}
      - {name: ln_2, layernorm: {}}
      - {name: fc, linear: d}
      - {name: act, gelu: {}}
      - {name: drop, dropout: 0.1}
      - {name: proj, linear: d}
      - {name: res_2, add: {}, from: [res_1, proj]}
layers:
  - {name: wte, embedding: {num: 1000, dim: d}}
  - {name: h, layer: {}, repeat: 2}
  - {name: head, linear: {out: 1000, bias: false}}
"""


def test_an_mlp_as_wide_as_the_layer_is_still_tensor_parallel(tmp_path):
    """f = h: fc is column parallel (its output, GeLU's input and the dropout's mask split over t,
    its bias too), proj row parallel (bias whole); the width alone (h) had put them outside the
    tensor-parallel region and fc's bias whole. Whole per token: 2 norm inputs, the attention's and
    fc's inputs (4h); split: Q, K, V, the output projection's input (4h), GeLU's input and proj's (2h)."""
    h = 256
    model = _model(_spec(tmp_path, NARROW_MLP))
    assert model.layer == par.LayerTensors(h, 4 * h, 0, 6 * h, h, 4 * 128, 0)  # a s softmax outputs
    attention = 4 * h * h + 4 * h  # q, k, v, out and their biases
    mlp = 2 * (h * h + h)
    norms = 2 * 2 * h
    t = 4
    assert model.layer_params.at(1) == attention + mlp + norms
    assert model.layer_params.at(t) == (attention - h + mlp - h) // t + h + h + norms


def test_zero3_gathers_the_embedding_where_it_is_larger_than_a_layer():
    """Qwen2-0.5B: a tied 151,936 x 896 embedding beside layers of 14.9M parameters; ZeRO-3 must hold
    ceil(V / t) x h of it whole while it runs."""
    model = _model(SPECS / "qwen2_0_5b.yaml")
    plan = par.plan_parallel(model, par.Config(16, tp=2, zero=3, global_batch=16), dtype="bfloat16")
    emb = -(-151936 // 2) * 896
    assert model.layer_params.at(2) < emb
    assert plan.get("zero3_gathered") == 2 * emb
