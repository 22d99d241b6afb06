"""Issue 10, training: a hostile run folder, spec, checkpoint or file system gets a one-line error
(exit 2, no traceback), never a write outside the run folder or a run of another network.

Run folders are copies of one tiny trained run (a 1,210-parameter MLP on the digits, 1 epoch), so
each case costs a fraction of a second in-process; the cases that need a real process (two trains
on one folder, a file-size limit) run `python -m archcalc` through tests/hostile.py.
The inputs (data, settings) are in test_train_hostile_inputs.py.
"""
from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")

from hostile import TORCH_MEMORY_MB, Run, assert_refused, run_cli, snapshot  # noqa: E402
from rich.console import Console  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from archcalc.cli import app  # noqa: E402
from archcalc.torch import checkpoint, runfolder  # noqa: E402
from archcalc.torch.train import TrainConfig, train  # noqa: E402

runner = CliRunner()
TINY = "name: tiny\ninput: [1, 8, 8]\nlayers:\n  - flatten\n  - linear: 16\n  - relu\n  - linear: 10\n"
RUN_FILES = ("config.yaml", "spec.yaml", "data.json", "metrics.jsonl", "summary.json", "curves.png", "last.pt",
             "best.pt", ".lock")


def cli(*args, cwd=None):
    """`archcalc ARGS` in this process, as a hostile.Run (stderr on its own)."""
    old = os.getcwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        res = runner.invoke(app, [str(a) for a in args])
    finally:
        os.chdir(old)
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception  # a traceback: let pytest show it
    return Run(res.exit_code, res.stdout, res.stderr, 0.0)


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A finished 1-epoch run of TINY (its folder, to copy) and the spec file."""
    tmp = tmp_path_factory.mktemp("base")
    spec = tmp / "tiny.yaml"
    spec.write_text(TINY)
    train(spec, TrainConfig(epochs=1, device="cpu", out=str(tmp / "run")), console=Console(file=io.StringIO()))
    return tmp / "run", spec


@pytest.fixture
def run_dir(base, tmp_path):
    """A private copy of the base run in tmp_path/box/run; tmp_path/outside is someone else's folder."""
    (tmp_path / "box").mkdir()
    (tmp_path / "outside").mkdir()
    dest = tmp_path / "box" / "run"
    shutil.copytree(base[0], dest, symlinks=True)
    return dest


def outside_of(run: Path) -> dict:
    """Everything next to the run folder and in tmp_path/outside (the places a write must not reach)."""
    root = run.parent.parent
    return {k: v for k, v in snapshot(root).items() if not k.startswith(f"box{os.sep}run")}


# --- 1. writes stay in the run folder ---------------------------------------------------------------
@pytest.mark.parametrize("name", RUN_FILES)
def test_resume_refuses_a_symlink_in_the_run_folder(run_dir, name):
    target = run_dir.parent.parent / "outside" / "victim.sh"
    target.write_text("export SAFE=1\n")
    (run_dir / name).unlink(missing_ok=True)
    (run_dir / name).symlink_to(target)
    before = outside_of(run_dir)
    line = assert_refused(cli("train", "--resume", run_dir, "--epochs", "2", "--device", "cpu"), located=False,
                          contains=f"{run_dir / name}: is a symbolic link")
    assert "remove it" in line
    assert target.read_text() == "export SAFE=1\n" and outside_of(run_dir) == before
    assert os.readlink(run_dir / name) == str(target)  # the link itself is left alone too


def test_a_symlink_in_a_fold_folder_or_a_fifo_is_refused(run_dir, tmp_path):
    target = tmp_path / "outside" / "victim"
    target.write_text("x")
    (run_dir / "fold1").mkdir()
    (run_dir / "fold1" / "metrics.jsonl").symlink_to(target)
    assert_refused(cli("train", "--resume", run_dir, "--device", "cpu"), located=False, contains="symbolic link")
    shutil.rmtree(run_dir / "fold1")
    os.mkfifo(run_dir / "metrics.jsonl.fifo")
    assert_refused(cli("evaluate", run_dir, "--device", "cpu"), located=False, contains="is a FIFO")
    assert target.read_text() == "x"


def test_the_run_folder_itself_as_a_symlink_is_refused(run_dir, base, tmp_path):
    link = tmp_path / "box" / "link"
    link.symlink_to(run_dir)
    assert_refused(cli("train", "--resume", link, "--device", "cpu"), located=False, contains="is a symbolic link")
    empty = tmp_path / "outside" / "empty"
    empty.mkdir()
    (tmp_path / "box" / "newlink").symlink_to(empty)
    assert_refused(cli("train", base[1], "--out", tmp_path / "box" / "newlink", "--device", "cpu"), located=False,
                   contains="symbolic link")
    assert list(empty.iterdir()) == []


def test_a_new_run_refuses_a_planted_symlink_and_writes_nothing_through_it(base, tmp_path):
    out = tmp_path / "box"
    out.mkdir()
    target = tmp_path / "victim"
    target.write_text("keep")
    (out / "config.yaml").symlink_to(target)
    assert_refused(cli("train", base[1], "--out", out, "--epochs", "1", "--device", "cpu"), located=False,
                   contains="symbolic link")
    assert target.read_text() == "keep" and sorted(p.name for p in out.iterdir()) == ["config.yaml"]


def test_runfolder_write_replaces_a_link_instead_of_writing_through_it(tmp_path):
    """Every write looks at the name it replaces: a link there is refused, not followed; a new file
    appears whole (no temporary file is left)."""
    (tmp_path / "victim").write_text("keep")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "data.json").symlink_to(tmp_path / "victim")
    with pytest.raises(Exception, match="symbolic link"):
        runfolder.write(tmp_path / "run" / "data.json", "{}")
    assert (tmp_path / "victim").read_text() == "keep"
    runfolder.write(tmp_path / "run" / "new.json", "{}")
    assert (tmp_path / "run" / "new.json").read_text() == "{}"
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["data.json", "new.json"]  # no temporary left


@pytest.mark.parametrize("name, folder", [("../../escape", "_.._.._escape"), ("/abs/evil", "_abs_evil"),
                                          ("a/b", "a_b"), ("..", "_.."), (".hidden", "_.hidden"),
                                          ("tab\there", "tab_here"), ("réseau", "réseau"),
                                          ("é" * 300, "é" * 50)])
def test_a_spec_name_is_a_label_the_default_folder_stays_directly_under_runs(tmp_path, name, folder):
    assert runfolder.folder_name(name) == folder
    work = tmp_path / "work"
    work.mkdir()
    spec = work / "s.yaml"
    spec.write_text(TINY.replace("name: tiny", f"name: {name!r}".replace("'", '"').replace("\t", "\\t")))
    res = cli("train", spec, "--epochs", "1", "--device", "cpu", "--batch-size", "256", cwd=work)
    if res.rc == 2:  # a name the spec reader refuses (control characters) is fine too
        assert_refused(res)
        assert sorted(p.name for p in work.iterdir()) == ["s.yaml"]
        return
    assert res.rc == 0, res.stderr
    assert sorted(p.name for p in work.iterdir()) == ["runs", "s.yaml"]
    assert [p.name for p in (work / "runs").iterdir()] == [folder]
    assert (work / "runs" / folder / "last.pt").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["work"] and not Path("/abs").exists()


@pytest.mark.slow
def test_a_second_train_on_a_folder_in_use_fails_at_once_and_leaves_the_first_run_whole(base, tmp_path):
    """Two real processes: the first trains (for ever, until kill -9); a second train and a --resume
    on the same --out are refused while it holds the lock; the first is then killed, the kernel drops
    its lock, and its run resumes cleanly (every file from the first run, epochs 1, 2, ... in order)."""
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    first = subprocess.Popen([sys.executable, "-m", "archcalc", "train", str(base[1]), "--out", str(out),
                              "--epochs", "100000", "--device", "cpu", "--lr", "0.01"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 120  # only a guard against a hang
        while not (out / "metrics.jsonl").exists() or not (out / "metrics.jsonl").read_text():
            assert first.poll() is None, first.stderr.read()
            assert time.monotonic() < deadline, "the first train never finished an epoch"
            time.sleep(0.1)
        second = run_cli(["train", base[1], "--out", out, "--epochs", "1", "--device", "cpu", "--seed", "5"],
                         memory_mb=TORCH_MEMORY_MB, timeout=120)
        assert_refused(second, located=False, contains="another archcalc train is using this run folder")
        again = run_cli(["train", "--resume", out, "--epochs", "1", "--device", "cpu"], memory_mb=TORCH_MEMORY_MB,
                        timeout=120)
        assert_refused(again, located=False, contains="another archcalc train is using this run folder")
        assert first.poll() is None  # the first run was not disturbed
    finally:
        first.kill()  # SIGKILL: no handler runs, no file is closed by Python
        _, err = first.communicate(timeout=120)
    assert first.returncode == -signal.SIGKILL, err
    assert TrainConfig.from_sources(out / "config.yaml").epochs == 100000  # the first run's config, not the second's
    state = checkpoint.load(out / "last.pt")
    rows = [line for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) >= state["epoch"] >= 1  # metrics.jsonl is written before last.pt: it may be one ahead
    done = cli("train", "--resume", out, "--epochs", state["epoch"] + 1, "--device", "cpu")
    assert done.rc == 0, done.stderr
    import json

    epochs = [json.loads(line)["epoch"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert epochs == list(range(1, state["epoch"] + 2))


# --- 2. --resume trains the run's own network --------------------------------------------------------
def test_an_edited_run_spec_is_refused_naming_the_layer(run_dir):
    spec = run_dir / "spec.yaml"
    spec.write_text(spec.read_text().replace("- relu", "- tanh"))
    line = assert_refused(cli("train", "--resume", run_dir, "--epochs", "2", "--device", "cpu"),
                          where=f"{spec}:6:5")
    assert "layer 3 ('relu1', relu, in the run) is now 'tanh1' (tanh)" in line
    assert "was trained on another network" in line


@pytest.mark.slow
def test_a_spec_argument_that_differs_from_the_run_is_refused(run_dir, tmp_path):
    other = tmp_path / "other.yaml"
    other.write_text(TINY.replace("linear: 16", "linear: 32"))
    line = assert_refused(cli("train", other, "--resume", run_dir, "--epochs", "2", "--device", "cpu"),
                          where=f"{other}:5:13")
    assert "layer 'linear1' (linear) now has out: 32 (the run trained out: 16)" in line
    assert "--resume trains the run's own network" in line
    same = tmp_path / "same.yaml"
    same.write_text("# a comment changes nothing\n" + TINY)
    assert cli("train", same, "--resume", run_dir, "--epochs", "2", "--device", "cpu").rc == 0


def test_a_shape_change_in_the_run_spec_is_an_error_not_a_runtime_error(run_dir):
    spec = run_dir / "spec.yaml"
    spec.write_text(spec.read_text().replace("linear: 16", "linear: 17"))
    line = assert_refused(cli("train", "--resume", run_dir, "--epochs", "2", "--device", "cpu"), where=f"{spec}:5:13")
    assert "now has out: 17" in line
    line = assert_refused(cli("evaluate", run_dir, "--device", "cpu"), where=f"{spec}:5:13")
    assert "now has out: 17" in line


def test_an_edited_run_config_that_changes_the_network_is_refused(run_dir):
    config = run_dir / "config.yaml"
    config.write_text(config.read_text().replace("input: null", "input: [1, 16, 4]"))
    line = assert_refused(cli("train", "--resume", run_dir, "--epochs", "2", "--device", "cpu"), located=False)
    assert "the input is now [1, 16, 4] (the run's network took [1, 8, 8])" in line


def test_a_bad_value_in_the_runs_own_config_is_located_there(run_dir):
    config = run_dir / "config.yaml"
    lines = config.read_text().splitlines()
    number = next(i for i, line in enumerate(lines) if line.startswith("lr:"))
    lines[number] = "lr: -0.5"
    config.write_text("\n".join(lines) + "\n")
    assert_refused(cli("train", "--resume", run_dir, "--epochs", "2", "--device", "cpu"),
                   where=f"{config}:{number + 1}:5", contains="lr must not be negative, got -0.5")
    assert_refused(cli("evaluate", run_dir, "--device", "cpu"), where=f"{config}:{number + 1}:5")
    lines[number] = "lr: " + "[" * 330 + "]" * 330  # nested past the reader's 100 levels: no RecursionError
    config.write_text("\n".join(lines) + "\n")
    assert_refused(cli("train", "--resume", run_dir, "--epochs", "2", "--device", "cpu"),
                   where=f"{config}:{number + 1}:104", contains="nested more than 100 deep")


@pytest.mark.slow
def test_a_cross_validation_run_checks_every_fold(base, tmp_path):
    out = tmp_path / "cv"
    train(base[1], TrainConfig(epochs=1, folds=2, device="cpu", out=str(out), batch_size=256),
          console=Console(file=io.StringIO()))
    _flip_in_tensor_data(out / "fold2" / "last.pt")
    assert_refused(cli("train", "--resume", out, "--epochs", "2", "--device", "cpu"), located=False,
                   contains=f"{out / 'fold2' / 'last.pt'}: checksum mismatch")
    _flip_in_tensor_data(out / "fold2" / "best.pt")
    assert_refused(cli("evaluate", out / "fold2", "--device", "cpu"), located=False, contains="checksum mismatch")
    shutil.copy(out / "fold1" / "best.pt", out / "fold2" / "best.pt")
    (out / "fold1" / "summary.json").write_text('{"best_epoch": "one"}')
    shutil.copy(out / "fold1" / "last.pt", out / "fold2" / "last.pt")  # fold 1's weights fit fold 2's network
    config = (out / "config.yaml").read_text()
    assert_refused(cli("train", "--resume", out, "--epochs", "2", "--device", "cpu"),
                   where=f"{out / 'fold1' / 'summary.json'}:1:1", contains="not the summary of a finished fold")
    assert (out / "config.yaml").read_text() == config  # refused before anything was written


@pytest.mark.parametrize("flag, value", [("--seed", "3"), ("--task", "regress"), ("--input", "1,4,16"),
                                         ("--val-fraction", "0.3"), ("--data", "synthetic"),
                                         ("--optimizer", "sgd")])
def test_settings_that_define_the_run_cannot_change_on_resume(run_dir, flag, value):
    line = assert_refused(cli("train", "--resume", run_dir, flag, value, "--device", "cpu"), located=False,
                          contains=f"{flag} ")
    assert "a resumed run keeps it" in line


def test_a_resume_config_file_that_changes_the_seed_is_refused_at_its_line(run_dir, tmp_path):
    cfg = tmp_path / "more.yaml"
    cfg.write_text("epochs: 2\nseed: 7\n")
    line = assert_refused(cli("train", "--resume", run_dir, "--config", cfg, "--device", "cpu"), where=f"{cfg}:2:7")
    assert "seed 7: the run" in line and "seed 0" in line


def _flip_in_tensor_data(path: Path) -> None:
    """Flip one bit in the middle of the largest tensor stored in a checkpoint (a torch zip file)."""
    with zipfile.ZipFile(path) as zf:
        info = max((i for i in zf.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    data = bytearray(path.read_bytes())
    name_len, extra_len = int.from_bytes(data[info.header_offset + 26:info.header_offset + 28], "little"), \
        int.from_bytes(data[info.header_offset + 28:info.header_offset + 30], "little")
    data[info.header_offset + 30 + name_len + extra_len + info.file_size // 2] ^= 0x10
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("name", ["last.pt", "best.pt"])
def test_a_bit_flipped_checkpoint_is_refused_never_resumed(run_dir, name):
    _flip_in_tensor_data(run_dir / name)
    before = (run_dir / "metrics.jsonl").read_text()
    line = assert_refused(cli("train", "--resume", run_dir, "--epochs", "2", "--device", "cpu"), located=False)
    assert f"{run_dir / name}: checksum mismatch" in line
    assert (run_dir / "metrics.jsonl").read_text() == before  # refused before anything was written
    if name == "best.pt":
        assert_refused(cli("evaluate", run_dir, "--device", "cpu"), located=False, contains="checksum mismatch")


def test_a_truncated_or_foreign_checkpoint_is_one_line(run_dir):
    data = (run_dir / "last.pt").read_bytes()
    (run_dir / "last.pt").write_bytes(data[: len(data) // 2])
    assert_refused(cli("train", "--resume", run_dir, "--device", "cpu"), located=False,
                   contains="not a readable checkpoint")

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {run_dir}/pwned",))

    torch.save({"format": 2, "model": Evil()}, run_dir / "last.pt")
    assert_refused(cli("train", "--resume", run_dir, "--device", "cpu"), located=False,
                   contains="not a readable checkpoint")
    assert not (run_dir / "pwned").exists()  # weights_only=True: the pickle's code never ran
    state = checkpoint.load(run_dir / "best.pt")
    state["format"] = 1
    del state["sha256"]
    torch.save(state, run_dir / "last.pt")
    assert_refused(cli("train", "--resume", run_dir, "--device", "cpu"), located=False, contains="older archcalc")


def test_every_single_bit_flip_anywhere_in_a_checkpoint_is_caught(run_dir):
    """Zip padding, headers, the pickle, tensor bytes, the central directory and the checksum itself:
    PyTorch would ignore some of these bytes, the file checksum does not."""
    path = run_dir / "last.pt"
    data = path.read_bytes()
    for offset in [0, 40, 70, 100, *range(200, len(data), max(1, len(data) // 40)), len(data) - 90, len(data) - 1]:
        flipped = bytearray(data)
        flipped[offset] ^= 0x04
        path.write_bytes(bytes(flipped))
        with pytest.raises(Exception) as info:
            checkpoint.load(path)
        assert "checksum mismatch" in str(info.value), (offset, str(info.value))
    path.write_bytes(data)
    assert checkpoint.load(path)["epoch"] == 1


def test_a_checkpoint_rewritten_without_the_file_checksum_is_refused(run_dir):
    torch.save(checkpoint.load(run_dir / "last.pt"), run_dir / "last.pt")  # same contents, plain torch.save
    assert_refused(cli("train", "--resume", run_dir, "--device", "cpu"), located=False, contains="has no file checksum")


def test_a_checkpoint_digest_covers_values_not_only_tensors(run_dir):
    state = checkpoint.load(run_dir / "last.pt")
    assert state["sha256"] == checkpoint.digest(state)
    for change in (lambda s: s.update(epoch=5), lambda s: s["config"].update(lr=1.0),
                   lambda s: next(iter(s["model"].values())).view(-1)[0].add_(1e-7)):
        copy = checkpoint.load(run_dir / "last.pt")
        change(copy)
        assert checkpoint.digest(copy) != state["sha256"]


# --- 5. the remaining tracebacks -------------------------------------------------------------------------
@pytest.mark.parametrize("content, where", [
    ('{"epoch": 1, "train_loss": 2.0\n', ":1:31"),  # truncated
    ("not json at all\n", ":1:1"),
    ('{"epoch": 1}\n{"epoch": 3}\n', ":2:1"),  # epochs out of order
    ('[1, 2]\n', ":1:1"),
    ('{"epoch": 1, "lr": "fast"}\n', ":1:1"),
])
def test_a_damaged_metrics_file_is_refused_at_its_line_on_resume(run_dir, content, where):
    path = run_dir / "metrics.jsonl"
    path.write_text(content)
    assert_refused(cli("train", "--resume", run_dir, "--epochs", "2", "--device", "cpu"), where=f"{path}{where}",
                   contains="metrics.jsonl is damaged")
    assert path.read_text() == content


def test_out_an_existing_file_or_below_one(base, tmp_path):
    (tmp_path / "file").write_text("mine")
    for out in (tmp_path / "file", tmp_path / "file" / "sub"):
        assert_refused(cli("train", base[1], "--out", out, "--epochs", "1", "--device", "cpu"), located=False,
                       contains="not a folder")
    assert (tmp_path / "file").read_text() == "mine"
    assert_refused(cli("train", "--resume", tmp_path / "nothing", "--device", "cpu"), located=False)
    assert_refused(cli("evaluate", tmp_path / "file", "--device", "cpu"), located=False)


def _mount_tmpfs(path: Path, options: str) -> bool:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True)
    return done.returncode == 0


def test_out_in_a_read_only_folder(base, tmp_path):
    ro = tmp_path / "ro"
    mounted = False
    if os.geteuid() != 0:
        ro.mkdir()
        ro.chmod(0o555)
    elif not (mounted := _mount_tmpfs(ro, "ro,size=64k")):
        pytest.skip("root without mount: a read-only folder cannot be made here")
    try:
        assert_refused(cli("train", base[1], "--out", ro / "run", "--epochs", "1", "--device", "cpu"), located=False,
                       contains="cannot create the run folder")
    finally:
        if mounted:
            subprocess.run(["umount", str(ro)], check=True)
        else:
            ro.chmod(0o755)


@pytest.mark.slow
def test_a_file_size_limit_fails_the_first_checkpoint_write_in_one_line(base, tmp_path):
    """RLIMIT_FSIZE makes a write past 8 KiB fail with EFBIG, as a full disk fails with ENOSPC: the
    small files fit, the first checkpoint does not; no temporary file is left behind."""
    out = tmp_path / "run"
    res = run_cli(["train", base[1], "--out", out, "--epochs", "1", "--device", "cpu"], memory_mb=TORCH_MEMORY_MB,
                  timeout=120, file_size_bytes=8192)
    line = assert_refused(res, located=False, contains=f"{out / 'last.pt'}: cannot write: File too large")
    assert "kept" not in line  # there was no earlier last.pt
    assert sorted(p.name for p in out.iterdir()) == [".lock", "config.yaml", "data.json", "metrics.jsonl", "spec.yaml"]


@pytest.mark.slow
def test_a_full_disk_mid_run_keeps_the_last_good_checkpoint(tmp_path):
    """A tmpfs that holds the run up to epoch 1 (last.pt, best.pt and one temporary copy) but not the
    third copy that epoch 2 needs. Skipped where tmpfs cannot be mounted (not root)."""
    spec = tmp_path / "wide.yaml"  # ~20k parameters: a checkpoint of ~250 KB, far above the small files
    spec.write_text("name: wide\ninput: [1, 8, 8]\nlayers:\n  - flatten\n  - linear: 256\n  - relu\n  - linear: 10\n")
    probe = tmp_path / "probe"
    train(spec, TrainConfig(epochs=1, device="cpu", out=str(probe)), console=Console(file=io.StringIO()))
    pages = -(-(probe / "last.pt").stat().st_size // 4096)
    disk = tmp_path / "disk"
    if not _mount_tmpfs(disk, f"size={(2 * pages + 8) * 4096}"):
        pytest.skip("tmpfs cannot be mounted here (the file-size-limit test covers the write failure)")
    try:
        res = cli("train", spec, "--out", disk / "run", "--epochs", "3", "--device", "cpu")
        line = assert_refused(res, located=False, contains="No space left on device")
        assert "was kept" in line
        state = checkpoint.load(disk / "run" / "last.pt")  # whole, and its checksum holds
        assert state["epoch"] == 1
        assert not [p for p in (disk / "run").iterdir() if p.name.endswith(".tmp")]
    finally:
        subprocess.run(["umount", str(disk)], check=True)


def _forge(path: Path, change) -> None:
    """Rewrite a checkpoint with `change` applied and a matching checksum: a forgery, not damage."""
    state = checkpoint.load(path)
    change(state)
    checkpoint.save(path, state)  # both checksums recomputed, as a forger who read this code would


@pytest.mark.parametrize("change, contains", [
    (lambda s: s["network"].update(layers="x"), "network must list the layers"),
    (lambda s: s.update(epoch=-1), "must be whole numbers"),
    (lambda s: s.update(step=3, partial_losses=None), "partial_losses must hold one loss per step"),
    (lambda s: s["optimizer"]["state"][0].update(exp_avg=torch.zeros(3)), "does not fit this run"),
    (lambda s: s["model"].update({next(iter(s["model"])): torch.zeros(2, 2)}), "holds the weights of another network"),
])
def test_a_forged_checkpoint_with_a_valid_checksum_is_still_one_line(run_dir, change, contains):
    _forge(run_dir / "last.pt", change)
    assert_refused(cli("train", "--resume", run_dir, "--epochs", "2", "--device", "cpu"), located=False,
                   contains=contains)


def test_out_and_resume_naming_two_folders_is_refused(run_dir, tmp_path):
    assert_refused(cli("train", "--resume", run_dir, "--out", tmp_path / "elsewhere", "--device", "cpu"),
                   located=False, contains="name two run folders")
    assert not (tmp_path / "elsewhere").exists()


@pytest.mark.slow
def test_a_writer_killed_mid_write_leaves_a_temporary_that_the_next_run_removes(run_dir):
    """kill -9 between creating the temporary file and renaming it: the old file is whole, and the
    next train on the folder (holding the lock, so no writer is at work) deletes the leftover."""
    leftover = run_dir / ".last.pt.12345.0badcafe.tmp"
    leftover.write_bytes(b"half a checkpoint")
    mine = run_dir / ".notes.tmp"  # not one of ours: kept
    mine.write_text("keep")
    assert checkpoint.load(run_dir / "last.pt")["epoch"] == 1
    assert cli("train", "--resume", run_dir, "--epochs", "2", "--device", "cpu").rc == 0
    assert not leftover.exists() and mine.read_text() == "keep"
    assert checkpoint.load(run_dir / "last.pt")["epoch"] == 2


@pytest.mark.slow
def test_flags_given_on_resume_win_over_the_saved_optimizer_settings(base, tmp_path):
    out = tmp_path / "sgd"
    train(base[1], TrainConfig(epochs=1, device="cpu", out=str(out), optimizer="sgd", momentum=0.9, lr=0.01),
          console=Console(file=io.StringIO()))
    assert cli("train", "--resume", out, "--epochs", "2", "--momentum", "0.5", "--device", "cpu").rc == 0
    groups = checkpoint.load(out / "last.pt")["optimizer"]["param_groups"]
    assert [g["momentum"] for g in groups] == [0.5, 0.5]  # not the 0.9 that load_state_dict brought back
