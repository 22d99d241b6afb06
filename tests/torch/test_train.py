"""archcalc train / evaluate on real data (scikit-learn's digits and sample images), on the CPU.

The runs are kept short (a few epochs of a 10k-parameter net on 1,257 8x8 images) and shared between
tests through module-scoped fixtures, so the whole file stays within about a minute on two cores.
"""
import io
import json
import math
import signal
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")

from rich.console import Console  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from archcalc.cli import app  # noqa: E402
from archcalc.errors import SpecError  # noqa: E402
from archcalc.torch import checkpoint  # noqa: E402
from archcalc.torch.train import Interrupted, TrainConfig, evaluate, train  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
DIGITS = ROOT / "specs" / "lecture" / "digits_cnn.yaml"
DENOISE = ROOT / "specs" / "lecture" / "denoise_small.yaml"
# The recipe, exercised: step decay after a warm-up epoch, L2 from epoch 2, L1 from epoch 3, random
# shifts (the noise/augmentation generator) and dropout (the global RNG) in the spec.
RECIPE = dict(epochs=4, lr=3e-3, schedule="step", gamma=0.9, warmup=1, weight_decay=1e-4, l2_from=1, l1=1e-6,
              l1_from=2, shift=1, device="cpu")
runner = CliRunner()


def quiet():
    return Console(file=io.StringIO(), width=200)


def run(tmp, name, spec=DIGITS, resume=False, on_step=None, console=None, **settings):
    return train(spec, TrainConfig(out=str(tmp / name), **{**RECIPE, **settings}), resume=resume, on_step=on_step,
                 console=console or quiet())


def weights(run_dir, name="last.pt"):
    return checkpoint.load(Path(run_dir) / name)["model"]


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """One uninterrupted 4-epoch digits run: the reference for several tests."""
    tmp = tmp_path_factory.mktemp("train")
    return tmp, run(tmp, "full")


@pytest.mark.slow
def test_digits_reaches_90_percent_test_accuracy(digits):
    _, result = digits
    test = result.summary["test"]
    assert test["accuracy"] >= 0.90, test["accuracy"]
    assert len(result.metrics) == 4 and result.metrics[-1]["val_acc"] >= 0.90
    confusion = torch.tensor(test["confusion"])
    assert confusion.shape == (10, 10) and confusion.sum() == test["examples"]
    assert confusion.trace() / confusion.sum() == pytest.approx(test["accuracy"])
    lrs = [m["lr"] for m in result.metrics]  # warm-up reaches 3e-3 at the end of epoch 1, then x0.9 per epoch
    assert lrs == pytest.approx([3e-3, 3e-3 * 0.9, 3e-3 * 0.81, 3e-3 * 0.729])


@pytest.mark.slow
def test_run_folder_files_exist_and_load(digits):
    tmp, result = digits
    out = tmp / "full"
    for name in ("last.pt", "best.pt"):
        state = torch.load(out / name, weights_only=True)  # plain tensors and containers only
        assert state["epoch"] in (4, result.summary["best_epoch"]) and "optimizer" in state
        assert set(state["rng"]) >= {"torch"} and state["rng"]["torch"].dtype == torch.uint8
        assert math.isfinite(state["best_val_loss"])
    assert torch.load(out / "last.pt", weights_only=True)["epoch"] == 4
    lines = (out / "metrics.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in lines]
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4]
    assert set(rows[0]) == {"epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "examples_per_s", "seconds"}
    assert rows[-1]["train_loss"] < rows[0]["train_loss"]
    cfg = TrainConfig.from_sources(out / "config.yaml")
    assert cfg.epochs == 4 and cfg.lr == 3e-3 and cfg.spec == str(DIGITS) and cfg.out == str(out)
    assert (out / "spec.yaml").read_text() == DIGITS.read_text()
    stats = json.loads((out / "data.json").read_text())
    assert len(stats["mean"]) == 1 and stats["sizes"]["train"] > 1000
    summary = json.loads((out / "summary.json").read_text())
    assert summary["test"]["accuracy"] == result.summary["test"]["accuracy"] and summary["stopped"] is None
    from PIL import Image

    with Image.open(out / "curves.png") as img:
        img.verify()
        assert img.format == "PNG" and img.size[0] > 500
    assert not list(out.glob(".*.tmp"))  # atomic writes leave no temporary files behind


@pytest.mark.slow
def test_resume_gives_the_same_weights_as_an_uninterrupted_run(digits):
    tmp, _ = digits
    run(tmp, "resumed", epochs=2)
    run(tmp, "resumed", epochs=4, resume=True, console=(console := quiet()))
    # it says where it resumes: after the 2 epochs the first run trained, from that run's last.pt
    assert f"resuming from {tmp / 'resumed' / 'last.pt'}: after epoch 2 of 4" in console.file.getvalue()
    full, resumed = weights(tmp / "full"), weights(tmp / "resumed")
    assert all(torch.equal(full[k], resumed[k]) for k in full)
    rows = [json.loads(x) for x in (tmp / "resumed" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4]


@pytest.mark.slow
def test_ctrl_c_mid_epoch_saves_and_resumes_exactly(digits):
    tmp, _ = digits

    def press_ctrl_c(epoch, step):
        if (epoch, step) == (2, 7):
            signal.raise_signal(signal.SIGINT)  # the real signal, through the real handler

    with pytest.raises(Interrupted, match="epoch 2, step 7"):
        run(tmp, "ctrlc", on_step=press_ctrl_c)
    state = checkpoint.load(tmp / "ctrlc" / "last.pt")
    assert (state["epoch"], state["step"]) == (1, 7)
    # Step 7 of epoch 2 means nothing with other batches: another --batch-size is refused.
    with pytest.raises(SpecError, match="stopped in the middle of an epoch: resume it with the same --batch-size"):
        run(tmp, "ctrlc", resume=True, batch_size=TrainConfig().batch_size * 2)
    run(tmp, "ctrlc", resume=True, console=(console := quiet()))
    # the step Ctrl-C stopped after (digits: 1,257 training examples, 1,257 // 64 = 19 steps an epoch)
    assert f"resuming from {tmp / 'ctrlc' / 'last.pt'}: epoch 2, step 7 of 19 done" in console.file.getvalue()
    full, resumed = weights(tmp / "full"), weights(tmp / "ctrlc")
    assert all(torch.equal(full[k], resumed[k]) for k in full)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored


def test_the_figures_line_prints_user_text_as_written(tmp_path):
    # rich markup is archcalc's own: a shape in the spec's words ([d]) and a name with brackets
    # print as written (rich read [d] as a tag and dropped it; [/] is a traceback)
    from types import SimpleNamespace

    from archcalc import api
    from archcalc.analysis.walk import analyze_graph
    from archcalc.torch.train import _show_figures

    spec = tmp_path / "d.yaml"
    spec.write_text("name: 'net[bold]x[/]'\ninput: [d]\nlayers:\n  - relu\n")
    graph = api.load_graph(spec)
    console = quiet()
    _show_figures(console, graph, analyze_graph(graph), TrainConfig(),
                  SimpleNamespace(enabled=False, device="cpu", world_size=1))
    assert console.file.getvalue().startswith("net[bold]x[/]  input [d] -> output [d]  params 0 ")


@pytest.mark.slow
def test_denoising_lowers_validation_mse(tmp_path):
    result = train(DENOISE, TrainConfig(data="sample-images", task="denoise", epochs=3, lr=3e-3, batch_size=64,
                                        device="cpu", out=str(tmp_path / "dn")), console=quiet())
    val = [m["val_loss"] for m in result.metrics]
    assert val[-1] < val[0]
    assert val[-1] < 0.5 ** 2  # better than returning the noisy input (MSE = noise variance 0.25)
    assert result.metrics[0]["train_acc"] is None and "accuracy" not in result.summary["test"]
    assert (tmp_path / "dn" / "curves.png").stat().st_size > 0


@pytest.mark.slow
def test_nan_stops_cleanly_and_keeps_the_last_good_checkpoint(tmp_path):
    out = tmp_path / "nan"
    # A huge L2 switched on after one good epoch blows the weights up in epoch 2.
    res = runner.invoke(app, ["train", str(DIGITS), "--out", str(out), "--device", "cpu", "--epochs", "3",
                              "--optimizer", "sgd", "--weight-decay", "1e30", "--l2-from", "1"])
    assert res.exit_code == 1, res.output
    assert "epoch 2, step" in res.output and "last good weights (epoch 1)" in res.output
    assert "Traceback" not in res.output
    state = torch.load(out / "last.pt", weights_only=True)
    assert state["epoch"] == 1 and all(v.isfinite().all() for v in state["model"].values() if v.is_floating_point())
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 1


@pytest.mark.slow
def test_config_file_and_command_line_precedence_and_evaluate(tmp_path):
    cfg = tmp_path / "run.yaml"
    cfg.write_text("epochs: 5\nlr: 0.004\nbatch-size: 32\noptimizer: adamw\ndevice: cpu\n")
    out = tmp_path / "cli"
    res = runner.invoke(app, ["train", str(DIGITS), "--config", str(cfg), "--epochs", "1", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "params 10,074" in res.output and "MACs/example 309,248" in res.output  # analytic figures first
    assert "FLOP/s" in res.output and "confusion matrix" in res.output
    resolved = TrainConfig.from_sources(out / "config.yaml")
    assert (resolved.epochs, resolved.lr, resolved.batch_size, resolved.optimizer) == (1, 0.004, 32, "adamw")
    res = runner.invoke(app, ["evaluate", str(out)])
    assert res.exit_code == 0, res.output
    assert "best.pt (epoch 1) on the test split of --data digits" in res.output
    assert "accuracy" in res.output and "confusion matrix" in res.output
    res = runner.invoke(app, ["evaluate", str(out), "--split", "val", "--json"])
    data = json.loads(res.output)
    # the val split's figures, named so (not "test"): the accuracy is the one training measured on val
    assert data["split"] == "val" and "test" not in data and len(data["val"]["confusion"]) == 10
    epoch1 = json.loads((out / "metrics.jsonl").read_text().splitlines()[0])
    assert data["val"]["accuracy"] == pytest.approx(epoch1["val_acc"])
    assert data["val"]["examples"] == sum(map(sum, data["val"]["confusion"])) == 270  # 15% of digits' 1,797
    res = runner.invoke(app, ["evaluate", str(out), "--split", "val"])
    assert res.exit_code == 0 and "val: loss" in res.output and "test:" not in res.output, res.output
    cfg.write_text("epoch: 5\n")
    with pytest.raises(SpecError, match=r"run.yaml:1:1: error: unknown setting 'epoch' \(did you mean 'epochs'\?\)"):
        TrainConfig.from_sources(cfg, {})


@pytest.mark.slow
def test_three_folds_report_mean_and_spread(tmp_path):
    result = train(DIGITS, TrainConfig(folds=3, epochs=1, lr=3e-3, device="cpu", out=str(tmp_path / "cv")),
                   console=(console := quiet()))
    s = result.summary
    assert s["folds"] == 3 and [f["fold"] for f in s["per_fold"]] == [1, 2, 3]
    accs = [f["val_acc"] for f in s["per_fold"]]
    assert s["val_acc"]["mean"] == pytest.approx(sum(accs) / 3)
    assert s["val_acc"]["std"] == pytest.approx(torch.tensor(accs, dtype=torch.float64).std().item())
    assert len(set(accs)) > 1  # different validation folds
    assert "3-fold cross-validation val acc" in console.file.getvalue() and "±" in console.file.getvalue()
    assert all((tmp_path / "cv" / f"fold{k}" / "best.pt").exists() for k in (1, 2, 3))
    again = evaluate(tmp_path / "cv" / "fold2", split="val", device="cpu")  # the fold's own validation split
    assert again["val"]["accuracy"] == pytest.approx(accs[1])


@pytest.mark.skipif(not torch.distributed.is_available() or not torch.distributed.is_backend_available("gloo"),
                    reason="no gloo")
@pytest.mark.slow
def test_two_gloo_processes_agree_with_one(tmp_path):
    # No batch norm or dropout: those legitimately differ per rank. Batch 64 = 2 processes x 32.
    spec = tmp_path / "tiny.yaml"
    spec.write_text("name: tiny\ninput: [1, 8, 8]\nlayers:\n  - conv: {out: 8, kernel: 3, padding: 1}\n  - relu\n"
                    "  - flatten\n  - linear: 10\n")
    settings = dict(epochs=2, optimizer="sgd", lr=0.05, device="cpu")
    train(spec, TrainConfig(out=str(tmp_path / "one"), **settings), console=quiet())
    two = train(spec, TrainConfig(out=str(tmp_path / "two"), gpus=2, **settings))
    assert two.summary["world_size"] == 2
    a, b = weights(tmp_path / "one"), weights(tmp_path / "two")
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("args, message", [
    (["--data", "mnistt"], "unknown data source 'mnistt'"),
    (["--task", "clasify"], "--task 'clasify' is not one of classify, binary, regress, denoise (did you mean 'classify'?)"),
    (["--task", "denoise"], "--task denoise needs the output shaped like the input, [1, 8, 8]; digits_cnn outputs [10]"),
    (["--optimizer", "rmsprop"], "--optimizer 'rmsprop' is not one of sgd, adam, adamw"),
    (["--batch-size", "5000"], "larger than the training split"),
])
def test_cli_errors_exit_2_with_a_clear_message(tmp_path, args, message):
    res = runner.invoke(app, ["train", str(DIGITS), "--out", str(tmp_path / "x"), "--device", "cpu", *args])
    assert res.exit_code == 2, res.output
    assert message in res.output and "Traceback" not in res.output


def test_classify_needs_a_class_score_output(tmp_path):
    res = runner.invoke(app, ["train", str(DENOISE), "--task", "classify", "--out", str(tmp_path / "x")])
    assert res.exit_code == 2
    assert "--task classify needs the network to end in one score per class, output [K]" in res.output
    res = runner.invoke(app, ["train", str(ROOT / "specs" / "lecture" / "two_layer_mlp.yaml")])
    assert res.exit_code == 2 and "remove the final softmax layer" in res.output
