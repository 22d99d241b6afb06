"""Build a spec's graph as a real PyTorch module.

Submodules carry the spec's dotted names (`stage.2.conv1` is `model.stage[2].conv1` and its
weight's state_dict key is `stage.2.conv1.weight`); `forward` follows the graph, freeing each
intermediate output after its last use.
"""
from __future__ import annotations

try:
    import torch
    from torch import nn
except ImportError as exc:  # pragma: no cover - exercised only without torch
    raise ImportError("archcalc[torch] is needed: pip install 'archcalc[torch]'") from exc

from archcalc.analysis.walk import analyze_graph
from archcalc.errors import SpecError
from archcalc.layers import KINDS
from archcalc.reader.graph import INPUT, Graph
from archcalc.reader.parse import load_spec


class _Group(nn.Module):
    """A block instance or repeat: only holds the modules of its parts."""


class _ReadFrom:
    """A `bare: true` layer's forward pre-hook: its module, which is no submodule of the network,
    runs with the tensor its block holds (so `.to()`, `to_empty` or `load_state_dict`, which may
    replace the block's parameter, never leave the layer with a stale copy)."""

    def __init__(self, owner: nn.Module, name: str, attr: str):
        self.owner, self.name, self.attr = owner, name, attr

    def __call__(self, module, args):
        module._parameters[self.attr] = self.owner._parameters[self.name]


class SpecModule(nn.Module):
    def __init__(self, graph: Graph):
        super().__init__()
        require_numbers(graph)
        report = analyze_graph(graph)  # validates the graph and gives every input shape
        check_torch_limits(graph, report)
        shapes = dict(graph.input_shapes)
        shapes.update({row.name: row.output_shape for row in report.layers})
        self.spec_name = graph.name
        self.input_shape = tuple(graph.input_shape)  # the first input's
        self.input_names = graph.input_names  # forward takes one tensor per input, in this order
        self.input_shapes = graph.input_shapes
        last_use = {}
        for i, node in enumerate(graph.nodes):
            for name in node.inputs:
                last_use[name] = i
        self._plan = []
        self._layers = {}  # node name -> its module (a bare layer's is no submodule: see layer_module)
        for i, node in enumerate(graph.nodes):
            module = KINDS[node.kind].torch_module(node.args, [shapes[n] for n in node.inputs])
            if not node.trainable:  # `trainable: false` (buffers such as running statistics are untouched)
                module.requires_grad_(False)
            self._attach(node, module)
            self._layers[node.name] = module
            free = tuple(n for n in dict.fromkeys(node.inputs) if last_use[n] == i)
            self._plan.append((node.name, module, node.inputs, free))
        for node in graph.nodes:  # tied weights (an embedding's table used by a later linear)
            target = KINDS[node.kind].tied_to(node.args)
            if target is not None:
                KINDS[node.kind].tie_modules(layer_module(self, node.name), layer_module(self, target))
        self._output = graph.output

    def _attach(self, node, module: nn.Module):
        parent = self
        *path, leaf = node.name.split(".")
        for i, part in enumerate(path + [leaf]):
            if part not in parent._modules and hasattr(parent, part) and not hasattr(nn.Module, part) \
                    and not hasattr(_Group(), part):  # SpecModule's own (_plan, _layers): the top level only
                raise SpecError(f"'{part}' is an attribute of archcalc's built module (SpecModule), so a layer or "
                                "block at the top level cannot have that name in PyTorch; rename it (inside a "
                                "block it may)", node.loc, node.name)
            if part not in parent._modules and hasattr(parent, part):
                raise SpecError(f"'{part}' is an attribute of torch.nn.Module, so a layer or block cannot "
                                "have that name in PyTorch; rename it", node.loc, node.name)
            if i == len(path):  # the leaf (compared by place: `layer1.0.downsample.0` has two parts '0')
                break
            child = parent._modules.get(part)
            if child is None:
                child = _Group()
                parent.add_module(part, child)
            parent = child
        if not node.bare:
            parent.add_module(leaf, module)
            return
        # bare: true: the block holds the layer's one tensor under the layer's name (torchvision's
        # `features.1.0.layer_scale`, `class_token`), and the layer's module reads it from there.
        attr = KINDS[node.kind].bare_tensor(node.args)
        parent.register_parameter(leaf, module._parameters[attr])
        module.register_forward_pre_hook(_ReadFrom(parent, leaf, attr))


    def forward(self, *xs):
        """The network on its inputs, one tensor per input in the spec's order (`inputs:`)."""
        if len(xs) != len(self.input_names):
            raise TypeError(f"{self.spec_name} takes {len(self.input_names)} input(s) "
                            f"({', '.join(self.input_names)}), got {len(xs)}")
        values = dict(zip(self.input_names, xs))
        for name, module, inputs, free in self._plan:
            values[name] = module(*(values[n] for n in inputs))
            for n in free:
                if n != self._output:
                    del values[n]
        return values[self._output]


def layer_module(model: SpecModule, name: str) -> nn.Module:
    """The module of the layer `name` (the spec's dotted name) in a built spec. It is
    `model.get_submodule(name)` but for a `bare: true` layer, whose tensor is a parameter of its
    block and whose module is no submodule (its state_dict key is `name` itself). A function, not a
    method, so that no layer name is taken from the spec."""
    return model._layers[name]


INT64_MAX = 2**63 - 1  # PyTorch keeps sizes, strides and element counts in 64-bit integers


def require_numbers(graph: Graph) -> None:
    """A PyTorch model (and every check of its sizes) needs numeric sizes. The message says where
    the symbols are: the input's sizes (`input: [1, H, W]`), or only a layer's (`linear: N_H`)."""
    if graph.symbols:
        where, loc = symbolic_sizes(graph)
        raise SpecError(f"{where}; a PyTorch model needs numbers: give them with --set (e.g. --set "
                        f"{graph.symbols[0]}=28)", loc)


def symbolic_sizes(graph: Graph) -> tuple:
    """(words, place) for a graph with free size symbols: "the input has symbolic sizes (H, W)" at
    the input, or "the spec has symbolic sizes (N_H in its layer sizes)" at the first layer that
    uses one, where a symbol is no input size."""
    from archcalc.reader.symbols import is_symbolic, shown

    seen = {str(s) for shape in graph.input_shapes.values() for n in shape if is_symbolic(n)
            for s in getattr(shown(n, graph.back or {}), "free_symbols", ())}
    in_input = [s for s in graph.symbols if s in seen]
    others = [s for s in graph.symbols if s not in seen]
    if not others:
        where, loc = f"the input has symbolic sizes ({', '.join(in_input)})", graph.input_loc
    else:
        loc = next((node.loc for node in graph.nodes if any(_uses(v, set(others), graph.back or {})
                                                     for v in node.args.values())),
                   graph.input_loc)
        sized = "layer sizes" if not in_input else f"layer sizes; {', '.join(in_input)} in the input"
        where = f"the spec has symbolic sizes ({', '.join(others)} in its {sized})"
    return where, loc


def _uses(value, names: set, back: dict) -> bool:
    """Whether an argument's value (a number, a formula, a list of them) holds one of the symbols
    (the user's names: `back` turns internal ones such as N_H_4 back into N_H/4)."""
    from archcalc.reader.symbols import is_symbolic, shown

    if isinstance(value, (list, tuple)):
        return any(_uses(v, names, back) for v in value)
    return is_symbolic(value) and bool(names & {str(s) for s in shown(value, back).free_symbols})


def check_torch_limits(graph: Graph, report, batch: int = 1) -> None:
    """Refuse, with the place in the spec, what PyTorch cannot represent: an integer argument past
    int64 (`stride: '2**64'`), or a tensor (an output, an input, a layer's weights) whose element
    count is. Torch would fail deep inside with 'Storage size calculation overflowed' or worse."""
    require_numbers(graph)
    def walk(value):
        if isinstance(value, bool):
            return
        if isinstance(value, int):
            yield value
        elif isinstance(value, (list, tuple)):
            for item in value:
                yield from walk(item)

    limit = "PyTorch's 64-bit limit (2**63 - 1)"
    for net_input in graph.inputs:
        count = batch
        for n in net_input.shape:
            count *= n
        if count > INT64_MAX:
            what = "input" if not graph.named_inputs else f"input '{net_input.name}'"
            raise SpecError(f"the {what} batch has {_sci(count)} elements, past {limit}", net_input.loc)
    for node, row in zip(graph.nodes, report.layers):
        for arg, value in node.args.items():
            if any(abs(v) > INT64_MAX for v in walk(value)):
                raise SpecError(f"argument '{arg}' is past {limit}", node.arg_locs.get(arg, node.loc),
                                node.name, node.kind)
        count = batch
        for n in row.output_shape:
            count *= n
        if count > INT64_MAX:
            raise SpecError(f"the output has {_sci(count)} elements, past {limit}",
                            node.loc, node.name, node.kind)
        if max(row.trainable_params, row.non_trainable_params) > INT64_MAX:
            raise SpecError(f"its weights hold {_sci(row.params)} values, past {limit}", node.loc, node.name,
                            node.kind)


def _sci(n: int) -> str:
    return f"{n:.3e}" if n < 10**300 else "over 1e300"  # a float conversion of more would overflow


def example_input(graph: Graph, batch: int = 1, device=None, generator=None):
    """An input batch for the graph: random real values, or for token inputs random ids valid for
    every embedding (0 .. smallest table size - 1)."""
    return _example(graph, graph.inputs[0], batch, device, generator)


def example_inputs(graph: Graph, batch: int = 1, device=None, generator=None) -> tuple:
    """One example batch per network input, in the spec's order (what `SpecModule.forward`
    takes): random real values, or token ids valid for every embedding. For a spec with one
    input, `(example_input(graph, ...),)`."""
    return tuple(_example(graph, net_input, batch, device, generator) for net_input in graph.inputs)


def _example(graph: Graph, net_input, batch, device, generator):
    shape = (batch,) + tuple(net_input.shape)
    if net_input.tokens:
        tables = [node.args["num"] for node in graph.nodes if KINDS[node.kind].reads == "tokens"]
        return torch.randint(0, min(tables, default=2), shape, device=device, generator=generator)
    return torch.randn(shape, device=device, generator=generator)


def build(spec, input_shape=None, device=None) -> SpecModule:
    """A `SpecModule` for a spec file path or a loaded `Graph`, created directly on `device`
    (e.g. "meta" to build a model too large for memory: shapes and parameter counts only)."""
    graph = spec if isinstance(spec, Graph) else load_spec(spec, input_shape=input_shape)
    with torch.device(device or "cpu"):
        return SpecModule(graph)


__all__ = ["INT64_MAX", "SpecModule", "build", "layer_module", "check_torch_limits", "example_input", "example_inputs", "require_numbers",
           "symbolic_sizes", "torch"]
