"""The `archcalc` command line: parse options, call the library, render. Nothing else lives here."""
from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Optional

import typer
from typer.core import TyperGroup

try:  # typer >= 0.28 carries its own copy of click, whose exceptions are not click's
    from typer._click import exceptions as _usage
except ImportError:  # pragma: no cover - older typer raises click's own
    from click import exceptions as _usage

from archcalc.analysis.memory import DEFAULT_UTILIZATION, MAX_PEAK_TFLOPS, MIN_PEAK_TFLOPS, MIN_UTILIZATION
from archcalc.analysis.report import DTYPE_BYTES
from archcalc.errors import SpecError, one_line
from archcalc.importers import SOURCES as IMPORT_SOURCES
from archcalc.reader.cli_text import parse_bindings, parse_input, shown as _shown


class _OneLineErrors(TyperGroup):
    """Usage mistakes (an option value that is not a number, out of range, a missing argument) as
    one line `error: --option: ...` with exit code 2, like every other mistake; typer's default is
    a framed box of several lines."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for command in (self, *self.commands.values()):  # help: paragraphs that rich wraps to the terminal
            command.help = _paragraphs(command.help)
            for param in command.params:
                if getattr(param, "help", None):
                    param.help = _paragraphs(param.help)

    def invoke(self, ctx):
        # typer turns a KeyboardInterrupt into a silent exit 130; a Ctrl-C that reaches here (a second
        # press while train saves, or where no command watches) is said in one line instead.
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            ignore_ctrl_c()
            typer.echo("error: interrupted", err=True)
            raise typer.Exit(130) from None

    def main(self, *args, standalone_mode: bool = True, **kwargs):
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        previous = _watch_ctrl_c()
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except _NO_ARGS as exc:  # `archcalc` alone: the help, as before
            typer.echo(exc.ctx.get_help())
            sys.exit(exc.exit_code)
        except _usage.ClickException as exc:
            typer.echo(_usage_line(exc), err=True)
            sys.exit(exc.exit_code)
        except typer.Abort:
            typer.echo("error: interrupted" if _INTERRUPTED else "error: aborted", err=True)
            sys.exit(130 if _INTERRUPTED else 1)
        except SystemExit:
            raise
        except KeyboardInterrupt:
            # Ctrl-C pressed again while train saved after the first (train's own handler raised it),
            # or anywhere a command does not watch: one line, and later presses change nothing.
            ignore_ctrl_c()
            typer.echo("error: interrupted", err=True)
            sys.exit(130)
        except BaseException:
            # Ctrl-C in the middle of an import (numpy, torch) leaves a half-made module: what fails next
            # (a RecursionError, an ImportError) is the interruption, not a bug to show as a traceback.
            if not _INTERRUPTED:
                raise
            ignore_ctrl_c()
            typer.echo("error: interrupted", err=True)
            sys.exit(130)
        finally:
            if previous is not None and not (_CTRL_C_IGNORED and _CONSOLE):
                import signal

                # put back for a caller in this process (tests, a notebook); the console program
                # keeps ignoring presses after reporting one, down to its exit
                signal.signal(signal.SIGINT, previous)
        sys.exit(code or 0)


_INTERRUPTED: list = []  # a Ctrl-C (SIGINT) reached this process while a command ran


def _watch_ctrl_c():
    """Ctrl-C raises KeyboardInterrupt as Python's own handler does, and is remembered (_INTERRUPTED);
    returns the handler to put back (None off the main thread, where no handler can be set)."""
    import signal
    import threading

    _INTERRUPTED.clear()  # a command of its own (app() called again in one process: tests, notebooks)
    _CTRL_C_IGNORED.clear()
    if threading.current_thread() is not threading.main_thread():
        return None

    def on_ctrl_c(signum, frame):
        _INTERRUPTED.append(signum)
        raise KeyboardInterrupt

    return signal.signal(signal.SIGINT, on_ctrl_c)


def ignore_ctrl_c() -> None:
    """Once an interruption is being reported, further Ctrl-C presses are ignored until the command
    returns (main puts the handler back): a third press must not turn the one line into a traceback
    or kill the process while it writes its checkpoint and message."""
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        _CTRL_C_IGNORED.append(True)


_CTRL_C_IGNORED: list = []  # ignore_ctrl_c() ran in this command
_CONSOLE = False  # the `archcalc` program itself (archcalc/__main__.py sets it), not a caller in-process

_NO_ARGS = getattr(_usage, "NoArgsIsHelpError", ())


def _usage_line(exc) -> str:
    param = getattr(exc, "param", None)
    message = exc.format_message()
    if isinstance(exc, _usage.BadParameter) and not isinstance(exc, _usage.MissingParameter) and param is not None:
        opts = [o for o in getattr(param, "opts", ()) if o.startswith("--")]
        message = f"{opts[0] if opts else param.human_readable_name}: {exc.message}"
        import re

        choices = [str(getattr(c, "value", c)) for c in getattr(param.type, "choices", ())]
        given = re.match(r"^'([^'\\]*)' is not one of ", str(exc.message))
        if choices and given and opts:  # a typed choice, worded as train's settings are (with a did-you-mean)
            from archcalc.errors import did_you_mean

            value = given.group(1)
            message = f"{opts[0]} '{value}' is not one of {', '.join(choices)}{did_you_mean(value, choices)}"
    elif isinstance(exc, _usage.MissingParameter):
        message = " ".join(message.split())  # click lays the choices out on lines of their own
    if len(message) > MAX_MESSAGE:  # a 5000-digit value is quoted in click's message
        message = message[:MAX_MESSAGE - 20] + "..." + message[-12:]
    return "error: " + one_line(message)


MAX_MESSAGE = 300


def _paragraphs(text):
    """A docstring's paragraphs, each on one line: rich wraps them to the terminal's width (a line
    break of the source, kept, shows as a line cut mid-sentence). Blank lines still part paragraphs;
    a paragraph that begins with click's \\b marker keeps its lines."""
    if not text:
        return text
    import inspect

    parts = inspect.cleandoc(text).split("\n\n")
    return "\n\n".join(p if p.startswith("\b") else " ".join(p.split()) for p in parts)


#: The value spellings PyTorch users write for the same element type: `--dtype fp16` is
#: `--dtype float16` (every choice option reads its value through this, so completion offers the
#: torch names and the short ones are accepted too).
DTYPE_SPELLINGS = {"fp64": "float64", "fp32": "float32", "fp16": "float16", "bf16": "bfloat16", "fp8": "float8"}


def _same_value(token: str) -> str:
    return DTYPE_SPELLINGS.get(token, token)


app = typer.Typer(
    help="Exact shapes, parameters, MACs and receptive fields of neural networks written as YAML specs.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    cls=_OneLineErrors,
    context_settings={"token_normalize_func": _same_value},
)

CONVENTIONS = (
    "Conventions: MACs count the multiply-accumulates of conv, conv_transpose and linear "
    "(bias adds, normalisation, activations and pooling count zero); FLOPs = 2 x MACs, equal to "
    "torch.utils.flop_counter.FlopCounterMode's total. params = trainable + non-trainable; BatchNorm "
    "has 2C trainable and 2C non-trainable (running statistics). Receptive fields: size /stride per "
    "spatial axis, 'global' once every output sees the whole input."
)


Dtype = Enum("Dtype", {name: name for name in DTYPE_BYTES}, type=str)


class Assume(str, Enum):
    divisible = "divisible"


# Arguments shared by several commands.
SET = typer.Option(None, "--set", "-s", help="Give a size symbol (or a var) a number: --set H=28 "
                   "(repeatable).", show_default=False)
ASSUME = typer.Option(None, "--assume", help="divisible: take every size symbol as a multiple of the "
                      "network's total stride along its axis, so floors simplify: `archcalc analyze "
                      "homework:written_assignment_1 --assume divisible` gives params 40*(H - 4)*(W - 4) + 426, "
                      "not 160*floor((H - 4)/2)*floor((W - 4)/2) + 426.", show_default=False)
SPEC = typer.Argument(..., help="The YAML spec file ('-' reads it from stdin), or a bundled one by name "
                                 "(zoo:resnet18; archcalc examples lists them).", show_default=False)
INPUT = typer.Option(None, "--input", "-i",
                     help="Override the spec's input shape, e.g. 3,64,64 (batch excluded); inputs by "
                          "name: 'features=80,3000;ids=448' (a shape alone is the first input).")


MAX_BATCH = 10**18  # keeps every figure times the batch within a float's range for time estimates


# One name per concept across commands, the one PyTorch users write (DataLoader's batch_size,
# torch.float16, an output file -o/--output). An earlier spelling stays, hidden from --help, and
# says on stderr what it is now called (_renamed): nothing a user wrote breaks.
def _batch_size(help: str):
    return typer.Option(1, "--batch-size", "-b", min=1, max=MAX_BATCH, help=help)


OLD_BATCH = typer.Option(None, "--batch", hidden=True, min=1, max=MAX_BATCH, show_default=False)


def _renamed(value, old_value, old: str, new: str, default=None, note: bool = True):
    """The value of a setting given by its old, hidden spelling `old` (now `new`), with a note
    (`note=False`: an alias kept silently, train's `--out` for `--output`, written in every run script)."""
    if old_value is None:
        return value
    if note:
        typer.echo(f"note: {old} is now called {new} ({old} still works)", err=True)
    if value != default and value != old_value:
        _fail(SpecError(f"{old} and {new} are one setting, given two values: give {new} only"))
    return old_value


def _json(data) -> str:
    """Every JSON document archcalc prints: each top-level object (each item of a list) begins with
    "version", the archcalc that wrote it (the layout changes only with the version)."""
    import json

    return json.dumps(_versioned(data), indent=1, default=str)  # a YAML date a student wrote: text


def _versioned(data):
    from archcalc import __version__

    if isinstance(data, list):
        return [_versioned(item) for item in data]
    if isinstance(data, dict):
        return {"version": __version__, **{k: v for k, v in data.items() if k != "version"}}
    return data


QUIET = typer.Option(False, "--quiet", "-q", help="Print only errors and the final figures (or the JSON): no "
                     "per-layer table, no progress, no notes.")


class Format(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"
    markdown = "markdown"


def _fail(exc: SpecError) -> None:
    typer.echo(exc.cli_line(), err=True)
    raise typer.Exit(2)


SPEC_OR_SOURCE = typer.Argument(..., help="The YAML spec file ('-' reads it from stdin), a bundled one by name "
                                "(zoo:resnet18), or a model to import: " + IMPORT_SOURCES + ".",
                                show_default=False)


@app.command(name="import")
def import_cmd(
    source: str = typer.Argument(..., help="What to import: " + IMPORT_SOURCES + ".", show_default=False),
    input_shape: Optional[str] = typer.Option(
        None, "--input", "-i", help="Modules and ONNX files: one example's shape, batch excluded (3,224,224; "
        "3,H,W for a symbolic spec from a module); ONNX files need it only for dynamic sizes, several inputs "
        "by name: 'ids=128;mask=128'. Hugging Face "
        "configs: the sequence length T (default: min(max positions, 2048))."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write the spec here instead of stdout."),
) -> None:
    """Write a spec for a model that already exists: a PyTorch module, a Hugging Face config or an
    ONNX file (docs/import.md). Its figures equal the source's; what archcalc cannot represent is
    refused with its name (exit 2). Configs and ONNX files need no torch."""
    from archcalc.importers import import_source

    try:
        if source == "-":  # a module, a config folder, an ONNX file with its weights: files, never a stream
            raise SpecError("import -: a model to import is read from its file, not stdin; give FILE.onnx, a "
                            "config.json (or its folder), FILE.py:NAME or torchvision:NAME ('-' as a spec: "
                            "archcalc analyze -)")
        if output is not None:
            _output_mode(output, "--output")
        text = import_source(source, input_shape)
    except SpecError as exc:
        _fail(exc)
    except Exception as exc:  # the user's own module code failing: one line, never a traceback
        message = str(exc).strip().splitlines()
        _fail(SpecError(f"importing {_shown(source)} failed: {type(exc).__name__}: "
                        f"{message[0][:MAX_MESSAGE] if message else ''}"))
    if output is None:
        typer.echo(text, nl=False)
    else:
        _write_text(output, text, "--output")
        typer.echo(one_line(f"wrote {output}"), err=True)


@app.command(epilog=CONVENTIONS)
def analyze(
    spec: Path = SPEC_OR_SOURCE,
    format: Format = typer.Option(Format.table, "--format", "-f", help="Output format."),
    as_json: bool = typer.Option(False, "--json", help="Shorthand for --format json."),
    batch: int = _batch_size("Batch size (scales MACs and activations)."),
    old_batch: Optional[int] = OLD_BATCH,
    input_shape: Optional[str] = INPUT,
    depth: Optional[int] = typer.Option(
        None, "--depth", "-d", min=1, help="Fold layers deeper than this many dotted name parts into one row."),
    dtype: Dtype = typer.Option("float32", "--dtype", help="Element type for memory figures."),
    bindings: Optional[list[str]] = SET,
    assume: Optional[Assume] = ASSUME,
    latex: bool = typer.Option(False, "--latex", help="Write formulas (symbolic sizes) as LaTeX."),
    memory: bool = typer.Option(False, "--memory", help="Also print the memory and cost plan (Adam, no "
                                "checkpointing; `archcalc memory` has every option). Table or JSON."),
) -> None:
    """Analyse SPEC: per-layer output shape, parameters, MACs and receptive field, with totals.
    Sizes written as names (input: [1, H, W]) give exact formulas."""
    from archcalc import api, render

    fmt = Format.json if as_json else format
    batch = _renamed(batch, old_batch, "--batch", "--batch-size", 1)
    plan = None
    try:
        shape = parse_input(input_shape) if input_shape is not None else None
        if memory:
            if fmt not in (Format.table, Format.json):
                raise SpecError("--memory works with --format table or json")
            report, plan = _plan(spec, shape, bindings, batch, dtype)
        else:
            report = api.analyze(spec, batch=batch, dtype=Dtype(dtype).value, input_shape=shape,
                                 bindings=parse_bindings(bindings), assume_divisible=assume is Assume.divisible)
    except SpecError as exc:
        _fail(exc)
    if fmt is Format.table:
        render.table(report, depth, latex=latex)
        if plan is not None:
            _print_memory(plan)
    elif fmt is Format.json:
        text = render.json_text(report, depth)  # "version" first (Report.to_json)
        if plan is not None:
            import json

            memory_json = {k: v for k, v in plan.to_json().items() if k != "version"}  # the document's is enough
            text = text[:-2] + ',\n  "memory": ' + json.dumps(memory_json) + "\n}"
        typer.echo(text)
    else:
        typer.echo(render.report_text(report, fmt.value, depth, latex=latex), nl=False)


Optimizer = Enum("Optimizer", {name: name for name in ("sgd", "momentum", "adam", "adamw")}, type=str)
Gpu = Enum("Gpu", {name: name for name in ("h100-sxm", "h100-pcie", "h200", "a100", "v100", "l4", "rtx4090")},
           type=str)
Recompute = Enum("Recompute", {name: name for name in ("none", "selective", "full")}, type=str)
#: memory's parallel-plan options when none is given (then it is the one-GPU plan)
PARALLEL_DEFAULTS = dict(tp=1, pp=1, zero=0, sequence_parallel=False, recompute="none", micro_batch=1,
                         global_batch=None, interleave=1, fit=False, gpu_memory=None)


def _plan(spec, shape, bindings, batch, dtype, **options):
    from archcalc import api
    from archcalc.analysis.memory import plan_memory

    graph = api.load_graph(spec, input_shape=shape, bindings=parse_bindings(bindings))
    report = api.analyze(graph, batch=batch, dtype=Dtype(dtype).value)
    return report, plan_memory(graph, report, **options)


@app.command(name="memory")
def memory_cmd(
    ctx: typer.Context,
    spec: Path = SPEC_OR_SOURCE,
    batch: int = _batch_size("Batch size."),
    old_batch: Optional[int] = OLD_BATCH,
    input_shape: Optional[str] = INPUT,
    dtype: Dtype = typer.Option("float32", "--dtype", help="Element type of weights and activations; "
                                "under 4 bytes means mixed precision (fp32 master weights and states)."),
    optimizer: Optimizer = typer.Option("adam", "--optimizer", help="States per trainable param: sgd 0, "
                                        "momentum 1, adam/adamw 2."),
    checkpointing: bool = typer.Option(False, "--checkpointing", help="Count activations with activation "
                                       "checkpointing per top-level block in the training total."),
    master_weights: Optional[bool] = typer.Option(None, "--master-weights/--no-master-weights",
                                                  help="fp32 master weights and states; default: with "
                                                  "half-precision dtypes.", show_default=False),
    tokens: Optional[int] = typer.Option(None, "--tokens", min=1, help="Training tokens (sequence specs)."),
    examples: Optional[int] = typer.Option(None, "--examples", min=1, help="Training examples."),
    gpu: Optional[Gpu] = typer.Option(None, "--gpu-model", help="GPU model whose dense peak (for --dtype) sets the "
                                      "time (a count of GPUs is --gpus, as in train).", show_default=False),
    old_gpu: Optional[Gpu] = typer.Option(None, "--gpu", hidden=True, show_default=False),
    peak_tflops: Optional[float] = typer.Option(None, "--peak-tflops", help=f"Peak TFLOP/s, instead of --gpu-model "
                                                f"({MIN_PEAK_TFLOPS:g} to {MAX_PEAK_TFLOPS:g})."),
    utilization: float = typer.Option(DEFAULT_UTILIZATION, "--utilization", help="Fraction of peak achieved "
                                      f"(MFU), {MIN_UTILIZATION:g} to 1."),
    gpus: Optional[int] = typer.Option(None, "--gpus", min=1, help="Plan training on N GPUs: data x tensor x "
                                       "pipeline parallel with ZeRO, per-GPU figures (docs/memory.md, Parallel "
                                       "plans).", show_default=False),
    tp: int = typer.Option(1, "--tp", min=1, help="Tensor-parallel degree t (divides the heads)."),
    pp: int = typer.Option(1, "--pp", min=1, help="Pipeline-parallel degree p (divides the layers)."),
    zero: int = typer.Option(0, "--zero", min=0, max=3, help="ZeRO stage: 1 partitions optimizer states, 2 "
                             "gradients too, 3 weights too, over the data-parallel ranks."),
    sequence_parallel: bool = typer.Option(False, "--sequence-parallel", help="Split the layer-width "
                                           "activations over the tensor-parallel ranks too."),
    recompute: Recompute = typer.Option("none", "--recompute", help="Activation recomputation: none, "
                                        "selective (attention scores), full (each layer's input kept)."),
    micro_batch: int = typer.Option(1, "--micro-batch", min=1, max=MAX_BATCH, help="Sequences per micro-batch."),
    global_batch: Optional[int] = typer.Option(None, "--global-batch", min=1, max=MAX_BATCH, help="Sequences "
                                               "per optimizer step (needed with --gpus).", show_default=False),
    interleave: int = typer.Option(1, "--interleave", min=1, help="Interleaved pipeline chunks v per GPU."),
    fit_plans: bool = typer.Option(False, "--fit", help="List the configurations (tp, pp, zero, recompute, "
                                   "micro-batch) that fit --gpu-memory on --gpus GPUs, best first."),
    gpu_memory: Optional[str] = typer.Option(None, "--gpu-memory", help="Memory per GPU, e.g. 80GiB (needed "
                                             "with --fit).", show_default=False),
    as_json: bool = typer.Option(False, "--json", help="Exact bytes and FLOPs as JSON."),
    bindings: Optional[list[str]] = SET,
) -> None:
    """Memory and cost plan of SPEC: inference and training memory (weights, gradients, optimizer
    states, activations, KV cache), FLOPs and an estimated training time. Formulas: docs/memory.md."""
    batch = _renamed(batch, old_batch, "--batch", "--batch-size", 1)
    gpu = _renamed(gpu, old_gpu, "--gpu", "--gpu-model")
    parallel = dict(tp=tp, pp=pp, zero=zero, sequence_parallel=sequence_parallel, recompute=Recompute(recompute).value,
                    micro_batch=micro_batch, global_batch=global_batch, interleave=interleave, fit=fit_plans,
                    gpu_memory=gpu_memory)
    # the parallel options written out, a default value too (--fit holds --tp 1 fixed as it holds --tp 8)
    # (by name: typer 0.28 carries its own copy of click, whose ParameterSource is not click's)
    given = [k for k in parallel if getattr(ctx.get_parameter_source(k), "name", "DEFAULT") != "DEFAULT"]
    if gpus is not None or parallel != PARALLEL_DEFAULTS or given:
        _parallel_memory(spec, input_shape, bindings, gpus, parallel, given=given, batch=batch,
                         checkpointing=checkpointing,
                         dtype=Dtype(dtype).value, optimizer=Optimizer(optimizer).value, master_weights=master_weights,
                         tokens=tokens, examples=examples, gpu=gpu and Gpu(gpu).value, peak_tflops=peak_tflops,
                         utilization=utilization, as_json=as_json)
        return
    try:
        shape = parse_input(input_shape) if input_shape is not None else None
        _, plan = _plan(spec, shape, bindings, batch, dtype, optimizer=Optimizer(optimizer).value,
                        checkpointing=checkpointing, master_weights=master_weights, tokens=tokens,
                        examples=examples, gpu=gpu and Gpu(gpu).value, peak_tflops=peak_tflops,
                        utilization=utilization)
    except SpecError as exc:
        _fail(exc)
    if as_json:
        typer.echo(_json(plan.to_json()))
    else:
        _print_memory(plan)


def _amount(item) -> str:
    """A memory plan's figure, short, in its unit (archcalc/units.py formats every unit)."""
    from archcalc import units

    v = item.value
    if item.unit == "bytes":
        return units.binary_bytes(v)
    if item.unit == "flops":
        return units.count(v, "FLOP")
    if item.unit == "flop/s":
        return f"{v / 1e12:g} TFLOP/s"  # a datasheet peak, given whole (989.5, not 990)
    if item.unit == "ratio":
        return f"{v:.0%}"
    if item.unit == "count":
        return f"{v:,}"
    return units.duration(v)


def _print_memory(plan) -> None:
    from rich.table import Table
    from rich.text import Text

    from archcalc.render import inputs_text, make_console, print_whole

    console = make_console()
    title = (f"{one_line(plan.name)}  memory and cost: {inputs_text(plan)}, batch {plan.batch}, "
             f"{plan.dtype}, {plan.optimizer}" + (", checkpointing" if plan.checkpointing else ""))
    tab = Table(title=Text(title), title_justify="left", header_style="bold")
    for head, justify in (("", "left"), ("amount", "right"), ("formula", "left")):
        tab.add_column(head, justify=justify, overflow="fold", no_wrap=head != "formula")  # the formula wraps
    for section, items in plan.sections():
        tab.add_row(Text(section, style="bold"), "", "")
        for item in items:
            style = "bold" if item.key == "total" else ""
            tab.add_row(Text("  " + item.label, style=style), Text(_amount(item), style=style), Text(item.formula))
        tab.add_section()
    print_whole(console, tab)  # every amount whole (render.print_whole), wider than the terminal if need be
    for note in plan.notes:
        console.print(Text(one_line("note: " + note)), soft_wrap=True)


def _parallel_memory(spec, input_shape, bindings, gpus, parallel, *, given=(), batch, checkpointing, as_json,
                     **options):
    """`memory --gpus N ...`: the parallel plan (archcalc.analysis.parallel), or --fit's list. `given`:
    the parallel options written on the command line (--fit holds them fixed, a default value too)."""
    from archcalc import api
    from archcalc.analysis import parallel as par

    given = [k for k in parallel if k in given or parallel[k] != PARALLEL_DEFAULTS[k]]
    try:
        if gpus is None:
            raise SpecError(f"--{given[0].replace('_', '-')} plans training on several GPUs: give --gpus N")
        if batch != 1:
            raise SpecError("with --gpus the batch is --micro-batch and --global-batch, not --batch-size")
        if checkpointing:
            raise SpecError("with --gpus, activation checkpointing is --recompute full (or selective)")
        if parallel["global_batch"] is None:
            raise SpecError("--gpus needs --global-batch B: the sequences per optimizer step")
        fit, memory = parallel.pop("fit"), parallel.pop("gpu_memory")
        gpu_memory = par.parse_size(memory) if memory is not None else None
        if fit and gpu_memory is None:
            raise SpecError("--fit needs --gpu-memory, e.g. 80GiB")
        shape = parse_input(input_shape) if input_shape is not None else None
        graph = api.load_graph(spec, input_shape=shape, bindings=parse_bindings(bindings))
        model = par.describe(graph, api.analyze(graph, batch=1, dtype=options["dtype"]))
        if fit:
            fixed = {k: v for k, v in parallel.items() if k in given and k not in
                     ("global_batch", "interleave")}  # given: held fixed; the others enumerated
            plans = par.fit(model, gpus, parallel["global_batch"], gpu_memory, interleave=parallel["interleave"],
                            fixed=fixed, **options)
        else:
            plan = par.plan_parallel(model, par.Config(gpus, **parallel), gpu_memory=gpu_memory, **options)
    except SpecError as exc:
        _fail(exc)
    if as_json:
        typer.echo(_json(par.fit_json(plans, gpu_memory) if fit else plan.to_json()))
    elif fit:
        _print_fit(model, gpus, parallel["global_batch"], gpu_memory, plans)
    else:
        _print_parallel(plan)


def _bytes_text(n) -> str:
    from archcalc.analysis.memory import Item

    return _amount(Item("", "", n, "bytes"))


def _parallel_amount(item) -> str:
    if item.unit == "bytes/s":
        return _bytes_text(round(item.value)) + "/s"
    if item.unit == "count" and isinstance(item.value, float):
        return f"{item.value:,.0f}" if item.value >= 100 else f"{item.value:.3g}"
    if item.unit == "ratio" and item.key == "bubble":
        return f"{item.value:.1%}"
    return _amount(item)


def _print_parallel(plan) -> None:
    from rich.table import Table
    from rich.text import Text

    from archcalc.render import make_console, print_whole

    c = plan.config
    console = make_console()
    title = (f"{one_line(plan.name)}  parallel plan: {c.gpus} GPUs = tp {c.tp} x pp {c.pp} x dp {c.dp}, ZeRO-{c.zero}"
             + (", sequence parallel" if c.sequence_parallel else "") + f", recompute {c.recompute}, micro-batch "
             f"{c.micro_batch}, global batch {c.global_batch}" + (f", interleave {c.interleave}" if c.interleave > 1
                                                                  else "") + f", {plan.dtype}, {plan.optimizer}")
    tab = Table(title=Text(title), title_justify="left", header_style="bold")
    for head, justify in (("", "left"), ("amount", "right"), ("formula", "left")):
        tab.add_column(head, justify=justify, overflow="fold", no_wrap=head != "formula")
    for section, items in plan.sections():
        tab.add_row(Text(section, style="bold"), "", "")
        for item in items:
            style = "bold" if item.key == "total" else ""
            tab.add_row(Text("  " + item.label, style=style), Text(_parallel_amount(item), style=style),
                        Text(item.formula))
        tab.add_section()
    print_whole(console, tab)
    for note in plan.notes:
        console.print(Text(one_line("note: " + note)), soft_wrap=True)


def _print_fit(model, gpus, global_batch, gpu_memory, plans) -> None:
    from rich.table import Table
    from rich.text import Text

    from archcalc.analysis.parallel import MAX_FIT_ROWS
    from archcalc.render import make_console, print_whole

    human_bytes = _bytes_text
    console = make_console()
    title = (f"{one_line(model.name)}  configurations that fit {human_bytes(gpu_memory)} per GPU on {gpus} GPUs, "
             f"global batch {global_batch}: {len(plans):,}, best first")
    tab = Table(title=Text(title), title_justify="left", header_style="bold")
    heads = ("tp", "pp", "dp", "zero", "sp", "recompute", "micro-batch", "m", "bubble", "memory / GPU", "step",
             "sent / GPU / step")
    for head in heads:
        tab.add_column(head, justify="left" if head in ("sp", "recompute") else "right", no_wrap=True)
    for plan in plans[:MAX_FIT_ROWS]:
        c = plan.config
        step = next((i for i in plan.cost if i.key == "step_time"), None)
        tab.add_row(str(c.tp), str(c.pp), str(c.dp), str(c.zero), "yes" if c.sequence_parallel else "no", c.recompute,
                    str(c.micro_batch), str(c.micro_batches), f"{plan.get('bubble'):.1%}",
                    human_bytes(plan.get("total")), _amount(step) if step else "-",
                    human_bytes(next(i.value for i in plan.communication if i.key == "total")))
    print_whole(console, tab)
    if len(plans) > MAX_FIT_ROWS:
        console.print(Text(f"note: {len(plans) - MAX_FIT_ROWS:,} more fit (--json lists them all)"), soft_wrap=True)
    if not plans:
        console.print(Text("note: none fits: more GPUs, a smaller micro-batch or a larger --gpu-memory"),
                      soft_wrap=True)
    console.print(Text("note: step time: executed FLOPs at --utilization of the peak, stretched by the pipeline "
                       "bubble; ties go to fewer bytes sent, then less memory (docs/memory.md, Parallel plans)"),
                  soft_wrap=True)


class TextFormat(str, Enum):
    text = "text"
    markdown = "markdown"
    latex = "latex"


@app.command()
def explain(
    spec: Path = SPEC_OR_SOURCE,
    layers: Optional[list[str]] = typer.Argument(None, help="Layers to explain (dotted names; a block "
                                                 "instance name picks all its layers). Default: all.",
                                                 show_default=False),
    format: TextFormat = typer.Option(TextFormat.text, "--format", "-f", help="text, markdown for a report, or "
                                      "latex: a LaTeX document, one align* environment per layer."),
    as_json: bool = typer.Option(False, "--json", help="Every step as JSON: figure, formula, values put in, result."),
    as_latex: bool = typer.Option(False, "--latex", help="Shorthand for --format latex."),
    batch: int = _batch_size("Batch size (scales MACs)."),
    old_batch: Optional[int] = OLD_BATCH,
    input_shape: Optional[str] = INPUT,
    bindings: Optional[list[str]] = SET,
    assume: Optional[Assume] = ASSUME,
) -> None:
    """Show the working: for each layer, each figure's formula (the lecture's notation), the values
    put in, and the result. Works with symbolic sizes too."""
    from archcalc import api
    from archcalc.explain import explain as explain_steps, markdown, text, to_json

    batch = _renamed(batch, old_batch, "--batch", "--batch-size", 1)
    # two formats asked for at once (--latex --format markdown, --json --latex) once printed one of
    # them silently; as `kinds --markdown --json` says, give one
    formats = ([f"--format {format.value}"] if format is not TextFormat.text else []) + \
        (["--latex"] if as_latex else []) + (["--json"] if as_json else [])
    if len(formats) > 1 and formats != ["--format latex", "--latex"]:
        _fail(SpecError(f"{' and '.join(formats)} are two formats: give one"))
    try:
        shape = parse_input(input_shape) if input_shape is not None else None
        graph = api.load_graph(spec, input_shape=shape, bindings=parse_bindings(bindings),
                               assume_divisible=assume is Assume.divisible)
        steps = explain_steps(graph, layers or None, batch=batch)
    except SpecError as exc:
        _fail(exc)
    if as_json:
        typer.echo(_json({"name": graph.name, "batch": batch, "layers": to_json(steps)}))
        return
    if as_latex or format is TextFormat.latex:
        from archcalc.explain import latex as latex_document

        out = latex_document(steps, graph.name)
    else:
        out = markdown(steps) if format is TextFormat.markdown else text(steps)
    typer.echo(out, nl=not out.endswith("\n"))


@app.command()
def check(
    spec: Path = SPEC,
    answers: list[Path] = typer.Argument(..., help="Answers file(s) (YAML: set, tolerance, answers).",
                                          show_default=False),
    as_json: bool = typer.Option(False, "--json", help="Verdicts as JSON, for autograders."),
    gradebook: Optional[Path] = typer.Option(None, "--gradebook", help="Write one CSV row per answers "
                                             "file (student = file name without .yaml)."),
    assume: Optional[Assume] = ASSUME,
) -> None:
    """Judge answers about SPEC: exact, symbolic (compared for equivalence) or approximate
    ("about 822 million"). An answer that cannot be read is "invalid" (its error on stderr) and
    the others are judged. Exit 0 when all are right, 1 when any is wrong, 2 for an invalid file
    or answer."""
    import csv

    from archcalc.homework.check import GRADE_HEADER
    from archcalc.homework.grade import grade

    if gradebook is not None:  # a folder, or a folder that is missing: one line before any verdict is printed
        try:
            _output_mode(gradebook, "--gradebook")
            if not gradebook.absolute().parent.is_dir():
                raise SpecError(f"--gradebook {_shown(str(gradebook))}: cannot write it: its folder "
                                f"{_shown(str(gradebook.parent))} does not exist")
        except SpecError as exc:
            _fail(exc)
    if [str(spec), *map(str, answers)].count("-") > 1:
        _fail(SpecError("'-' (stdin) is given twice: the standard input holds one file; give the others by name"))
    results = []
    for path in answers:
        try:
            results.append((path, grade(spec, path, assume_divisible=assume is Assume.divisible, strict=False)))
        except SpecError as exc:
            _fail(exc)
    if as_json:  # always a list, one object per answers file (one file too): a grader reads one shape
        typer.echo(_json([dict(r.to_json(), answers_file=str(p)) for p, r in results]))
    else:
        _print_check(results)
    if gradebook is not None:
        import io

        rows = io.StringIO(newline="")
        writer = csv.writer(rows)
        writer.writerow(GRADE_HEADER)
        for path, result in results:
            writer.writerows(result.grade_rows(path.name.removesuffix(".yaml").removesuffix(".answers")))
        _write_text(gradebook, rows.getvalue(), "--gradebook")
        typer.echo(one_line(f"wrote {gradebook}"), err=True)
    invalid = [r for _, result in results for r in result.results if r.verdict == "invalid"]
    for r in invalid:  # each unreadable answer: one located line, as a file's mistake is
        typer.echo(one_line(SpecError(r.hint or "invalid answer", r.loc).cli_line()), err=True)
    raise typer.Exit(2 if invalid else 0 if all(r.ok for _, r in results) else 1)


def _print_check(results) -> None:
    from rich.table import Table
    from rich.text import Text

    from archcalc.render import make_console, print_whole

    console = make_console()
    marks = {"right": "✓ right", "close": "✓ close", "wrong": "✗ wrong", "undecided": "? undecided",
             "invalid": "✗ invalid"}
    for path, result in results:
        table = Table(title=Text(one_line(f"{path}: {result.right}/{result.total} right")), title_justify="left")
        for head in ("quantity", "given", "expected", "verdict", "why / formula"):
            table.add_column(head, overflow="fold", no_wrap=head != "why / formula")  # figures on one line
        for r in result.results:
            why = "\n".join(one_line(x) for x in (r.hint, r.formula) if x)  # hint, formula: a line each
            table.add_row(Text(one_line(r.quantity)), Text(one_line(r.given_text)), Text(one_line(r.expected)),
                          Text(marks.get(r.verdict, r.verdict)), Text(why))
        print_whole(console, table)  # every given and expected figure whole


class SheetFormat(str, Enum):
    markdown = "markdown"
    latex = "latex"


KEY_FILE = typer.Argument(..., help="The answer key (YAML: spec, questions, optional vary).", show_default=False)


@app.command(name="key")
def key_cmd(
    key_file: Path = KEY_FILE,
    format: SheetFormat = typer.Option(SheetFormat.markdown, "--format", "-f", help="markdown or latex."),
    student: Optional[str] = typer.Option(None, "--student", help="With vary: the student whose variant "
                                          "to answer (as in the roster).", show_default=False),
    seed: Optional[int] = typer.Option(None, "--seed", help="With vary: the seed given to `variants`.",
                                       show_default=False),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write the sheet to this file.",
                                          show_default=False),
    questions: bool = typer.Option(False, "--questions", help="The question sheet instead: the questions "
                                   "and points, no answers."),
) -> None:
    """The answer key as a solution sheet: each question, its answer and the worked formula."""
    from archcalc.homework import sheet as sheets
    from archcalc.homework.key import load_key

    try:
        key = load_key(key_file)
        sheets.check_key(key)
        solved = sheets.solve(key, student, seed)
    except SpecError as exc:
        _fail(exc)
    if seed is not None and not key.vary:  # as variants and grade say it
        typer.echo("note: --seed is ignored: the key has no vary:", err=True)
    latex = format is SheetFormat.latex
    if questions:
        from archcalc.homework.variants import question_sheet

        try:
            out = question_sheet(key, solved, latex)
        except SpecError as exc:
            _fail(exc)
    else:
        out = sheets.latex(solved) if latex else sheets.markdown(solved)
    if output is None:
        typer.echo(out, nl=not out.endswith("\n"))
    else:
        _write_text(output, out, "--output")
        typer.echo(one_line(f"wrote {output}"), err=True)


@app.command(name="variants")
def variants_cmd(
    key_file: Path = KEY_FILE,
    roster: Path = typer.Option(..., "--roster", help="CSV with a header and a 'student' (or 'id') column.",
                                show_default=False),
    seed: Optional[int] = typer.Option(None, "--seed", help="Draws each student's values (required with "
                                       "vary); grade with the same seed.", show_default=False),
    out_dir: Path = typer.Option(..., "--output", "-o", help="Folder to write (new, empty, or an earlier "
                                 "output of this command).", show_default=False),
    latex: bool = typer.Option(False, "--latex", help="Also write each question sheet and key as LaTeX."),
) -> None:
    """Per-student variants: each student's spec, question sheet, answers file and key, reproducible
    from the seed, and DIR/variants.csv (student, folder, their values)."""
    from archcalc.homework import sheet as sheets
    from archcalc.homework import variants as variants_mod
    from archcalc.homework.key import load_key

    try:
        key = load_key(key_file)
        sheets.check_key(key)
        students = variants_mod.read_roster(roster)
        written = variants_mod.write_variants(key, students, seed, out_dir, latex)
    except SpecError as exc:
        _fail(exc)
    if seed is not None and not key.vary:
        typer.echo("note: --seed is ignored: the key has no vary:", err=True)
    typer.echo(one_line(f"wrote {len(written)} variants to {out_dir} (students/, keys/, {variants_mod.MANIFEST})"),
               err=True)


@app.command(name="grade")
def grade_cmd(
    key_file: Path = KEY_FILE,
    answers: list[Path] = typer.Argument(..., help="The students' answers files (YAML), or folders of them "
                                          "(every *.yaml and *.yml inside).", show_default=False),
    csv_file: Optional[Path] = typer.Option(None, "--csv", help="Write the gradebook: student, points per "
                                            "question, total, max, percent, status, note.", show_default=False),
    feedback: Optional[Path] = typer.Option(None, "--feedback", help="Write one Markdown file per student "
                                            "into this folder.", show_default=False),
    as_json: bool = typer.Option(False, "--json", help="Every student's verdicts and the class summary as JSON."),
    seed: Optional[int] = typer.Option(None, "--seed", help="With vary: the seed given to `variants`; each "
                                       "student is graded at their own variant.", show_default=False),
) -> None:
    """Grade a class against an answer key (the TA's tool): every file a row, scored over the
    key's questions with the key's points and tolerances. Exit 0 when every row is plainly graded,
    1 when some row needs the TA (invalid file, duplicate student, undecided or unreadable answer,
    ignored set:/tolerance:), 2 when nothing could be graded (an invalid key, spec or option)."""
    from archcalc.homework import classroom
    from archcalc.homework.key import load_key

    try:
        key = load_key(key_file)
        classroom.prepare(key)
        files, left_out = classroom.answer_files(answers, key)
        grades = classroom.grade_class(key, files, seed)
    except SpecError as exc:
        _fail(exc)
    if left_out:
        shown = ", ".join(str(p) for p in left_out[:3]) + (f" and {len(left_out) - 3} more" if len(left_out) > 3 else "")
        typer.echo(one_line(f"note: left out {len(left_out)} spec or key files found in the folders: {shown}"),
                   err=True)
    if seed is not None and not key.vary:
        typer.echo("note: --seed is ignored: the key has no vary:", err=True)
    if csv_file is not None:
        _write_text(csv_file, grades.csv_text(), "--csv")
        typer.echo(one_line(f"wrote {csv_file}"), err=True)
    if feedback is not None:
        try:
            feedback.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            _fail(SpecError(f"--feedback {_shown(str(feedback))}: cannot make the folder: {exc.strerror or exc}"))
        texts = grades.feedback()
        for name, text in texts.items():
            _write_text(feedback / name, text, "--feedback")
        typer.echo(one_line(f"wrote {len(texts)} feedback files to {feedback}"), err=True)
    if as_json:
        typer.echo(_json(grades.to_json()))
    else:
        _print_grades(grades)
    raise typer.Exit(1 if grades.needs_review else 0)


def _print_grades(grades) -> None:
    from rich.table import Table
    from rich.text import Text

    from archcalc.render import make_console

    console = make_console()
    key = grades.key
    title = f"{key.title or key.spec.name}: {len(grades.rows)} files, {len(grades.graded)} graded, max {key.max_points}"
    table = Table(title=Text(one_line(title)), title_justify="left")
    for head, justify in (("student", "left"), ("points", "right"), ("percent", "right"), ("status", "left"),
                          ("note", "left")):
        table.add_column(head, justify=justify, overflow="fold")
    for r in grades.rows:
        table.add_row(Text(one_line(r.student)), Text(f"{r.total}/{r.max}"), Text(f"{r.percent:g} %"),
                      Text(r.status), Text(r.note()))
    console.print(table)
    summary = Table(title=Text("per question"), title_justify="left")
    for head, justify in (("question", "left"), ("points", "right"), ("right", "right"), ("wrong", "right"),
                          ("unanswered", "right"), ("commonest mistakes", "left")):
        summary.add_column(head, justify=justify, overflow="fold")
    for s in grades.summary():
        other = f" (+{s.undecided} undecided)" if s.undecided else ""
        other += f" (+{s.unreadable} unreadable)" if s.unreadable else ""
        mistakes = "\n".join(one_line(f"{n} x {hint}") for hint, n in s.mistakes)
        summary.add_row(Text(one_line(s.question.id)), Text(str(s.question.points)), Text(str(s.right)),
                        Text(f"{s.wrong}{other}"), Text(str(s.unanswered)), Text(mistakes))
    console.print(summary)


TORCH_NEEDED = "archcalc[torch] is needed: pip install 'archcalc[torch]'"


def _need_torch() -> None:
    """Every command that uses PyTorch says so plainly when it is missing (exit 2)."""
    try:
        import torch  # noqa: F401
    except ImportError:
        if _INTERRUPTED:  # torch is here: Ctrl-C stopped its import half-way (said as "interrupted")
            raise
        typer.echo(f"error: {TORCH_NEEDED}", err=True)
        raise typer.Exit(2) from None


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"
    meta = "meta"


def _verify_memory(graph, as_json: bool, quiet: bool) -> None:
    """verify --memory: archcalc.torch.saved's table (or JSON, or the verdict and mismatches), exit 1
    on a mismatch."""
    from archcalc.torch import saved

    result = saved.check_saved(graph)
    if as_json:
        typer.echo(_json(result.to_json()))  # "version" first, as every document
    elif quiet:
        verdict = "saved tensors match PyTorch" if result.ok else f"{len(result.mismatches())} mismatch(es)"
        typer.echo(one_line(f"{result.name}  verify --memory: {verdict}"))
        typer.echo(f"total: analytic {result.analytic:,} B; measured {result.measured:,} B")
        for row in result.mismatches():
            typer.echo(one_line(f"MISMATCH {row.name}.saved_bytes: analytic {row.analytic:,}, measured "
                                f"{row.measured:,}"))
    else:
        saved.print_saved_table(result)
    raise typer.Exit(0 if result.ok else 1)


@app.command()
def verify(
    spec: Path = SPEC_OR_SOURCE,
    device: Device = typer.Option(Device.cpu, "--device", help="Where to build and run the model: auto is cuda "
                                  "where PyTorch sees a GPU, else cpu (as in train); meta measures shapes, "
                                  "parameters and MACs without memory."),
    as_json: bool = typer.Option(False, "--json", help="Both figures per layer, as JSON."),
    quiet: bool = QUIET,
    memory: bool = typer.Option(False, "--memory", help="Instead: the bytes each layer saves for backward "
                                "(archcalc memory's activations) against what autograd keeps, measured with "
                                "saved_tensors_hooks in one training-mode forward (CPU, float32, batch 2)."),
    input_shape: Optional[str] = INPUT,
    bindings: Optional[list[str]] = SET,
) -> None:
    """Check every analytic figure of SPEC against PyTorch: shapes, parameters, MACs (FlopCounterMode)
    and receptive fields (gradient probe); with --memory, the saved activations. Exit 0 when all
    match, 1 otherwise."""
    _need_torch()
    from archcalc import api
    from archcalc.torch import verify as verify_mod

    if memory and device is not Device.cpu:
        _fail(SpecError(f"verify --memory measures on the CPU in float32; leave out --device {device.value}"))
    where = device.value
    if device is Device.auto:
        import torch

        where = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        shape = parse_input(input_shape) if input_shape is not None else None
        graph = api.load_source(spec, input_shape=shape, bindings=parse_bindings(bindings))
        if memory:
            _verify_memory(graph, as_json, quiet)  # exits
        from archcalc.torch.progress import status

        with status(not (as_json or quiet)) as progress:  # on stderr, and only in a terminal
            result = verify_mod.verify(graph, device=where, progress=progress)
    except SpecError as exc:
        _fail(exc)
    if as_json:
        typer.echo(_json(result.to_json()))
    elif quiet:  # the verdict, the totals and every mismatch: what a script or CI log needs
        verdict = "all figures match PyTorch" if result.ok else f"{len(result.mismatches())} mismatch(es)"
        typer.echo(one_line(f"{result.name}  verify on {result.device}: {verdict}"))
        typer.echo("total: " + "; ".join(f"{head} {verify_mod._cell(result.totals[key], fmt)}"
                                          for head, key, fmt in verify_mod.COLUMNS if key in result.totals))
        for name, fig in result.mismatches():
            typer.echo(one_line(f"MISMATCH {name}.{fig}"))
    else:
        verify_mod.print_table(result)
    raise typer.Exit(0 if result.ok else 1)


class ExportFormat(str, Enum):
    pytorch = "pytorch"
    onnx = "onnx"
    dot = "dot"
    mermaid = "mermaid"
    svg = "svg"
    png = "png"


@app.command()
def export(
    spec: Path = SPEC_OR_SOURCE,
    to: ExportFormat = typer.Option(..., "--to", help="pytorch: a standalone nn.Module file; onnx: an ONNX "
                                    "graph (needs -o); dot: Graphviz; mermaid: a Markdown diagram; svg, png (png needs -o): the "
                                    "dot drawing rendered by Graphviz's dot, which must be on PATH."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write here instead of stdout."),
    depth: Optional[int] = typer.Option(
        None, "--depth", "-d", min=0, help="Drawings: fold blocks deeper than this many dotted name parts into "
        "one box each (with its params and MACs), as analyze --depth folds rows; 0: every layer."),
    force: bool = typer.Option(False, "--force", help="Mermaid: write the diagram even when it is past "
                               "Mermaid's default text limit (50,000 characters)."),
    input_shape: Optional[str] = INPUT,
    bindings: Optional[list[str]] = SET,
) -> None:
    """Write SPEC as PyTorch source, ONNX, or a graph drawing (Graphviz dot, Mermaid, or SVG/PNG
    rendered by Graphviz); --depth N folds blocks so that a large network's drawing fits a screen."""
    from archcalc import api

    if depth and to in (ExportFormat.pytorch, ExportFormat.onnx):
        _fail(SpecError(f"--depth folds a drawing (--to dot, mermaid, svg or png); --to {to.value} writes "
                        "every layer"))
    if to in (ExportFormat.pytorch, ExportFormat.onnx):
        _need_torch()
    try:
        shape = parse_input(input_shape) if input_shape is not None else None
        graph = api.load_source(spec, input_shape=shape, bindings=parse_bindings(bindings))
        if to is ExportFormat.onnx:
            if output is None:
                raise SpecError("--to onnx writes a binary file: give it with -o FILE.onnx")
            _output_mode(output, "--output")
            from archcalc.torch.progress import status
            from archcalc.torch.source import export_onnx

            try:
                with status() as progress:  # on stderr, and only in a terminal
                    export_onnx(graph, output, progress=progress)
            except OSError as exc:  # no permission, a full disk: the exporter's own open() failed
                raise SpecError(f"--output {_shown(str(output))}: cannot write it: {exc.strerror or exc}") from None
            typer.echo(one_line(f"wrote {output}"), err=True)
            return
        if to is ExportFormat.pytorch:
            from archcalc.torch.source import pytorch_source

            text = pytorch_source(graph)
        else:
            from archcalc import graph_export

            if to is ExportFormat.mermaid:
                text = graph_export.to_mermaid(graph, depth)
                if not force:
                    graph_export.check_mermaid_size(graph, text, depth)
            elif to is ExportFormat.dot:
                text = graph_export.to_dot(graph, depth)
            else:  # svg, png: Graphviz's dot renders the drawing
                if to is ExportFormat.png and output is None:
                    raise SpecError("--to png writes a binary file: give it with -o FILE.png")
                if output is not None:
                    _output_mode(output, "--output")
                text = graph_export.graphviz_render(graph_export.to_dot(graph, depth), to.value)
    except SpecError as exc:
        _fail(exc)
    if output is None:
        typer.echo(text, nl=False)
    else:
        _write_text(output, text, "--output")
        typer.echo(one_line(f"wrote {output}"), err=True)


@app.command()
def examples() -> None:
    """The specs that ship with archcalc, by name: `archcalc analyze zoo:resnet18` runs in any folder."""
    from rich.table import Table
    from rich.text import Text

    from archcalc.render import make_console
    from archcalc.reader import bundled

    found = bundled.listing()
    if not any(found.values()):
        typer.echo("error: no bundled specs are installed with this archcalc", err=True)
        raise typer.Exit(2)
    # the answer keys and answers files are listed too: they are read by name, but not by analyze
    table = Table(title=Text("bundled specs: archcalc analyze NAME (NAME.key: archcalc key or grade; "
                             "NAME.answers: archcalc check SPEC NAME.answers)"), title_justify="left")
    table.add_column("name", no_wrap=True)
    table.add_column("what it is", overflow="fold")
    for category, rows in found.items():
        for name, what in rows:
            table.add_row(Text(f"{category}:{name}"), Text(one_line(what)))
    make_console().print(table)


def _complete_kind(incomplete: str) -> list[str]:
    """`archcalc kinds <TAB>`: the kinds' names (from the registry's index: no kind is imported)."""
    from archcalc.layers import KINDS

    return sorted(name for name in KINDS if name.startswith(incomplete))


@app.command()
def kinds(
    kind: Optional[str] = typer.Argument(None, help="Show one kind's arguments and formulas.",
                                         autocompletion=_complete_kind),
    markdown: bool = typer.Option(False, "--markdown", help="Print the full reference as Markdown "
                                  "(docs/layers.md)."),
    as_json: bool = typer.Option(False, "--json", help="The kinds (or one kind's arguments and formulas) as JSON."),
) -> None:
    """List the layer kinds a spec may use, or describe one."""
    from archcalc.errors import did_you_mean
    from archcalc.layers import KINDS
    from archcalc.layers.base import REQUIRED

    if markdown:
        if as_json:
            _fail(SpecError("--markdown and --json are two formats: give one"))
        from archcalc.layers._reference import markdown_reference

        typer.echo(markdown_reference(), nl=False)
        return
    if kind is None:
        if as_json:
            typer.echo(_json({"kinds": [{"name": name, "summary": KINDS[name].summary} for name in sorted(KINDS)]}))
            return
        width = max(map(len, KINDS))
        for name in sorted(KINDS):
            typer.echo(f"{name:<{width}}  {KINDS[name].summary}")
        return
    if kind not in KINDS:
        typer.echo(one_line(f"error: unknown layer kind {_shown(kind)}{did_you_mean(kind, KINDS)}"), err=True)
        raise typer.Exit(2)
    layer = KINDS[kind]
    from archcalc.layers.base import inputs_text

    if as_json:
        args = [{"name": a.name, "type": a.type, "required": a.default is REQUIRED,
                 "default": None if a.default is REQUIRED else a.default, "choices": list(a.choices or ()),
                 "doc": a.doc or ""} for a in layer.args]
        typer.echo(_json({"name": kind, "summary": layer.summary, "inputs": inputs_text(layer),
                          "primary": layer.primary or None, "arguments": args, "formulas": dict(layer.formulas)}))
        return
    typer.echo(f"{kind}: {layer.summary}")
    typer.echo(f"inputs: {inputs_text(layer)}")
    if layer.primary:
        typer.echo(f"primary argument: {layer.primary} (`{kind}: VALUE`)")
    typer.echo("arguments:" if layer.args else "arguments: none")
    for arg in layer.args:
        default = "required" if arg.default is REQUIRED else f"default {arg.default!r}"
        extra = f", one of {', '.join(arg.choices)}" if arg.choices and arg.type == "choice" else ""
        # a number that may also be a word (mamba's dt_rank: an int or auto)
        typename = f"{arg.type} or {' or '.join(arg.choices)}" if arg.choices and arg.type != "choice" else arg.type
        doc = f"  {arg.doc}" if arg.doc else ""
        typer.echo(f"  {arg.name:<20} {typename} ({default}{extra}){doc}")
    for figure, formula in layer.formulas.items():
        typer.echo(f"{figure:>7}: {formula}")


# `archcalc train`: every option defaults to None, meaning "not given", so that a --config file (and,
# with --resume, the run's own config.yaml) supplies it; archcalc.torch.train.TrainConfig has the defaults.
def _opt(*names, help, **kwargs):
    return typer.Option(None, *names, help=help, show_default=False, **kwargs)


def _choices(name: str, values) -> type:
    return Enum(name, {value: value for value in values}, type=str)


# train's choices, typed so that shell completion offers them (archcalc.torch.train.CHOICES checks
# them again, for --config files; tests/test_cli_conventions.py keeps the two lists equal).
Task = _choices("Task", ("classify", "binary", "regress", "denoise"))
TrainOptimizer = _choices("TrainOptimizer", ("sgd", "adam", "adamw"))
Schedule = _choices("Schedule", ("none", "step", "cosine"))
CudaGraph = _choices("CudaGraph", ("auto", "on", "off"))
TrainDtype = _choices("TrainDtype", ("float32", "bfloat16", "float16"))  # fp32, bf16 and fp16 too
TRAIN_PRECISION = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}  # train's config.yaml names
TRAIN_DEVICES = ("auto", "cpu", "cuda", "mps")
Split = _choices("Split", ("test", "val"))


def _complete_device(incomplete: str) -> list[str]:
    """--device of train and evaluate: a word (or cuda:N, so not a closed choice); completion offers the words."""
    return [d for d in TRAIN_DEVICES if d.startswith(incomplete)]


@app.command(name="train")
def train_cmd(
    spec: Optional[Path] = typer.Argument(None, help="The YAML spec file (optional with --resume or 'spec:' in "
                                          "--config).", show_default=False),
    data: Optional[str] = _opt("--data", help="digits, synthetic, sample-images, FILE.npz, an image folder, or "
                               "torchvision:NAME[:ROOT] (on disk; never downloaded). Default digits."),
    task: Optional[Task] = _opt("--task", help="classify (cross-entropy), binary (BCE), regress (MSE), denoise "
                                "(MSE to the clean input). Default classify."),
    out: Optional[Path] = _opt("--output", "-o", help="Run folder. Default runs/SPEC-NAME."),
    old_out: Optional[Path] = _opt("--out", help="", hidden=True),
    config: Optional[Path] = _opt("--config", help="A YAML file of these settings (flags win)."),
    resume: Optional[Path] = _opt("--resume", help="Continue the run in this folder exactly where it stopped."),
    epochs: Optional[int] = _opt("--epochs", help="Epochs (default 10)."),
    batch_size: Optional[int] = _opt("--batch-size", "-b", help="Global batch size (default 64)."),
    eval_batch_size: Optional[int] = _opt("--eval-batch-size", help="Batch for evaluation (default 4 x batch)."),
    lr: Optional[float] = _opt("--lr", help="Learning rate (default 0.001)."),
    optimizer: Optional[TrainOptimizer] = _opt("--optimizer", help="sgd, adam or adamw (default adam)."),
    momentum: Optional[float] = _opt("--momentum", help="SGD momentum (default 0.9)."),
    nesterov: Optional[bool] = _opt("--nesterov/--no-nesterov", help="Nesterov momentum (SGD)."),
    weight_decay: Optional[float] = _opt("--weight-decay", help="L2 penalty on weights (optimizer weight decay)."),
    l2_from: Optional[int] = _opt("--l2-from", help="Turn weight decay on after this many epochs."),
    l1: Optional[float] = _opt("--l1", help="L1 penalty on weights, added to the loss."),
    l1_from: Optional[int] = _opt("--l1-from", help="Turn L1 on after this many epochs."),
    schedule: Optional[Schedule] = _opt("--schedule", help="none, step or cosine (default none)."),
    step_size: Optional[int] = _opt("--step-size", help="step: multiply lr by --gamma every this many epochs."),
    gamma: Optional[float] = _opt("--gamma", help="step: the factor (default 0.9)."),
    warmup: Optional[int] = _opt("--warmup", help="Epochs of linear learning-rate warm-up."),
    min_lr: Optional[float] = _opt("--min-lr", help="cosine: the final learning rate (default 0)."),
    grad_clip: Optional[float] = _opt("--grad-clip", help="Clip the global gradient norm to this."),
    flip: Optional[bool] = _opt("--flip/--no-flip", help="Augment: random horizontal flips."),
    shift: Optional[int] = _opt("--shift", help="Augment: random shifts by up to this many pixels."),
    crop: Optional[int] = _opt("--crop", help="Augment: random zoom-in: a window N pixels smaller on each "
                                "side, at a random offset, resized back (bilinear)."),
    noise_std: Optional[float] = _opt("--noise-std", help="denoise: noise standard deviation (default 0.5)."),
    val_fraction: Optional[float] = _opt("--val-fraction", help="Validation share (default 0.15)."),
    test_fraction: Optional[float] = _opt("--test-fraction", help="Test share (default 0.15)."),
    folds: Optional[int] = _opt("--folds", help="K-fold cross-validation: mean and spread over K folds."),
    patience: Optional[int] = _opt("--patience", help="Early stopping: epochs without a better val loss."),
    seed: Optional[int] = _opt("--seed", help="Seed of weights, splits, batch order, noise (default 0)."),
    synthetic_size: Optional[int] = _opt("--synthetic-size", help="Examples of --data synthetic (default 1024)."),
    num_classes: Optional[int] = _opt("--num-classes", help="Classes of --data synthetic (default: the output size)."),
    device: Optional[str] = _opt("--device", help="auto, cpu, cuda (or cuda:N) or mps (default auto).",
                                 autocompletion=_complete_device),
    precision: Optional[TrainDtype] = _opt("--dtype", help="float32, bfloat16 or float16 (also written fp32, bf16, "
                                           "fp16): autocast mixed precision, as memory's --dtype; default float32."),
    old_precision: Optional[TrainDtype] = _opt("--precision", help="", hidden=True),
    channels_last: Optional[bool] = _opt("--channels-last/--no-channels-last", help="NHWC memory layout."),
    compile: Optional[bool] = _opt("--compile/--no-compile", help="torch.compile the model."),
    cuda_graph: Optional[CudaGraph] = _opt("--cuda-graph", help="auto, on or off: capture the step as a CUDA graph."),
    gpus: Optional[int] = _opt("--gpus", help="Processes (DDP), one per GPU; with --device cpu, gloo processes."),
    input_shape: Optional[str] = INPUT,
    bindings: Optional[list[str]] = SET,
    quiet: bool = QUIET,
    as_json: bool = typer.Option(False, "--json", help="Print only the run's final figures, as JSON (summary.json, "
                                 "with the run folder)."),
) -> None:
    """Train SPEC with the lecture's recipe; writes a run folder (docs/train.md). Exit 0 when done,
    1 when the loss became NaN/inf, 2 for a mistake in the settings, 130 after Ctrl-C."""
    _need_torch()
    from archcalc.torch import train as tr

    out = _renamed(out, old_out, "--out", "--output", note=False)
    precision = _renamed(precision, old_precision, "--precision", "--dtype")
    given = dict(locals())
    cli_only = ("spec", "config", "resume", "input_shape", "bindings", "tr", "old_out", "old_precision", "quiet",
                "as_json")
    overrides = {k: v.value if isinstance(v, Enum) else v for k, v in given.items() if k not in cli_only}
    if overrides["precision"] is not None:
        overrides["precision"] = TRAIN_PRECISION[overrides["precision"]]
    overrides.update(spec=spec, out=resume if resume is not None else out, input=input_shape, sizes=bindings or None)
    console = None
    if quiet or as_json:  # the figures of each epoch go nowhere; the final ones are printed below
        from rich.console import Console

        console = Console(quiet=True)
    try:
        if resume is not None:  # the run's own config.yaml, then --config, then flags; SPEC must be its network
            if out is not None and out != resume:
                raise SpecError(f"--output {out} and --resume {resume} name two run folders: a resumed run stays "
                                "in its own folder (give --resume only)")
            settings, given_spec = tr.resume_config(resume, config, overrides)
            result = tr.train(given_spec, settings, resume=True, console=console)
        else:
            result = tr.train(None, tr.TrainConfig.from_sources(config, overrides), console=console)
    except SpecError as exc:
        _fail(exc)
    except (tr.Diverged, tr.Interrupted) as exc:
        if isinstance(exc, tr.Interrupted):
            ignore_ctrl_c()  # saved at a step boundary: more presses do not cut the message short
        typer.echo(one_line(f"error: {exc}" if isinstance(exc, tr.Diverged) else str(exc)), err=True)
        raise typer.Exit(1 if isinstance(exc, tr.Diverged) else 130) from None
    if as_json:  # the run's final figures: summary.json as written, with the run folder
        typer.echo(_json({"run_dir": str(result.run_dir), **result.summary}))
    elif quiet:
        from archcalc.render import make_console

        tr.print_summary(make_console(), result.summary, result.run_dir)


@app.command(name="evaluate")
def evaluate_cmd(
    run: Path = typer.Argument(..., help="A run folder written by archcalc train.", show_default=False),
    data: Optional[str] = typer.Option(None, "--data", help="Another data source with the same input shape "
                                       "(normalised with the run's statistics). Default: the run's.",
                                       show_default=False),
    split: Split = typer.Option(Split.test, "--split", help="test or val."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda (or cuda:N) or mps.",
                               autocompletion=_complete_device),
    as_json: bool = typer.Option(False, "--json", help="The figures as JSON."),
) -> None:
    """Loss, accuracy and confusion matrix of a saved run (its best.pt) on its test or val split."""
    _need_torch()
    from archcalc.torch import train as tr

    try:
        result = tr.evaluate(run, data, split=Split(split).value, device=device)
    except SpecError as exc:
        _fail(exc)
    if as_json:
        typer.echo(_json(result))
        return
    from archcalc.render import make_console

    console = make_console()
    console.print(f"{tr.shown(run)}: {result['checkpoint']} (epoch {result['epoch']}) on the {result['split']} split "
                  f"of --data {tr.shown(result['data'])}", highlight=False)
    tr.print_summary(console, result)

def _output_mode(path: Path, option: str):
    """The st_mode of an output path the user named (None: it does not exist yet). A folder, a
    named pipe (it would wait for a reader forever), a socket, or a path that cannot even be
    looked at (a name too long, a folder without permission) is a SpecError."""
    import os
    import stat

    where = f"{option} {_shown(str(path))}: cannot write it"
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise SpecError(f"{where}: {exc.strerror or exc}") from None
    if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or stat.S_ISDIR(mode):
        kind = "a named pipe" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a folder"
        raise SpecError(f"{where}: it is {kind}")
    return mode


def _write_text(path: Path, text: str | bytes, option: str) -> None:
    """Write an output file the user named (text as UTF-8, or bytes as they are: a PNG). A file is
    replaced whole (written beside it, then
    renamed: a full disk leaves the old one, never half a new one); a device such as /dev/null
    is written to; a named pipe (which would wait for a reader forever), a socket or a folder is
    refused. Every failure is one line, exit 2."""
    import os
    import stat
    import tempfile

    how = {"mode": "wb"} if isinstance(text, bytes) else {"mode": "w", "encoding": "utf-8", "newline": ""}
    where = f"{option} {_shown(str(path))}"
    try:
        mode = _output_mode(path, option)
    except SpecError as exc:
        _fail(exc)
    try:
        if mode is not None and not stat.S_ISREG(mode):  # a character device: /dev/null, /dev/stdout
            with open(path, **how) as handle:  # UTF-8, not the locale's (cp1252, ASCII)
                handle.write(text)
            return
        target = Path(os.path.realpath(path))  # a link the user named: replace what it points to
        fd, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        try:
            with os.fdopen(fd, **how) as handle:
                handle.write(text)
            if mode is not None:
                os.chmod(temporary, stat.S_IMODE(mode))
            else:
                umask = os.umask(0)
                os.umask(umask)
                os.chmod(temporary, 0o666 & ~umask)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    except OSError as exc:
        _fail(SpecError(f"{where}: cannot write it: {exc.strerror or exc}"))


def _show_version(value: bool) -> None:
    if value:
        from archcalc import __version__

        typer.echo(f"archcalc {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", is_eager=True, callback=_show_version,
                                       help="Show the version and exit.")) -> None:
    """Exact shapes, parameters, MACs and receptive fields of neural networks written as YAML specs."""


def main() -> None:
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
