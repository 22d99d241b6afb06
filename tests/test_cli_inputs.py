"""The command line with several inputs (`inputs:`): every command works or says why in one line;
`--input NAME=SHAPE;...` overrides inputs by name."""
import json

import pytest
from typer.testing import CliRunner

from archcalc.cli import app

runner = CliRunner()

SPEC = """\
name: encdec
inputs:
  src: [4, 10]          # [C, L]: the first input, whose fields are measured
  tgt: {tokens: [6]}
layers:
  - conv: {out: 8, kernel: 3, stride: 2, padding: 1}     # [8, 5]
  - {name: enc, permute: [1, 0]}                         # [5, 8]
  - {name: emb, from: tgt, embedding: {num: 50, dim: 8}}
  - {name: dec, attention: {heads: 2, causal: true}}
  - {name: cross, cross_attention: {heads: 2, k_bias: false}, from: [dec, enc]}
  - {name: head, linear: {out: 50, bias: false}}
"""
# conv: (3*4 + 1)*8 = 104 params, 5*3*4*8 = 480 MACs; embedding 400; attention 4*64 + 4*8 = 288,
# 6*8*8*3 + 2*2*6*6*4 + 6*8*8 = 2,112 MACs; cross 4*64 + 3*8 = 280 params,
# 6*64 + 2*5*64 + 2*2*6*5*4 + 6*64 = 1,888 MACs; head 400 params, 2,400 MACs
PARAMS = 104 + 400 + 288 + 280 + 400
MACS = 480 + 2112 + 1888 + 2400


@pytest.fixture
def spec(tmp_path):
    path = tmp_path / "encdec.yaml"
    path.write_text(SPEC)
    return path


def test_analyze_table_and_json_list_the_inputs(spec):
    result = runner.invoke(app, ["analyze", str(spec)])
    assert result.exit_code == 0, result.output
    assert "encdec  inputs src [4, 10], tgt tokens [6]" in result.stdout
    data = json.loads(runner.invoke(app, ["analyze", str(spec), "--json"]).stdout)
    assert data["input"] == [4, 10] and data["inputs"] == {"src": [4, 10], "tgt": {"tokens": [6]}}
    assert data["totals"]["params"] == PARAMS and data["totals"]["macs"] == MACS
    assert data["totals"]["input_bytes"] == (40 + 6) * 4
    rows = {row["name"]: row for row in data["layers"]}
    assert rows["conv1"]["from"] == ["src"] and rows["emb"]["from"] == ["tgt"]
    assert rows["cross"]["from"] == ["dec", "enc"]
    assert rows["enc"]["rf"]["size"] == [3] and rows["cross"]["rf"] is None
    markdown = runner.invoke(app, ["analyze", str(spec), "-f", "markdown"]).stdout
    assert markdown.startswith("### encdec (inputs src [4, 10], tgt tokens [6], batch 1)")


def test_input_override_by_name(spec):
    data = json.loads(runner.invoke(app, ["analyze", str(spec), "--json", "--input", "tgt=9"]).stdout)
    assert data["inputs"]["tgt"] == {"tokens": [9]} and data["totals"]["output_shape"] == [9, 50]
    data = json.loads(runner.invoke(app, ["analyze", str(spec), "--json", "--input", "src=4,20; tgt=3"]).stdout)
    assert data["inputs"] == {"src": [4, 20], "tgt": {"tokens": [3]}}
    assert {r["name"]: r for r in data["layers"]}["enc"]["output_shape"] == [10, 8]
    data = json.loads(runner.invoke(app, ["analyze", str(spec), "--json", "--input", "4,30"]).stdout)
    assert data["input"] == [4, 30]  # a shape alone: the first input
    data = json.loads(runner.invoke(app, ["analyze", str(spec), "--json", "--input", "input=4,30"]).stdout)
    assert data["input"] == [4, 30]  # `input` names the first input


@pytest.mark.parametrize("value, message", [
    ("tgx=9", "error: --input tgx=...: the spec has no input named 'tgx' (did you mean 'tgt'?); its inputs: src, tgt"),
    ("tgt=9;tgt=3", "error: --input 'tgt=9;tgt=3': the input 'tgt' is given twice"),
    ("t-g=9", "expected a shape like 3,224,224, or NAME=SHAPE items separated by ';'"),
    ("tgt=0", "expected positive sizes like 3,224,224"),
    ("src=4,,30", "error: --input 'src=4,,30': a size is missing between commas"),
    ("4,30,", "error: --input '4,30,': a size is missing between commas"),
    ("input=4,20;src=4,30", "error: --input gives the first input 'src' twice ('input' names it too)"),
])
def test_input_override_mistakes_are_one_line(spec, value, message):
    result = runner.invoke(app, ["analyze", str(spec), "--input", value])
    assert result.exit_code == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_explain_and_memory(spec):
    result = runner.invoke(app, ["explain", str(spec), "cross"])
    assert result.exit_code == 0, result.output
    assert "params = D*H*d + 2*Dm*Hkv*d + H*d*D + H*d + Hkv*d + D = 8*2*4 + 2*8*2*4 + 2*4*8 + 2*4 + 2*4 + 8 = 280" \
        in result.stdout
    data = json.loads(runner.invoke(app, ["memory", str(spec), "--json"]).stdout)
    assert data["inputs"] == {"src": [4, 10], "tgt": {"tokens": [6]}}
    assert data["inference"]["kv_cache_bytes"] == 2 * 6 * 2 * 4 * 4  # causal self-attention: 2*T*Hkv*d
    assert data["inference"]["cross_kv_cache_bytes"] == 2 * 5 * 2 * 4 * 4  # 2*Tk*Hkv*d of the memory
    assert data["cost"]["forward_per_token_flops"] == 2 * MACS / 6  # per token of the first token input
    table = runner.invoke(app, ["memory", str(spec)]).stdout
    assert "inputs src [4, 10], tgt tokens [6]" in table and "cross-attention KV cache" in table


def test_graph_drawings_have_a_node_per_input(spec):
    dot = runner.invoke(app, ["export", str(spec), "--to", "dot"]).stdout
    assert '"src" [label="src\\n[4, 10]", shape=ellipse];' in dot
    assert '"tgt" [label="tgt\\ntokens [6]", shape=ellipse];' in dot
    assert '"tgt" -> "emb";' in dot and '"enc" -> "cross";' in dot
    mermaid = runner.invoke(app, ["export", str(spec), "--to", "mermaid"]).stdout
    assert 'src(["src<br/>[4, 10]"])' in mermaid and "tgt --> emb" in mermaid


def test_kinds_describes_cross_attention_inputs():
    result = runner.invoke(app, ["kinds", "cross_attention"])
    assert "inputs: two (from: [queries, memory])" in result.stdout


def test_a_block_with_several_inputs_given_one_is_one_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("inputs: {a: [4, 8], b: [3, 8]}\nblocks:\n  dec:\n    inputs: [x, memory]\n"
                    "    layers: [{cross_attention: 2, from: [x, memory]}]\nlayers:\n  - {dec: {}, from: a}\n")
    result = runner.invoke(app, ["analyze", str(path)])
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert ("bad.yaml:7:5: error: layer 'dec1': block 'dec' takes 2 inputs (x, memory), but it is given one; "
            "name them in order with 'from: [a1, a2]'") in result.stderr


# --- the torch commands -------------------------------------------------------------------------

def test_verify_export_and_train(spec, tmp_path):
    pytest.importorskip("torch")
    result = runner.invoke(app, ["verify", str(spec)])
    assert result.exit_code == 0, result.output
    assert "all figures match PyTorch" in result.stdout
    data = json.loads(runner.invoke(app, ["verify", str(spec), "--json", "--input", "tgt=4"]).stdout)
    assert data["ok"] and data["totals"]["output_shape"]["measured"] == [4, 50]
    assert {r["name"]: r for r in data["layers"]}["enc"]["figures"]["rf"]["ok"] is True  # the conv's field
    source = runner.invoke(app, ["export", str(spec), "--to", "pytorch"]).stdout
    assert "    def forward(self, src, tgt):" in source
    assert "Inputs src [4, 10], tgt [6] (token ids) (one example each, batch excluded), output [6, 50]." in source
    namespace = {"__name__": "generated"}
    exec(compile(source, "<generated>", "exec"), namespace)  # runs its own example: model(*xs)
    result = runner.invoke(app, ["train", str(spec), "--out", str(tmp_path / "run"), "--epochs", "1"])
    assert result.exit_code == 2
    assert "encdec takes 2 inputs (src, tgt), but archcalc train feeds a network one input" in result.stderr
