"""matmul, split, chunk, select, mean: hand-computed values, receptive fields, errors, symbolic
sizes and `archcalc explain` (no torch)."""
import pytest

import archcalc
from layer_helpers import GLOBAL, RF, analyze, last, rf_axes, spec, spec_error
from test_explain import ALL_KINDS  # noqa: E402

# q [4, 8] and k [4, 8] from an input [4, 6]
QK = ("{name: q, linear: 8}", "{name: k, from: input, linear: 8}")
# [4, 10, 10] with field size 3, jump 2, start -1 on H and W
CONV = "{name: c, conv: {out: 4, kernel: 3, stride: 2, padding: 1}}"


# --- matmul ------------------------------------------------------------------------------------

def test_attention_scores_q_k_transposed():
    row = analyze([4, 6], *QK, "{name: s, matmul: {transpose: true, scale: 0.35}, from: [q, k]}").layer("s")
    assert row.output_shape == (4, 4)  # [4, 8] @ [8, 4]
    assert row.macs == 128  # 4*4 outputs * K 8; the scale is elementwise, not counted
    assert (row.trainable_params, row.non_trainable_params) == (0, 0)
    assert row.rf is None


def test_matmul_k_by_n_and_attention_times_values():
    r = analyze([4, 6], *QK, "{name: kt, permute: [1, 0]}", "{name: s, matmul: {}, from: [q, kt]}",
                "{name: v, from: input, linear: 5}", "{name: o, matmul: null, from: [s, v]}")
    assert (r.layer("s").output_shape, r.layer("s").macs) == ((4, 4), 128)  # [4, 8] @ [8, 4]: 4*4*8
    assert (r.layer("o").output_shape, r.layer("o").macs) == ((4, 5), 80)  # [4, 4] @ [4, 5]: 4*5*4


@pytest.mark.parametrize("order", ["[input, b]", "[b, input]"])
def test_matmul_broadcasts_leading_dims(order):
    r = analyze([2, 4, 6], "{name: b, mean: {dim: 0, keepdim: true}}",  # [1, 4, 6]
                f"{{name: s, matmul: {{transpose: true}}, from: {order}}}")
    assert r.layer("s").output_shape == (2, 4, 4)  # leading 2 and 1 broadcast to 2
    assert r.layer("s").macs == 192  # 2*4*4 outputs * K 6


def test_matmul_errors():
    err = spec_error([4, 6], *QK, "{matmul: {}, from: [q, k, q]}")
    assert "matmul takes exactly two inputs (from: [a, b]), got 3" in err.message
    assert "matmul merges two or more inputs" in spec_error([4, 6], "matmul").message
    err = spec_error([4, 6], *QK, "{matmul: {}, from: [q, k]}")
    assert ("matmul needs the first input's last size to equal the second's second-to-last size, "
            "got 8 and 4 in [4, 8] @ [4, 8]") in err.message
    err = spec_error([4, 6], *QK, "{matmul: {transpose: true}, from: [q, input]}")
    assert "to equal the second's last size (transpose: true), got 8 and 6 in [4, 8] @ [4, 6]" in err.message
    err = spec_error([6], "{name: a, linear: 6}", "{matmul: {}, from: [a, input]}")
    assert "matmul needs inputs of rank 2 or more (batch excluded), got [6] @ [6]" in err.message
    err = spec_error([2, 4, 6], "{name: f, flatten: {start_dim: 1}}", "{matmul: {}, from: [input, f]}")
    assert "matmul needs inputs of the same rank (the batch dimension lines up in front)" in err.message
    err = spec_error([2, 4, 6], "{name: b, mean: {dim: 0, keepdim: true}}", "{name: c, concat: 0, from: [input, b]}",
                     "{matmul: {transpose: true}, from: [input, c]}")  # leading 2 and 3
    assert "matmul cannot broadcast the leading dims of [2, 4, 6] @ [3, 4, 6]" in err.message
    err = spec_error([4, 6], *QK, "{matmul: {scale: big}, from: [q, k]}")
    assert "matmul argument 'scale'" in err.message


# --- split and chunk -------------------------------------------------------------------------------

@pytest.mark.parametrize("args, out", [
    ("{sizes: 4, index: 0}", (6, 4)),  # along L = 10: pieces 4, 4, 2
    ("{sizes: 4, index: 2}", (6, 2)),  # the last takes 10 - 2*4 = 2
    ("{sizes: 4, index: -1}", (6, 2)),
    ("{sizes: 5, index: 1}", (6, 5)),  # 10 = 5 + 5
    ("{sizes: 20, index: 0}", (6, 10)),  # a size over N is one piece of all of it
    ("{sizes: [3, 7], index: 1}", (6, 7)),
    ("{sizes: [1, 2, 3], dim: 0, index: -2}", (2, 10)),  # C = 6 = 1 + 2 + 3
    ("{sizes: 4, dim: 0, index: 1}", (2, 10)),  # C = 6: pieces 4, 2
])
def test_split(args, out):
    row = last([6, 10], f"split: {args}")
    assert row.output_shape == out
    assert (row.trainable_params, row.non_trainable_params, row.macs) == (0, 0, 0)


@pytest.mark.parametrize("args, out", [
    ("{chunks: 2, dim: 0, index: 0}", (3, 6)),  # C = 5: pieces of ceil(5/2) = 3: 3, 2
    ("{chunks: 2, dim: 0, index: 1}", (2, 6)),
    ("{chunks: 4, dim: 0, index: 2}", (1, 6)),  # pieces of ceil(5/4) = 2: 2, 2, 1 (three, not four)
    ("{chunks: 4, dim: 0, index: -1}", (1, 6)),
    ("{chunks: 4, index: 2}", (5, 2)),  # L = 6: pieces of ceil(6/4) = 2: 2, 2, 2 (three, not four)
    ("{chunks: 9, index: 5}", (5, 1)),  # more chunks than 6: six pieces of 1
    ("{chunks: 1, index: 0}", (5, 6)),
])
def test_chunk(args, out):
    row = last([5, 6], f"chunk: {args}")
    assert row.output_shape == out
    assert (row.trainable_params, row.non_trainable_params, row.macs) == (0, 0, 0)


def test_split_and_chunk_fields():
    r = analyze([3, 20, 20], CONV,
                "{name: sw, split: {sizes: 3, index: 1}}",  # W from 3: start -1 + 3*2 = 5
                "{name: ch, chunk: {chunks: 3, dim: 1, index: -1}, from: c}",  # H 4, 4, 2 from 8: -1 + 8*2 = 15
                "{name: sc, split: {sizes: [1, 3], dim: 0, index: 1}, from: c}",  # channels
                "{name: first, chunk: {chunks: 2, dim: 2, index: 0}, from: c}",  # starts at 0
                "{name: up, upsample: 2, from: c}",  # size 3, jump 1 (exact: pairs of outputs share a window)
                "{name: su, split: {sizes: [5, 15], dim: 2, index: 1}}",
                "{name: g, from: input, global_avgpool: {}}", "{name: sg, split: {sizes: 1, dim: 0, index: 1}}")
    assert r.layer("sw").output_shape == (4, 10, 3)
    assert r.layer("sw").rf == RF((3, 3), (2, 2), (-1, 5))
    assert r.layer("ch").output_shape == (4, 2, 10)
    assert r.layer("ch").rf == RF((3, 3), (2, 2), (15, -1))
    assert r.layer("sc").rf == r.layer("first").rf == rf_axes(2, 3, 2, -1)
    # output 0 of the piece is upsampled output 5, which reads conv output 2: -1 + 2*2 = 3
    assert r.layer("su").rf == RF((3, 3), (1, 1), (-1, 3))
    assert r.layer("sg").rf == GLOBAL  # a piece of a global field is global
    assert last([6], "split: {sizes: 2, index: 0}").rf is None


@pytest.mark.parametrize("shape, entry, message", [
    ([6, 10], "split: {sizes: [3, 3], index: 0}",
     "sizes [3, 3] add up to 6 but the dim has size 10; expected sizes that add up to it"),
    ([6, 10], "split: {sizes: 0, index: 0}", "'sizes' is 0; expected a piece size >= 1 or a list of sizes"),
    ([6, 10], "split: {sizes: [-1, 11], index: 0}", ">= 0"),
    ([6, 10], "split: {sizes: 4, index: 3}",
     "'index' is 3 but pieces of 4 from size 10 make ceil(10/4) = 3 pieces; expected -3..2"),
    ([6, 10], "split: {sizes: 20, index: 1}",
     "'index' is 1 but pieces of 20 from size 10 make ceil(10/20) = 1 piece; expected -1..0"),
    ([6, 10], "split: {sizes: [3, 7], index: -3}", "'index' is -3 but sizes [3, 7] make 2 pieces; expected -2..1"),
    ([6, 10], "split: {sizes: [0, 10], index: 0}",
     "piece 0 is empty (sizes [0, 10] make 2 pieces); archcalc needs sizes of 1 or more"),
    ([6, 10], "split: {sizes: 2, dim: 2, index: 0}", "'dim' is 2 but the input has 2 dimensions"),
    ([6, 10], "split: {sizes: 2}", "split needs argument 'index'"),
    ([5, 6], "chunk: {chunks: 4, index: 3}",
     "'index' is 3 but 4 chunks of size 6 are pieces of ceil(6/4) = 2: 3 of them, fewer than the 4 chunks asked; "
     "expected -3..2"),
    ([5, 6], "chunk: {chunks: 0, index: 0}", ">= 1"),
])
def test_split_and_chunk_errors(shape, entry, message):
    assert message in spec_error(shape, entry).message


# --- select and mean -------------------------------------------------------------------------------

@pytest.mark.parametrize("shape, entry, out", [
    ([5, 8], "select: 0", (8,)),  # the class token of [T, D]
    ([5, 8], "select: {dim: -1, index: -1}", (5,)),
    ([3, 4, 5], "select: {dim: 1, index: 2}", (3, 5)),
    ([3, 4, 5], "select: -3", (4, 5)),
    ([5, 8], "mean: 0", (8,)),  # the mean over tokens
    ([3, 4, 5], "mean: [1, 2]", (3,)),
    ([3, 4, 5], "mean: {dim: [-1, 1], keepdim: true}", (3, 1, 1)),
    ([3, 4, 5], "mean: {dim: 0, keepdim: true}", (1, 4, 5)),
    ([3, 4, 5], "mean: [0, 1]", (5,)),
    ([5, 8], "mean: {dim: [0, 1], keepdim: true}", (1, 1)),
])
def test_select_and_mean(shape, entry, out):
    row = last(shape, entry)
    assert row.output_shape == out
    assert (row.trainable_params, row.non_trainable_params, row.macs) == (0, 0, 0)  # averages are not MACs


@pytest.mark.parametrize("entry, rf", [
    ("select: 0", None),  # the axes no longer match the input's
    ("mean: [1, 2]", GLOBAL),  # like global_avgpool and flatten
    ("mean: {dim: [0, 1, 2], keepdim: true}", GLOBAL),
    ("mean: {dim: 0, keepdim: true}", rf_axes(2, 3, 2, -1)),  # channels only: unchanged
    ("mean: 0", None),  # the channel dim is gone
    ("mean: {dim: 2, keepdim: true}", None),  # one spatial axis of two
])
def test_select_and_mean_fields(entry, rf):
    assert last([3, 20, 20], CONV, entry).rf == rf


def test_select_and_mean_keep_a_global_field():
    assert last([5, 8], "linear: 4", "select: 0").rf == GLOBAL
    assert last([5, 8], "linear: 4", "mean: 0").rf == GLOBAL


@pytest.mark.parametrize("shape, entry, message", [
    ([5, 8], "select: 5", "'index' is 5 but dim 0 has size 5; expected -5..4"),
    ([5, 8], "select: {dim: 1, index: -9}", "'index' is -9 but dim 1 has size 8; expected -8..7"),
    ([5, 8], "select: {dim: 2, index: 0}", "'dim' is 2 but the input has 2 dimensions"),
    ([8], "select: 0", "select on [8] would leave no dimension besides the batch; expected an input of rank 2"),
    ([3, 4, 5], "mean: [1, -2]", "'dim' [1, -2] names dim 1 twice (input [3, 4, 5]); expected each dim once"),
    ([5, 8], "mean: [0, 1]", "mean on [5, 8] would leave no dimension besides the batch; give keepdim: true"),
    ([5, 8], "mean: 2", "'dim' is 2 but the input has 2 dimensions"),
    ([5, 8], "mean", "mean needs argument 'dim'"),
])
def test_select_and_mean_errors(shape, entry, message):
    assert message in spec_error(shape, entry).message


def test_token_ids_pass_through_select_split_and_chunk():
    # BERT's input: row 0 the word pieces, row 1 the segments
    tokens = {"tokens": [2, 7]}
    for entry in ("select: 0", "split: {sizes: [1, 1], dim: 0, index: 1}", "chunk: {chunks: 2, index: 0}"):
        assert last(tokens, entry, "embedding: {num: 5, dim: 16}").output_shape[-1] == 16
    err = spec_error(tokens, "mean: 0")
    assert "mean reads real values, but its input holds integer token ids" in err.message
    err = spec_error(tokens, "{name: a, select: 0}", "{name: b, from: input, select: 1}", "{matmul: {}, from: [a, b]}")
    assert "matmul reads real values" in err.message


# --- symbolic sizes ---------------------------------------------------------------------------------

def test_symbolic_sequence_length():
    sympy = pytest.importorskip("sympy")
    t = sympy.Symbol("T", integer=True, positive=True)
    r = analyze(["T", 64], "{name: q, linear: 16}", "{name: k, from: input, linear: 16}",
                "{name: s, matmul: {transpose: true, scale: 0.25}, from: [q, k]}",
                "{name: cls, select: 0, from: q}", "{name: m, mean: 0, from: q}",
                "{name: sp, split: {sizes: 4, index: -1}, from: q}",
                "{name: ch, chunk: {chunks: 2, index: 1}, from: q}")
    assert r.layer("s").output_shape == (t, t)
    assert sympy.simplify(r.layer("s").macs - 16 * t**2) == 0  # T*T outputs * K 16
    assert r.layer("cls").output_shape == r.layer("m").output_shape == (16,)
    assert r.layer("sp").output_shape == (t, 4)  # 16 = 4 + 4 + 4 + 4
    assert r.layer("ch").output_shape == (t, 8)  # 16 = 8 + 8
    # pieces along T itself depend on T (one piece when T <= 4): not decidable
    err = spec_error(["T", 64], "split: {sizes: 4, dim: 0, index: 1}")
    assert "split cannot be analysed with symbolic sizes here" in err.message


# --- archcalc explain -----------------------------------------------------------------------------

# Every kind of this file, with each branch of their explanations (shared with
# tests/test_explain.py, which checks every kind).
EXPLAINED = ALL_KINDS["tensor_ops"]


def test_explain_every_figure():
    from archcalc.explain import explain, text
    from test_explain import check

    graph = archcalc.parse_spec(EXPLAINED)
    explanations = explain(graph)
    assert check(archcalc.analyze(graph), explanations) > 0
    lines = text(explanations)
    assert "mm     macs = (leading)*M*N*K = 4*10*10*10 = 4,000   (times 0.5 elementwise, not counted)" in lines
    assert "start + offset*j = -1 + 3*2 = 5   (W; the piece begins at offset 3)" in lines
    assert "ch     output = N - (pieces - 1)*ceil(N/chunks) = 10 - (3 - 1)*ceil(10/3) = 2" in lines
    assert "exact per output: output o reads input o + 5 along W" in lines


def test_explain_symbolic_matmul():
    pytest.importorskip("sympy")
    from archcalc.explain import explain, text

    lines = text(explain(archcalc.parse_spec(spec(["T", 64], *QK, "{matmul: {transpose: true}, from: [q, k]}"))))
    assert "macs = M*N*K = T*T*8 = 8*T**2" in lines
