"""archcalc.torch.fast_step.StepRunner: eager steps equal a hand-written loop; the CUDA-graph path
(tested only where CUDA exists) matches eager."""
import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

from archcalc.torch.fast_step import StepRunner  # noqa: E402

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def net(seed=0, device="cpu"):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                         nn.Linear(4 * 6 * 6, 3)).to(device)


def batches(steps, batch=8, device="cpu"):
    g = torch.Generator().manual_seed(1)
    return [(torch.randn(batch, 1, 6, 6, generator=g).to(device), torch.randint(0, 3, (batch,), generator=g).to(device))
            for _ in range(steps)]


def flat(model):
    return torch.cat([t.detach().reshape(-1).float() for t in model.state_dict().values()])


@pytest.mark.parametrize("opt_name", ["sgd", "adamw"])
@pytest.mark.slow
def test_eager_equals_a_hand_written_loop(opt_name):
    make = {"sgd": lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=1e-4),
            "adamw": lambda p: torch.optim.AdamW(p, lr=1e-2)}[opt_name]
    data = batches(5)
    ref = net()
    opt = make(ref.parameters())
    losses = []
    for x, y in data:
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(ref(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    model = net()
    runner = StepRunner(model, F.cross_entropy, make(model.parameters()), device="cpu")
    assert [runner.step(x, y).item() for x, y in data] == losses
    assert torch.equal(flat(model), flat(ref))  # exactly: the same operations in the same order


def test_cpu_is_eager_with_a_reason_and_on_is_an_error():
    model = net()
    runner = StepRunner(model, F.cross_entropy, torch.optim.SGD(model.parameters(), lr=0.1), device="cpu")
    assert runner.mode == "eager" and runner.reason == "device is cpu"
    loss = runner.step(*batches(1)[0])
    assert loss.dim() == 0 and not loss.requires_grad
    with pytest.raises(ValueError, match="cuda_graph='on' is impossible: device is cpu"):
        StepRunner(model, F.cross_entropy, torch.optim.SGD(model.parameters(), lr=0.1), device="cpu", cuda_graph="on")
    with pytest.raises(ValueError, match="precision"):
        StepRunner(model, F.cross_entropy, torch.optim.SGD(model.parameters(), lr=0.1), device="cpu", precision="fp8")


def test_a_capturable_optimizer_runs_eagerly_off_the_gpu():
    x, y = batches(1)[0]
    ref, model = net(), net()
    plain = torch.optim.AdamW(ref.parameters(), lr=1e-2)
    F.cross_entropy(ref(x), y).backward()
    plain.step()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, capturable=True)  # what a caller targeting CUDA makes
    StepRunner(model, F.cross_entropy, opt, device="cpu").step(x, y)
    assert opt.param_groups[0]["capturable"] is False and torch.equal(flat(model), flat(ref))


def test_bf16_autocast_and_channels_last_on_cpu():
    model = net()
    runner = StepRunner(model, F.cross_entropy, torch.optim.SGD(model.parameters(), lr=0.1), device="cpu",
                        precision="bf16", channels_last=True)
    assert model[0].weight.is_contiguous(memory_format=torch.channels_last)
    before = flat(model)
    losses = [runner.step(x, y) for x, y in batches(3)]
    assert all(torch.isfinite(v) for v in losses) and not torch.equal(before, flat(model))
    assert model[0].weight.dtype == torch.float32  # autocast: master weights stay fp32


def update(model, step):
    """The change of the parameters (not BatchNorm's running statistics) that `step()` makes."""
    before = [p.detach().clone() for p in model.parameters()]
    step()
    return torch.cat([(p.detach() - b).reshape(-1) for p, b in zip(model.parameters(), before)])


def test_set_lr_changes_the_step_size():
    x, y = batches(1)[0]
    deltas = []
    for lr in (0.1, 0.3):
        model = net()
        runner = StepRunner(model, F.cross_entropy, torch.optim.SGD(model.parameters(), lr=1.0), device="cpu")
        runner.set_lr(lr)
        deltas.append(update(model, lambda: runner.step(x, y)))
    torch.testing.assert_close(deltas[1], 3 * deltas[0])


def test_grad_clip_bounds_the_update():
    x, y = batches(1)[0]
    model = net()
    runner = StepRunner(model, lambda out, t: 1e4 * F.cross_entropy(out, t),
                        torch.optim.SGD(model.parameters(), lr=1.0), device="cpu", grad_clip=0.5)
    norm = update(model, lambda: runner.step(x, y)).norm()
    assert norm.item() == pytest.approx(0.5, rel=1e-4)  # plain SGD, lr 1: the update is the clipped gradient


def _pair(opt_name, precision="fp32", grad_clip=None, steps=8):
    """The same training run eagerly and with a CUDA graph; returns both models and runners."""
    make = {"sgd": lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9),
            "adam": lambda p: torch.optim.Adam(p, lr=1e-3, capturable=True)}[opt_name]
    data = batches(steps, device="cuda")
    out = []
    for mode in ("off", "on"):
        model = net(device="cuda")
        runner = StepRunner(model, F.cross_entropy, make(model.parameters()), device="cuda", precision=precision,
                            grad_clip=grad_clip, cuda_graph=mode)
        losses = []
        for i, (x, y) in enumerate(data):
            if i == 6:
                runner.set_lr(0.01 if opt_name == "sgd" else 5e-4)  # after the capture: replay must see it
            losses.append(runner.step(x, y))
        out.append((model, runner, torch.stack(losses)))
    return out


@cuda
@pytest.mark.parametrize("opt_name", ["sgd", "adam"])
def test_cuda_graph_matches_eager(opt_name):
    (eager, er, el), (graphed, gr, gl) = _pair(opt_name, grad_clip=1.0)
    assert er.mode == "eager" and gr.mode == "cuda-graph", gr.reason
    assert gr.captures == (2 if opt_name == "sgd" else 1)  # SGD's float lr re-captures on set_lr
    torch.testing.assert_close(gl, el, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(flat(graphed), flat(eager), atol=1e-4, rtol=1e-4)


@cuda
def test_cuda_graph_bf16_and_odd_batch():
    (eager, _, el), (graphed, gr, gl) = _pair("adam", precision="bf16")
    assert gr.mode == "cuda-graph"
    torch.testing.assert_close(gl, el, atol=2e-2, rtol=2e-2)
    x, y = batches(1, batch=5, device="cuda")[0]  # a shape the graph was not captured for: eager, once
    assert torch.isfinite(gr.step(x, y)) and gr.mode == "cuda-graph"
