"""A seeded mutation fuzzer: hostile variants of the bundled specs and answer keys, and the
guarantee each must keep.

Every mutant is one of the bundled files with one to three mutations, at the text level (a number
or a word replaced by a hostile value, a line deleted, duplicated or re-indented, a stray character,
a cut) or at the document level (a value replaced, a key deleted, a scalar wrapped in a list). Each
runs through `archcalc analyze --json`, and some through `explain`, `memory` or `check`, in this
process. The guarantee (issue 10): the command either succeeds (exit 0, or 1 for `check` with wrong
answers) with valid output, or refuses with exit 2 and one line `FILE:LINE:COL: error: ...`; never
a traceback, never another exit code, never past the time limit.

    python tests/spec_fuzz.py --count 5000 --seed 1      # a long hunt; prints the figures
    python tests/spec_fuzz.py --count 300 --json         # what tests/test_fuzz_specs.py runs
    python tests/spec_fuzz.py --verify --count 1000      # accepted mutants built and measured in PyTorch
    python tests/spec_fuzz.py --configs --count 2000     # mutants of a `train --config` file

Run it in its own process (the test does, under an address-space limit): a mutant that exhausts
memory must not take the test runner with it.
"""
from __future__ import annotations

import argparse
import json
import random
import re
import resource
import signal
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SPECS = sorted(p for p in (ROOT / "specs").rglob("*.yaml") if not p.name.endswith((".answers.yaml", ".key.yaml")))
ANSWERS = sorted((ROOT / "specs").rglob("*.answers.yaml"))
LOCATED = re.compile(r"^.+:\d+:\d+: error: \S")
OPTION_ERROR = re.compile(r"^error: --[a-z-]+\b")  # a command-line value: there is no file to point at
TIME_LIMIT_S = 20  # per mutant; the slowest bundled spec analyses in well under a second

# Values a careless or hostile writer puts where a number was.
HOSTILE_NUMBERS = [
    "0", "-1", "-7", "1.5", "0.0", "1e400", "-1e400", ".nan", ".inf", "-.inf", "1e-320", "1000000000000",
    "'2**64'", "'2**63'", "'(1/2)**(10**29)'", "'10**10**10'", "'9'*400", "010", "0o17", "0x10", "0b101",
    "1_000", "1:30", "190:20:30", "null", "[]", "{}", "'a'", "true", "no", "'1/0'", "'-(-(-(-1)))'",
    "9" * 5000, "'" + "(" * 200 + "1" + ")" * 200 + "'", "[" * 330 + "1" + "]" * 330, "1e308", "2147483648",
    "9223372036854775808", "'min()'", "'max(1, 2, 3)'", "'H'", "'T*2'", "\"\\0\"", "'\\x1b[31m'",
]
# Words put where a word was: kinds, keys, and strings no name should hold.
HOSTILE_WORDS = [
    "conv", "linear", "relu", "add", "concat", "upsample", "attention", "embedding", "flatten", "lstm",
    "input", "from", "repeat", "name", "layers", "blocks", "vars", "symbols", "min", "max",
    "'a\\nb'", "\"a\\x00b\"", "\"\\x1b[2J\"", "'../../etc/passwd'", "'/tmp/x'", "\"\\u2028\"",
    "'|<b>x</b>|'", "'`x`'", "'\"\"\"'", "'a' * 3", "''", "'é'", "'  '", "'#'", "'&a'", "'*a'",
]
STRAY = list(":[]{},-#&*!|>'\"%@` \t\n\\") + ["\x00", "\x1b", "\u2028", "\ufeff", "<<: *a\n", "&a ", "*a"]
NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?![\w.])")
WORD = re.compile(r"(?<![\w'\"])[A-Za-z_]\w*(?![\w'\"])")


# --- mutations -------------------------------------------------------------------------------------
def _replace_match(rng, text, pattern, choices):
    matches = list(pattern.finditer(text))
    if not matches:
        return text
    m = rng.choice(matches)
    return text[:m.start()] + rng.choice(choices) + text[m.end():]


def _lines(rng, text, op):
    lines = text.split("\n")
    if len(lines) < 2:
        return text
    i = rng.randrange(len(lines))
    if op == "delete":
        del lines[i]
    elif op == "duplicate":
        lines.insert(i, lines[i])
    elif op == "swap" and i + 1 < len(lines):
        lines[i], lines[i + 1] = lines[i + 1], lines[i]
    elif op == "indent":
        lines[i] = "  " + lines[i]
    elif op == "dedent":
        lines[i] = lines[i][2:] if lines[i].startswith("  ") else lines[i]
    return "\n".join(lines)


def _stray(rng, text):
    i = rng.randrange(len(text) + 1)
    return text[:i] + rng.choice(STRAY) + text[i:]


def _cut(rng, text):
    return text[:rng.randrange(len(text) + 1)]


def _document(rng, text):
    """Change the parsed document, then write it back (valid YAML more often than text edits)."""
    try:
        doc = yaml.safe_load(text)
    except Exception:  # noqa: BLE001 - PyYAML's own limits (5000-digit ints, deep nesting): no edit
        return text
    if not isinstance(doc, (dict, list)):
        return text
    holders = []

    def walk(node):
        if isinstance(node, dict):
            holders.extend((node, k) for k in node)
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            holders.extend((node, i) for i in range(len(node)))
            for v in node:
                walk(v)

    walk(doc)
    if not holders:
        return text
    node, key = rng.choice(holders)
    op = rng.choice(["value", "value", "delete", "wrap", "empty", "repeat", "huge_list"])
    if op == "value":
        node[key] = _value(rng.choice(HOSTILE_NUMBERS) if rng.random() < 0.7 else rng.choice(HOSTILE_WORDS))
    elif op == "delete":
        del node[key]
    elif op == "wrap":
        node[key] = [node[key]]
    elif op == "empty":
        node[key] = {} if isinstance(node[key], dict) else [] if isinstance(node[key], list) else None
    elif op == "repeat" and isinstance(node[key], dict):
        node[key]["repeat"] = rng.choice([0, 2, 1000, 99999, 100001, "'10**6'"])
    elif op == "huge_list" and isinstance(node[key], list):
        node[key] = node[key] * rng.choice([2, 50, 2000])
    try:
        return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=1 << 16)
    except (RecursionError, ValueError):  # a 330-deep list, a 5000-digit int: keep the text edit
        return text


def _value(text: str):
    try:
        return yaml.safe_load(text)
    except Exception:  # noqa: BLE001 - not YAML, or past PyYAML's limits: put the text itself
        return text


MUTATIONS = {
    "number": lambda rng, t: _replace_match(rng, t, NUMBER, HOSTILE_NUMBERS),
    "word": lambda rng, t: _replace_match(rng, t, WORD, HOSTILE_WORDS),
    "delete_line": lambda rng, t: _lines(rng, t, "delete"),
    "duplicate_line": lambda rng, t: _lines(rng, t, "duplicate"),
    "swap_lines": lambda rng, t: _lines(rng, t, "swap"),
    "indent": lambda rng, t: _lines(rng, t, "indent"),
    "dedent": lambda rng, t: _lines(rng, t, "dedent"),
    "stray": _stray,
    "cut": _cut,
    "document": _document,
}


def mutate(rng: random.Random, text: str) -> tuple[str, list[str]]:
    names = []
    for _ in range(rng.choice([1, 1, 2, 3])):
        name = rng.choice(list(MUTATIONS))
        text = MUTATIONS[name](rng, text)
        names.append(name)
    return text, names


# --- running one mutant ----------------------------------------------------------------------------
class Hang(BaseException):
    """Raised by the alarm; a BaseException so that no `except Exception` in the code swallows it."""


def _alarm(signum, frame):
    raise Hang()


# Command-line values a user can mistype: each is put beside a mutant now and then.
HOSTILE_OPTIONS = [
    ["--input", "1,\u00b2,8"], ["--input", "3," + "9" * 5000], ["--input", "0,8,8"], ["--input", "3,-8,8"],
    ["--input", "3,100000,100000"], ["--input", ""], ["--input", "3,H,W"], ["--input", "[3, 8, 8]"],
    ["--set", "H=0"], ["--set", "H=" + "9" * 5000], ["--set", "H=\u0663"], ["--set", "=4"], ["--set", "H"],
    ["--set", "nosuch=4"], ["--batch", "0"], ["--batch", "99999999999999999999"], ["--depth", "0"],
]


def _command(rng, path: Path, answers: Path | None) -> list[str]:
    if answers is not None:
        return ["check", str(path), str(answers), "--json"]
    args = rng.choices([["analyze", str(path), "--json"], ["explain", str(path)],
                        ["memory", str(path), "--json"], ["analyze", str(path), "-f", "markdown"]],
                       weights=[6, 2, 1, 1])[0]
    if rng.random() < 0.1:
        option = rng.choice(HOSTILE_OPTIONS)
        if option[0] != "--depth" or args[0] == "analyze":
            args = args + [option[0], option[1].encode().decode("unicode_escape")]
    return args


def judge(result, args) -> str | None:
    """None when the run kept the guarantee; else what went wrong."""
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        return f"traceback: {type(result.exception).__name__}: {str(result.exception)[:300]}"
    ok_codes = (0, 1) if args[0] == "check" else (0,)
    if result.exit_code in ok_codes:
        if "--json" in args:
            try:
                json.loads(result.stdout, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
            except ValueError as exc:
                return f"exit {result.exit_code} but the JSON does not parse: {exc}"
        return None
    if result.exit_code != 2:
        return f"exit {result.exit_code}: {result.stderr.strip()[-300:]}"
    lines = result.stderr.strip().splitlines()
    if len(lines) != 1:
        return f"{len(lines)} lines on stderr: {result.stderr[:300]!r}"
    if any(ch < " " and ch != "\t" for ch in lines[0]):
        return f"control character in the message: {lines[0][:300]!r}"
    if not LOCATED.match(lines[0]) and not OPTION_ERROR.match(lines[0]):
        return f"not located: {lines[0][:300]}"
    return None


def run(count: int, seed: int, time_limit: float = TIME_LIMIT_S, keep: int = 20) -> dict:
    from typer.testing import CliRunner

    from archcalc.cli import app

    runner = CliRunner()
    rng = random.Random(seed)
    sources = [(p, p.read_text(encoding="utf-8")) for p in SPECS]
    keys = {p: p.read_text(encoding="utf-8") for p in ANSWERS}
    outcomes, mutations, failures = Counter(), Counter(), []
    slowest, slowest_text = (0.0, None), ""
    signal.signal(signal.SIGALRM, _alarm)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for index in range(count):
            answers_case = keys and rng.random() < 0.15
            if answers_case:
                key_path = rng.choice(ANSWERS)
                spec_path = key_path.with_name(key_path.name.replace(".answers.yaml", ".yaml"))
                text, names = mutate(rng, keys[key_path])
                target = Path(tmp) / f"m{index}.answers.yaml"
                spec_file, answers_file = spec_path, target
            else:
                spec_path, original = rng.choice(sources)
                text, names = mutate(rng, original)
                target = Path(tmp) / f"m{index}.yaml"
                spec_file, answers_file = target, None
            target.write_text(text, encoding="utf-8", errors="surrogatepass")
            args = _command(rng, spec_file, answers_file)
            mutations.update(names)
            t0 = time.perf_counter()
            signal.setitimer(signal.ITIMER_REAL, time_limit)
            try:
                result = runner.invoke(app, args, catch_exceptions=True)
                problem = judge(result, args)
                outcome = "refused" if result.exit_code == 2 else "accepted"
            except Hang:
                problem, outcome = f"ran past {time_limit} s", "hang"
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            elapsed = time.perf_counter() - t0
            if elapsed > slowest[0]:
                slowest = (elapsed, f"{spec_path.relative_to(ROOT)} {names} {args[0]}")
                slowest_text = text[:2000]
            outcomes["failed" if problem else outcome] += 1
            if problem and len(failures) < keep:
                failures.append({"index": index, "source": str((key_path if answers_case else spec_path)
                                                               .relative_to(ROOT)),
                                 "mutations": names, "command": args[0], "problem": problem,
                                 "text": text if len(text) < 4000 else text[:4000] + "..."})
            target.unlink()
    return {"count": count, "seed": seed, "seconds": round(time.perf_counter() - start, 2),
            "outcomes": dict(outcomes), "mutations": dict(mutations),
            "slowest_s": round(slowest[0], 3), "slowest": slowest[1], "slowest_text": slowest_text,
            "failures": failures}


# A run config (`archcalc train --config`), mutated like the specs. Reading and checking it is all
# that is exercised (TrainConfig.from_sources(...).checked()): training itself is covered elsewhere.
RUN_CONFIG = """\
# a run of the lecture's digits network
spec: specs/lecture/digits_cnn.yaml
data: digits
task: classify
epochs: 5
batch_size: 64
lr: 0.001
optimizer: sgd
momentum: 0.9
weight_decay: 0.0005
l2_from: 2
schedule: cosine
warmup: 1
grad_clip: 1.0
shift: 2
val_fraction: 0.15
test_fraction: 0.15
seed: 3
sizes: {H: 8}
input: [1, 8, 8]
"""


def run_configs(count: int, seed: int, keep: int = 20) -> dict:
    from archcalc.errors import SpecError
    from archcalc.torch.train import TrainConfig

    rng = random.Random(seed)
    outcomes, failures = Counter(), []
    start = time.perf_counter()
    signal.signal(signal.SIGALRM, _alarm)
    with tempfile.TemporaryDirectory() as tmp:
        for index in range(count):
            text, names = mutate(rng, RUN_CONFIG)
            path = Path(tmp) / f"c{index}.yaml"
            path.write_text(text, encoding="utf-8", errors="surrogatepass")
            problem = None
            signal.setitimer(signal.ITIMER_REAL, TIME_LIMIT_S)
            try:
                TrainConfig.from_sources(path)
                outcome = "accepted"
            except SpecError as exc:
                outcome, line = "refused", str(exc)
                if "\n" in line or any(ch < " " and ch != "\t" for ch in line):
                    problem = f"not one clean line: {line[:300]!r}"
                elif not LOCATED.match(line) and not line.startswith(f"error: {path}"):
                    problem = f"not located: {line[:300]}"
            except Hang:
                outcome, problem = "hang", f"ran past {TIME_LIMIT_S} s"
            except Exception as exc:  # noqa: BLE001 - what the guarantee forbids
                outcome, problem = "traceback", f"traceback: {type(exc).__name__}: {str(exc)[:300]}"
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            outcomes["failed" if problem else outcome] += 1
            if problem and len(failures) < keep:
                failures.append({"index": index, "source": "RUN_CONFIG", "mutations": names,
                                 "command": "train --config", "problem": problem, "text": text})
    return {"count": count, "seed": seed, "seconds": round(time.perf_counter() - start, 2),
            "outcomes": dict(outcomes), "failures": failures}


# Small numeric specs whose mutants are also built in PyTorch (`--verify`): an accepted mutant must
# measure there exactly as analysed (a silent wrong figure is the worst failure of all).
VERIFY_SPECS = [p for p in SPECS if p.parent.name in ("lecture", "sequence") or p.name == "resnet18.yaml"]
VERIFY_LIMITS = {"macs": 10**9, "params": 2 * 10**7}


def run_verify(count: int, seed: int, keep: int = 20) -> dict:
    from typer.testing import CliRunner

    from archcalc.cli import app

    runner = CliRunner()
    rng = random.Random(seed)
    sources = [(p, p.read_text(encoding="utf-8")) for p in VERIFY_SPECS]
    outcomes, failures = Counter(), []
    start = time.perf_counter()
    signal.signal(signal.SIGALRM, _alarm)
    with tempfile.TemporaryDirectory() as tmp:
        for index in range(count):
            spec_path, original = rng.choice(sources)
            text, names = mutate(rng, original)
            target = Path(tmp) / f"v{index}.yaml"
            target.write_text(text, encoding="utf-8", errors="surrogatepass")
            problem, outcome = None, "refused"
            signal.setitimer(signal.ITIMER_REAL, 3 * TIME_LIMIT_S)
            try:
                analysed = runner.invoke(app, ["analyze", str(target), "--json"], catch_exceptions=True)
                problem = judge(analysed, ["analyze", "--json"])
                if problem is None and analysed.exit_code == 0:
                    totals = json.loads(analysed.stdout)["totals"]
                    small = all(isinstance(totals.get(k), int) and totals[k] <= v for k, v in VERIFY_LIMITS.items())
                    outcome = "analysed (too large to build)"
                    if small:
                        result = runner.invoke(app, ["verify", str(target)], catch_exceptions=True)
                        outcome = {0: "verified", 2: "refused by verify"}.get(result.exit_code, "mismatch")
                        if result.exit_code == 1:
                            problem = "verify disagrees with analyze:\n" + result.stdout[-2500:]
                        else:
                            problem = judge(result, ["verify"])
            except Hang:
                problem, outcome = f"ran past {3 * TIME_LIMIT_S} s", "hang"
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            outcomes["failed" if problem else outcome] += 1
            if problem and len(failures) < keep:
                failures.append({"index": index, "source": str(spec_path.relative_to(ROOT)), "mutations": names,
                                 "command": "verify", "problem": problem, "text": text[:4000]})
            target.unlink()
    return {"count": count, "seed": seed, "seconds": round(time.perf_counter() - start, 2),
            "outcomes": dict(outcomes), "failures": failures}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--memory-mb", type=int, default=2048, help="address-space limit of this process")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--verify", action="store_true", help="build accepted mutants of the small specs "
                        "in PyTorch: `verify` must agree with `analyze`; imports torch")
    parser.add_argument("--configs", action="store_true", help="mutate a run config (`train --config`) "
                        "instead of the specs; imports torch")
    options = parser.parse_args(argv)
    cap = options.memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    summary = (run_configs if options.configs else run_verify if options.verify else run)(options.count,
                                                                                         options.seed)
    if options.json:
        print(json.dumps(summary))
    else:
        print(f"{summary['count']} mutants (seed {summary['seed']}) in {summary['seconds']} s: "
              f"{summary['outcomes']}" + (f"; slowest {summary['slowest_s']} s ({summary['slowest']})"
                                          if "slowest" in summary else ""))
        for failure in summary["failures"]:
            print(f"--- #{failure['index']} {failure['source']} {failure['mutations']} "
                  f"{failure['command']}: {failure['problem']}")
    return 1 if summary["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
