"""Names that give PyTorch's own state_dict keys (docs/spec.md "PyTorch's own names"): a layer
named by a number (an nn.Sequential index), `start:` numbering a repeat's copies, a repeat named by
a number continuing its list; the errors for clashes and bad values; and what reads names
(`from:`, `--depth`, explain, homework answers, build, export) working with them."""
import pytest

import archcalc
from archcalc.errors import SpecError
from archcalc.reader.parse import parse_spec

# A ResNet stage as torchvision writes it: layer1 = Sequential(block 0 (with a downsample
# Sequential), block 1, block 2); and a ModuleList numbered from 0 (Hugging Face's layers.0).
SPEC = """
input: [4, 8, 8]
blocks:
  downsample:
    args: {c: 4, s: 1}
    layers:
      - {name: 0, conv: {out: c, kernel: 1, stride: s, bias: false}}
      - {name: 1, batchnorm: {}}
  basic:
    args: {c: 4}
    layers:
      - {name: conv1, conv: {out: c, kernel: 3, padding: 1, bias: false}}
      - {name: bn1, batchnorm: {}}
      - {add: {}, from: [bn1, input]}
  down:
    args: {c: 4, s: 2}
    layers:
      - {name: conv1, conv: {out: c, kernel: 3, padding: 1, stride: s, bias: false}}
      - {name: bn1, batchnorm: {}}
      - {name: downsample, downsample: {c: c, s: s}, from: input}
      - {add: {}, from: [bn1, downsample]}
  stage:
    args: {c: 4, n: 3, s: 2}
    layers:
      - {name: 0, down: {c: c, s: s}}
      - {name: 1, basic: {c: c}, repeat: n - 1}
layers:
  - {name: layer1, stage: {c: 8, n: 3}}
  - {name: layers, basic: {c: 8}, repeat: 2, start: 0}
  - {name: side, relu: {}, from: layer1.1}
  - {add: {}, from: [layers.0, layers]}
  - relu
"""

NAMES = ["layer1.0.conv1", "layer1.0.bn1", "layer1.0.downsample.0", "layer1.0.downsample.1", "layer1.0.add1",
         "layer1.1.conv1", "layer1.1.bn1", "layer1.1.add1", "layer1.2.conv1", "layer1.2.bn1", "layer1.2.add1",
         "layers.0.conv1", "layers.0.bn1", "layers.0.add1", "layers.1.conv1", "layers.1.bn1", "layers.1.add1",
         "side", "add1", "relu2"]  # the named relu `side` counts: relu2


def graph(text=SPEC):
    return parse_spec(text, "t.yaml")


def test_numbers_as_names_start_and_a_numbered_repeat_give_pytorchs_names():
    g = graph()
    assert [n.name for n in g.nodes] == NAMES
    by = {n.name: n for n in g.nodes}
    # copies chain: the numbered run continues after entry 0, and 1 reads 0's output
    assert by["layer1.1.conv1"].inputs == ("layer1.0.add1",)
    assert by["layer1.2.add1"].inputs == ("layer1.2.bn1", "layer1.1.add1")
    assert by["layer1.0.downsample.0"].inputs == ("input",)  # from: input inside the block
    assert by["layer1.0.add1"].inputs == ("layer1.0.bn1", "layer1.0.downsample.1")  # a block's output: its last entry
    assert by["layers.0.conv1"].inputs == ("layer1.2.add1",)  # layer1 is its last entry, 2
    assert by["side"].inputs == ("layer1.1.add1",)  # `from: layer1.1`: a numbered entry
    assert by["add1"].inputs == ("layers.0.add1", "layers.1.add1")  # `layers` is its last copy, 1


def test_existing_names_are_unchanged_without_the_new_rules():
    g = graph("input: [4]\nlayers:\n  - {name: s, relu: {}, repeat: 2}\n  - relu\n  - {relu: {}, repeat: 2}\n")
    assert [n.name for n in g.nodes] == ["s.1", "s.2", "relu2", "relu3.1", "relu3.2"]


def test_start_numbers_from_any_integer_and_a_named_entry_counts_for_its_kind():
    g = graph("input: [4]\nvars: {k: 3}\nlayers:\n  - {name: 0, relu: {}}\n  - {name: r, relu: {}, repeat: 2, start: k}\n"
              "  - relu\n  - {name: 5, relu: {}, from: 0}\n")
    assert [n.name for n in g.nodes] == ["0", "r.3", "r.4", "relu3", "5"]
    assert g.nodes[-1].inputs == ("0",)  # `from: 0`, a YAML integer, names the entry 0
    g = graph('input: [4]\nlayers:\n  - {name: "7", relu: {}}\n  - {relu: {}, from: "7"}\n')
    assert [n.name for n in g.nodes] == ["7", "relu2"]


def test_the_built_module_has_the_names_as_state_dict_keys():
    torch = pytest.importorskip("torch")
    from archcalc.torch import build

    model = build(graph())
    keys = [k for k in model.state_dict() if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))]
    assert keys == ["layer1.0.conv1.weight", "layer1.0.bn1.weight", "layer1.0.bn1.bias", "layer1.0.downsample.0.weight",
                    "layer1.0.downsample.1.weight", "layer1.0.downsample.1.bias",
                    "layer1.1.conv1.weight", "layer1.1.bn1.weight", "layer1.1.bn1.bias",
                    "layer1.2.conv1.weight", "layer1.2.bn1.weight", "layer1.2.bn1.bias",
                    "layers.0.conv1.weight", "layers.0.bn1.weight", "layers.0.bn1.bias",
                    "layers.1.conv1.weight", "layers.1.bn1.weight", "layers.1.bn1.bias"]
    # a name whose parts repeat ('0' twice) attaches each module at its own place
    assert isinstance(model.get_submodule("layer1.0.downsample.0"), torch.nn.Conv2d)
    assert isinstance(model.layer1[0].downsample[1] if hasattr(model.layer1, "__getitem__")
                      else model.get_submodule("layer1.0.downsample.1"), torch.nn.BatchNorm2d)


def test_depth_explain_answers_and_export_read_the_names(tmp_path):
    spec = tmp_path / "net.yaml"
    spec.write_text(SPEC)
    report = archcalc.analyze(spec)
    folded = [r.name for r in report.folded(2)]
    assert folded[:5] == ["layer1.0", "layer1.1", "layer1.2", "layers.0", "layers.1"]
    # block 0: conv1 4 -> 8 (3x3), bn1, the downsample's 1x1 conv and its batch norm (4C each)
    assert report.folded(2)[0].params == 9 * 4 * 8 + 4 * 8 + 4 * 8 + 4 * 8
    assert report.layer("layer1.0.downsample.0").params == 4 * 8  # 1x1, 4 -> 8, no bias
    from archcalc.explain import explain

    names = [e.name for e in explain(archcalc.load_spec(spec), ["layer1.0.downsample"])]
    assert names == ["layer1.0.downsample.0", "layer1.0.downsample.1"]
    from archcalc.homework.answers import parse_answers

    answers = parse_answers("answers:\n  layer1.0.downsample.0.params: 32\n  layers.1.conv1.macs: 9216\n", "a.yaml")
    assert [(a.layer, a.figure) for a in answers.answers] == [("layer1.0.downsample.0", "params"),
                                                               ("layers.1.conv1", "macs")]
    from archcalc.homework.check import check

    result = check(report, answers)
    assert (result.right, result.wrong) == (2, 0)
    assert report.layer("layers.1.conv1").macs == 4 * 4 * 9 * 8 * 8
    torch = pytest.importorskip("torch")  # noqa: F841
    from archcalc.torch.source import pytorch_source

    source = pytorch_source(archcalc.load_spec(spec))
    assert "self.layer1_0_downsample_0 = " in source and "self.layers_1_conv1 = " in source


@pytest.mark.parametrize("entries, where, message", [
    ("- {name: -1, relu: {}}", "3:12", "layer name -1: a layer named by a number takes one from 0 to 1,000,000,000"),
    ('- {name: "01", relu: {}}', "3:12", "or a number >= 0 written without leading zeros"),
    ("- {name: 1.5, relu: {}}", "3:12", "layer name 1.5 must be a word of letters, digits and '_', or a number >= 0"),
    ("- {name: 10000000000, relu: {}}", "3:12", "takes one from 0 to 1,000,000,000"),
    ("- {relu: {}, start: 0}", "3:23", "'start' numbers the copies of a repeat, and this entry has no 'repeat'"),
    ("- {name: 2, relu: {}, repeat: 2, start: 0}", "3:43", "a repeat named by a number numbers its copies from "
                                                          "that number (2); drop 'start'"),
    ("- {name: r, relu: {}, repeat: 2, start: -1}", "3:43", "'start' must be an integer >= 0 (the first copy's number), "
                                                           "got -1"),
    ("- {name: r, relu: {}, repeat: 2, start: 0.5}", "3:43", "'start' must be an integer >= 0"),
    ("- {name: r, relu: {}, repeat: 2, start: x}", "3:43", "start: "),
    ("- {name: 0, relu: {}}\n  - {name: 1, relu: {}, repeat: 3}\n  - {name: 3, relu: {}}", "5:12",
     "duplicate layer name '3' (first at line 4)"),
    ("- {name: 2, relu: {}}\n  - {name: 1, relu: {}, repeat: 3}", "4:33",
     "copy 2 of this repeat would be named '2', which is already taken (first at line 3); a repeat named 1 numbers "
     "its 3 copies 1 .. 3"),
    ("- {name: 0, relu: {}}\n  - {name: 0, relu: {}}", "4:12", "duplicate layer name '0' (first at line 3)"),
    ("- {name: 999999999, relu: {}, repeat: 3}", "3:41", "numbered up to 1,000,000,001"),
    ("- {name: 0, relu: {}, from: 1}\n  - {name: 1, relu: {}}", "3:31", "'from: 1' refers forward"),
    ("- {name: 0, relu: {}}\n  - {relu: {}, from: \"0.1\"}", "4:22", "'0' has no part '1'"),
    ("- {name: 0, relu: {}}\n  - {relu: {}, from: 0.1}", "4:22", "YAML reads 0.1 as a number; quote a dotted name "
                                                              "that starts with a number (from: \"0.1\")"),
    ("- {name: 0, relu: {}}\n  - {relu: {}, from: -1}", "4:22", "'from' must name layers"),
])
def test_bad_numbers_and_clashes_are_errors_at_the_place(entries, where, message):
    with pytest.raises(SpecError) as info:
        graph(f"input: [4]\nlayers:\n  {entries}\n")
    err = info.value
    assert f"{err.loc.line}:{err.loc.col}" == where, str(err)
    assert message in err.message, err.message


def test_a_numbered_block_instance_and_its_parts_are_reachable():
    g = graph("input: [4]\nblocks:\n  b: {layers: [{name: 0, linear: 4}, {name: 1, relu: {}}]}\nlayers:\n"
              "  - {name: 0, b: {}}\n  - {name: 1, b: {}, repeat: 2}\n  - {add: {}, from: [\"0.0\", 2]}\n")
    assert [n.name for n in g.nodes] == ["0.0", "0.1", "1.0", "1.1", "2.0", "2.1", "add1"]
    assert g.nodes[-1].inputs == ("0.0", "2.1")


def test_a_layer_name_may_join_words_by_hyphens_as_regnets_blocks():
    # torchvision's RegNet: trunk_output.block1.block1-0.proj.0.weight
    g = graph("input: [4]\nblocks:\n  blk:\n    layers:\n      - {name: proj-0, linear: 4}\n"
              "layers:\n  - {name: block1-0, blk: {}}\n  - {name: block1-1, blk: {}}\n"
              "  - {add: {}, from: [block1-0, block1-1.proj-0]}\n")
    assert [n.name for n in g.nodes] == ["block1-0.proj-0", "block1-1.proj-0", "add1"]
    assert g.nodes[2].inputs == ("block1-0.proj-0", "block1-1.proj-0")


@pytest.mark.parametrize("name", ["-a", "a-", "a--b", "1-a", "a-.b", "a b"])
def test_a_hyphen_only_joins_words(name):
    with pytest.raises(SpecError) as info:
        graph(f"input: [4]\nlayers:\n  - {{name: '{name}', relu: {{}}}}\n")
    assert "joined by '-'" in info.value.message or "must be a word" in info.value.message


def test_block_and_var_names_take_no_hyphen():
    # read in expressions, where '-' subtracts
    with pytest.raises(SpecError, match="must be a word of letters, digits and '_'"):
        graph("input: [4]\nvars: {a-b: 3}\nlayers:\n  - {linear: 4}\n")
    with pytest.raises(SpecError, match="must be a word of letters, digits and '_'"):
        graph("input: [4]\nblocks:\n  my-block:\n    layers: [{relu: {}}]\nlayers:\n  - {relu: {}}\n")
