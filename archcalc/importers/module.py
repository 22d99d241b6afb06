"""Import a PyTorch `nn.Module` as a spec: `from_module(module, input_shape)` and
`import_module_source("FILE.py:NAME" | "torchvision:NAME" | "timm:NAME", "3,224,224")`.

How: `torch.fx` symbolic tracing, with every module archcalc has a kind for (and every other
`torch.nn` module) kept as one call; each node keeps `nn_module_stack`, the module instances it
runs in, which become block instances named as the modules are, so that the built spec's
state_dict keys are the module's (`layer1.0.conv1.weight`). `torch.fx` was chosen over
`torch.export`: it keeps module calls whole (a Conv2d is one node with its module, not an aten
convolution whose padding and groups would have to be read back), keeps the Python functions a
forward calls (`torch.flatten`, `+`), and needs no fake-tensor kernels (torchvision's, here, do
not load). Shapes come from running the traced graph once on a random batch of two.

Parameters read directly (`get_attr`) are layers in two cases only: a module whose one functional
call reads all of its own parameters (LayerNorm2d's `F.layer_norm(x, ..., self.weight, self.bias)`)
is that kind, named as the module; a parameter used as a kind holding one bare tensor uses it
(`x * self.layer_scale`, `torch.cat([self.class_token.expand(n, -1, -1), x], 1)`, `x + self.pos_embedding`)
is that kind with `bare: true`, named as the parameter.

Faithful or refused: a module, function or method with no kind, an argument a kind does not have
(BatchNorm's momentum=None, MaxPool's return_indices), any other direct read of a parameter or
buffer, a module holding parameters that the forward never calls, or one called twice (shared
weights) is a SpecError naming it, its class and where it sits. A symbolic input (`3,H,W`) is traced at two
sizes; where the layers' arguments differ (a reshape to a size fixed by the input) it is refused.
"""
from __future__ import annotations

import importlib
import importlib.util
import math
import operator
import re
import sys
from pathlib import Path

from archcalc.errors import SpecError
from archcalc.importers import _first_line
from archcalc.importers._writer import INPUT, Entry, Scope, snake_case, write_spec
from archcalc.layers import KINDS
from archcalc.reader.cli_text import parse_sizes

_SYMBOL_SIZES = (224, 256)  # a symbolic size is traced at these two values


def _torch():
    try:
        import torch
        import torch.fx  # noqa: F401
    except ImportError:
        raise SpecError("importing a PyTorch module needs torch: pip install 'archcalc[torch]'") from None
    return torch


# --- the public functions ------------------------------------------------------------------------

def from_module(module, input_shape, *, source: str | None = None, name: str | None = None) -> str:
    """The spec (YAML text) of `module` for one example of shape `input_shape` (batch excluded;
    channels first). Sizes may be names (`(3, "H", "W")`): the spec is then symbolic, when the
    traced layers do not depend on them. Raises SpecError for anything archcalc cannot represent."""
    torch = _torch()
    if not isinstance(module, torch.nn.Module):
        raise SpecError(f"from_module takes a torch.nn.Module, got {type(module).__name__}")
    shape = _shape(input_shape)
    cls = type(module)
    source = source or f"{cls.__module__}.{cls.__qualname__}"
    symbols = [s for s in shape if isinstance(s, str)]
    entries, traced = _convert(module, [s if isinstance(s, int) else _SYMBOL_SIZES[0] for s in shape])
    if symbols:
        other, _ = _convert(module, [s if isinstance(s, int) else _SYMBOL_SIZES[1] for s in shape])
        for a, b in zip(entries, other):
            if (a.kind, a.args) != (b.kind, b.args):
                raise SpecError(f"{a.where}: its arguments depend on the input's size ({a.kind} {a.args} at "
                                f"{_SYMBOL_SIZES[0]}, {b.args} at {_SYMBOL_SIZES[1]}), so the spec cannot keep "
                                f"{', '.join(symbols)} symbolic; give numbers (--input "
                                f"{','.join(str(s if isinstance(s, int) else _SYMBOL_SIZES[0]) for s in shape)})")
        if len(entries) != len(other):
            raise SpecError("the traced layers depend on the input's size, so the spec cannot keep "
                            f"{', '.join(symbols)} symbolic; give numbers")
    spec_name = name or re.sub(r"[^a-z0-9_]", "_", cls.__name__.lower())
    where = cls.__qualname__ if cls.__module__.startswith("archcalc_import_") else f"{cls.__module__}.{cls.__qualname__}"
    header = [f"imported by archcalc from {source} ({where})",
              f"input: one example of shape [{', '.join(str(s) for s in shape)}] (batch excluded); "
              "names, as state_dict keys, are the module's own"]
    text = write_spec(entries, shape, name=spec_name, header=header, kinds=KINDS)
    from archcalc.reader.parse import parse_spec

    try:
        parse_spec(text)
        from archcalc.analysis.walk import analyze_graph
        from archcalc.reader.parse import parse_spec as parse_at

        # the spec's output is the module's, at the size it was traced at (a mapping that kept the
        # parameters but not the shape would show here, never in the user's figures)
        got = analyze_graph(parse_at(text, bindings={s: _SYMBOL_SIZES[0] for s in symbols})).output_shape
    except SpecError as exc:  # a name or structure the spec rules refuse: say so, not a bad file
        raise SpecError(f"the spec written for {source} does not read back ({exc}); this module cannot be "
                        "imported yet") from None
    if traced is not None and tuple(got) != tuple(traced[1:]):
        raise SpecError(f"the spec written for {source} gives an output of {list(got)}, the module one of "
                        f"{list(traced[1:])}; this module cannot be imported yet (please report it)")
    return text


def import_module_source(source: str, input_spec=None) -> str:
    """`FILE.py:NAME` (NAME: a function or class in the user's file returning an nn.Module; the
    file is run as Python, as `python FILE.py` would), `torchvision:NAME` or `timm:NAME`, with
    `input_spec` the `--input` text (`3,224,224` or `3,H,W`)."""
    source = str(source)
    torch = _torch()
    if source.startswith("torchvision:"):
        module, default = _torchvision(source.split(":", 1)[1]), None
        default = (3, 299, 299) if source.endswith("inception_v3") else (3, 224, 224)
    elif source.startswith("timm:"):
        module = _timm(source.split(":", 1)[1])
        cfg = getattr(module, "pretrained_cfg", None) or {}
        default = tuple(cfg.get("input_size", (3, 224, 224)))  # the size the model was made for
    else:
        match = re.fullmatch(r"(?P<file>.+\.py):(?P<name>[A-Za-z_][A-Za-z0-9_.]*)", source)
        if match is None:
            raise SpecError(f"{source!r}: expected FILE.py:NAME, torchvision:NAME or timm:NAME")
        module, default = _from_file(Path(match["file"]), match["name"]), None
    if not isinstance(module, torch.nn.Module):
        raise SpecError(f"{source}: returned {type(module).__name__}, not a torch.nn.Module")
    if input_spec is None:
        if default is None:
            raise SpecError(f"{source}: give the input's shape with --input (one example, batch excluded: "
                            "--input 3,224,224, or 3,H,W for a symbolic spec)")
        input_spec = default
    name = source.rsplit(":", 1)[1].split(".")[-1]
    return from_module(module, _shape(input_spec), source=source, name=snake_case(name) or "model")


def _from_file(path: Path, name: str):
    if not path.is_file():
        raise SpecError(f"{path}: no such file")
    module_name = f"archcalc_import_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = mod
    folder = str(path.resolve().parent)
    sys.path.insert(0, folder)  # as `python FILE.py` does: the file's folder first, for its own imports
    try:
        try:
            spec.loader.exec_module(mod)  # the user's own file, run as they asked
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - any error (or sys.exit) in the user's file: one line
            raise SpecError(f"{path}: running it failed: {type(exc).__name__}: {_first_line(exc)}") from None
        obj = mod
        for part in name.split("."):
            if not hasattr(obj, part):
                raise SpecError(f"{path}: defines no '{name}'")
            obj = getattr(obj, part)
        if not callable(obj):
            raise SpecError(f"{path}: '{name}' is not a function or class")
        try:
            return obj()
        except (Exception, SystemExit) as exc:  # noqa: BLE001
            raise SpecError(f"{path}: calling {name}() failed: {type(exc).__name__}: {_first_line(exc)}") from None
    finally:
        sys.modules.pop(module_name, None)
        if folder in sys.path:
            sys.path.remove(folder)


def _torchvision(name: str):
    try:
        import torchvision.models as models
    except Exception:  # noqa: BLE001 - torchvision absent, or its C extension does not load
        models = _torchvision_models_tolerant()
        if models is None:
            raise SpecError("torchvision:NAME needs torchvision, which does not import here: pip install "
                            "torchvision") from None
    try:
        builder = models.get_model_builder(name)
    except ValueError:
        raise SpecError(f"torchvision has no model '{name}'") from None
    return builder(weights=None)


def _torchvision_models_tolerant():
    """torchvision.models where torchvision's C extension fails to load against this torch
    ("operator torchvision::nms does not exist" while registering fake kernels): its model code is
    pure Python, so torchvision is imported again with the registrations of fake kernels and autograd
    formulas for `torchvision::` operators skipped where they fail (the detection operators are then
    unavailable; no classification model uses them). tests/torchvision_models.py uses it."""
    import contextlib
    import functools

    import torch.library as library

    @contextlib.contextmanager
    def tolerant():
        saved = {n: getattr(library, n) for n in ("register_fake", "register_autograd", "impl_abstract")
                 if hasattr(library, n)}

        def wrap(original):
            @functools.wraps(original)
            def register(qualname, *args, **kwargs):
                if not (isinstance(qualname, str) and qualname.startswith("torchvision::")):
                    return original(qualname, *args, **kwargs)
                try:
                    result = original(qualname, *args, **kwargs)
                except RuntimeError:
                    return (lambda fn: fn) if not args else None
                if callable(result) and not args:
                    def decorate(fn):
                        try:
                            return result(fn)
                        except RuntimeError:
                            return fn
                    return decorate
                return result
            return register

        for n, original in saved.items():
            setattr(library, n, wrap(original))
        try:
            yield
        finally:
            for n, original in saved.items():
                setattr(library, n, original)

    for n in [n for n in sys.modules if n == "torchvision" or n.startswith("torchvision.")]:
        del sys.modules[n]  # the failed import left half-initialised modules
    try:
        with tolerant():
            import torchvision.models as models
    except Exception:  # noqa: BLE001
        return None
    return models


def _timm(name: str):
    try:
        import timm
    except Exception:  # noqa: BLE001 - timm imports torchvision, whose C extension may not load here
        try:
            if _torchvision_models_tolerant() is None:
                raise ImportError("torchvision")
            import timm
        except Exception:  # noqa: BLE001
            raise SpecError("timm:NAME needs timm, which does not import here: pip install timm") from None
    try:
        return timm.create_model(name, pretrained=False)
    except Exception as exc:  # noqa: BLE001
        raise SpecError(f"timm cannot create '{name}': {_first_line(exc)}") from None


def _shape(value) -> list:
    """One example's shape: the `--input` text (`3,224,224`, `3,H,W`) or a sequence of sizes and names."""
    bad = f"input shape {value!r}: expected sizes > 0 or names, such as 3,224,224 or 3,H,W"
    parts = parse_sizes(value, names=True, digits=12) if isinstance(value, str) else list(value)
    if parts is None:
        raise SpecError(bad)
    out = []
    for p in parts:
        if isinstance(p, int) and not isinstance(p, bool) and p > 0:
            out.append(p)
        elif isinstance(p, str) and re.fullmatch(r"[1-9][0-9]{0,11}", p):
            out.append(int(p))
        elif isinstance(p, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,99}", p):
            out.append(p)
        else:
            raise SpecError(bad)
    if not out:
        raise SpecError("the input shape is empty; expected one example's shape, such as 3,224,224")
    return out


# --- tracing --------------------------------------------------------------------------------------

def _module_kinds():
    """nn class -> a function (module, in_shape, out_shape) -> (kind, args)."""
    import torch.nn as nn

    table = {}

    def conv(m, i, o):
        padding = m.padding if isinstance(m.padding, str) else _axes(m.padding)
        args = {"out": m.out_channels, "kernel": _axes(m.kernel_size), "stride": _axes(m.stride),
                "padding": padding, "dilation": _axes(m.dilation), "groups": m.groups, "bias": m.bias is not None,
                "padding_mode": m.padding_mode}
        return "conv", args

    def conv_t(m, i, o):
        if m.padding_mode != "zeros":
            _refuse_arg(m, "padding_mode", m.padding_mode)
        args = {"out": m.out_channels, "kernel": _axes(m.kernel_size), "stride": _axes(m.stride),
                "padding": _axes(m.padding), "output_padding": _axes(m.output_padding),
                "dilation": _axes(m.dilation), "groups": m.groups, "bias": m.bias is not None}
        return "conv_transpose", args

    def bn(m, i, o):
        if m.momentum is None:
            _refuse_arg(m, "momentum", None)
        return "batchnorm", {"eps": m.eps, "momentum": m.momentum, "affine": m.affine,
                             "track_running_stats": m.track_running_stats}

    def inorm(m, i, o):
        if m.momentum is None:
            _refuse_arg(m, "momentum", None)
        return "instancenorm", {"eps": m.eps, "momentum": m.momentum, "affine": m.affine,
                                "track_running_stats": m.track_running_stats}

    def ln(m, i, o):
        affine = m.elementwise_affine
        return "layernorm", {"dims": len(m.normalized_shape), "eps": m.eps, "affine": affine,
                             "bias": (m.bias is not None) if affine else True}

    def gn(m, i, o):
        return "groupnorm", {"groups": m.num_groups, "eps": m.eps, "affine": m.affine}

    def rms(m, i, o):
        return "rmsnorm", {"dims": len(m.normalized_shape), "eps": m.eps, "affine": m.elementwise_affine}

    def linear(m, i, o):
        return "linear", {"out": m.out_features, "bias": m.bias is not None}

    def maxpool(m, i, o):
        if m.return_indices:
            _refuse_arg(m, "return_indices", True)
        stride = m.stride if m.stride is not None else m.kernel_size
        return "maxpool", {"kernel": _axes(m.kernel_size), "stride": _axes(stride), "padding": _axes(m.padding),
                           "dilation": _axes(m.dilation), "ceil_mode": m.ceil_mode}

    def avgpool(m, i, o):
        if getattr(m, "divisor_override", None) is not None:
            _refuse_arg(m, "divisor_override", m.divisor_override)
        stride = m.stride if m.stride is not None else m.kernel_size
        return "avgpool", {"kernel": _axes(m.kernel_size), "stride": _axes(stride), "padding": _axes(m.padding),
                           "ceil_mode": m.ceil_mode, "count_include_pad": m.count_include_pad}

    def adaptive(m, i, o):
        return "adaptive_avgpool", {"size": _axes(tuple(o[2:]))}

    def adaptive_max(m, i, o):
        if any(s != 1 for s in o[2:]) or m.return_indices:
            _refuse_arg(m, "output_size", m.output_size)
        return "global_maxpool", {}

    def dropout(m, i, o):
        return "dropout", {"p": m.p}

    def dropout2d(m, i, o):
        return "dropout2d", {"p": m.p}

    def flatten(m, i, o):
        return _flatten(m.start_dim, m.end_dim, len(i), f"nn.Flatten({m.start_dim}, {m.end_dim})")

    def identity(m, i, o):
        return "identity", {}

    def stochastic_depth(m, i, o):
        if m.mode not in ("row", "batch"):
            _refuse_arg(m, "mode", m.mode)
        if not 0 <= m.p <= 1:
            _refuse_arg(m, "p", m.p)
        return "stochastic_depth", {"p": float(m.p), "mode": m.mode}

    def prelu(m, i, o):
        return "prelu", {"num_parameters": m.num_parameters}

    def zeropad(m, i, o):
        made = _zeropad(list(m.padding) if isinstance(m.padding, (tuple, list)) else [m.padding] * 2 * (len(i) - 2),
                        len(i), "x", type(m).__name__)
        if made[0] == "value":
            return "identity", {}
        return made[0], made[1]

    def shuffle(m, i, o):
        return "channel_shuffle", {"groups": m.groups}

    def upsample(m, i, o):
        if m.recompute_scale_factor:
            _refuse_arg(m, "recompute_scale_factor", True)
        args = {"mode": m.mode}
        if m.size is not None:
            args["size"] = _axes(m.size)
        else:
            args["scale"] = _axes(m.scale_factor)
        if m.align_corners is not None:
            args["align_corners"] = m.align_corners
        return "upsample", args

    def softmax_like(kind):
        def make(m, i, o):
            if m.dim is None:
                _refuse_arg(m, "dim", None)
            return kind, {"dim": _dim(m.dim, len(i), type(m).__name__)}
        return make

    for cls in (nn.Conv1d, nn.Conv2d, nn.Conv3d):
        table[cls] = conv
    for cls in (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d):
        table[cls] = conv_t
    for cls in (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d):
        table[cls] = bn
    for cls in (nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d):
        table[cls] = inorm
    for cls in (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d):
        table[cls] = maxpool
    for cls in (nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d):
        table[cls] = avgpool
    for cls in (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d):
        table[cls] = adaptive
    for cls in (nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d):
        table[cls] = adaptive_max
    table.update({nn.LayerNorm: ln, nn.GroupNorm: gn, nn.Linear: linear, nn.Dropout: dropout,
                  nn.Dropout1d: dropout2d, nn.Dropout2d: dropout2d, nn.Dropout3d: dropout2d, nn.Flatten: flatten,
                  nn.Identity: identity, nn.ZeroPad1d: zeropad, nn.ZeroPad2d: zeropad, nn.ZeroPad3d: zeropad, nn.PReLU: prelu, nn.ChannelShuffle: shuffle, nn.Upsample: upsample})
    if hasattr(nn, "RMSNorm"):
        table[nn.RMSNorm] = rms
    table[nn.MultiheadAttention] = _multihead_attention
    table["BatchNormAct2d"] = _bn_act(bn, table)
    # timm.layers.Linear: nn.Linear whose forward casts the weight to the input's dtype (for
    # torchscript); in one dtype it is nn.Linear's computation
    table["timm.layers.linear.Linear"] = linear
    # torchvision.ops.StochasticDepth(p, mode) (EfficientNet's, Swin's, ConvNeXt's residual branches):
    # the kind of the same name and arguments, identity in eval as torchvision's
    table["torchvision.ops.stochastic_depth.StochasticDepth"] = stochastic_depth
    table["timm.layers.drop.DropPath"] = _drop_path
    table["torchvision.ops.misc.Permute"] = _permute  # ConvNeXt's and Swin's torch.permute(x, self.dims)
    # torchvision's Swin (v1): the window kinds hold the same tensors under the same names (qkv, proj,
    # relative_position_bias_table, the relative_position_index buffer; reduction, norm)
    table["torchvision.models.swin_transformer.ShiftedWindowAttention"] = _window_attention
    table["torchvision.models.swin_transformer.PatchMerging"] = _patch_merging
    # timm's LayerScale (x * gamma, gamma [D] along the last axis) and LayerScale2d (gamma viewed as
    # [1, C, 1, 1]): `scale`, whose module holds `gamma` as they do
    table["timm.layers.layer_scale.LayerScale"] = _layer_scale(-1)
    table["timm.layers.layer_scale.LayerScale2d"] = _layer_scale(0)
    table["timm.layers.attention.Attention"] = _timm_attention  # layout: fused holds qkv and proj
    for kind, layer in KINDS.items():  # elementwise kinds name their nn class and take its arguments
        torch_class = getattr(layer, "torch_class", "")
        cls = getattr(nn, torch_class, None) if torch_class else None
        if cls is None or cls in table:
            continue
        if kind in ("softmax", "log_softmax", "softmin"):
            table[cls] = softmax_like(kind)
            continue
        names = [a.name for a in layer.args]

        def make(m, i, o, kind=kind, names=names):
            return kind, {n: getattr(m, n) for n in names}
        table[cls] = make
    return table


def _bn_act(bn, table):
    """timm's BatchNormAct2d: a BatchNorm2d (its weights the module's own: `bn1.weight`) followed
    by its `drop` and `act` children, which hold no weights (so they may take automatic names)."""
    import torch.nn as nn

    def convert(m, i, o):
        if not isinstance(m, nn.BatchNorm2d):
            raise _Refused(f"{type(m).__name__} is not a BatchNorm2d")
        out = [bn(m, i, o)]
        for part in (m.drop, m.act):
            if isinstance(part, nn.Identity):
                continue
            make = table.get(type(part))
            if make is None or any(True for _ in part.parameters()):
                raise _Refused(f"{type(m).__name__} with {type(part).__name__}, which has no archcalc kind")
            out.append(make(part, o, o))
        return out
    return convert


def _permute(m, i, o):
    dims = [d % len(i) for d in m.dims]
    if len(dims) != len(i) or dims[0] != 0:
        raise _Refused(f"{type(m).__name__} with dims={list(m.dims)}, which moves the batch dimension")
    return "permute", {"dims": [d - 1 for d in dims[1:]]}


def _window_attention(m, i, o):
    """torchvision's ShiftedWindowAttention on [N, H, W, C]: window_attention with its arguments."""
    import torch.nn as nn

    if i is None or len(i) != 4:
        raise _Refused(f"ShiftedWindowAttention on an input of shape {list(i or ())}; it takes [N, H, W, C]")
    if not (isinstance(m.qkv, nn.Linear) and isinstance(m.proj, nn.Linear)) or \
            tuple(m.relative_position_bias_table.shape) != ((2 * m.window_size[0] - 1) * (2 * m.window_size[1] - 1),
                                                          m.num_heads):
        raise _Refused("ShiftedWindowAttention whose projections or bias table differ from torchvision's")
    return "window_attention", {"heads": m.num_heads, "window": _axes(m.window_size), "shift": _axes(m.shift_size),
                                "qkv_bias": m.qkv.bias is not None, "proj_bias": m.proj.bias is not None,
                                "attention_dropout": float(m.attention_dropout), "dropout": float(m.dropout)}


def _patch_merging(m, i, o):
    """torchvision's PatchMerging (v1): pad to even H and W, the four 2 x 2 neighbours side by side,
    LayerNorm over 4C, a Linear to 2C without bias: patch_merging."""
    import torch.nn as nn

    norm = m.norm
    if type(norm) is not nn.LayerNorm or not norm.elementwise_affine or norm.bias is None or \
            m.reduction.bias is not None:
        raise _Refused(f"PatchMerging with norm {type(norm).__name__} (patch_merging holds torchvision's "
                       "nn.LayerNorm with weight and bias, and a Linear without bias)")
    return "patch_merging", {"eps": norm.eps}


def _drop_path(m, i, o):
    """timm's DropPath(drop_prob, scale_by_keep): stochastic depth per example (`mode: row`), the
    kept examples divided by 1 - p (as torchvision's); an identity in eval mode."""
    if not m.scale_by_keep and m.drop_prob > 0:
        _refuse_arg(m, "scale_by_keep", False)  # the kept examples not rescaled: not torchvision's rule
    if not 0 <= m.drop_prob <= 1:
        _refuse_arg(m, "drop_prob", m.drop_prob)
    return "stochastic_depth", {"p": float(m.drop_prob), "mode": "row"}


def _layer_scale(dim):
    def convert(m, i, o):
        gamma = m.gamma.detach()
        if gamma.dim() != 1:
            raise _Refused(f"{type(m).__name__} with gamma of shape {list(gamma.shape)}; scale takes a vector")
        return "scale", {"init": _init_value(gamma, m.init_values), "dim": dim}
    return convert


def _init_value(tensor, fallback=1.0) -> float:
    """A learned tensor's starting value for the spec: its value where all its values are equal,
    else `fallback` (the values themselves load with the state_dict; no figure depends on them)."""
    flat = tensor.detach().reshape(-1)
    if not (flat.numel() and bool((flat == flat[0]).all())):
        return float(fallback)
    value = float(flat[0])
    for digits in range(1, 18):  # the shortest decimal that is the same value in the tensor's dtype (1e-06)
        short = float(f"{value:.{digits}g}")
        if bool(flat.new_tensor(short) == flat[0]):
            return short
    return value


def _multihead_attention(m, i, o):
    """nn.MultiheadAttention(D, H, batch_first=True) as self-attention: attention with its packed
    layout (in_proj_weight [3D, D], in_proj_bias, out_proj), so its state_dict loads."""
    if not m.batch_first:
        _refuse_arg(m, "batch_first", False)  # [T, N, D]: a spec's sequences are [T, D] per example
    if not m._qkv_same_embed_dim:
        raise _Refused(f"MultiheadAttention with kdim={m.kdim}, vdim={m.vdim} apart from embed_dim={m.embed_dim} "
                       "(separate key/value projections), which no archcalc kind has")
    if m.bias_k is not None:
        _refuse_arg(m, "add_bias_kv", True)
    if m.add_zero_attn:
        _refuse_arg(m, "add_zero_attn", True)
    if i is None or len(i) != 3:
        raise _Refused(f"MultiheadAttention on an input of shape {list(i or ())}; it takes [N, T, D]")
    return "attention", {"heads": m.num_heads, "bias": m.in_proj_bias is not None, "dropout": m.dropout,
                         "layout": "packed"}


def _keyword_options(convert, kwargs: dict, path: str, cls: str) -> dict:
    """The keyword arguments of a module call that its converter takes (`convert.keywords`: name ->
    the Python values it can write), as traced: Python values, not tensors. Others are refused."""
    accepted = getattr(convert, "keywords", {})
    for key, v in kwargs.items():
        if key not in accepted or isinstance(v, fx_node_type()) or not any(v is ok for ok in accepted[key]):
            shown = "a tensor" if isinstance(v, fx_node_type()) else repr(v)
            raise _Refused(f"module '{path}' ({cls}) is called with {key}={shown}, which the importer does not "
                           "write" + (f" (it takes {key} = {' or '.join(map(repr, accepted[key]))})" if key in accepted
                                      else ""))
    return dict(kwargs)


def _timm_attention(m, i, o, attn_mask=None, is_causal=False):
    """timm's Attention (ViT, DeiT, ...): attention with layout: fused, which holds its qkv and proj
    under their names; its variants (q/k norm, a norm before proj, the output gate, dropout after
    proj) are refused by name."""
    if not isinstance(m.q_norm, _torch().nn.Identity) or not isinstance(m.k_norm, _torch().nn.Identity):
        raise _Refused("Attention with qk_norm=True: attention's layout: fused (timm's qkv and proj) holds no q/k "
                       "norm (the separate layout has one, under Hugging Face's names)")
    if not isinstance(getattr(m, "norm", None), (_torch().nn.Identity, type(None))):
        _refuse_arg(m, "scale_norm", True)
    if getattr(m, "gate", None) is not None:
        _refuse_arg(m, "gated", True)
    if m.proj_drop.p:
        _refuse_arg(m, "proj_drop", m.proj_drop.p)  # a dropout after the projection: not attention's
    if i is None or len(i) != 3 or m.qkv.in_features != i[-1]:
        raise _Refused(f"Attention on an input of shape {list(i or ())}; it takes [N, T, D]")
    qkv_bias, proj_bias = m.qkv.bias is not None, m.proj.bias is not None
    args = {"heads": m.num_heads, "bias": qkv_bias, "causal": bool(is_causal), "dropout": m.attn_drop.p,
            "layout": "fused"}
    if m.head_dim * m.num_heads != m.qkv.in_features:
        args["head_dim"] = m.head_dim
    if proj_bias != qkv_bias:
        args["o_bias"] = proj_bias
    if m.proj.out_features != m.qkv.in_features:
        raise _Refused(f"Attention with dim_out {m.proj.out_features} apart from its input's {m.qkv.in_features}")
    return "attention", args


_timm_attention.keywords = {"attn_mask": (None,), "is_causal": (False, True)}


def _self_attention_input(m, node, value, path):
    """The one tensor nn.MultiheadAttention reads as query, key and value (self-attention, no mask);
    other uses are refused by name."""
    names = ("query", "key", "value", "key_padding_mask", "need_weights", "attn_mask", "average_attn_weights",
             "is_causal")
    given = dict(zip(names, node.args))
    given.update(node.kwargs)
    q, k, v = (given.get(n) for n in names[:3])
    if not (q is k is v) or not isinstance(value.get(q), str):
        raise _Refused(f"module '{path}' (MultiheadAttention) is called with a query, key and value that differ "
                       "(cross-attention); archcalc imports it as self-attention, attn(x, x, x)")
    for name in ("key_padding_mask", "attn_mask"):
        if given.get(name) is not None:
            raise _Refused(f"module '{path}' (MultiheadAttention) is called with {name}, which the importer does "
                           "not map (a spec's attention takes causal: true for the causal mask)")
    if given.get("is_causal"):
        _refuse_arg(m, "is_causal", True)
    return q


def _qualified(m) -> str:
    return f"{type(m).__module__}.{type(m).__qualname__}"


def _refuse_arg(m, arg, value):
    raise _Refused(f"{type(m).__name__} with {arg}={value!r}, which no archcalc kind has")


class _Refused(Exception):
    """A module or operation archcalc cannot represent (made a SpecError with its place)."""


def _axes(value):
    value = tuple(value) if isinstance(value, (tuple, list)) else (value,)
    if any(isinstance(v, float) and not float(v).is_integer() for v in value):
        value = tuple(float(v) for v in value)
    else:
        value = tuple(int(v) for v in value)
    return value[0] if len(set(value)) == 1 else list(value)


def _dim(dim: int, rank: int, what: str) -> int:
    """A dimension of the batched tensor (rank = batched rank) as the spec's (batch excluded)."""
    if dim < 0:
        dim += rank
    if dim == 0:
        raise _Refused(f"{what} works along the batch dimension, which a spec's layers never do")
    return dim - 1


def _flatten(start, end, rank, what):
    s = start + rank if start < 0 else start
    e = end + rank if end < 0 else end
    if s == 0:
        raise _Refused(f"{what} merges the batch dimension into others")
    args = {"start_dim": s - 1, "end_dim": e - 1 if end >= 0 else end}
    return "flatten", args


class _Unsupported(Exception):
    pass


def _convert(module, shape: list) -> tuple[list[Entry], tuple | None]:
    torch = _torch()
    import torch.fx as fx
    from torch.fx.passes.shape_prop import ShapeProp

    table = _module_kinds()
    modes = {m: m.training for m in module.modules()}
    module.eval()  # trace the inference graph (no auxiliary training heads), and do not touch BN statistics
    try:
        class Tracer(fx.Tracer):
            def is_leaf_module(self, m, qualname):
                if type(m) is torch.nn.TransformerEncoderLayer:
                    return False  # traced through: norms, nn.MultiheadAttention, Linears, residual adds
                return (type(m) in table or type(m).__name__ in table or _qualified(m) in table
                        or super().is_leaf_module(m, qualname))

        tracer = Tracer()
        # arguments of forward after the input that have defaults (timm's attn_mask=None) keep them
        import inspect

        try:
            params = list(inspect.signature(module.forward).parameters.values())[1:]
        except (TypeError, ValueError):
            params = []
        fixed = {p.name: p.default for p in params if p.default is not inspect.Parameter.empty
                 and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        fastpath = torch.backends.mha.get_fastpath_enabled()
        try:
            # nn.TransformerEncoderLayer tests its input before its fused fast path (the same
            # computation); with the fast path off it takes its plain path, which traces
            torch.backends.mha.set_fastpath_enabled(False)
            graph = tracer.trace(module, concrete_args=fixed or None)
        except Exception as exc:  # noqa: BLE001 - data-dependent control flow, unsupported Python
            raise SpecError(f"torch.fx cannot trace {type(module).__name__}: {type(exc).__name__}: "
                            f"{_first_line(exc)}") from None
        finally:
            torch.backends.mha.set_fastpath_enabled(fastpath)
        gm = fx.GraphModule(tracer.root, graph)
        placeholders = [n for n in graph.nodes if n.op == "placeholder"
                        and re.sub(r"_[0-9]+$", "", n.target) not in fixed]
        if len(placeholders) != 1:
            raise SpecError(f"{type(module).__name__}.forward takes {len(placeholders)} inputs; importing takes "
                            "modules of one input tensor")
        first = next(iter(module.parameters()), None)
        example = torch.randn(2, *shape, device=first.device if first is not None else None,
                              dtype=first.dtype if first is not None and first.is_floating_point() else None)
        try:
            class Prop(ShapeProp):  # shapes of tensors, and the Python values (sizes) beside them
                def run_node(self, n):
                    result = super().run_node(n)
                    if not isinstance(result, torch.Tensor):
                        n.meta["python_value"] = result
                    return result

            import contextlib
            import io

            # ShapeProp prints the failing node's traceback itself (traceback.print_exc) before
            # raising its own RuntimeError from the module's error: keep it off the terminal
            with torch.no_grad(), contextlib.redirect_stderr(io.StringIO()):
                Prop(gm).propagate(example)
        except Exception as exc:  # noqa: BLE001
            cause = exc.__cause__ if isinstance(exc.__cause__, Exception) else exc  # the module's own error
            raise SpecError(f"{type(module).__name__} does not run on an input of shape {list(shape)}: "
                            f"{type(cause).__name__}: {_first_line(cause)}") from None
        return _entries(module, gm, table)  # (entries, the traced output's shape, batch included)
    finally:
        for m, mode in modes.items():
            m.training = mode


def _shape_of(node):
    meta = node.meta.get("tensor_meta")
    if meta is None or not hasattr(meta, "shape"):
        return None
    return tuple(meta.shape)


def _entries(root, gm, table) -> tuple[list[Entry], tuple | None]:
    import torch

    entries: list[Entry] = []
    traced = None
    value = {}  # fx node -> value name (a tensor), or a Python value (sizes, tuples of pieces)
    called = {}
    modules = dict(root.named_modules())
    first_name = {}  # one tensor held by two modules (b.weight = a.weight): shared, as a module called twice
    for name, p in root.named_parameters(remove_duplicate=False):
        if id(p) in first_name:
            raise SpecError(f"'{name}' is the same tensor as '{first_name[id(p)]}' (tied weights): its weights are "
                            "shared, which a spec cannot write (each layer has its own)")
        first_name[id(p)] = name
    own_calls, own_reads = _own_parameter_calls(root, gm, modules)
    owners = set(own_calls.values())
    bare_uses, bare_reads = _bare_parameter_uses(root, gm)
    bare_done = set()  # the parameters made bare layers
    for node in gm.graph.nodes:
        stack = list(node.meta.get("nn_module_stack", {}).items())
        for k, (_, (path, _)) in enumerate(stack):
            if path in owners:  # inside a module whose one functional call is its layer (LayerNorm2d):
                stack = stack[:k]  # its other, weightless steps (the permutes) sit where it sits
                break
        where_path = stack[-1][1][0] if stack else ""
        where_cls = stack[-1][1][1].__name__ if stack else type(root).__name__
        if node in own_reads or node in bare_reads:  # read by the layer that a later node makes
            value[node] = ("python", node.name)
            continue
        if node in bare_uses:
            kind, args, x, target = bare_uses[node]
            owner, _, local = target.rpartition(".")
            if where_path != owner or not isinstance(value.get(x), str):
                raise SpecError(f"'{target}' (a parameter) is read directly by the forward of "
                                f"{_place(where_path, where_cls)}, which does not hold it; a spec holds a bare "
                                "parameter in the block that uses it")
            _check_local(local, target, "a parameter")
            entry = Entry(kind, _clean(kind, args), node.name, [value[x]], name=local, scope=_scopes(stack, root),
                          trainable=root.get_parameter(target).requires_grad,
                          where=f"{target} (a parameter of {_place(owner, where_cls)})", bare=True)
            entries.append(entry)
            bare_done.add(target)
            value[node] = node.name
            continue
        if node in own_calls:
            owner = own_calls[node]
            m = modules[owner]
            cls = type(m).__name__
            try:
                kind, args, src = _own_call_kind(node, value)
            except _Refused as exc:
                raise SpecError(f"{exc} (at {_place(owner, cls)})") from None
            if owner in called:
                raise SpecError(f"module '{owner}' ({cls}) is called twice: its weights are shared, which a spec "
                                "cannot write (each layer has its own)")
            called[owner] = True
            enclosing = stack[-1][1][0] if stack else ""
            placed = _between(enclosing, owner, root)
            if placed is None:
                raise SpecError(f"module '{owner}' ({cls}) is called from {_place(enclosing, '')}, which does not "
                                "hold it; a spec names a layer where it runs")
            between, local = placed
            _check_local(local, owner, cls)
            grads = {p.requires_grad for p in m.parameters()}
            if len(grads) > 1:
                raise SpecError(f"module '{owner}' ({cls}) has trainable and frozen parameters; a spec freezes "
                                "a layer whole")
            entries.append(Entry(kind, _clean(kind, args), node.name, [value[src]], name=local,
                                 scope=_scopes(stack, root, between), trainable=grads != {False},
                                 where=f"{owner} ({cls})"))
            value[node] = node.name
            continue
        if node.op == "placeholder":  # the input; forward's arguments with defaults are fixed (Python values)
            value[node] = INPUT if value.get("__input_taken") is None else ("python", node.name)
            value["__input_taken"] = True
            continue
        if node.op == "output":
            out = node.args[0]
            if not isinstance(out, fx_node_type()) or not isinstance(value.get(out), str):
                raise SpecError(f"{type(root).__name__}.forward returns {type(out).__name__}, not one tensor; "
                                "importing takes modules with one output tensor")
            if entries and value[out] != entries[-1].output:
                raise SpecError(f"{type(root).__name__}.forward returns a tensor computed before its last layer; "
                                "a spec's output is its last layer")
            traced = _shape_of(out)
            break
        if node.op == "get_attr":
            what = _attr_cls(root, node.target)
            known = ("archcalc has no layer for a buffer read directly" if what == "a buffer" else
                     "archcalc reads a parameter directly only as its module's one functional call (LayerNorm2d), "
                     "a layer scale (x * P), a class token (torch.cat([P.expand(n, -1, -1), x], 1)) or a "
                     "position table (x + P, P [1, T, D]), each its only use")
            raise SpecError(f"'{node.target}' ({what}) is read directly by the forward of "
                            f"{_place(where_path, where_cls)}; {known}")
        out_shape = _shape_of(node)
        if node.op == "call_module":
            m = modules[node.target]
            path, cls = node.target, type(m).__name__
            scope_stack = stack[:-1]
            try:
                convert = table.get(type(m)) or table.get(cls) or table.get(_qualified(m))
                if convert is None:
                    raise _Refused(f"module '{path}' ({cls}) has no archcalc kind")
                in_node = node.args[0] if node.args else None
                options = {}
                if isinstance(m, torch.nn.MultiheadAttention):
                    in_node = _self_attention_input(m, node, value, path)
                elif len(node.args) != 1 or not isinstance(value.get(in_node), str):
                    raise _Refused(f"module '{path}' ({cls}) is called with {len(node.args)} arguments; "
                                   "archcalc's layers take one tensor")
                elif node.kwargs:  # keyword arguments a converter reads (timm's attn_mask=None, is_causal)
                    options = _keyword_options(convert, node.kwargs, path, cls)
                made = convert(m, _shape_of(in_node), out_shape, **options)
            except _Refused as exc:
                at = "" if f"'{path}'" in str(exc) else f" (at {_place(path, cls)})"
                raise SpecError(f"{exc}{at}") from None
            has_state = any(True for _ in m.parameters()) or any(True for _ in m.buffers())
            first_call = path not in called
            if not first_call and has_state:
                raise SpecError(f"module '{path}' ({cls}) is called twice: its weights are shared, which a spec "
                                "cannot write (each layer has its own)")
            called[path] = True
            enclosing = scope_stack[-1][1][0] if scope_stack else ""
            placed = _between(enclosing, path, root)
            between = ()
            if placed is None:
                if has_state:
                    raise SpecError(f"module '{path}' ({cls}) is called from {_place(enclosing, '')}, which does not "
                                    "hold it; a spec names a layer where it runs")
                local = None  # a stateless module used elsewhere (a shared activation): an automatic name
            else:
                between, local = placed
                _check_local(local, path, cls)
            name = local if first_call else None
            grads = {p.requires_grad for p in m.parameters()}
            if len(grads) > 1:
                raise SpecError(f"module '{path}' ({cls}) has trainable and frozen parameters; a spec freezes "
                                "a layer whole")
            source = value[in_node]
            for k, (kind, args) in enumerate(made if isinstance(made, list) else [made]):
                out = node.name if k == 0 else f"{node.name}__{k}"
                entries.append(Entry(kind, _clean(kind, args), out, [source], name=name if k == 0 else None,
                                     scope=_scopes(scope_stack, root, between), trainable=grads != {False},
                                     where=f"{path} ({cls})"))
                source = out
            value[node] = ("attn_output", source) if isinstance(m, torch.nn.MultiheadAttention) else source
            continue
        if node.op == "call_function" and node.target is operator.getitem and isinstance(
                value.get(node.args[0]), tuple) and value[node.args[0]][0] == "attn_output":
            if node.args[1] != 0 and not node.users:  # `y, _ = attn(x, x, x)`: the weights, unread
                value[node] = ("python", node.name)
                continue
            if node.args[1] != 0:  # (output, weights): the weights are not a layer's output
                raise SpecError(f"the attention weights (item {node.args[1]!r} of what nn.MultiheadAttention "
                                f"returns) are read (at {_place(where_path, where_cls)}); a spec's attention "
                                "gives its output only")
            value[node] = value[node.args[0]][1]
            continue
        # functions and methods
        what = _op_name(node)
        try:
            result = _function(node, value, out_shape)
        except _Refused as exc:
            raise SpecError(f"{exc} (at {_place(where_path, where_cls)})") from None
        if result is None:
            raise SpecError(f"{what} has no archcalc kind (at {_place(where_path, where_cls)})")
        if result[0] == "value":
            value[node] = result[1]
            continue
        kind, args, inputs = result
        entry = Entry(kind, _clean(kind, args), node.name, inputs, scope=_scopes(stack, root),
                      where=f"{what} in {_place(where_path, where_cls)}")
        entries.append(entry)
        value[node] = node.name
        if out_shape is None:
            raise SpecError(f"{what} does not give a tensor (at {_place(where_path, where_cls)})")
    # every parameter the module holds must be in a layer that ran
    used = set(called)
    for path, m in modules.items():
        own = sum(p.numel() for n, p in m.named_parameters(recurse=False)
                  if (f"{path}.{n}" if path else n) not in bare_done) + sum(
            b.numel() for b in m.buffers(recurse=False) if b.is_floating_point())
        inside = any(path.startswith(p + ".") for p in used if p)  # nn.MultiheadAttention's out_proj
        if own and path not in used and not inside:
            raise SpecError(f"module '{path}' ({type(m).__name__}) holds {own:,} parameters or buffers, but the "
                            f"traced forward of {type(root).__name__} never calls it; a spec would drop them")
    return entries, traced


# functional calls that are one layer when they read one module's own parameters: their arguments' names
_OWN_ARG_NAMES = {"layer_norm": ("input", "normalized_shape", "weight", "bias", "eps"),
                  "group_norm": ("input", "num_groups", "weight", "bias", "eps"),
                  "linear": ("input", "weight", "bias"),
                  "conv": ("input", "weight", "bias", "stride", "padding", "dilation", "groups")}


def _own_call_args(node) -> dict:
    name = node.target.__name__
    names = _OWN_ARG_NAMES["conv" if name.startswith("conv") else name]
    given = dict(zip(names, node.args))
    given.update(node.kwargs)
    return given


def _own_parameter_calls(root, gm, modules):
    """A module whose forward is one functional call reading all of its own parameters
    (torchvision's and timm's LayerNorm2d: `F.layer_norm(x.permute(...), self.normalized_shape,
    self.weight, self.bias, self.eps)`; F.linear or F.conv2d with the module's weight and bias):
    that call is the module's layer, named as the module. Returns ({call node: module path},
    {the get_attr nodes it reads}); a parameter read anywhere else stays refused (by the caller)."""
    import torch.fx as fx
    import torch.nn.functional as F

    calls, reads = {}, set()
    for node in gm.graph.nodes:
        name = getattr(node.target, "__name__", None) if node.op == "call_function" else None
        if name not in ("layer_norm", "group_norm", "linear", "conv1d", "conv2d", "conv3d") or \
                getattr(F, name, None) is not node.target:
            continue
        given = _own_call_args(node)
        attrs = []
        fx.node.map_aggregate((tuple(given.values())), lambda x: attrs.append(x) if isinstance(x, fx.Node)
                              and x.op == "get_attr" else None)
        if not attrs:
            continue
        owner = attrs[0].target.rpartition(".")[0]
        m = modules.get(owner)
        weight_bias = [given.get("weight"), given.get("bias")]
        state = {f"{owner}.{n}" if owner else n for n, _ in (m.named_parameters() if m is not None else ())}
        state |= {f"{owner}.{n}" if owner else n for n, _ in (m.named_buffers() if m is not None else ())}
        if (m is None or m is root or {a.target for a in attrs} != state
                or any(a not in weight_bias for a in attrs) or any(set(a.users) != {node} for a in attrs)):
            continue
        calls[node] = owner
        reads.update(attrs)
    return calls, reads


def _bare_parameter_uses(root, gm):
    """Parameters a forward reads directly, used in one of the ways a kind holding one bare tensor
    (`bare: true`) computes, and nowhere else:

    - `x * P` (or `P * x`), P a vector along one axis of x, or [C, 1, 1] along the channels of
      [C, H, W] (torchvision's ConvNeXt `layer_scale`), or `x * P.reshape(1, -1, 1, 1)` (timm's
      ConvNeXt `gamma`): `scale` {dim, broadcast where P has trailing ones};
    - `torch.cat([P.expand(n, -1, -1), x], dim=1)`, P [1, 1, D]: `class_token`;
    - `x + P`, P [1, T, D] with x [T, D] per example: `positional` {broadcast: true} (learned).

    Returns ({the node computing it: (kind, args, x node, parameter name)}, {the nodes it consumes:
    the get_attr and the expand or reshape}); any other use stays refused by the caller."""
    import torch.fx as fx

    uses, consumed = {}, set()

    def only_user(node):
        return next(iter(node.users)) if len(node.users) == 1 else None

    def tensor_arg(node, other):
        args = [a for a in list(node.args) + list(node.kwargs.values()) if isinstance(a, fx.Node) and a is not other]
        return args[0] if len(args) == 1 and len(node.args) + len(node.kwargs) == 2 else None

    def is_op(node, *names):
        name = node.target if node.op == "call_method" else getattr(node.target, "__name__", None)
        return node.op in ("call_function", "call_method") and name in names

    for node in gm.graph.nodes:
        if node.op != "get_attr":
            continue
        try:
            p = root.get_parameter(node.target)
        except AttributeError:
            continue  # a buffer, or another attribute: refused as before
        shape, user = tuple(p.shape), only_user(node)
        if user is None:
            continue
        reshaped = None
        if is_op(user, "reshape", "view") and p.dim() == 1 and only_user(user) is not None:
            reshaped, user = user, only_user(user)
        if is_op(user, "mul", "__mul__", "__rmul__") and (x := tensor_arg(user, reshaped or node)) is not None:
            x_shape, used = _shape_of(x), _shape_of(reshaped) if reshaped is not None else shape
            if x_shape is None or used is None or _shape_of(user) != x_shape:
                continue
            rank = len(x_shape) - 1  # per example
            kept = list(used)
            while len(kept) > 1 and kept[0] == 1:
                kept.pop(0)
            if reshaped is None and len(kept) != len(used):
                continue  # leading ones ([1, C, 1, 1]) are not a shape scale holds
            d = rank - len(kept)  # the axis of x (per example) P runs along
            if d < 0 or any(k != 1 for k in kept[1:]) or kept[0] != x_shape[1 + d] or (
                    reshaped is not None and len(kept) > rank):
                continue
            broadcast = reshaped is None and len(kept) > 1
            args = {"init": _init_value(p), "dim": -1 if d == rank - 1 else d, "broadcast": broadcast}
            uses[user] = ("scale", args, x, node.target)
            consumed.update({node} | ({reshaped} if reshaped is not None else set()))
        elif is_op(user, "expand") and len(shape) == 3 and shape[:2] == (1, 1):
            cat = only_user(user)
            if cat is None or not is_op(cat, "cat", "concat", "concatenate"):
                continue
            tensors = cat.args[0] if cat.args else cat.kwargs.get("tensors")
            dim = cat.args[1] if len(cat.args) > 1 else cat.kwargs.get("dim", 0)
            if not isinstance(tensors, (list, tuple)) or len(tensors) != 2 or tensors[0] is not user or dim not in (1, -2):
                continue
            x = tensors[1]
            if not isinstance(x, fx.Node) or _shape_of(x) is None or len(_shape_of(x)) != 3 or _shape_of(x)[2] != shape[2]:
                continue
            expanded = _shape_of(user)  # [N, 1, D]: one token (P.expand(n, 3, -1) would be three)
            if expanded is None or tuple(expanded[1:]) != (1, shape[2]):
                continue
            uses[cat] = ("class_token", {}, x, node.target)
            consumed.update({node, user})
        elif is_op(user, "add", "__add__", "__radd__", "iadd", "__iadd__") and len(shape) == 3 and shape[0] == 1 and (
                x := tensor_arg(user, node)) is not None:
            if _shape_of(x) is None or tuple(_shape_of(x)[1:]) != shape[1:] or _shape_of(user) != _shape_of(x):
                continue
            uses[user] = ("positional", {"learned": True, "broadcast": True}, x, node.target)
            consumed.add(node)
    return uses, consumed


def _own_call_kind(node, value):
    """(kind, args, input node) of a functional call that `_own_parameter_calls` found."""
    import torch.fx as fx

    name = node.target.__name__
    given = _own_call_args(node)
    x, weight, bias = given.get("input"), given.get("weight"), given.get("bias")
    if not (isinstance(x, fx.Node) and isinstance(value.get(x), str)):
        raise _Refused(f"function torch.nn.functional.{name} on no tensor")
    w = weight.meta.get("tensor_meta") if weight is not None else None
    w_shape = tuple(w.shape) if w is not None else None
    if name in ("layer_norm", "group_norm") and weight is None and bias is not None:
        raise _Refused(f"function torch.nn.functional.{name} with a bias and no weight, which no archcalc kind has")
    if name == "layer_norm":
        affine = weight is not None
        return "layernorm", {"dims": len(given["normalized_shape"]), "eps": float(given.get("eps", 1e-5)),
                             "affine": affine, "bias": bias is not None if affine else True}, x
    if name == "group_norm":
        if weight is not None and bias is None:  # groupnorm's affine holds both (nn.GroupNorm's)
            raise _Refused("function torch.nn.functional.group_norm with a weight and no bias, which no archcalc "
                           "kind has (groupnorm's affine holds both)")
        return "groupnorm", {"groups": given["num_groups"], "eps": float(given.get("eps", 1e-5)),
                             "affine": weight is not None}, x
    if weight is None or w_shape is None:
        raise _Refused(f"function torch.nn.functional.{name} without a weight")
    if name == "linear":
        return "linear", {"out": w_shape[0], "bias": bias is not None}, x
    padding = given.get("padding", 0)
    return "conv", {"out": w_shape[0], "kernel": _axes(w_shape[2:]), "stride": _axes(given.get("stride", 1)),
                    "padding": padding if isinstance(padding, str) else _axes(padding),
                    "dilation": _axes(given.get("dilation", 1)), "groups": given.get("groups", 1),
                    "bias": bias is not None}, x


def fx_node_type():
    import torch.fx as fx

    return fx.Node


def _attr_cls(root, target):
    try:
        obj = root.get_parameter(target)
        return "a parameter"
    except AttributeError:
        try:
            root.get_buffer(target)
            return "a buffer"
        except AttributeError:
            return type(obj).__name__ if (obj := getattr(root, target, None)) is not None else "an attribute"


def _place(path: str, cls: str) -> str:
    if not path:
        return f"the top level ({cls})" if cls else "the top level"
    return f"'{path}' ({cls})" if cls else f"'{path}'"


def _between(outer: str, inner: str, root):
    """(scopes, local name) placing module `inner` below the module `outer` ("" the root) that runs
    it: the modules in between, never called themselves (an nn.ModuleList looped over, a plain
    attribute holder), become scopes too, so that names stay paths (`blocks.0`); None where
    `inner` is not below `outer`."""
    if outer and not inner.startswith(outer + "."):
        return None
    parts = (inner[len(outer) + 1:] if outer else inner).split(".")
    out, prefix = [], outer
    for part in parts[:-1]:
        prefix = f"{prefix}.{part}" if prefix else part
        cls = type(root.get_submodule(prefix)).__name__
        _check_local(part, prefix, cls)
        out.append(Scope(f"container:{prefix}", part, cls))
    return out, parts[-1]


def _scopes(stack, root, tail=()) -> tuple:
    out = []
    previous = ""
    for key, (path, cls) in stack:
        placed = _between(previous, path, root)
        if placed is None:
            raise SpecError(f"module '{path}' ({cls.__name__}) runs inside '{previous or 'the top level'}' but is not "
                            "below it; a spec names layers by where they run")
        between, local = placed
        _check_local(local, path, cls.__name__)
        out.extend(between)
        out.append(Scope(key, local, cls.__name__))
        previous = path
    return tuple(out) + tuple(tail)


def _clean(kind: str, args: dict) -> dict:
    """The kind's arguments in its order, without those equal to their defaults (required kept)."""
    layer = KINDS[kind]
    out = {}
    for arg in layer.args:
        if arg.name not in args:
            continue
        v = args[arg.name]
        if isinstance(v, float) and v.is_integer() and arg.type in ("int", "ints", "intlist"):
            v = int(v)
        if arg.required or not _same(v, arg.default):
            out[arg.name] = v
    extra = set(args) - {a.name for a in layer.args}
    if extra:
        raise RuntimeError(f"internal: {kind} has no argument {extra}")
    return out


def _same(a, b) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b or (isinstance(a, bool) and isinstance(b, bool) and a == b)
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return float(a) == float(b)
    return a == b


def _index(src, index, value, what):
    """x[:, a:b] (one dimension sliced with step 1, every other taken whole) is a `split` piece;
    x[:, i] a `select`. Anything else (steps, several sliced dimensions, tensors as indices) is refused."""
    shape = _shape_of(src)
    items = list(index) if isinstance(index, tuple) else [index]
    if any(i is Ellipsis for i in items) or len(items) > len(shape):
        raise _Refused(f"{what} with the index {index!r}, which no archcalc kind has")
    items += [slice(None)] * (len(shape) - len(items))
    cut = [(d, i) for d, i in enumerate(items) if i != slice(None)]
    if len(cut) != 1 or cut[0][0] == 0:
        raise _Refused(f"{what} with the index {index!r}, which no archcalc kind has (one dimension other than the "
                       "batch can be sliced)")
    d, i = cut[0]
    n = shape[d]
    if isinstance(i, int) and not isinstance(i, bool):
        return "select", {"index": i, "dim": d - 1}, [value[src]]
    if not isinstance(i, slice) or i.step not in (None, 1) or not all(
            isinstance(v, int) or v is None for v in (i.start, i.stop)):
        raise _Refused(f"{what} with the index {index!r}, which no archcalc kind has")
    start, stop, _ = i.indices(n)
    stop = max(stop, start)
    pieces = [p for p in (start, stop - start, n - stop)]
    if start == 0:
        sizes, k = [stop, n - stop], 0
    elif stop == n:
        sizes, k = [start, n - start], 1
    else:
        sizes, k = pieces, 1
    if sizes[k] == 0:
        raise _Refused(f"{what} takes nothing ({index!r})")
    if stop == n and start == 0:
        return "value", value[src]
    return "split", {"sizes": sizes, "dim": d - 1, "index": k}, [value[src]]


def _zeropad(pad: list, rank: int, src, what):
    """F.pad's list (last dimension first, (left, right) pairs) as `zeropad` over the spatial axes
    (every dimension after the batch and the first): the first dimension's pair, if given, must be
    zeros; a pad of zeros everywhere is the input itself."""
    if len(pad) % 2 or any(not isinstance(p, int) or p < 0 for p in pad):
        raise _Refused(f"{what} with pad {pad}; archcalc pads by whole non-negative amounts")
    pairs = [pad[i:i + 2] for i in range(0, len(pad), 2)]  # last dimension first
    spatial = rank - 2
    if len(pairs) > rank - 1:
        raise _Refused(f"{what} pads the batch dimension")
    if len(pairs) == rank - 1:
        if pairs[-1] != [0, 0]:
            raise _Refused(f"{what} pads the first dimension after the batch (channels); zeropad pads the spatial axes")
        pairs = pairs[:-1]
    pairs += [[0, 0]] * (spatial - len(pairs))
    flat = [p for pair in pairs for p in pair]
    if not any(flat):
        return "value", src
    if spatial < 1:
        raise _Refused(f"{what} pads a tensor without spatial axes")
    return "zeropad", {"padding": flat}, [src]


def _reads_tensor(node, value) -> bool:
    import torch.fx as fx

    found = []

    def visit(x):
        if isinstance(x, fx.Node) and isinstance(value.get(x), (str, tuple)) and (
                isinstance(value.get(x), str) or value[x][0] == "pieces"):
            found.append(x)
        return x

    fx.node.map_aggregate(node.args, visit)
    fx.node.map_aggregate(node.kwargs, visit)
    return bool(found)


_NAME_OK = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(-[A-Za-z0-9_]+)*|0|[1-9][0-9]*")  # reader/parse.py's layer names


def _check_local(local: str, path: str, cls: str):
    """A module's attribute name must be a spec name (a word, or an nn.Sequential index)."""
    if not _NAME_OK.fullmatch(local) or len(local) > 100:
        raise SpecError(f"module '{path}' ({cls}) is named {local!r}, which no spec layer can be named (words of "
                        "letters, digits and '_' joined by '-', or a number), so its state_dict keys cannot be kept")


def _op_name(node) -> str:
    if node.op == "call_method":
        return f"method Tensor.{node.target}"
    target = node.target
    mod = getattr(target, "__module__", None) or ""
    name = getattr(target, "__name__", str(target))
    if mod in ("_operator", "operator"):
        return f"operator {name}"
    mod = {"torch._C._nn": "torch.nn.functional", "torch._C._VariableFunctions": "torch"}.get(mod, mod)
    return f"function {mod}.{name}" if mod else f"function {name}"


_ACT = {"relu": "relu", "relu_": "relu", "relu6": "relu6", "sigmoid": "sigmoid", "tanh": "tanh", "silu": "silu",
        "hardswish": "hardswish", "hardsigmoid": "hardsigmoid", "mish": "mish", "selu": "selu", "softsign": "softsign",
        "logsigmoid": "logsigmoid", "tanhshrink": "tanhshrink", "sigmoid_": "sigmoid", "tanh_": "tanh"}


def _function(node, value, out_shape):
    """("value", python value) for nodes that make no tensor (sizes, tuples), (kind, args, inputs)
    for a layer, or None when archcalc has no kind for it."""
    import torch
    import torch.fx as fx

    target = node.target
    name = target if node.op == "call_method" else getattr(target, "__name__", "")

    def concrete(x):  # a size computed from the input's shape: the number it was when traced
        if isinstance(x, fx.Node) and not isinstance(value.get(x), str) and "python_value" in x.meta and not (
                isinstance(value.get(x), tuple) and value[x][0] == "pieces"):
            return x.meta["python_value"]
        return x

    args = list(fx.node.map_aggregate(tuple(node.args), concrete))
    kwargs = dict(fx.node.map_aggregate(dict(node.kwargs), concrete))
    what = _op_name(node)

    def tensor(x):
        return isinstance(x, fx.Node) and isinstance(value.get(x), str)

    def arg(i, key, default=None):
        if len(args) > i:
            return args[i]
        return kwargs.get(key, default)

    if not _reads_tensor(node, value) and out_shape is None and name not in ("chunk", "split"):
        # arithmetic on sizes (x.shape[1] // 2), torch._assert on them: Python values, not layers
        return "value", ("python", node.name)
    if node.op == "call_function" and target is getattr or name in ("size", "dim") or (
            node.op == "call_function" and target is operator.getitem and not tensor(args[0])):
        # sizes (x.size(0), x.shape) and pieces of a tuple: Python values, resolved when used
        if target is operator.getitem and isinstance(value.get(args[0]), tuple) and value[args[0]][0] == "pieces":
            _, kind, kargs, src = value[args[0]]
            return kind, {**kargs, "index": args[1]}, [value[src]]
        return "value", ("python", node.name)
    if out_shape is None and name not in ("chunk", "split"):
        return None
    rank = len(out_shape) if out_shape is not None else None
    if node.op == "call_function" and target is operator.getitem and tensor(args[0]):
        return _index(args[0], args[1], value, what)
    if name in ("contiguous", "clone") or (name == "to" and all(not isinstance(a, torch.dtype) for a in args[1:])):
        return "value", value[args[0]]  # the same values
    if name in _ACT and tensor(args[0]) and len([a for a in args if tensor(a)]) == 1:
        return _ACT[name], {}, [value[args[0]]]
    if name in ("gelu",):
        return "gelu", {"approximate": kwargs.get("approximate", "none")}, [value[args[0]]]
    if name in ("leaky_relu", "leaky_relu_"):
        return "leaky_relu", {"negative_slope": arg(1, "negative_slope", 0.01)}, [value[args[0]]]
    if name in ("hardtanh", "hardtanh_"):
        return "hardtanh", {"min_val": arg(1, "min_val", -1.0), "max_val": arg(2, "max_val", 1.0)}, [value[args[0]]]
    if name in ("add", "iadd", "mul", "imul", "add_", "mul_", "__add__", "__mul__", "__iadd__", "__imul__",
                "__radd__", "__rmul__"):
        a, b = args[0], args[1] if len(args) > 1 else kwargs.get("other")
        if kwargs.get("alpha", 1) != 1:
            raise _Refused(f"{what} with alpha={kwargs['alpha']}, which no archcalc kind has")
        is_mul = "mul" in name
        if tensor(a) and tensor(b):
            sa, sb = _shape_of(a), _shape_of(b)
            if len(sa) != len(sb) or sa[0] != sb[0]:
                raise _Refused(f"{what} broadcasts across the batch (shapes {list(sa)} and {list(sb)})")
            return ("multiply" if is_mul else "add"), {}, [value[a], value[b]]
        x, c = (a, b) if tensor(a) else (b, a)
        if is_mul and tensor(x) and isinstance(c, (int, float)) and not isinstance(c, bool):
            return "multiply_by", {"value": float(c)}, [value[x]]
        raise _Refused(f"{what} with a constant ({c!r}), which no archcalc kind has")
    if name in ("cat", "concat", "concatenate"):
        tensors = arg(0, "tensors")
        dim = arg(1, "dim", 0)
        if not all(tensor(t) for t in tensors):
            return None
        if len(tensors) == 1:  # torch.cat([x]) is x (DenseNet's first layer of a block)
            return "value", value[tensors[0]]
        return "concat", {"dim": _dim(dim, rank, what)}, [value[t] for t in tensors]
    if name == "flatten":
        start, end = arg(1, "start_dim", 0), arg(2, "end_dim", -1)
        return (*_flatten(start, end, len(_shape_of(args[0])), what), [value[args[0]]])
    if name in ("view", "reshape"):
        src = args[0]
        in_shape = _shape_of(src)
        if out_shape[0] != in_shape[0]:
            raise _Refused(f"{what} to {list(out_shape)} moves values across the batch")
        if len(out_shape) == 2 and len(in_shape) > 2:
            return "flatten", {}, [value[src]]
        if tuple(out_shape) == tuple(in_shape):
            return "value", value[src]
        return "reshape", {"shape": list(out_shape[1:])}, [value[src]]
    if name in ("permute", "transpose"):
        src = args[0]
        r = len(_shape_of(src))
        if name == "permute":
            dims = args[1:] if len(args) > 2 or not isinstance(args[1], (list, tuple)) else args[1]
            dims = [d % r for d in dims]
        else:
            d0, d1 = args[1] % r, args[2] % r
            dims = list(range(r))
            dims[d0], dims[d1] = dims[d1], dims[d0]
        if dims[0] != 0:
            raise _Refused(f"{what} moves the batch dimension")
        return "permute", {"dims": [d - 1 for d in dims[1:]]}, [value[src]]
    if name == "mean":
        dims = arg(1, "dim")
        keep = arg(2, "keepdim", False)
        src_rank = len(_shape_of(args[0]))
        if dims is None:
            raise _Refused(f"{what} over every dimension averages across the batch")
        dims = [dims] if isinstance(dims, int) else list(dims)
        return "mean", {"dim": [_dim(d, src_rank, what) for d in dims], "keepdim": bool(keep)}, [value[args[0]]]
    if name in ("adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d"):
        return "adaptive_avgpool", {"size": _axes(tuple(out_shape[2:]))}, [value[args[0]]]
    if name in ("max_pool2d", "max_pool1d", "max_pool3d", "avg_pool2d", "avg_pool1d", "avg_pool3d"):
        kernel = arg(1, "kernel_size")
        stride = arg(2, "stride") or kernel
        padding = arg(3, "padding", 0)
        if name.startswith("max"):
            if arg(6, "return_indices", False):
                raise _Refused(f"{what} with return_indices=True, which no archcalc kind has")
            return "maxpool", {"kernel": _axes(kernel), "stride": _axes(stride), "padding": _axes(padding),
                               "dilation": _axes(arg(4, "dilation", 1)), "ceil_mode": bool(arg(5, "ceil_mode", False))}, \
                [value[args[0]]]
        if arg(6, "divisor_override") is not None:
            raise _Refused(f"{what} with divisor_override, which no archcalc kind has")
        return "avgpool", {"kernel": _axes(kernel), "stride": _axes(stride), "padding": _axes(padding),
                           "ceil_mode": bool(arg(4, "ceil_mode", False)),
                           "count_include_pad": bool(arg(5, "count_include_pad", True))}, [value[args[0]]]
    if name in ("dropout", "dropout2d", "dropout1d", "dropout3d"):
        training = arg(2, "training", True)
        if not training:
            return "value", value[args[0]]  # F.dropout(x, p, training=False) is x itself
        p = arg(1, "p", 0.5)
        return ("dropout" if name == "dropout" else "dropout2d"), {"p": float(p)}, [value[args[0]]]
    if name in ("softmax", "log_softmax"):
        dim = arg(1, "dim")
        if dim is None:
            raise _Refused(f"{what} without dim")
        return name, {"dim": _dim(dim, rank, what)}, [value[args[0]]]
    if name in ("chunk", "split"):
        src = args[0]
        src_rank = len(_shape_of(src))
        dim = _dim(arg(2, "dim", 0), src_rank, what)
        if name == "chunk":
            return "value", ("pieces", "chunk", {"chunks": arg(1, "chunks"), "dim": dim}, src)
        sizes = arg(1, "split_size_or_sections") if node.op == "call_function" else arg(1, "split_size")
        return "value", ("pieces", "split", {"sizes": list(sizes) if isinstance(sizes, (list, tuple)) else sizes,
                                             "dim": dim}, src)
    if name == "pad" and node.op == "call_function":
        mode, fill = arg(2, "mode", "constant"), arg(3, "value", None)
        if mode != "constant" or fill not in (None, 0, 0.0):
            raise _Refused(f"{what} with mode={mode!r}, value={fill!r}; archcalc pads with zeros only")
        return _zeropad(list(arg(1, "pad")), len(_shape_of(args[0])), value[args[0]], what)
    if name == "channel_shuffle":
        return "channel_shuffle", {"groups": arg(1, "groups")}, [value[args[0]]]
    return None


def compare(module, text: str, input_shape=None, *, atol: float = 1e-4, seed: int = 0) -> dict:
    """Check an imported spec against its module: the figures of `archcalc analyze` (trainable and
    non-trainable parameters, MACs, output shape) against the module's (parameters and floating
    buffers counted as `verify` counts them, MACs as FlopCounterMode's FLOPs / 2 at batch 1), and
    `archcalc.torch.build(spec).load_state_dict(module.state_dict())` followed by both forwards
    on one random input (eval mode). Returns {"spec": ..., "module": ..., "equal": bool,
    "max_abs_diff": float}; raises SpecError where the spec does not read or the weights do not load."""
    torch = _torch()
    from archcalc.analysis.walk import analyze_graph
    from archcalc.reader.parse import parse_spec
    from archcalc.torch.verify import flop_counter  # FlopCounterMode, with the CPU attention kernel counted
    from archcalc.torch.build import build

    graph = parse_spec(text) if input_shape is None else parse_spec(text, input_shape=tuple(input_shape))
    report = analyze_graph(graph)
    shape = tuple(graph.input_shape)
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    frozen = sum(p.numel() for p in module.parameters() if not p.requires_grad)
    frozen += sum(b.numel() for b in module.buffers() if b.is_floating_point())
    modes = {m: m.training for m in module.modules()}
    module.eval()
    try:
        x = torch.randn((1,) + shape, generator=torch.Generator().manual_seed(seed))
        fastpath = torch.backends.mha.get_fastpath_enabled()
        torch.backends.mha.set_fastpath_enabled(False)  # FlopCounterMode counts no fused transformer kernel
        try:
            with torch.no_grad(), flop_counter() as counter:
                expected = module(x)
        finally:
            torch.backends.mha.set_fastpath_enabled(fastpath)
        macs = counter.get_total_flops() // 2
        built = build(graph)
        try:
            built.load_state_dict(module.state_dict())
        except RuntimeError as exc:
            raise SpecError(f"the module's state_dict does not load into the built spec: {_first_line(exc)}") from None
        built.eval()
        with torch.no_grad():
            got = built(x)
    finally:
        for m, mode in modes.items():
            m.training = mode
    totals = report.totals
    spec = {"trainable": totals.trainable_params, "non_trainable": totals.non_trainable_params,
            "macs": totals.macs, "output": tuple(report.layers[-1].output_shape)}
    ref = {"trainable": trainable, "non_trainable": frozen, "macs": macs, "output": tuple(expected.shape[1:])}
    diff = float((got - expected).abs().max()) if got.shape == expected.shape else math.inf
    return {"spec": spec, "module": ref, "max_abs_diff": diff,
            "equal": spec == ref and diff <= atol * max(1.0, float(expected.abs().max()))}


__all__ = ["compare", "from_module", "import_module_source"]
