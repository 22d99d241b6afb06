"""What every layer kind provides, and the argument schema its spec entry is checked against.

A kind is one small class holding all of its rules: arguments, output shape, parameters, MACs,
receptive-field step and its PyTorch module. Shapes exclude the batch dimension; sizes may be
ints (or, later, sympy expressions), so formulas use plain operators.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from archcalc.errors import LayerError

REQUIRED = object()

# Argument types (Arg.type):
#   int      an integer (a number or an expression)
#   float    a number
#   bool     true/false
#   ints     an integer or a list of integers (one per spatial axis)
#   intlist  a list of integers (a single integer means a list of one)
#   floats   a number or a list of numbers (one per spatial axis)
#   padding  like ints, or "same" / "valid"
#   choice   one of Arg.choices
#   layer    the name of another layer (dotted for layers inside blocks), e.g. the linear an
#            embedding shares its weight with; resolved once the whole spec is read
ARG_TYPES = {"int", "float", "bool", "ints", "intlist", "floats", "padding", "choice", "layer"}


@dataclass(frozen=True)
class Arg:
    name: str
    type: str
    default: Any = REQUIRED
    min: float | None = None  # smallest allowed value (for numbers and each list element)
    max: float | None = None
    choices: tuple = ()
    doc: str = ""

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


@dataclass(frozen=True)
class Step:
    """One line of `archcalc explain`: a figure, its formula in the lecture's notation, the formula
    with the layer's values put in, and the result (equal to the analysis' figure).

    figure: "output", "params", "trainable", "non-trainable", "active", "macs", "rf", "jump" or "start"
            ("active": the parameters one token uses, for kinds with routed experts).
    at:     () for the whole figure; else the indices the step covers: output dimensions for
            "output" (0 is channels), spatial axes for "rf", "jump" and "start".
    where:  the names of those indices ("H, W", "C"); note: a remark in words.
    """

    figure: str
    formula: str
    substituted: str = ""
    result: Any = None
    at: tuple = ()
    where: str = ""
    note: str = ""


@dataclass(frozen=True)
class Saved:
    """One tensor a layer keeps for its backward pass, as eager PyTorch's autograd saves it."""
    what: str                 # "input", "output", "mask", "indices", "mean", "rstd", "logsumexp", ...
    of: str = "own"           # "input" (input `index` of the layer: a tensor another layer may save too),
                              # "output" (this layer's output), "own" (made here, kept by this layer only)
    index: int = 0            # which input, for of="input"
    elements: object = None   # elements for of="own" (int or sympy expr); per example unless per_batch
    itemsize: int | None = None  # bytes per element; None = the activation dtype's size
    per_batch: bool = False   # True: independent of the batch size (batch norm's per-channel stats)
    align: int | None = None  # the batch's bytes rounded up to a multiple of this (oneDNN's LSTM workspace
                              # regions each start on a 4096-byte page); None: not rounded
    weights_only: bool = False  # kept only for a weight's gradient (a Linear's input, RMSNorm's x * rsqrt):
                                # a frozen layer (trainable: false) does not keep it
    for_grad_of: tuple = ()     # kept only for the gradient of these inputs (mul keeps `other` for self's
                                # gradient): not kept where none of them needs a gradient (a network input)
    expand: tuple | None = None  # an own copy of input `index` expanded to these leading dims (batch excluded)
                                 # and folded into one, as matmul's bmm takes it: none where that is a
                                 # view (a stride-0 weights view; a batch of 1): then the input itself
    batch1: object = None       # a copy made only because the batch dim sits between others: with a batch
                                # of 1 a view: "input" (input `index` itself, counted once), "view" (of a
                                # tensor this layer keeps already: nothing more), or an int: the elements
                                # kept then instead (a view of a larger tensor of its own)


def saved_elements(saved: Saved, shapes: list[tuple], out: tuple):
    """Elements of one saved tensor (per example unless saved.per_batch) of a layer with input
    shapes `shapes` and output shape `out`."""
    if saved.of == "input":
        return prod(shapes[saved.index])
    if saved.of == "output":
        return prod(out)
    return saved.elements


class Layer:
    """Base class of layer kinds. Subclasses set the class attributes and override the rules."""

    kind: ClassVar[str]
    args: ClassVar[tuple[Arg, ...]] = ()
    primary: ClassVar[str | None] = None  # argument set by a scalar: `linear: 10` is `out: 10`
    # Inputs taken: 1; None means two or more (merges); a pair (fewest, most) a range, e.g. (1, 2)
    # for attention (the sequence, and optionally an additive score bias). See arity_bounds.
    arity: ClassVar[int | tuple[int, int] | None] = 1
    summary: ClassVar[str] = ""
    formulas: ClassVar[dict[str, str]] = {}  # figure -> formula, shown in docs
    # The receptive-field probe of `archcalc verify` runs a linear, positive stand-in of the net.
    # True: this kind's own module already is one (weights are set to 1 there); False: identity
    # (activations, normalisation, dropout). Kinds needing another stand-in override probe_module.
    probe_linear: ClassVar[bool] = False
    # True where "global" is a convention rather than a fact the probe can see (flatten: later
    # layers treat the tensor as a vector, though each value still comes from one place).
    global_by_convention: ClassVar[bool] = False
    # What values the kind reads: "float" (real numbers, most kinds), "tokens" (integer token
    # ids: embedding), "any" (index and shape operations pass either through unchanged) or
    # "batch" (only the batch size is read, either kind of input; the output is real: parameter).
    reads: ClassVar[str] = "float"
    # True for kinds that read a [T, D] input as a sequence of T tokens (attention, recurrent):
    # memory planning then also gives FLOPs per token.
    sequence: ClassVar[bool] = False
    # True for kinds that move dimensions around (permute): their `rf` also receives fields whose
    # spatial axes are elsewhere than [C, spatial...] (RF.layout), and says where they go.
    moves_axes: ClassVar[bool] = False

    # --- rules -----------------------------------------------------------------------------
    def output_shape(self, a: dict, shapes: list[tuple]) -> tuple:
        return shapes[0]

    def params(self, a: dict, shapes: list[tuple]) -> tuple:
        """(trainable, non-trainable) parameter counts."""
        return 0, 0

    def inactive_params(self, a: dict, shapes: list[tuple]):
        """Parameters one token does not use (the routed experts it is not sent to: moe), or None
        for kinds that route nothing. A layer's active parameters per token are params - this."""
        return None

    def macs(self, a: dict, shapes: list[tuple], out: tuple):
        """Multiply-accumulates for one example."""
        return 0

    def saved_tensors(self, a: dict, shapes: list[tuple], out: tuple) -> list[Saved]:
        """The tensors this layer's autograd nodes keep for the backward pass, as eager PyTorch
        (CPU, the activation dtype) saves them in training mode: torch's
        tools/autograd/derivatives.yaml names the saved inputs (`self`, `input`) and results
        (`result`, `result1`...) of each op. Parameters, buffers and views of them are model
        state, never listed. `archcalc memory` counts each input/output tensor once however many
        layers save it (see archcalc.analysis.memory.saved_bytes) and `archcalc verify --memory`
        measures the same with torch.autograd.graph.saved_tensors_hooks.

        Default, for kinds that declare nothing yet: the layer's output (the old convention, "each
        layer's output, which the next layer keeps"); a kind that still overrides
        `saved_for_backward` (an element count) has that count as one tensor of its own."""
        if type(self).saved_for_backward is not Layer.saved_for_backward:
            return [Saved("saved", elements=self.saved_for_backward(a, shapes, out))]
        return [Saved("output", of="output")]

    def saved_tensors_for(self, a: dict, shapes: list[tuple], out: tuple, needs_grad: tuple):
        """`saved_tensors` for inputs of which `needs_grad` says which need a gradient, for a kind
        whose ops change with that beyond Saved.for_grad_of (SDPA picks another kernel)."""
        return self.saved_tensors(a, shapes, out)

    def saved_for_backward(self, a: dict, shapes: list[tuple], out: tuple):
        """Elements (one example) this layer keeps for backward, from `saved_tensors`: every tensor
        it saves, counted here even where another layer saves it too (memory counts it once), and
        per-batch tensors (batch norm's statistics) once. Kinds override `saved_tensors`."""
        return sum(saved_elements(s, shapes, out) for s in self.saved_tensors(a, shapes, out))

    # True where the kind keeps its inputs only for its weights' gradient (linear: mm saves mat1
    # only when the weight needs a gradient; scale): with `trainable: false` they are not kept.
    # (A convolution keeps its input whether or not its weights learn.)
    saves_input_for_weights: ClassVar[bool] = False

    # True for elementwise kinds: PyTorch's output takes the input's memory order when the input
    # is dense (a ReLU of a permuted tensor is laid out as the permuted tensor); else it is new and
    # contiguous, as every other kind's output here.
    keeps_layout: ClassVar[bool] = False
    # True for kinds on [C, H, W] / [C, D, H, W] whose output follows the input's memory format
    # (conv, pooling, padding, resizing, batch and group norm): a channels-last input (a permute
    # back from [H, W, C]) gives a channels-last output.
    keeps_memory_format: ClassVar[bool] = False
    # Where the kind keeps its input made contiguous first, a copy of its own when the input is
    # not laid out so (measured): "contiguous" (instance norm: .contiguous().view(1, N*C, ...)),
    # "memory_format" (group norm: contiguous or channels-last are kept as they are); None: as given.
    saves_contiguous_input: ClassVar[str | None] = None
    # True where the kind keeps its input as the [positions, in] matrix of a matrix product (linear):
    # a view of the input where one exists, else a contiguous copy (a permuted input), kept by it alone.
    saves_input_as_matrix: ClassVar[bool] = False

    def view_strides(self, a: dict, shapes: list[tuple], strides: tuple, batch: int):
        """For a view kind (output_storage an input's index): the output's strides, batch first, in
        elements, from input 0's (`strides`, batch first); None where PyTorch copies instead (a
        flatten or reshape of a permuted tensor): the output is then new memory."""
        return view_of((batch,) + tuple(shapes[0]), strides, (batch,) + tuple(self.output_shape(a, shapes)))

    def output_strides(self, a: dict, shapes: list[tuple], batch: int):
        """For a kind whose new output PyTorch does not lay out contiguously: its strides, batch
        first, in elements (a recurrent layer's batch-first view of its time-major result); None:
        contiguous (or as keeps_layout / keeps_memory_format say)."""
        return None

    def output_storage(self, a: dict, shapes: list[tuple]):
        """Where this layer's output lives: None, new memory (most kinds); an input's index, a view
        sharing that input's storage (flatten of a contiguous tensor, permute, select, split: a
        tensor saved through the view is its base, counted once); "weights", a view of the layer's
        own parameter (never counted as an activation)."""
        return None

    # True where kv_cache is a fixed-size recurrent state rather than keys and values (mamba).
    cache_is_state: ClassVar[bool] = False

    def kv_cache(self, a: dict, shapes: list[tuple], out: tuple):
        """Elements (one example) of key/value cache held while decoding; 0 but for causal attention."""
        return 0

    def cross_kv_cache(self, a: dict, shapes: list[tuple], out: tuple):
        """Elements (one example) of cross-attention key/value cache: the keys and values of an
        encoder's output, computed once and kept while decoding; 0 but for cross_attention."""
        return 0

    def rf(self, a: dict, rfs: list, shapes: list[tuple], out: tuple):
        """Receptive field of the output (see archcalc.geometry.receptive_field); elementwise by default."""
        return rfs[0]

    def mixed_dims(self, a: dict, shapes: list[tuple]):
        """The dimensions (batch excluded, from 0) along which one output value reads several input
        positions, or None when not stated. A field whose spatial axes a permute moved elsewhere
        ([H, W, C], ConvNeXt's channels-last LayerNorm and MLP) is kept through layers that mix
        none of its spatial dims (archcalc.geometry.receptive_field.moved); other kinds see only [C, spatial...]."""
        return None

    def bare_tensor(self, a: dict) -> str | None:
        """The attribute of this kind's PyTorch module that holds its one learned tensor, for an
        entry written `bare: true` (the tensor then belongs to the enclosing block's module, under
        the layer's own name: torchvision's `features.1.0.layer_scale`, `class_token`); None
        where the kind holds no tensor or several."""
        return None

    def tied_to(self, a: dict) -> str | None:
        """The layer whose weight this one shares (resolved name), if any."""
        return None

    def shared_params(self, a: dict, shapes: list[tuple], target_kind: str, target_args: dict,
                      target_shapes: list[tuple]) -> int:
        """How many of the tied layer's parameters are this layer's own (counted once in totals);
        raises LayerError when the two cannot share."""
        return 0

    def tie_modules(self, module, target) -> None:
        """Make the built PyTorch modules share the weight (`archcalc.torch.build`)."""

    def explain(self, a: dict, shapes: list[tuple], out: tuple, rf_in: list, rf_out, row) -> list[Step]:
        """Each figure of this layer as formula, values and result (`archcalc explain`): `rf_in`
        holds the inputs' receptive fields, `rf_out` and `row` (its LayerResult) what the
        analysis found. Elementwise by default: same shape, no parameters, field unchanged."""
        from archcalc.layers._explain import elementwise_steps

        return elementwise_steps(shapes, out, rf_in, rf_out)

    def torch_module(self, a: dict, shapes: list[tuple]):
        raise NotImplementedError(f"{self.kind} has no PyTorch module")

    def probe_args(self, a: dict) -> dict:
        """This layer's arguments in the probe network, where layers have one channel (see
        archcalc.torch.probe): as given, unless a shape rule needs channels the probe lacks."""
        return a

    def probe_module(self, a: dict, shapes: list[tuple]):
        """The linear stand-in used by the receptive-field probe (see `probe_linear`)."""
        if self.probe_linear:
            return self.torch_module(a, shapes)
        from torch import nn

        return nn.Identity()

    # --- helpers for subclasses ---------------------------------------------------------------
    @staticmethod
    def per_axis(value, axes: int, arg: str) -> tuple:
        """Expand an int-or-list argument to one value per spatial axis."""
        if isinstance(value, (list, tuple)):
            if len(value) != axes:
                raise LayerError(f"'{arg}' has {len(value)} values but the input has {axes} spatial "
                                 f"axes; expected one value or a list of {axes}", arg)
            return tuple(value)
        return (value,) * axes

    @staticmethod
    def spatial_axes(shape: tuple, kind: str, ranks=(1, 2, 3)) -> int:
        axes = len(shape) - 1
        if axes not in ranks:
            want = " or ".join(f"[C{', L' if r == 1 else ', H, W' if r == 2 else ', D, H, W'}]" for r in ranks)
            raise LayerError(f"{kind} needs an input shaped {want}, got {list(shape)}")
        return axes


def contiguous_strides(shape: tuple) -> tuple:
    """Row-major strides (in elements) of a tensor of `shape`."""
    strides, step = [], 1
    for n in reversed(shape):
        strides.append(step)
        step *= n
    return tuple(reversed(strides))


def is_dense(shape: tuple, strides: tuple) -> bool:
    """Whether a tensor covers its memory without gaps or overlaps in some order of its dims
    (PyTorch's is_non_overlapping_and_dense): then elementwise results keep its strides."""
    step = 1
    for n, s in sorted(((n, s) for n, s in zip(shape, strides) if n != 1), key=lambda d: d[1]):
        if s != step:
            return False
        step *= n
    return True


_CHANNELS_LAST_ORDER = {4: (1, 3, 2, 0), 5: (1, 4, 3, 2, 0)}  # fastest dim first: C, W, (H,) ..., N


def channels_last_strides(shape: tuple) -> tuple:
    """Strides of a [N, C, H, W] (or [N, C, D, H, W]) tensor in channels-last order."""
    strides, step = [0] * len(shape), 1
    for d in _CHANNELS_LAST_ORDER[len(shape)]:
        strides[d] = step
        step *= shape[d]
    return tuple(strides)


def suggests_channels_last(shape: tuple, strides: tuple) -> bool:
    """PyTorch's suggest_memory_format() == channels_last(_3d) for these sizes and strides
    (c10's is_channels_last_strides_2d/3d)."""
    if len(shape) not in _CHANNELS_LAST_ORDER or strides[1] == 0:
        return False
    least = 0
    for d in _CHANNELS_LAST_ORDER[len(shape)]:
        if shape[d] == 0 or strides[d] < least:
            return False
        if d == 0 and least == strides[1]:
            return False
        least = strides[d] * (shape[d] if shape[d] > 1 else 1)
    return True


def view_of(shape: tuple, strides: tuple, new_shape: tuple):
    """The strides of `new_shape` as a view of a tensor of `shape` and `strides` (all batch first),
    or None where no view exists and reshape copies: PyTorch's at::detail::computeStride."""
    if not shape:
        return (1,) * len(new_shape)
    if prod(shape) == 0:
        return None
    new = [0] * len(new_shape)
    view_d = len(new_shape) - 1
    base = strides[-1]
    tensor_numel = view_numel = 1
    for tensor_d in range(len(shape) - 1, -1, -1):
        tensor_numel *= shape[tensor_d]
        if tensor_d == 0 or (shape[tensor_d - 1] != 1 and strides[tensor_d - 1] != tensor_numel * base):
            while view_d >= 0 and (view_numel < tensor_numel or new_shape[view_d] == 1):
                new[view_d] = view_numel * base
                view_numel *= new_shape[view_d]
                view_d -= 1
            if view_numel != tensor_numel:
                return None
            if tensor_d > 0:
                base = strides[tensor_d - 1]
                tensor_numel = view_numel = 1
    return tuple(new) if view_d == -1 else None


def arity_bounds(arity) -> tuple[int, int | None]:
    """(fewest, most) inputs of a kind's `arity`: 1 -> (1, 1), None -> (2, None: any number),
    (a, b) -> (a, b)."""
    if arity is None:
        return 2, None
    if isinstance(arity, tuple):
        return arity
    return arity, arity


_COUNT_WORDS = {1: "one", 2: "two", 3: "three", 4: "four"}


def arity_text(arity) -> str:
    """The inputs a kind takes, in words: "one", "two or more", "one or two", "two to four"."""
    low, high = arity_bounds(arity)
    word = _COUNT_WORDS.get(low, str(low))
    if high is None:
        return f"{word} or more"
    if high == low:
        return word
    return f"{word} {'or' if high == low + 1 else 'to'} {_COUNT_WORDS.get(high, str(high))}"


def inputs_text(layer, code: str = "") -> str:
    """A kind's inputs in words, with its roles where it names them (cross_attention: queries,
    memory); `code` wraps the from: example (Markdown's backtick for the reference)."""
    roles = getattr(layer, "input_roles", ())
    if layer.arity is None:
        return f"two or more ({code}from: [a, b, ...]{code})"
    if roles:
        return f"{arity_text(layer.arity)} ({code}from: [{', '.join(roles)}]{code})"
    return arity_text(layer.arity)


def arity_error(kind: str, arity, count: int) -> str | None:
    """Why `count` inputs do not suit a kind of this arity (None when they do)."""
    low, high = arity_bounds(arity)
    if low <= count and (high is None or count <= high):
        return None
    if arity == 1:
        return f"{kind} takes one input, but 'from' names {count}"
    if arity is None:
        return f"{kind} merges two or more inputs; name them with 'from: [a, b]'"
    return f"{kind} takes {arity_text(arity)} inputs, but 'from' names {count}"


def dim_index(dim: int, rank: int, arg: str = "dim") -> int:
    """Normalise a (possibly negative) dimension index of a batch-less shape."""
    if not -rank <= dim < rank:
        raise LayerError(f"'{arg}' is {dim} but the input has {rank} dimensions "
                         f"(batch excluded); expected {-rank}..{rank - 1}", arg)
    return dim % rank


def check_groups(cin, cout, groups) -> None:
    """PyTorch's rule for grouped (and depthwise) convolutions: groups divide both channel counts."""
    if cin % groups:
        raise LayerError(f"input channels {cin} are not divisible by groups {groups}", "groups")
    if cout % groups:
        raise LayerError(f"output channels {cout} are not divisible by groups {groups}", "groups")


def prod(values, start=1):
    for v in values:
        start = start * v
    return start


class KindRegistry(Mapping):
    """Every layer kind by name (a read-only mapping name -> Layer instance).

    A kind's module is imported the first time the kind is looked up (`KINDS["conv"]`), so a spec
    that uses five kinds imports five modules, not all of them (issue 14 point 8: start-up time).
    The names, `in`, len() and iteration come from the index archcalc/layers/__init__.py gives
    (name -> module, every module of the folder: tests/layers/test_registry.py checks it against the
    modules themselves), and import nothing; values() and items() import every kind's module."""

    def __init__(self):
        self._modules: dict[str, str] = {}  # kind name -> the module that registers it
        self._loaded: dict[str, Layer] = {}

    def index(self, modules: dict[str, str]) -> None:
        for name, module in modules.items():
            self._modules.setdefault(name, module)

    def _add(self, instance: Layer) -> None:
        kind = type(instance).kind
        if kind in self._loaded:
            raise RuntimeError(f"layer kind {kind!r} registered twice")
        self._loaded[kind] = instance
        self._modules.setdefault(kind, type(instance).__module__)  # a kind outside the index

    def __getitem__(self, name: str) -> Layer:
        try:
            return self._loaded[name]
        except KeyError:
            module = self._modules[name]  # an unknown name: KeyError, as a dict's
        import importlib

        importlib.import_module(module)
        try:
            return self._loaded[name]
        except KeyError:
            raise RuntimeError(f"module {module} registers no layer kind {name!r}") from None

    def __contains__(self, name) -> bool:
        return name in self._modules

    def __iter__(self):
        return iter(self._modules)

    def __len__(self) -> int:
        return len(self._modules)

    def __repr__(self) -> str:
        return f"<{len(self)} layer kinds, {len(self._loaded)} imported>"


KINDS = KindRegistry()


def register(cls):
    """Class decorator: add one instance of the kind to the registry."""
    KINDS._add(cls())
    return cls


# --- PyTorch modules written as source ----------------------------------------------------------
# A kind whose module is not in torch.nn and holds weights (class token, attention) defines it as
# Python source: the same text builds the module here and is written out by `archcalc export`,
# so the exported file cannot drift from what verify measured. Only archcalc's own constant
# strings are executed, never text from a spec.

_TORCH_CLASSES: dict = {}


def torch_class(source: str, name: str):
    """The `nn.Module` subclass `name` defined by `source` (which may use torch, nn, F and math)."""
    import textwrap

    key = (source, name)
    cls = _TORCH_CLASSES.get(key)
    if cls is None:
        import math

        import torch
        from torch import nn
        from torch.nn import functional as F

        text = textwrap.dedent(source).strip() + "\n"
        namespace = {"torch": torch, "nn": nn, "F": F, "math": math, "__name__": "archcalc.layers.torch_source"}
        exec(compile(text, f"<archcalc {name}>", "exec"), namespace)  # noqa: S102 - our own constant source
        cls = namespace[name]
        cls.export_source = text
        _TORCH_CLASSES[key] = cls
    return cls


def custom_module(source: str, name: str, *args):
    """An instance of `torch_class(source, name)` built with `args` (numbers, bools, strings, None
    or tuples of them), remembering the constructor call for `archcalc export`."""
    module = torch_class(source, name)(*args)
    module.export_call = f"{name}({', '.join(repr(a) for a in args)})"
    return module
