"""Start-up (issue 14 point 8): a command imports only what it uses, `archcalc analyze SPEC` runs
without typer and prints exactly what typer's command prints, and Ctrl-C while the package
imports is one line. No timing is asserted here: bench/startup.py measures the times."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESNET50 = str(ROOT / "specs" / "zoo" / "resnet50.yaml")
SYMBOLIC = str(ROOT / "specs" / "homework" / "conv_pool_fc.yaml")  # input: [1, H, W]
TYPER_PATH = "import sys\nfrom archcalc.cli import main\nsys.exit(main())\n"  # the entry point before today's
ENTRY = "import sys\nfrom archcalc.__main__ import main\nsys.exit(main())\n"  # pyproject's [project.scripts]


def _run(code: str, args, env=None, stdout=subprocess.PIPE) -> subprocess.CompletedProcess:
    full = {**os.environ, "COLUMNS": "100", **(env or {})}
    return subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, env=full, stdout=stdout,
                          stderr=subprocess.PIPE, text=True, timeout=120)


def _modules_after(args, tmp_path) -> set:
    """The modules imported by the time `archcalc ARGS` ends (written by an atexit function)."""
    out = tmp_path / "modules.json"
    code = ("import atexit, json, sys\n"
            f"atexit.register(lambda: open({str(out)!r}, 'w').write(json.dumps(sorted(sys.modules))))\n" + ENTRY)
    done = _run(code, args)
    assert done.returncode == 0, done.stderr
    return set(json.loads(out.read_text()))


def _under(modules: set, *roots) -> list:
    return sorted(m for m in modules if m.split(".")[0] in roots or m in roots)


@pytest.fixture(scope="module")
def kind_index():
    """The kind index written, as an installed package's first run writes it: without it (a fresh
    clone, a layer module just edited, or every run under PYTHONDONTWRITEBYTECODE=1, which writes
    none) each start imports every kind, and this file run alone failed the kinds' count below."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run([sys.executable, "-c", "import archcalc.layers"], cwd=ROOT, env=env, check=True)
    if not (ROOT / "archcalc/layers/__pycache__/kinds-index.txt").exists():
        pytest.skip("archcalc/layers/__pycache__ cannot be written here: every start imports every kind")


@pytest.mark.parametrize("output", [["--json"], ["-f", "csv"], ["-f", "markdown"]], ids=["json", "csv", "markdown"])
def test_analyze_json_imports_no_typer_rich_sympy_or_torch(output, tmp_path, kind_index):
    modules = _modules_after(["analyze", RESNET50, *output], tmp_path)
    assert _under(modules, "typer", "click", "rich", "sympy", "torch", "numpy") == []
    kinds = {m.rsplit(".", 1)[1] for m in modules if m.startswith("archcalc.layers.")}
    assert kinds == {"base", "conv", "norm", "activation", "maxpool", "merge", "global_pool", "flatten", "linear"}


def test_analyze_json_through_typer_imports_no_rich_sympy_or_torch(tmp_path):
    # an option the fast path leaves to typer: typer runs, but not its rich help machinery
    modules = _modules_after(["analyze", RESNET50, "--json", "--dtype", "float16"], tmp_path)
    assert "typer.main" in modules
    assert _under(modules, "rich", "sympy", "torch", "typer.rich_utils") == []


def test_the_table_imports_no_sympy_or_torch(tmp_path):
    modules = _modules_after(["analyze", RESNET50], tmp_path)
    assert "rich.console" in modules
    assert _under(modules, "sympy", "torch", "typer") == []


def test_help_is_typers(tmp_path):
    assert "typer.main" in _modules_after(["--help"], tmp_path)


# --- the fast path prints what typer's command prints -------------------------------------------------

SAME = [
    ["analyze", RESNET50, "--json"],
    ["analyze", RESNET50],
    ["analyze", "--json", RESNET50, "-d", "2"],
    ["analyze", RESNET50, "--format", "csv"],
    ["analyze", RESNET50, "-f", "markdown", "--depth=1"],
    ["analyze", RESNET50, "--format=json"],
    ["analyze", RESNET50, "--format", "table", "--json"],  # --json wins, as in typer's command
    ["analyze", "zoo:resnet18", "--depth", "1"],
    ["analyze", SYMBOLIC],
    ["analyze", SYMBOLIC, "--json"],
    # mistakes: the fast path prints nothing and typer's command says what it says
    ["analyze", "no/such/spec.yaml", "--json"],
    ["analyze", "zoo:resnet1"],
    ["analyze", RESNET50, "--depth", "0"],
    ["analyze", RESNET50, "--depth", "01"],
    ["analyze", RESNET50, "--format", "xml"],
    ["analyze", RESNET50, "--json", "--json"],
    ["analyze", RESNET50, "-f"],
    ["analyze", RESNET50, "--json=yes"],
    ["analyze", RESNET50, RESNET50],
    ["analyze"],
]


QUICK_FORMS = (0, 1, 10)  # --json, the table, a missing file in the quick run; all with --all


@pytest.mark.parametrize("args", [pytest.param(a, marks=() if i in QUICK_FORMS else pytest.mark.slow)
                                  for i, a in enumerate(SAME)], ids=lambda a: " ".join(Path(x).name for x in a))
def test_the_fast_path_prints_what_typer_prints(args):
    fast, typer_path = _run(ENTRY, args), _run(TYPER_PATH, args)
    assert (fast.returncode, fast.stderr) == (typer_path.returncode, typer_path.stderr)
    assert fast.stdout == typer_path.stdout


@pytest.mark.parametrize("args", SAME[:10], ids=lambda a: " ".join(Path(x).name for x in a))
def test_those_forms_run_without_typer(args, tmp_path):
    # so the comparison above compares the fast path with typer, not typer with itself
    assert "typer" not in _modules_after(args, tmp_path)


def test_a_spec_with_a_mistake_is_said_once(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("input: [3, 32, 32]\nlayers:\n  - conv: {out: 8, kernel: 3}\n  - convv: {out: 8}\n")
    fast, typer_path = _run(ENTRY, ["analyze", str(bad), "--json"]), _run(TYPER_PATH, ["analyze", str(bad), "--json"])
    assert (fast.returncode, fast.stdout, fast.stderr) == (typer_path.returncode, typer_path.stdout, typer_path.stderr)
    assert fast.returncode == 2 and fast.stderr.count("error:") == 1 and ":4:" in fast.stderr, fast.stderr


@pytest.mark.parametrize("args", [["analyze", RESNET50, "--json"], ["analyze", RESNET50]], ids=["json", "table"])
def test_a_closed_pipe_ends_both_quietly_with_exit_1(args):
    results = []
    for code in (ENTRY, TYPER_PATH):
        read, write = os.pipe()
        os.close(read)  # nobody reads: the first write fails with EPIPE
        try:
            results.append(_run(code, args, stdout=write))
        finally:
            os.close(write)
    (fast, typer_path) = results
    assert (fast.returncode, fast.stderr) == (typer_path.returncode, typer_path.stderr) == (1, "")


def test_the_fast_path_leaves_shell_completion_to_typer(tmp_path):
    out = tmp_path / "modules.json"
    code = ("import atexit, json, sys\n"
            f"atexit.register(lambda: open({str(out)!r}, 'w').write(json.dumps(sorted(sys.modules))))\n" + ENTRY)
    _run(code, ["analyze", RESNET50, "--json"], env={"_ARCHCALC_COMPLETE": "bash_complete"})
    assert "typer.main" in json.loads(out.read_text())


@pytest.mark.parametrize("args", [["analyze", RESNET50, "--json"], ["analyze", RESNET50]], ids=["json", "table"])
def test_a_closed_stdout_ends_both_quietly(args):
    # `archcalc analyze SPEC >&-`: Python starts with sys.stdout None; the table was an AttributeError
    # traceback on both paths (render.make_console, the fast path's flush). Now as click.echo: nothing, exit 0.
    def closed_stdout():
        os.close(1)

    results = [subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, stdin=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True, timeout=120, preexec_fn=closed_stdout)
               for code in (ENTRY, TYPER_PATH)]
    assert [(r.returncode, r.stderr) for r in results] == [(0, "")] * 2, results[0].stderr + results[1].stderr


def test_an_ascii_stdout_gets_the_ascii_box_rich_draws():
    # PYTHONIOENCODING=ascii (or a latin-1 terminal): the plain layout drew the heavy-head box, a
    # UnicodeEncodeError traceback on both paths. rich itself draws box.ASCII there: the same lines.
    import io

    from archcalc import api

    report = api.analyze(RESNET50)
    buf = io.TextIOWrapper(io.BytesIO(), encoding="ascii", newline="\n")
    from archcalc import render

    console = render.whole_console_class()(file=buf, width=200, color_system=None)
    plain = render._as_rich
    render._as_rich = lambda *a: None  # rich's own layout: the oracle
    try:
        render.table(report, None, console=console)
    finally:
        render._as_rich = plain
    buf.flush()
    by_rich = buf.buffer.getvalue().decode("ascii")
    assert "| conv1 " in by_rich and "+-" in by_rich
    for code in (ENTRY, TYPER_PATH):
        done = _run(code, ["analyze", RESNET50], env={"PYTHONIOENCODING": "ascii"})
        assert (done.returncode, done.stderr) == (0, ""), done.stderr
        assert done.stdout == by_rich


# --- the table laid out without rich where that is what rich prints ---------------------------------------

def _table(report, width, depth, rich_only, color=False):
    import io

    from archcalc import render

    buf = io.StringIO()
    console = render.whole_console_class()(file=buf, width=width, color_system="standard" if color else None,
                                           force_terminal=color)
    plain = render._as_rich
    if rich_only:
        render._as_rich = lambda *args: None
    try:
        render.table(report, depth, console=console)
    finally:
        render._as_rich = plain
    return buf.getvalue()


BUNDLED = sorted(p for p in (ROOT / "specs").glob("*/*.yaml") if not p.name.endswith((".answers.yaml", ".key.yaml")))
QUICK = ("resnet50", "lenet_first_layer")  # in the quick run; every bundled spec with --all (slow: rich)


@pytest.mark.parametrize("spec", [pytest.param(p, marks=() if p.stem in QUICK else pytest.mark.slow) for p in BUNDLED],
                         ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_the_plain_table_is_what_rich_prints(spec):
    from archcalc import api
    from archcalc import render

    report = api.analyze(spec)
    plain_used = 0
    for width, depth in ((80, None), (200, None), (200, 1)):  # cut, wider than the terminal, folded
        assert _table(report, width, depth, rich_only=False) == _table(report, width, depth, rich_only=True)
        cells = [render._cells(row) for row in render._rows(report, depth)]
        console = render.whole_console_class()(width=width, color_system=None)
        plain_used += render._as_rich(console, report.name, cells) is not None
    if spec.stem in ("resnet50", "resnet18", "lenet_first_layer"):  # the fast layout is taken where it may be
        assert plain_used


def test_rich_lays_out_what_the_plain_table_cannot():
    from archcalc import api
    from archcalc import render

    report = api.analyze(RESNET50)
    cells = [render._cells(row) for row in report.layers]
    assert render._as_rich(render.whole_console_class()(width=200, color_system=None), "resnet50", cells)
    # colour (a terminal), a title wider than the table, a name of two-column characters, too narrow
    assert render._as_rich(render.whole_console_class()(width=200, color_system="standard"), "resnet50", cells) is None
    assert render._as_rich(render.whole_console_class()(width=200, color_system=None), "x" * 150, cells) is None
    wide = [("層1",) + cells[0][1:]] + cells[1:]
    assert render._as_rich(render.whole_console_class()(width=200, color_system=None), "resnet50", wide) is None
    assert render._as_rich(render.whole_console_class()(width=80, color_system=None), "resnet50", cells) is None
    # in colour the table is rich's own (its header bold)
    assert "\x1b[1m" in _table(report, 200, None, rich_only=False, color=True)


# --- Ctrl-C while the package imports -----------------------------------------------------------------

def _ctrl_c_when_imported(target: str, entry: str, args) -> subprocess.CompletedProcess:
    """Run `entry` with SIGINT sent to the process itself just as module `target` starts to import
    (an import hook): Ctrl-C pressed at that moment, every time."""
    hook = ("import os, signal, sys\n"
            "class CtrlC:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            f"        if name == {target!r}:\n"
            "            sys.meta_path.remove(self)\n"
            "            os.kill(os.getpid(), signal.SIGINT)\n"
            "        return None\n"
            "sys.meta_path.insert(0, CtrlC())\n")
    return _run(hook + entry, args)


@pytest.mark.parametrize("target, args", [
    ("yaml", ["analyze", RESNET50, "--json"]),               # the fast path, reading the spec
    ("archcalc.analysis.walk", ["analyze", RESNET50]),
    ("typer", ["analyze", RESNET50, "--dtype", "float16"]),  # typer's path: archcalc.cli importing typer
    ("archcalc.cli", ["--help"]),
])
def test_ctrl_c_while_the_package_imports_is_one_line(target, args):
    done = _ctrl_c_when_imported(target, ENTRY, args)
    assert (done.returncode, done.stderr, done.stdout) == (130, "error: interrupted\n", "")


def test_an_ignored_ctrl_c_stays_ignored():
    # a command started with SIGINT ignored (nohup, `cmd &` in a script) is not stopped by one
    ignored = "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n"
    done = _ctrl_c_when_imported("yaml", ignored + ENTRY, ["analyze", RESNET50, "--json"])
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert json.loads(done.stdout)["totals"]["params"] == 25_610_152


def test_ctrl_c_while_the_package_imports_was_a_traceback_before():
    # the same moment under the entry point of before (archcalc.cli:main): what the test above guards
    done = _ctrl_c_when_imported("typer", TYPER_PATH, ["analyze", RESNET50, "--json"])
    assert done.returncode != 130 and "Traceback" in done.stderr and "KeyboardInterrupt" in done.stderr


def test_an_import_error_without_ctrl_c_is_still_shown():
    hook = ("import sys\n"
            "class Broken:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name == 'yaml':\n"
            "            raise ImportError('a real bug')\n"
            "sys.meta_path.insert(0, Broken())\n")
    done = _run(hook + ENTRY, ["analyze", RESNET50, "--json"])
    assert done.returncode == 1 and "ImportError: a real bug" in done.stderr


def test_the_console_script_is_the_guarded_entry_point():
    text = (ROOT / "pyproject.toml").read_text()
    section = text.split("[project.scripts]", 1)[1].split("\n[", 1)[0]
    assert 'archcalc = "archcalc.__main__:main"' in section
