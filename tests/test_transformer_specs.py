"""The bundled transformer and sequence specs: published totals, hand formulas, and the same
architectures as implemented by Hugging Face transformers (built on the meta device: parameter
counts, parameter shapes and FlopCounterMode MACs of a forward pass, no memory used)."""
from collections import Counter
from pathlib import Path

import pytest

import archcalc

SPECS = Path(__file__).resolve().parent.parent / "specs"

# Published parameter counts: torchvision (ViT-B/16), Hugging Face model cards and papers.
PARAMS = {
    "transformers/vit_b16.yaml": 86_567_656,
    "transformers/gpt2_small.yaml": 124_439_808,
    "transformers/bert_base.yaml": 109_482_240,
    "transformers/llama_7b.yaml": 6_738_415_616,
    "transformers/llama2_70b.yaml": 68_976_648_192,
    "transformers/gpt3_175b.yaml": 174_604_259_328,
    "transformers/qwen2_0_5b.yaml": 494_032_768,
    "sequence/lstm_lm.yaml": 19_780_400,
    "sequence/tcn.yaml": 66_510,
}


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_published_parameter_counts(name):
    assert archcalc.analyze(SPECS / name).totals.params == PARAMS[name]


def test_vit_b16_macs_are_torchvisions_17_56_gflops():
    t, d, mlp = 197, 768, 3072  # tokens: 14*14 patches + the class token
    patch = 196 * 768 * (3 * 16 * 16)
    block = 4 * t * d * d + 2 * t * t * d + 2 * t * d * mlp  # projections, attention, MLP
    head = 768 * 1000
    assert archcalc.analyze(SPECS / "transformers/vit_b16.yaml").totals.macs == patch + 12 * block + head
    assert patch + 12 * block + head == 17_563_828_224


def test_gpt3_by_the_papers_formula():
    # Kaplan et al.: N = 12 * layers * d^2 (non-embedding, without biases and norms)
    r = archcalc.analyze(SPECS / "transformers/gpt3_175b.yaml")
    d, layers = 12288, 96
    embeddings = 50257 * d + 2048 * d
    small = layers * 13 * d + 2 * d  # biases and layer norms: 4d + d + 4d + d + 2d + 2d per block, final norm
    assert r.totals.params == 12 * layers * d * d + embeddings + small


def test_lstm_lm_by_hand():
    r = archcalc.analyze(SPECS / "sequence/lstm_lm.yaml")
    lstm_layer = 4 * 650 * (650 + 650) + 2 * 4 * 650  # 4 gates, two bias vectors
    assert r.layer("rnn").trainable_params == 2 * lstm_layer
    assert r.layer("rnn").macs == 35 * 2 * 4 * 650 * (650 + 650)  # per step, times 35 steps


def test_tcn_receptive_field_covers_the_sequence():
    r = archcalc.analyze(SPECS / "sequence/tcn.yaml")
    assert r.layer("block_7.relu").rf.size == (1 + 2 * 6 * (1 + 2 + 4 + 8 + 16 + 32 + 64 + 128),)


# --- Hugging Face's implementations ----------------------------------------------------------------

def _hf(name):
    transformers = pytest.importorskip("transformers")
    torch = pytest.importorskip("torch")
    c = transformers
    configs = {
        "gpt2_small": (c.GPT2LMHeadModel, c.GPT2Config()),
        "gpt3_175b": (c.GPT2LMHeadModel, c.GPT2Config(n_embd=12288, n_layer=96, n_head=96, n_positions=2048,
                                                      activation_function="gelu")),
        "bert_base": (c.BertModel, c.BertConfig()),
        "llama_7b": (c.LlamaForCausalLM, c.LlamaConfig(vocab_size=32000, hidden_size=4096, intermediate_size=11008,
                                                       num_hidden_layers=32, num_attention_heads=32)),
        "llama2_70b": (c.LlamaForCausalLM, c.LlamaConfig(vocab_size=32000, hidden_size=8192, intermediate_size=28672,
                                                         num_hidden_layers=80, num_attention_heads=64,
                                                         num_key_value_heads=8)),
        "qwen2_0_5b": (c.Qwen2ForCausalLM, c.Qwen2Config(vocab_size=151936, hidden_size=896, intermediate_size=4864,
                                                         num_hidden_layers=24, num_attention_heads=14,
                                                         num_key_value_heads=2, tie_word_embeddings=True,
                                                         rope_theta=1e6)),
    }
    cls, config = configs[name]
    with torch.device("meta"):
        return cls(config).eval()


@pytest.mark.parametrize("name", ["gpt2_small", "gpt3_175b", "bert_base", "llama_7b", "llama2_70b", "qwen2_0_5b"])
@pytest.mark.slow
def test_same_parameters_as_hugging_face(name):
    """Same total; for LLaMA, whose projections Hugging Face keeps apart as archcalc does, also the
    same multiset of parameter shapes (a transposed or misplaced matrix would show). GPT-2 fuses
    q, k, v into one [D, 3D] matrix, so only the totals compare there."""
    from archcalc.torch import build

    model = _hf(name)
    ours = build(archcalc.load_spec(SPECS / f"transformers/{name}.yaml"), device="meta")
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in model.parameters())
    if name.startswith(("llama", "qwen2")):
        assert Counter(tuple(p.shape) for p in ours.parameters()) == Counter(tuple(p.shape) for p in model.parameters())


@pytest.mark.parametrize("name, tokens", [("gpt2_small", 1024), ("bert_base", 512), ("llama2_70b", 4096),
                                          ("qwen2_0_5b", 2048)])
@pytest.mark.slow
def test_same_macs_as_hugging_face(name, tokens):
    """FlopCounterMode on Hugging Face's forward pass (meta device) counts what the analysis does."""
    import torch

    from archcalc.torch.verify import flop_counter

    model = _hf(name)
    x = torch.zeros(1, tokens, dtype=torch.long, device="meta")
    counter = flop_counter()
    with torch.no_grad(), counter:
        model(x, token_type_ids=x) if name == "bert_base" else model(x)
    assert archcalc.analyze(SPECS / f"transformers/{name}.yaml").totals.macs == counter.get_total_flops() // 2


@pytest.mark.parametrize("name", ["llama_7b", "llama2_70b", "gpt3_175b"])
@pytest.mark.slow
def test_large_specs_verify_on_the_meta_device(name):
    pytest.importorskip("torch")
    from archcalc.torch.verify import verify

    result = verify(archcalc.load_spec(SPECS / f"transformers/{name}.yaml"), device="meta")
    assert result.ok, result.mismatches()
