"""The console entry point (`archcalc`, pyproject's [project.scripts]) and `python -m archcalc`.

It imports the command line inside a Ctrl-C guard: Ctrl-C while typer, PyYAML and archcalc's own
modules load (the first tenth of a second) is one line `error: interrupted`, exit 130, as it is
once a command runs (archcalc.cli watches Ctrl-C from there on), not a traceback from the middle of
an import. Only `sys` and `signal` are imported before the guard is set (archcalc/__init__.py
imports nothing of its own up front)."""
import sys

INTERRUPTED = 130  # 128 + SIGINT, as shells report a program stopped by Ctrl-C


def _interrupted():
    sys.stderr.write("error: interrupted\n")
    sys.stderr.flush()
    sys.exit(INTERRUPTED)


def main():
    import signal

    presses = []

    def on_ctrl_c(signum, frame):
        presses.append(signum)
        if len(presses) == 1:  # later presses while it stops: stopping already
            raise KeyboardInterrupt

    previous = None
    try:
        if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:  # ignored (nohup, cmd &): left so
            previous = signal.signal(signal.SIGINT, on_ctrl_c)
    except ValueError:  # not the main thread: no handler can be set there
        previous = None
    try:
        done = fast_analyze(sys.argv[1:])
        if done is not None:
            _exit_now(done)
        import gc

        gc.enable()  # fast_analyze may have paused it before it handed the command on
        from archcalc import cli
        cli._CONSOLE = True  # after reporting a Ctrl-C, later presses are ignored down to the exit
        cli_main = cli.main
    except SystemExit:
        raise
    except BaseException:
        # A KeyboardInterrupt, or what a module half-made by it raised next (an ImportError, a
        # RecursionError); without a Ctrl-C it is a real error and is shown as Python shows it.
        if not presses:
            raise
        _interrupted()
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    if presses:  # the import machinery swallowed the KeyboardInterrupt and went on
        _interrupted()
    try:
        return cli_main()
    except KeyboardInterrupt:  # before the command's own watch begins (typer building the command)
        _interrupted()


# --- `archcalc analyze SPEC [--json]` without typer ------------------------------------------------
# Importing typer (and click inside it) costs 0.7x Python's own start, and with building its
# commands typer's path takes 1.5x Python's start longer than this one (bench/startup.py): more
# than the whole budget of `analyze --json` above Python's start (2x `python -c pass`, issue 14
# point 8). So the one most common form of the command, a spec file
# analysed with its own settings, written as a table, JSON, CSV or Markdown, is run here without
# them. Only an argv that typer would read without complaint, as exactly these settings, is taken:
# `analyze`, one SPEC (a file or a bundled name; not `-`, not an import source), and at most once
# each `--json`, `--format/-f FORMAT` (`--format=FORMAT`), `--depth/-d N` (a plain positive
# number). Anything else, and any spec with a mistake, goes to archcalc.cli as before, which then
# reads, checks and reports it as it always has (nothing is printed here before the report is
# whole). tests/test_startup.py runs each form both ways and compares stdout, stderr and exit code.

FORMATS = ("table", "json", "csv", "markdown")  # archcalc.cli.Format
ANALYZE_DEFAULTS = dict(batch=1, dtype="float32", input_shape=None, bindings={}, assume_divisible=False)


def _read_analyze(args):
    """(spec, format, depth) of an argv this fast path takes (see above), else None."""
    if not args or args[0] != "analyze":
        return None
    spec, seen = None, {}
    rest = iter(args[1:])
    for arg in rest:
        name, eq, value = arg.partition("=") if arg.startswith("--") else (arg, "", "")
        if arg == "--json":
            key, value = "json", True
        elif name in ("--format", "-f", "--depth", "-d"):
            key = "depth" if name in ("--depth", "-d") else "format"
            if not eq:
                value = next(rest, None)
                if value is None:
                    return None
        elif spec is None and arg and not arg.startswith("-"):
            spec = arg
            continue
        else:
            return None
        if key in seen:
            return None
        seen[key] = value
    fmt = "json" if seen.get("json") else seen.get("format", "table")
    depth = seen.get("depth")
    if spec is None or fmt not in FORMATS:
        return None
    if depth is not None:
        if not (depth.isascii() and depth.isdigit() and depth[0] != "0" and len(depth) <= 9):
            return None
        depth = int(depth)
    return spec, fmt, depth


def fast_analyze(args):
    """Run `archcalc analyze` for `args` (sys.argv[1:]) without typer and return its exit code
    (0), or return None having printed nothing: not a form taken here, or the spec (or its
    analysis) fails, so archcalc.cli runs the command and says what it says."""
    import os

    if any(k.startswith("_") and k.endswith("_COMPLETE") for k in os.environ):  # shell completion asks
        return None
    if sys.stdout is None:  # started with standard output closed (`>&-`): typer's command writes nowhere
        return None
    read = _read_analyze(args)
    if read is None:
        return None
    spec, fmt, depth = read
    from pathlib import Path

    from archcalc.importers import is_import_source

    if is_import_source(spec):  # an import may take long and print its own warnings: once, there
        return None
    # The cyclic garbage collector is paused for the rest of this short process (main() resumes it
    # if typer's path runs after all): reading and analysing a spec leaves no cycles to collect,
    # while the collector walked every live object again and again. resnet50: 2 ms of 60; a
    # 100,000-layer chain: 9.3 s -> 5.2 s, the same peak memory (305 MB).
    import gc

    gc.disable()
    from archcalc import api, render

    try:
        report = api.analyze(Path(spec), **ANALYZE_DEFAULTS)
        text = None if fmt == "table" else render.report_text(report, fmt, depth)
    except Exception:
        return None
    # click.echo (archcalc.cli's output) removes escape sequences outside a terminal and replaces
    # what a misconfigured stream cannot encode: such output is left to it.
    encoding = (getattr(sys.stdout, "encoding", None) or "").lower().replace("-", "").replace("_", "")
    if text is not None and ("\x1b" in text or encoding != "utf8"):
        return None
    try:
        if text is None:
            render.table(report, depth, latex=False)
        else:
            sys.stdout.write(text)
        sys.stdout.flush()
    except OSError as exc:  # a closed pipe (| head): exit 1, quietly, as click does
        import errno

        if exc.errno != errno.EPIPE:
            raise
        sys.stdout = _Quiet(sys.stdout)
        sys.stderr = _Quiet(sys.stderr)
        sys.exit(1)
    return 0


def _exit_now(code: int):
    """End the process once the report is written, as Python's exit would, less its tear-down:
    freeing every module and object one by one took longer than the analysis (12 ms of CPU for
    resnet50 here, a fifth of the command). The streams are flushed and atexit's functions run
    first, so nothing that ending normally does is lost: the same output and exit code."""
    import atexit
    import os

    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe or stream: as at Python's own exit, nothing to add
            pass
    atexit._run_exitfuncs()
    os._exit(code)


class _Quiet:
    """A stream whose flush ignores a closed pipe (click's PacifyFlushWrapper), so Python's own
    flush at exit prints nothing either."""

    def __init__(self, stream):
        self.stream = stream

    def flush(self):
        try:
            self.stream.flush()
        except OSError as exc:
            import errno

            if exc.errno != errno.EPIPE:
                raise

    def __getattr__(self, name):
        return getattr(self.stream, name)


if __name__ == "__main__":
    sys.exit(main())
