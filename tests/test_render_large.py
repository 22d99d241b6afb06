"""Tables of many rows are laid out by archcalc itself (rich takes minutes for 10^5 rows): the lines
must be exactly rich's, so a big network looks like a small one."""
import io
from pathlib import Path

import pytest
from rich.console import Console

import archcalc
from archcalc import render

ROOT = Path(__file__).resolve().parents[1]


def _table(report, monkeypatch, rich_rows, **kwargs):
    monkeypatch.setattr(render, "RICH_ROWS", rich_rows)
    out = io.StringIO()
    render.table(report, console=Console(file=out, width=200), **kwargs)
    return out.getvalue()


@pytest.mark.parametrize("spec", ["zoo/resnet18.yaml", "transformers/gpt2_small.yaml", "homework/denoiser.yaml"])
def test_the_plain_layout_is_rich_s_layout(spec, monkeypatch):
    report = archcalc.analyze(ROOT / "specs" / spec)
    by_rich = _table(report, monkeypatch, 10**9)
    by_hand = _table(report, monkeypatch, 0)
    assert by_hand == by_rich
    assert len(by_rich.splitlines()) == len(report.layers) + 5 + len(render.footer_lines(report))


def test_folded_and_latex_tables_too(monkeypatch):
    report = archcalc.analyze(ROOT / "specs/zoo/resnet50.yaml")
    assert _table(report, monkeypatch, 0, depth=1) == _table(report, monkeypatch, 10**9, depth=1)
    symbolic = archcalc.analyze(ROOT / "specs/homework/conv_pool_fc.yaml")
    assert _table(symbolic, monkeypatch, 0, latex=True) == _table(symbolic, monkeypatch, 10**9, latex=True)


@pytest.mark.slow
def test_a_hundred_thousand_rows_print_every_row(tmp_path):
    spec = tmp_path / "long.yaml"
    spec.write_text("input: [4, 8, 8]\nlayers:\n  - {relu: {}, repeat: 100000}\n")
    from hostile import run_cli

    run = run_cli(["analyze", spec], timeout=120)
    assert run.rc == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[4].startswith("│ relu1.1 ") and lines[100003].startswith("│ relu1.100000 ")
    assert lines[100004].startswith("└")
