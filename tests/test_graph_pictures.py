"""Pictures that fit a screen (issue 14 point 7): `export --depth N` folds blocks as `analyze --depth N`
does, `--to svg|png` through Graphviz's `dot`, and Mermaid's text limit.

Graphviz is not installed on the machines that run these tests (nor can the test suite install
it), so `dot` is checked two ways: for real where it is absent (a PATH without it), and present as
a small executable stand-in named `dot` on PATH, which checks the arguments and stdin archcalc
gives it and writes what a renderer would. A real Graphviz, where one is on PATH, is tried on top
(skipped where absent; it passed with Debian's Graphviz 2.43 unpacked by hand on a PATH).
"""
import os
import re
import shutil
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import archcalc
from archcalc import graph_export as ge
from test_graph_export import SPEC

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"

# SPEC: the small DAG of tests/test_graph_export.py: a block instance `res1` with a 1x1 shortcut (both
# of its branches read `stem`), a pooled side branch, a concat of the two.
# By hand: res1.conv1 3*3*8*8 + 8 = 584 params, 16*16*576 = 147,456 MACs; res1.short 8*8 + 8 = 72
# params, 16*16*64 = 16,384 MACs; relu and add nothing. res1: 656 params, 163,840 MACs.
RES1 = ("res1", "res", "[8, 16, 16]", 656, 163_840)
# At depth 1 the two edges stem -> res1.conv1 and stem -> res1.short are one edge stem -> res1.
EDGES_1 = [("input", "stem"), ("stem", "res1"), ("stem", "side"), ("res1", "end"), ("side", "end"),
           ("end", "global_avgpool1"), ("global_avgpool1", "flatten1"), ("flatten1", "linear1")]


def dot_boxes(text):
    """name -> (label lines, folded) for every box of a dot drawing (inputs included)."""
    found = re.findall(r'^\s*"([^"]+)" \[label="([^"]*)"(, peripheries=2|, shape=ellipse)?\];$', text, re.M)
    return {name: (label.split("\\n"), extra == ", peripheries=2") for name, label, extra in found}


def dot_edges(text):
    return re.findall(r'^\s*"([^"]+)" -> "([^"]+)";$', text, re.M)


def figure(text: str):
    return int(text.replace(",", ""))


# --- folding -----------------------------------------------------------------------------------

def test_depth_1_folds_the_block_into_one_box_with_its_totals():
    g = archcalc.parse_spec(SPEC)
    text = ge.to_dot(g, 1)
    boxes = dot_boxes(text)
    assert sorted(boxes) == sorted(["input", "stem", "res1", "side", "end", "global_avgpool1", "flatten1",
                                    "linear1"])
    label, folded = boxes["res1"]
    assert folded and not boxes["stem"][1]
    name, kind, shape, params, macs = label
    assert (name, kind, shape, figure(params.removeprefix("params ")), figure(macs.removeprefix("MACs "))) == RES1
    assert params.startswith("params ") and macs.startswith("MACs ")
    assert sorted(dot_edges(text)) == sorted(EDGES_1)  # once each, none inside res1
    assert "cluster_res1" not in text  # the box stands for the block: no frame around it


def test_depth_0_and_none_are_the_full_picture():
    g = archcalc.parse_spec(SPEC)
    assert ge.to_dot(g, 0) == ge.to_dot(g, None) == ge.to_dot(g)
    assert ge.to_mermaid(g, 0) == ge.to_mermaid(g)
    assert len(dot_edges(ge.to_dot(g))) == sum(len(n.inputs) for n in g.nodes) == 12


def _folded_by_hand(report, depth):
    """The folded rows computed here from the layer rows: consecutive layers sharing their first
    `depth` name parts summed; name, output shape of the last, params, MACs."""
    out = []
    for row in report.layers:
        parts = row.name.split(".")
        key = ".".join(parts[:depth])
        if len(parts) > depth and out and out[-1][0] == key and out[-1][4]:
            _, _, params, macs, _ = out[-1]
            out[-1] = (key, row.output_shape, params + row.params, macs + row.macs, True)
        else:
            out.append((key, row.output_shape, row.params, row.macs, len(parts) > depth))
    return out


@pytest.mark.parametrize("spec,depth", [("zoo/resnet50.yaml", 1), ("zoo/resnet50.yaml", 2),
                                        ("zoo/densenet121.yaml", 1), ("transformers/whisper_tiny.yaml", 2)])
def test_every_folded_box_holds_the_sum_of_its_layers(spec, depth):
    g = archcalc.load_spec(SPECS / spec)
    report = archcalc.analyze(SPECS / spec)
    boxes = dot_boxes(ge.to_dot(g, depth))
    expected = _folded_by_hand(report, depth)
    assert len(boxes) == len(expected) + len(g.inputs)
    for key, shape, params, macs, folded in expected:
        label, is_folded = boxes[key]
        assert is_folded == folded and label[0] == key
        assert label[2] == "[" + ", ".join(map(str, shape)) + "]"
        if folded:
            assert (figure(label[3].removeprefix("params ")), figure(label[4].removeprefix("MACs "))) == (params, macs)
    # The folded boxes hold every layer once: their figures and the unfolded layers' add up to the totals.
    folded_params = sum(p for _, _, p, _, f in expected if f)
    assert folded_params + sum(r.params for r in report.layers if len(r.name.split(".")) <= depth) == \
        sum(r.params for r in report.layers)


def test_resnet50_at_depth_1_fits_a_screen():
    # Measured: the full drawing has 176 boxes (175 layers and the input) and 191 edges (the 16
    # shortcuts, 4 of them through a downsample); at depth 1, 12 boxes in a chain of 11 edges, the
    # rows of `analyze --depth 1` (torchview's depth-1 picture of torchvision's resnet50 has ~20).
    g = archcalc.load_spec(SPECS / "zoo/resnet50.yaml")
    full, folded = ge.to_dot(g), ge.to_dot(g, 1)
    assert (len(dot_boxes(full)), len(dot_edges(full))) == (176, 191)
    names = ["input", "conv1", "bn1", "relu1", "maxpool1", "layer1", "layer2", "layer3", "layer4", "avgpool",
             "flatten1", "fc"]
    assert list(dot_boxes(folded)) == names
    assert dot_edges(folded) == list(zip(names, names[1:]))
    # torchvision's resnet50.layer1: 215,808 parameters and 2,816 BatchNorm running statistics
    # (2 x 1,408 channels of its ten BatchNorms).
    label, _ = dot_boxes(folded)["layer1"]
    assert label[:4] == ["layer1", "stage", "[256, 56, 56]", f"params {215_808 + 2_816:,}"]


def test_depth_2_keeps_the_outer_block_as_a_frame():
    g = archcalc.load_spec(SPECS / "zoo/resnet18.yaml")
    text = ge.to_dot(g, 2)
    assert 'subgraph "cluster_layer2" {' in text and "cluster_layer2.0" not in text
    frame = text[text.index('subgraph "cluster_layer2" {'):]
    frame = frame[:frame.index("\n  }")]
    assert re.findall(r'"(layer2\.\d)" \[', frame) == ["layer2.0", "layer2.1"]
    boxes = dot_boxes(text)
    assert boxes["layer2.0"][0][:2] == ["layer2.0", "basic_down"] and boxes["layer2.0"][1]
    assert ("layer2.0", "layer2.1") in dot_edges(text) and ("layer1.1", "layer2.0") in dot_edges(text)
    assert text.count("{") == text.count("}")


def test_skip_connections_between_blocks_and_several_inputs():
    # Whisper: two inputs; the decoder reads its tokens and the encoder's output (cross-attention).
    g = archcalc.load_spec(SPECS / "transformers/whisper_tiny.yaml")
    text = ge.to_dot(g, 1)
    assert sorted(dot_edges(text)) == sorted([("input_features", "encoder"), ("decoder_input_ids", "decoder"),
                                              ("encoder", "decoder"), ("decoder", "proj_out")])
    boxes = dot_boxes(text)
    # The spec's own description: 37,760,640 parameters, all in the encoder and the decoder (the
    # output layer is tied to the decoder's token table).
    assert figure(boxes["encoder"][0][3].removeprefix("params ")) + \
        figure(boxes["decoder"][0][3].removeprefix("params ")) == 37_760_640
    mermaid = ge.to_mermaid(g, 1)
    assert re.search(r'^  encoder\[\["encoder<br/>encoder<br/>\[1500, 384\]<br/>params [0-9,]+<br/>MACs [0-9,]+"\]\]$',
                     mermaid, re.M)
    assert len(re.findall(r"^\s*\w+ --> \w+$", mermaid, re.M)) == 4


def test_a_block_split_by_another_layer_gets_two_boxes():
    # Rows fold per run of consecutive layers (as analyze --depth does): `a.y` comes back after `b`.
    g = archcalc.parse_spec(textwrap.dedent("""\
        input: [4]
        blocks:
          pair:
            layers: [{name: x, linear: 4}, {name: y, linear: 4}]
        layers:
          - {name: a, pair: {}}
          - {name: b, relu: {}}
          - {name: c, pair: {}}
    """))
    assert [n for n in dot_boxes(ge.to_dot(g, 1))] == ["input", "a", "b", "c"]
    assert dot_edges(ge.to_dot(g, 1)) == [("input", "a"), ("a", "b"), ("b", "c")]


def test_symbolic_figures_show_in_the_users_symbols():
    g = archcalc.parse_spec(textwrap.dedent("""\
        name: sym
        symbols:
          H: {multiple_of: 2}
        input: [3, H, H]
        blocks:
          b:
            layers: [{conv: {out: 8, kernel: 3, padding: 1}}, relu]
        layers:
          - b: {}
          - maxpool: {kernel: 2}
    """))
    label, folded = dot_boxes(ge.to_dot(g, 1))["b1"]
    # 3*3*3*8 + 8 = 224 params; 216 MACs per output position, H*H of them.
    assert folded and label[2:] == ["[8, H, H]", "params 224", "MACs 216*H**2"]
    assert "_2" not in ge.to_mermaid(g, 1)


# --- the command line ----------------------------------------------------------------------------

def cli(*args, env=None, cwd=None):
    return subprocess.run([sys.executable, "-m", "archcalc", *map(str, args)], capture_output=True, text=True,
                          env=env, cwd=cwd)


def test_cli_export_depth_matches_the_library():
    spec = SPECS / "zoo/resnet50.yaml"
    g = archcalc.load_spec(spec)
    proc = cli("export", spec, "--to", "dot", "--depth", "1")
    assert proc.returncode == 0 and proc.stdout == ge.to_dot(g, 1) and proc.stderr == ""
    proc = cli("export", spec, "--to", "mermaid", "-d", "2")
    assert proc.returncode == 0 and proc.stdout == ge.to_mermaid(g, 2)
    assert cli("export", spec, "--to", "dot", "--depth", "0").stdout == ge.to_dot(g)


def test_cli_depth_is_for_drawings_only():  # refused before torch is imported: quick
    proc = cli("export", SPECS / "zoo/resnet18.yaml", "--to", "pytorch", "--depth", "1")
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith("error: --depth folds a drawing") and proc.stderr.count("\n") == 1
    proc = cli("export", SPECS / "zoo/resnet18.yaml", "--to", "dot", "--depth", "-1")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


# --- Mermaid's text limit --------------------------------------------------------------------------

def test_mermaid_size_is_what_mermaid_measures():
    g = archcalc.parse_spec(SPEC)
    text = ge.to_mermaid(g)
    inner = text.removeprefix("```mermaid\n").removesuffix("```\n")
    assert ge.mermaid_size(text) == len(inner)  # ASCII: one code unit a character
    # (names are ASCII words, but a diagram's text need not be:) a character outside the BMP is two
    # UTF-16 code units in JavaScript's String.length, "flowchart TD\n" 13, '  a["x"]\n' 9.
    assert ge.mermaid_size('```mermaid\nflowchart TD\n  a["\U0001F600"]\n```\n') == 13 + 9 + 1
    assert ge.MERMAID_MAX_TEXT == 50_000  # mermaid's maxTextSize default (mermaid.js.org config schema)


def test_gpt3_mermaid_past_the_limit_is_refused_with_the_depth_that_fits(tmp_path):
    spec = SPECS / "transformers/gpt3_175b.yaml"
    g = archcalc.load_spec(spec)
    full, depth2 = ge.to_mermaid(g), ge.to_mermaid(g, 2)
    full_size = len(full) - len("```mermaid\n") - len("```\n")
    assert full_size > 50_000 >= len(depth2) - len("```mermaid\n") - len("```\n")  # 96 layers of 8 > 96 boxes
    out = tmp_path / "gpt3.md"
    proc = cli("export", spec, "--to", "mermaid", "-o", out)
    assert proc.returncode == 2 and proc.stdout == "" and not out.exists()
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: ")
    assert f"{full_size:,} characters" in proc.stderr and "50,000" in proc.stderr
    assert "--depth 2 (" in proc.stderr and "--force" in proc.stderr
    # --force writes the whole diagram; --depth 2 fits and is written without it.
    proc = cli("export", spec, "--to", "mermaid", "--force", "-o", out)
    assert proc.returncode == 0 and out.read_text() == full
    proc = cli("export", spec, "--to", "mermaid", "--depth", "2")
    assert proc.returncode == 0 and proc.stdout == depth2


def test_the_largest_depth_that_fits_is_suggested():
    g = archcalc.load_spec(SPECS / "transformers/gpt3_175b.yaml")
    sizes = {d: ge.mermaid_size(ge.to_mermaid(g, d)) for d in (1, 2)}
    with pytest.raises(archcalc.SpecError) as info:
        ge.check_mermaid_size(g, ge.to_mermaid(g), limit=sizes[2])  # depth 2 fits exactly
    assert f"--depth 2 ({sizes[2]:,} characters" in str(info.value)
    with pytest.raises(archcalc.SpecError) as info:
        ge.check_mermaid_size(g, ge.to_mermaid(g), limit=sizes[2] - 1)
    assert f"--depth 1 ({sizes[1]:,} characters" in str(info.value)
    with pytest.raises(archcalc.SpecError) as info:
        ge.check_mermaid_size(g, ge.to_mermaid(g), limit=sizes[1] - 1)
    assert "even --depth 1 is too long" in str(info.value)
    ge.check_mermaid_size(g, ge.to_mermaid(g, 1))  # under the limit: nothing to say


# --- Graphviz: svg and png -------------------------------------------------------------------------

def _path_without_dot(tmp_path):
    """A folder for PATH holding no `dot` (archcalc is run by its interpreter's full path)."""
    empty = tmp_path / "bin"
    empty.mkdir()
    return {**os.environ, "PATH": str(empty)}


def test_svg_without_graphviz_says_to_install_it(tmp_path):
    env = _path_without_dot(tmp_path)
    out = tmp_path / "net.svg"
    for fmt in ("svg", "png"):
        proc = cli("export", SPECS / "zoo/resnet18.yaml", "--to", fmt, "-o", out, env=env)
        assert proc.returncode == 2 and proc.stdout == "" and not out.exists()
        assert proc.stderr.count("\n") == 1, proc.stderr
        assert proc.stderr.startswith(f"error: --to {fmt} runs Graphviz's `dot`, which is not on PATH: install Graphviz")
        assert "--to dot" in proc.stderr


def test_png_needs_an_output_file(tmp_path):
    proc = cli("export", SPECS / "zoo/resnet18.yaml", "--to", "png", env=_path_without_dot(tmp_path))
    assert proc.returncode == 2 and proc.stderr == "error: --to png writes a binary file: give it with -o FILE.png\n"


# The stand-in for Graphviz's dot: it accepts exactly one argument -T<format>, reads the drawing
# on stdin, keeps what it read (received.dot) and writes a result holding every byte value that
# text handling would damage (NUL, CR LF, 0x80-0xff), as a PNG would.
STAND_IN = """\
#!{python}
import sys
args = sys.argv[1:]
if len(args) != 1 or args[0] not in ("-Tsvg", "-Tpng"):
    sys.stderr.write("stand-in: unexpected arguments %r\\n" % (args,))
    sys.exit(3)
data = sys.stdin.buffer.read()
open({received!r}, "wb").write(data)
if b"FAIL_HERE" in data:
    sys.stderr.write("\\nError: <stdin>: syntax error in line 3 near 'x'\\nsecond line\\n")
    sys.exit(1)
fmt = args[0][2:].encode()
sys.stdout.buffer.write(b"\\x89" + fmt.upper() + b"\\r\\n\\x1a\\n\\x00\\xff" + str(len(data)).encode())
"""


@pytest.fixture
def fake_dot(tmp_path):
    folder = tmp_path / "fakebin"
    folder.mkdir()
    received = tmp_path / "received.dot"
    exe = folder / "dot"
    exe.write_text(STAND_IN.format(python=sys.executable, received=str(received)))
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    return {**os.environ, "PATH": str(folder)}, received


@pytest.mark.parametrize("fmt", ["svg", "png"])
def test_svg_and_png_are_rendered_by_dot_on_path(tmp_path, fake_dot, fmt):
    env, received = fake_dot
    spec = SPECS / "zoo/resnet50.yaml"
    out = tmp_path / f"net.{fmt}"
    proc = cli("export", spec, "--to", fmt, "--depth", "1", "-o", out, env=env)
    assert proc.returncode == 0, proc.stderr
    drawing = ge.to_dot(archcalc.load_spec(spec), 1)
    assert received.read_text() == drawing  # the folded drawing, on stdin
    assert out.read_bytes() == b"\x89" + fmt.upper().encode() + b"\r\n\x1a\n\x00\xff" + \
        str(len(drawing.encode())).encode()  # byte for byte
    assert proc.stdout == "" and proc.stderr == f"wrote {out}\n"


def test_svg_goes_to_stdout_without_o(fake_dot):
    env, received = fake_dot
    proc = subprocess.run([sys.executable, "-m", "archcalc", "export", str(SPECS / "zoo/resnet18.yaml"),
                           "--to", "svg"], capture_output=True, env=env)
    assert proc.returncode == 0 and proc.stdout.startswith(b"\x89SVG\r\n") and proc.stderr == b""


def test_dot_failing_is_one_error_line_with_its_first_stderr_line(tmp_path, fake_dot):
    env, received = fake_dot
    spec = tmp_path / "FAIL_HERE.yaml"  # the stand-in fails on a drawing holding this name
    spec.write_text("name: FAIL_HERE\ninput: [4]\nlayers: [linear: 2]\n")
    out = tmp_path / "net.svg"
    proc = cli("export", spec, "--to", "svg", "-o", out, env=env)
    assert proc.returncode == 2 and proc.stdout == "" and not out.exists()
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: --to svg: Graphviz's dot (")
    assert proc.stderr.rstrip().endswith("failed: Error: <stdin>: syntax error in line 3 near 'x'")


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz is not installed here")
def test_real_graphviz_renders_svg(tmp_path):
    out = tmp_path / "net.svg"
    proc = cli("export", SPECS / "zoo/resnet50.yaml", "--to", "svg", "--depth", "1", "-o", out)
    assert proc.returncode == 0, proc.stderr
    svg = out.read_text()
    assert "<svg" in svg and svg.count('class="node"') == 12 and svg.count('class="edge"') == 11
    png = tmp_path / "net.png"
    assert cli("export", SPECS / "zoo/resnet50.yaml", "--to", "png", "-d", "1", "-o", png).returncode == 0
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
