"""archcalc.torch.distributed: torchrun-style setup, DistributedSampler-like shards, and 2 real gloo
processes training exactly like 1 process with the global batch."""
import os

import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

from archcalc.torch import distributed as D  # noqa: E402

pytestmark = pytest.mark.skipif(not torch.distributed.is_available() or
                                not torch.distributed.is_backend_available("gloo"), reason="no gloo")


def fake(rank, world):
    return D.Dist(rank, world, rank, torch.device("cpu"), "gloo" if world > 1 else None)


def test_setup_without_torchrun_env_is_one_process(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    dist = D.setup("cpu")
    assert (dist.rank, dist.world_size, dist.local_rank, dist.backend) == (0, 1, 0, None)
    assert dist.is_main and not dist.enabled and dist.device == torch.device("cpu")
    assert not torch.distributed.is_initialized()
    t = torch.ones(3)
    assert D.all_reduce_sum(t, dist) is t and t.tolist() == [1, 1, 1]
    model = nn.Linear(2, 2)
    assert D.wrap(model, dist) is model
    D.cleanup(dist)
    if not torch.cuda.is_available() and not torch.backends.mps.is_available():
        assert D.setup("auto").device == torch.device("cpu")


@pytest.mark.parametrize("n", [0, 1, 7, 32, 33, 100])
@pytest.mark.parametrize("world", [1, 2, 3, 4])
@pytest.mark.parametrize("batch", [1, 3, 8])
@pytest.mark.parametrize("drop_last", [True, False])
def test_shards_rebuild_the_single_process_batches(n, world, batch, drop_last):
    kw = dict(epoch=2, seed=7, drop_last=drop_last)
    single = D.shard(n, fake(0, 1), batch_size=world * batch, **kw)
    shards = [D.shard(n, fake(r, world), batch_size=batch, **kw) for r in range(world)]
    assert all(s.dtype == torch.int64 and len(s) == len(shards[0]) for s in shards)  # equal steps on every rank
    steps = len(shards[0]) // batch
    assert len(shards[0]) % batch == 0 and len(single) == steps * world * batch
    for s in range(steps):  # the ranks' step-s batches, concatenated, are the single step-s batch
        together = torch.cat([sh[s * batch:(s + 1) * batch] for sh in shards])
        assert torch.equal(together, single[s * world * batch:(s + 1) * world * batch])
    if drop_last:
        assert len(single) == n // (world * batch) * (world * batch) and len(set(single.tolist())) == len(single)
    elif n:
        assert set(single.tolist()) == set(range(n))  # padding repeats examples, never drops one


def test_shard_is_deterministic_by_seed_and_epoch():
    one = fake(1, 2)
    a = D.shard(50, one, epoch=3, seed=1, batch_size=4)
    assert torch.equal(a, D.shard(50, one, epoch=3, seed=1, batch_size=4))
    assert not torch.equal(a, D.shard(50, one, epoch=4, seed=1, batch_size=4))
    assert not torch.equal(a, D.shard(50, one, epoch=3, seed=2, batch_size=4))
    assert D.shard(10, fake(0, 1), epoch=0, seed=0, shuffle=False, batch_size=3).tolist() == list(range(9))
    with pytest.raises(ValueError):
        D.shard(10, one, epoch=0, seed=0, batch_size=0)


# --- real processes (module-level functions: spawn pickles them) ---------------------------------
N, FEATURES, OUT, GLOBAL_BATCH, EPOCHS, LR = 24, 5, 3, 8, 2, 0.1


def data():
    g = torch.Generator().manual_seed(0)
    return torch.randn(N, FEATURES, generator=g), torch.randn(N, OUT, generator=g)


def train(model, dist, batch):
    """SGD with momentum on MSE, the order of examples given by shard()."""
    x, y = data()
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=0.9)
    for epoch in range(EPOCHS):
        order = D.shard(N, dist, epoch=epoch, seed=5, batch_size=batch)
        for idx in order.split(batch):
            opt.zero_grad(set_to_none=True)
            nn.functional.mse_loss(model(x[idx]), y[idx]).backward()
            opt.step()
    return model


def worker(out_dir):
    dist = D.setup("cpu")
    try:
        assert dist.enabled and dist.backend == "gloo" and torch.distributed.get_rank() == dist.rank
        summed = D.all_reduce_sum(torch.tensor([float(dist.rank + 1), 10.0]), dist)
        torch.manual_seed(100 + dist.rank)  # different inits on purpose: DDP must broadcast rank 0's
        model = D.wrap(nn.Linear(FEATURES, OUT), dist)
        train(model, dist, GLOBAL_BATCH // dist.world_size)
        torch.save({"summed": summed, "world": dist.world_size, "is_main": dist.is_main,
                    "state": model.module.state_dict()}, os.path.join(out_dir, f"rank{dist.rank}.pt"))
    finally:
        D.cleanup(dist)


def failing_worker(message):
    if int(os.environ["RANK"]) == 1:
        raise ValueError(message)


@pytest.mark.slow
def test_two_gloo_processes_train_like_one_with_the_global_batch(tmp_path):
    D.launch(worker, 2, str(tmp_path))
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    for r, got in enumerate(ranks):  # all_reduce in real processes: 1 + 2, 10 + 10
        assert got["summed"].tolist() == [3.0, 20.0] and got["world"] == 2 and got["is_main"] == (r == 0)

    torch.manual_seed(100)  # rank 0's init, the one DDP broadcast
    single = train(nn.Linear(FEATURES, OUT), fake(0, 1), GLOBAL_BATCH).state_dict()
    for got in ranks:
        for name, value in single.items():
            torch.testing.assert_close(got["state"][name], value, atol=1e-6, rtol=0)
    torch.manual_seed(100)
    assert not torch.allclose(single["weight"], nn.Linear(FEATURES, OUT).weight, atol=1e-3)  # it did train


@pytest.mark.slow
def test_an_error_in_a_child_reaches_the_parent():
    with pytest.raises(Exception, match="rank one broke"):
        D.launch(failing_worker, 2, "rank one broke")
