"""archcalc explain --latex: a LaTeX document, one align* per layer, that is well formed (braces,
environments, \\left/\\right and special characters balanced or escaped) and holds the figures
worked out by hand; compiled with pdflatex where it is installed."""
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

import archcalc
from archcalc.cli import app
from archcalc.explain import explain, latex, latex_math
from bundled import SPEC_FILES

SPECS = Path(__file__).resolve().parent.parent / "specs"
runner = CliRunner()


def _well_formed(doc: str) -> None:
    """The structural rules a LaTeX compiler enforces that a printer can get wrong."""
    body = re.sub(r"\\[{}$&#%_\\]", "", doc)  # escaped characters (and \\ row ends) are no braces
    depth = 0
    for ch in body:
        depth += {"{": 1, "}": -1}.get(ch, 0)
        assert depth >= 0, "a } closes nothing"
    assert depth == 0, "a { is never closed"
    stack = []
    for kind, env in re.findall(r"\\(begin|end)\{([^}]*)\}", doc):
        if kind == "begin":
            stack.append(env)
        else:
            assert stack and stack.pop() == env, f"\\end{{{env}}} closes another environment"
    assert stack == []
    assert doc.count(r"\left") == doc.count(r"\right")
    assert doc.startswith(r"\documentclass") and doc.rstrip().endswith(r"\end{document}")
    # outside math, the characters TeX reserves appear only escaped; math stays inside align*
    text = re.sub(r"\\begin\{align\*\}.*?\\end\{align\*\}", "", doc, flags=re.S)
    assert not re.search(r"(?<!\\)[_^&#%$~]", text.replace(r"\textasciitilde{}", "")), text
    for block in re.findall(r"\\begin\{align\*\}\n(.*?)\n\\end\{align\*\}", doc, flags=re.S):
        for row in block.split(" \\\\\n"):
            assert row.count("&") - row.count(r"\&") in (1, 3), row  # figure &= ... [&&(remarks)]
            assert "\n" not in row
            for inner in re.findall(r"\\text\{((?:[^{}]|\{[^{}]*\})*)\}", row):  # text inside math: escaped
                assert not re.search(r"(?<!\\)[_^&#%$]", inner), inner


def _doc(path, *args) -> str:
    result = runner.invoke(app, ["explain", str(path), "--latex", *args])
    assert result.exit_code == 0, result.output
    return result.stdout


def test_lenet_first_layer_by_hand():
    # LeNet's first layer: 32x32x1 -> 6 filters 5x5 (lecture): output (32 - 5)/1 + 1 = 28,
    # params (5*5*1 + 1)*6 = 156, MACs 28*28*5*5*1*6 = 117,600, field 5, jump 1, start 0
    doc = _doc(SPECS / "lecture" / "lenet_first_layer.yaml")
    _well_formed(doc)
    assert r"\subsection*{\texttt{conv1} (conv)}" in doc
    assert (r"\text{params} &= (K_{1} \cdot K_{2} \cdot C_{\mathrm{in}} + 1) \cdot C_{\mathrm{out}} = "
            r"(5 \cdot 5 \cdot 1 + 1) \cdot 6 = 156") in doc
    assert r"= 28 \cdot 28 \cdot 5 \cdot 5 \cdot 1 \cdot 6 = 117{,}600" in doc
    assert r"\left\lfloor (32 + 2 \cdot 0 - 1 \cdot (5-1) - 1)/1 \right\rfloor + 1 = 28" in doc
    assert r"\text{output} &= [C_{\mathrm{out}}, M_{1}, M_{2}] = [6, 28, 28]" in doc
    assert r"\text{rf} &= r + D(K-1) \cdot j = 1 + 1 \cdot (5 - 1) \cdot 1 = 5" in doc
    assert doc.count(r"\begin{align*}") == 1  # one layer, one environment
    assert doc == _doc(SPECS / "lecture" / "lenet_first_layer.yaml", "--format", "latex")


def test_alexnet_by_hand():
    # conv1 11x11x3 -> 96: (11*11*3 + 1)*96 = 34,944 parameters; conv2 in two groups:
    # (5*5*48 + 1)*256 = 307,456; fc8 4096 -> 1000: (4096 + 1)*1000 = 4,097,000
    doc = _doc(SPECS / "lecture" / "alexnet_2012.yaml")
    _well_formed(doc)
    assert r"(11 \cdot 11 \cdot 3 + 1) \cdot 96 = 34{,}944" in doc
    assert r"(5 \cdot 5 \cdot 48 + 1) \cdot 256 = 307{,}456" in doc
    assert r"= 4{,}097{,}000" in doc
    report = archcalc.analyze(SPECS / "lecture" / "alexnet_2012.yaml")
    assert doc.count(r"\begin{align*}") == len(report.layers)


def test_symbolic_sizes_in_the_users_symbols():
    # conv_pool_fc: input [1, H, W] (H, W even); pool halves them, flatten has 16*(H/2)*(W/2) = 4HW
    # values, fc 4HW -> 10 has (4HW + 1)*10 = 40HW + 10 parameters
    doc = _doc(SPECS / "homework" / "conv_pool_fc.yaml")
    _well_formed(doc)
    assert r"(N_{\mathrm{in}} + 1) \cdot N_{\mathrm{out}} = (4 \cdot H \cdot W + 1) \cdot 10 = 40 H W + 10" in doc
    assert r"= [16, \frac{H}{2}, \frac{W}{2}]" in doc
    assert r"\section*{conv\_pool\_fc: the working}" in doc
    # docs/homework.md shows conv1's params row as the tool writes it
    shown = re.search(r"\(`(\\text\{params\} &=.+?)`\)", (SPECS.parent / "docs" / "homework.md").read_text(), re.S)
    assert shown and " ".join(shown.group(1).split()) in doc


@pytest.mark.parametrize("path", [p for p in SPEC_FILES if p.parent.name in ("lecture", "homework", "sequence")]
                         + [SPECS / "zoo" / "swin_t.yaml", SPECS / "transformers" / "t5_small.yaml"],
                         ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_bundled_specs_give_well_formed_latex(path):
    graph = archcalc.load_graph(path)
    steps = explain(graph)
    doc = latex(steps, graph.name)
    _well_formed(doc)
    assert doc.count(r"\begin{align*}") == len(steps)


def test_the_notation():
    assert latex_math("floor((N + 2P - K)/S) + 1") == r"\left\lfloor (N + 2P - K)/S \right\rfloor + 1"
    assert latex_math("N - (pieces - 1)*ceil(N/chunks)") == (r"N - (\mathrm{pieces} - 1) \cdot \left\lceil "
                                                              r"N/\mathrm{chunks} \right\rceil")
    assert latex_math("max(start_i + r_i - 1) - min(start_i) + 1") == (r"\max(\mathrm{start}_{i} + r_{i} - 1) - "
                                                                        r"\min(\mathrm{start}_{i}) + 1")
    assert latex_math("(H - 2)**(k + 1)*N_H") == r"(H - 2)^{(k + 1)} \cdot N_{H}"
    assert latex_math("trainable + non-trainable") == r"\mathrm{trainable} + \text{non-trainable}"
    assert latex_math("input shape") == r"\text{input shape}"
    # unbalanced text still gives balanced LaTeX; TeX's special characters are escaped
    assert latex_math("floor(x") == r"\left\lfloor x \right\rfloor"
    assert latex_math("a & b_") == r"a \text{\&} \mathrm{b\_}"


def test_user_names_are_escaped(tmp_path):
    spec = tmp_path / "net.yaml"
    spec.write_text("name: 'my_net & #1 {x} 100%'\ninput: [3, 8, 8]\nlayers:\n  - {name: conv_a, conv: {out: 4, kernel: 3}}\n")
    doc = _doc(spec)
    _well_formed(doc)
    assert r"\section*{my\_net \& \#1 \{x\} 100\%: the working}" in doc
    assert r"\subsection*{\texttt{conv\_a} (conv)}" in doc


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex is not installed")
def test_pdflatex_compiles_it(tmp_path):
    for path in (SPECS / "lecture" / "alexnet_2012.yaml", SPECS / "homework" / "conv_pool_fc.yaml"):
        tex = tmp_path / f"{path.stem}.tex"
        tex.write_text(_doc(path))
        done = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", tex.name], cwd=tmp_path,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout[-3000:]
        assert (tmp_path / f"{path.stem}.pdf").stat().st_size > 0


@pytest.mark.parametrize("options,said", [
    (["--latex", "--format", "markdown"], "--format markdown and --latex"),
    (["--json", "--latex"], "--latex and --json"),
    (["--json", "--format", "latex"], "--format latex and --json"),
    (["--json", "--format", "markdown"], "--format markdown and --json"),
])
def test_two_formats_at_once_are_one_error(options, said):
    # each once printed one of the two silently (--latex won over --format, --json over both)
    spec = str(SPECS / "homework" / "conv_pool_fc.yaml")
    result = CliRunner().invoke(app, ["explain", spec, *options])
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.strip() == f"error: {said} are two formats: give one"
    both = CliRunner().invoke(app, ["explain", spec, "--latex", "--format", "latex"])  # one format, twice
    assert both.exit_code == 0 and both.stdout.startswith(r"\documentclass")


def _double_subscripts(math: str) -> list[str]:
    """Where a subscript follows a subscript with no group around the first (x_{a}_{b}: TeX's
    "Double subscript" error, which stops pdflatex)."""
    found, i = [], 0
    while (i := math.find("_{", i)) >= 0:
        depth, j = 0, i + 1
        while j < len(math):
            depth += {"{": 1, "}": -1}.get(math[j], 0)
            j += 1
            if depth == 0:
                break
        if math.startswith("_", j):
            found.append(math[max(0, i - 12):j + 4])
        i += 2
    return found


def test_symbols_with_several_underscores_are_one_subscript_each(tmp_path):
    # input: [3, H_in_2, W] wrote H_{\mathrm{in}}_{\mathrm{2}}: pdflatex stopped at "Double subscript"
    spec = tmp_path / "s.yaml"
    spec.write_text("input: [Cin_2, H_in_2, a_b_c]\nlayers:\n  - conv: {out: 4, kernel: 3}\n")
    doc = _doc(spec)
    _well_formed(doc)
    assert _double_subscripts(doc) == []
    assert r"{H_{\mathrm{in}}}_{\mathrm{2}}" in doc and r"{a_{b}}_{c}" in doc and r"{C_{\mathrm{in}}}_{\mathrm{2}}" in doc
    assert _double_subscripts(r"H_{\mathrm{in}}_{2} + {x_{1}}_{y}") == [r"H_{\mathrm{in}}_{2}"]  # the check sees it
    if shutil.which("pdflatex"):
        (tmp_path / "s.tex").write_text(doc)
        done = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "s.tex"], cwd=tmp_path,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout[-3000:]
