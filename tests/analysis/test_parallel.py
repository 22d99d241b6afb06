"""Parallel training plans (archcalc.analysis.parallel, `archcalc memory --gpus N ...`): the
published formulas (ZeRO, Korthikanti et al. 2022, Narayanan et al. 2021) reproduced, the spec
path's tensors counted by hand, and whole plans by hand (the CLI: tests/test_parallel_cli.py)."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

import archcalc
from archcalc import api
from archcalc.analysis import parallel as par

ROOT = Path(__file__).resolve().parents[2]
SPECS = ROOT / "specs" / "transformers"


def _model(name: str, dtype: str = "bfloat16") -> par.Model:
    graph = api.load_graph(SPECS / f"{name}.yaml")
    return par.describe(graph, api.analyze(graph, batch=1, dtype=dtype))


# --- ZeRO (Rajbhandari et al. 2020) ---------------------------------------------------------------

def test_zero_figure_1_of_the_paper():
    """Figure 1: Psi = 7.5B, N_d = 64, K = 12: 120 GB, 31.4 GB, 16.6 GB, 1.9 GB per device."""
    psi, n = 7_500_000_000, 64
    totals = [par.zero_model_states(psi, n, stage)["total"] for stage in (0, 1, 2, 3)]
    assert totals == [120 * 10**9, 31_406_250_000, 16_640_625_000, 1_875_000_000]
    assert [round(x / 1e9, 1) for x in totals] == [120.0, 31.4, 16.6, 1.9]


@pytest.mark.parametrize("psi, n", [(7_500_000_000, 64), (1_000_000, 8), (175 * 10**9, 1024), (6_400, 3)])
def test_zero_stage_formulas(psi, n):
    """16 Psi; 4 Psi + 12 Psi / N; 2 Psi + 14 Psi / N; 16 Psi / N (a shard rounded up to whole params)."""
    shard = -(-psi // n)
    assert par.zero_model_states(psi, n, 0)["total"] == 16 * psi
    assert par.zero_model_states(psi, n, 1)["total"] == 4 * psi + 12 * shard
    assert par.zero_model_states(psi, n, 2)["total"] == 2 * psi + 14 * shard
    assert par.zero_model_states(psi, n, 3)["total"] == 16 * shard
    if psi % n == 0:
        assert par.zero_model_states(psi, n, 1)["total"] == 4 * psi + Fraction(12 * psi, n)


# --- activations (Korthikanti et al. 2022, Table 2 and section 4) ----------------------------------

# Their Table 3 models (a, h, s, t): 22B, 175B (GPT-3), 530B (MT-NLG), 1T; and small odd ones.
SHAPES = [(64, 6144, 2048, 8), (96, 12288, 2048, 8), (128, 20480, 2048, 8), (160, 25600, 2048, 8),
          (12, 768, 1024, 4), (16, 1024, 512, 2)]


@pytest.mark.parametrize("a, h, s, t", SHAPES)
@pytest.mark.parametrize("b", [1, 4])
def test_korthikanti_per_layer_formulas(a, h, s, t, b):
    layer = par.gpt_layer(s, h, a)
    sbh = s * b * h

    def act(**kw):
        return par.layer_activation_bytes(layer, s, b, 2, **kw)

    assert act() == sbh * (34 + Fraction(5 * a * s, h))  # eq. 1, no parallelism
    assert act(t=t) == sbh * (10 + Fraction(24, t) + Fraction(5 * a * s, h * t))  # eq. 2, tensor parallel
    assert act(t=t, sp=True) == sbh * (Fraction(34, t) + Fraction(5 * a * s, h * t))  # eq. 4, + sequence parallel
    assert act(t=t, recompute="selective") == sbh * (10 + Fraction(24, t))  # Table 2
    assert act(t=t, sp=True, recompute="selective") == sbh * Fraction(34, t)  # eq. 6
    assert act(recompute="full") == 2 * sbh  # Table 2, full recomputation
    assert act(t=t, sp=True, recompute="full") == Fraction(2 * sbh, t)


GPT_WITH_DROPOUT = """
name: gpt_dropout
input: {tokens: [S]}
vars: {S: 256, d: 512, heads: 8}
blocks:
  layer:
    layers:
      - {name: ln_1, layernorm: {}}
      - {name: attn, attention: {heads: heads, causal: true, dropout: 0.1}}
      - {name: drop_1, dropout: 0.1}
      - {name: res_1, add: {}, from: [input, drop_1]}
      - {name: ln_2, layernorm: {}}
      - {name: fc, linear: 4 * d}
      - {name: act, gelu: {}}
      - {name: proj, linear: d}
      - {name: drop_2, dropout: 0.1}
      - {name: res_2, add: {}, from: [res_1, drop_2]}
layers:
  - {name: wte, embedding: {num: 1000, dim: d}}
  - {name: h, layer: {}, repeat: 4}
  - {name: ln_f, layernorm: {}}
  - {name: head, linear: {out: 1000, bias: false}}
"""


def test_a_spec_of_their_layer_keeps_exactly_their_tensors(tmp_path):
    """Their GPT layer written as a spec (attention dropout, two dropouts, 4h GeLU MLP): the spec
    path counts the tensors of their section 4.1, so every row of their Table 2 follows."""
    path = tmp_path / "gpt.yaml"
    path.write_text(GPT_WITH_DROPOUT)
    graph = api.load_graph(path)
    model = par.describe(graph, api.analyze(graph, batch=1, dtype="bfloat16"))
    assert (model.seq, model.width, model.heads, model.layers, model.vocab) == (256, 512, 8, 4, 1000)
    assert model.layer == par.gpt_layer(256, 512, 8)
    s, b, h, a, t = 256, 2, 512, 8, 4
    one = par.layer_activation_bytes(model.layer, s, b, 2, t=t, sp=True)
    assert one == s * b * h * (Fraction(34, t) + Fraction(5 * a * s, h * t))


def test_gpt3_spec_has_no_dropout_so_no_masks():
    """GPT-3's bundled spec has no dropout layers: per token 4h whole elements (two norm inputs, the
    QKV and fc inputs), 12h split (Q, K, V, the output projection's input, GeLU's input and output),
    a x s softmax outputs: sbh(8 + 24/t + 2as/(ht)) in bf16, the paper's 34 less its masks and
    attention-dropout output (docs/memory.md)."""
    m = _model("gpt3_175b")
    h, a, s = 12288, 96, 2048
    assert m.layer == par.LayerTensors(h, 4 * h, 0, 12 * h, 0, a * s, 0)
    expected = s * h * (8 + Fraction(24, 8) + Fraction(2 * a * s, h * 8))
    assert par.layer_activation_bytes(m.layer, s, 1, 2, t=8) == expected


def test_llama2_70b_layer_by_hand():
    """Llama 2 70B: RMSNorm, grouped-query attention (64 heads, 8 key/value heads of 128), SwiGLU
    of 28672: whole 4h (two norm inputs, the attention and the gate/up input, shared), split
    Q h + K h/8 + V h/8 + out h + 4 x 28672 (gate out, SiLU out, up out, the product)."""
    m = _model("llama2_70b")
    h, f = 8192, 28672
    assert (m.seq, m.width, m.heads, m.kv_heads, m.head_dim, m.layers, m.vocab) == (4096, h, 64, 8, 128, 80, 32000)
    assert m.layer == par.LayerTensors(h, 4 * h, 0, h + 1024 + 1024 + h + 4 * f, 0, 64 * 4096, 0)
    # parameters per tensor-parallel rank of 8: the projections and MLP split, the two norms whole
    assert m.layer_params.at(8) == (h * h + 2 * h * 1024 + h * h + 3 * h * f) // 8 + 2 * h
    assert m.first.at(8) == 32000 // 8 * h and m.last.at(8) == h + 32000 // 8 * h
    assert m.logits == 32000  # fp32 logits per token for the loss


DENSE = ["bert_base", "gpt2_small", "gpt3_175b", "llama2_70b", "llama_7b", "qwen2_0_5b", "t5_small_encoder",
         "vit_b16"]


@pytest.mark.parametrize("name", DENSE)
def test_every_dense_bundled_spec_plans_and_its_ranks_hold_every_parameter(name):
    """On one GPU the plan holds archcalc's own parameter count; over t tensor-parallel ranks the
    split parameters are dealt out once and the whole ones (norms, row-parallel biases) t times."""
    m = _model(name, "float32")
    total = archcalc.analyze(SPECS / f"{name}.yaml").totals.trainable_params
    assert par.plan_parallel(m, par.Config(1, global_batch=1), dtype="float32").get("params") == total
    t = 2
    assert m.heads % t == 0 and m.kv_heads % t == 0
    for part in (m.layer_params, m.first, m.last):
        if part.vocab_rows % t == 0 and part.split % t == 0:
            assert t * part.at(t) - (t - 1) * part.whole == part.at(1)
    c = par.Config(8, tp=t, pp=1, zero=1, sequence_parallel=True, recompute="selective", global_batch=8)
    plan = par.plan_parallel(m, c, dtype="bfloat16")
    assert 0 < plan.get("total") < par.plan_parallel(m, par.Config(4, global_batch=4), dtype="bfloat16").get("total")


@pytest.mark.parametrize("name, message", [
    ("mamba_130m", "parallel plans need transformer layers"),
    ("mixtral_8x7b", "has moe"),
    ("t5_small", "one kind of transformer layer repeated"),
    ("whisper_tiny", "one kind of transformer layer repeated"),
])
def test_other_bundled_specs_are_refused_by_name(name, message):
    with pytest.raises(archcalc.SpecError, match=message):
        _model(name)


def test_a_classifier_keeps_one_row_of_logits_per_sequence():
    """ViT-B/16 classifies its class token: 1,000 logits per image of 197 tokens, not per token."""
    m = _model("vit_b16", "float32")
    assert (m.seq, m.width, m.heads, m.layers) == (197, 768, 12, 12)
    assert m.logits == Fraction(1000, 197)


# --- pipeline (Narayanan et al. 2021) --------------------------------------------------------------

@pytest.mark.parametrize("p, m, v", [(2, 8, 1), (8, 64, 1), (4, 16, 2), (8, 128, 4), (1, 7, 1)])
def test_bubble(p, m, v):
    assert par.bubble_fraction(p, m, v) == Fraction(p - 1, m * v)


def test_first_stage_holds_p_micro_batches():
    """1F1B: p micro-batches of L/p layers = L layers; interleaved L (1 + (p - 1)/(p v))."""
    assert par.in_flight_layers(80, 8, 64) == 80
    assert par.in_flight_layers(80, 8, 4) == 40  # only m = 4 micro-batches exist
    assert par.in_flight_layers(80, 4, 64, 2) == 80 * (1 + Fraction(3, 8))
    assert par.in_flight_layers(96, 8, 64, 3) == 96 * (1 + Fraction(7, 24))


# --- a published run ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name, gpu_hours, low, high", [("llama_7b", 184_320, 0.38, 0.40),
                                                        ("llama2_70b", 1_720_320, 0.42, 0.44)])
def test_llama2_gpu_hours_imply_about_forty_percent_mfu(name, gpu_hours, low, high):
    """Llama 2 (Touvron et al. 2023b, table 2): 184,320 and 1,720,320 A100-80GB hours for 2T
    tokens; 6 x params x tokens / (hours x 3600 x 312 TFLOP/s) with archcalc's parameter counts."""
    params = archcalc.analyze(SPECS / f"{name}.yaml").totals.params
    mfu = par.implied_mfu(6 * params * 2 * 10**12, gpu_hours, 312e12)
    assert low < mfu < high
    assert mfu == pytest.approx(6 * params * 2e12 / (gpu_hours * 3600 * 312e12), rel=1e-12)
    text = " ".join((ROOT / "docs" / "memory.md").read_text().split())
    assert f"{gpu_hours:,}" in text and f"**{mfu:.3f}**" in text  # docs/memory.md shows this figure


# --- a whole plan ----------------------------------------------------------------------------------

def test_llama2_70b_plan_on_64_gpus_by_hand():
    m = _model("llama2_70b")
    c = par.Config(64, tp=8, pp=2, zero=1, sequence_parallel=True, recompute="selective", micro_batch=1,
                   global_batch=1024)
    plan = par.plan_parallel(m, c, dtype="bfloat16", gpu="h100-sxm", tokens=2 * 10**12)
    h, f, s, L, t, p, d = 8192, 28672, 4096, 80, 8, 2, 4
    layer = (2 * h * h + 2 * h * 1024 + 3 * h * f) // t + 2 * h
    first = L // p * layer + 32000 // t * h
    assert plan.stage == "first"
    assert plan.get("params") == first
    assert plan.get("weights") == 2 * first and plan.get("gradients") == 2 * first
    assert plan.get("optimizer_states") == 12 * -(-first // d)
    # selective + sequence parallel: 40 layers x 2 micro-batches in flight x s b h (8 + 32.5) / t
    per_token = Fraction(2 * 4 * h + 2 * (2 * h + 2048 + 4 * f), t)
    assert plan.get("activations") == s * 80 * per_token
    assert plan.get("micro_batches") == 256 and plan.get("bubble") == 1 / 256
    macs = archcalc.analyze(SPECS / "llama2_70b.yaml").totals.macs
    score = 2 * s * s * h * L  # q k^T and attention x V, every layer
    executed = 6 * macs * 1024 + 2 * score * 1024
    assert plan.get("model_flops") == 6 * macs * 1024
    assert plan.get("step_time") == pytest.approx(executed / (64 * 989.5e12 * 0.4) * (1 + 1 / 256), rel=1e-12)
    assert plan.get("mfu") == pytest.approx(6 * macs * 1024 / (plan.get("step_time") * 64 * 989.5e12), rel=1e-12)
    assert plan.get("steps") == 2 * 10**12 / (1024 * s)
    # communication per GPU per step
    dp = next(i.value for i in plan.communication if i.key == "dp")
    tp = next(i.value for i in plan.communication if i.key == "tp")
    pp = next(i.value for i in plan.communication if i.key == "pp")
    assert dp == -(-2 * (d - 1) * 2 * first // d)
    assert tp == 4 * 2 * (t - 1) * s * h * 2 * 40 * 256 // t
    assert pp == 2 * s * h * 2 * 256 // t


def test_zero3_gathers_and_communicates_more():
    m = _model("llama2_70b")
    base = dict(tp=8, pp=1, micro_batch=1, global_batch=64, sequence_parallel=True)
    two = par.plan_parallel(m, par.Config(64, zero=2, **base))
    three = par.plan_parallel(m, par.Config(64, zero=3, **base))
    params, d = two.get("params"), 8
    assert three.get("weights") == 2 * -(-params // d)
    assert three.get("zero3_gathered") == 2 * m.layer_params.at(8)
    dp2 = next(i.value for i in two.communication if i.key == "dp")
    dp3 = next(i.value for i in three.communication if i.key == "dp")
    assert dp2 == -(-2 * 7 * 2 * params // 8) and dp3 == -(-3 * 7 * 2 * params // 8)


def test_tied_output_layer_is_copied_on_the_last_stage():
    m = _model("gpt3_175b")
    one = par.plan_parallel(m, par.Config(8, tp=8, global_batch=8))
    two = par.plan_parallel(m, par.Config(16, tp=8, pp=2, global_batch=8))
    emb = -(-50257 // 8) * 12288
    assert m.tied.at(8) == emb
    assert one.get("params") == 96 * m.layer_params.at(8) + emb + 2048 * 12288 + 2 * 12288
    assert next(i.value for i in two.communication if i.key == "tied_embedding") == 2 * emb


def test_fit_lists_only_what_fits_best_first():
    m = _model("llama2_70b")
    limit = 80 * 2**30
    plans = par.fit(m, 64, 1024, limit, dtype="bfloat16", gpu="h100-sxm")
    assert plans and all(pl.get("total") <= limit for pl in plans)
    steps = [pl.get("step_time") for pl in plans]
    assert steps == sorted(steps)
    configs = {(pl.config.tp, pl.config.pp, pl.config.zero, pl.config.recompute) for pl in plans}
    assert (1, 1, 0, "none") not in configs  # 16 B x 69B params is 1.1 TB on one GPU
    for pl in plans:
        assert 8 % pl.config.tp == 0  # divides the 8 key/value heads
        assert 80 % pl.config.pp == 0
    # a configuration outside the list does not fit
    c = par.Config(64, tp=1, pp=1, zero=1, micro_batch=1, global_batch=1024)
    assert par.plan_parallel(m, c, dtype="bfloat16").get("total") > limit


def test_fit_holds_given_dimensions_fixed_and_lists_every_fitting_one():
    m = _model("llama2_70b")
    limit = 80 * 2**30
    plans = par.fit(m, 64, 1024, limit, dtype="bfloat16", fixed={"tp": 4, "recompute": "selective"})
    assert plans and {(pl.config.tp, pl.config.recompute) for pl in plans} == {(4, "selective")}
    listed = {pl.config for pl in plans}
    # every configuration of those dimensions that fits is listed, and no other
    for pp in (1, 2, 4, 8, 16):
        for zero in (0, 1, 2, 3):
            for sp in (False, True):
                c = par.Config(64, 4, pp, zero, sp, "selective", 1, 1024)
                fits = par.plan_parallel(m, c, dtype="bfloat16").get("total") <= limit
                assert (c in listed) == fits, c
    with pytest.raises(archcalc.SpecError, match="must divide the heads"):
        par.fit(m, 48, 1024, limit, fixed={"tp": 3})


def test_parse_size():
    assert par.parse_size("80GiB") == 80 * 2**30
    assert par.parse_size("141 GB") == 141 * 10**9
    assert par.parse_size("1.5TiB") == 3 * 2**39



@pytest.mark.parametrize("text", ["1e99999999", "1e999GiB", "1" * 5000, "1." + "5" * 5000 + "GiB"])
def test_parse_size_refuses_a_huge_text_at_once(text):
    # Fraction('1e99999999') builds 10**99999999 before the 1e18 check (1e9999999 took 5 s); 5,000
    # digits were int()'s ValueError (Python's 4,300-digit limit), a traceback from --gpu-memory
    with pytest.raises(archcalc.SpecError, match="--gpu-memory"):
        par.parse_size(text)


def test_parse_size_keeps_exponents_and_its_range():
    assert par.parse_size("141e9") == 141 * 10**9
    assert par.parse_size("1e18") == 10**18
    with pytest.raises(archcalc.SpecError, match="from 1 B to 1e18 B"):
        par.parse_size("2e18")
