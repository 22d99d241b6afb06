"""verify measures the fields of a channels-last section (ConvNeXt's block: permute to [H, W, C],
LayerNorm and the MLP over channels, layer scale, permute back): the probe permutes as the model
does and reads each output position across its channels, wherever the spatial axes are."""
import pytest

torch = pytest.importorskip("torch")

import archcalc  # noqa: E402
from archcalc.geometry.receptive_field import RF  # noqa: E402
from archcalc.torch.verify import verify  # noqa: E402


def spec(shape, *entries):
    return f"input: {shape}\nlayers:\n" + "".join(f"  - {e}\n" for e in entries)

BLOCK = ("{name: dw, conv: {out: 4, kernel: 7, padding: 3, groups: 4}}", "{name: cl, permute: [1, 2, 0]}",
         "layernorm", "linear: 16", "gelu", "linear: 4", "{name: ls, scale: {init: 0.000001, dim: -1}}",
         "{name: back, permute: [2, 0, 1]}", "{add: {}, from: [back, input]}", "conv: {out: 4, kernel: 3, stride: 2}")


def test_every_field_of_the_block_is_measured_and_agrees(tmp_path):
    path = tmp_path / "convnext_block.yaml"
    path.write_text(spec([4, 20, 20], *BLOCK))
    result = verify(archcalc.load_spec(path))
    assert result.ok, result.mismatches()
    measured = {row.name: row.checks["rf"] for row in result.layers}
    assert all(check.ok is True for check in measured.values()), {n: c.note for n, c in measured.items()}
    assert measured["linear1"].measured == RF((7, 7), (1, 1), (-3, -3))
    assert measured["conv2"].measured == RF((9, 9), (2, 2), (-3, -3))

