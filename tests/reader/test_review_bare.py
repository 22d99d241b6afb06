"""Review of `bare: true` (reader/parse.py, torch/build.py): a kind holding several tensors is not
said to hold none; a bare layer under repeat keeps one parameter per copy, under the copies' names."""
from __future__ import annotations

import pytest

from archcalc.errors import SpecError
from archcalc.reader.parse import parse_spec


def test_a_kind_holding_several_tensors_is_not_said_to_hold_none():
    with pytest.raises(SpecError) as err:
        parse_spec("name: x\ninput: [6, 16]\nlayers:\n  - {name: r, attention: {heads: 2}, bare: true}\n")
    assert "this attention does not hold exactly one" in str(err.value) and "holds none" not in str(err.value)


@pytest.mark.parametrize("entry, keys", [
    ("{name: s, scale: {broadcast: true}, bare: true, repeat: 3}", {"s.1": (4, 1, 1), "s.2": (4, 1, 1), "s.3": (4, 1, 1)}),
    ("{name: 0, scale: {dim: 1, broadcast: true}, bare: true, repeat: 2}", {"0": (3, 1), "1": (3, 1)}),
])
def test_a_bare_layer_under_repeat_is_one_parameter_per_copy(entry, keys):
    torch = pytest.importorskip("torch")
    from archcalc.torch import build

    model = build(parse_spec(f"name: x\ninput: [4, 3, 3]\nlayers:\n  - {entry}\n"))
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == keys
    with torch.no_grad():
        for k, p in enumerate(model.parameters()):
            p.fill_(k + 2.0)  # copies 2, 3, 4: the product of all of them
    x = torch.randn(1, 4, 3, 3)
    product = 1.0
    for k in range(len(keys)):
        product *= k + 2.0
    torch.testing.assert_close(model(x), x * product)
