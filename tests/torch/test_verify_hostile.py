"""verify agrees with analyze, and refuses what PyTorch cannot hold (issue 10).

- channel-mixing layers that are not elementwise (softmax, log_softmax along channels) keep the
  receptive field: the probe's stand-in must pass gradient like the real dependence does;
- what does not fit is refused or skipped from the planned sizes, before anything is allocated,
  on every device including meta (each case runs under tests/hostile.py's TORCH_MEMORY_MB cap);
- sizes past PyTorch's int64 are refused with the place in the spec, before torch sees them.
"""
import json

import pytest

pytest.importorskip("torch")

from typer.testing import CliRunner  # noqa: E402

from archcalc.cli import app  # noqa: E402
from hostile import TORCH_MEMORY_MB, Run, assert_refused, run_cli  # noqa: E402

runner = CliRunner()

HEAD = "input: [3, 16, 16]\nlayers:\n  - conv: {out: 4, kernel: 3, padding: 1}\n"
TAIL = "  - conv: {out: 3, kernel: 3, padding: 1}\n  - {add: {}, from: [conv2, input]}\n"


def _spec(tmp_path, text, name="spec.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def _invoke(*args) -> Run:
    """In-process, for cases that allocate little (the memory bombs run in their own process)."""
    result = runner.invoke(app, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return Run(result.exit_code, result.stdout, result.stderr, 0.0)


def _verify_json(path, *options, isolated=False):
    args = ["verify", path, "--json", *options]
    run = run_cli(args, timeout=240, memory_mb=TORCH_MEMORY_MB) if isolated else _invoke(*args)
    assert "Traceback" not in run.stderr, run.stderr
    return run, json.loads(run.stdout)


# Fields by hand (independent of archcalc): two 3x3 convolutions with padding 1 see 5x5 windows
# starting 2 pixels before the output (size 5, stride 1, start -2); the add with the input keeps
# the union, the same 5x5 window.
FIELD = {"size": [5, 5], "stride": [1, 1], "start": [-2, -2]}


@pytest.mark.parametrize("middle", [
    "  - softmax\n",                      # the case: softmax over channels
    "  - log_softmax\n",
    "  - {softmax: {dim: 0}}\n",
    "  - softmax\n  - {name: gate, multiply: {}, from: [softmax1, conv1]}\n",  # x * softmax(x)
    "  - log_softmax\n  - relu\n  - softmax\n",
])
def test_channel_softmax_keeps_the_field(tmp_path, middle):
    path = _spec(tmp_path, HEAD + middle + TAIL)
    run, data = _verify_json(path)
    assert run.rc == 0, data["mismatches"]
    add = next(layer for layer in data["layers"] if layer["name"] == "add1")
    rf = add["figures"]["rf"]
    assert rf["ok"] is True
    assert {k: rf["measured"][k] for k in FIELD} == FIELD


def test_softmax_on_the_input_then_a_residual_add(tmp_path):
    path = _spec(tmp_path, "input: [3, 16, 16]\nlayers:\n  - softmax\n  - {add: {}, from: [softmax1, input]}\n"
                           "  - conv: {out: 2, kernel: 3}\n")
    run, data = _verify_json(path)
    assert run.rc == 0, data["mismatches"]
    conv = next(layer for layer in data["layers"] if layer["name"] == "conv1")
    assert conv["figures"]["rf"]["ok"] is True
    assert conv["figures"]["rf"]["measured"]["size"] == [3, 3]


@pytest.mark.slow
def test_a_huge_input_on_meta_checks_what_it_can_without_allocating(tmp_path):
    # [3, 1e5, 1e5]: 120 GB of float32 input; the probe alone would plan 240 GB+ in float64.
    path = _spec(tmp_path, "input: [3, 100000, 100000]\nlayers:\n  - conv: {out: 4, kernel: 3}\n  - relu\n")
    run, data = _verify_json(path, "--device", "meta", isolated=True)
    assert run.rc == 0
    conv = data["layers"][0]["figures"]
    assert conv["output_shape"]["ok"] and conv["output_shape"]["measured"] == [4, 99998, 99998]
    assert conv["macs"]["measured"] == 4 * 99998 * 99998 * 27
    assert conv["rf"]["ok"] is None and "not probed" in conv["rf"]["note"]


@pytest.mark.slow
def test_a_huge_input_on_cpu_is_refused_at_the_input(tmp_path):
    path = _spec(tmp_path, "input: [3, 100000, 100000]\nlayers:\n  - conv: {out: 4, kernel: 3}\n")
    run = run_cli(["verify", path], timeout=240, memory_mb=TORCH_MEMORY_MB)
    assert_refused(run, where=f"{path}:1:8", contains="--device meta")


@pytest.mark.slow
def test_huge_weights_on_cpu_are_refused_at_the_layer(tmp_path):
    # 200000 x 200000 float32 weights: 149 GiB.
    path = _spec(tmp_path, "input: [200000]\nlayers:\n  - relu\n  - {name: big, linear: 200000}\n")
    run = run_cli(["verify", path], timeout=240, memory_mb=TORCH_MEMORY_MB)
    assert_refused(run, where=f"{path}:4:5", contains="weights")


@pytest.mark.parametrize("text, where, contains", [
    ("input: [3, 8, 8]\nlayers:\n  - conv: {out: 4, kernel: 3, stride: '2**64'}\n", "3:39", "'stride'"),
    ("input: [3, 8, 8]\nlayers:\n  - conv: {out: 4, kernel: 3, stride: 9223372036854775808}\n", "3:39", "'stride'"),
    ("input: [1, 4294967296, 4294967296]\nlayers:\n  - conv: {out: 4, kernel: 1}\n", "1:8", "input"),
    ("input: [4294967296]\nlayers:\n  - {name: wide, linear: 4294967296}\n", "3:5", "weights"),
    ("input: [2, 3037000500, 3037000500]\nlayers:\n  - conv: {out: 1, kernel: 1}\n", "1:8", "input"),
])
@pytest.mark.parametrize("command", [["verify", "--device", "meta"], ["export", "--to", "pytorch"]])
def test_sizes_past_int64_are_refused_where_written(tmp_path, text, where, contains, command):
    path = _spec(tmp_path, text)
    run = _invoke(command[0], path, *command[1:])
    assert_refused(run, where=f"{path}:{where}", contains=contains)


@pytest.mark.parametrize("command", [["verify"], ["verify", "--device", "meta"], ["export", "--to", "pytorch"]])
def test_symbolic_sizes_need_numbers_first(tmp_path, command):
    # Every size check above compares numbers: a symbolic spec is told to give them, before any.
    path = _spec(tmp_path, "input: [1, H, W]\nlayers:\n  - conv: {out: 4, kernel: 3}\n")
    run = _invoke(command[0], path, *command[1:])
    assert_refused(run, where=f"{path}:1:8", contains="--set")


@pytest.mark.parametrize("dim", [1, 2, -1])
def test_softmax_over_one_of_two_spatial_axes_is_untracked_not_a_false_global(tmp_path, dim):
    # Output (h, w) then reads a whole column but a window across: "global" was a false claim
    # that the probe refuted (exit 1); it is not tracked now, and the rest still matches.
    path = _spec(tmp_path, HEAD + f"  - softmax: {dim}\n" + TAIL)
    run, data = _verify_json(path)
    assert run.rc == 0, data["mismatches"]
    rf = {layer["name"]: layer["figures"]["rf"] for layer in data["layers"]}
    assert rf["conv1"]["ok"] is True and rf["softmax1"]["analytic"] is None and rf["add1"]["ok"] is None


def test_softmax_over_the_only_spatial_axis_is_global_and_measured(tmp_path):
    path = _spec(tmp_path, "input: [4, 32]\nlayers:\n  - conv: {out: 4, kernel: 3}\n  - softmax: 1\n"
                           "  - conv: {out: 2, kernel: 3}\n")
    run, data = _verify_json(path)
    assert run.rc == 0, data["mismatches"]
    assert [layer["figures"]["rf"]["measured"] for layer in data["layers"][1:]] == ["global", "global"]
