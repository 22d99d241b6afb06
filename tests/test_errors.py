"""Every class of spec mistake: one line `FILE:LINE:COL: error: ...`, exit code 2, no traceback."""
import pytest
from typer.testing import CliRunner

from archcalc.cli import app

runner = CliRunner()

CASES = {
    "yaml_syntax": ("input: [3, 8, 8]\nlayers:\n  - conv: {out: 4, kernel: 3\n",
                    "4:1", "invalid YAML"),
    "unknown_kind": ("input: [3, 8, 8]\nlayers:\n  - relu\n  - convv: {out: 4, kernel: 3}\n",
                     "4:5", "unknown layer kind 'convv' (did you mean 'conv'?)"),
    "unknown_argument": ("input: [3, 8, 8]\nlayers:\n  - conv: {out: 4, kernal: 3}\n",
                         "3:20", "layer 'conv1': conv has no argument 'kernal' (did you mean 'kernel'?)"),
    "unknown_top_level_key": ("input: [3, 8, 8]\nlayer: [relu]\n",
                              "2:1", "unknown top-level key 'layer' (did you mean 'layers'?)"),
    "missing_argument": ("input: [3, 8, 8]\nlayers:\n  - conv: {out: 4}\n",
                         "3:11", "layer 'conv1': conv needs argument 'kernel'"),
    "ill_typed_argument": ("input: [3, 8, 8]\nlayers:\n  - conv: {out: 4, kernel: 3, bias: 1}\n",
                           "3:37", "conv argument 'bias' must be true or false, got 1"),
    "float_for_integer": ("input: [3, 8, 8]\nlayers:\n  - conv: {out: 4.5, kernel: 3}\n",
                          "3:17", "conv argument 'out' must be an integer >= 1, got 4.5"),
    "bad_choice": ("input: [3, 8, 8]\nlayers:\n  - upsample: {scale: 2, mode: bilinaer}\n",
                   "3:32", "upsample argument 'mode' is 'bilinaer' (did you mean 'bilinear'?)"),
    "non_positive_size": ("input: [3, 8, 8]\nlayers:\n  - conv: {out: 0, kernel: 3}\n",
                          "3:17", "conv argument 'out' must be an integer >= 1, got 0"),
    "non_positive_input": ("input: [3, 0, 8]\nlayers: [relu]\n",
                           "1:12", "input size must be a positive integer, got 0"),
    "kernel_too_large": ("input: [3, 8, 8]\nlayers:\n  - conv: {out: 4, kernel: 5, padding: 1}\n  "
                         "- conv: {out: 4, kernel: 7}\n",
                         "4:28", "layer 'conv2' (conv): kernel 7 is larger than the padded input along H: "
                                 "input 6 + padding 0 = 6"),
    "add_shape_mismatch": ("input: [3, 8, 8]\nlayers:\n  - {name: a, conv: {out: 4, kernel: 3}}\n"
                           "  - {name: b, from: input, conv: {out: 8, kernel: 3}}\n  - {add: {}, from: [a, b]}\n",
                           "5:5", "layer 'add1' (add): add cannot broadcast shapes [4, 6, 6], [8, 6, 6]"),
    "concat_shape_mismatch": ("input: [3, 8, 8]\nlayers:\n  - {name: a, conv: {out: 4, kernel: 3}}\n"
                              "  - {name: b, from: input, conv: {out: 4, kernel: 1}}\n"
                              "  - {concat: 0, from: [a, b]}\n",
                              "5:5", "concat along dim 0 needs equal sizes elsewhere, got [4, 6, 6], [4, 8, 8]"),
    "unknown_from": ("input: [3, 8, 8]\nlayers:\n  - conv: {out: 4, kernel: 3}\n  - {relu: {}, from: cnv1}\n",
                     "4:22", "layer 'relu1': 'from: cnv1' names no earlier layer (did you mean 'conv1'?)"),
    "forward_from": ("input: [3, 8, 8]\nlayers:\n  - {relu: {}, from: later}\n  - {name: later, relu: {}}\n",
                     "3:22", "'from: later' refers forward to a layer defined later (line 4)"),
    "duplicate_name": ("input: [3, 8, 8]\nlayers:\n  - {name: a, relu: {}}\n  - {name: a, relu: {}}\n",
                       "4:12", "duplicate layer name 'a'"),
    "block_recursion": ("input: [3, 8, 8]\nblocks:\n  x: {layers: [y]}\n  y: {layers: [x]}\nlayers: [x]\n",
                        "4:16", "block 'x' uses itself (x -> y -> x)"),
    "absurd_repeat": ("input: [3, 8, 8]\nlayers:\n  - {relu: {}, repeat: 1000000000000}\n",
                      "3:24", "repeat 1,000,000,000,000 is more than the limit of 100,000 copies"),
    "expression_unknown_name": ("input: [3, 8, 8]\nvars: {width: 4}\nlayers:\n  - conv: {out: '2*widht', kernel: 3}\n",
                                "4:17", "unknown name 'widht' in '2*widht' (did you mean 'width'?)"),
    # a width written as a name (the lecture's N_H) that no `symbols:` declares: the error says how
    "undeclared_width_symbol": ("input: [8]\nlayers:\n  - linear: N_H\n  - relu\n  - linear: 1\n",
                                "3:13", "layer 'linear1': linear argument 'out': unknown name 'N_H' in 'N_H'; a "
                                        "size given as a name must be declared: `symbols: {N_H: {}}` for a "
                                        "symbolic size (a formula in N_H), or `vars: {N_H: 64}` for a number"),
    "expression_not_allowed": ("input: [3, 8, 8]\nlayers:\n  - conv: {out: '__import__(\"os\").getpid()', kernel: 3}\n",
                               "3:17", "only min(...), max(...), floor(x), ceil(x) and round(x[, ndigits]) may be called"),
    "python_tag": ("input: !!python/object/apply:os.system ['echo pwned']\nlayers: [relu]\n",
                   "1:8", "YAML tag 'tag:yaml.org,2002:python/object/apply:os.system' is not allowed"),
    "merge_without_inputs": ("input: [3, 8, 8]\nlayers:\n  - relu\n  - add\n",
                             "4:5", "add merges two or more inputs; name them with 'from: [a, b]'"),
    "wrong_rank": ("input: [10]\nlayers:\n  - conv: {out: 4, kernel: 3}\n",
                   "3:5", "conv needs an input shaped [C, L] or [C, H, W] or [C, D, H, W], got [10]"),
    "per_axis_length": ("input: [3, 8, 8]\nlayers:\n  - conv: {out: 4, kernel: [3, 3, 3]}\n",
                        "3:28", "'kernel' has 3 values but the input has 2 spatial axes"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_error_is_one_located_line_with_exit_code_2(name, tmp_path):
    text, where, message = CASES[name]
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    result = runner.invoke(app, ["analyze", str(path)])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"{path}:{where}: error: "), lines[0]
    assert message in lines[0]
    assert "Traceback" not in result.output
    assert result.stdout == ""


def test_billion_laughs_fails_small(tmp_path):
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 10)]
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\ninput: [3]\nlayers: [relu]\n")
    result = runner.invoke(app, ["analyze", str(path)])
    assert result.exit_code == 2
    assert "aliases expand to more than 100,000 values" in result.stderr


def test_missing_file_is_one_line(tmp_path):
    result = runner.invoke(app, ["analyze", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: {tmp_path / 'nope.yaml'}: no such file"


def test_bad_input_override_is_one_line(tmp_path):
    path = tmp_path / "ok.yaml"
    path.write_text("input: [3, 8, 8]\nlayers: [relu]\n")
    result = runner.invoke(app, ["analyze", str(path), "--input", "3,zero,8"])
    assert result.exit_code == 2
    assert "--input '3,zero,8': expected positive sizes" in result.stderr


def test_spec_that_is_not_a_mapping(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- relu\n")
    result = runner.invoke(app, ["analyze", str(path)])
    assert result.exit_code == 2 and f"{path}:1:1: error: a spec is a YAML mapping" in result.stderr


def test_nested_repeats_fail_fast_on_total_size(tmp_path):
    # 100,000 copies of a block of 1,000 layers: refused after expanding one copy.
    path = tmp_path / "huge.yaml"
    path.write_text("input: [3]\nblocks:\n  b:\n    layers:\n      - {relu: {}, repeat: 1000}\n"
                    "layers:\n  - {b: {}, repeat: 100000}\n")
    result = runner.invoke(app, ["analyze", str(path)])
    assert result.exit_code == 2
    assert f"{path}:7:21: error: repeat 100,000 of 1,000 layer(s) would make the network 100,000,000 layers" \
        in result.stderr
    assert "more than the limit of 1,000,000" in result.stderr


@pytest.mark.parametrize("entry, message", [
    ("conv: {out: 4, kernel: 3, padding: full}",
     "conv argument 'padding' is 'full'; expected a number >= 0, a list of them, 'same' or 'valid'"),
    ("conv: {out: 4, kernel: 3, padding: sam}", "is 'sam' (did you mean 'same'?)"),
    ("leaky_relu: {slope: 0.2}", "leaky_relu has no argument 'slope' (did you mean 'negative_slope'?)"),
])
def test_helpful_messages(entry, message, tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text(f"input: [3, 8, 8]\nlayers:\n  - {entry}\n")
    result = runner.invoke(app, ["analyze", str(path)])
    assert result.exit_code == 2 and message in result.stderr, result.stderr


def test_an_automatic_name_taken_by_an_explicit_one(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text("input: [3, 8, 8]\nlayers:\n  - {name: relu2, relu: {}}\n  - relu\n")
    result = runner.invoke(app, ["analyze", str(path)])
    assert result.exit_code == 2
    assert result.stderr.strip() == (f"{path}:4:5: error: this entry's automatic name 'relu2' is already "
                                     "taken (first at line 3); give one of them another name")


def test_the_suggested_symbols_declaration_works(tmp_path):
    # doing what the undeclared-width error says gives the formula: linear 8 -> N_H has 8*N_H + N_H
    # parameters, linear N_H -> 1 has N_H + 1: 10*N_H + 1 in all (by hand)
    import json

    path = tmp_path / "mlp.yaml"
    path.write_text("input: [8]\nsymbols: {N_H: {}}\nlayers:\n  - linear: N_H\n  - relu\n  - linear: 1\n")
    result = runner.invoke(app, ["analyze", str(path), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["totals"]["params"] == "10*N_H + 1"
    # a name close to a var's gets "did you mean", not the symbols advice
    path.write_text("input: [8]\nvars: {hidden: 4}\nlayers:\n  - linear: hiden\n")
    result = runner.invoke(app, ["analyze", str(path)])
    assert result.exit_code == 2 and "(did you mean 'hidden'?)" in result.stderr
    assert "symbols:" not in result.stderr
