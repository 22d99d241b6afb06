"""channel_shuffle against PyTorch: the module is nn.ChannelShuffle, whose output equals the
definition written out here (channel j*g + i <- channel i*(C/g) + j), and verify is clean."""
import pytest

torch = pytest.importorskip("torch")

import archcalc  # noqa: E402
from archcalc.torch import build  # noqa: E402
from layer_helpers import spec, torch_check  # noqa: E402


@pytest.mark.parametrize("shape, groups", [([12, 5, 7], 3), ([8, 9], 2), ([6, 2, 3, 4], 6), ([5, 4, 4], 1)])
def test_shapes_params_and_macs_match_pytorch(shape, groups):
    torch_check(shape, "conv: {out: %d, kernel: 1}" % shape[0], f"channel_shuffle: {groups}")


def test_the_built_module_computes_the_shuffle_by_definition():
    c, g = 12, 3
    model = build(archcalc.parse_spec(spec([c, 4, 5], "channel_shuffle: 3"))).eval()
    x = torch.randn(2, c, 4, 5)
    expected = torch.empty_like(x)
    for i in range(g):
        for j in range(c // g):
            expected[:, j * g + i] = x[:, i * (c // g) + j]
    assert torch.equal(model(x), expected)


def test_verify_is_clean_and_measures_the_field(tmp_path):
    from archcalc.torch.verify import verify

    path = tmp_path / "shuffle.yaml"
    path.write_text(spec([4, 12, 12], "conv: {out: 8, kernel: 3, groups: 2}", "channel_shuffle: 2",
                         "conv: {out: 8, kernel: 3, groups: 2}"))
    result = verify(archcalc.load_spec(path))
    assert result.ok
    row = next(r for r in result.layers if r.name == "conv2")
    assert row.checks["rf"].ok


def test_a_split_after_the_shuffle_sees_both_branches(tmp_path):
    """ShuffleNet's pattern: branches of fields 1 and 3 concatenated, shuffled, then halved. Each
    half holds channels of both branches, so its field is 3 (the union), as analysed and probed."""
    from archcalc.torch.verify import verify

    path = tmp_path / "split.yaml"
    path.write_text(spec([4, 10, 10], "{name: a, conv: {out: 4, kernel: 1}}",
                         "{name: b, from: input, conv: {out: 4, kernel: 3, padding: 1}}",
                         "{concat: 0, from: [a, b]}", "channel_shuffle: 2",
                         "{name: first, chunk: {chunks: 2, dim: 0, index: 0}}"))
    graph = archcalc.load_spec(path)
    assert archcalc.analyze(graph).layer("first").rf.size == (3, 3)
    result = verify(graph)
    assert result.ok and next(r for r in result.layers if r.name == "first").checks["rf"].ok
    # And the real module: the first half depends on a 3 x 3 window (gradient of one output).
    model = build(graph).double()
    x = torch.ones(1, 4, 10, 10, dtype=torch.float64, requires_grad=True)
    out = model(x)
    assert out.shape[1] == 4
    out[0, :, 5, 5].sum().backward()
    seen = (x.grad[0].abs().sum(0) > 0).nonzero()
    assert (seen.min(0).values.tolist(), seen.max(0).values.tolist()) == ([4, 4], [6, 6])
