"""stochastic_depth against PyTorch: the built module is the identity in eval; in training it draws
exactly what torchvision.ops.stochastic_depth draws with the same seed (where torchvision imports,
through tests/torchvision_models.py), and independently of torchvision it follows the formula:
whole examples (row) or the whole batch (batch) zeroed with frequency p, survivors times 1/(1-p).
Figures measured (0 parameters, 0 MACs, shape unchanged) and verify clean."""
import pytest

torch = pytest.importorskip("torch")

import archcalc  # noqa: E402
from archcalc.torch import build  # noqa: E402
from layer_helpers import spec, torch_check  # noqa: E402


def _module(p, mode="row", shape=(3, 4, 4)):
    from archcalc.layers import KINDS

    node = archcalc.parse_spec(spec(list(shape), f"stochastic_depth: {{p: {p}, mode: {mode}}}")).nodes[0]
    return KINDS["stochastic_depth"].torch_module(node.args, [shape])


def _torchvision_function():
    from torchvision_models import torchvision_models

    if torchvision_models() is None:
        pytest.skip("torchvision does not import here")
    from torchvision.ops import stochastic_depth

    return stochastic_depth


@pytest.mark.parametrize("shape", [[3, 5, 5], [7], [4, 6, 3, 3], [10, 16]])
def test_figures_measured(shape):
    torch_check(shape, "stochastic_depth: {p: 0.3}", "stochastic_depth: {p: 0.7, mode: batch}")


@pytest.mark.parametrize("mode", ["row", "batch"])
def test_eval_is_the_identity(mode):
    m = _module(0.9, mode).eval()
    x = torch.randn(64, 3, 4, 4)
    assert m(x) is x or torch.equal(m(x), x)


def test_p_zero_in_training_is_the_identity():
    m = _module(0.0).train()
    x = torch.randn(8, 3, 4, 4)
    assert torch.equal(m(x), x)


@pytest.mark.parametrize("mode", ["row", "batch"])
def test_p_one_in_training_zeroes_everything_without_dividing_by_zero(mode):
    y = _module(1.0, mode).train()(torch.randn(8, 3, 4, 4))
    assert torch.equal(y, torch.zeros_like(y))


@pytest.mark.parametrize("p, mode, shape", [(0.2, "row", (32, 3, 4, 4)), (0.5, "row", (64, 10)),
                                            (0.3, "batch", (16, 3, 5, 5)), (0.8, "batch", (4, 7)),
                                            (0.0, "row", (4, 7)), (1.0, "row", (4, 7))])
def test_training_draws_what_torchvision_draws(p, mode, shape):
    stochastic_depth = _torchvision_function()
    m = _module(p, mode, shape[1:]).train()
    x = torch.randn(*shape)
    for seed in range(20):
        torch.manual_seed(seed)
        ours = m(x)
        torch.manual_seed(seed)
        theirs = stochastic_depth(x, p, mode, training=True)
        assert torch.equal(ours, theirs), (seed, p, mode)
    assert torch.equal(m.eval()(x), stochastic_depth(x, p, mode, training=False))


def test_row_mode_drops_whole_examples_with_frequency_p():
    p, n = 0.3, 20000
    torch.manual_seed(0)
    x = torch.rand(n, 2, 3) + 1.0  # no zeros of its own
    y = _module(p, "row", (2, 3)).train()(x)
    dropped = (y == 0).flatten(1)
    assert torch.equal(dropped.all(1), dropped.any(1))  # each example all zero or none
    kept = ~dropped.all(1)
    torch.testing.assert_close(y[kept], x[kept] / (1 - p))
    # frequency of drops: p within 5 standard deviations (sqrt(p (1 - p) / n) = 0.0032)
    assert abs(dropped.all(1).float().mean().item() - p) < 5 * (p * (1 - p) / n) ** 0.5


def test_batch_mode_drops_the_whole_batch_with_frequency_p():
    p, draws = 0.4, 4000
    m = _module(p, "batch", (3,)).train()
    x = torch.rand(5, 3) + 1.0
    torch.manual_seed(1)
    zeroed = 0
    for _ in range(draws):
        y = m(x)
        if torch.equal(y, torch.zeros_like(y)):
            zeroed += 1
        else:
            torch.testing.assert_close(y, x / (1 - p))  # every example survives together
    assert abs(zeroed / draws - p) < 5 * (p * (1 - p) / draws) ** 0.5


def test_verify_is_clean(tmp_path):
    from archcalc.torch.verify import verify

    path = tmp_path / "sd.yaml"
    path.write_text(spec([4, 8, 8], "{name: a, conv: {out: 4, kernel: 3, padding: 1}}",
                         "{name: drop, stochastic_depth: {p: 0.2}}", "{from: [input, drop], add: {}}",
                         "conv: {out: 8, kernel: 3}"))
    graph = archcalc.load_spec(path)
    result = verify(graph)
    assert result.ok
    assert next(r for r in result.layers if r.name == "conv2").checks["rf"].ok
    model = build(graph).eval()
    x = torch.randn(2, 4, 8, 8)
    assert torch.equal(model.drop(model.a(x)), model.a(x))
