"""specs/transformers/t5_small.yaml and t5_small_encoder.yaml against Hugging Face's
T5ForConditionalGeneration and T5EncoderModel built from t5-small's configuration (random weights,
eager attention): parameters (tied embeddings counted once) and their shapes on the meta device,
FlopCounterMode MACs of a two-layer model at full width, output shapes, and the same outputs with
the weights copied across at a small width."""
from collections import Counter

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import archcalc  # noqa: E402
from archcalc.torch import build  # noqa: E402
from archcalc.torch.verify import flop_counter  # noqa: E402
from bundled import SPECS  # noqa: E402

ENCODER = SPECS / "transformers/t5_small_encoder.yaml"
FULL = SPECS / "transformers/t5_small.yaml"
T5_SMALL = dict(vocab_size=32128, d_model=512, d_kv=64, d_ff=2048, num_layers=6, num_heads=8,
                relative_attention_num_buckets=32, relative_attention_max_distance=128,
                feed_forward_proj="relu", tie_word_embeddings=True)
# A small T5 for comparing outputs: the spec's vars set to these sizes (--set), the same code
SMALL = dict(vocab_size=100, d_model=32, d_kv=8, d_ff=48, num_layers=2, num_heads=4,
             relative_attention_num_buckets=16, relative_attention_max_distance=20)
SMALL_VARS = {"vocab": 100, "d": 32, "d_kv": 8, "d_ff": 48, "depth": 2, "heads": 4, "buckets": 16,
              "max_distance": 20}


def _config(**sizes):
    return transformers.T5Config(**{**T5_SMALL, **sizes}, attn_implementation="eager")


def _meta(cls, **sizes):
    with torch.device("meta"):
        return cls(_config(**sizes))


def _shapes(model):
    return Counter(tuple(p.shape) for p in model.parameters())


def _hf_name(ours: str) -> str:
    """Hugging Face's name of one of our parameters: t5_small.yaml's encoder.block.{i}.SelfAttention.q
    is encoder.block.{i-1}.layer.0.SelfAttention.q, ... (t5_small_encoder.yaml: without 'encoder.')."""
    parts = ours.split(".")
    stack = parts.pop(0) if parts[0] in ("encoder", "decoder") else "encoder"
    if parts[0] in ("shared", "embed_tokens"):  # the one table (lm_head's weight too)
        return "shared.weight"
    if parts[0] == "relative_attention_bias":
        return f"{stack}.block.0.layer.0.SelfAttention.relative_attention_bias.weight"
    if parts[0] == "final_layer_norm":
        return f"{stack}.final_layer_norm.weight"
    assert parts[0] == "block", ours
    i, name, rest = int(parts[1]) - 1, parts[2], parts[3:]
    ff = 2 if stack == "decoder" else 1
    # the encoder's layer_norm_2 is its feed-forward's; the decoder's the cross-attention's
    where = {"layer_norm_1": "layer.0.layer_norm", "SelfAttention": "layer.0.SelfAttention",
             "layer_norm_2": "layer.1.layer_norm", "EncDecAttention": "layer.1.EncDecAttention",
             "layer_norm_3": "layer.2.layer_norm",
             "wi": f"layer.{ff}.DenseReluDense.wi", "wo": f"layer.{ff}.DenseReluDense.wo"}[name]
    rest = ["o" if r == "out" else r for r in rest]
    return ".".join([f"{stack}.block.{i}", where] + rest)


def _copy(ours, theirs):
    """Copy every parameter of `theirs` into `ours` by name; the norms' weights (ones at init) are
    drawn at random first, so that a mix-up shows. Every one of theirs is copied once."""
    named = dict(theirs.named_parameters())
    copied = set()
    with torch.no_grad():
        for p in theirs.parameters():
            if p.dim() == 1:
                p.uniform_(0.5, 1.5)
        for name, p in ours.named_parameters():
            source = _hf_name(name)
            assert named[source].shape == p.shape, name
            p.copy_(named[source])
            copied.add(source)
    assert copied == set(named)


# --- the encoder: T5EncoderModel -------------------------------------------------------------------

def test_encoder_parameters_equal_hugging_face():
    theirs = _meta(transformers.T5EncoderModel)
    ours = build(archcalc.load_spec(ENCODER), device="meta")
    total = sum(p.numel() for p in theirs.parameters())
    assert total == sum(p.numel() for p in ours.parameters()) == archcalc.analyze(ENCODER).totals.params \
        == 35_330_816
    assert _shapes(ours) == _shapes(theirs)


@pytest.mark.slow
def test_encoder_macs_equal_hugging_face():
    """A two-layer T5 encoder at full width, 64 tokens, under FlopCounterMode: the spec with
    depth 2 and 64 tokens counts the same, and by hand: per layer the projections, q k^T and
    weights x values, the output projection and the feed-forward."""
    theirs = transformers.T5EncoderModel(_config(num_layers=2)).eval()
    x = torch.randint(0, 32128, (1, 64))
    with torch.no_grad(), flop_counter() as counter:
        y = theirs(input_ids=x).last_hidden_state
    report = archcalc.analyze(ENCODER, input_shape=[64], bindings={"depth": 2})
    t, d = 64, 512
    per_layer = t * d * 3 * d + 2 * 8 * t * t * 64 + t * d * d + 2 * t * d * 2048
    assert counter.get_total_flops() // 2 == report.totals.macs == 2 * per_layer == 411_041_792
    assert tuple(y.shape[1:]) == report.output_shape == (64, 512)


def test_encoder_full_size_macs_by_hand():
    t, d = 512, 512
    per_layer = t * d * 3 * d + 2 * 8 * t * t * 64 + t * d * d + 2 * t * d * 2048
    assert archcalc.analyze(ENCODER).totals.macs == 6 * per_layer == 11_274_289_152


def test_encoder_computes_what_hugging_face_computes():
    theirs = transformers.T5EncoderModel(_config(**SMALL)).eval()
    graph = archcalc.load_spec(ENCODER, input_shape=[11], bindings=SMALL_VARS)
    ours = build(graph).eval()
    _copy(ours, theirs)
    x = torch.randint(0, 100, (3, 11))
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(input_ids=x).last_hidden_state, rtol=1e-5, atol=1e-5)


def test_encoder_verifies_clean():
    from archcalc.torch.verify import verify

    result = verify(archcalc.load_spec(ENCODER, input_shape=[32], bindings={"depth": 2}))
    assert result.ok, result.mismatches()


# --- the whole model: T5ForConditionalGeneration ---------------------------------------------------

def test_parameters_equal_hugging_face():
    """60,506,624: the shared table (encoder, decoder and lm_head) counted once, as Hugging Face's
    parameters() does; the same multiset of parameter shapes."""
    theirs = _meta(transformers.T5ForConditionalGeneration)
    assert theirs.lm_head.weight is theirs.shared.weight is theirs.decoder.embed_tokens.weight
    ours = build(archcalc.load_spec(FULL), device="meta")
    assert ours.lm_head.weight is ours.encoder.embed_tokens.weight is ours.decoder.embed_tokens.weight
    report = archcalc.analyze(FULL)
    total = sum(p.numel() for p in theirs.parameters())
    assert total == sum(p.numel() for p in ours.parameters()) == report.totals.params == 60_506_624
    assert report.totals.trainable_params == total and report.totals.non_trainable_params == 0
    assert _shapes(ours) == _shapes(theirs)
    # by hand: the table, per stack one bias table and a final norm; per encoder layer
    # 4 projections, 2 norms and the feed-forward; per decoder layer also the cross-attention and a norm
    table, attn, ff = 32128 * 512, 4 * 512 * 512, 2 * 512 * 2048
    assert total == table + 2 * (32 * 8 + 512) + 6 * (attn + ff + 2 * 512) + 6 * (2 * attn + ff + 3 * 512)


def _lengths(encoder, decoder):
    return {"input_ids": [encoder], "decoder_input_ids": [decoder]}


@pytest.mark.slow
def test_macs_equal_hugging_face():
    """Two layers per stack at full width, 64 encoder and 16 decoder tokens, under FlopCounterMode
    (eager attention): the spec with depth 2 counts the same, and by hand."""
    theirs = transformers.T5ForConditionalGeneration(_config(num_layers=2)).eval()
    x, y = torch.randint(0, 32128, (1, 64)), torch.randint(0, 32128, (1, 16))
    with torch.no_grad(), flop_counter() as counter:
        logits = theirs(input_ids=x, decoder_input_ids=y).logits
    report = archcalc.analyze(FULL, input_shape=_lengths(64, 16), bindings={"depth": 2})
    te, td, d, hd = 64, 16, 512, 64
    encoder = te * d * 3 * d + 2 * 8 * te * te * hd + te * d * d + 2 * te * d * 2048
    cross = td * d * d + 2 * te * d * d + 2 * 8 * td * te * hd + td * d * d  # q; k, v from the encoder; o
    decoder = td * d * 3 * d + 2 * 8 * td * td * hd + td * d * d + cross + 2 * td * d * 2048
    assert counter.get_total_flops() // 2 == report.totals.macs == 2 * encoder + 2 * decoder + td * d * 32128
    assert tuple(logits.shape[1:]) == report.output_shape == (16, 32128)


def test_full_size_figures_by_hand():
    report = archcalc.analyze(FULL)
    te, td, d, hd = 512, 128, 512, 64
    encoder = te * d * 3 * d + 2 * 8 * te * te * hd + te * d * d + 2 * te * d * 2048
    cross = td * d * d + 2 * te * d * d + 2 * 8 * td * te * hd + td * d * d
    decoder = td * d * 3 * d + 2 * 8 * td * td * hd + td * d * d + cross + 2 * td * d * 2048
    assert report.totals.macs == 6 * encoder + 6 * decoder + td * d * 32128 == 18_312_331_264
    assert report.output_shape == (128, 32128)
    assert report.layer("encoder.relative_attention_bias").output_shape == (8, 512, 512)
    assert report.layer("decoder.relative_attention_bias").output_shape == (8, 128, 128)


def test_computes_what_hugging_face_computes():
    """A small T5 (the spec's vars set to small sizes): with Hugging Face's weights copied in, the
    same logits, for encoder and decoder lengths that differ."""
    theirs = transformers.T5ForConditionalGeneration(_config(**SMALL)).eval()
    graph = archcalc.load_spec(FULL, input_shape=_lengths(11, 7), bindings=SMALL_VARS)
    ours = build(graph).eval()
    _copy(ours, theirs)
    x, y = torch.randint(0, 100, (3, 11)), torch.randint(0, 100, (3, 7))
    with torch.no_grad():
        torch.testing.assert_close(ours(x, y), theirs(input_ids=x, decoder_input_ids=y).logits,
                                   rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_verifies_clean():
    from archcalc.torch.verify import verify

    result = verify(archcalc.load_spec(FULL, input_shape=_lengths(24, 8), bindings={"depth": 2}))
    assert result.ok, result.mismatches()
