"""rmsnorm, class_token, positional, rotary against real PyTorch: shapes, parameters and MACs, and
the math itself (RMS normalisation, the sinusoidal table, the token's place, RoPE's rotation)."""
import math

import pytest

torch = pytest.importorskip("torch")

import archcalc  # noqa: E402
from archcalc.layers import KINDS  # noqa: E402
from archcalc.torch import build  # noqa: E402
from layer_helpers import spec, torch_check  # noqa: E402


def module(shape, entry):
    """The built module of a one-layer spec."""
    model = build(archcalc.parse_spec(spec(shape, entry)))
    return next(m for name, m in model.named_modules() if name.endswith("1"))


@pytest.mark.parametrize("shape, entry", [
    ([10, 16], "rmsnorm"), ([3, 4, 5], "rmsnorm: {dims: 2}"), ([3, 4, 5], "rmsnorm: {dims: 3, eps: 0.001}"),
    ([10, 16], "rmsnorm: {affine: false}"), ([7], "rmsnorm: {eps: 0.000001}"),
    ([196, 32], "class_token"), ([1, 8], "class_token"),
    ([20, 16], "positional"), ([20, 16], "positional: {num: 64}"), ([20, 16], "positional: {learned: false}"),
    ([20, 16], "rotary"), ([4, 20, 16], "rotary: {dims: 8}"), ([4, 20, 16], "rotary: {interleaved: true}"),
    ([2, 3, 20, 16], "rotary: {dims: 4, base: 500000, interleaved: true}"),
])
def test_matches_pytorch(shape, entry):
    torch_check(shape, entry)


def test_vit_and_gpt_embeddings_match_pytorch():
    r = torch_check([3, 32, 32], "conv: {out: 24, kernel: 8, stride: 8}", "flatten: {start_dim: 1}",
                    "permute: [1, 0]", "class_token", "positional", "rmsnorm", "linear: 48",
                    "reshape: [17, 4, 12]", "permute: [1, 0, 2]", "rotary")
    assert r.output_shape == (4, 17, 12)
    # conv (8*8*3 + 1)*24 = 4632, token 24, table 17*24 = 408, rmsnorm 24, linear (24 + 1)*48 = 1200
    assert r.totals.params == 4632 + 24 + 408 + 24 + 1200


# --- rmsnorm -----------------------------------------------------------------------------------

@pytest.mark.parametrize("shape, entry, eps, dims", [
    ([6, 16], "rmsnorm: {eps: 0.01}", 0.01, (-1,)),
    ([3, 4, 5], "rmsnorm: {dims: 2, eps: 0.001}", 0.001, (-2, -1)),
    ([6, 16], "rmsnorm", torch.finfo(torch.float32).eps, (-1,)),  # eps empty: the dtype's eps
])
def test_rmsnorm_formula(shape, entry, eps, dims):
    m = module(shape, entry)
    with torch.no_grad():
        m.weight.copy_(torch.randn_like(m.weight))
        x = torch.randn(2, *shape)
        expected = x / torch.sqrt(x.pow(2).mean(dims, keepdim=True) + eps) * m.weight
        torch.testing.assert_close(m(x), expected)


@pytest.mark.parametrize("shape, args", [
    ([6, 16], {"dims": 1, "eps": None, "affine": True}),
    ([3, 4, 5], {"dims": 2, "eps": 0.001, "affine": True}),
    ([3, 4, 5], {"dims": 3, "eps": 0.01, "affine": False}),
])
def test_rmsnorm_fallback_equals_nn_rmsnorm(monkeypatch, shape, args):
    if not hasattr(torch.nn, "RMSNorm"):
        pytest.skip("this torch has no nn.RMSNorm to compare with")
    layer = KINDS["rmsnorm"]
    real = layer.torch_module(args, [tuple(shape)])
    monkeypatch.delattr(torch.nn, "RMSNorm")  # as on torch < 2.4
    fallback = layer.torch_module(args, [tuple(shape)])
    monkeypatch.undo()
    assert type(fallback).__name__ == "RMSNorm" and hasattr(fallback, "export_source")
    assert type(fallback) is not type(real)
    assert [(n, p.shape) for n, p in fallback.named_parameters()] == [(n, p.shape) for n, p in real.named_parameters()]
    with torch.no_grad():
        if args["affine"]:
            real.weight.copy_(torch.randn_like(real.weight))
        fallback.load_state_dict(real.state_dict())
        x = torch.randn(3, *shape)
        torch.testing.assert_close(fallback(x), real(x))


# --- class_token -------------------------------------------------------------------------------

def test_class_token_comes_first():
    m = module([5, 8], "class_token")
    assert [(n, tuple(p.shape)) for n, p in m.named_parameters()] == [("class_token", (1, 1, 8))]
    assert not m.class_token.any()  # zeros, as torchvision initialises it
    with torch.no_grad():
        m.class_token.copy_(torch.randn(1, 1, 8))
        x = torch.randn(3, 5, 8)
        y = m(x)
    assert torch.equal(y[:, 0], m.class_token[0].expand(3, 8))
    assert torch.equal(y[:, 1:], x)


# --- positional --------------------------------------------------------------------------------

def test_learned_positions_add_the_first_rows():
    m = module([5, 8], "positional: {num: 12}")
    assert tuple(m.weight.shape) == (12, 8)
    x = torch.randn(2, 5, 8)
    with torch.no_grad():
        torch.testing.assert_close(m(x), x + m.weight[:5])


def test_sinusoidal_table_is_the_papers_formula():
    d = 16
    m = module([50, d], "positional: {learned: false}")
    assert not list(m.parameters()) and not list(m.buffers())
    pe = m(torch.zeros(1, 50, d))[0]
    for pos in (0, 1, 7, 49):
        for i in (0, 1, 5, 7):
            angle = pos / 10000 ** (2 * i / d)
            assert pe[pos, 2 * i].item() == pytest.approx(math.sin(angle), abs=1e-5)
            assert pe[pos, 2 * i + 1].item() == pytest.approx(math.cos(angle), abs=1e-5)
    x = torch.randn(2, 50, d)
    torch.testing.assert_close(m(x), x + pe)


# --- rotary ------------------------------------------------------------------------------------

def rope_complex(x, base=10000.0):
    """Meta LLaMA's rotation: adjacent pairs as complex numbers times e^(i p theta_k)."""
    t, d = x.shape[-2], x.shape[-1]
    theta = base ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)
    angle = torch.arange(t, dtype=torch.float64)[:, None] * theta
    z = torch.view_as_complex(x.double().reshape(*x.shape[:-1], d // 2, 2).contiguous())
    return torch.view_as_real(z * torch.polar(torch.ones_like(angle), angle)).flatten(-2).to(x.dtype)


def rope_rotate_half(x, base=10000.0):
    """HF LLaMA / GPT-NeoX: x * cos + rotate_half(x) * sin with the angles repeated for both halves."""
    t, d = x.shape[-2], x.shape[-1]
    theta = base ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)
    angle = torch.arange(t, dtype=torch.float64)[:, None] * theta
    angle = torch.cat([angle, angle], dim=-1)
    half = torch.cat([-x[..., d // 2:], x[..., : d // 2]], dim=-1)
    return (x.double() * angle.cos() + half.double() * angle.sin()).to(x.dtype)


@pytest.mark.parametrize("interleaved, reference", [(True, rope_complex), (False, rope_rotate_half)])
def test_rotary_matches_reference_implementations(interleaved, reference):
    m = module([3, 20, 16], f"rotary: {{interleaved: {str(interleaved).lower()}, base: 100}}")
    assert not list(m.parameters()) and not list(m.buffers())
    x = torch.randn(2, 3, 20, 16)
    torch.testing.assert_close(m(x), reference(x, base=100.0))


def pairs(y, interleaved, d):
    """The rotated pairs of the first d features: [..., d/2, 2]."""
    if interleaved:
        return y[..., :d].reshape(*y.shape[:-1], d // 2, 2)
    return torch.stack([y[..., : d // 2], y[..., d // 2: d]], dim=-1)


@pytest.mark.parametrize("interleaved", [False, True])
@pytest.mark.parametrize("dims", [16, 8])
def test_rotary_properties(interleaved, dims):
    t, dh = 12, 16
    m = module([t, dh], f"rotary: {{dims: {dims}, interleaved: {str(interleaved).lower()}}}")
    x = torch.randn(4, t, dh, dtype=torch.float64)
    m = m.double()
    y = m(x)
    # a rotation keeps each pair's norm
    torch.testing.assert_close(pairs(y, interleaved, dims).norm(dim=-1), pairs(x, interleaved, dims).norm(dim=-1))
    torch.testing.assert_close(y[:, 0], x[:, 0])  # position 0: angle 0
    torch.testing.assert_close(y[..., dims:], x[..., dims:])  # partial rotary: the rest passes
    assert not torch.allclose(y[:, 1:, :dims], x[:, 1:, :dims])
    # q at every position m, k at every position n: <R_m q, R_n k> depends only on m - n
    q = m(torch.randn(1, 1, dh, dtype=torch.float64).expand(1, t, dh))[0]
    k = m(torch.randn(1, 1, dh, dtype=torch.float64).expand(1, t, dh))[0]
    scores = q @ k.T
    for offset in range(-t + 1, t):
        diagonal = torch.diagonal(scores, offset)
        torch.testing.assert_close(diagonal, diagonal[:1].expand_as(diagonal))


def test_positional_sinusoids_start_as_whispers_table():
    # Whisper's encoder table: row p, feature i < D/2 is sin(p * 10000^(-i/(D/2 - 1))), feature
    # D/2 + i the cosine of the same angle (values worked out here, not by the module's code).
    table = module([6, 8], "positional: {num: 10, init: sinusoids}").weight.detach().double()
    assert table.shape == (10, 8)
    for p in range(10):
        for i in range(4):
            angle = p * 10000.0 ** (-i / 3)
            assert table[p, i].item() == pytest.approx(math.sin(angle), abs=1e-6)
            assert table[p, 4 + i].item() == pytest.approx(math.cos(angle), abs=1e-6)
    assert table[0, :4].abs().max() == 0 and (table[0, 4:] == 1).all()
