"""archcalc explain: every step's result equals the analysis' figure, and the values written into a
formula compute that result."""
import math
import re
from pathlib import Path

import pytest

import archcalc
from bundled import SPEC_FILES
from archcalc.geometry.receptive_field import GLOBAL, RF
from archcalc.errors import SpecError
from archcalc.explain import Explanation, explain, markdown, text
from archcalc.layers import KINDS

SPECS = Path(__file__).resolve().parent.parent / "specs"
ALL_SPECS = SPEC_FILES

SMALL = """
input: [1, 28, 28]
layers:
  - conv: {out: 16, kernel: 5, padding: 2}
  - relu
  - {name: pool1, maxpool: 2}
  - flatten
  - linear: 10
"""

# Inline specs that together use every layer kind, with the variants whose steps differ:
# groups, no bias, dilation, 'same' padding with an even kernel (uneven sides), 1-d and 3-d inputs,
# ceil_mode dropping a window, strided and unstrided transposed convolutions, upsampling by scale
# and by size, adaptive pooling to sizes that do not divide the input (exact fields), windows and
# merges after such exact fields, misaligned merges, linear on [C, L] and [C, H, W].
ALL_KINDS = {
    "mamba": """
input: [12, 16]
layers:
  - mamba: {d_state: 4, d_conv: 3}
  - {mamba: {d_state: 2, d_conv: 2, expand: 3, dt_rank: 3, bias: true, conv_bias: false}, trainable: false}
  - mamba: {}
""",
    # Frozen entries: each kind's params step gives its own count, though the row's trainable is 0.
    "frozen": """
input: {tokens: [8]}
layers:
  - {name: e, embedding: {num: 20, dim: 12}}
  - {name: bias, relative_position_bias: {heads: 2, num_buckets: 8, max_distance: 16}, from: input, trainable: false}
  - {name: a, attention: {heads: 2, scale: 1, causal: true}, from: [e, bias], trainable: false}
  - {name: grid, reshape: [2, 4, 12]}
  - {window_attention: {heads: 3, window: 2, shift: 1}, trainable: false}
  - {patch_merging: {}, trainable: false}
""",
    "t5": """
input: {tokens: [6]}
layers:
  - {name: e, embedding: {num: 20, dim: 16}}
  - {name: bias, relative_position_bias: {heads: 2, num_buckets: 8, max_distance: 16}, from: input}
  - {name: a, attention: {heads: 2, bias: false, scale: 1, causal: true}, from: [e, bias]}
  - {multiply_by: 0.25}
""",
    "experts": """
input: [6, 16]
layers:
  - moe: {experts: 4, top_k: 2, hidden: 8}
  - {moe: {experts: 4, top_k: 1, hidden: 8, expert: mlp, bias: true, router_bias: true, renormalize: false,
           shared_experts: 2, shared_hidden: 3, shared_gate: true}, trainable: false}
  - {moe: {experts: 3, top_k: 3, hidden: 4, shared_experts: 1}}
  - {name: flat, reshape: [96]}
  - {moe: {experts: 2, top_k: 1, hidden: 4}}
""",
    "windows": """
input: [3, 16, 12]
layers:
  - conv: {out: 6, kernel: 2, stride: 2}
  - {name: hwc, permute: [1, 2, 0]}
  - {name: a, window_attention: {heads: 3, window: 4}}
  - {add: {}, from: [a, hwc]}
  - {window_attention: {heads: 2, window: [3, 4], shift: [1, 2], qkv_bias: false}}
  - {window_attention: {heads: 1, window: 8, shift: 3}}
  - {name: m, patch_merging: {}}
  - {roll: {shifts: [2], dims: [2]}}
  - {roll: {shifts: [-1, 1], dims: [0, 1]}}
  - {name: p, window_partition: [3, 2]}
  - {window_merge: [3, 2], from: [p, m]}
  - {from: hwc, patch_merging: {}}
  - {from: add1, patch_merging: {}}
""",
    "encoder_decoder": """
inputs: {src: [7, 12], tgt: {tokens: [5]}}
layers:
  - {name: enc, linear: 10}
  - {name: emb, from: tgt, embedding: {num: 20, dim: 12}}
  - {cross_attention: {heads: 3, k_bias: false}, from: [emb, enc]}
  - {cross_attention: {heads: 4, kv_heads: 2, head_dim: 5, bias: false, scale: 1.0}, from: [cross_attention1, enc]}
""",
    "parameters": """
input: [4, 6, 6]
layers:
  - {name: c, conv: {out: 4, kernel: 3, padding: 1}, trainable: false}
  - {name: ls, scale: 0.000001}
  - {name: bias, parameter: {shape: [4, 1, 1], init: normal, std: 0.1}, from: input}
  - {add: {}, from: [ls, bias]}
  - {batchnorm: {}, trainable: false}
  - {name: tab, parameter: [3, 5], from: input}
  - {scale: {dim: -1, init: 0.5}}
  - {channel_shuffle: 2, from: c}
""",
    "activations": """
input: [4, 6, 6]
layers:
  - selu
  - celu: 0.5
  - rrelu: {lower: 0.1, upper: 0.2}
  - hardtanh: {min_val: -2, max_val: 3}
  - threshold: {threshold: 0.1, value: 2}
  - mish
  - softplus: {beta: 2, threshold: 10}
  - softsign
  - hardshrink: 0.3
  - softshrink: 0.2
  - tanhshrink
  - logsigmoid
  - softmin: 0
  - softmin: -1
  - softmax2d
  - quick_gelu
  - glu: 0
  - glu: -1
  - glu: 1
""",
    "transformer": """
input: [16, 24]
layers:
  - {name: norm_in, rmsnorm: {dims: 2}}
  - class_token
  - positional
  - {positional: {num: 64}}
  - {positional: {learned: false}}
  - rmsnorm
  - {rmsnorm: {dims: 2, affine: false, eps: 0.00001}}
  - {reshape: [17, 4, 6]}
  - {permute: [1, 0, 2]}
  - rotary
  - {rotary: {dims: 4, base: 500000, interleaved: true}}
""",
    "tensor_ops": """
input: [3, 20, 20]
layers:
  - {name: c, conv: {out: 4, kernel: 3, stride: 2, padding: 1}}
  - {name: mm, matmul: {transpose: true, scale: 0.5}, from: [c, c]}
  - {name: cmask, causal_mask: {window: 3}, from: mm}
  - {name: cls, select: 0}
  - {name: sw, split: {sizes: 3, index: 1}, from: c}
  - {name: slast, split: {sizes: 3, dim: 1, index: -1}, from: c}
  - {name: sc, split: {sizes: [1, 3], dim: 0, index: 1}, from: c}
  - {name: ch, chunk: {chunks: 3, dim: 1, index: -1}, from: c}
  - {name: ch0, chunk: {chunks: 4, index: 0}, from: c}
  - {name: up, upsample: 2, from: c}
  - {name: su, split: {sizes: [5, 15], dim: 2, index: 1}}
  - {name: gm, mean: [1, 2], from: c}
  - {name: cm, mean: {dim: 0, keepdim: true}, from: c}
  - {name: hm, mean: {dim: 1, keepdim: true}, from: c}
  - {name: mb, matmul: {}, from: [cm, c]}
  - {name: sel, select: {dim: 0, index: -1}, from: c}
""",
    "tokens": """
input: {tokens: [12]}
layers:
  - {name: wte, embedding: {num: 40, dim: 16, tie: head}}
  - {name: attn, attention: {heads: 4, causal: true}}
  - {name: gqa, attention: {heads: 4, kv_heads: 2, rotary: true, bias: false}}
  - {name: wide, attention: {heads: 2, kv_heads: 1, head_dim: 12}}
  - {name: mha, attention: {heads: 4, causal: true, layout: packed}}
  - {name: head, linear: {out: 40, bias: false}}
""",
    "sequence": """
input: [12, 10]
layers:
  - {name: r1, rnn: 16}
  - {name: r2, rnn: {hidden: 8, layers: 2, bidirectional: true, nonlinearity: relu, bias: false}}
  - {name: l1, lstm: 20}
  - {name: l2, lstm: {hidden: 12, layers: 3, bidirectional: true, dropout: 0.2}}
  - {name: l3, lstm: {hidden: 12, proj_size: 5, layers: 2}}
  - {name: l4, lstm: {hidden: 6, proj_size: 4, bidirectional: true, bias: false}}
  - {name: g1, gru: 7}
  - {name: g2, gru: {hidden: 9, layers: 2, bidirectional: true}}
""",
    "images": """
input: [4, 17, 15]
layers:
  - {name: c1, conv: {out: 8, kernel: [3, 5], stride: [2, 1], padding: [1, 2], dilation: [1, 2]}}
  - {name: dw, conv: {out: 8, kernel: 3, padding: 1, groups: 8, bias: false}}
  - {name: same, conv: {out: 8, kernel: 4, padding: same}}
  - batchnorm
  - {batchnorm: {affine: false}}
  - {batchnorm: {track_running_stats: false}}
  - relu
  - relu6
  - leaky_relu: 0.2
  - elu
  - gelu
  - silu
  - sigmoid
  - tanh
  - hardswish
  - hardsigmoid
  - identity
  - dropout: 0.3
  - dropout2d: 0.1
  - {stochastic_depth: {p: 0.2, mode: batch}}
  - prelu
  - prelu: 8
  - groupnorm: 4
  - {groupnorm: {groups: 2, affine: false}}
  - instancenorm
  - {instancenorm: {affine: true, track_running_stats: true}}
  - layernorm
  - {layernorm: {dims: 2, bias: false}}
  - {layernorm: {dims: 3, affine: false}}
  - {name: mp, maxpool: {kernel: 3, stride: 2, padding: 1, ceil_mode: true}}
  - {maxpool: {kernel: 2, dilation: 2}}
  - {name: ap, avgpool: {kernel: 2, stride: 1, padding: 1}, from: same}
  - {avgpool: {kernel: 2, stride: 2, padding: 1, ceil_mode: true}, from: mp}
  - {name: a, add: {}, from: [same, relu1]}
  - {name: m, multiply: {}, from: [a, dw]}
  - {name: x5, conv: {out: 8, kernel: [5, 6]}, from: same}
  - {name: mis, add: {}, from: [x5, mp]}
  - {name: cat, concat: 0, from: [a, m]}
  - {name: cat2, concat: -1, from: [a, m]}
  - softmax
  - {softmax: 1}
  - {log_softmax: 0, from: cat}
  - {log_softmax: -1, from: cat}
  - {zeropad: 1, from: cat}
  - {zeropad: [1, 0, 2, 3]}
  - {name: gap, global_avgpool: {}}
  - {name: gmp, global_maxpool: {}, from: cat}
  - flatten
  - {name: fc, linear: 10}
  - {name: fc2, linear: {out: 5, bias: false}}
  - {reshape: [5, 1]}
  - {permute: [1, 0]}
  - {reshape: [-1]}
""",
    "exact": """
input: [2, 12, 12]
layers:
  - {name: ct, conv_transpose: {out: 4, kernel: 3, stride: 2, padding: 1, output_padding: 1}}
  - {name: after, conv: {out: 4, kernel: 3, stride: 2}}
  - {name: up, upsample: 2, from: input}
  - {upsample: {scale: 1.5, mode: bilinear}}
  - {upsample: {size: [20, 30], mode: bilinear, align_corners: true}}
  - {upsample: {size: 25}}
  - {name: ad, adaptive_avgpool: [5, 7], from: input}
  - {name: ad_conv, conv: {out: 2, kernel: 2}}
  - {name: ad_pool, maxpool: 2, from: ad}
  - {name: ad_pad, zeropad: 1, from: ad}
  - {name: ad1, adaptive_avgpool: 1, from: input}
  - {name: ct1, conv_transpose: {out: 2, kernel: 3, padding: 1, groups: 2, bias: false}, from: input}
  - {name: ct1b, conv_transpose: {out: 2, kernel: 2, dilation: 2}, from: up}
  - {name: up2, upsample: 2, from: input}
  - {name: up3, upsample: 2, from: input}
  - {name: exact_add, add: {}, from: [up2, up3]}
  - {name: exact_cat, concat: 0, from: [up2, up3]}
  - {name: ad2, adaptive_avgpool: 12, from: input}
""",
    "signal": """
input: [3, 32]
layers:
  - conv: {out: 6, kernel: 5, stride: 2}
  - maxpool: 2
  - avgpool: 2
  - conv_transpose: {out: 3, kernel: 4, stride: 2}
  - upsample: {scale: 2, mode: linear}
  - adaptive_avgpool: 4
  - {name: lin, linear: 7}
  - softmax: -1
  - flatten
""",
    "volume": """
input: [2, 6, 8, 8]
layers:
  - conv: {out: 4, kernel: 3, padding: 1}
  - batchnorm
  - maxpool: 2
  - avgpool: {kernel: 2}
  - conv_transpose: {out: 2, kernel: 2, stride: 2}
  - upsample: {scale: 2, mode: trilinear}
  - zeropad: 1
  - {linear: 3}
""",
    "features": """
input: [20]
layers:
  - linear: 8
  - batchnorm
  - relu
  - layernorm
  - dropout
  - softmax
  - {name: x, linear: 4}
  - {name: y, linear: 4, from: relu1}
  - {add: {}, from: [x, y]}
  - {concat: 0, from: [x, y]}
""",
}


# --- the checks -----------------------------------------------------------------------------------

FIGURE = {"params": "params", "trainable": "trainable_params", "non-trainable": "non_trainable_params",
          "active": "active_params", "macs": "macs"}
RF_PART = {"rf": "size", "jump": "stride", "start": "start"}
ARITHMETIC = re.compile(r"^[-+*/()\[\], .\d]*$")
NAMES = {"floor": math.floor, "ceil": math.ceil, "max": max, "min": min}


def _evaluate(expression: str):
    """The value of a substituted formula, when it is arithmetic on numbers: integers and
    fractions exactly (as `Fraction`s), so that floor and ceil are exact."""
    from fractions import Fraction

    bare = expression
    for name in NAMES:
        bare = bare.replace(name, "")
    if not ARITHMETIC.match(bare):
        return None
    exact_text = re.sub(r"(?<![\w.])(\d+\.\d+|\d+)", r"Fraction('\1')", expression)
    value = eval(exact_text, {"Fraction": Fraction, **NAMES})  # noqa: S307 (only numbers and operators)
    if isinstance(value, list):
        return tuple(value)
    return value


def check(report, explanations: list[Explanation]) -> int:
    """Every step's result equals the report's figure; every layer explains its output, parameters,
    MACs and receptive field (each axis of a tracked field); arithmetic substitutions evaluate to
    the result. Returns the number of steps checked."""
    rows = {row.name: row for row in report.layers}
    checked = 0
    for e in explanations:
        row = rows[e.name]
        assert e.kind == row.kind
        where = f"{e.name} ({e.kind})"
        seen: dict = {}
        for s in e.steps:
            seen.setdefault(s.figure, set()).update(s.at or {"whole"})
            if s.figure == "output":
                if s.at:
                    for d in s.at:
                        assert s.result == row.output_shape[d], (where, s)
                else:
                    assert tuple(s.result) == tuple(row.output_shape), (where, s)
            elif s.figure in FIGURE:
                assert s.result == getattr(row, FIGURE[s.figure]), (where, s)
            elif s.figure in RF_PART:
                if s.at:
                    assert isinstance(row.rf, RF), (where, s)
                    for axis in s.at:
                        assert s.result == getattr(row.rf, RF_PART[s.figure])[axis], (where, s)
                else:
                    assert s.figure == "rf" and s.result == row.rf, (where, s, row.rf)
            else:
                raise AssertionError(f"{where}: unknown figure {s.figure!r}")
            if s.substituted:
                value = _evaluate(s.substituted)
                if value is not None:
                    expected = tuple(s.result) if isinstance(s.result, tuple) else s.result
                    assert value == expected, (where, s)
            checked += 1
        assert {"output", "params", "macs", "rf"} <= set(seen), (where, seen)
        assert "whole" in seen["output"], f"{where}: no step for the whole output shape"
        if row.non_trainable_params:
            assert {"trainable", "non-trainable"} <= set(seen), where
        if isinstance(row.rf, RF) and "whole" not in seen["rf"]:
            axes = set(range(len(row.rf.size)))
            for figure in RF_PART:
                assert seen.get(figure) == axes, (where, figure, seen)
    return checked


def explain_text(spec_text, **kwargs):
    return explain(archcalc.parse_spec(spec_text), **kwargs)


# --- the examples of the brief ----------------------------------------------------------------------

EXAMPLE = """
input: [1, 28, 28]
layers:
  - conv: {out: 16, kernel: 5, padding: 2}
  - {name: pool1, maxpool: 2}
"""


def test_the_lecture_lines_for_a_small_network():
    lines = text(explain_text(EXAMPLE)).splitlines()
    assert "conv1  params = (K1*K2*Cin + 1)*Cout = (5*5*1 + 1)*16 = 416" in lines
    assert ("conv1  output = floor((N + 2P - D(K-1) - 1)/S) + 1 = floor((28 + 2*2 - 1*(5-1) - 1)/1) + 1 = 28"
            "   (H, W)") in lines
    assert "conv1  macs = M1*M2*K1*K2*(Cin/groups)*Cout = 28*28*5*5*1*16 = 313,600" in lines
    assert ("pool1  rf = r + D(K-1)*j = 5 + 1*(2 - 1)*1 = 6, jump = j*S = 1*2 = 2, "
            "start = start - P*j = -2 - 0*1 = -2   (H, W)") in lines


SMALL_TEXT = """\
conv1     output = floor((N + 2P - D(K-1) - 1)/S) + 1 = floor((28 + 2*2 - 1*(5-1) - 1)/1) + 1 = 28   (H, W)
conv1     output = [Cout, M1, M2] = [16, 28, 28]
conv1     params = (K1*K2*Cin + 1)*Cout = (5*5*1 + 1)*16 = 416
conv1     macs = M1*M2*K1*K2*(Cin/groups)*Cout = 28*28*5*5*1*16 = 313,600
conv1     rf = r + D(K-1)*j = 1 + 1*(5 - 1)*1 = 5, jump = j*S = 1*1 = 1, start = start - P*j = 0 - 2*1 = -2   (H, W)
relu1     output = input shape = [16, 28, 28]   (y = max(0, x))
relu1     params = 0
relu1     macs = 0
relu1     rf = unchanged = size 5, jump 1, start -2
pool1     output = floor((N + 2P - D(K-1) - 1)/S) + 1 = floor((28 + 2*0 - 1*(2-1) - 1)/2) + 1 = 14   (H, W; stride = kernel (default))
pool1     output = [C, M1, M2] = [16, 14, 14]
pool1     params = 0   (no weights)
pool1     macs = 0   (maxima are not multiply-accumulates)
pool1     rf = r + D(K-1)*j = 5 + 1*(2 - 1)*1 = 6, jump = j*S = 1*2 = 2, start = start - P*j = -2 - 0*1 = -2   (H, W)
flatten1  output = [C*H*W] = [16*14*14] = [3136]
flatten1  params = 0
flatten1  macs = 0
flatten1  rf = global   (by convention: later layers treat the tensor as a vector)
linear1   output = [Nout] = [10]
linear1   params = (Nin + 1)*Nout = (3136 + 1)*10 = 31,370
linear1   macs = Nin*Nout = 3136*10 = 31,360
linear1   rf = global   (the input already sees the whole input)
"""

SMALL_MARKDOWN = """\
| layer | figure | formula | values | result | note |
|---|---|---|---|---|---|
| `conv1` (conv) | output (H, W) | `floor((N + 2P - D(K-1) - 1)/S) + 1` | `floor((28 + 2*2 - 1*(5-1) - 1)/1) + 1` | 28 |  |
|  | output | `[Cout, M1, M2]` |  | [16, 28, 28] |  |
|  | params | `(K1*K2*Cin + 1)*Cout` | `(5*5*1 + 1)*16` | 416 |  |
|  | macs | `M1*M2*K1*K2*(Cin/groups)*Cout` | `28*28*5*5*1*16` | 313,600 |  |
|  | rf (H, W) | `r + D(K-1)*j` | `1 + 1*(5 - 1)*1` | 5 |  |
|  | jump (H, W) | `j*S` | `1*1` | 1 |  |
|  | start (H, W) | `start - P*j` | `0 - 2*1` | -2 |  |
| `relu1` (relu) | output | `input shape` |  | [16, 28, 28] | y = max(0, x) |
|  | params | `0` |  | 0 |  |
|  | macs | `0` |  | 0 |  |
|  | rf | `unchanged` |  | size 5, jump 1, start -2 |  |
| `pool1` (maxpool) | output (H, W) | `floor((N + 2P - D(K-1) - 1)/S) + 1` | `floor((28 + 2*0 - 1*(2-1) - 1)/2) + 1` | 14 | stride = kernel (default) |
|  | output | `[C, M1, M2]` |  | [16, 14, 14] |  |
|  | params | `0` |  | 0 | no weights |
|  | macs | `0` |  | 0 | maxima are not multiply-accumulates |
|  | rf (H, W) | `r + D(K-1)*j` | `5 + 1*(2 - 1)*1` | 6 |  |
|  | jump (H, W) | `j*S` | `1*2` | 2 |  |
|  | start (H, W) | `start - P*j` | `-2 - 0*1` | -2 |  |
| `flatten1` (flatten) | output | `[C*H*W]` | `[16*14*14]` | [3136] |  |
|  | params | `0` |  | 0 |  |
|  | macs | `0` |  | 0 |  |
|  | rf |  |  | global | by convention: later layers treat the tensor as a vector |
| `linear1` (linear) | output | `[Nout]` |  | [10] |  |
|  | params | `(Nin + 1)*Nout` | `(3136 + 1)*10` | 31,370 |  |
|  | macs | `Nin*Nout` | `3136*10` | 31,360 |  |
|  | rf |  |  | global | the input already sees the whole input |
"""


def test_text_snapshot():
    assert text(explain_text(SMALL)) == SMALL_TEXT


def test_markdown_snapshot():
    assert markdown(explain_text(SMALL)) == SMALL_MARKDOWN


# --- every figure of every layer -----------------------------------------------------------------

@pytest.mark.parametrize("path", ALL_SPECS, ids=lambda p: str(p.relative_to(SPECS)))
def test_bundled_specs_explain_every_figure(path):
    graph = archcalc.load_spec(path)
    explanations = explain(graph)
    report = archcalc.analyze(graph)
    assert [e.name for e in explanations] == [row.name for row in report.layers]
    assert check(report, explanations) > 0
    assert text(explanations) and markdown(explanations)


@pytest.mark.parametrize("name", sorted(ALL_KINDS))
def test_inline_specs_explain_every_figure(name):
    graph = archcalc.parse_spec(ALL_KINDS[name])
    explanations = explain(graph)
    check(archcalc.analyze(graph), explanations)
    assert text(explanations) and markdown(explanations)


def test_the_inline_specs_use_every_kind():
    used = {node.kind for spec in ALL_KINDS.values() for node in archcalc.parse_spec(spec).nodes}
    assert used == set(KINDS)


def test_the_inline_specs_reach_the_exact_and_misaligned_branches():
    exact = archcalc.analyze_text(ALL_KINDS["exact"])
    assert exact.layer("ct").rf.axes is not None  # fractional stride 1/2
    assert exact.layer("ad_conv").rf.axes is not None  # a window after exact windows
    assert exact.layer("exact_add").rf.axes is not None  # an aligned merge of exact windows
    assert exact.layer("ad1").rf == GLOBAL
    images = archcalc.analyze_text(ALL_KINDS["images"])
    assert images.layer("mis").rf.misaligned
    assert images.layer("same").rf.start != images.layer("c1").rf.start
    steps = {e.name: e.steps for e in explain_text(ALL_KINDS["images"])}
    assert any("P_left + P_right" in s.formula for s in steps["same"])  # padding 'same', kernel 4
    assert any("dropped" in s.note for s in steps["avgpool2"])  # ceil_mode's last window


def test_batch_multiplies_macs():
    graph = archcalc.parse_spec(SMALL)
    explanations = explain(graph, batch=4)
    check(archcalc.analyze(graph, batch=4), explanations)
    conv = explanations[0]
    macs = next(s for s in conv.steps if s.figure == "macs")
    assert (macs.formula, macs.substituted, macs.result) == (
        "batch*M1*M2*K1*K2*(Cin/groups)*Cout", "4*28*28*5*5*1*16", 4 * 313_600)


# --- choosing layers ------------------------------------------------------------------------------

def test_layers_by_name_and_by_block_instance():
    graph = archcalc.load_spec(SPECS / "zoo" / "resnet18.yaml")
    assert [e.name for e in explain(graph, ["fc", "conv1"])] == ["conv1", "fc"]  # graph order
    block = [e.name for e in explain(graph, ["layer1.1"])]
    assert block and all(name.startswith("layer1.1.") for name in block)


def test_unknown_layer_name():
    with pytest.raises(SpecError) as info:
        explain_text(SMALL, layers=["conv2", "pool1"])
    assert "no layer named 'conv2'" in str(info.value)
    assert "did you mean 'conv1'?" in str(info.value)
    with pytest.raises(SpecError):
        explain_text(SMALL, layers=["nothing_like_it"])


# --- symbolic sizes ---------------------------------------------------------------------------------

SYMBOLIC = """
input: [1, H, W]
layers:
  - conv: {out: 16, kernel: 5, padding: 2}
  - relu
  - maxpool: 2
  - {conv: {out: 8, kernel: 3, stride: 2}}
  - zeropad: 1
  - global_avgpool
  - flatten
  - linear: 10
"""


def test_symbolic_sizes_give_formulas_equal_to_the_analysis():
    sympy = pytest.importorskip("sympy")
    graph = archcalc.parse_spec(SYMBOLIC)
    if not getattr(graph, "symbols", ()):
        pytest.skip("symbolic sizes are not available")
    explanations = explain(graph)
    report = archcalc.analyze(graph)
    rows = {row.name: row for row in report.layers}
    for e in explanations:
        row = rows[e.name]
        for s in e.steps:
            if s.figure == "output" and s.at:
                for d in s.at:
                    assert sympy.simplify(s.result - row.output_shape[d]) == 0, (e.name, s)
            elif s.figure in FIGURE:
                assert sympy.simplify(s.result - getattr(row, FIGURE[s.figure])) == 0, (e.name, s)
    lines = text(explanations)
    assert "floor((H + 2*2 - 1*(5-1) - 1)/1) + 1 = H   (H)" in lines
    assert "H*W*5*5*1*16 = 400*H*W" in lines


def test_symbolic_sizes_assumed_divisible_read_in_the_users_symbols():
    sympy = pytest.importorskip("sympy")
    from archcalc import api

    text_ = (SPECS / "zoo" / "resnet18.yaml").read_text().replace("input: [3, 224, 224]", "input: [3, H, W]")
    graph = archcalc.parse_spec(text_)
    if not getattr(graph, "symbols", ()) or not hasattr(api, "divisible_multiples"):
        pytest.skip("symbolic sizes are not available")
    graph = archcalc.parse_spec(text_, multiples=api.divisible_multiples(archcalc.analyze(graph), graph))
    report = archcalc.analyze(graph)
    rows = {row.name: row for row in report.layers}
    explanations = explain(graph)
    for e in explanations:
        for s in e.steps:
            if s.figure in FIGURE:
                assert sympy.simplify(s.result - getattr(rows[e.name], FIGURE[s.figure])) == 0, (e.name, s)
    lines = text(explanations).splitlines()
    assert any(line.endswith("floor((H + 2*3 - 1*(7-1) - 1)/2) + 1 = H/2   (H)") for line in lines)
    assert any("(H/2)*(W/2)*7*7*3*64 = 2,352*H*W" in line for line in lines)  # grouped, as analyze
