"""Checking answers against analyses: verdicts, hints for the usual mistakes, symbolic equivalence,
approximate answers, and the JSON / gradebook forms."""
import csv
import io
import json
import textwrap

import pytest

import archcalc
from archcalc.analysis.report import LayerResult, Report, make_totals
from archcalc.geometry.receptive_field import GLOBAL, RF
from archcalc.errors import SpecError
from archcalc.homework.answers import parse_answers
from archcalc.homework.check import GRADE_HEADER, CheckResult, check, values_equal

# conv1 [16, 28, 28] 416 params, 313,600 MACs, rf 5; batchnorm1 64 (32 + 32); maxpool1 [16, 14, 14]
# rf 6 /2; conv2 [32, 12, 12] 4,640 params, 663,552 MACs, rf 10 /2 start -2; linear1 46,090 params.
SMALL = """\
name: small
input: [1, 28, 28]
layers:
  - conv: {out: 16, kernel: 5, padding: 2}
  - batchnorm
  - relu
  - maxpool: 2
  - conv: {out: 32, kernel: 3}
  - relu
  - flatten
  - linear: 10
"""

# No biases, a strided convolution, and a reshape (after which the field is not tracked).
NOBIAS = """\
name: nobias
input: [3, 32, 32]
layers:
  - conv: {out: 8, kernel: 3, stride: 2, padding: 1, bias: false}
  - {name: fc, linear: {out: 4, bias: false}, from: conv1}
  - {reshape: [8, 256], from: conv1}
"""

# A repeated block, to ask about a block instance as a whole.
BLOCKS = """\
name: blocks
input: [4, 8, 8]
blocks:
  unit:
    layers:
      - conv: {out: 4, kernel: 3, padding: 1}
      - relu
layers:
  - {name: stage, unit: {}, repeat: 2}
"""


def run(spec, answers, batch=1, graph=False):
    report = archcalc.analyze_text(textwrap.dedent(spec), batch=batch)
    sheet = parse_answers(textwrap.dedent(answers), "answers.yaml")
    spec_graph = archcalc.parse_spec(textwrap.dedent(spec)) if graph else None
    return check(report, sheet, spec_graph)


def verdict(spec, quantity, value, batch=1, **top):
    """(verdict, hint) of one answer."""
    extra = "".join(f"{k}: {v}\n" for k, v in top.items())
    result = run(spec, f"{extra}answers:\n  {quantity}: {value}\n", batch=batch)
    (r,) = result.results
    return r.verdict, r.hint


# --- right answers ----------------------------------------------------------------------------
def test_all_right():
    result = run(SMALL, """\
        answers:
          conv1.params: 416
          conv1.trainable_params: 416
          conv1.non_trainable_params: 0
          conv1.macs: 313600
          conv1.flops: 627200
          conv1.output_shape: [16, 28, 28]
          conv1.rf: 5
          conv1.activation_bytes: 50176
          batchnorm1.params: 64
          batchnorm1.trainable_params: 32
          batchnorm1.non_trainable_params: 32
          maxpool1.output_shape: [16, 14, 14]
          maxpool1.rf: {size: 6, stride: 2, start: -2}
          conv2.rf: [10, 10]
          conv2.macs: "12*12*3*3*16*32"
          linear1.params: "(4608 + 1) * 10"
          linear1.rf: global
          total.params: 51210
          total.trainable_params: 51178
          total.non_trainable_params: 32
          total.macs: 1023232
          total.flops: 2046464
          total.output_shape: [10]
          total.param_bytes: 204840
          total.activation_bytes: 218408
        """)
    assert result.ok
    assert [r.verdict for r in result.results] == ["right"] * 25
    assert all(r.hint is None for r in result.results)
    assert (result.right, result.wrong, result.total, result.score) == (25, 0, 25, 1.0)
    assert result.spec == "small"


def test_expected_is_formatted():
    result = run(SMALL, """\
        answers:
          conv1.params: 1
          maxpool1.output_shape: [1]
          conv2.rf: 1
          linear1.rf: 1
        """)
    assert [r.expected for r in result.results] == [
        "416", "[16, 14, 14]", "size 10, stride 2, start -2", "global"]
    assert not result.ok


# --- hints: parameters ------------------------------------------------------------------------
@pytest.mark.parametrize("quantity, value, fragment", [
    ("conv1.params", 400, "forgot the bias"),
    ("conv1.trainable_params", 400, "forgot the bias"),
    ("linear1.params", 46080, "forgot the bias: one per output feature (+10)"),
    ("total.params", 51210 - 16 - 32 - 10, "forgot the biases: every conv and linear layer"),
    ("batchnorm1.params", 32, "BatchNorm has 2C trainable"),
    ("batchnorm1.trainable_params", 64, "counted BatchNorm as 4C"),
    ("batchnorm1.non_trainable_params", 0, "running mean and variance are non-trainable"),
    ("batchnorm1.non_trainable_params", 64, "non-trainable are only the running mean and variance"),
    ("conv1.non_trainable_params", 416, "no buffers"),
    ("total.params", 51178, "that is the trainable count only"),
    ("total.trainable_params", 51210, "counted BatchNorm as 4C"),
    ("total.params", 51178 - 58, "forgot the biases, and counted BatchNorm as 2C"),
    ("total.param_bytes", 51210, "that is the parameter count: multiply by 4 bytes"),
    ("total.param_bytes", 51178 * 4, "only trainable"),
])
def test_parameter_hints(quantity, value, fragment):
    v, hint = verdict(SMALL, quantity, value)
    assert v == "wrong"
    assert fragment in hint


def test_layer_without_bias():
    v, hint = verdict(NOBIAS, "conv1.params", 8 * 27 + 8)
    assert v == "wrong" and "no bias (bias: false)" in hint
    v, hint = verdict(NOBIAS, "fc.params", 16 * 4 + 4)
    assert v == "wrong" and "no bias" in hint


def test_bias_flag_read_from_the_graph_when_given():
    result = run(NOBIAS, "answers:\n  conv1.params: 224\n  fc.params: 68\n", graph=True)
    assert ["no bias" in r.hint for r in result.results] == [True, True]


def test_parameters_do_not_depend_on_the_batch():
    v, hint = verdict(SMALL, "conv1.params", 416 * 4, batch=4)
    assert v == "wrong" and "do not depend on the batch" in hint


# --- hints: MACs and FLOPs --------------------------------------------------------------------
@pytest.mark.parametrize("quantity, value, batch, fragment", [
    ("conv1.macs", 627200, 1, "that is the FLOP count"),
    ("total.macs", 2046464, 1, "that is the FLOP count"),
    ("conv1.flops", 313600, 1, "that is the MAC count"),
    ("total.flops", '"about 1.02 M"', 1, "that is the MAC count"),
    ("conv1.macs", 313600, 4, "multiply by the batch size 4"),
    ("conv1.flops", 627200, 4, "multiply by the batch size 4"),
    ("conv1.flops", 313600, 4, "MAC count of one example"),
    ("conv1.macs", 313600 + 16 * 28 * 28, 1, "bias additions are not multiply-accumulates"),
    ("conv1.macs", 400, 1, "that is the number of weights"),
    ("conv1.macs", 400 * 24 * 24, 1, "output of [16, 24, 24]: that is the size without padding"),
])
def test_mac_hints(quantity, value, batch, fragment):
    v, hint = verdict(SMALL, quantity, value, batch=batch)
    assert v == "wrong"
    assert fragment in hint


# --- hints: memory ----------------------------------------------------------------------------
@pytest.mark.parametrize("quantity, value, batch, fragment", [
    ("conv1.activation_bytes", 16 * 28 * 28, 1, "number of values: multiply by 4 bytes per float32"),
    ("conv1.activation_bytes", 16 * 28 * 28 * 4, 2, "multiply by the batch size 2"),
    ("conv1.activation_bytes", 16 * 28 * 28, 2, "multiply by the batch (2) and 4 bytes"),
    ("total.activation_bytes", 40, 1, "only the last layer's output"),
])
def test_memory_hints(quantity, value, batch, fragment):
    v, hint = verdict(SMALL, quantity, value, batch=batch)
    assert v == "wrong" and fragment in hint


# --- hints: shapes ----------------------------------------------------------------------------
@pytest.mark.parametrize("quantity, value, fragment", [
    ("conv1.output_shape", "[16, 24, 24]", "without padding ('valid'); this layer pads 2"),
    ("conv1.output_shape", "[16, 24, 28]", "without padding ('valid')"),  # on one axis only
    ("conv2.output_shape", "[32, 14, 14]", "'same' padding"),
    ("conv2.output_shape", "[32, 11, 11]", "off by one"),
    ("maxpool1.output_shape", "[16, 27, 27]", "forgot to divide by the stride 2"),
    ("flatten1.output_shape", "[1, 4608]", "exclude the batch"),
    ("batchnorm1.output_shape", "[28, 28, 16]", "channels first"),
    ("flatten1.output_shape", "[16, 12, 12]", "1 dimension"),
    ("conv2.output_shape", "[32, 9, 9]", "off by -3"),
])
def test_shape_hints(quantity, value, fragment):
    v, hint = verdict(SMALL, quantity, value)
    assert v == "wrong" and fragment in hint


def test_pooling_rounded_up():
    spec = "input: [1, 7, 7]\nlayers:\n  - maxpool: 2\n"
    v, hint = verdict(spec, "maxpool1.output_shape", "[1, 4, 4]")
    assert v == "wrong" and "rounded up" in hint


def test_padding_counted_once():
    spec = "input: [1, 11, 11]\nlayers:\n  - conv: {out: 1, kernel: 5, padding: 2}\n"
    v, hint = verdict(spec, "conv1.output_shape", "[1, 9, 9]")
    assert v == "wrong" and "both sides" in hint


# --- rf ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("quantity, value, expected", [
    ("conv2.rf", "10", "right"), ("conv2.rf", "[10, 10]", "right"), ("conv2.rf", "{size: 10}", "right"),
    ("conv2.rf", "{size: [10, 10], stride: 2, start: [-2, -2]}", "right"),
    ("conv2.rf", "{stride: 2}", "right"), ("conv2.rf", "{start: -2}", "right"),
    ("conv2.rf", "[10, 10, 10]", "wrong"), ("conv2.rf", "{size: 10, stride: 1}", "wrong"),
    ("conv2.rf", "global", "wrong"), ("linear1.rf", "global", "right"), ("flatten1.rf", "Global", "right"),
    ("linear1.rf", "10", "wrong"),
])
def test_rf_forms(quantity, value, expected):
    assert verdict(SMALL, quantity, value)[0] == expected


def test_rf_per_axis():
    spec = "input: [1, 20, 20]\nlayers:\n  - conv: {out: 1, kernel: [3, 5]}\n"
    assert verdict(spec, "conv1.rf", "[3, 5]")[0] == "right"
    assert verdict(spec, "conv1.rf", "[5, 3]")[0] == "wrong"
    assert verdict(spec, "conv1.rf", "3")[0] == "wrong"
    assert verdict(spec, "conv1.rf", "{size: [3, 5], stride: 1, start: 0}")[0] == "right"


def test_rf_fractional_stride():
    spec = "input: [1, 8]\nlayers:\n  - conv_transpose: {out: 1, kernel: 2, stride: 2}\n"
    assert verdict(spec, "conv_transpose1.rf", '{stride: "1/2"}')[0] == "right"
    assert verdict(spec, "conv_transpose1.rf", "{stride: 0.5}")[0] == "right"
    assert verdict(spec, "conv_transpose1.rf", "{stride: 2}")[0] == "wrong"


@pytest.mark.parametrize("quantity, value, fragment", [
    ("conv2.rf", "2", "stride (jump) of the field"),
    ("conv2.rf", "3", "this layer's own window"),
    ("conv2.rf", "6", "field of this layer's input"),
    ("relu2.rf", "8", "forgot to scale by the jump"),
    ("conv2.rf", "{stride: 1}", "this layer's own stride"),
    ("conv1.rf", "{start: 0}", "begins in the padding"),
    ("conv2.rf", "global", "do not see the whole input"),
    ("linear1.rf", "10", "the answer is 'global'"),
])
def test_rf_hints(quantity, value, fragment):
    v, hint = verdict(SMALL, quantity, value)
    assert v == "wrong" and fragment in hint


def test_rf_own_padding_as_start():
    spec = "input: [1, 20, 20]\nlayers:\n  - conv: {out: 1, kernel: 3, padding: 1}\n  - conv: {out: 1, kernel: 3, padding: 1}\n"
    assert verdict(spec, "conv2.rf", "{start: -2}")[0] == "right"
    v, hint = verdict(spec, "conv2.rf", "{start: -1}")
    assert v == "wrong" and "own padding" in hint


def test_rf_not_tracked():
    v, hint = verdict(NOBIAS, "reshape1.rf", "global")
    assert v == "wrong" and "not tracked" in hint
    result = run(NOBIAS, "answers:\n  reshape1.rf: 3\n")
    assert result.results[0].expected == "not tracked"


# --- approximate answers ----------------------------------------------------------------------
@pytest.mark.parametrize("quantity, value, expected", [
    ("total.macs", '"about 1.02 million"', "close"),   # 1,023,232: 0.3 % off
    ("total.macs", '"1.023 M"', "close"),
    ("total.macs", '"~1M"', "wrong"),                 # 2.3 % off
    ("total.flops", '"2.05 G"', "wrong"),             # a thousand times off
    ("total.flops", '"2.05e6"', "close"),
    ("total.flops", "2.05e+6", "close"),
    ("total.params", '"51.2k"', "close"),
    ("total.params", '"51 thousand"', "close"),
    ("total.params", '"about 51210"', "right"),      # approximate, but exactly right
    ("total.params", '"52k"', "wrong"),
    ("conv1.macs", '"0.314 M"', "close"),
    ("conv1.macs", '"0.3 M"', "wrong"),
])
def test_approximate(quantity, value, expected):
    assert verdict(SMALL, quantity, value)[0] == expected


def test_tolerance_is_the_files():
    assert verdict(SMALL, "total.macs", '"~1M"', tolerance=0.05)[0] == "close"
    assert verdict(SMALL, "total.macs", '"~1M"', tolerance="3%")[0] == "close"
    assert verdict(SMALL, "total.params", '"51.2k"', tolerance=0)[0] == "wrong"


def test_close_counts_as_right():
    result = run(SMALL, "answers:\n  total.params: 51.2k\n  conv1.params: 416\n")
    assert [r.verdict for r in result.results] == ["close", "right"]
    assert result.ok and result.right == 2 and result.score == 1.0


def test_exact_numbers_must_be_equal():
    assert verdict(SMALL, "total.params", 51211)[0] == "wrong"
    assert verdict(SMALL, "total.params", '"51,210"')[0] == "right"


# --- blocks and names -------------------------------------------------------------------------
def test_block_instance_sums_its_layers():
    result = run(BLOCKS, """\
        answers:
          stage.1.conv1.params: 148
          stage.1.params: 148
          stage.params: 296
          stage.macs: "2 * 64*9*4*4"
          stage.output_shape: [4, 8, 8]
          stage.rf: 5
          stage.2.rf: 5
        """)
    assert [r.verdict for r in result.results] == ["right"] * 7, result.lines()


def test_unknown_layer_is_an_error_with_did_you_mean():
    with pytest.raises(SpecError) as info:
        run(SMALL, "answers:\n  conv1.params: 416\n  conv_2.params: 4640\n")
    err = info.value
    assert "unknown layer 'conv_2'" in err.message and "did you mean 'conv2'" in err.message
    assert (err.loc.file, err.loc.line, err.loc.col) == ("answers.yaml", 3, 3)


def test_unknown_layer_totals_suggests_total():
    with pytest.raises(SpecError, match="did you mean 'total'"):
        run(SMALL, "answers:\n  totals.params: 1\n")


def test_unknown_block_prefix_did_you_mean():
    with pytest.raises(SpecError, match="did you mean 'stage'"):
        run(BLOCKS, "answers:\n  stages.params: 1\n")


# --- results: JSON, gradebook, text -----------------------------------------------------------
def test_json_layout():
    result = run(SMALL, """\
        answers:
          conv1.params: 400
          total.macs: "about 1.02 M"
          maxpool1.output_shape: [16, 14, 14]
          linear1.rf: global
        """)
    data = result.to_json()
    assert list(data) == ["spec", "answers", "right", "wrong", "score"]
    assert data["spec"] == "small"
    assert data["answers"][0] == {"quantity": "conv1.params", "given": 400, "expected": "416",
                                  "verdict": "wrong", "hint": data["answers"][0]["hint"]}
    assert "forgot the bias" in data["answers"][0]["hint"]
    assert data["answers"][1]["given"] == "about 1.02 M" and data["answers"][1]["verdict"] == "close"
    assert data["answers"][2]["given"] == [16, 14, 14]
    assert data["answers"][3]["expected"] == "global"
    assert (data["right"], data["wrong"], data["score"]) == (3, 1, 0.75)
    assert all(list(a) == ["quantity", "given", "expected", "verdict", "hint"] for a in data["answers"])
    json.dumps(data)  # plain JSON types only


def test_formula_appears_when_filled():
    result = run(SMALL, "answers:\n  conv1.params: 416\n")
    assert result.results[0].formula is None
    result.results[0].formula = "(K1*K2*Cin + 1)*Cout"
    assert result.to_json()["answers"][0]["formula"] == "(K1*K2*Cin + 1)*Cout"


def test_grade_rows_for_csv():
    result = run(SMALL, "answers:\n  conv1.params: 400\n  conv1.macs: 313600\n  total.params: 1\n")
    rows = result.grade_rows("s042")
    assert rows == [["s042", 1, 3, 0.3333, "conv1.params;total.params"]]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(GRADE_HEADER)
    writer.writerows(rows)
    assert out.getvalue().splitlines() == ["student,right,total,score,wrong",
                                           "s042,1,3,0.3333,conv1.params;total.params"]


def test_lines_and_empty_result():
    result = run(SMALL, "answers:\n  conv1.params: 400\n  total.params: 51.2k\n")
    lines = result.lines()
    assert lines[0].startswith("wrong  conv1.params = 400  (expected 416): forgot the bias")
    assert lines[1] == "close  total.params = 51.2k  (exact: 51,210)"  # grouped as analyze writes it
    assert lines[-1] == "score 1/2"
    empty = CheckResult("x")
    assert empty.ok and empty.score == 0.0 and empty.to_json()["answers"] == []


# --- symbolic sizes ---------------------------------------------------------------------------
SYMBOLIC = """\
name: sym
input: [4, H, W]
layers:
  - conv: {out: 4, kernel: 3, padding: 1}
  - {name: pool1, maxpool: 2}
  - {flatten: {}, from: conv1}
  - {name: fc, linear: 10}
"""


def symbolic_report():
    """The Report of SYMBOLIC as archcalc's symbolic analysis gives it, built directly from the
    analysis' own classes (LayerResult, RF, make_totals) with sympy values: sizes are
    Symbol(name, integer=True, positive=True) and floors are sympy's. This lets the symbolic
    checks run whether or not the analysis itself supports symbols."""
    import sympy

    H, W = (sympy.Symbol(n, integer=True, positive=True) for n in "HW")
    h2, w2 = sympy.floor(H / 2), sympy.floor(W / 2)
    rows = [
        LayerResult("conv1", "conv", ("input",), (4, H, W), 148, 0, 144 * H * W,
                    RF((3, 3), (1, 1), (-1, -1)), 16 * H * W),
        LayerResult("pool1", "maxpool", ("conv1",), (4, h2, w2), 0, 0, 0, RF((4, 4), (2, 2), (-1, -1)),
                    16 * h2 * w2),
        LayerResult("flatten1", "flatten", ("conv1",), (4 * H * W,), 0, 0, 0, GLOBAL, 16 * H * W),
        LayerResult("fc", "linear", ("flatten1",), (10,), 40 * H * W + 10, 0, 40 * H * W, GLOBAL, 40),
    ]
    return Report("sym", (4, H, W), 1, "float32", rows, (10,), make_totals(rows, [(4, H, W)], 1, "float32"))


def analysed_symbolic_report():
    try:
        return archcalc.analyze_text(SYMBOLIC)
    except SpecError:
        pytest.skip("symbolic analysis is not available")


@pytest.fixture(params=["built", "analysed"])
def sym_report(request):
    return symbolic_report() if request.param == "built" else analysed_symbolic_report()


def check_sym(report, answers):
    return check(report, parse_answers(textwrap.dedent(answers), "answers.yaml"))


def test_symbolic_equivalent_forms(sym_report):
    result = check_sym(sym_report, """\
        answers:
          fc.params: "4*H*W*10 + 10"
          fc.trainable_params: "10*(4*W*H + 1)"
          fc.macs: "40 * W * H"
          fc.flops: "80*H*W"
          conv1.macs: "(3*3*4)*4*H*W"
          conv1.params: 148
          total.params: "40*H*W + 158"
          total.macs: "4*H*W*(36 + 10)"
          conv1.output_shape: [4, H, W]
          pool1.output_shape: [4, "H//2", "W // 2"]
          flatten1.output_shape: ["4*H*W"]
          pool1.rf: {size: 4, stride: 2, start: -1}
          fc.rf: global
          total.activation_bytes: "32*H*W + 16*(H//2)*(W//2) + 40"
        """)
    assert [r.verdict for r in result.results] == ["right"] * 14, result.lines()


def test_symbolic_floor_identities_sympy_cannot_simplify(sym_report):
    # floor((H - 1)/2) + 1 is not floor(H/2): wrong for even H
    result = check_sym(sym_report, """\
        answers:
          pool1.output_shape: [4, "(H - 1)//2 + 1", "W//2"]
        """)
    assert result.results[0].verdict == "wrong"
    assert "rounded up" in result.results[0].hint


def test_floor_equivalence_decided_at_sample_points():
    import sympy

    H = sympy.Symbol("H", integer=True, positive=True)
    assert values_equal(sympy.floor((H + 1) / 2), sympy.floor((H - 1) / 2) + 1)
    assert not values_equal(sympy.floor(H / 2), sympy.floor((H - 1) / 2) + 1)
    assert values_equal(40 * H + 10, 10 * (4 * H + 1))
    assert not values_equal(40 * H, 40)


@pytest.mark.parametrize("quantity, value, fragment", [
    ("fc.params", '"40*H*W"', "forgot the bias"),
    ("conv1.flops", '"144*H*W"', "that is the MAC count"),
    ("conv1.macs", '"288*H*W"', "that is the FLOP count"),
    ("conv1.output_shape", '[4, "H - 2", "W - 2"]', "without padding ('valid')"),
    ("flatten1.output_shape", '[1, "4*H*W"]', "exclude the batch"),
    ("fc.params", "31370", "depends on H, W"),
    ("fc.params", '"about 31 k"', "depends on H, W"),
    ("pool1.output_shape", "[4, 14, 14]", "depends on H, W"),
    ("fc.params", '"40*X + 10"', "X is not a size symbol of this spec (its symbols: H, W)"),
])
def test_symbolic_hints(sym_report, quantity, value, fragment):
    result = check_sym(sym_report, f"answers:\n  {quantity}: {value}\n")
    (r,) = result.results
    assert r.verdict == "wrong" and fragment in r.hint, r


def test_set_binds_symbols(sym_report):
    result = check_sym(sym_report, """\
        set: {H: 28, W: 28}
        answers:
          fc.params: 31370
          fc.macs: "40*H*W"
          total.macs: "about 144 thousand"
          pool1.output_shape: [4, 14, 14]
          total.params: 31518
        """)
    assert [r.verdict for r in result.results] == ["right", "right", "close", "right", "right"]
    assert result.results[0].expected == "31,370"


def test_partial_set_leaves_a_formula(sym_report):
    result = check_sym(sym_report, """\
        set: {H: 10}
        answers:
          fc.params: "400*W + 10"
          pool1.output_shape: [4, 5, "W//2"]
        """)
    assert [r.verdict for r in result.results] == ["right", "right"]
    assert result.results[0].expected == "400*W + 10"


def test_symbolic_answer_on_a_numeric_spec():
    v, hint = verdict(SMALL, "conv1.macs", '"H*W*400"')
    assert v == "wrong" and "no size symbols" in hint
    # with set, the same formula is a number and right
    assert verdict(SMALL, "conv1.macs", '"H*W*400"', set="{H: 28, W: 28}")[0] == "right"


def test_expected_symbols_with_other_assumptions_are_matched_by_name():
    import sympy

    H = sympy.Symbol("H")  # no assumptions: still the student's H
    rows = [LayerResult("fc", "linear", ("input",), (10,), 10 * H + 10, 0, 10 * H, GLOBAL, 40)]
    report = Report("plain", (H,), 1, "float32", rows, (10,), make_totals(rows, [(H,)], 1, "float32"))
    result = check_sym(report, "answers:\n  fc.params: \"10*(H + 1)\"\n  fc.macs: \"10*H\"\n")
    assert result.ok


def test_memory_units_are_checked():
    # conv7x7 of the README: parameters 49.1 KiB, activations 8 MiB
    spec = "input: [16, 256, 256]\nlayers:\n  - conv: {out: 16, kernel: 7, padding: same}\n  - relu\n"
    result = run(spec, "answers:\n  total.param_bytes: 49.1 KiB\n  total.activation_bytes: 8 MiB\n"
                       "  conv1.activation_bytes: 4 MiB\n  relu1.activation_bytes: 4 MB\n")
    assert [r.verdict for r in result.results] == ["close", "right", "right", "wrong"]


def test_constraints_of_symbols_are_honoured():
    # floor(H/2) is H/2 only when H is even: the spec's `multiple_of` decides
    report = symbolic_report()
    answers = 'answers:\n  pool1.output_shape: [4, "H/2", "W/2"]\n'
    assert check_sym(report, answers).results[0].verdict == "wrong"
    report.constraints = {"H": {"multiple_of": 2}, "W": {"multiple_of": 4, "min": 8}}
    assert check_sym(report, answers).results[0].verdict == "right"
    report.constraints = {"H": {"multiple_of": 2}}
    assert check_sym(report, answers).results[0].verdict == "wrong"  # W may be odd


def test_constraints_from_the_analysis():
    spec = "input: [4, H, W]\nsymbols: {H: {multiple_of: 2}, W: {multiple_of: 2}}\nlayers:\n  - maxpool: 2\n"
    try:
        report = archcalc.analyze_text(spec)
    except SpecError:
        pytest.skip("symbolic analysis with constraints is not available")
    result = check_sym(report, 'answers:\n  maxpool1.output_shape: [4, "H//2", "W/2"]\n')
    assert result.ok, result.lines()
