"""Hostile specs (issue 10): each is refused with exit code 2 and one line `FILE:LINE:COL: error:`
pointing at what was written, no traceback, in bounded time and memory; or, where the spec is
fine however odd, analysed exactly. Plain cases run in-process; hangs, bombs and file-system
cases run as a user's shell runs them (tests/hostile.py: a subprocess under a memory cap and a
hang timeout)."""
import json
import os

import pytest
from typer.testing import CliRunner

from archcalc.cli import app
from archcalc.layers import KINDS
from archcalc.layers.base import arity_bounds
from tests.hostile import assert_refused, run_cli

runner = CliRunner()


def refused(tmp_path, text, where, contains, args=()):
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    result = runner.invoke(app, ["analyze", str(path), *args])
    assert "Traceback" not in result.output and result.exception is None or isinstance(result.exception, SystemExit)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"{path}:{where}: error: "), lines[0]
    assert contains in lines[0], lines[0]
    assert all(ch >= " " for ch in lines[0]), repr(lines[0])
    return lines[0]


def analysed(tmp_path, text, args=()):
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    result = runner.invoke(app, ["analyze", str(path), "--json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


# --- NaN, inf and magnitudes, in every float argument of every kind ---------------------------

FLOAT_ARGS = [(kind, arg.name) for kind, layer in sorted(KINDS.items()) for arg in layer.args
              if arg.type in ("float", "floats")]
NOT_FINITE = [(".nan", "not a finite number"), ("-.inf", "not a finite number"), (".Inf", "not a finite number"),
              ("1.0e+400", "larger than the limit of 10^30"), ("1.0e-400", "too small to represent"),
              ("'1e400'", "larger than the limit of 1e30"), ("'1e308 * 10'", "larger than the limit of 1e30"),
              ("'1e-300 * 1e-300'", "too small to represent"), ("'0.5 ** (10**29)'", "too small to represent")]


def test_every_float_argument_is_covered():
    assert len(FLOAT_ARGS) >= 20 and ("dropout", "p") in FLOAT_ARGS and ("upsample", "scale") in FLOAT_ARGS


@pytest.mark.parametrize("kind, arg", FLOAT_ARGS, ids=[f"{k}.{a}" for k, a in FLOAT_ARGS])
def test_nan_and_inf_are_refused_in_every_float_argument(kind, arg, tmp_path):
    layer = KINDS[kind]
    required = "".join(f", {a.name}: 1" for a in layer.args if a.required and a.name != arg)
    inputs = ", from: [input, input]" if arity_bounds(layer.arity)[0] >= 2 else ""  # merges, cross_attention
    for value, message in NOT_FINITE:
        # refused where it is written, before the layer's shapes are looked at
        entry = f"  - {{{kind}: {{{arg}: "
        text = f"input: [4, 8, 8]\nlayers:\n{entry}{value}{required}}}{inputs}}}\n"
        refused(tmp_path, text, f"3:{len(entry) + 1}", message)


@pytest.mark.parametrize("where, text", [
    ("1:12", "input: [3, .nan]\nlayers: [relu]\n"),
    ("1:11", "vars: {a: .inf}\ninput: [3]\nlayers: [relu]\n"),
    ("3:17", "input: [3, 8]\nblocks:\n  b: {args: {p: .nan}, layers: [{dropout: p}]}\nlayers: [b]\n"),
    ("3:13", "input: [3, 8]\nlayers:\n  - {b: {p: .nan}}\n"),
])
def test_nan_is_refused_wherever_a_number_is_written(where, text, tmp_path):
    refused(tmp_path, text, where, "not a finite number")


@pytest.mark.parametrize("value, message", [
    ("9" * 5000, "(5,000 characters) is larger than the limit of 10^30"),  # past Python's 4,300 digits
    ("1" + "0" * 30 + "1", "larger than the limit of 10^30"),
    ("-" + "9" * 4400, "larger than the limit of 10^30"),
    ("'" + "9" * 400 + "'", "the number 999999999999... (400 characters) in"),  # in an expression
    ("'10**31'", "too large (over 1e30)"),
    ("'(1/2) ** (10**29)'", "too small or too finely divided"),
    ("'(1/3) ** 200'", "too small or too finely divided"),
    ("'(-8) ** (1/3)'", "not a real number"),
])
def test_huge_literals_and_exponents_are_refused_where_written(value, message, tmp_path):
    refused(tmp_path, f"input: [3, 8, 8]\nlayers:\n  - conv: {{kernel: 3, out: {value}}}\n", "3:28", message)


# --- YAML 1.1 surprises: read as written, or refused --------------------------------------------

@pytest.mark.parametrize("value, message", [
    ("010", "a whole number is written without leading zeros (7, not 07)"),  # YAML 1.1: octal 8
    ("0010", "leading zeros"),
    ("1:30", "is not a number here (YAML 1.1 reads it in base 60)"),  # YAML 1.1: 90
    ("1:30.5", "base 60"),
    ("1_", "cannot parse expression '1_'"),  # YAML 1.1: 1
    ("yes", "unknown name 'yes'"),  # a word, not True
])
def test_yaml11_numbers_are_not_silently_read_as_other_numbers(value, message, tmp_path):
    refused(tmp_path, f"input: [3, 8, 8]\nlayers:\n  - conv: {{kernel: 3, out: {value}}}\n", "3:28", message)


@pytest.mark.parametrize("value", ["0x10", "0b10000", "0o20", "1_6", "16", "+16", "'0x10'"])
def test_unambiguous_bases_are_read_as_python_reads_them(value, tmp_path):
    report = analysed(tmp_path, f"input: [3, 8, 8]\nlayers:\n  - conv: {{kernel: 1, out: {value}}}\n")
    assert report["layers"][0]["output_shape"] == [16, 8, 8]


@pytest.mark.parametrize("word", ["yes", "no", "on", "off", "Yes", "ON"])
def test_yes_no_on_off_are_words_not_booleans(word, tmp_path):
    refused(tmp_path, f"input: [3, 8, 8]\nlayers:\n  - conv: {{out: 4, kernel: 3, bias: {word}}}\n", "3:37",
            f"must be true or false, got '{word}' (yes/no/on/off are read as words, as in YAML 1.2)")
    # and where a word is expected they are words: a spec named "no", a block argument "off"
    report = analysed(tmp_path, f"name: {word}\ndescription: 1:30\ninput: [3, 8, 8]\nlayers: [relu]\n")
    assert report["name"] == word


def test_true_and_false_in_any_case_are_booleans(tmp_path):
    report = analysed(tmp_path, "input: [3, 8, 8]\nlayers:\n  - conv: {out: 4, kernel: 3, bias: FALSE}\n"
                                "  - conv: {out: 4, kernel: 3, bias: True}\n")
    assert [row["params"] for row in report["layers"]] == [3 * 9 * 4, 4 * 9 * 4 + 4]


# --- nesting ------------------------------------------------------------------------------------

@pytest.mark.parametrize("opener, closer", [("[", "]"), ("{a: ", "}")])
@pytest.mark.parametrize("depth", [330, 100_000])
def test_deep_nesting_is_refused_at_the_101st_level(opener, closer, depth, tmp_path):
    text = "input: [3]\nlayers: [relu]\nvars: {x: " + opener * depth + closer * depth + "}\n"
    # the document's mapping and `vars:` are levels 1 and 2: the 99th opener is level 101
    col = len("vars: {x: ") + 98 * len(opener) + 1
    refused(tmp_path, text, f"3:{col}", "lists and mappings are nested more than 100 deep")


def test_nesting_100_deep_is_read(tmp_path):
    # 98 lists inside `vars:` and the document: read, then refused as a var that is not a number
    text = "input: [3]\nlayers: [relu]\nvars: {x: " + "[" * 98 + "1" + "]" * 98 + "}\n"
    refused(tmp_path, text, "3:11", "variable 'x' must be a number or an expression")


@pytest.mark.parametrize("expression, message", [
    ("(" * 150 + "3" + ")" * 150, None),  # fine: 3
    ("(" * 201 + "3" + ")" * 201, "too many nested parentheses"),  # Python's parser stops at 200
    ("-" * 300 + "3", "nested more than 200 deep"),
])
def test_deeply_nested_expressions(expression, message, tmp_path):
    text = f"input: [3, 8, 8]\nlayers:\n  - conv: {{kernel: 1, out: '{expression}'}}\n"
    if message is None:
        assert analysed(tmp_path, text)["layers"][0]["output_shape"] == [3, 8, 8]
    else:
        refused(tmp_path, text, "3:28", message)


def test_blocks_nested_past_the_limit_are_refused(tmp_path):
    lines = ["input: [3]", "blocks:", "  b0: {layers: [relu]}"]
    lines += [f"  b{i}: {{layers: [b{i - 1}]}}" for i in range(1, 60)]
    lines += ["layers: [b59]"]
    # b59 .. b10 are 50 instances inside one another: b10 cannot place b9 (line 13)
    refused(tmp_path, "\n".join(lines) + "\n", "13:18", "blocks are nested more than 50 deep")


@pytest.mark.parametrize("text, where, message", [
    ("a: &x [1, *x]\ninput: [3]\nlayers: [relu]\n", "1:11", "recursive aliases are not allowed"),
    ("a: *x\ninput: [3]\nlayers: [relu]\n", "1:4", "alias '*x' names no anchor"),
    ("a: &x 1\nb: &x 2\ninput: [3]\nlayers: [relu]\n", "2:4", "anchor '&x' is defined twice"),
    ("input: [3]\nlayers: [relu]\n---\ninput: [3]\n", "3:1", "expected a single YAML document"),
    ("input: [3]\nlayers: [relu]\nname: a\x00b\n", "3:8", "the character '\\x00' is not allowed"),
])
def test_yaml_structure_mistakes(text, where, message, tmp_path):
    refused(tmp_path, text, where, message)


# --- symbol constraints -------------------------------------------------------------------------

@pytest.mark.parametrize("rules, message", [
    ("{min: 10, max: 5}", "symbol 'H': min 10 is larger than max 5"),
    ("{multiple_of: 8, min: 9, max: 15}", "no multiple of 8 lies between min 9 and max 15"),
    ("{multiple_of: 32, max: 16}", "no multiple of 32 lies between min 1 and max 16"),
])
def test_contradictory_symbol_constraints(rules, message, tmp_path):
    line = f"symbols: {{H: {rules}}}"
    where = f"2:{line.index('max: ') + len('max: ') + 1}"  # at the max
    refused(tmp_path, f"input: [3, H, 8]\n{line}\nlayers: [relu]\n", where, message)


def test_a_number_given_to_a_symbol_keeps_its_constraints(tmp_path):
    text = "input: [3, H, 8]\nsymbols: {H: {multiple_of: 4, max: 64}}\nlayers: [relu]\n"
    refused(tmp_path, text, "2:28", "H = 30 breaks the constraint 'multiple_of: 4' of symbol 'H'", ["--set", "H=30"])
    refused(tmp_path, text, "2:36", "H = 68 breaks the constraint 'max: 64'", ["--set", "H=68"])
    assert analysed(tmp_path, text, ["--set", "H=32"])["totals"]["output_shape"] == [3, 32, 8]


# --- control characters in names: refused; messages quoting them stay one line -------------------

@pytest.mark.parametrize("char", ["\\n", "\\t", "\\0", "\\e", "\\x7f", "\\u202e", "\\u2028", "\\x85"])
def test_control_characters_in_the_name_are_refused(char, tmp_path):
    refused(tmp_path, f'name: "net{char}x"\ninput: [3]\nlayers: [relu]\n', "1:7",
            "'name' holds the control character")


def test_a_description_may_have_lines_but_no_other_control_characters(tmp_path):
    assert analysed(tmp_path, "description: |\n  two\n  \tlines\ninput: [3]\nlayers: [relu]\n")["name"] == "spec"
    refused(tmp_path, 'description: "red \\e[31m"\ninput: [3]\nlayers: [relu]\n', "1:14",
            "'description' holds the control character '\\x1b'")
    refused(tmp_path, 'input: [3]\nblocks:\n  b: {description: "\\0", layers: [relu]}\nlayers: [b]\n', "3:20",
            "the description of block 'b' holds the control character '\\x00'")


@pytest.mark.parametrize("text, where, message", [
    ('"lay\\ners": [relu]\ninput: [3]\nlayers: [relu]\n', "1:1", "unknown top-level key 'lay\\ners'"),
    ('input: [3]\nlayers:\n  - {"re\\nlu": {}}\n', "3:6", "unknown layer kind 're\\nlu'"),
    ('input: [3, 8]\nlayers:\n  - conv: {out: 4, "ker\\rnel": 3}\n', "3:20", "conv has no argument 'ker\\rnel'"),
    ('input: [3]\nlayers:\n  - {relu: {}, from: "in\\nput"}\n', "3:22", "got 'in\\nput'"),
    ('input: [3]\nlayers:\n  - {name: "a\\nb", relu: {}}\n', "3:12", "layer name 'a\\nb' must be a word"),
    ('input: [3]\nvars: {"w\\x1b": 3}\nlayers: [relu]\n', "2:8", "variable name 'w\\x1b' must be a word"),
    ('input: [3]\nblocks: {"b\\n": {layers: [relu]}}\nlayers: [relu]\n', "2:10", "block name 'b\\n' must be a word"),
    ('input: [3, H]\nsymbols: {"H\\t": {}}\nlayers: [relu]\n', "2:11", "symbol name 'H\\t' must be a word"),
    ('input: [3]\nlayers:\n  - {relu: {}, relu: {}}\n', "3:16", "duplicate key 'relu'"),
    ('input: [3]\na\x01: 1\nlayers: [relu]\n', "2:2", "the character '\\x01' is not allowed"),
])
def test_messages_quoting_bad_names_stay_one_line(text, where, message, tmp_path):
    refused(tmp_path, text, where, message)


# --- size first: refused by counting, before anything big is built ------------------------------

def test_a_block_fan_out_is_refused_before_it_is_unrolled(tmp_path):
    # 12 blocks, each repeating the one before 10 times: 10^11 layers in 39 lines
    lines = ["input: [3, 8, 8]", "blocks:", "  b0:", "    layers: [relu]"]
    for i in range(1, 12):
        lines += [f"  b{i}:", "    args: {n: 10}", "    layers:", f"      - {{b{i - 1}: {{}}, repeat: n}}"]
    lines += ["layers:", "  - {b11: {n: 9}, repeat: 2}"]
    path = tmp_path / "fan.yaml"
    path.write_text("\n".join(lines) + "\n")
    run = run_cli(["analyze", path], timeout=30)
    assert_refused(run, where=f"{path}:{len(lines)}:27",
                   contains="each of the 2 copies of this entry expands to more than 1,000,000 layers, the limit")


def test_block_arguments_that_change_the_size_are_counted(tmp_path):
    # b2 is 20 n + 1 layers: 61 with n = 3, 999,981 with n = 49,999 (and 61 before it)
    text = ("input: [3, 8, 8]\nblocks:\n  b1:\n    args: {n: 1}\n    layers: [{relu: {}, repeat: n}]\n"
            "  b2:\n    args: {n: 1}\n    layers:\n      - {b1: {n: n}, repeat: 20}\n      - relu\n"
            "layers:\n  - b2: {n: 3}\n  - b2: {n: 49999}\n")
    refused(tmp_path, text, "13:5", "this entry expands to 999,981 layers, which would make the network "
                                    "1,000,042 layers, more than the limit of 1,000,000")
    assert len(analysed(tmp_path, text.replace("49999", "3"))["layers"]) == 122


@pytest.mark.slow
def test_a_million_layers_written_out_are_refused_bounded(tmp_path):
    path = tmp_path / "long.yaml"
    path.write_text("input: [3]\nlayers:\n" + "- relu\n" * 1_000_001)
    run = run_cli(["analyze", path], timeout=120)
    assert_refused(run, where=f"{path}:1000003:3", contains="the spec expands to more than 1,000,000 layers")


def test_too_many_yaml_values_are_refused(tmp_path, monkeypatch):
    from archcalc.reader import yaml_source

    monkeypatch.setattr(yaml_source, "MAX_VALUES", 1000)
    # the document, input, [3], 3, layers and the list are 6 values: relu 995 (line 997) is the 1,001st
    refused(tmp_path, "input: [3]\nlayers:\n" + "- relu\n" * 1000, "997:3",
            "the document holds more than 1,000 values")


# --- files: size and kind checked before reading ------------------------------------------------

def test_a_file_over_the_size_limit_is_refused_unread(tmp_path):
    path = tmp_path / "huge.yaml"
    with open(path, "wb") as handle:  # sparse: 17 MiB of nothing, written in no time
        handle.truncate(17 * 2**20)
    run = run_cli(["analyze", path], timeout=30)
    assert_refused(run, located=False, contains=f"{path}: the spec file is larger than the limit of 16,777,216 bytes")


@pytest.mark.parametrize("kind", ["device", "fifo", "link to device"])
def test_devices_and_fifos_are_refused_without_blocking(kind, tmp_path):
    path = tmp_path / "spec.yaml"
    if kind == "fifo":
        os.mkfifo(path)  # no writer: reading it would block forever
    elif kind == "device":
        path = "/dev/zero"
    else:
        path.symlink_to("/dev/zero")
    run = run_cli(["analyze", path], timeout=30)
    line = assert_refused(run, located=False, contains=f"{path}: is ")
    assert "not a regular file" in line and ("a FIFO" in line if kind == "fifo" else "a character device" in line)


def test_text_that_is_not_utf8_is_one_line(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"name: caf\xe9\ninput: [3]\nlayers: [relu]\n")
    result = runner.invoke(app, ["analyze", str(path)])
    assert result.exit_code == 2
    assert result.stderr.strip() == f"{path}:1:10: error: the file is not UTF-8 text: byte 0xe9 cannot be read"


@pytest.mark.parametrize("text, where, message", [
    ("input: [3]\nlayers:\n  - {name: " + "a" * 101 + ", relu: {}}\n", "3:12", "is longer than 100 characters"),
    ("name: " + "n" * 201 + "\ninput: [3]\nlayers: [relu]\n", "1:7", "'name' is longer than 200 characters"),
    ("input: [3]\nlayers: [" + "x" * 100_000 + "]\n", "2:10", "unknown layer kind 'xxxxxxxx"),
    ("input: [3, 8]\nlayers:\n  - upsample: {scale: 2, mode: " + "m" * 100_000 + "}\n", "3:32", "is 'mmmm"),
])
def test_long_words_are_quoted_short(text, where, message, tmp_path):
    line = refused(tmp_path, text, where, message)
    assert len(line) < len(str(tmp_path)) + 300  # quoted values are cut at 60 characters


def test_symbolic_sizes_are_analysed_at_homework_scale(tmp_path):
    # sympy costs about a millisecond a layer: 100,000 symbolic layers would take minutes
    text = "input: [1, H]\nlayers:\n  - {conv: {out: 1, kernel: 3, padding: 1}, repeat: 99999}\n"
    refused(tmp_path, text, "3:53", "would make the network 99,999 layers, more than the limit of 5,000 with "
                                    "symbolic sizes (H); give them numbers (--set H=28)")
    report = analysed(tmp_path, text.replace("99999", "5000"), ["--set", "H=8"])
    assert len(report["layers"]) == 5000 and report["totals"]["params"] == 5000 * 4


def test_a_path_with_a_newline_is_quoted_on_one_line(tmp_path):
    path = tmp_path / "two\nlines.yaml"
    result = runner.invoke(app, ["analyze", str(path)])
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: {str(path)!r}: no such file"
