"""The answer key as a solution sheet (archcalc/homework/sheet.py, `archcalc key`): answers and
worked formulas checked against values worked out by hand from the lecture's formulas
((K1*K2*Cin + 1)*Cout parameters, M = floor((N + 2P - K)/S) + 1, r' = r + (K - 1) j)."""
import re
from pathlib import Path

import pytest
import sympy
from typer.testing import CliRunner

from archcalc.cli import app
from archcalc.errors import SpecError
from archcalc.homework import sheet as sheets
from archcalc.homework.key import load_key

ROOT = Path(__file__).resolve().parents[2]
HOMEWORK = ROOT / "specs" / "homework"
runner = CliRunner()

# Written Assignment 1 as the lecture draws it: conv 5x5, 16 filters, no padding, relu, 2x2
# max-pooling, fc 10, on a grey H x W image.
WA1 = """name: wa1
input: [1, H, W]
layers:
  - {name: conv1, conv: {out: 16, kernel: 5}}   # (5*5*1 + 1)*16 = 416
  - relu
  - {name: pool1, maxpool: 2}
  - flatten
  - {name: fc, linear: 10}
"""
H, W = sympy.symbols("H W", integer=True, positive=True)


def key_file(tmp_path, body: str, spec: str = WA1, name: str = "wa1.yaml") -> Path:
    (tmp_path / name).write_text(spec)
    path = tmp_path / "key.yaml"
    path.write_text(f"spec: {name}\n" + body)
    return path


def solved(tmp_path, body, **kw):
    return sheets.solve(load_key(key_file(tmp_path, body, **kw)))


def item(sheet, qid):
    return next(w for w in sheet.items if w.question.id == qid)


def test_wa1_at_28_by_hand(tmp_path):
    s = solved(tmp_path, "set: {H: 28, W: 28}\nquestions:\n  conv1.params: 2\n  fc.params: 2\n"
                         "  total.trainable_params: 3\n  pool1.rf: 1\n  pool1.output_shape: 1\n")
    # conv: 24 x 24 (28 - 5 + 1); pool: 12 x 12; fc: (16*12*12 + 1)*10 = 23,050; total 416 + 23,050
    assert item(s, "conv1.params").value == 416
    assert item(s, "fc.params").value == 23050
    total = item(s, "total.trainable_params")
    assert total.value == 23466 and total.answer == "23,466"
    assert item(s, "pool1.output_shape").value == (16, 12, 12)
    assert item(s, "pool1.rf").answer == "size 6, stride 2, start 0"  # 5 + (2 - 1)*1, jump 2
    assert "(5*5*1 + 1)*16 = 416" in item(s, "conv1.params").lines[0]
    # the total: each layer's step, then the sum with one term per layer, as a student writes it
    assert total.lines[-1] == "total  trainable = conv1 + fc = 416 + 23,050 = 23,466"
    assert total.lines[0].startswith("conv1  params = (K1*K2*Cin + 1)*Cout")
    assert total.lines[1].startswith("fc     params = (Nin + 1)*Nout")
    assert len(total.lines) == 3  # relu, pool, flatten have none: not listed


def test_wa1_symbolic_assume_divisible(tmp_path):
    s = solved(tmp_path, "assume: divisible\nquestions:\n  total.trainable_params: 3\n  pool1.rf: 2\n")
    total = item(s, "total.trainable_params")
    assert sympy.expand(total.value - (40 * (H - 4) * (W - 4) + 426)) == 0
    assert total.lines[-1].startswith("total  trainable = conv1 + fc = 416 + ")
    assert total.lines[-1].endswith(" = " + total.answer)
    assert s.symbols == ("H", "W") and s.multiples == {"H": 2, "W": 2}
    text = sheets.markdown(s)
    assert "take H as a multiple of 2, W as a multiple of 2 (every size divides evenly)" in text


def test_wa1_without_constraints_keeps_pytorchs_floors(tmp_path):
    s = solved(tmp_path, "questions:\n  fc.params: 1\n")
    value = item(s, "fc.params").value
    assert "floor" in str(value)
    assert value.subs({H: 29, W: 31}) == (16 * 12 * 13 + 1) * 10  # floor(25/2) = 12, floor(27/2) = 13


def test_denoiser_per_layer_terms(tmp_path):
    key = tmp_path / "key.yaml"
    key.write_text(f"spec: {HOMEWORK / 'denoiser.yaml'}\nset: {{H: 256, W: 256}}\nquestions:\n"
                   "  total.trainable_params: 4\n  conv2.params: 1\n  total.macs: 1\n  conv4.rf: 1\n"
                   "  total.flops: 1\n")
    s = sheets.solve(load_key(key))
    total = item(s, "total.trainable_params")
    # 320 + 9,248 + 9,248 + 289 (the bundled answers' comment): (3*3*1+1)*32, (3*3*32+1)*32 twice, (3*3*32+1)*1
    assert total.lines[-1] == "total  trainable = conv1 + conv2 + conv3 + conv4 = 320 + 9,248 + 9,248 + 289 = 19,105"
    assert item(s, "conv2.params").answer == "9,248"
    macs = (288 + 9216 + 9216 + 288) * 256 * 256
    assert item(s, "total.macs").value == macs == 1245708288
    assert item(s, "total.flops").value == 2 * macs
    flops = item(s, "total.flops").lines
    assert "conv1  flops = 2*macs = 2*18,874,368 = 37,748,736" in flops  # 256*256*9*32 MACs
    assert item(s, "conv4.rf").answer == "size 9, stride 1, start -4"  # 3 + 2 + 2 + 2


def test_blocks_frozen_and_bytes(tmp_path):
    spec = """name: b
input: [3, 8, 8]
blocks:
  unit:
    args: {c: 4}
    layers:
      - {name: conv, conv: {out: c, kernel: 3, padding: 1, bias: false}}
      - {name: bn, batchnorm: {}}
layers:
  - {name: stem, unit: {c: 4}}
  - {name: head, conv: {out: 2, kernel: 1}, trainable: false}
"""
    s = solved(tmp_path, "questions:\n  stem.params: 1\n  stem.trainable_params: 1\n  head.trainable_params: 1\n"
                         "  head.non_trainable_params: 1\n  stem.conv.activation_bytes: 1\n  total.param_bytes: 1\n"
                         "  total.non_trainable_params: 1\n", spec=spec, name="b.yaml")
    # conv 3*3*3*4 = 108, bn 2*4 trainable + 2*4 running statistics; head (1*1*4 + 1)*2 = 10, frozen
    stem = item(s, "stem.params")
    assert stem.value == 108 + 16
    assert " ".join(stem.lines[-1].split()) == "stem params = stem.conv + stem.bn = 108 + 16 = 124"
    assert item(s, "stem.trainable_params").value == 116
    head = item(s, "head.trainable_params")
    assert head.value == 0 and head.lines == ("head  trainable = 0   (trainable: false)",)
    assert item(s, "head.non_trainable_params").value == 10
    act = item(s, "stem.conv.activation_bytes")
    assert act.value == 4 * 8 * 8 * 4
    assert act.lines == ("stem.conv  activation_bytes = output values*bytes = [4, 8, 8] = 256 values*4 bytes = 1,024",)
    pb = item(s, "total.param_bytes")
    assert pb.value == 4 * (124 + 10) and pb.lines == ("total  param_bytes = params*bytes = 134*4 = 536",)
    assert item(s, "total.non_trainable_params").value == 8 + 10


def test_vary_needs_the_student_and_seed(tmp_path):
    spec = WA1.replace("name: wa1", "name: wa1\nvars: {K: 5, C: 16}")
    spec = spec.replace("{out: 16, kernel: 5}", "{out: C, kernel: K}")
    path = key_file(tmp_path, "set: {H: 28, W: 28}\nquestions:\n  conv1.params: 2\n  total.params: 1\n"
                              "vary: {K: [3, 5, 7], C: [8, 16, 32]}\n", spec=spec)
    key = load_key(path)
    with pytest.raises(SpecError, match="varies K, C per student: give the student and the seed"):
        sheets.solve(key)
    for student in ("alice", "bob", "carol", "dave"):
        values = key.variant(student, 11)
        s = sheets.solve(key, student, 11)
        k, c = values["K"], values["C"]
        assert s.variant == values
        assert item(s, "conv1.params").value == (k * k + 1) * c
        side = (28 - k + 1) // 2
        assert item(s, "total.params").value == (k * k + 1) * c + (c * side * side + 1) * 10
        assert f"The variant: K = {k}, C = {c}; sizes: H = 28, W = 28." in sheets.markdown(s)
        assert f"Your values: K = {k}, C = {c}; sizes: H = 28, W = 28." in sheets.questions_markdown(s)


def test_questions_sheet_holds_no_answer(tmp_path):
    s = solved(tmp_path, "title: Written Assignment 1\nset: {H: 28, W: 28}\nquestions:\n  conv1.params: 2\n"
                         "  total.trainable_params: 3\n  pool1.rf: 1\n")
    text = sheets.questions_markdown(s)
    for answer in ("416", "23,466", "23466", "size 6"):
        assert answer not in text
    assert "1. The number of parameters of layer conv1: `conv1.params` (2 points)" in text
    assert "3. The receptive field of layer pool1 (in pixels of the input image): `pool1.rf` (1 point)" in text
    solution = sheets.markdown(s)
    assert "**Answer:** `23,466`" in solution and "6 points" in solution


def test_tolerance_per_question(tmp_path):
    s = solved(tmp_path, "set: {H: 28, W: 28}\ntolerance: 2%\nquestions:\n  conv1.params: 1\n"
                         "  total.macs: {points: 1, tolerance: 0.05}\n  pool1.rf: 1\n")
    text = sheets.markdown(s)
    assert "**Answer:** `416` (an approximate answer is right within 2 %)" in text
    assert "within 5 %" in text
    assert "**Answer:** `size 6, stride 2, start 0`\n" in text  # no tolerance for a field


def test_markdown_escapes_the_title_and_fences(tmp_path):
    s = solved(tmp_path, "title: 'WA *1* | `x`'\nset: {H: 28, W: 28}\nquestions:\n  conv1.params: 1\n")
    text = sheets.markdown(s)
    first = text.splitlines()[0]
    assert first == "# WA \\*1\\* \\| \\`x\\`: solution sheet"


LATEX_SPECIAL = re.compile(r"(?<!\\)[#$%&_^~]")


def _latex_body_ok(text: str) -> None:
    """Compiles in principle: balanced braces, \\begin/\\end pairs, and no special character
    outside a command or an escape."""
    assert text.startswith("\\documentclass") and text.rstrip().endswith("\\end{document}")
    depth = 0
    for i, ch in enumerate(text):
        if ch in "{}" and text[i - 1] == "\\":
            continue
        depth += {"{": 1, "}": -1}.get(ch, 0)
        assert depth >= 0
    assert depth == 0
    begins = re.findall(r"\\begin\{(\w+)\}", text)
    ends = re.findall(r"\\end\{(\w+)\}", text)
    assert sorted(begins) == sorted(ends)
    stripped = re.sub(r"\$\\(times|approx|cdot|leq|geq)\$", "", text)
    stripped = re.sub(r"\\begin\{verbatim\}.*?\\end\{verbatim\}", "", stripped, flags=re.S)
    assert not LATEX_SPECIAL.search(stripped), LATEX_SPECIAL.search(stripped)


def test_latex_escapes_everything(tmp_path):
    spec = WA1.replace("conv1", "conv_1")
    s = solved(tmp_path, "title: 'A_1 & #2: 100% {x} ~y^ \\z $5 \u4e2d'\nset: {H: 28, W: 28}\n"
                         "questions:\n  conv_1.params: 1\n  total.trainable_params: 2\n", spec=spec)
    text = sheets.latex(s)
    _latex_body_ok(text)
    assert r"A\_1 \& \#2: 100\% \{x\} \textasciitilde{}y\textasciicircum{} \textbackslash{}z \$5 [U+4E2D]" in text
    assert r"\texttt{conv\_1.params}" in text
    assert r"\item \texttt{total   trainable = conv\_1 + fc = 416 + 23,050 = 23,466}" in text


def test_latex_of_the_symbolic_key(tmp_path):
    s = solved(tmp_path, "questions:\n  fc.params: 1\n  pool1.output_shape: 1\n  pool1.rf: 1\n")
    _latex_body_ok(sheets.latex(s))


# --- the command --------------------------------------------------------------------------------
def test_cli_key_markdown_and_latex(tmp_path):
    path = key_file(tmp_path, "set: {H: 28, W: 28}\nquestions:\n  conv1.params: 2\n  total.trainable_params: 3\n")
    result = runner.invoke(app, ["key", str(path)])
    assert result.exit_code == 0, result.output
    assert "**Answer:** `23,466`" in result.stdout
    assert "total  trainable = conv1 + fc = 416 + 23,050 = 23,466" in result.stdout
    out = tmp_path / "key.tex"
    result = runner.invoke(app, ["key", str(path), "--format", "latex", "-o", str(out)])
    assert result.exit_code == 0, result.output
    _latex_body_ok(out.read_text())


def test_cli_key_errors_are_one_line(tmp_path):
    spec = WA1.replace("name: wa1", "name: wa1\nvars: {K: 5}").replace("kernel: 5", "kernel: K")
    path = key_file(tmp_path, "questions:\n  conv1.params: 2\nvary: {K: [3, 5]}\n", spec=spec)
    result = runner.invoke(app, ["key", str(path)])
    assert result.exit_code == 2
    assert result.output.strip().count("\n") == 0 and "give the student and the seed" in result.output
    result = runner.invoke(app, ["key", str(path), "--student", "alice", "--seed", "3"])
    assert result.exit_code == 0, result.output
    k = load_key(path).variant("alice", 3)["K"]
    assert f"`{k * k * 16 + 16:,}`" in result.stdout
    bad = key_file(tmp_path, "questions:\n  conv9.params: 2\n")
    result = runner.invoke(app, ["key", str(bad)])
    assert result.exit_code == 2 and "key.yaml:3:3: error: " in result.output and "conv9" in result.output


def test_the_keys_set_is_blamed_at_the_key(tmp_path):
    bad_name = key_file(tmp_path, "set: {Q: 3}\nquestions:\n  conv1.params: 1\n")
    with pytest.raises(SpecError) as err:
        sheets.check_key(load_key(bad_name))
    assert str(err.value) == f"{bad_name}:2:10: error: set Q: the spec has no symbol or var 'Q'"
    too_small = key_file(tmp_path, "set: {H: 3, W: 9}\nquestions:\n  conv1.params: 1\n")
    with pytest.raises(SpecError) as err:
        sheets.solve(load_key(too_small))
    assert str(err.value).startswith(f"{too_small}:2:10: error: set {{H: 3, W: 9}}: the spec is invalid at these "
                                     "sizes: kernel 5 is larger than the padded input along H")
    result = runner.invoke(app, ["key", str(too_small)])
    assert result.exit_code == 2 and result.output.startswith(f"{too_small}:2:10: error: set {{H: 3, W: 9}}")


def test_cli_key_questions_holds_the_network_and_no_answer(tmp_path):
    path = key_file(tmp_path, "title: WA1\nset: {H: 28, W: 28}\nquestions:\n  conv1.params: 2\n"
                              "  total.trainable_params: 3\n")
    result = runner.invoke(app, ["key", str(path), "--questions"])
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "416" not in text and "23,466" not in text and "23466" not in text  # the spec's comment is not copied
    assert "```yaml\n# WA1: the network of your questions\nname: wa1\nvars: {H: 28, W: 28}\n" in text
    assert "  - {name: conv1, conv: {out: 16, kernel: 5}}\n" in text
    assert "2. The number of trainable parameters of the whole network: `total.trainable_params` (3 points)" in text
    result = runner.invoke(app, ["key", str(path), "--questions", "--format", "latex"])
    assert result.exit_code == 0, result.output
    _latex_body_ok(result.stdout)
    assert "\\begin{verbatim}\n# WA1: the network of your questions\n" in result.stdout
    assert "416" not in result.stdout
    assert r"\item The number of parameters of layer conv1: \texttt{conv1.params} (2 points)" in result.stdout


@pytest.mark.parametrize("name", ["written_assignment_1", "denoiser"])
def test_the_bundled_keys_answers_grade_full_marks(tmp_path, name):
    """Every answer of the solution sheet, written as a student would, earns its points from
    `archcalc grade`: the sheet and the grading agree on every figure."""
    import json

    key_path = HOMEWORK / f"{name}.key.yaml"
    s = sheets.solve(load_key(key_path))
    lines = ['student: "key"', "answers:"]
    for w in s.items:
        value = w.value
        if w.question.figure == "rf":
            value = {"size": value.size[0], "stride": value.stride[0]}
        elif isinstance(value, tuple):
            value = [str(v) for v in value]
        elif not isinstance(value, int):
            value = str(value)
        lines.append(f"  {w.question.id}: {json.dumps(value)}")
    answers = tmp_path / "key.yaml"
    answers.write_text("\n".join(lines) + "\n")
    result = runner.invoke(app, ["grade", str(key_path), str(answers), "--json"])
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout)["students"][0]
    assert row["total"] == row["max"] == s.max_points, row
