"""specs/transformers/mamba_130m.yaml against Hugging Face's MambaForCausalLM built from
state-spaces/mamba-130m-hf's configuration with random weights (nothing is downloaded): the
parameter total and shapes (meta device, full size), FlopCounterMode's MACs on its forward pass
(its PyTorch path: the `causal_conv1d_fn` and `selective_scan_fn` fallbacks, eager, CPU) for one
and two layers at full width, output shapes, and the same logits with the weights copied across on
small configurations (with and without biases, an explicit dt_rank)."""
from collections import Counter

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import archcalc  # noqa: E402
from archcalc.torch import build  # noqa: E402
from archcalc.torch.verify import flop_counter  # noqa: E402
from bundled import SPECS  # noqa: E402

SPEC = SPECS / "transformers/mamba_130m.yaml"
FULL = dict(vocab_size=50280, hidden_size=768, num_hidden_layers=24, state_size=16, expand=2, conv_kernel=4,
            time_step_rank="auto", layer_norm_epsilon=1e-5, use_bias=False, use_conv_bias=True,
            tie_word_embeddings=True)


def _hf(**overrides):
    config = transformers.MambaConfig(**{**FULL, **overrides})
    return transformers.MambaForCausalLM(config).eval()


def _spec_text(depth=24, tokens=256, vocab=50280, d=768, mixer=None):
    """The bundled spec's text with its depth, context, vocabulary, width or mixer arguments changed
    (each replacement is checked to have happened)."""
    text = SPEC.read_text()
    for old, new in (("depth: 24", f"depth: {depth}"), ("tokens: [256]", f"tokens: [{tokens}]"),
                     ("vocab: 50280", f"vocab: {vocab}"), ("d: 768", f"d: {d}")):
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    if mixer is not None:
        old = "mamba: {d_state: 16, d_conv: 4, expand: 2, dt_rank: auto, bias: false, conv_bias: true}"
        assert text.count(old) == 1
        text = text.replace(old, f"mamba: {mixer}")
    return text


def test_hugging_face_config_is_mamba_130m():
    config = transformers.MambaConfig(**FULL)
    assert (config.intermediate_size, config.time_step_rank, config.state_size, config.conv_kernel) == (1536, 48, 16, 4)
    assert config.hidden_act == "silu"


def test_same_parameters_as_hugging_face():
    """The full model on the meta device: the same total (the tied lm_head counted once), the same
    multiset of parameter shapes, and the spec's figure 129,135,360."""
    with torch.device("meta"):
        theirs = _hf()
    ours = build(archcalc.load_spec(SPEC), device="meta")
    report = archcalc.analyze(SPEC)
    total = sum(p.numel() for p in theirs.parameters())
    assert total == sum(p.numel() for p in ours.parameters()) == report.totals.params == 129_135_360
    assert report.totals.trainable_params == total and report.totals.non_trainable_params == 0
    assert Counter(tuple(p.shape) for p in ours.parameters()) == Counter(tuple(p.shape) for p in theirs.parameters())
    # One block: RMSNorm 768 + the mixer 3,770,880 (write-out in tests/layers/test_mamba.py).
    assert report.layer("layers.1.mixer").params == 3_770_880
    assert sum(p.numel() for p in theirs.backbone.layers[0].mixer.parameters()) == 3_770_880


@pytest.mark.parametrize("depth", [1, 2])
@pytest.mark.slow
def test_same_macs_as_hugging_face(depth):
    """FlopCounterMode on Hugging Face's forward (CPU; its PyTorch fallbacks) counts what the analysis
    does, in total and for each mixer and the output layer; archcalc's own build measures the same."""
    tokens = 64
    torch.manual_seed(0)
    theirs = _hf(num_hidden_layers=depth)
    ids = torch.randint(0, 50280, (1, tokens))
    with torch.no_grad(), flop_counter() as counter:
        logits = theirs(ids, use_cache=False).logits
    graph = archcalc.parse_spec(_spec_text(depth=depth, tokens=tokens))
    report = archcalc.analyze(graph)
    assert counter.get_total_flops() // 2 == report.totals.macs
    flops = counter.get_flop_counts()
    for i in range(depth):
        mixer = sum(flops[f"MambaForCausalLM.backbone.layers.{i}.mixer"].values()) // 2
        assert mixer == report.layer(f"layers.{i + 1}.mixer").macs == 241_059_840
    assert sum(flops["MambaForCausalLM.lm_head"].values()) // 2 == report.layer("lm_head").macs
    assert tuple(logits.shape[1:]) == report.output_shape == (tokens, 50280)
    ours = build(graph).eval()
    with torch.no_grad(), flop_counter() as mine:
        out = ours(ids)
    assert mine.get_total_flops() == counter.get_total_flops()
    assert out.shape == logits.shape


def test_the_bundled_figures():
    report = archcalc.analyze(SPEC)
    # 24 mixers at T = 256 plus the output layer 256*768*50280.
    t, d, e, n, k, r = 256, 768, 1536, 16, 4, 48
    mixer = t * d * 2 * e + (t + k - 1) * e * k + t * e * (r + 2 * n) + t * r * e + t * e * n + t * e * d
    assert report.totals.macs == 24 * mixer + t * d * 50280 == 33_025_867_776
    assert report.output_shape == (256, 50280)


SMALL = [  # (MambaConfig arguments, the spec's mixer)
    (dict(), "{d_state: 16, d_conv: 4, expand: 2, dt_rank: auto, bias: false, conv_bias: true}"),
    (dict(state_size=8, conv_kernel=3, expand=3, time_step_rank=5, use_bias=True, use_conv_bias=False),
     "{d_state: 8, d_conv: 3, expand: 3, dt_rank: 5, bias: true, conv_bias: false}"),
]


@pytest.mark.parametrize("overrides, mixer", SMALL, ids=["mamba-130m-layout", "biases-rank5"])
@pytest.mark.slow
def test_same_logits_with_copied_weights(overrides, mixer):
    """A small model (vocabulary 97, width 64, two blocks): Hugging Face's weights copied in the
    order both register them (names checked), the same logits. The trained-like initialisation of
    Hugging Face (A = -(1..N), dt in [1e-3, 1e-1]) is replaced by random values, so that every
    parameter matters."""
    torch.manual_seed(0)
    vocab, d, tokens = 97, 64, 23
    theirs = _hf(vocab_size=vocab, hidden_size=d, num_hidden_layers=2, **overrides)
    with torch.no_grad():
        for name, p in theirs.named_parameters():
            if name.endswith("A_log"):
                p.copy_(torch.rand_like(p) * 2 - 1)
            elif name.endswith("dt_proj.bias"):
                p.copy_(torch.rand_like(p) * 4 - 3)
            else:
                p.copy_(torch.randn_like(p) * 0.3 + (1.0 if name.endswith("norm.weight") else 0.0))
    graph = archcalc.parse_spec(_spec_text(depth=2, tokens=tokens, vocab=vocab, d=d, mixer=mixer))
    ours = build(graph).eval()
    mine, hf = list(ours.named_parameters()), list(theirs.named_parameters())
    assert len(mine) == len(hf)
    with torch.no_grad():
        for (a_name, a), (b_name, b) in zip(mine, hf):
            assert a_name.rsplit(".", 1)[-1] == b_name.rsplit(".", 1)[-1] and a.shape == b.shape, (a_name, b_name)
            a.copy_(b)
        ids = torch.randint(0, vocab, (3, tokens))
        expected = theirs(ids, use_cache=False).logits
        got = ours(ids)
    assert got.shape == expected.shape == (3, tokens, vocab)
    assert expected.abs().max() > 1  # the comparison is not between near-zero outputs
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)


def test_verify_is_clean_on_a_two_layer_model():
    from archcalc.torch.verify import verify

    result = verify(archcalc.parse_spec(_spec_text(depth=2, tokens=32, vocab=101, d=96)))
    assert result.ok, result.mismatches()
    mixers = [layer for layer in result.layers if layer.kind == "mamba"]
    assert len(mixers) == 2 and all(layer.checks["macs"].ok for layer in mixers)
