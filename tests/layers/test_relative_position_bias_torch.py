"""relative_position_bias, attention's scale and score bias input, and multiply_by against PyTorch and
Hugging Face's T5Attention: the buckets by hand and equal to _relative_position_bucket, the bias
equal to compute_bias with the table copied, attention with the bias equal to T5Attention (encoder
and causal decoder), figures measured, verify clean."""
import math

import pytest

torch = pytest.importorskip("torch")

import archcalc  # noqa: E402
from archcalc.torch import build  # noqa: E402
from layer_helpers import spec, torch_check  # noqa: E402


def _module(args, t=40):
    from archcalc.layers import KINDS

    node = archcalc.parse_spec(spec({"tokens": [t]}, f"relative_position_bias: {args}")).nodes[0]
    return KINDS["relative_position_bias"].torch_module(node.args, [(t,)])


def test_buckets_by_hand():
    # T5's encoder: 32 buckets, 16 per direction, 8 exact, then log-spaced up to 128 (row 0: the
    # query at 0, key j at relative position +j, so the second half, from 16).
    m = _module("{heads: 1}", 300)
    b = m.buckets(300)
    hand = {0: 0, 1: 17, 7: 23, 8: 16 + 8 + math.floor(math.log(8 / 8) / math.log(16) * 8),
            12: 16 + 8 + 1,  # log(1.5) / log(16) * 8 = 1.17
            16: 16 + 8 + 2,  # log(2) / log(16) * 8 = 2
            127: 16 + 8 + 7, 128: 16 + 15, 299: 16 + 15}
    assert {j: int(b[0, j]) for j in hand} == hand
    # looking back (key before query): the first half, no offset
    assert [int(b[j, 0]) for j in (0, 1, 7, 8, 12, 16, 127, 128)] == [0, 1, 7, 8, 9, 10, 15, 15]
    # the decoder's: causal, all 32 buckets for keys up to the query, 16 exact, then
    # 16 + floor(log(m / 16) / log(8) * 16): m = 32 -> 16 + 5 (16/3), 64 -> 16 + 10 (32/3), 127 -> 16 + 15
    # (15.94), 128 -> 31 (the last); later keys (j > i) fall in bucket 0
    c = _module("{heads: 1, bidirectional: false}", 300).buckets(300)
    assert [int(c[j, 0]) for j in (0, 1, 15, 16, 32, 64, 127, 128)] == [0, 1, 15, 16, 21, 26, 31, 31]
    assert int(c[0, 5]) == 0


@pytest.mark.parametrize("bidirectional, buckets, distance", [
    (True, 32, 128), (True, 8, 20), (True, 5, 7), (True, 4, 2),  # odd: HF floors the halves
    (False, 32, 128), (False, 8, 20), (False, 5, 7), (False, 2, 3)])
@pytest.mark.slow
def test_buckets_equal_hugging_face(bidirectional, buckets, distance):
    t5 = pytest.importorskip("transformers.models.t5.modeling_t5")
    m = _module(f"{{heads: 2, num_buckets: {buckets}, max_distance: {distance}, "
                f"bidirectional: {str(bidirectional).lower()}}}", 200)
    position = torch.arange(200)
    theirs = t5.T5Attention._relative_position_bucket(position[None, :] - position[:, None], bidirectional,
                                                       buckets, distance)
    assert torch.equal(m.buckets(200), theirs)


def _t5(is_decoder, heads=4, d_model=32, d_kv=8, buckets=16, distance=40):
    transformers = pytest.importorskip("transformers")
    config = transformers.T5Config(d_model=d_model, d_kv=d_kv, num_heads=heads, relative_attention_num_buckets=buckets,
                                   relative_attention_max_distance=distance, is_decoder=is_decoder,
                                   attn_implementation="eager", dropout_rate=0.0)
    return transformers.models.t5.modeling_t5.T5Attention(config, has_relative_attention_bias=True, layer_idx=0,
                                                           is_causal=is_decoder).eval()


@pytest.mark.parametrize("decoder", [False, True])
def test_bias_and_unscaled_attention_equal_t5_attention(decoder):
    t, d = 23, 32
    theirs = _t5(decoder)
    text = spec([t, d], f"{{name: bias, relative_position_bias: {{heads: 4, num_buckets: 16, max_distance: 40, "
                        f"bidirectional: {str(not decoder).lower()}}}}}",
                "{name: attn, attention: {heads: 4, bias: false, scale: 1, causal: %s}, from: [input, bias]}"
                % str(decoder).lower())
    ours = build(archcalc.parse_spec(text)).eval()
    with torch.no_grad():
        ours.bias.weight.copy_(theirs.relative_attention_bias.weight)
        for name in "qkv":
            getattr(ours.attn, name).weight.copy_(getattr(theirs, name).weight)
        ours.attn.out.weight.copy_(theirs.o.weight)
        x = torch.randn(3, t, d)
        torch.testing.assert_close(ours.bias(x), theirs.compute_bias(t, t).expand(3, -1, -1, -1))
        mask = None
        if decoder:  # Hugging Face's causal mask: the dtype's minimum above the diagonal
            mask = torch.full((t, t), torch.finfo(x.dtype).min).triu(1)[None, None]
        y, _, _ = theirs(x, mask=mask)
        torch.testing.assert_close(ours(x), y, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("scale", [1.0, 0.3])
def test_scale_multiplies_the_scores(scale):
    t, d, h = 6, 16, 2
    model = build(archcalc.parse_spec(spec([t, d], f"attention: {{heads: {h}, scale: {scale}}}"))).eval()
    attn = model.attention1
    x = torch.randn(2, t, d)
    with torch.no_grad():
        q, k, v = (getattr(attn, n)(x).view(2, t, h, d // h).transpose(1, 2) for n in "qkv")
        weights = torch.softmax(scale * q @ k.transpose(-1, -2), dim=-1)
        expected = attn.out((weights @ v).transpose(1, 2).reshape(2, t, d))
        torch.testing.assert_close(model(x), expected)
        default = build(archcalc.parse_spec(spec([t, d], f"attention: {{heads: {h}}}"))).eval().attention1
        assert default.scale is None  # PyTorch's own 1/sqrt(head_dim)


@pytest.mark.parametrize("entries", [
    ("{name: bias, relative_position_bias: {heads: 4}, from: input}",
     "{name: e, embedding: {num: 30, dim: 32}, from: input}",
     "{attention: {heads: 4, bias: false, scale: 1}, from: [e, bias]}"),
    ("{name: e, embedding: {num: 30, dim: 32}}",
     "{name: bias, relative_position_bias: {heads: 4, num_buckets: 8, bidirectional: false}}",
     "{name: a, attention: {heads: 4, causal: true, scale: 1}, from: [e, bias]}",
     "{attention: {heads: 4, causal: true, window: 3}, from: [a, bias]}",
     'multiply_by: "32 ** -0.5"'),
])
def test_figures_match_pytorch(entries):
    torch_check({"tokens": [12]}, *entries)


def test_multiply_by_multiplies():
    model = build(archcalc.parse_spec(spec([5, 8], "multiply_by: -0.25"))).eval()
    x = torch.randn(2, 5, 8)
    assert torch.equal(model(x), x * -0.25)
    assert sum(p.numel() for p in model.parameters()) == 0


def test_verify_is_clean_and_export_rebuilds(tmp_path):
    from archcalc.torch.verify import verify

    path = tmp_path / "t5ish.yaml"
    path.write_text(spec({"tokens": [9]}, "{name: e, embedding: {num: 30, dim: 32}}",
                         "{name: bias, relative_position_bias: {heads: 4, num_buckets: 8, max_distance: 16}}",
                         "{name: a, attention: {heads: 4, bias: false, scale: 1}, from: [e, bias]}",
                         "{name: s, multiply_by: 0.5}"))
    result = verify(archcalc.load_spec(path))
    assert result.ok, result.mismatches()
    from archcalc.layers.base import torch_class
    from archcalc.layers import relative_position_bias as rpb

    cls = torch_class(rpb.SOURCE, "RelativePositionBias")
    namespace = {}
    exec(compile("import math\nimport torch\nfrom torch import nn\nfrom torch.nn import functional as F\n"
                 + cls.export_source, "<exported>", "exec"), namespace)  # the text export writes
    rebuilt = namespace["RelativePositionBias"](4, 8, 16, True)
    assert torch.equal(rebuilt.buckets(9), cls(4, 8, 16, True).buckets(9))


def test_tied_embeddings_are_one_tensor():
    from test_relative_position_bias import T5_TABLE

    model = build(archcalc.parse_spec(T5_TABLE))
    assert model.enc.weight is model.dec.weight is model.head.weight
    assert sum(p.numel() for p in model.parameters()) == 400
    src, tgt = torch.tensor([[1, 2, 3, 4, 5, 6]]), torch.tensor([[6, 5, 4, 3]])
    with torch.no_grad():
        assert torch.equal(model(src, tgt), model.dec.weight[tgt] @ model.enc.weight.T)
