"""Review of archcalc.torch.build: a top-level layer named as one of SpecModule's own attributes
(`_plan`) is said to clash with archcalc's module, not torch.nn.Module's; inside a block (a plain
nn.Module) the name is free; and `layer`, the name a method had, is free everywhere (layer_module
is a function)."""
from __future__ import annotations

import pytest

import archcalc
from archcalc.reader.parse import parse_spec

pytest.importorskip("torch")


def test_a_top_level_layer_named_as_specmodules_own_attribute_names_specmodule():
    from archcalc.torch import build

    with pytest.raises(archcalc.SpecError) as err:
        build(parse_spec("name: x\ninput: [4]\nlayers:\n  - {name: _plan, linear: {out: 3}}\n"))
    assert "archcalc's built module (SpecModule)" in str(err.value) and "torch.nn.Module" not in str(err.value)


def test_a_top_level_layer_may_be_named_layer():
    from archcalc.torch import build

    model = build(parse_spec("name: x\ninput: [4]\nlayers:\n  - {name: layer, linear: {out: 3}}\n"))
    assert list(model.state_dict()) == ["layer.weight", "layer.bias"]


def test_inside_a_block_a_layer_may_be_named_layer():
    from archcalc.torch import build

    model = build(parse_spec("name: x\ninput: [4]\nblocks:\n  b:\n    layers:\n      - {name: layer, linear: {out: 3}}\n"
                             "layers:\n  - {name: blk, b}\n"))
    assert [k for k in model.state_dict()] == ["blk.layer.weight", "blk.layer.bias"]
