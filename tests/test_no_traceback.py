"""No traceback, ever (issue 14 point 2): each of these mistakes is one `error:` line on stderr and
exit code 2, nothing half-written, and the graph drawings speak in the user's symbols."""
import errno
import tempfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from archcalc.cli import app

ROOT = Path(__file__).resolve().parents[1]
HOMEWORK = ROOT / "specs" / "homework" / "conv_pool_fc.yaml"  # input [1, H, W], H and W multiple_of 2
ANSWER_KEY = ROOT / "specs" / "homework" / "conv_pool_fc.answers.yaml"
DIGITS = ROOT / "specs" / "lecture" / "digits_cnn.yaml"
runner = CliRunner()


def _refused(*args) -> str:
    """Run the command; it must exit 2 with exactly one `error:` line on stderr (no traceback) and
    nothing on stdout. Returns that line."""
    result = runner.invoke(app, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    lines = result.stderr.splitlines()
    assert result.exit_code == 2, (result.exit_code, result.stderr)
    assert len(lines) == 1 and "error: " in lines[0], result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    return lines[0]


# --- a symbolic spec where PyTorch needs numbers -------------------------------------------------

def test_verify_of_a_symbolic_spec_asks_for_numbers():
    pytest.importorskip("torch")
    line = _refused("verify", HOMEWORK)
    assert "symbolic sizes (H, W)" in line and "--set H=28" in line and "Relational" not in line


def test_verify_of_a_symbolic_spec_with_one_symbol_given_names_the_other():
    pytest.importorskip("torch")
    line = _refused("verify", HOMEWORK, "--set", "H=28")
    assert "symbolic sizes (W)" in line and "--set W=28" in line


def test_export_pytorch_of_a_symbolic_spec_asks_for_numbers():
    pytest.importorskip("torch")
    line = _refused("export", HOMEWORK, "--to", "pytorch")
    assert "symbolic sizes (H, W)" in line and "--set" in line


def test_a_symbolic_width_is_not_called_the_inputs(tmp_path):
    # only a layer's width is symbolic (the lecture's N_H): the message says so, at that layer
    pytest.importorskip("torch")
    spec = tmp_path / "mlp.yaml"
    spec.write_text("input: [8]\nsymbols: {N_H: {}}\nlayers:\n  - linear: N_H\n  - relu\n  - linear: 1\n")
    for command in (["verify"], ["export", "--to", "pytorch"]):
        line = _refused(*command[:1], spec, *command[1:])
        assert line == (f"{spec}:4:5: error: the spec has symbolic sizes (N_H in its layer sizes); a PyTorch "
                        "model needs numbers: give them with --set (e.g. --set N_H=28)")
    line = _refused("train", spec, "--data", "synthetic", "-o", tmp_path / "run")
    assert line == (f"{spec}:4:5: error: the spec has symbolic sizes (N_H in its layer sizes); training needs "
                    "numbers: give them with --set (e.g. --set N_H=32)")
    assert not (tmp_path / "run").exists()
    spec.write_text("input: [3, H, 8]\nsymbols: {C: {}}\nlayers:\n  - conv: {out: C, kernel: 3}\n")
    assert "symbolic sizes (C in its layer sizes; H in the input)" in _refused("verify", spec)


# --- output files ---------------------------------------------------------------------------------

@pytest.mark.parametrize("to", ["dot", "mermaid"])
def test_export_to_a_folder(tmp_path, to):
    line = _refused("export", HOMEWORK, "--to", to, "-o", tmp_path)
    assert line.endswith("cannot write it: it is a folder")
    assert list(tmp_path.iterdir()) == []


def test_export_into_a_missing_folder(tmp_path):
    line = _refused("export", HOMEWORK, "--to", "dot", "-o", tmp_path / "nope" / "net.dot")
    assert "cannot write it: No such file or directory" in line


def test_export_on_a_read_only_file_system(tmp_path, monkeypatch):
    # A read-only mount cannot be made without privileges; the write fails as it would there (EROFS).
    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    line = _refused("export", HOMEWORK, "--to", "dot", "-o", tmp_path / "net.dot")
    assert line.endswith("cannot write it: Read-only file system")
    assert not (tmp_path / "net.dot").exists()


def test_check_gradebook_a_folder_is_refused_before_any_verdict(tmp_path):
    line = _refused("check", HOMEWORK, ANSWER_KEY, "--gradebook", tmp_path)
    assert line.endswith("cannot write it: it is a folder")  # and stdout is empty: no table first


def test_check_gradebook_in_a_missing_folder(tmp_path):
    line = _refused("check", HOMEWORK, ANSWER_KEY, "--gradebook", tmp_path / "nope" / "grades.csv")
    assert "does not exist" in line and "nope" in line
    assert not (tmp_path / "nope").exists()


def test_check_gradebook_still_written(tmp_path):
    book = tmp_path / "grades.csv"
    result = runner.invoke(app, ["check", str(HOMEWORK), str(ANSWER_KEY), "--gradebook", str(book)])
    assert result.exit_code == 0, result.stderr
    assert book.read_text().splitlines()[0].startswith("student")


# --- devices that are not here ---------------------------------------------------------------------

@pytest.mark.parametrize("device", ["mps", "cuda"])
def test_train_on_an_absent_device_leaves_no_run_folder(tmp_path, monkeypatch, device):
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.chdir(tmp_path)
    line = _refused("train", DIGITS, "--data", "digits", "--task", "classify", "--epochs", "1",
                    "--device", device, "-o", tmp_path / "run")
    assert line.startswith(f"error: --device {device}: ") and "not available" in line
    assert list(tmp_path.iterdir()) == []  # no half-made run folder (no config.yaml, spec.yaml, .lock)


def test_train_on_an_unknown_device():
    pytest.importorskip("torch")
    line = _refused("train", DIGITS, "--data", "digits", "--device", "tpu")
    assert "'tpu' is not one of auto, cpu, cuda, mps" in line


@pytest.mark.parametrize("device, said", [("tpu", "'tpu' is not one of auto, cpu, cuda (cuda:N), mps"),
                                          ("cuda:x", "'cuda:x' is not one of"),
                                          ("mps", "--device mps: MPS (Apple silicon's GPU) is not available"),
                                          ("cuda", "--device cuda: CUDA is not available")])
def test_evaluate_on_an_absent_or_unknown_device(tmp_path, monkeypatch, device, said):
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    line = _refused("evaluate", tmp_path, "--device", device)
    assert said in line and "Expected one of" not in line and "Storage device" not in line


# --- drawings in the user's symbols ------------------------------------------------------------------

@pytest.mark.parametrize("to, label", [("dot", '"input" [label="input\\n[1, H, W]", shape=ellipse];'),
                                       ("mermaid", 'input(["input<br/>[1, H, W]"])')])
def test_drawings_show_the_users_symbols(to, label):
    # `H: {multiple_of: 2}` is H = 2*H_2 inside; the input was drawn as [1, 2*H_2, 2*W_2].
    result = runner.invoke(app, ["export", str(HOMEWORK), "--to", to])
    assert result.exit_code == 0, result.stderr
    assert label in result.stdout.splitlines()[4 if to == "dot" else 2]
    assert "H_2" not in result.stdout and "W_2" not in result.stdout
    assert "[16, H/2, W/2]" in result.stdout  # the pooling's output, as analyze shows it


# --- Ctrl-C while a command imports numpy or torch ---------------------------------------------------

def _ctrl_c_then(error):
    """What Ctrl-C in the middle of an import does: the KeyboardInterrupt is lost inside the import
    machinery, and what fails next is `error` (numpy half-made gives a RecursionError)."""
    import os
    import signal
    import time

    def fake(*args, **kwargs):
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
        except KeyboardInterrupt:
            pass
        raise error

    return fake


def test_ctrl_c_while_train_starts_is_one_line_not_a_recursion_error(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    from archcalc.torch import train as tr

    monkeypatch.setattr(tr, "train", _ctrl_c_then(RecursionError("maximum recursion depth exceeded")))
    result = runner.invoke(app, ["train", str(DIGITS), "--data", "digits", "-o", str(tmp_path / "run")])
    assert result.exit_code == 130 and result.stderr.splitlines() == ["error: interrupted"], result.stderr
    assert not (tmp_path / "run").exists()


def test_ctrl_c_while_torch_imports_is_not_torch_is_missing(monkeypatch):
    import builtins

    real = builtins.__import__
    stop = _ctrl_c_then(ImportError("cannot import name '_C' from partially initialized module 'torch'"))
    monkeypatch.setattr(builtins, "__import__",
                        lambda name, *a, **k: stop() if name == "torch" else real(name, *a, **k))
    result = runner.invoke(app, ["verify", str(HOMEWORK)])
    assert result.exit_code == 130 and result.stderr.splitlines() == ["error: interrupted"], result.stderr


def test_a_recursion_error_without_ctrl_c_is_still_shown(monkeypatch):
    pytest.importorskip("torch")
    from archcalc.torch import train as tr

    def broken(*args, **kwargs):
        raise RecursionError("a real bug")

    monkeypatch.setattr(tr, "train", broken)
    result = runner.invoke(app, ["train", str(DIGITS), "--data", "digits"])
    assert isinstance(result.exception, RecursionError)  # a bug is not reported as an interruption


def test_the_ctrl_c_handler_is_put_back():
    import signal

    before = signal.getsignal(signal.SIGINT)
    runner.invoke(app, ["analyze", str(HOMEWORK)])
    assert signal.getsignal(signal.SIGINT) is before


# --- Ctrl-C pressed several times while train runs: the real program, the real signal ----------------

@pytest.mark.slow
@pytest.mark.parametrize("presses, gap", [(1, 0), (2, 0.01), (3, 0.05), (3, 0.3), (5, 0.1)])
def test_ctrl_c_pressed_again_and_again_while_training_is_one_line_exit_130(tmp_path, presses, gap):
    """The first press saves a checkpoint at the next step boundary and says where; a second one
    stops at once; presses after that (while the checkpoint or the message is written, or Python
    shuts down) change nothing: one line on stderr, exit 130, never a traceback or death by SIGINT."""
    pytest.importorskip("torch")
    import signal
    import subprocess
    import sys
    import time

    proc = subprocess.Popen([sys.executable, "-m", "archcalc", "train", str(DIGITS), "--data", "digits",
                             "--epochs", "200", "-o", str(tmp_path / "run")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for line in proc.stdout:  # training has begun once an epoch is reported
            if line.startswith("epoch"):
                break
        for _ in range(presses):
            proc.send_signal(signal.SIGINT)
            time.sleep(gap)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, (proc.returncode, err)
    lines = err.splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0] == "error: interrupted" or (lines[0].startswith("interrupted at epoch")
                                                  and "continue with --resume" in lines[0]), err
    if presses == 1:  # one press: a checkpoint to resume from
        assert lines[0].startswith("interrupted at epoch") and (tmp_path / "run" / "last.pt").exists()


def test_a_ctrl_c_typer_would_swallow_is_said(monkeypatch):
    # typer turns a KeyboardInterrupt into a silent exit 130 (a second press while train saves)
    pytest.importorskip("torch")
    import signal

    from archcalc.torch import train as tr

    def second_press(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(tr, "train", second_press)
    before = signal.getsignal(signal.SIGINT)
    result = runner.invoke(app, ["train", str(DIGITS), "--data", "digits"])
    assert result.exit_code == 130 and result.stderr.splitlines() == ["error: interrupted"], result.stderr
    assert signal.getsignal(signal.SIGINT) is before  # in-process callers get their handler back
