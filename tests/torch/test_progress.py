"""Progress of long work on stderr (issue 14 point 6): `verify` and `export --to onnx` draw one
transient status line when stderr is a terminal, nothing in a pipe or with --json/-q, and their
standard output is byte for byte the same either way. The terminal is a real pseudo-terminal
(python's pty module) on the command's stderr; its stdout stays a pipe."""
import fcntl
import io
import os
import pty
import select
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from archcalc.torch.progress import report, status

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "specs" / "lecture" / "digits_cnn.yaml"


def _pty(columns=120):
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    return master, slave


def _drain(master) -> bytes:
    chunks = []
    while True:
        ready, _, _ = select.select([master], [], [], 0)
        if not ready:
            break
        try:
            data = os.read(master, 65536)
        except OSError:  # the other side is closed (Linux: EIO)
            break
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks)


def run_in_terminal(*args):
    """The CLI with stderr on a pseudo-terminal: (exit code, stdout bytes, what the terminal got)."""
    master, slave = _pty()
    proc = subprocess.Popen([sys.executable, "-m", "archcalc", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=slave, stdin=subprocess.DEVNULL)
    os.close(slave)
    chunks = []
    while True:  # read while it runs: a full terminal buffer would stall it
        try:
            data = os.read(master, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    out = proc.stdout.read()
    proc.wait()
    os.close(master)
    return proc.returncode, out, b"".join(chunks)


def run_in_pipe(*args):
    proc = subprocess.run([sys.executable, "-m", "archcalc", *map(str, args)], capture_output=True,
                          stdin=subprocess.DEVNULL)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.mark.slow
def test_verify_shows_its_stages_in_a_terminal_and_nothing_in_a_pipe():
    code, out, terminal = run_in_terminal("verify", SPEC)
    piped_code, piped_out, piped_err = run_in_pipe("verify", SPEC)
    assert code == piped_code == 0
    assert out == piped_out and b"all figures match PyTorch" in out  # stdout byte for byte the same
    assert piped_err == b""  # a pipe gets no progress
    text = terminal.decode()
    for stage in ("building the model", "forward pass: shapes and MACs", "probing receptive fields",
                  "counting parameters"):
        assert stage in text, text
    assert "0/10" in text  # the forward pass counts the spec's 10 layers
    # The line is erased at the end (rich's transient display: erase the line, cursor shown
    # again): nothing follows the last erase.
    assert "\x1b[?25h" in text and text.rsplit("\x1b[2K", 1)[1] == ""
    assert "MISMATCH" not in text and "error" not in text


@pytest.mark.parametrize("flag", ["--json", "-q"])
@pytest.mark.slow
def test_verify_json_and_quiet_draw_nothing_even_in_a_terminal(flag):
    code, out, terminal = run_in_terminal("verify", SPEC, flag)
    assert code == 0 and terminal == b""
    assert out == run_in_pipe("verify", SPEC, flag)[1]


@pytest.mark.slow
def test_export_onnx_shows_its_stages_in_a_terminal(tmp_path):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")
    out_file = tmp_path / "net.onnx"
    code, out, terminal = run_in_terminal("export", SPEC, "--to", "onnx", "-o", out_file)
    assert code == 0 and out == b"" and out_file.stat().st_size > 0
    text = terminal.decode()
    assert "building the model" in text and "exporting to ONNX (torch.onnx.export, dynamic batch)" in text
    assert text.endswith(f"wrote {out_file}\r\n")  # the line the command always prints, after the erased status
    code, out, err = run_in_pipe("export", SPEC, "--to", "onnx", "-o", out_file)
    assert code == 0 and out == b"" and err == f"wrote {out_file}\n".encode()


def test_status_is_none_off_a_terminal_or_when_not_wanted():
    with status(stream=io.StringIO()) as progress:
        assert progress is None
    master, slave = _pty()
    with os.fdopen(slave, "w") as stream:
        with status(False, stream=stream) as progress:
            assert progress is None
    assert _drain(master) == b""
    os.close(master)
    report(None, "anything", 1, 2, "x")  # no callback: nothing happens


def test_status_shows_user_text_as_written():
    master, slave = _pty()
    with os.fdopen(slave, "w") as stream:
        with status(stream=stream) as progress:
            progress("stage [bold]one[/]", 3, 7, "net[bold]x.[/]")
        text = _drain(master).decode()
    os.close(master)
    assert "stage [bold]one[/]" in text and "3/7 net[bold]x.[/]" in text  # never read as rich markup
    assert "\x1b[1m" not in text  # (no bold was switched on by the names)
