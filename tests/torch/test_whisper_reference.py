"""specs/transformers/whisper_tiny.yaml against Hugging Face's WhisperForConditionalGeneration
built from openai/whisper-tiny's configuration (random weights, eager attention): trainable and
non-trainable parameters (the encoder's frozen position table) and their shapes on the meta device,
FlopCounterMode MACs and output shapes of a one-layer model at full width and length, and the same
logits with Hugging Face's weights copied in at a small width (two layers per stack). `archcalc
verify` on the full spec is checked with every bundled spec (tests/torch/test_verify.py)."""
from collections import Counter

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import archcalc  # noqa: E402
from archcalc.torch import build  # noqa: E402
from archcalc.torch.verify import flop_counter  # noqa: E402
from bundled import SPECS  # noqa: E402

SPEC = SPECS / "transformers/whisper_tiny.yaml"
# openai/whisper-tiny's config.json (the sizes; the special token ids only matter for generation)
WHISPER_TINY = dict(vocab_size=51865, num_mel_bins=80, d_model=384, encoder_layers=4, decoder_layers=4,
                    encoder_attention_heads=6, decoder_attention_heads=6, encoder_ffn_dim=1536,
                    decoder_ffn_dim=1536, max_source_positions=1500, max_target_positions=448,
                    activation_function="gelu", scale_embedding=False, tie_word_embeddings=True,
                    pad_token_id=50257, bos_token_id=50257, eos_token_id=50257, decoder_start_token_id=50258,
                    dropout=0.0, attention_dropout=0.0, activation_dropout=0.0)


def _config(**sizes):
    return transformers.WhisperConfig(**{**WHISPER_TINY, **sizes}, attn_implementation="eager")


def _model(**sizes):
    return transformers.WhisperForConditionalGeneration(_config(**sizes))


def _unique(model):
    seen, out = set(), []
    for p in model.parameters():  # parameters() yields a tied tensor once
        if id(p) not in seen:
            seen.add(id(p))
            out.append(p)
    return out


def test_parameters_trainable_and_frozen_equal_hugging_face():
    with torch.device("meta"):
        hf = _model()
        ours = build(SPEC, device="meta")
    report = archcalc.analyze(SPEC)
    hf_params = _unique(hf)
    assert sum(p.numel() for p in hf_params) == report.totals.params == 37_760_640
    assert sum(p.numel() for p in hf_params if p.requires_grad) == report.totals.trainable_params == 37_184_640
    assert sum(p.numel() for p in hf_params if not p.requires_grad) == report.totals.non_trainable_params == 576_000
    assert not hf.model.encoder.embed_positions.weight.requires_grad  # the fixed table, frozen
    assert Counter(tuple(p.shape) for p in ours.parameters()) == Counter(tuple(p.shape) for p in hf_params)
    assert ours.get_submodule("proj_out").weight is ours.get_submodule("decoder.embed_tokens").weight
    assert not ours.get_submodule("encoder.embed_positions").weight.requires_grad


@pytest.mark.slow
def test_macs_and_output_shapes_equal_hugging_face_at_full_width():
    torch.manual_seed(0)
    depth = 1  # one layer per stack at full width and length (two layers: the logits test)
    hf = _model(encoder_layers=depth, decoder_layers=depth).eval()
    graph = archcalc.load_spec(SPEC, bindings={"depth": depth})
    report = archcalc.analyze(graph)
    features = torch.randn(1, 80, 3000)
    ids = torch.randint(0, 51865, (1, 448))
    with torch.no_grad(), flop_counter() as counter:
        logits = hf(input_features=features, decoder_input_ids=ids).logits
    assert counter.get_total_flops() // 2 == report.totals.macs
    assert tuple(logits.shape[1:]) == report.output_shape == (448, 51865)


def test_the_macs_by_hand():
    report = archcalc.analyze(SPEC)
    d, t, s, f, v = 384, 448, 1500, 1536, 51865
    attention = lambda tq, tk: tq * d * d + 2 * tk * d * d + 2 * tq * tk * d + tq * d * d  # noqa: E731
    encoder = 3000 * 3 * 80 * d + 1500 * 3 * d * d + 4 * (attention(s, s) + 2 * s * d * f)
    decoder = 4 * (attention(t, t) + attention(t, s) + 2 * t * d * f)
    assert report.totals.macs == encoder + decoder + t * d * v == 35_541_098_496
    assert report.layer("decoder.layers.1.encoder_attn").macs == attention(t, s)


SMALL = dict(vocab_size=100, num_mel_bins=80, d_model=32, encoder_layers=2, decoder_layers=2,
             encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=48, decoder_ffn_dim=48,
             max_source_positions=25, max_target_positions=12, pad_token_id=99, bos_token_id=98,
             eos_token_id=97, decoder_start_token_id=96)
SMALL_VARS = {"d": 32, "heads": 4, "ffn": 48, "depth": 2, "vocab": 100, "sources": 25, "targets": 12, "pad": 99}


def _hf_name(ours: str) -> str:
    """Hugging Face's name of one of our parameters: encoder.layers.{i}.self_attn.q.weight is
    model.encoder.layers.{i-1}.self_attn.q_proj.weight (our repeats count from 1)."""
    if ours == "proj_out.weight":
        return ours
    parts = ours.split(".")
    if parts[1] == "layers":
        parts[2] = str(int(parts[2]) - 1)
        if parts[3] in ("self_attn", "encoder_attn"):
            parts[4] = {"q": "q_proj", "k": "k_proj", "v": "v_proj", "out": "out_proj"}[parts[4]]
    return "model." + ".".join(parts)


@pytest.mark.slow
def test_same_logits_with_hugging_face_weights():
    torch.manual_seed(0)
    hf = _model(**SMALL).eval()
    graph = archcalc.load_spec(SPEC, bindings=SMALL_VARS,
                               input_shape={"input_features": (80, 50), "decoder_input_ids": (12,)})
    built = build(graph).eval()
    theirs = hf.state_dict()
    mine = built.state_dict()
    assert {_hf_name(k) for k in mine} == set(theirs)
    with torch.no_grad():
        for key, value in mine.items():
            value.copy_(theirs[_hf_name(key)])
        features, ids = torch.randn(2, 80, 50), torch.randint(0, 100, (2, 12))
        expected = hf(input_features=features, decoder_input_ids=ids).logits
        torch.testing.assert_close(built(features, ids), expected, rtol=1e-4, atol=1e-4)
        # A shorter decoder input: learned positions 0..T-1, causal self-attention, the same memory.
        expected = hf(input_features=features, decoder_input_ids=ids[:, :5]).logits
    short = build(archcalc.load_spec(SPEC, bindings=SMALL_VARS,
                                     input_shape={"input_features": (80, 50), "decoder_input_ids": (5,)})).eval()
    short.load_state_dict(built.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(short(features, ids[:, :5]), expected, rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_encoder_position_table_is_whispers_sinusoids():
    # The frozen table holds what Hugging Face puts there (modeling_whisper.sinusoids, copied in
    # _init_weights), not random values: a model built from the spec computes Whisper's encoder.
    from transformers.models.whisper.modeling_whisper import sinusoids

    text = SPEC.read_text().replace("depth: 4", "depth: 1")
    ours = build(archcalc.parse_spec(text, filename=str(SPEC)))
    table = ours.get_submodule("encoder.embed_positions").weight
    assert table.shape == (1500, 384) and not table.requires_grad
    assert torch.allclose(table, sinusoids(1500, 384), atol=1e-6)
    hf = _model(encoder_layers=1, decoder_layers=1)
    assert torch.allclose(table, hf.model.encoder.embed_positions.weight, atol=1e-6)
