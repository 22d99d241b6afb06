"""The spec language: entries, names, blocks, repeats, references and argument values."""
import textwrap

import pytest

from archcalc import SpecError, parse_spec

TINY_RESNET = """
name: tiny-resnet
input: [3, 32, 32]
vars: {w: 16}
blocks:
  basic:
    args: {c: 16, stride: 1}
    layers:
      - conv: {out: c, kernel: 3, stride: stride, padding: 1, bias: false}
      - batchnorm
      - relu
      - conv: {out: c, kernel: 3, padding: 1, bias: false}
      - {name: main, batchnorm: {}}
      - {name: short, from: input, conv: {out: c, kernel: 1, stride: stride, bias: false}}
      - {add: {}, from: [main, short]}
      - relu
layers:
  - conv: {out: w, kernel: 3, padding: 1}
  - relu
  - basic: {c: 32, stride: 2}
  - {basic: {c: 32}, repeat: 2}
  - global_avgpool
  - flatten
  - linear: 10
"""


def parse(text, **kw):
    return parse_spec(textwrap.dedent(text), "t.yaml", **kw)


def test_names_follow_the_documented_rule():
    g = parse(TINY_RESNET)
    names = [n.name for n in g.nodes]
    assert names[:3] == ["conv1", "relu1", "basic1.conv1"]
    assert "basic1.main" in names and "basic1.short" in names and "basic1.add1" in names
    assert "basic2.1.conv1" in names and "basic2.2.relu2" in names
    assert names[-3:] == ["global_avgpool1", "flatten1", "linear1"]
    assert len(names) == len(set(names)) == 2 + 8 * 3 + 3


def test_references_resolve_inside_block_instances():
    g = parse(TINY_RESNET)
    by_name = {n.name: n for n in g.nodes}
    assert by_name["basic1.short"].inputs == ("relu1",)  # `input` of the block = its caller's input
    assert by_name["basic1.add1"].inputs == ("basic1.main", "basic1.short")
    assert by_name["basic2.1.conv1"].inputs == ("basic1.relu2",)
    assert by_name["basic2.2.short"].inputs == ("basic2.1.relu2",)  # repeat copies chain
    assert by_name["global_avgpool1"].inputs == ("basic2.2.relu2",)


def test_block_arguments_are_evaluated_in_the_callers_scope():
    g = parse(TINY_RESNET)
    by_name = {n.name: n for n in g.nodes}
    assert by_name["basic1.conv1"].args["out"] == 32 and by_name["basic1.conv1"].args["stride"] == 2
    assert by_name["basic2.1.conv1"].args["stride"] == 1  # default
    assert by_name["conv1"].args["out"] == 16  # from vars


def test_counters_count_named_entries_too():
    g = parse("""
        input: [3, 8, 8]
        layers:
          - relu
          - {name: keep, relu: {}}
          - relu
    """)
    assert [n.name for n in g.nodes] == ["relu1", "keep", "relu3"]


def test_primary_arguments_and_defaults():
    g = parse("""
        input: [3, 8, 8]
        layers:
          - maxpool: 2
          - dropout: 0.25
          - flatten
          - linear: 10
    """)
    pool, drop, _, fc = g.nodes
    assert pool.args["kernel"] == 2 and pool.args["stride"] is None and pool.args["ceil_mode"] is False
    assert drop.args["p"] == 0.25
    assert fc.args == {"out": 10, "bias": True}


def test_expressions_vars_and_input_sizes():
    g = parse("""
        input: ["c", 8, 8]
        vars: {c: 3, w: "2 * c", half: "w // 2"}
        layers:
          - conv: {out: "max(w, half) * 4", kernel: [3, "half"], padding: "half // 2"}
    """)
    assert g.input_shape == (3, 8, 8)
    conv = g.nodes[0]
    assert conv.args["out"] == 24 and conv.args["kernel"] == (3, 3) and conv.args["padding"] == 1


def test_strings_pass_through_block_arguments():
    g = parse("""
        input: [3, 8, 8]
        blocks:
          b:
            args: {pad: valid, bias: true}
            layers:
              - conv: {out: 4, kernel: 3, padding: pad, bias: bias}
        layers:
          - b: {pad: same, bias: false}
          - b
    """)
    first, second = g.nodes
    assert first.args["padding"] == "same" and first.args["bias"] is False
    assert second.args["padding"] == "valid" and second.args["bias"] is True


def test_repeat_of_a_plain_layer_and_dotted_references():
    g = parse("""
        input: [4, 8, 8]
        layers:
          - {name: stage, conv: {out: 4, kernel: 3, padding: 1}, repeat: 3}
          - {add: {}, from: [stage.1, stage]}
    """)
    assert [n.name for n in g.nodes] == ["stage.1", "stage.2", "stage.3", "add1"]
    assert g.nodes[-1].inputs == ("stage.1", "stage.3")


def test_nested_blocks_get_nested_names():
    g = parse("""
        input: [4, 8, 8]
        blocks:
          inner: {layers: [relu, {conv: {out: 4, kernel: 1}}]}
          outer: {layers: [inner, {name: tail, inner: {}}]}
        layers: [outer, {outer: {}, from: outer1.tail.conv1}]
    """)
    names = [n.name for n in g.nodes]
    assert names == ["outer1.inner1.relu1", "outer1.inner1.conv1", "outer1.tail.relu1", "outer1.tail.conv1",
                     "outer2.inner1.relu1", "outer2.inner1.conv1", "outer2.tail.relu1", "outer2.tail.conv1"]
    assert g.nodes[4].inputs == ("outer1.tail.conv1",)
    assert g.nodes[4].block == "inner"


def test_name_defaults_to_the_file_stem_and_input_can_be_overridden():
    g = parse_spec("input: [3, 8, 8]\nlayers: [relu]\n", "specs/my_net.yaml", input_shape=(1, 4, 4))
    assert g.name == "my_net" and g.input_shape == (1, 4, 4)


def test_locations_point_at_the_entry_and_its_arguments():
    g = parse("""
        input: [3, 8, 8]
        layers:
          - relu
          - conv: {out: 4, kernel: 3}
    """)
    conv = g.nodes[1]
    assert conv.loc.line == 5 and conv.loc.col == 5
    assert conv.arg_locs["kernel"].line == 5 and conv.arg_locs["kernel"].col == 28  # the value `3`


@pytest.mark.parametrize("entry", ["{conv: {out: 4, kernel: 3}, relu: {}}", "{name: x}", "3", "[relu]"])
def test_malformed_entries(entry):
    with pytest.raises(SpecError, match="layer entry|kind"):
        parse(f"input: [3, 8, 8]\nlayers:\n  - {entry}\n")
