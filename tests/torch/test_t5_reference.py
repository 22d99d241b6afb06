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


def _hf_name(ours: str, stack: str) -> str:
    """Hugging Face's name of one of our parameters inside a T5 stack ('encoder' or 'decoder'):
    block.{i}.SelfAttention.q.weight -> {stack}.block.{i-1}.layer.0.SelfAttention.q.weight, ..."""
    parts = ours.split(".")
    if parts[0] == "shared":
        return "shared.weight"
    if parts[0] in ("relative_attention_bias", "decoder_relative_attention_bias"):
        return f"{stack}.block.0.layer.0.SelfAttention.relative_attention_bias.weight"
    if parts[0] in ("final_layer_norm", "decoder_final_layer_norm"):
        return f"{stack}.final_layer_norm.weight"
    i, name, rest = int(parts[1]) - 1, parts[2], parts[3:]
    ff = 2 if stack == "decoder" else 1
    # the encoder's layer_norm_2 is its feed-forward's; the decoder's the cross-attention's
    where = {"layer_norm_1": "layer.0.layer_norm", "SelfAttention": "layer.0.SelfAttention",
             "layer_norm_2": "layer.1.layer_norm", "EncDecAttention": "layer.1.EncDecAttention",
             "layer_norm_3": "layer.2.layer_norm",
             "wi": f"layer.{ff}.DenseReluDense.wi", "wo": f"layer.{ff}.DenseReluDense.wo"}[name]
    rest = ["o" if r == "out" else r for r in rest]
    return ".".join([f"{stack}.block.{i}", where] + rest)


def _copy(ours, theirs, stack_of):
    """Copy every parameter of `theirs` into `ours` by name (stack_of: our name -> its stack); the
    norms' weights (ones at init) are drawn at random first, so that a mix-up shows."""
    named = dict(theirs.named_parameters(remove_duplicate=False))
    with torch.no_grad():
        for p in theirs.parameters():
            if p.dim() == 1:
                p.uniform_(0.5, 1.5)
        for name, p in ours.named_parameters():
            source = named[_hf_name(name, stack_of(name))]
            assert source.shape == p.shape, name
            p.copy_(source)


# --- the encoder: T5EncoderModel -------------------------------------------------------------------

def test_encoder_parameters_equal_hugging_face():
    theirs = _meta(transformers.T5EncoderModel)
    ours = build(archcalc.load_spec(ENCODER), device="meta")
    total = sum(p.numel() for p in theirs.parameters())
    assert total == sum(p.numel() for p in ours.parameters()) == archcalc.analyze(ENCODER).totals.params \
        == 35_330_816
    assert _shapes(ours) == _shapes(theirs)


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
    _copy(ours, theirs, lambda name: "encoder")
    x = torch.randint(0, 100, (3, 11))
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(input_ids=x).last_hidden_state, rtol=1e-5, atol=1e-5)


def test_encoder_verifies_clean():
    from archcalc.torch.verify import verify

    result = verify(archcalc.load_spec(ENCODER, input_shape=[32], bindings={"depth": 2}))
    assert result.ok, result.mismatches()
