"""stochastic_depth by hand: nothing counted, shape and fields unchanged, torchvision's arguments
(p in [0, 1] required, mode row or batch) checked with their place."""
import pytest

import archcalc
from layer_helpers import analyze, last, rf_axes, spec_error


@pytest.mark.parametrize("shape", [[16], [8, 5, 7], [4, 3, 6, 6], [10, 32]])
def test_shape_params_and_macs(shape):
    row = last(shape, "stochastic_depth: {p: 0.2, mode: row}")
    assert row.output_shape == tuple(shape) and row.params == 0 and row.macs == 0
    assert (row.trainable_params, row.non_trainable_params) == (0, 0)


def test_mode_defaults_to_row_and_p_is_the_primary_argument():
    node = archcalc.parse_spec("input: [4, 4]\nlayers:\n  - stochastic_depth: 0.3\n").nodes[0]
    assert node.args == {"p": 0.3, "mode": "row"}


def test_the_field_of_what_came_before_is_kept():
    # 3x3 stride 2 then 3x3: sizes 3 and 3 + 2*2 = 7, jump 2, start 0.
    report = analyze([4, 16, 16], "conv: {out: 8, kernel: 3, stride: 2}", "stochastic_depth: {p: 0.5, mode: batch}",
                     "conv: {out: 8, kernel: 3}")
    assert report.layers[1].rf == rf_axes(2, 3, 2, 0)
    assert report.layers[2].rf == rf_axes(2, 7, 2, 0)
    assert sum(r.params for r in report.layers) == (3 * 3 * 4 + 1) * 8 + (3 * 3 * 8 + 1) * 8


def test_a_residual_branch_adds_nothing():
    # EfficientNet's MBConv tail: project conv, then the branch dropped at random, then the skip add.
    report = analyze([8, 6, 6], "conv: {out: 8, kernel: 1}", "{name: drop, stochastic_depth: {p: 0.1}}",
                     "{from: [input, drop], add: {}}")
    assert [r.params for r in report.layers] == [8 * 8 + 8, 0, 0]
    assert [r.macs for r in report.layers] == [6 * 6 * 8 * 8, 0, 0]


@pytest.mark.parametrize("p", [0, 1, 0.0, 1.0])
def test_the_ends_of_p_are_allowed(p):
    assert last([4], f"stochastic_depth: {{p: {p}}}").output_shape == (4,)


@pytest.mark.parametrize("entry, message, col", [
    ("stochastic_depth: 1.5", "'p' must be a number between 0 and 1, got 1.5", 23),
    ("stochastic_depth: {p: -0.1}", "'p' must be a number between 0 and 1, got -0.1", 27),
    ("stochastic_depth: {p: 0.1, mode: col}", "'mode' is 'col'; expected one of row, batch", 38),
    ("stochastic_depth: {}", "needs argument 'p'", 23),
])
def test_bad_arguments_are_refused_at_their_place(entry, message, col):
    err = spec_error([4, 4, 4], entry)
    assert message in err.message
    assert (err.loc.line, err.loc.col) == (3, col)


def test_explain_says_training_and_eval():
    from archcalc.explain import explain, text

    spec_text = "input: [3, 4, 4]\nlayers:\n  - stochastic_depth: {p: 0.25, mode: batch}\n"
    out = text(explain(archcalc.parse_spec(spec_text)))
    assert "the whole batch zeroed with probability p = 0.25" in out and "eval: y = x" in out
    assert "params = 0" in out and "macs = 0" in out
