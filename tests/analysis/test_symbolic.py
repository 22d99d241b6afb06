"""Symbolic sizes: formulas must equal the numeric analysis wherever they are evaluated."""
import json
from pathlib import Path

import pytest
import sympy
from typer.testing import CliRunner

import archcalc
from archcalc.geometry.receptive_field import RF
from archcalc.cli import app

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()
H, W = sympy.symbols("H W", integer=True, positive=True)

HOMEWORK = """
input: [1, H, W]
layers:
  - conv: {out: 16, kernel: 5, padding: 2}
  - relu
  - maxpool: 2
  - flatten
  - {name: fc, linear: 10}
"""


def symbolic_version(path: Path) -> str:
    """The spec's text with its image input [C, n, n] replaced by [C, H, W]."""
    text = path.read_text()
    report = archcalc.analyze(path)
    c = report.input_shape[0]
    old = f"input: [{', '.join(map(str, report.input_shape))}]"
    assert old in text
    return text.replace(old, f"input: [{c}, H, W]")


def figures(report):
    for row in report.layers:
        yield row.name, "output_shape", row.output_shape
        yield row.name, "params", row.params
        yield row.name, "macs", row.macs
    t = report.totals
    yield "total", "params", t.params
    yield "total", "macs", t.macs
    yield "total", "activation_bytes", t.activation_bytes


def value_at(value, h, w):
    if isinstance(value, tuple):
        return tuple(value_at(v, h, w) for v in value)
    if isinstance(value, int):
        return value
    return int(value.subs({H: h, W: w}))


@pytest.mark.parametrize("spec", ["zoo/resnet18.yaml", "zoo/mobilenet_v2.yaml", "zoo/vgg16.yaml",
                                  "lecture/conv3x3_stack.yaml", "lecture/rf_stack_stride2.yaml"])
def test_formulas_equal_numeric_analysis_at_several_sizes(spec):
    text = symbolic_version(ROOT / "specs" / spec)
    symbolic = archcalc.analyze_text(text)
    for h, w in [(224, 224), (97, 130), (64, 33)]:
        numeric = archcalc.analyze_text(text, bindings={"H": h, "W": w})
        for (name, fig, formula), (_, _, number) in zip(figures(symbolic), figures(numeric)):
            assert value_at(formula, h, w) == number, (spec, name, fig, h, w, formula)
        # Receptive fields do not depend on the size, except after adaptive pooling to a size
        # (VGG's 7 x 7), whose windows do: not tracked symbolically.
        for a, b in zip(symbolic.layers, numeric.layers):
            assert a.rf == b.rf or (a.rf is None and a.kind.startswith(("adaptive", "flatten", "linear",
                                                                         "relu", "dropout"))), a.name


def test_the_homework_answer_reads_as_the_lecture_writes_it():
    report = archcalc.analyze_text(HOMEWORK)
    # conv: 5*5*1*16 + 16 = 416; pool halves each side (floor, as PyTorch): fc has
    # 16*floor(H/2)*floor(W/2)*10 + 10 parameters.
    assert report.layer("conv1").params == 416
    assert sympy.simplify(report.layer("fc").params - (160 * sympy.floor(H / 2) * sympy.floor(W / 2) + 10)) == 0
    assert report.layer("maxpool1").rf == RF((6, 6), (2, 2), (-2, -2))
    divisible = archcalc.analyze_text(HOMEWORK, assume_divisible=True)
    assert divisible.totals.trainable_params == 40 * H * W + 426
    assert divisible.constraints == {"H": {"multiple_of": 2}, "W": {"multiple_of": 2}}
    assert archcalc.analyze_text(HOMEWORK, bindings={"H": 28, "W": 28}).totals.trainable_params == 31_786


def test_assume_divisible_matches_numbers_at_multiples_of_the_total_stride():
    text = symbolic_version(ROOT / "specs" / "zoo" / "resnet18.yaml")
    report = archcalc.analyze_text(text, assume_divisible=True)
    assert report.constraints == {"H": {"multiple_of": 32}, "W": {"multiple_of": 32}}
    assert "floor" not in str(report.totals.macs)
    for h, w in [(224, 224), (32, 64), (320, 96)]:
        numeric = archcalc.analyze_text(text, bindings={"H": h, "W": w})
        assert value_at(report.totals.macs, h, w) == numeric.totals.macs
        assert value_at(report.totals.trainable_params, h, w) == numeric.totals.trainable_params == 11_689_512


def test_constraints_and_their_validity_check():
    text = ("input: [1, H, W]\nsymbols: {H: {multiple_of: 4, min: 8}, W: {multiple_of: 4, min: 8}}\n"
            "layers:\n  - conv: {out: 8, kernel: 5}\n  - maxpool: 2\n")
    report = archcalc.analyze_text(text)
    assert report.layers[-1].output_shape == (8, H / 2 - 2, W / 2 - 2)  # floor((4k - 4)/2) exact
    too_small = text.replace("min: 8}, W", "min: 4}, W")
    with pytest.raises(archcalc.SpecError, match=r"kernel 5 is larger .* \(at the smallest allowed size H=4, W=8\)"):
        archcalc.analyze_text(too_small)


def test_symbols_in_layer_arguments_and_sequences():
    report = archcalc.analyze_text("input: [T, 512]\nlayers:\n  - linear: 256\n  - {linear: 'T'}\n")
    T = sympy.Symbol("T", integer=True, positive=True)
    assert report.layers[0].output_shape == (T, 256) and report.layers[0].macs == 512 * 256 * T
    assert report.layers[1].params == 257 * T


def test_cli_set_assume_latex_and_json(tmp_path):
    path = tmp_path / "hw.yaml"
    path.write_text(HOMEWORK)
    out = runner.invoke(app, ["analyze", str(path)]).stdout
    assert "160*floor(H/2)*floor(W/2) + 10" in out and "symbols: H, W" in out
    out = runner.invoke(app, ["analyze", str(path), "--assume", "divisible", "--format", "markdown", "--latex"]).stdout
    assert "$40 H W + 10$" in out and "H (multiple_of 2)" in out
    out = runner.invoke(app, ["analyze", str(path), "--set", "H=28", "--set", "W=28"]).stdout
    assert "trainable 31,786" in out
    data = json.loads(runner.invoke(app, ["analyze", str(path), "--json"]).stdout)
    assert data["input"] == [1, "H", "W"] and data["symbols"] == {"H": {}, "W": {}}
    assert data["totals"]["trainable_params"] == "160*floor(H/2)*floor(W/2) + 426"
    bad = runner.invoke(app, ["analyze", str(path), "--set", "Hx=3"])
    assert bad.exit_code == 2 and "--set Hx: the spec has no symbol or var 'Hx' (did you mean 'H'?)" in bad.stderr
    bad = runner.invoke(app, ["analyze", str(path), "--set", "H=two"])
    assert bad.exit_code == 2 and "expected NAME=INTEGER" in bad.stderr
