"""Write a spec's graph as a standalone PyTorch source file, or export it to ONNX.

`pytorch_source(graph)` gives a Python file that needs only torch: one `nn.Module` subclass with one
attribute per layer (the dotted name with `_` for `.`) and a `forward` that follows the graph.
Nothing here knows a layer kind: each kind's `torch_module` gives a module, and

- a `torch.nn` module is written as the constructor call that rebuilds it, read from the module
  itself: the arguments of its class's `__init__` are read back from the same-named attributes
  (`bias` from whether `module.bias` is set) and only those that differ from a module built with
  the required arguments alone are written;
- a small custom module (merges, reshape, permute) provides `export_expression(inputs)`, the
  Python expression of its forward step (`a + b`, `torch.cat([a, b], dim=1)`).

Every constructor call is checked by rebuilding it (on the meta device, so nothing is allocated)
and comparing it with the module it stands for.
"""
from __future__ import annotations

import builtins
import importlib.util
import inspect
import json
import keyword
import logging
import math
import re
import warnings
from contextlib import contextmanager
from pathlib import Path

from archcalc.analysis.walk import analyze_graph
from archcalc.errors import SpecError, one_line
from archcalc.graph_export import _block_steps
from archcalc.layers import KINDS
from archcalc.reader.graph import INPUT, Graph
from archcalc.torch.build import build, check_torch_limits, torch  # build explains a missing torch
from archcalc.torch.progress import report as report_progress

from torch import nn  # noqa: E402

# --- constructor calls --------------------------------------------------------------------------

_SKIPPED = {"device", "dtype"}  # factory arguments: where and how to allocate, not the layer's shape


def _literal(value) -> str:
    """Python source for a constructor argument."""
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isfinite(value):
            return repr(value)
        return f'float("{value}")'
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (tuple, list, torch.Size)):
        items = [_literal(v) for v in value]
        if isinstance(value, list):
            return "[" + ", ".join(items) + "]"
        return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
    raise TypeError(f"cannot write {value!r} ({type(value).__name__}) as a Python literal")


def _scalar(value) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))


def _same(a, b) -> bool:
    """Equal as constructor arguments: torch expands a number to one per axis (`1` is `(1, 1)`)."""
    seq = (tuple, list)
    if isinstance(a, seq) or isinstance(b, seq):
        if not isinstance(a, seq):
            a, b = b, a
        if isinstance(b, seq):
            return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
        return len(a) > 0 and all(_same(x, b) for x in a)
    if any(v is None or isinstance(v, (bool, str)) for v in (a, b)):
        return type(a) is type(b) and a == b
    return a == b  # numbers: 1 and 1.0 are the same argument


def _read(module: nn.Module, name: str):
    """The value of constructor argument `name` as the module keeps it."""
    if name == "bias":  # a flag in __init__, a Parameter (or None) afterwards
        return getattr(module, "bias", None) is not None
    try:
        value = getattr(module, name)
    except AttributeError:
        raise TypeError(f"{type(module).__name__} has no attribute '{name}' to read its constructor "
                        "argument from") from None
    if isinstance(value, torch.Size):
        value = tuple(value)
    return value


def _init_parameters(cls) -> list[inspect.Parameter]:
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]  # without self
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    # Private arguments (nn.Embedding's `_weight`, `_freeze`) take initial state, not configuration.
    return [p for p in params if p.kind in kinds and p.name not in _SKIPPED and not p.name.startswith("_")]


def _torch_name(cls) -> str:
    if getattr(nn, cls.__name__, None) is cls:
        return f"nn.{cls.__name__}"
    raise TypeError(f"{cls.__module__}.{cls.__qualname__} is not a torch.nn class and has no "
                    "export_expression method")


def constructor_source(module: nn.Module) -> str:
    """The call that rebuilds a `torch.nn` module, e.g.
    `nn.Conv2d(3, 64, kernel_size=(7, 7), stride=(2, 2), padding=(3, 3), bias=False)`.

    Leading required arguments that are plain values are positional, every other one is a keyword;
    optional arguments are written only where they differ from the class's defaults.
    """
    cls = type(module)
    name = _torch_name(cls)
    params = _init_parameters(cls)
    values = {p.name: _read(module, p.name) for p in params}
    required = [p for p in params if p.default is p.empty]
    with torch.device("meta"):
        default = cls(**{p.name: values[p.name] for p in required})
    args, positional = [], True
    for p in params:
        value = values[p.name]
        if p.default is p.empty:
            if positional and p.kind is p.POSITIONAL_OR_KEYWORD and _scalar(value):
                args.append(_literal(value))
                continue
        elif _same(value, _read(default, p.name)):
            continue
        positional = False
        args.append(f"{p.name}={_literal(value)}")
    call = f"{name}({', '.join(args)})"
    _check_rebuilds(call, module, params)
    return call


def _check_rebuilds(call: str, module: nn.Module, params) -> None:
    with torch.device("meta"):
        rebuilt = eval(call, {"nn": nn, "torch": torch})  # our own text: nn.Class(literals)
    same = (all(_same(_read(rebuilt, p.name), _read(module, p.name)) for p in params)
            and [(k, tuple(v.shape)) for k, v in rebuilt.state_dict().items()]
            == [(k, tuple(v.shape)) for k, v in module.state_dict().items()])
    if not same:
        raise TypeError(f"{call} does not rebuild {module!r}")


# --- names ----------------------------------------------------------------------------------------

_MODULE_ATTRS = set(dir(nn.Module())) | {"forward"}
_LOCALS = {"self", "torch", "nn", "x", "x_in"} | set(dir(builtins))


class _Names:
    """Unique Python identifiers from dotted layer names: `layer1.1.conv1` -> `layer1_1_conv1`."""

    def __init__(self, reserved):
        self.reserved = reserved
        self.used: set[str] = set()

    def __call__(self, dotted: str) -> str:
        base = re.sub(r"[^A-Za-z0-9_]", "_", dotted)  # ASCII: \W keeps '²', which no identifier may hold
        if keyword.iskeyword(base) or base in self.reserved or base[0].isdigit():
            base = "_" + base if base[0].isdigit() else base + "_"
        ident, i = base, 2
        while ident in self.used:
            ident, i = f"{base}_{i}", i + 1
        self.used.add(ident)
        return ident


def class_name(spec_name: str) -> str:
    """CamelCase for a spec name: `conv3x3_stack` -> `Conv3x3Stack`, `tiny-resnet` -> `TinyResnet`."""
    parts = re.findall(r"[A-Za-z0-9]+", spec_name)
    name = "".join(p[:1].upper() + p[1:] for p in parts)
    if not name or not name[0].isalpha():
        name = "Net" + name
    if keyword.iskeyword(name):  # None, True, False
        name += "_"
    return name


def _shape(shape) -> str:
    return "[" + ", ".join(str(n) for n in shape) + "]"


def _docstring_text(text: str) -> str:
    """Free text (a spec's name, its file name) made safe inside a triple-quoted docstring: on one
    line, control characters written as escapes (`\\n`, `\\x00`: a NUL does not compile), and
    backslashes and quotes escaped so that the text reads back as written."""
    return one_line(text).replace("\\", "\\\\").replace('"', '\\"')


# --- the source file ------------------------------------------------------------------------------

def pytorch_source(graph: Graph) -> str:
    """A standalone Python file defining the spec's network as an `nn.Module` subclass."""
    report = analyze_graph(graph)  # validates the graph; output shapes for the comments
    check_torch_limits(graph, report)
    shapes = dict(graph.input_shapes)
    shapes.update({row.name: tuple(row.output_shape) for row in report.layers})
    index = {node.name: i for i, node in enumerate(graph.nodes)}
    consumers: dict[str, set] = {name: set() for name in graph.input_names}
    for i, node in enumerate(graph.nodes):
        consumers[node.name] = set()
        for src in node.inputs:
            consumers[src].add(i)

    def chained(name: str) -> bool:
        """Read only by the next layer (or by none): the value can live in `x`."""
        i = index.get(name, -1)
        return consumers[name] <= {i + 1}

    attrs, local = _Names(_MODULE_ATTRS), _Names(_LOCALS)
    attr_of: dict[str, str] = {}
    classes: dict[str, str] = {}  # custom module classes (attention, class token): name -> source
    init_lines, forward_lines = [], []
    if graph.named_inputs:  # forward(self, a, b): one argument per input, named after it
        var = {name: local(name) for name in graph.input_names}
        arguments = ", ".join(var.values())
    else:
        var, arguments = {INPUT: "x"}, "x"
        if not chained(INPUT):
            var[INPUT] = "x_in"
            forward_lines.append("x_in = x  # the input is used again below")
    for node, _, opens in _block_steps(graph.nodes):
        if node is None:
            break
        for instance, kind in opens:
            comment = f"# {instance} ({kind})"
            init_lines.append(comment)
            forward_lines.append(comment)
        in_shapes = [shapes[n] for n in node.inputs]
        try:
            with torch.device("meta"):  # only the configuration is read: allocate no weights
                module = KINDS[node.kind].torch_module(node.args, in_shapes)
        except Exception as exc:  # a kind's own check (e.g. batchnorm's rank), as a spec error
            raise SpecError(str(getattr(exc, "message", exc)), node.loc, node.name, node.kind) from None
        inputs = [var[n] for n in node.inputs]
        expression = getattr(module, "export_expression", None)
        if callable(expression):
            if any(True for _ in module.parameters()) or any(True for _ in module.buffers()):
                raise SpecError("cannot write this layer as PyTorch source: its module has weights or "
                                "buffers but gives an expression", node.loc, node.name, node.kind)
            step = expression(inputs)
        else:
            attr = attr_of[node.name] = attrs(node.name)
            try:
                call = getattr(module, "export_call", None) or constructor_source(module)
                if hasattr(module, "export_call"):
                    _add_class(classes, type(module).__name__, module.export_source)
            except TypeError as exc:
                raise SpecError(f"cannot write this layer as PyTorch source: {exc}", node.loc, node.name,
                                node.kind) from None
            init_lines.append(f"self.{attr} = {call}")
            if not node.trainable:
                init_lines.append(f"self.{attr}.requires_grad_(False)  # trainable: false")
            step = f"self.{attr}({', '.join(inputs)})"
        var[node.name] = "x" if chained(node.name) else local(node.name)
        forward_lines.append(f"{var[node.name]} = {step}  # {_shape(shapes[node.name])}")
    forward_lines.append(f"return {var[graph.output]}")
    for node in graph.nodes:
        target = KINDS[node.kind].tied_to(node.args)
        if target is not None:
            init_lines.append(f"self.{attr_of[target]}.weight = self.{attr_of[node.name]}.weight  # tied weights")

    name, title = class_name(graph.name), _docstring_text(graph.name)
    # The network's class must not shadow a class the file defines for a kind (a spec named
    # "self_attention" would otherwise replace SelfAttention) nor a module it imports.
    taken = {"torch", "nn", "F", "math"} | {m for text in classes.values()
                                            for m in re.findall(r"^class (\w+)", text, re.M)}
    while name in taken:
        name += "Net"
    totals = report.totals
    source = Path(graph.file).name if graph.file != "<spec>" else None
    origin = f"the spec {_docstring_text(source)}" if source else f"the spec '{title}'"
    in_shape, out_shape = _shape(graph.input_shape), _shape(report.output_shape)
    batch_in = ", ".join(["1"] + [str(n) for n in graph.input_shape])
    batch_out = ", ".join(["1"] + [str(n) for n in report.output_shape])
    batch_shape_in, batch_shape_out = _shape(("N", *graph.input_shape)), _shape(("N", *report.output_shape))
    inputs_line = f"Input {in_shape} (one example, batch excluded), output {out_shape}."
    example = [f"    x = {_example_source(graph, batch_in)}", "    with torch.no_grad():", "        y = model(x)"]
    if graph.named_inputs:  # several inputs: forward takes them in the spec's order
        def described(i, shape):
            return f"{i.name} {shape}" + (" (token ids)" if i.tokens else "")

        inputs_line = ("Inputs " + ", ".join(described(i, _shape(i.shape)) for i in graph.inputs)
                       + f" (one example each, batch excluded), output {out_shape}.")
        batch_shape_in = ", ".join(described(i, _shape(("N", *i.shape))) for i in graph.inputs)
        example = (["    xs = ("]
                   + [f"        {_example_source(graph, ', '.join(['1'] + [str(n) for n in i.shape]), i).split('  # ')[0]},"
                      f"  # {i.name}{' (token ids)' if i.tokens else ''}" for i in graph.inputs]
                   + ["    )", "    with torch.no_grad():", "        y = model(*xs)"])
    params = f"{totals.trainable_params:,} trainable parameters"
    if totals.non_trainable_params:
        what = "frozen parameters and running statistics" if any(not n.trainable for n in graph.nodes) \
            else "running statistics"
        params += f" and {totals.non_trainable_params:,} non-trainable values ({what})"
    out = [
        f'"""{title} as a PyTorch module.',
        "",
        f"Generated by archcalc from {origin}.",
        inputs_line,
        f"{params[0].upper()}{params[1:]}.",
        "Needs only PyTorch.",
        '"""',
        *(["import math", ""] if classes else []),
        "import torch",
        "from torch import nn",
        *(["from torch.nn import functional as F"] if classes else []),
        "",
        "",
        *[line for text in classes.values() for line in text.splitlines() + ["", ""]],
        f"class {name}(nn.Module):",
        f'    """{title}: input{"s" if graph.named_inputs else ""} {batch_shape_in} -> output {batch_shape_out}.',
        "",
        "    The comments in forward give each output's shape without the batch.",
        '    """',
        "",
        "    def __init__(self):",
        "        super().__init__()",
        *("        " + line for line in init_lines),
        "",
        f"    def forward(self, {arguments}):",
        *("        " + line for line in forward_lines),
        "",
        "",
        'if __name__ == "__main__":',
        f"    model = {name}().eval()",
        *example,
        '    print("parameters:", sum(p.numel() for p in model.parameters()))',
        f'    print("output shape:", tuple(y.shape))  # ({batch_out})',
    ]
    if not init_lines:
        out.insert(out.index("        super().__init__()") + 1, "        pass")
    text = "\n".join(out) + "\n"
    try:  # what a name could still break is caught here, not by the user's Python
        compile(text, "<archcalc export>", "exec", dont_inherit=True)
    except (SyntaxError, ValueError) as exc:
        raise SpecError(f"cannot write this spec as PyTorch source: the generated file does not compile "
                        f"({exc})", graph.input_loc) from None
    return text


def _add_class(classes: dict, name: str, text: str) -> None:
    """Keep each class definition once: attention's source carries the rotary class too."""
    if any(text in known for known in classes.values()):
        return
    for other in [n for n, known in classes.items() if known in text]:
        del classes[other]
    classes[name] = text


def _example_source(graph: Graph, batch_in: str, net_input=None) -> str:
    if (net_input or graph.inputs[0]).tokens:
        tables = [node.args["num"] for node in graph.nodes if KINDS[node.kind].reads == "tokens"]
        return f"torch.randint(0, {min(tables, default=2)}, ({batch_in}))  # token ids"
    return f"torch.randn({batch_in})"


# --- ONNX -------------------------------------------------------------------------------------------

ONNX_NEEDED = "ONNX export needs the onnx and onnxscript packages: pip install onnx onnxscript"
_ONNX_MODULES = ("onnx", "onnxscript")


_MISSING = re.compile(r"No module named '(onnx|onnxscript)\b|\b(onnx|onnxscript) is not installed")


def _missing_onnx(exc: BaseException | None, depth: int = 0) -> bool:
    """Whether an exporter failure (or its cause) is a missing onnx/onnxscript install: an
    ImportError for them, or torch's own 'Module onnx is not installed!'."""
    if exc is None or depth > 5:
        return False
    if isinstance(exc, ImportError) and (exc.name or "").split(".")[0] in _ONNX_MODULES:
        return True
    if _MISSING.search(str(exc)):
        return True
    return _missing_onnx(exc.__cause__ or exc.__context__, depth + 1)


@contextmanager
def _quiet_exporter():
    """Hide the exporter's warnings and logs ('torchvision is not installed', the traceback of a
    failed dynamic-shape attempt): archcalc reports the outcome itself."""
    manager = logging.Logger.manager
    roots = ("torch", "onnx", "onnxscript", "onnx_ir")
    names = [n for n in list(manager.loggerDict) if n.split(".")[0] in roots]
    loggers = [logging.getLogger(n) for n in ["torch", "onnxscript", *names]]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def export_onnx(graph: Graph, path, progress=None) -> bool:
    """Write the spec's network (eval mode, float32) as an ONNX file named `path`.

    The batch dimension is dynamic (named `batch`) where torch's exporter can keep it so (not,
    for example, with circular padding), else fixed at 1; returns whether it is dynamic. The
    input is named `input` (several inputs: their names in the spec), the output `output`. Raises SpecError when onnx or onnxscript, which
    the exporter needs, is not installed. `progress(stage, ...)`, when given, hears each stage
    (archcalc/torch/progress.py).
    """
    if any(importlib.util.find_spec(m) is None for m in _ONNX_MODULES):
        raise SpecError(ONNX_NEEDED)
    for node in graph.nodes:
        words = [part for part in node.name.split(".") if keyword.iskeyword(part)]
        if words:  # torch.fx writes module paths into Python code: `self.class` does not parse
            raise SpecError(f"ONNX export cannot handle a layer named '{words[0]}' (a Python keyword): "
                            "rename it", node.loc, node.name, node.kind)
    report_progress(progress, "building the model")
    model = build(graph).eval()
    examples = tuple(torch.zeros(1, *i.shape, dtype=torch.long if i.tokens else torch.float32) for i in graph.inputs)
    names = list(graph.input_names)  # `input` for a spec with one input
    # A file over 2 GiB cannot hold its weights inline (protobuf's limit); keep them beside it then.
    big = analyze_graph(graph).totals.param_bytes > 2 ** 31 - 2 ** 26

    def export(dynamic: bool) -> None:
        batch = torch.export.Dim("batch")
        torch.onnx.export(model, examples, str(path), input_names=names, output_names=["output"],
                          # forward(*xs): one entry, the inputs' tuple, each input's dim 0 the batch
                          dynamic_shapes=(tuple({0: batch} for _ in examples),) if dynamic else None,
                          external_data=big, verbose=False)

    try:
        with _quiet_exporter():
            try:
                report_progress(progress, "exporting to ONNX (torch.onnx.export, dynamic batch)")
                export(dynamic=True)
                return True
            except Exception as exc:
                if _missing_onnx(exc):
                    raise
            report_progress(progress, "exporting to ONNX again, with a fixed batch of 1")
            export(dynamic=False)
            return False
    except Exception as exc:
        if _missing_onnx(exc):
            raise SpecError(ONNX_NEEDED) from None
        raise


__all__ = ["class_name", "constructor_source", "export_onnx", "pytorch_source"]
