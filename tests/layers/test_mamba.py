"""mamba by hand: Mamba's mixer on [T, D] (no torch needed).

With E = expand*D, N = d_state, K = d_conv, R = dt_rank (auto: ceil(D/16)) Hugging Face's MambaMixer
holds in_proj D*2E, conv1d E*K (+ E bias), x_proj E*(R + 2N), dt_proj R*E + E, A_log E*N, D E and
out_proj E*D; FlopCounterMode counts T*D*2E + (T + K - 1)*E*K + T*E*(R + 2N) + T*R*E + T*E*N + T*E*D
multiply-accumulates (the conv at its T + K - 1 padded positions, the scan's read-out s_t C_t).
"""
import pytest

import archcalc
from archcalc.layers import KINDS
from layer_helpers import analyze, last, spec, spec_error


def test_a_small_mixer_counted_by_hand():
    row = last([5, 8], "mamba: {d_state: 4, d_conv: 3}")  # E = 16, R = ceil(8/16) = 1
    assert row.output_shape == (5, 8)
    # in_proj 8*32 = 256, conv 16*3 + 16 = 64, x_proj 16*(1 + 8) = 144, dt_proj 16 + 16 = 32,
    # A_log 16*4 = 64, D 16, out_proj 16*8 = 128
    assert row.trainable_params == 256 + 64 + 144 + 32 + 64 + 16 + 128 == 704
    assert row.non_trainable_params == 0
    # in_proj 5*256 = 1280, conv (5 + 2)*16*3 = 336, x_proj 5*144 = 720, dt_proj 5*16 = 80,
    # read-out 5*16*4 = 320, out_proj 5*128 = 640
    assert row.macs == 1280 + 336 + 720 + 80 + 320 + 640 == 3376
    assert row.rf is None


def test_one_block_of_mamba_130m():
    # D = 768, E = 1536, N = 16, K = 4, R = 48
    row = last([64, 768], "mamba: {}")
    assert row.trainable_params == (768 * 3072 + 1536 * 4 + 1536 + 1536 * 80 + 48 * 1536 + 1536 + 1536 * 16
                                    + 1536 + 1536 * 768) == 3_770_880
    # 64*768*3072 + 67*1536*4 + 64*1536*80 + 64*48*1536 + 64*1536*16 + 64*1536*768, as measured
    # on Hugging Face's MambaMixer (tests/torch/test_mamba_reference.py)
    assert row.macs == 150_994_944 + 411_648 + 7_864_320 + 4_718_592 + 1_572_864 + 75_497_472 == 241_059_840


@pytest.mark.parametrize("d, rank", [(16, 1), (17, 2), (768, 48), (1, 1), (2560, 160)])
def test_auto_rank_is_ceil_of_d_over_16(d, rank):
    auto = last([3, d], "mamba: {d_state: 2, dt_rank: auto}")
    given = last([3, d], f"mamba: {{d_state: 2, dt_rank: {rank}}}")
    assert auto.trainable_params == given.trainable_params and auto.macs == given.macs
    other = last([3, d], f"mamba: {{d_state: 2, dt_rank: {rank + 1}}}")
    e = 2 * d
    assert other.trainable_params - auto.trainable_params == 2 * e  # x_proj and dt_proj: E per rank
    assert other.macs - auto.macs == 3 * 2 * e


def test_biases():
    base = last([4, 10], "mamba: {d_state: 3}").trainable_params
    assert last([4, 10], "mamba: {d_state: 3, bias: true}").trainable_params == base + 2 * 20 + 10
    assert last([4, 10], "mamba: {d_state: 3, conv_bias: false}").trainable_params == base - 20
    # biases cost no MACs
    assert last([4, 10], "mamba: {d_state: 3, bias: true, conv_bias: false}").macs == last(
        [4, 10], "mamba: {d_state: 3}").macs


def test_expand_and_kernel():
    # D = 6, expand 3: E = 18, N = 2, K = 5, R = 1
    row = last([7, 6], "mamba: {d_state: 2, d_conv: 5, expand: 3}")
    e = 18
    assert row.trainable_params == 6 * 2 * e + e * 5 + e + e * (1 + 4) + e + e + e * 2 + e + e * 6
    assert row.macs == 7 * 6 * 2 * e + (7 + 4) * e * 5 + 7 * e * 5 + 7 * e + 7 * e * 2 + 7 * e * 6


def test_one_token_and_a_kernel_of_one():
    row = last([1, 4], "mamba: {d_state: 1, d_conv: 1, expand: 1}")  # E = 4, R = 1
    assert row.output_shape == (1, 4)
    assert row.macs == 4 * 4 * 2 + 4 + 4 * 3 + 4 + 4 + 4 * 4


def test_frozen_mixer_is_non_trainable():
    row = last([5, 8], "{mamba: {d_state: 4, d_conv: 3}, trainable: false}")
    assert (row.trainable_params, row.non_trainable_params) == (0, 704)


def test_symbolic_length():
    row = last(["T", 8], "mamba: {d_state: 4, d_conv: 3}")
    t = row.output_shape[0]
    assert row.trainable_params == 704
    assert row.macs.expand() == (t * 256 + (t + 2) * 48 + t * 144 + t * 16 + t * 64 + t * 128).expand()


def test_decoding_state_and_saved_activations():
    # The recurrent state Hugging Face's cache holds per layer: the conv state E*K, the scan state E*N.
    node = archcalc.parse_spec(spec([5, 8], "mamba: {d_state: 4, d_conv: 3}")).nodes[0]
    mamba = KINDS["mamba"]
    assert mamba.kv_cache(node.args, [(5, 8)], (5, 8)) == 16 * 3 + 16 * 4
    assert mamba.kv_cache(node.args, [(500, 8)], (500, 8)) == 16 * 3 + 16 * 4  # independent of T
    # TD (the input) + 9TE + E(T+K-1) + T(R+2N) + 2EN (not per example) + 4TEN, E = 16, N = 4,
    # K = 3, R = 1 (measured in test_mamba_torch.py)
    assert mamba.saved_for_backward(node.args, [(5, 8)], (5, 8)) == (
        5 * 8 + 9 * 5 * 16 + 16 * 7 + 5 * 9 + 2 * 16 * 4 + 4 * 5 * 16 * 4)


def test_memory_plan_holds_the_state_of_every_layer():
    from archcalc.analysis.memory import plan_memory

    text = spec([4096, 8], "mamba: {d_state: 4, d_conv: 3}", "mamba: {d_state: 4, d_conv: 3}")
    plan = plan_memory(archcalc.parse_spec(text), archcalc.analyze_text(text))
    kv = next(i for i in plan.inference if i.key == "kv_cache")
    assert kv.value == 2 * (16 * 3 + 16 * 4) * 4  # two layers, float32: not growing with the 4,096 tokens
    assert kv.label == "KV cache / recurrent state"
    assert kv.formula.startswith("2 layer(s) with a recurrent state: 224 elements")
    mixed = spec([64, 8], "mamba: {d_state: 4, d_conv: 3}", "attention: {heads: 2, causal: true}")
    kv = next(i for i in plan_memory(archcalc.parse_spec(mixed), archcalc.analyze_text(mixed)).inference
              if i.key == "kv_cache")
    assert kv.formula.startswith("1 layer(s) with K/V, 1 with a recurrent state: 1,136 elements")  # 112 + 2*64*8


@pytest.mark.parametrize("shape, entry, message", [
    ([8], "mamba: {}", "mamba needs a sequence shaped [T, D]"),
    ([2, 3, 8], "mamba: {}", "mamba needs a sequence shaped [T, D]"),
    ([4, 8], "mamba: {dt_rank: autoo}", "is 'autoo' (did you mean 'auto'?); expected an integer >= 1 or 'auto'"),
    ([4, 8], "mamba: {dt_rank: 0}", "must be an integer >= 1 or 'auto', got 0"),
    ([4, 8], "mamba: {dt_rank: 1.5}", "must be an integer >= 1 or 'auto', got 1.5"),
    ([4, 8], "mamba: {d_state: 0}", "d_state' must be an integer >= 1"),
    ([4, 8], "mamba: {d_conv: 2.5}", "d_conv' must be an integer >= 1"),
    ([4, 8], "mamba: {expand: 0}", "expand' must be an integer >= 1"),
    ([4, 8], "mamba: {bias: yes}", "must be true or false"),
    ([4, 8], "mamba: {state: 4}", "state"),
])
def test_errors(shape, entry, message):
    assert message in spec_error(shape, entry).message


def test_token_ids_go_through_an_embedding_first():
    assert "reads real values" in spec_error({"tokens": [6]}, "mamba: {}").message
    row = last({"tokens": [6]}, "embedding: {num: 10, dim: 8}", "mamba: {d_state: 4, d_conv: 3}")
    assert row.output_shape == (6, 8) and row.trainable_params == 704


def test_dt_rank_through_a_block_argument():
    text = ("input: [5, 8]\nblocks:\n  mix:\n    args: {rank: auto}\n    layers:\n"
            "      - mamba: {d_state: 4, d_conv: 3, dt_rank: rank}\n"
            "layers:\n  - mix: {}\n  - mix: {rank: 3}\n")
    rows = archcalc.analyze_text(text).layers
    assert rows[0].trainable_params == 704 and rows[1].trainable_params == 704 + 2 * 2 * 16


# --- archcalc explain -----------------------------------------------------------------------------

EXPLAIN = """
input: [12, 16]
layers:
  - mamba: {d_state: 4, d_conv: 3}
  - {mamba: {d_state: 2, d_conv: 2, expand: 3, dt_rank: 3, bias: true, conv_bias: false}, trainable: false}
  - mamba: {}
"""


@pytest.mark.parametrize("batch", [1, 2])
def test_explain_steps_equal_the_analysis(batch):
    from test_explain import check

    from archcalc.explain import explain, text

    graph = archcalc.parse_spec(EXPLAIN)
    explanations = explain(graph, batch=batch)
    assert check(archcalc.analyze(graph, batch=batch), explanations) >= 12
    lines = text(explanations).splitlines()
    assert any("params = D*2*E + E*K + E*(R + 2*N) + R*E + E + E*N + E + E*D + E = "
               "16*2*32 + 32*3 + 32*(1 + 2*4) + 1*32 + 32 + 32*4 + 32 + 32*16 + 32 = 2,176" in line for line in lines)
    steps = {s.figure: s for s in explain(graph)[0].steps}
    assert "R = 1 (ceil(D/16), auto)" in steps["output"].note
    assert "4*T*E*N = 6,144 multiplies" in steps["macs"].note
    assert steps["rf"].result is None


def test_explain_with_symbolic_length():
    from archcalc.explain import explain

    graph = archcalc.parse_spec("input: [T, 8]\nlayers:\n  - mamba: {d_state: 4, d_conv: 3}\n")
    row = archcalc.analyze(graph).layers[0]
    steps = {s.figure: s for s in explain(graph)[0].steps}
    assert steps["macs"].result == row.macs and str(row.macs) == "656*T + 96"  # 2 padded positions: 2*16*3
    assert steps["params"].result == 704
