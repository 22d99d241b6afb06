"""cross_attention: hand-computed parameters, MACs, shapes, the cross K/V cache and mistakes."""
import textwrap

import pytest

import archcalc
from archcalc.analysis.memory import plan_memory


def spec(queries, memory, entry, extra=""):
    return textwrap.dedent(f"""
    inputs: {{q: {list(queries)}, m: {list(memory)}}}
    layers:
      - {{cross_attention: {entry}, from: [q, m]}}
    {extra}""")


def row(queries, memory, entry):
    return archcalc.analyze_text(spec(queries, memory, entry)).layers[0]


def error(queries, memory, entry, extra=""):
    with pytest.raises(archcalc.SpecError) as info:
        archcalc.analyze_text(spec(queries, memory, entry, extra))
    return info.value


def test_figures_of_a_memory_of_another_length_and_width():
    # queries [5, 12], memory [7, 10], 3 heads of d = 4: q 12*12, k and v 10*12 each, out 12*12
    r = row([5, 12], [7, 10], "{heads: 3}")
    assert r.output_shape == (5, 12)
    assert r.params == 144 + 2 * 120 + 144 + 12 + 12 + 12 + 12 == 576
    # q 5*12*12, k and v 2*7*10*12, scores and weights x v 2*3*5*7*4, out 5*12*12
    assert r.macs == 720 + 1680 + 840 + 720 == 3960
    assert r.rf is None


def test_whisper_cross_attention_has_no_k_bias():
    # Whisper-tiny's encoder_attn: D = Dm = 384, 6 heads, q/v/out biases, no k bias, T 448 x 1500
    r = row([448, 384], [1500, 384], "{heads: 6, k_bias: false}")
    assert r.params == 4 * 384 * 384 + 3 * 384 == 590_976
    assert r.macs == 448 * 384 * 384 + 2 * 1500 * 384 * 384 + 2 * 448 * 1500 * 384 + 448 * 384 * 384


def test_grouped_heads_head_dim_and_no_biases():
    # 4 query heads, 2 key/value heads of d = 5, D = 12, Dm = 10
    r = row([3, 12], [6, 10], "{heads: 4, kv_heads: 2, head_dim: 5, bias: false}")
    assert r.params == 12 * 20 + 2 * 10 * 10 + 20 * 12 == 680
    assert r.macs == 3 * 12 * 20 + 2 * 6 * 10 * 10 + 2 * 4 * 3 * 6 * 5 + 3 * 20 * 12 == 3360
    # bias: false then o_bias: true adds only the output bias
    assert row([3, 12], [6, 10], "{heads: 4, kv_heads: 2, head_dim: 5, bias: false, o_bias: true}").params == 692


def test_the_scale_and_dropout_change_no_figure():
    plain = row([5, 12], [7, 10], "{heads: 3}")
    other = row([5, 12], [7, 10], "{heads: 3, scale: 1.0, dropout: 0.1}")
    assert (plain.params, plain.macs) == (other.params, other.macs)


def test_memory_counts_the_cross_cache_beside_the_self_attention_cache():
    text = textwrap.dedent("""
    inputs: {q: [5, 12], m: [7, 10]}
    layers:
      - {attention: {heads: 3, causal: true}, from: q}
      - {cross_attention: {heads: 3, kv_heads: 1}, from: [attention1, m]}
    """)
    graph = archcalc.parse_spec(text)
    report = archcalc.analyze(graph, batch=2, dtype="float16")
    plan = plan_memory(graph, report)
    assert plan.get("inference", "kv_cache") == 2 * 5 * 3 * 4 * 2 * 2  # causal self-attention: 2*T*Hkv*d
    assert plan.get("inference", "cross_kv_cache") == 2 * 7 * 1 * 4 * 2 * 2  # 2*Tk*Hkv*d, batch 2, 2 bytes
    inference = dict((i.key, i.value) for i in plan.inference)
    assert inference["total"] == sum(v for k, v in inference.items() if k != "total")
    assert "cross-attention" in plan.to_json()["formulas"]["inference"]["cross_kv_cache"]
    # Without cross-attention there is no such line (the plan of a decoder is unchanged).
    plain = archcalc.parse_spec("input: [5, 12]\nlayers:\n  - {attention: {heads: 3, causal: true}}\n")
    keys = [i.key for i in plan_memory(plain, archcalc.analyze(plain)).inference]
    assert keys == ["weights", "activations", "kv_cache", "total"]


def test_saved_for_backward():
    from archcalc.layers import KINDS

    layer = KINDS["cross_attention"]
    a = archcalc.parse_spec(spec([5, 12], [7, 10], "{heads: 3}")).nodes[0].args
    # The CPU flash kernel (no dropout): x 5*12, memory 7*10, q 3*5*4, k and v 2*3*7*4, its output
    # 3*5*4 and the logsumexp [H, Tq] 3*5
    assert layer.saved_for_backward(a, [(5, 12), (7, 10)], (5, 12)) == 60 + 70 + 60 + 2 * 84 + 60 + 15
    # With dropout the math kernel: x, memory, q and k^T scaled 60 + 84, the softmax, its mask and
    # the dropped weights 3 * (3*5*7), v 84, the output copied for the projection 60
    dropped = {**a, "dropout": 0.1}
    assert layer.saved_for_backward(dropped, [(5, 12), (7, 10)], (5, 12)) == 60 + 70 + 60 + 84 + 3 * 105 + 84 + 60


def test_explain_gives_the_same_figures():
    from archcalc.explain import explain

    graph = archcalc.parse_spec(spec([5, 12], [7, 10], "{heads: 3, k_bias: false}"))
    steps = {s.figure: s for s in explain(graph)[0].steps}
    assert steps["params"].result == 564 and steps["macs"].result == 3960
    assert steps["params"].substituted == "12*3*4 + 2*10*3*4 + 3*4*12 + 3*4 + 3*4 + 12"
    assert "biases on q, v, output only" in steps["params"].note


@pytest.mark.parametrize("queries, memory, entry, message", [
    ([5, 12], [7, 10], "{heads: 5}", "the queries' features D = 12 are not divisible by heads 5"),
    ([5, 12], [7, 10], "{heads: 4, kv_heads: 3}", "heads 4 are not divisible by kv_heads 3"),
    ([5, 12], [7, 2, 5], "{heads: 3}", "cross_attention needs memory shaped [Tk, Dm] (tokens, features), got [7, 2, 5]"),
    ([12], [7, 10], "{heads: 3}", "cross_attention needs queries shaped [Tq, D]"),
])
def test_mistakes(queries, memory, entry, message):
    assert message in error(queries, memory, entry).message


def test_it_takes_exactly_two_inputs():
    exc = error([5, 12], [7, 10], "{heads: 3}", extra="  - {cross_attention: 3}")
    assert ("cross_attention takes two inputs, but 'from' names 1; name them in order with "
            "'from: [queries, memory]'") in exc.message
    exc = error([5, 12], [7, 10], "{heads: 3}", extra="  - {cross_attention: 3, from: [q, m, q]}")
    assert "cross_attention takes two inputs, but 'from' names 3" in exc.message


def test_a_repeat_gives_every_copy_the_same_memory():
    graph = archcalc.parse_spec(textwrap.dedent("""
    inputs: {q: [5, 12], m: [7, 10]}
    layers:
      - {cross_attention: 3, from: [q, m], repeat: 3}
    """))
    assert [n.inputs for n in graph.nodes] == [("q", "m"), ("cross_attention1.1", "m"), ("cross_attention1.2", "m")]
