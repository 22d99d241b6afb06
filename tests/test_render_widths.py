"""Tables never cut a figure: at 60, 80, 100 and 120 columns every cell of the report appears whole
(issue 14 point 1), and text from a spec is never read as rich markup."""
import io
from pathlib import Path

import pytest
from rich.console import Console

from archcalc.api import analyze, analyze_text
from archcalc.render import _cells, print_whole, table

ROOT = Path(__file__).resolve().parents[1]
SPECS = ["specs/zoo/resnet18.yaml", "specs/zoo/resnet50.yaml", "specs/transformers/vit_b16.yaml",
         "specs/transformers/gpt3_175b.yaml"]
WIDTHS = (60, 80, 100, 120)


def _table_lines(text):
    return [line for line in text.split("\n") if line[:1] in "┏┃┡│└"]


def console(width):
    return Console(file=io.StringIO(), width=width, color_system=None, legacy_windows=False)


@pytest.fixture(scope="module", params=SPECS, ids=lambda p: Path(p).stem)
def report(request):
    return analyze(ROOT / request.param)


@pytest.mark.parametrize("width", WIDTHS)
def test_every_cell_whole(report, width):
    out = console(width)
    table(report, console=out)
    text = out.file.getvalue()
    assert "…" not in text
    lines = text.split("\n")
    for row in report.layers:
        cells = _cells(row)
        # the row's cells, each whole, on one line of the table, in order
        assert any(all(c in line for c in cells) for line in lines), (width, cells)
    assert f"params {report.totals.params:,}" in text


def test_figures_are_those_of_the_report():
    out = console(80)
    table(analyze(ROOT / "specs/zoo/resnet50.yaml"), console=out)
    text = out.file.getvalue()
    assert "25,557,032" in text  # resnet50's parameters, torchvision's sum of p.numel()
    assert "2,049,000" in text and "│ fc " in text  # fc: 2048 x 1000 + 1000


def test_gpt3_params_whole_at_80():
    out = console(80)
    table(analyze(ROOT / "specs/transformers/gpt3_175b.yaml"), console=out)
    text = out.file.getvalue()
    assert "…" not in text and "174,604,259,328" in text  # the total, as the footer says
    assert "│ 617,558,016 │" in text  # wte: 50257 x 12288
    assert max(map(len, _table_lines(text))) > 80  # printed wider than the terminal, as torchinfo does


def test_fits_when_it_can():
    out = console(120)
    table(analyze(ROOT / "specs/zoo/resnet18.yaml"), console=out)
    assert max(map(len, _table_lines(out.file.getvalue()))) <= 120


def test_print_whole_keeps_a_right_column_on_one_line():
    from rich.table import Table
    from rich.text import Text

    tab = Table()
    tab.add_column("what", overflow="fold")
    tab.add_column("amount", justify="right", overflow="fold")
    tab.add_row(Text("weights " * 8), Text("1,234,567,890 B"))
    out = console(30)
    print_whole(out, tab)
    assert "1,234,567,890 B" in out.file.getvalue()


MARKUP = """name: "net[bold]x [/] [d]"
input: [d]
layers:
  - linear: 4
"""


@pytest.mark.parametrize("width", (60, 120))
def test_user_text_is_not_markup(width):
    out = console(width)
    table(analyze_text(MARKUP), console=out)
    text = out.file.getvalue()
    assert "net[bold]x [/] [d]" in text and "input [d]" in text
    assert "4*d + 4" in text


def test_user_text_is_not_markup_after_set():
    out = console(80)
    table(analyze_text(MARKUP, bindings={"d": 8}), console=out)
    text = out.file.getvalue()
    assert "net[bold]x [/] [d]" in text and "input [8]" in text and "36" in text


def _cli_at(monkeypatch, width, args):
    """The command's output through the CLI, on a console `width` columns wide."""
    import archcalc.render
    from typer.testing import CliRunner

    from archcalc.cli import app

    monkeypatch.setattr(archcalc.render, "make_console",
                        lambda *a, **k: Console(width=width, color_system=None, legacy_windows=False))
    result = CliRunner().invoke(app, args)
    assert result.exit_code in (0, 1), result.output
    return result.stdout


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("spec", ["specs/zoo/resnet50.yaml", "specs/transformers/gpt3_175b.yaml"])
def test_memory_amounts_whole(monkeypatch, width, spec):
    from archcalc import cli

    text = _cli_at(monkeypatch, width, ["memory", str(ROOT / spec)])
    _, plan = cli._plan(str(ROOT / spec), None, None, 1, "float32")
    assert "…" not in text
    lines = text.split("\n")
    for _, items in plan.sections():
        for item in items:
            # the label and its amount whole, on one line
            assert any(item.label in line and f" {cli._amount(item)} " in line for line in lines), (width, item.label)
    if "resnet50" in spec:
        assert "97.5 MiB" in text  # gradients: 4 B x 25,557,032 trainable params = 102,228,128 B


@pytest.mark.parametrize("width", WIDTHS)
def test_check_figures_whole(monkeypatch, width):
    spec, answers = ROOT / "specs/homework/conv_pool_fc.yaml", ROOT / "specs/homework/conv_pool_fc.answers.yaml"
    text = _cli_at(monkeypatch, width, ["check", str(spec), str(answers)])
    assert "…" not in text
    lines = text.split("\n")
    for quantity, expected in (("conv1.params", "416"), ("fc.params", "40*H*W + 10"),
                               ("total.trainable_params", "40*H*W + 426"), ("pool1.output_shape", "[16, H/2, W/2]"),
                               ("pool1.rf", "size 6, stride 2, start -2")):
        assert any(quantity in line and expected in line for line in lines), (width, quantity)


def test_memory_title_is_not_markup(monkeypatch, tmp_path):
    spec = tmp_path / "m.yaml"
    spec.write_text(MARKUP)
    text = _cli_at(monkeypatch, 80, ["memory", str(spec), "--set", "d=8"])
    assert "net[bold]x [/] [d]  memory and cost: input [8]" in text
    assert " 144 B " in text  # weights: 4 B x (8 + 1) x 4 params


def test_kinds_lines_whole():
    """`kinds` prints plain lines (no table): each kind's summary whole, whatever the width."""
    from typer.testing import CliRunner

    from archcalc.cli import app
    from archcalc.layers import KINDS

    text = CliRunner().invoke(app, ["kinds"]).stdout
    for name, kind in KINDS.items():
        assert f"{name}  " in text and kind.summary in text, name
    linear = CliRunner().invoke(app, ["kinds", "linear"]).stdout
    assert " params: (in + 1) * out   (in * out without bias)\n" in linear


@pytest.fixture(scope="module")
def verified_resnet18():
    pytest.importorskip("torch")
    from archcalc.api import load_graph
    from archcalc.torch import verify as verify_mod

    return verify_mod.verify(load_graph(ROOT / "specs/zoo/resnet18.yaml"))


@pytest.mark.parametrize("width", WIDTHS)
def test_verify_table_whole(verified_resnet18, width):
    """verify's table (archcalc.torch.verify.print_table) on the console the CLI uses."""
    from archcalc.render import whole_console_class
    from archcalc.torch import verify as verify_mod

    out = whole_console_class()(file=io.StringIO(), width=width, color_system=None, legacy_windows=False)
    verify_mod.print_table(verified_resnet18, console=out)
    text = out.file.getvalue()
    assert "…" not in text and "all figures match PyTorch" in text
    lines = text.split("\n")
    for layer in verified_resnet18.layers:
        cells = [layer.name, *(verify_mod._cell(layer.checks[key], fmt) for _, key, fmt in verify_mod.COLUMNS)]
        assert any(all(c in line for c in cells) for line in lines), (width, cells)
    assert any("✓ 9,408" in line and "✓ 118,013,952" in line for line in lines)  # conv1: 64 x 3 x 7 x 7


def test_wider_than_the_terminal_leaves_no_padding_to_wrap():
    """A table wider than the terminal: no line but the table's own is longer than it needs to be
    (the title is not padded to the table's width, which a terminal would wrap into a blank line)."""
    out = console(80)
    table(analyze(ROOT / "specs/zoo/resnet18.yaml"), console=out)
    assert out.file.getvalue().split("\n")[0] == "resnet18  input [3, 224, 224]"


def test_verify_title_is_not_markup():
    pytest.importorskip("torch")
    from archcalc.api import load_graph
    from archcalc.render import whole_console_class
    from archcalc.torch import verify as verify_mod

    result = verify_mod.verify(load_graph(MARKUP_DICT, bindings={"d": 8}))
    out = whole_console_class()(file=io.StringIO(), width=80, color_system=None, legacy_windows=False)
    verify_mod.print_table(result, console=out)
    text = out.file.getvalue()
    assert "net[bold]x [/] [d]  verify on cpu: all figures match PyTorch" in text
    assert "✓ 36" in text  # linear 8 -> 4: 8 x 4 + 4


MARKUP_DICT = {"name": "net[bold]x [/] [d]", "input": ["d"], "layers": [{"linear": 4}]}


def test_check_of_a_path_with_brackets(monkeypatch, tmp_path):
    folder = tmp_path / "hw[d] [bold]x"
    folder.mkdir()
    spec, answers = folder / "conv_pool_fc.yaml", folder / "conv_pool_fc.answers.yaml"
    spec.write_text((ROOT / "specs/homework/conv_pool_fc.yaml").read_text())
    answers.write_text((ROOT / "specs/homework/conv_pool_fc.answers.yaml").read_text())
    text = _cli_at(monkeypatch, 200, ["check", str(spec), str(answers)])
    assert "/hw[d]" in text and "[bold]x/conv_pool_fc.answers.yaml: 7/7 right" in text  # the title wraps
