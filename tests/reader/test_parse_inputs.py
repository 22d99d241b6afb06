"""Several network inputs (`inputs:`) and blocks taking several inputs (`inputs: [x, memory]`)."""
import textwrap

import pytest

import archcalc
from archcalc.reader.graph import INPUT

TWO = """
inputs:
  feats: [80, 12]
  ids: {tokens: [5]}
layers:
  - conv: {out: 8, kernel: 3, stride: 2, padding: 1}   # [8, 6]
  - {name: enc, permute: [1, 0]}                       # [6, 8]
  - {name: emb, from: ids, embedding: {num: 100, dim: 8}}
  - {name: both, from: [emb, enc], matmul: {transpose: true}}   # [5, 6]
"""


def parse(text, **kw):
    return archcalc.parse_spec(textwrap.dedent(text), **kw)


def error(text, **kw):
    with pytest.raises(archcalc.SpecError) as info:
        archcalc.analyze_text(textwrap.dedent(text), **kw)
    return info.value


def test_inputs_are_read_by_name_in_order_and_the_first_is_input_shape():
    graph = parse(TWO)
    assert graph.input_names == ("feats", "ids")
    assert graph.input_shape == (80, 12) and graph.tokens is False
    assert graph.input_shapes == {"feats": (80, 12), "ids": (5,)}
    assert graph.token_inputs == {"ids"} and graph.named_inputs
    nodes = {n.name: n for n in graph.nodes}
    assert nodes["conv1"].inputs == ("feats",)  # the first entry reads the first input
    assert nodes["emb"].inputs == ("ids",)
    assert nodes["both"].inputs == ("emb", "enc")


def test_a_single_input_spec_is_unchanged():
    graph = parse("input: [3, 8, 8]\nlayers: [relu]\n")
    assert graph.input_names == (INPUT,) and not graph.named_inputs
    assert graph.nodes[0].inputs == (INPUT,)
    data = archcalc.analyze_text("input: [3, 8, 8]\nlayers: [relu]\n").to_json()
    assert "inputs" not in data and data["input"] == [3, 8, 8]


def test_input_means_the_first_input_at_top_level():
    graph = parse("""
    inputs: {a: [4, 6], b: [4, 6]}
    layers:
      - relu
      - {from: input, tanh: {}}
      - {from: b, sigmoid: {}}
      - {add: {}, from: [relu1, tanh1, sigmoid1]}
    """)
    nodes = {n.name: n for n in graph.nodes}
    assert nodes["tanh1"].inputs == ("a",) and nodes["sigmoid1"].inputs == ("b",)


def test_figures_json_and_receptive_fields():
    report = archcalc.analyze_text(textwrap.dedent(TWO))
    # conv: 6 positions * 3 taps * 80 * 8 = 11,520 MACs; (3*80 + 1)*8 = 1,928 params
    assert report.layer("conv1").macs == 11_520 and report.layer("conv1").params == 1_928
    assert report.layer("emb").params == 800
    assert report.layer("both").output_shape == (5, 6) and report.layer("both").macs == 5 * 6 * 8
    assert report.output_shape == (5, 6)
    # Fields are measured in pixels of the first input; token ids have none, nor what mixes them in.
    assert report.layer("conv1").rf.size == (3,) and report.layer("enc").rf.stride == (2,)
    assert report.layer("emb").rf is None and report.layer("both").rf is None
    data = report.to_json()
    assert list(data)[:4] == ["version", "name", "input", "inputs"]
    assert data["input"] == [80, 12]
    assert data["inputs"] == {"feats": [80, 12], "ids": {"tokens": [5]}}
    assert data["totals"]["input_bytes"] == (80 * 12 + 5) * 4  # every input of the batch
    assert [row["from"] for row in data["layers"]][:3] == [["feats"], ["conv1"], ["ids"]]


def test_a_merge_of_the_first_input_and_another_has_no_field():
    report = archcalc.analyze_text(textwrap.dedent("""
    inputs: {image: [2, 9, 9], bias: [2, 9, 9]}
    layers:
      - conv: {out: 2, kernel: 3, padding: 1}
      - {name: other, from: bias, conv: {out: 2, kernel: 3, padding: 1}}
      - {add: {}, from: [conv1, other]}
    """))
    assert report.layer("conv1").rf.size == (3, 3)
    assert report.layer("other").rf is None and report.layer("add1").rf is None


def test_symbols_in_a_second_input():
    report = archcalc.analyze_text(textwrap.dedent("""
    inputs: {x: [4, 8], y: [T, 8]}
    layers:
      - {from: y, linear: 3}
    """))
    assert report.symbols == ("T",)
    assert str(report.layer("linear1").macs) == "24*T"
    bound = archcalc.analyze_text("inputs: {x: [4, 8], y: [T, 8]}\nlayers:\n  - {from: y, linear: 3}\n",
                                  bindings={"T": 10})
    assert bound.layer("linear1").macs == 240


def test_override_inputs_by_name_or_the_first_by_shape():
    report = archcalc.analyze_text(textwrap.dedent(TWO), input_shape={"ids": (7,)})
    assert report.layer("both").output_shape == (7, 6)
    data = report.to_json()
    assert data["inputs"]["ids"] == {"tokens": [7]}  # still token ids
    report = archcalc.analyze_text(textwrap.dedent(TWO), input_shape=(80, 20))
    assert report.layer("enc").output_shape == (10, 8)
    report = archcalc.analyze_text(textwrap.dedent(TWO), input_shape={"input": (80, 4), "ids": (3,)})
    assert report.layer("both").output_shape == (3, 2)
    exc = error(TWO, input_shape={"idz": (7,)})
    assert "no input named 'idz' (did you mean 'ids'?); its inputs: feats, ids" in exc.message
    exc = error("input: [3]\nlayers: [relu]\n", input_shape={"x": (7,)})
    assert "its inputs: one, named 'input'" in exc.message


@pytest.mark.parametrize("text, where, message", [
    ("input: [3]\ninputs: {a: [3]}\nlayers: [relu]\n", "2:1", "give 'input' (the one input) or 'inputs'"),
    ("layers: [relu]\n", "1:1", "the spec has no 'input' (or 'inputs' for several named inputs)"),
    ("inputs: [3, 4]\nlayers: [relu]\n", "1:9", "'inputs' must map input names to shapes"),
    ("inputs: {}\nlayers: [relu]\n", "1:9", "'inputs' must map input names to shapes"),
    ("inputs: {input: [3]}\nlayers: [relu]\n", "1:10", "'input' is reserved: it names the first input"),
    ("inputs: {2x: [3]}\nlayers: [relu]\n", "1:10", "input name '2x' must be a word"),
    ("inputs: {a: [3], b: 5}\nlayers: [relu]\n", "1:21", "input 'b' must be a list of sizes"),
    ("inputs: {a: [3], b: [0]}\nlayers: [relu]\n", "1:22", "input size must be a positive integer, got 0"),
    ("inputs: {a: [3], b: [3]}\nlayers:\n  - {name: b, relu: {}}\n", "3:12",
     "'b' names an input of the network; give this entry another name"),
    ("inputs: {a: [3], relu1: [3]}\nlayers: [relu]\n", "2:10",
     "'relu1' names an input of the network"),
    ("inputs: {a: [3], bb: [3]}\nlayers:\n  - {from: b, relu: {}}\n", "3:12", "(did you mean 'bb'?)"),
    ("inputs: {a: [3], ids: {tokens: [4]}}\nlayers:\n  - {from: ids, linear: 2}\n", "3:5",
     "linear reads real values, but its input holds integer token ids"),
])
def test_mistakes_in_inputs(text, where, message):
    exc = error(text)
    assert message in exc.message
    assert str(exc).split(": error")[0].endswith(where)


# --- blocks with several inputs ---------------------------------------------------------------------

DECODER = """
inputs: {src: [6, 8], tgt: [4, 8]}
blocks:
  layer:
    args: {d: 8}
    inputs: [x, memory]
    layers:
      - {name: q, linear: d}
      - {name: k, from: memory, linear: d}
      - {name: s, from: [q, k], matmul: {transpose: true}}   # [Tq, Tk]
      - {name: y, from: [s, k], matmul: {}}                  # [Tq, d]
      - {add: {}, from: [input, y]}                          # input: the first input, x
layers:
  - {name: enc, linear: 8}
  - {layer: {}, from: [tgt, enc], repeat: 3}
"""


def test_a_block_reads_its_inputs_by_name_and_a_repeat_passes_the_others_on():
    graph = parse(DECODER)
    nodes = {n.name: n for n in graph.nodes}
    assert nodes["layer1.1.q"].inputs == ("tgt",) and nodes["layer1.1.k"].inputs == ("enc",)
    assert nodes["layer1.1.add1"].inputs == ("tgt", "layer1.1.y")
    # copy 2 chains the first input and reads the same memory
    assert nodes["layer1.2.q"].inputs == ("layer1.1.add1",) and nodes["layer1.2.k"].inputs == ("enc",)
    assert nodes["layer1.3.k"].inputs == ("enc",)
    report = archcalc.analyze_text(textwrap.dedent(DECODER))
    assert report.layer("layer1.3.s").output_shape == (4, 6)
    assert report.output_shape == (4, 8)
    # q: 4*8*8, k: 6*8*8, s: 4*6*8, y: 4*8*6 per copy; enc 6*8*8
    assert report.totals.macs == 384 + 3 * (256 + 384 + 192 + 192)


def test_a_one_input_block_is_unchanged():
    report = archcalc.analyze_text(textwrap.dedent("""
    input: [4, 8]
    blocks:
      b: {layers: [relu, {add: {}, from: [input, relu1]}]}
    layers: [{b: {}, repeat: 2}]
    """))
    assert [r.inputs for r in report.layers] == [("input",), ("input", "b1.1.relu1"), ("b1.1.add1",),
                                                 ("b1.1.add1", "b1.2.relu1")]


@pytest.mark.parametrize("layers, message", [
    ("  - {layer: {}, from: tgt}\n",
     "block 'layer' takes 2 inputs (x, memory), but it is given one; name them in order with 'from: [a1, a2]'"),
    ("  - {layer: {}}\n", "block 'layer' takes 2 inputs (x, memory), but it is given one"),
    ("  - {layer: {}, from: [tgt, src, src]}\n", "block 'layer' takes 2 inputs (x, memory), but 'from' names 3"),
    ("  - {name: memory, linear: 8}\n  - {layer: {}, from: [tgt, memory]}\n", None),  # a name outside is fine
])
def test_wrong_input_counts_for_a_block(layers, message):
    text = DECODER.split("layers:\n  - {name: enc")[0] + "layers:\n" + layers
    if message is None:
        assert archcalc.analyze_text(textwrap.dedent(text)).output_shape == (4, 8)
    else:
        assert message in error(text).message


def test_a_one_input_block_given_two():
    exc = error("""
    input: [4]
    blocks: {b: {layers: [relu]}}
    layers: [relu, {b: {}, from: [input, relu1]}]
    """)
    assert "block 'b' takes one input, but 'from' names 2" in exc.message


@pytest.mark.parametrize("inputs, message", [
    ("[x, x]", "block 'b' names its input 'x' twice"),
    ("[input, m]", "'input' is reserved (it names the first input of block 'b')"),
    ("[]", "'inputs' of block 'b' must be a list of input names"),
    ("x", "'inputs' of block 'b' must be a list of input names"),
    ("[1x]", "block input name '1x' must be a word"),
])
def test_mistakes_in_block_inputs(inputs, message):
    exc = error(f"""
    input: [4]
    blocks:
      b:
        inputs: {inputs}
        layers: [relu]
    layers: [relu, {{b: {{}}, from: [input, relu1]}}]
    """)
    assert message in exc.message


def test_a_layer_inside_a_block_may_not_take_an_input_name_and_inputs_are_not_parts():
    exc = error("""
    input: [4]
    blocks:
      b:
        inputs: [x, m]
        layers: [{name: m, relu: {}}]
    layers: [relu, {b: {}, from: [input, relu1]}]
    """)
    assert "'m' names an input of this block; give this entry another name" in exc.message
    exc = error("""
    input: [4]
    blocks:
      b:
        inputs: [x, m]
        layers: [{from: m, relu: {}}]
    layers: [relu, {b: {}, from: [input, relu1]}, {from: b1.m, relu: {}}]
    """)
    assert "'b1' has no part 'm'" in exc.message
