"""rnn, lstm, gru: hand-computed values on [T, F] sequences (no torch needed).

Per layer and direction PyTorch holds G*H*(in + h) weights and, with bias, two vectors b_ih and
b_hh of G*H each (G = 1 rnn, 4 lstm, 3 gru); MACs are T*D*G*H*(in + h) summed over layers.
"""
import pytest

import archcalc
from layer_helpers import analyze, last, spec_error
from test_explain import ALL_KINDS  # noqa: E402


def test_lstm_as_nn_lstm_10_20():
    row = last([5, 10], "lstm: 20")  # T = 5 steps of 10 features
    assert row.output_shape == (5, 20)  # the whole output sequence, H wide
    assert row.trainable_params == 2560  # 4*20*(10 + 20) + 2*4*20 = 2400 + 160
    assert row.non_trainable_params == 0
    assert row.macs == 12_000  # 5 steps * 4*20*(10 + 20)
    assert row.rf is None  # output t sees steps 0..t: not one window


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_rnn(nonlinearity):
    row = last([12, 10], f"rnn: {{hidden: 16, nonlinearity: {nonlinearity}}}")
    assert row.output_shape == (12, 16)
    assert row.trainable_params == 448  # 16*(10 + 16) + 2*16 = 416 + 32
    assert row.macs == 4992  # 12 * 16*(10 + 16): the nonlinearity costs no MACs


def test_gru():
    row = last([12, 8], "gru: 7")
    assert row.output_shape == (12, 7)
    assert row.trainable_params == 357  # 3*7*(8 + 7) + 2*3*7 = 315 + 42
    assert row.macs == 3780  # 12 * 3*7*(8 + 7)


def test_stacked_layers_read_the_hidden_state():
    row = last([5, 10], "lstm: {hidden: 20, layers: 2}")
    assert row.output_shape == (5, 20)
    # layer 1: 4*20*(10 + 20) + 160 = 2560; layer 2 reads 20 features: 4*20*(20 + 20) + 160 = 3360
    assert row.trainable_params == 5920
    assert row.macs == 28_000  # 5 * (2400 + 3200)


def test_bidirectional_doubles_the_width_and_the_next_layer_reads_both():
    row = last([12, 7], "gru: {hidden: 9, layers: 2, bidirectional: true}")
    assert row.output_shape == (12, 18)  # 2 * 9
    # per direction: layer 1 3*9*(7 + 9) + 54 = 486; layer 2 reads 2*9: 3*9*(18 + 9) + 54 = 783
    assert row.trainable_params == 2538  # 2 * (486 + 783)
    assert row.macs == 27_864  # 12 * 2 * (432 + 729)


def test_without_bias():
    row = last([4, 3], "rnn: {hidden: 8, bias: false}")
    assert row.trainable_params == 88  # 8*(3 + 8)
    assert row.macs == 352  # 4 * 88
    assert last([4, 3], "lstm: {hidden: 8, bias: false}").trainable_params == 352  # 4*8*(3 + 8)


def test_lstm_projection():
    row = last([12, 24], "lstm: {hidden: 12, proj_size: 5, layers: 2}")
    assert row.output_shape == (12, 5)  # h is projected to 5
    # layer 1: 4*12*(24 + 5) + 2*4*12 + 12*5 = 1392 + 96 + 60 = 1548
    # layer 2 reads 5 features: 4*12*(5 + 5) + 96 + 60 = 636
    assert row.trainable_params == 2184
    assert row.macs == 23_904  # 12 * (1392 + 60 + 480 + 60)


def test_bidirectional_projection_without_bias():
    row = last([12, 5], "lstm: {hidden: 6, proj_size: 4, bidirectional: true, bias: false}")
    assert row.output_shape == (12, 8)  # 2 * 4
    assert row.trainable_params == 480  # 2 * (4*6*(5 + 4) + 6*4) = 2 * (216 + 24)
    assert row.macs == 5760  # 12 * 480


def test_dropout_changes_no_figure():
    plain = last([6, 4], "lstm: {hidden: 5, layers: 3}")
    dropped = last([6, 4], "lstm: {hidden: 5, layers: 3, dropout: 0.5}")
    assert (plain.trainable_params, plain.macs) == (dropped.trainable_params, dropped.macs)
    last([6, 4], "gru: {hidden: 5, dropout: 0.5}")  # accepted with one layer, as PyTorch does


def test_sequence_model_totals_and_batch():
    r = analyze([50, 100], "lstm: 128", "linear: 2", batch=4)
    # lstm: 4*128*(100 + 128) + 2*4*128 = 116736 + 1024; linear on [50, 128]: 128*2 + 2
    assert r.totals.trainable_params == 117_760 + 258
    assert r.layers[0].macs == 4 * 50 * 116_736  # MACs are for the whole batch
    assert r.output_shape == (50, 2)
    assert r.layers[1].rf is None  # nothing after a recurrent layer is tracked


def test_symbolic_time_steps():
    r = analyze(["T", 8], "lstm: 16", "gru: {hidden: 4, bidirectional: true}")
    lstm, gru = r.layers
    assert [str(n) for n in lstm.output_shape] == ["T", "16"]
    assert lstm.trainable_params == 1664  # 4*16*(8 + 16) + 2*4*16: does not depend on T
    assert str(lstm.macs) == "1536*T"  # T * 4*16*(8 + 16)
    assert str(gru.macs) == "480*T"  # T * 2 * 3*4*(16 + 4)
    for t in (1, 7, 30):
        numeric = analyze(["T", 8], "lstm: 16", "gru: {hidden: 4, bidirectional: true}", bindings={"T": t})
        assert numeric.layers[0].macs == 1536 * t and numeric.layers[1].macs == 480 * t
        assert int(lstm.macs.subs({s: t for s in lstm.macs.free_symbols})) == 1536 * t


@pytest.mark.parametrize("shape", [[8], [3, 8, 8]])
def test_input_must_be_a_sequence(shape):
    for kind in ("rnn", "lstm", "gru"):
        err = spec_error(shape, f"{kind}: 4")
        assert f"{kind} needs a sequence shaped [T, F] (time steps, features), got {shape}" in err.message


@pytest.mark.parametrize("entry, message", [
    ("lstm: 0", "must be an integer >= 1"),
    ("gru: {hidden: 4, layers: 0}", "must be an integer >= 1"),
    ("rnn: {hidden: 4, nonlinearity: sigmoid}", "expected one of tanh, relu"),
    ("lstm: {hidden: 4, dropout: 1.5}", "must be a number between 0 and 1"),
    ("lstm: {hidden: 4, proj_size: 4}", "proj_size 4 must be smaller than hidden 4"),
    ("lstm: {hidden: 4, proj_size: -1}", ">= 0"),
    ("gru: {hidden: 4, proj_size: 2}", "gru has no argument 'proj_size'"),  # only lstm projects
    ("rnn", "rnn needs argument 'hidden'"),
])
def test_errors(entry, message):
    assert message in spec_error([5, 3], entry).message


# --- archcalc explain -----------------------------------------------------------------------------

EXPLAIN = ALL_KINDS["sequence"]  # shared with tests/test_explain.py


@pytest.mark.parametrize("batch", [1, 3])
def test_explain_steps_equal_the_analysis(batch):
    from test_explain import check

    from archcalc.explain import explain, text

    graph = archcalc.parse_spec(EXPLAIN)
    explanations = explain(graph, batch=batch)
    assert check(archcalc.analyze(graph, batch=batch), explanations) == 4 * 8
    lines = text(explanations).splitlines()
    assert any("params = 4*H*(F + H + 2) = 4*20*(16 + 20 + 2) = 3,040" in line for line in lines)
    assert any("output = [T, D*P] = [12, 2*4] = [12, 8]" in line for line in lines)


def test_explain_with_symbolic_time_steps():
    from archcalc.explain import explain

    graph = archcalc.parse_spec("input: [T, 8]\nlayers:\n  - lstm: {hidden: 16, layers: 2}\n")
    row = archcalc.analyze(graph).layers[0]
    steps = {s.figure: s for s in explain(graph)[0].steps}
    assert steps["macs"].substituted == "T*(4*16*(8 + 16) + (2 - 1)*4*16*(16 + 16))"
    assert steps["macs"].result == row.macs and str(row.macs) == "3584*T"  # T * (1536 + 2048)
    assert steps["params"].result == row.trainable_params == 3840  # 1664 + 4*16*32 + 128
