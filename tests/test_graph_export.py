"""Graph drawings (archcalc.graph_export): Graphviz dot and Mermaid, without PyTorch."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

import archcalc
from archcalc.graph_export import to_dot, to_mermaid

ROOT = Path(__file__).resolve().parent.parent


def archcalc_spec(rel):
    return ROOT / "specs" / rel

# A small DAG: a block instance with a 1x1 shortcut and an add, a second block instance, a
# concat of two earlier outputs, and a layer whose name needs sanitising in Mermaid (`end`).
SPEC = """\
name: small-dag
input: [3, 16, 16]
blocks:
  res:
    args: {c: 8}
    layers:
      - conv: {out: c, kernel: 3, padding: 1}
      - {name: main, relu: {}}
      - {name: short, from: input, conv: {out: c, kernel: 1}}
      - {add: {}, from: [main, short]}
layers:
  - {name: stem, conv: {out: 8, kernel: 3, padding: 1}}
  - res: {c: 8}
  - {name: side, from: stem, maxpool: {kernel: 3, stride: 1, padding: 1}}
  - {name: end, concat: 0, from: [res1, side]}
  - global_avgpool
  - flatten
  - linear: 10
"""

NAMES = ["stem", "res1.conv1", "res1.main", "res1.short", "res1.add1", "side", "end", "global_avgpool1",
         "flatten1", "linear1"]
EDGES = [("input", "stem"), ("stem", "res1.conv1"), ("res1.conv1", "res1.main"), ("stem", "res1.short"),
         ("res1.main", "res1.add1"), ("res1.short", "res1.add1"), ("stem", "side"), ("res1.add1", "end"),
         ("side", "end"), ("end", "global_avgpool1"), ("global_avgpool1", "flatten1"), ("flatten1", "linear1")]
SHAPES = {"stem": "[8, 16, 16]", "res1.add1": "[8, 16, 16]", "end": "[16, 16, 16]",
          "global_avgpool1": "[16, 1, 1]", "flatten1": "[16]", "linear1": "[10]"}


@pytest.fixture(scope="module")
def graph():
    g = archcalc.parse_spec(SPEC)
    assert [n.name for n in g.nodes] == NAMES
    return g


def test_dot_has_every_layer_with_kind_and_shape(graph):
    text = to_dot(graph)
    assert text.startswith('digraph "small-dag" {') and text.rstrip().endswith("}")
    assert '"input" [label="input\\n[3, 16, 16]", shape=ellipse];' in text
    for node in graph.nodes:
        m = re.search(rf'^\s*"{re.escape(node.name)}" \[label="([^"]*)"\];$', text, re.M)
        assert m, node.name
        name, kind, shape = m.group(1).split("\\n")
        assert (name, kind) == (node.name, node.kind)
        if node.name in SHAPES:
            assert shape == SHAPES[node.name]


def test_dot_has_exactly_the_graph_edges(graph):
    edges = re.findall(r'^\s*"([^"]+)" -> "([^"]+)";$', to_dot(graph), re.M)
    assert sorted(edges) == sorted(EDGES)


def test_dot_draws_block_instances_as_clusters(graph):
    text = to_dot(graph)
    assert 'subgraph "cluster_res1" {' in text and 'label="res1 (res)"' in text
    cluster = text[text.index('subgraph "cluster_res1"'):]
    cluster = cluster[:cluster.index("\n  }")]
    assert all(f'"res1.{n}" [' in cluster for n in ("conv1", "main", "short", "add1"))
    assert '"stem" [' not in cluster and '"side" [' not in cluster
    assert text.count("{") == text.count("}")


def test_dot_quotes_names():
    g = archcalc.parse_spec('name: a "quoted" net\ninput: [4]\nlayers: [linear: 2]\n')
    assert to_dot(g).startswith('digraph "a \\"quoted\\" net" {')


def _mermaid_nodes(text):
    """Mermaid id -> label lines, for boxes `id["..."]` and the input's stadium `id(["..."])`."""
    found = re.findall(r'^\s*(\w+)\(?\["([^"]*)"\]\)?$', text, re.M)
    return {ident: label.split("<br/>") for ident, label in found}


def test_mermaid_is_a_markdown_block_with_every_layer(graph):
    text = to_mermaid(graph)
    lines = text.splitlines()
    assert lines[0] == "```mermaid" and lines[1] == "flowchart TD" and lines[-1] == "```"
    nodes = _mermaid_nodes(text)
    by_name = {label[0]: ident for ident, label in nodes.items()}
    assert nodes[by_name["input"]] == ["input", "[3, 16, 16]"]
    for node in graph.nodes:
        ident = by_name[node.name]
        assert re.fullmatch(r"[A-Za-z]\w*", ident) and ident.lower() != "end"
        assert nodes[ident][1] == node.kind
        if node.name in SHAPES:
            assert nodes[ident][2] == SHAPES[node.name]
    assert len(set(by_name.values())) == len(by_name)  # unique ids
    edges = re.findall(r"^\s*(\w+) --> (\w+)$", text, re.M)
    name_of = {ident: name for name, ident in by_name.items()}
    assert sorted((name_of[a], name_of[b]) for a, b in edges) == sorted(EDGES)


def test_mermaid_subgraphs_balance(graph):
    text = to_mermaid(graph)
    opened = re.findall(r'^\s*subgraph (\w+) \["([^"]*)"\]$', text, re.M)
    assert [label for _, label in opened] == ["res1 (res)"]
    ends = [line for line in text.splitlines() if line.strip() == "end"]
    assert len(ends) == len(opened)


def test_mermaid_ids_do_not_collide():
    # `a.b_c`, `a_b.c` and `a_b_c` all sanitise to `a_b_c`.
    g = archcalc.parse_spec("""\
input: [4]
blocks:
  blk:
    layers: [{name: b_c, relu: {}}, {name: c, relu: {}}]
layers:
  - {name: a, blk: {}}
  - {name: a_b, blk: {}}
  - {name: a_b_c, relu: {}}
""")
    nodes = _mermaid_nodes(to_mermaid(g))
    names = sorted(label[0] for label in nodes.values())
    assert names == sorted(["input", "a.b_c", "a.c", "a_b.b_c", "a_b.c", "a_b_c"])
    assert len(nodes) == 6


def test_nested_blocks_nest():
    g = archcalc.load_spec(archcalc_spec("zoo/resnet18.yaml"))
    dot, mermaid = to_dot(g), to_mermaid(g)
    assert 'subgraph "cluster_layer2" {' in dot and 'subgraph "cluster_layer2.0" {' in dot
    assert dot.index('"cluster_layer2"') < dot.index('"cluster_layer2.0"') < dot.index('"cluster_layer2.1"')
    assert '["layer2.0 (basic_down)"]' in mermaid
    depth = 0
    for line in mermaid.splitlines():
        if line.strip().startswith("subgraph "):
            depth += 1
        elif line.strip() == "end":
            depth -= 1
        assert depth >= 0
    assert depth == 0
    assert dot.count(" -> ") == mermaid.count(" --> ") == sum(len(n.inputs) for n in g.nodes)


def test_graph_export_does_not_import_torch():
    code = ("import sys, archcalc, archcalc.graph_export as ge\n"
            f"g = archcalc.load_spec({str(archcalc_spec('lecture/conv3x3_stack.yaml'))!r})\n"
            "ge.to_dot(g); ge.to_mermaid(g)\n"
            "assert 'torch' not in sys.modules\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_export_doc_shows_the_real_drawings():
    # Regenerate with: archcalc export specs/lecture/conv3x3_stack.yaml --to dot (and --to mermaid)
    text = (ROOT / "docs" / "export.md").read_text()
    graph = archcalc.load_spec(archcalc_spec("lecture/conv3x3_stack.yaml"))
    assert "```dot\n" + to_dot(graph) + "```" in text
    assert "\n" + to_mermaid(graph) in text
