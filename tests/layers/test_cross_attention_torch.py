"""cross_attention against PyTorch: nn.MultiheadAttention(D, H, kdim=Dm, vdim=Dm, batch_first=True)
called as attn(q, m, m) with the weights copied across gives the same outputs and parameter count;
grouped key/value heads, head_dim and scale follow the definition written out here; verify is
clean (shapes, parameters, MACs under FlopCounterMode) on a spec with two inputs."""
import math
import textwrap

import pytest

torch = pytest.importorskip("torch")

import archcalc  # noqa: E402
from archcalc.torch import build  # noqa: E402


def model(entry, tq=5, d=12, tk=7, dm=10):
    text = textwrap.dedent(f"""
    inputs: {{q: [{tq}, {d}], m: [{tk}, {dm}]}}
    layers:
      - {{name: ca, cross_attention: {entry}, from: [q, m]}}
    """)
    return build(archcalc.parse_spec(text)).eval()


def test_same_as_nn_multihead_attention_with_kdim_and_vdim():
    torch.manual_seed(0)
    d, h, dm = 12, 3, 10
    net = model("{heads: 3}")
    mha = torch.nn.MultiheadAttention(d, h, kdim=dm, vdim=dm, batch_first=True).eval()
    assert sum(p.numel() for p in mha.parameters()) == sum(p.numel() for p in net.parameters())
    assert sum(p.numel() for p in net.parameters()) == archcalc.analyze(model_graph := archcalc.parse_spec(
        f"inputs: {{q: [5, {d}], m: [7, {dm}]}}\nlayers:\n  - {{cross_attention: 3, from: [q, m]}}\n")).totals.params
    assert model_graph.input_names == ("q", "m")
    ca = net.ca
    with torch.no_grad():
        ca.q.weight.copy_(mha.q_proj_weight)
        ca.k.weight.copy_(mha.k_proj_weight)
        ca.v.weight.copy_(mha.v_proj_weight)
        ca.q.bias.copy_(mha.in_proj_bias[:d])
        ca.k.bias.copy_(mha.in_proj_bias[d:2 * d])
        ca.v.bias.copy_(mha.in_proj_bias[2 * d:])
        ca.out.weight.copy_(mha.out_proj.weight)
        ca.out.bias.copy_(mha.out_proj.bias)
        q, m = torch.randn(2, 5, d), torch.randn(2, 7, dm)
        expected, _ = mha(q, m, m, need_weights=False)
        torch.testing.assert_close(net(q, m), expected, rtol=1e-5, atol=1e-6)


def _by_definition(ca, q, m, heads, kv_heads, hd, scale):
    """softmax(scale q k^T) v per head, key/value head j serving query heads j*g .. j*g + g - 1."""
    n, tq, _ = q.shape
    tk = m.shape[1]
    qs = ca.q(q).view(n, tq, heads, hd)
    ks = ca.k(m).view(n, tk, kv_heads, hd)
    vs = ca.v(m).view(n, tk, kv_heads, hd)
    group = heads // kv_heads
    out = torch.empty(n, tq, heads, hd)
    for i in range(heads):
        scores = scale * qs[:, :, i] @ ks[:, :, i // group].transpose(1, 2)  # [n, Tq, Tk]
        out[:, :, i] = scores.softmax(-1) @ vs[:, :, i // group]
    return ca.out(out.reshape(n, tq, heads * hd))


@pytest.mark.parametrize("entry, heads, kv_heads, hd, scale", [
    ("{heads: 4, kv_heads: 2, head_dim: 5, bias: false}", 4, 2, 5, 1 / math.sqrt(5)),
    ("{heads: 3, kv_heads: 1, k_bias: false}", 3, 1, 4, 1 / math.sqrt(4)),
    ("{heads: 2, scale: 1.0}", 2, 2, 6, 1.0),  # T5: unscaled scores
])
def test_grouped_heads_head_dim_and_scale_follow_the_definition(entry, heads, kv_heads, hd, scale):
    torch.manual_seed(1)
    net = model(entry)
    q, m = torch.randn(2, 5, 12), torch.randn(2, 7, 10)
    with torch.no_grad():
        torch.testing.assert_close(net(q, m), _by_definition(net.ca, q, m, heads, kv_heads, hd, scale),
                                   rtol=1e-5, atol=1e-6)
    assert (net.ca.k.bias is None) == ("bias: false" in entry or "k_bias: false" in entry)


def test_the_forward_takes_the_inputs_in_order_and_says_so_when_one_is_missing():
    net = model("{heads: 3}")
    assert net.input_names == ("q", "m")
    with pytest.raises(TypeError, match=r"takes 2 input\(s\) \(q, m\), got 1"):
        net(torch.randn(1, 5, 12))


def test_verify_is_clean(tmp_path):
    from archcalc.torch.verify import verify

    path = tmp_path / "cross.yaml"
    path.write_text(textwrap.dedent("""
    inputs: {src: [9, 10], tgt: {tokens: [6]}}
    layers:
      - {name: enc, linear: 10}
      - {name: emb, from: tgt, embedding: {num: 30, dim: 12}}
      - {attention: {heads: 3, causal: true}}
      - {cross_attention: {heads: 3, k_bias: false}, from: [attention1, enc]}
      - {cross_attention: {heads: 4, kv_heads: 2, head_dim: 5, bias: false, scale: 1.0}, from: [cross_attention1, enc]}
      - {name: sum, add: {}, from: [emb, cross_attention2]}
    """))
    result = verify(archcalc.load_spec(path))
    assert result.ok, result.mismatches()
    for layer in result.layers:
        for figure in ("output_shape", "trainable_params", "macs"):
            assert layer.checks[figure].ok is True, (layer.name, figure)
    assert result.totals["macs"].measured == archcalc.analyze(path).totals.macs
