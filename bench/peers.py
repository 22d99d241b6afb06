"""How the popular PyTorch counters differ from archcalc's convention, measured on the bundled zoo.

    python bench/peers.py            # every specs/zoo/*.yaml network, then the single-layer table
    python bench/peers.py --quick    # resnet18 and the single-layer table only

archcalc counts multiply-accumulates (MACs) of matrix products only (conv / conv_transpose / linear /
matmul, attention's projections and products, recurrent layers' products), which is
`torch.utils.flop_counter.FlopCounterMode`'s total // 2. Compared here (each optional: a tool that
is missing or fails shows as "n/a (reason)"):

* torchinfo   `summary(...).total_mult_adds` and `total_params`
* fvcore      `FlopCountAnalysis(...).total()` (one "flop" per MAC) and `parameter_count`
* ptflops     `get_model_complexity_info(..., as_strings=False)`, both backends where the
              installed version has a `backend` argument (pytorch hooks, aten dispatch)
* thop        `profile(...)` MACs and params

For each network: the totals, then where each tool's number comes from. The second table is
measured, not modelled: every leaf module of the built network is run alone through every tool
with the input it received in the whole network, and the counts are summed per module type
("Conv2d+bias" is a Conv2d with a bias). A tool's difference to archcalc is the sum of its
per-type differences, plus whatever it counts outside any leaf module ("outside leaves" = the
whole-network total minus the sum over leaves). Last, the single-layer table: what every tool
reports for one lone layer.

Needs only archcalc and torch; never imported by the test suite.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib.metadata
import inspect
import io
import logging
import platform
import sys
import warnings
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

import archcalc  # noqa: E402
from archcalc.torch import build  # noqa: E402

ZOO = ROOT / "specs" / "zoo"


class NA(Exception):
    """A tool that cannot answer: shown as "n/a (reason)"."""


def _short(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}" if not isinstance(exc, NA) else str(exc)
    text = " ".join(text.split())
    return text if len(text) <= 90 else text[:87] + "..."


@contextlib.contextmanager
def _quiet():
    """Silence the tools' prints, warnings and log lines."""
    sink = io.StringIO()
    logging.disable(logging.CRITICAL)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            warnings.simplefilter("ignore")
            yield sink
    finally:
        logging.disable(logging.NOTSET)


class Bound(nn.Module):
    """Calls `module(x, *rest)`: lets tools that feed one tensor run multi-input modules."""

    def __init__(self, module: nn.Module, rest: tuple):
        super().__init__()
        self.module = module
        self.rest = rest

    def forward(self, x):
        return self.module(x, *self.rest)


def _one_input(model: nn.Module, args: tuple) -> nn.Module:
    return model if len(args) == 1 else Bound(model, tuple(args[1:]))


# --- the tools: each takes (model, args) and returns (params or None, MACs) -----------------------

def run_flopcounter(model, args, grad=True):
    # With autograd enabled (the default here): under torch.no_grad() an eval-mode
    # nn.MultiheadAttention takes its fused fast path, which FlopCounterMode does not count.
    with torch.set_grad_enabled(grad), FlopCounterMode(display=False) as counter:
        model(*args)
    return None, counter.get_total_flops() // 2


def run_torchinfo(model, args):
    try:
        import torchinfo
    except ImportError as exc:
        raise NA("not installed") from exc
    with _quiet():
        stats = torchinfo.summary(model, input_data=list(args), verbose=0, mode="eval", device="cpu")
    return stats.total_params, stats.total_mult_adds


def run_fvcore(model, args):
    try:
        from fvcore.nn import FlopCountAnalysis, parameter_count
    except ImportError as exc:
        raise NA("not installed") from exc
    with _quiet():
        analysis = FlopCountAnalysis(model, tuple(args))
        analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        total = analysis.total()
    return parameter_count(model)[""], total


def fvcore_unsupported(model, x) -> str:
    """The operators fvcore reports as unsupported (counted as 0) for this model."""
    try:
        from fvcore.nn import FlopCountAnalysis
        with _quiet():
            analysis = FlopCountAnalysis(model, (x,))
            analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
            analysis.total()
            ops = analysis.unsupported_ops()
    except Exception:  # noqa: BLE001 - absence is already reported in the totals table
        return ""
    return ", ".join(f"{op} x{k}" for op, k in sorted(ops.items())) or "none"


def _ptflops(backend, count_functional=True):
    def run(model, args):
        try:
            from ptflops import get_model_complexity_info
        except ImportError as exc:
            raise NA("not installed") from exc
        has_backend = "backend" in inspect.signature(get_model_complexity_info).parameters
        if backend != "pytorch" and not has_backend:
            raise NA("this ptflops has no backend argument")
        wrapped = _one_input(model, args)
        x = args[0]
        kwargs = {"backend": backend} if has_backend else {}
        if not count_functional:
            if "backend_specific_config" not in inspect.signature(get_model_complexity_info).parameters:
                raise NA("this ptflops has no backend_specific_config argument")
            kwargs["backend_specific_config"] = {"count_functional": False}
        with _quiet() as log:
            macs, params = get_model_complexity_info(
                wrapped, tuple(x.shape[1:]), input_constructor=lambda _res: x, as_strings=False,
                print_per_layer_stat=False, ost=io.StringIO(), **kwargs)
        if macs is None:
            lines = [ln for ln in log.getvalue().splitlines() if ln.strip()]
            raise NA(lines[-1] if lines else "ptflops returned None")
        return params, macs
    return run


def run_thop(model, args):
    try:
        import thop
    except ImportError as exc:
        raise NA("not installed") from exc
    with _quiet():
        macs, params = thop.profile(model, inputs=tuple(args), verbose=False)
    return int(params), int(macs)


TOOLS = {
    "FlopCounterMode // 2": run_flopcounter,
    "torchinfo": run_torchinfo,
    "fvcore": run_fvcore,
    "ptflops (pytorch)": _ptflops("pytorch"),
    "ptflops (pytorch, count_functional=False)": _ptflops("pytorch", count_functional=False),
    "ptflops (aten)": _ptflops("aten"),
    "thop": run_thop,
}
PACKAGES = {"torch": "torch", "torchinfo": "torchinfo", "fvcore": "fvcore", "ptflops": "ptflops",
            "thop": "thop"}


def measure(tool, model, args):
    """(params, macs) or the reason the tool cannot answer."""
    try:
        return TOOLS[tool](model, args)
    except Exception as exc:  # noqa: BLE001 - any failure of a peer is a result to report
        return _short(exc)


# --- formatting ---------------------------------------------------------------------------------

def n(x) -> str:
    return f"{x:,}" if isinstance(x, int) else str(x)


def signed(x: int) -> str:
    return f"+{x:,}" if x > 0 else f"−{-x:,}"


def table(headers, rows, align=None) -> str:
    align = align or ["l"] + ["r"] * (len(headers) - 1)
    sep = ["---:" if a == "r" else "---" for a in align]
    out = ["| " + " | ".join(headers) + " |", "| " + " | ".join(sep) + " |"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


# --- one network --------------------------------------------------------------------------------

def leaf_inputs(model, x):
    """Each leaf module with the inputs it received, in call order."""
    seen = []
    hooks = []
    for name, module in model.named_modules():
        if name and not any(True for _ in module.children()):
            hooks.append(module.register_forward_hook(
                lambda m, inp, out, name=name: seen.append((name, m, tuple(t.detach() for t in inp)))))
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in hooks:
            h.remove()
    return seen


def kind_of(module) -> str:
    kind = type(module).__name__
    if isinstance(module, (nn.modules.conv._ConvNd, nn.Linear)) and module.bias is not None:
        kind += "+bias"
    return kind


def network(path: Path) -> str:
    report = archcalc.analyze(path)
    t = report.totals
    model = build(path).eval()
    x = torch.zeros(1, *report.input_shape)

    totals = {tool: measure(tool, model, (x,)) for tool in TOOLS}
    skipped = fvcore_unsupported(model, x)

    # Per leaf module, every tool alone on it (cached by module and input shapes).
    rows = leaf_inputs(model, x)
    arch_macs = {row.name: row.macs for row in report.layers}
    by_kind = defaultdict(lambda: defaultdict(int))  # kind -> tool -> macs
    count = defaultdict(int)
    failed = defaultdict(set)
    cache = {}
    for name, module, args in rows:
        kind = kind_of(module)
        count[kind] += 1
        by_kind[kind]["archcalc"] += arch_macs[name]
        key = (type(module), repr(module), tuple(tuple(a.shape) for a in args))
        for tool in TOOLS:
            if (tool, key) not in cache:
                cache[tool, key] = measure(tool, module, args)
            got = cache[tool, key]
            if isinstance(got, str):
                failed[tool].add(got)
            else:
                by_kind[kind][tool] += got[1]
    assert sum(v["archcalc"] for v in by_kind.values()) == t.macs

    out = [f"### {report.name} (input {list(report.input_shape)})", ""]
    head = ["tool", "params", "MACs", "ratio to archcalc", "difference to archcalc's MACs (measured per module type)"]
    body = [["archcalc", f"{n(t.params)} ({n(t.trainable_params)} trainable + "
             f"{n(t.non_trainable_params)} BatchNorm running stats)", n(t.macs), "1.0000",
             "matrix-product multiply-accumulates only"]]
    for tool in TOOLS:
        got = totals[tool]
        if isinstance(got, str):
            body.append([tool, "n/a", "n/a", "", f"n/a ({got})"])
            continue
        params, macs = got
        if params is None:
            ptext = "—"
        elif params == t.trainable_params:
            ptext = f"{n(params)} (= trainable)"
        else:
            ptext = f"{n(params)} ({signed(params - t.trainable_params)} vs trainable)"
        if tool in failed:
            body.append([tool, ptext, n(macs), f"{macs / t.macs:.4f}",
                         "per-module runs failed: " + "; ".join(sorted(failed[tool]))])
            continue
        parts = []
        for kind in sorted(by_kind, key=lambda k: -abs(by_kind[k][tool] - by_kind[k]["archcalc"])):
            d = by_kind[kind][tool] - by_kind[kind]["archcalc"]
            if d:
                parts.append(f"{kind} {signed(d)}")
        outside = macs - sum(v[tool] for v in by_kind.values())
        if outside:
            parts.append(f"outside leaves {signed(outside)}")
        body.append([tool, ptext, n(macs), f"{macs / t.macs:.4f}",
                     "; ".join(parts) if parts else "none (identical)"])
    out += [table(head, body, ["l", "r", "r", "r", "l"]), ""]
    if skipped:
        out += [f"fvcore's own list of operators it met and did not count ({report.name}): {skipped}.", ""]

    head = ["module type (count)", "archcalc"] + list(TOOLS)
    body = []
    for kind in sorted(by_kind, key=lambda k: -by_kind[k]["archcalc"]):
        body.append([f"{kind} ({count[kind]})", n(by_kind[kind]["archcalc"])]
                    + [n(by_kind[kind][tool]) if tool not in failed else "n/a" for tool in TOOLS])
    out += [f"MACs per module type, each leaf module run alone through each tool ({report.name}):", "",
            table(head, body), ""]
    return "\n".join(out)


# --- single layers ------------------------------------------------------------------------------

class SelfAttention(nn.Module):
    """`nn.MultiheadAttention` as torchvision's ViT calls it (not an archcalc kind)."""

    def __init__(self, dim, heads, need_weights=False):
        super().__init__()
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.need_weights = need_weights

    def forward(self, x):
        return self.attn(x, x, x, need_weights=self.need_weights)[0]


SINGLE = [
    # (label, input shape (batch excluded), archcalc layer spec, or need_weights for SelfAttention)
    ("conv 16→32 k3 p1, bias", [16, 32, 32], "conv: {out: 32, kernel: 3, padding: 1}"),
    ("conv 16→32 k3 p1, no bias", [16, 32, 32], "conv: {out: 32, kernel: 3, padding: 1, bias: false}"),
    ("depthwise conv 16→16 k3 p1 groups 16, no bias", [16, 32, 32],
     "conv: {out: 16, kernel: 3, padding: 1, groups: 16, bias: false}"),
    ("batchnorm (eval)", [16, 32, 32], "batchnorm: {}"),
    ("relu", [16, 32, 32], "relu"),
    ("relu6", [16, 32, 32], "relu6"),
    ("maxpool k3 s2 p1", [16, 32, 32], "maxpool: {kernel: 3, stride: 2, padding: 1}"),
    ("adaptive_avgpool → 8x8", [16, 32, 32], "adaptive_avgpool: [8, 8]"),
    ("global_avgpool", [16, 32, 32], "global_avgpool"),
    ("add (two inputs)", [16, 32, 32], "add"),
    ("dropout (eval)", [16, 32, 32], "dropout: 0.5"),
    ("flatten", [16, 32, 32], "flatten"),
    ("linear 256→10, bias", [256], "linear: 10"),
    ("linear 256→10, no bias", [256], "linear: {out: 10, bias: false}"),
    ("linear 768→768 on 197 tokens, bias", [197, 768], "linear: 768"),
    ("layernorm over 768 on 197 tokens", [197, 768], "layernorm"),
    ("MultiheadAttention(768, 12 heads) on 197 tokens, need_weights=False (as torchvision's ViT)",
     [197, 768], False),
    ("same, need_weights=True (attention products as bmm)", [197, 768], True),
]


def _prod(shape):
    out = 1
    for s in shape:
        out *= s
    return out


def single_layers() -> str:
    rows = []
    for label, shape, layer in SINGLE:
        x = torch.zeros(1, *shape)
        if isinstance(layer, bool):
            model = SelfAttention(768, 12, need_weights=layer).eval()
            args = (x,)
            # archcalc's attention kind: projections and both products, with or without need_weights
            text = f"input: {shape}\nlayers:\n  - attention: {{heads: 12}}\n"
            arch = n(archcalc.analyze(archcalc.parse_spec(text, "<single>")).layers[-1].macs)
        else:
            if layer == "add":
                text = f"input: {shape}\nlayers:\n  - {{name: a, relu}}\n  - {{add: {{}}, from: [input, a]}}\n"
            else:
                text = f"input: {shape}\nlayers:\n  - {layer}\n"
            graph = archcalc.parse_spec(text, "<single>")
            report = archcalc.analyze(graph)
            full = build(graph).eval()
            name = report.layers[-1].name
            model = full.get_submodule(name)
            args = (x, torch.zeros(1, *shape)) if layer == "add" else (x,)
            arch = n(report.layers[-1].macs)
        with torch.no_grad():
            y = model(*args)
        cells = [label, f"{_prod(shape):,} → {y.numel():,}", arch]
        for tool in TOOLS:
            got = measure(tool, model, args)
            cells.append(f"n/a ({got})" if isinstance(got, str) else n(got[1]))
        rows.append(cells)
    head = ["single layer (batch 1)", "elements in → out", "archcalc"] + list(TOOLS)
    out = table(head, rows, ["l", "r"] + ["r"] * (len(head) - 2))
    # The same attention layer under torch.no_grad(), where PyTorch uses its fused fast path.
    x = torch.zeros(1, 197, 768)
    _, fast = run_flopcounter(SelfAttention(768, 12).eval(), (x,), grad=False)
    # Which aten op carries the attention products when need_weights=False.
    ops = set()
    with FlopCounterMode(display=False) as counter:
        SelfAttention(768, 12)(x)
    counted = sorted(str(op) for op in counter.get_flop_counts().get("Global", {}))
    try:
        from torch.utils._python_dispatch import TorchDispatchMode

        class Ops(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                ops.add(str(func))
                return func(*args, **(kwargs or {}))

        with Ops():
            SelfAttention(768, 12)(x)
        sdpa = sorted(op for op in ops if "attention" in op) or ["none"]
    except Exception as exc:  # noqa: BLE001 - private API; report and go on
        sdpa = [f"n/a ({_short(exc)})"]
    return out + (
        "\n\nFlopCounterMode // 2 on the need_weights=False MultiheadAttention under torch.no_grad() "
        f"(eval-mode fused fast path): {fast:,}. With autograd on, the attention products run as "
        f"{', '.join(sdpa)}; the ops FlopCounterMode counted there: {', '.join(counted)}.")


def versions() -> str:
    parts = [f"Python {platform.python_version()}"]
    for label, dist in PACKAGES.items():
        try:
            parts.append(f"{label} {importlib.metadata.version(dist)}")
        except importlib.metadata.PackageNotFoundError:
            parts.append(f"{label} not installed")
    parts.append(f"archcalc {archcalc.__version__}")
    return ", ".join(parts)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="resnet18 and the single-layer table only")
    opts = parser.parse_args(argv)
    specs = [ZOO / "resnet18.yaml"] if opts.quick else sorted(ZOO.glob("*.yaml"))
    print(f"# archcalc vs PyTorch counters ({datetime.date.today()})\n")
    print(versions() + "\n")
    print("MACs are for one image (batch 1), eval mode, input torch.zeros(1, C, H, W).\n")
    for path in specs:
        print(network(path))
    print("### Single layers\n")
    print(single_layers())


if __name__ == "__main__":
    main()
