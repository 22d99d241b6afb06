"""shape(NAME, dim): a block reads the shape of its input (or of an earlier entry of it) while the
spec is expanded; exact, symbolic sizes included, and located errors where it is misused."""
import pytest

import archcalc
from archcalc.reader.expr import ExprError, evaluate, names_in

TRANSITION = """input: [6, 16, 16]
blocks:
  half:
    layers:
      - conv: {out: "shape(input, 0) // 2", kernel: 1}
      - conv: {out: "shape(conv1, 0) + shape(input, -1)", kernel: 1}
layers:
  - conv: {out: 8, kernel: 3}
  - half
  - half
"""


def _out(graph):
    return {n.name: n.args.get("out") for n in graph.nodes}


def test_a_block_reads_its_inputs_channels_and_an_earlier_entry():
    out = _out(archcalc.parse_spec(TRANSITION, "t.yaml"))
    # half1's input is conv1: [8, 14, 14]; half1.conv1 = 8 // 2 = 4; half1.conv2 = 4 + 14 = 18;
    # half2's input is half1.conv2: [18, 14, 14]: 9, then 9 + 14 = 23.
    assert out == {"conv1": 8, "half1.conv1": 4, "half1.conv2": 18, "half2.conv1": 9, "half2.conv2": 23}


def test_each_copy_of_a_repeat_reads_its_own_input():
    graph = archcalc.parse_spec("input: [64, 8, 8]\nblocks:\n  halve:\n    layers:\n"
                                "      - conv: {out: \"shape(input, 0) // 2\", kernel: 1}\n"
                                "layers:\n  - {halve: {}, repeat: 3}\n", "r.yaml")
    assert [n.args["out"] for n in graph.nodes] == [32, 16, 8]


def test_arguments_passed_to_a_nested_block_read_the_callers_input():
    # The caller's argument is evaluated in the caller's scope: its own input, as EfficientNet's
    # squeeze width is a quarter of the MBConv block's input channels, not of the expanded ones.
    text = ("input: [40, 8, 8]\nblocks:\n  se:\n    args: {squeeze: 4}\n    layers:\n"
            "      - adaptive_avgpool: 1\n      - conv: {out: squeeze, kernel: 1}\n"
            "      - {name: back, conv: {out: \"shape(input, 0)\", kernel: 1}}\n"
            "  mb:\n    layers:\n      - conv: {out: \"6 * shape(input, 0)\", kernel: 1}\n"
            "      - se: {squeeze: \"max(1, shape(input, 0) // 4)\"}\n"
            "layers:\n  - mb\n")
    out = _out(archcalc.parse_spec(text, "mb.yaml"))
    assert out["mb1.conv1"] == 240 and out["mb1.se1.conv1"] == 10 and out["mb1.se1.back"] == 240


def test_a_block_argument_default_may_read_the_input():
    graph = archcalc.parse_spec("input: [12, 8, 8]\nblocks:\n  b:\n    args: {c: \"shape(input, 0) // 3\"}\n"
                                "    layers:\n      - conv: {out: c, kernel: 1}\nlayers:\n  - b\n  - {b: {c: 5}}\n",
                                "d.yaml")
    assert [n.args["out"] for n in graph.nodes] == [4, 5]


def test_spatial_sizes_and_symbolic_sizes_are_exact():
    # [3, H, W] -> conv k3 s2: [4, floor((H - 3)/2) + 1, ...]; upsampling back to the block
    # input's own H, W is written with shape(input, 1) and shape(input, 2).
    graph = archcalc.parse_spec("input: [3, H, W]\nblocks:\n  b:\n    layers:\n"
                                "      - conv: {out: 4, kernel: 3, stride: 2}\n"
                                "      - {upsample: {size: [\"shape(input, 1)\", \"shape(input, 2)\"]}}\n"
                                "layers:\n  - b\n", "s.yaml")
    report = archcalc.analyze(graph)
    assert [str(v) for v in report.output_shape] == ["4", "H", "W"]
    # With numbers: conv1 gets 21 + 30 = 51 channels and is [51, 10, 14]; conv2 10 x 14 = 140.
    graph = archcalc.parse_spec("input: [3, 21, 30]\nblocks:\n  b:\n    layers:\n"
                                "      - conv: {out: \"shape(input, 1) + shape(input, 2)\", kernel: 3, stride: 2}\n"
                                "      - conv: {out: \"shape(conv1, 1) * shape(conv1, 2)\", kernel: 1}\n"
                                "layers:\n  - b\n", "n.yaml")
    assert _out(graph) == {"b1.conv1": 51, "b1.conv2": 140}


def _error(text):
    with pytest.raises(archcalc.SpecError) as info:
        archcalc.parse_spec(text, "e.yaml")
    return str(info.value)


BLOCK = "input: [3, 8, 8]\nblocks:\n  b:\n    layers:\n      - conv: {{out: \"{expr}\", kernel: 1}}\nlayers:\n  - b\n"


@pytest.mark.parametrize("expr, message", [
    ("shape(input, 3)", "'input' has the shape [3, 8, 8] (batch excluded), so dim is 0 to 2 (or -3 to -1"),
    ("shape(input, -4)", "so dim is 0 to 2"),
    ("shape(inpt, 0)", "'inpt' is neither this block's input nor an earlier layer of it (did you mean 'input'?)"),
    ("shape(input)", "shape() takes a name and a dim, as in shape(input, 0)"),
    ("shape(input, 0, 1)", "shape() takes a name and a dim"),
    ("shape(2, 0)", "shape() takes a name and a dim"),
    ("shape(max, 0)", "shape() takes a name and a dim"),
    ("shape(input, 1/2)", "shape()'s dim must be a whole number, got 1/2"),
    ("shape(conv1, 0)", "'conv1' is neither this block's input nor an earlier layer"),  # itself: not earlier
    ("input * 2", "unknown name 'input' in 'input * 2' (shape(input, 0) reads a block input's channels)"),
])
def test_misuse_inside_a_block_is_one_located_line(expr, message):
    text = _error(BLOCK.format(expr=expr))
    assert text.startswith("e.yaml:5:21: error: layer 'b1.conv1': conv argument 'out': ")
    assert message in text and "\n" not in text


def test_outside_a_block_it_is_refused_where_written():
    text = _error("input: [3, 8, 8]\nlayers:\n  - conv: {out: \"shape(input, 0)\", kernel: 1}\n")
    assert text.startswith("e.yaml:3:17: error: layer 'conv1': conv argument 'out': shape(input, ...) reads the "
                           "shape of a block's input, so it is written in a block's layers or arguments; here "
                           "(outside a block) write the size itself")
    text = _error("input: [3, 8, 8]\nvars: {c: \"shape(input, 0)\"}\nlayers:\n  - conv: {out: c, kernel: 1}\n")
    assert text.startswith("e.yaml:2:11: error: variable 'c': shape(input, ...) reads the shape of a block's input")


def test_a_layer_whose_shape_fails_is_blamed_not_the_reader():
    # The 9x9 kernel does not fit 8 x 8: the error is the convolution's own, at its line.
    text = _error("input: [3, 8, 8]\nblocks:\n  b:\n    layers:\n      - conv: {out: 4, kernel: 9}\n"
                  "      - conv: {out: \"shape(conv1, 0)\", kernel: 1}\nlayers:\n  - b\n")
    assert text.startswith("e.yaml:5:32: error: layer 'b1.conv1' (conv): kernel 9 is larger than the padded input")


def test_shape_is_a_function_name_not_a_variable():
    assert names_in("shape(input, 0) // 2 + c") == {"c"}
    with pytest.raises(ExprError, match="outside a block"):
        evaluate("shape(input, 0)", {})
    assert evaluate("shape(x, 1) * 2", {"shape()": lambda name: {"x": (3, 5)}[name]}) == 10
    text = _error("input: [3, 8, 8]\nvars: {shape: 2}\nlayers:\n  - conv: {out: 4, kernel: 1}\n")
    assert "'shape' is reserved" in text


def test_densenet_and_efficientnet_read_their_widths():
    from pathlib import Path

    specs = Path(__file__).resolve().parents[2] / "specs" / "zoo"
    dense = archcalc.load_spec(specs / "densenet121.yaml")
    # 64 + 6 x 32 = 256 -> 128; 128 + 12 x 32 = 512 -> 256; 256 + 24 x 32 = 1024 -> 512
    assert [n.args["out"] for n in dense.nodes if n.kind == "conv" and "transition" in n.name] == [128, 256, 512]
    eff = archcalc.load_spec(specs / "efficientnet_b0.yaml")
    # squeeze-and-excitation: its squeeze (fc1) is max(1, MBConv input // 4), its gate (fc2) as
    # wide as its own input (the expanded channels): 16 blocks, inputs 32, 16, 24, 24, 40, ...
    inputs = [32, 16, 24, 24, 40, 40, 80, 80, 80, 112, 112, 112, 192, 192, 192, 192]
    expand = [1] + [6] * 15
    squeeze = [n.args["out"] for n in eff.nodes if n.kind == "conv" and n.name.endswith("fc1")]
    gate = [n.args["out"] for n in eff.nodes if n.kind == "conv" and n.name.endswith("fc2")]
    assert squeeze == [max(1, c // 4) for c in inputs]
    assert gate == [t * c for t, c in zip(expand, inputs)]


def test_a_shape_that_failed_once_fails_again_for_the_next_reader(tmp_path):
    # The size estimate reads b's shape(input, 0) first and swallows a's failing add; the build then
    # asks again and must get the same located error (it was a KeyError: 'a.add1').
    path = tmp_path / "ks.yaml"
    path.write_text("name: ks\ninput: [4, 8, 8]\nblocks:\n  body:\n    args: {c: 4}\n    layers:\n"
                    "      - {name: c, conv: {out: c, kernel: 3, stride: 2, padding: 1}}\n"
                    "  res:\n    layers:\n      - {name: block, body: {c: \"shape(input, 0)\"}}\n"
                    "      - {add: {}, from: [block, input]}\n"
                    "layers:\n  - {name: a, res: {}}\n  - {name: b, res: {}}\n")
    with pytest.raises(archcalc.SpecError) as info:
        archcalc.analyze(path)
    assert (info.value.loc.line, info.value.layer) == (11, "a.add1")
    assert "add cannot broadcast shapes [4, 4, 4], [4, 8, 8]" in info.value.message
