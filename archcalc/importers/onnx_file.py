"""Import an ONNX file as an archcalc spec: each operator of the graph becomes a layer kind.

Only the `onnx` package is used (never torch, never onnxruntime). The file's shapes come from
ONNX shape inference (`onnx.shape_inference.infer_shapes`, with data propagation so that shapes
computed with Shape/Gather/Concat are known), its initializers give the parameter shapes and so
the kinds' arguments (a Conv's weight [Cout, Cin/groups, K...] gives `out` and `kernel`).

Conventions (docs/import.md has the whole operator table):

- the first axis of every graph input is the batch; the spec's input excludes it. A dynamic
  batch is fine; any other dynamic size needs `--input` (else the import is refused);
- an operator whose inputs are all constants (initializers, Constant nodes, the Shape of a tensor
  whose shape is known) is computed at import time, as ONNX's constant folding does: it is no
  layer (a weight transposed in the graph, the target shape of a Reshape);
- MatMul by a constant [K, N] is a `linear` without bias; followed by an Add of a constant [N]
  (its only use) it is one `linear` with bias, as PyTorch's nn.Linear exports;
- a constant tensor added to (or multiplying) a value becomes a `parameter` (a learned tensor:
  its values count as parameters, as the file stores them) and an `add` (`multiply`); a scalar
  constant multiplying or dividing becomes `multiply_by` (no parameters);
- an initializer used by several operators counts once per use (PyTorch's two LayerNorms with
  equal weights share one initializer after the exporter deduplicates them);
- an operator archcalc cannot represent is refused, naming its type, its node and its index.

`state_dict(path)` gives the file's weights under the built spec's state_dict keys, so that
`archcalc.torch.build(spec).load_state_dict(...)` runs the same function as the file.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from archcalc.errors import SpecError, one_line
from archcalc.importers import _first_line
from archcalc.reader.cli_text import parse_input

MAX_FILE = 2 ** 31  # protobuf's own limit for one message; larger models keep weights outside
BATCH_PROBE = 1_000_003  # a dynamic batch is given this prime during shape inference, to tell it apart
MAX_FOLDED = 10_000_000  # elements a constant computed at import time may hold

_TORCH_ATTRS = {  # names nn.Module already has: a layer cannot take them in PyTorch
    "training", "forward", "train", "eval", "to", "cuda", "cpu", "float", "double", "half", "bfloat16",
    "type", "apply", "modules", "children", "parameters", "buffers", "state_dict", "zero_grad",
    "share_memory", "extra_repr", "register_buffer", "register_parameter", "add_module", "get_submodule",
    "requires_grad_", "named_modules", "named_parameters", "named_buffers", "named_children",
    "load_state_dict", "dump_patches", "call_super_init", "ipu", "xpu", "mtia", "compile", "get_parameter",
    "get_buffer", "set_submodule", "register_module", "input", "min", "max", "floor", "ceil", "round"}


@dataclass
class _Live:
    """A tensor the network computes at run time: made by the spec entry `entry` (or the
    network input `entry`), with the full shape (batch first) shape inference gave."""

    entry: str
    shape: tuple


@dataclass
class _Layer:
    name: str
    kind: str
    args: dict
    inputs: list  # entry names (or input names)
    weights: dict = field(default_factory=dict)  # torch parameter name -> numpy array
    where: str = ""
    path: str = ""  # the module path of the node it comes from (`layer1.0.conv1`), if the file says
    classes: dict = field(default_factory=dict)  # module path -> class name, where the file says


class _Importer:
    def __init__(self, path: str, input_spec):
        import numpy as np
        import onnx

        self.np, self.onnx = np, onnx
        self.path = str(path)
        self.model = _read(self.path)
        self.graph = self.model.graph
        self.opset = next((o.version for o in self.model.opset_import if o.domain in ("", "ai.onnx")), 0)
        self.layers: list[_Layer] = []
        self.values: dict = {}  # tensor name -> _Live or numpy array (a constant)
        self.names: set = set()
        self.absorbed: set = set()  # node indices folded into an earlier layer (MatMul + Add)
        self.input_spec = input_spec
        self._inputs()
        self._infer()

    # --- inputs and shapes ------------------------------------------------------------------------
    def _inputs(self):
        np, onnx = self.np, self.onnx
        inits = {t.name for t in self.graph.initializer}
        for t in self.graph.initializer:
            self.values[t.name] = onnx.numpy_helper.to_array(t)
        graph_inputs = [i for i in self.graph.input if i.name not in inits]
        if not graph_inputs:
            raise SpecError(f"{self.path}: the graph has no input")
        given = _parse_input(self.input_spec, [i.name for i in graph_inputs])
        self.net_inputs = []  # (spec name, shape without batch, tokens?)
        self.batch = None
        for k, item in enumerate(graph_inputs):
            tt = item.type.tensor_type
            if not item.type.HasField("tensor_type") or not tt.HasField("shape"):
                raise SpecError(f"{self.path}: input '{item.name}' has no tensor shape in the file")
            dims = list(tt.shape.dim)
            if len(dims) < 2:
                raise SpecError(f"{self.path}: input '{item.name}' has rank {len(dims)}; archcalc needs a batch "
                                "axis and at least one more")
            first = dims[0]
            if first.HasField("dim_value") and first.dim_value > 0:
                batch = first.dim_value
            else:
                batch = BATCH_PROBE
            if self.batch is None:
                self.batch = batch
            elif batch != self.batch:
                raise SpecError(f"{self.path}: inputs '{graph_inputs[0].name}' and '{item.name}' have different "
                                "batch sizes")
            want = given.get(item.name) if isinstance(given, dict) else (given if k == 0 else None)
            sizes = []
            for axis, d in enumerate(dims[1:], start=1):
                fixed = d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None
                if want is not None:
                    if len(want) != len(dims) - 1:
                        raise SpecError(f"--input gives {len(want)} sizes for input '{item.name}', which has "
                                        f"{len(dims) - 1} besides the batch")
                    if fixed is not None and want[axis - 1] != fixed:
                        raise SpecError(f"--input: input '{item.name}' has size {fixed} at axis {axis} in the file "
                                        f"(the graph is fixed to it); --input gives {want[axis - 1]}")
                    sizes.append(want[axis - 1])
                elif fixed is None:
                    what = d.dim_param or "unknown"
                    raise SpecError(f"{self.path}: input '{item.name}' has a dynamic size ('{what}') at axis {axis}: "
                                    f"give every size but the batch with --input, e.g. --input "
                                    f"{','.join(str(x.dim_value or 'N') for x in dims[1:])}")
                else:
                    sizes.append(fixed)
            for axis, size in enumerate([batch] + sizes):
                dims[axis].Clear()
                dims[axis].dim_value = size
            elem = tt.elem_type
            tokens = elem in (onnx.TensorProto.INT64, onnx.TensorProto.INT32)
            if not tokens and elem not in (onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE,
                                           onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16):
                raise SpecError(f"{self.path}: input '{item.name}' holds {onnx.TensorProto.DataType.Name(elem)}; "
                                "archcalc takes real values or integer token ids")
            name = self._unique(_word(item.name) or "input", k == 0 and len(graph_inputs) == 1)
            self.net_inputs.append((name, tuple(sizes), tokens))
            self.values[item.name] = _Live(name, tuple([batch] + sizes))
            if k == 0:
                self.values_first_shape = tuple([batch] + sizes)
        if isinstance(given, dict):
            unknown = set(given) - {i.name for i in graph_inputs}
            if unknown:
                raise SpecError(f"--input names '{sorted(unknown)[0]}', which is not an input of the graph "
                                f"({', '.join(i.name for i in graph_inputs)})")
        del np

    def _unique(self, name: str, is_input=False) -> str:
        if is_input:
            self.names.add("input")
            return "input"
        if name[0].isdigit():
            name = "n" + name
        if name in _TORCH_ATTRS:
            name += "_"
        name = name[:90]
        base, k = name, 2
        while name in self.names:
            name, k = f"{base}_{k}", k + 1
        self.names.add(name)
        return name

    def _infer(self):
        onnx = self.onnx
        try:
            inferred = onnx.shape_inference.infer_shapes(self.model, strict_mode=False, data_prop=True)
        except Exception as exc:  # onnx raises InferenceError, ValidationError, RuntimeError...
            raise SpecError(f"{self.path}: ONNX shape inference failed: {_first_line(exc)}") from None
        self.shapes, self.elems = {}, {}
        self._record(inferred.graph)

    # --- the walk ------------------------------------------------------------------------------------
    def run(self):
        nodes = list(self.graph.node)
        self.uses = {}
        for node in nodes:
            for name in node.input:
                if name:
                    self.uses[name] = self.uses.get(name, 0) + 1
        self.outputs = {o.name for o in self.graph.output}
        self.nodes = nodes
        for index, node in enumerate(nodes):
            if index in self.absorbed:
                continue
            self.index, self.node = index, node
            if node.domain not in ("", "ai.onnx"):
                self._refuse(f"is in the operator domain '{node.domain}', which archcalc does not know")
            if not [o for o in node.output if o]:
                self._refuse("has no output")
            try:
                if self._fold(node):
                    continue
                handler = getattr(self, f"_op_{node.op_type}", None)
                if handler is None:
                    self._refuse("has no archcalc layer kind")
                handler(node)
            except SpecError:
                raise
            except (TypeError, ValueError, IndexError, KeyError, AttributeError, OverflowError) as exc:
                # a malformed node (a required attribute missing, an input of the wrong rank)
                self._refuse(f"cannot be read: {type(exc).__name__}: {_first_line(exc)}")
        if len(self.graph.output) != 1:
            raise SpecError(f"{self.path}: the graph has {len(self.graph.output)} outputs; a spec has one")
        out = self.values.get(self.graph.output[0].name)
        if not isinstance(out, _Live):
            raise SpecError(f"{self.path}: the graph's output is a constant; there is nothing to analyse")
        if not self.layers:
            raise SpecError(f"{self.path}: the graph computes nothing archcalc can write as a layer")
        if out.entry != self.layers[-1].name:  # the output is not the last layer made: read it again
            self._add("identity", {}, [out], out.shape, name="output")
        return self

    # --- helpers ---------------------------------------------------------------------------------
    def _where(self) -> str:
        return f"node '{self.node.name or '(unnamed)'}' (#{self.index})"

    def _refuse(self, why: str):
        raise SpecError(f"{self.path}: ONNX operator {self.node.op_type} at {self._where()} {why}")

    def _attr(self, node, name, default=None):
        for a in node.attribute:
            if a.name == name:
                return self.onnx.helper.get_attribute_value(a)
        return default

    def _in(self, node, k):
        """The node's input k: a _Live, a numpy constant, or None where absent."""
        if k >= len(node.input) or not node.input[k]:
            return None
        name = node.input[k]
        if name not in self.values:
            self._refuse(f"reads '{name}', which nothing before it makes")
        return self.values[name]

    def _live(self, node, k=0) -> _Live:
        v = self._in(node, k)
        if not isinstance(v, _Live):
            self._refuse(f"needs a computed tensor as input {k}, not a constant")
        return v

    def _const(self, node, k, what):
        v = self._in(node, k)
        if v is None or isinstance(v, _Live):
            self._refuse(f"needs its {what} (input {k}) stored in the file (an initializer or a constant), "
                         "not computed")
        return v

    def _out_shape(self, node, k=0) -> tuple:
        name = node.output[k]
        shape = self.shapes.get(name)
        if shape is None:
            self._infer_node(node)
            shape = self.shapes.get(name)
        if shape is None:
            self._refuse(f"has an output ('{name}') whose shape ONNX shape inference could not tell")
        if not shape or shape[0] != self.batch:
            batch = "N" if self.batch == BATCH_PROBE else self.batch
            self._refuse(f"mixes the batch axis into others (output shape [{self._shape_text(shape)}] for a batch of "
                         f"{batch}); archcalc keeps the batch as the first axis")
        return shape

    def _shape_text(self, shape) -> str:
        """A shape with a dynamic batch written as N (`64*N, 49, 96`), not as its stand-in number."""
        if self.batch != BATCH_PROBE:
            return ", ".join(map(str, shape))
        return ", ".join("N" if d == BATCH_PROBE else f"{d // BATCH_PROBE}*N" if d and d % BATCH_PROBE == 0 else str(d)
                         for d in shape)

    def _infer_node(self, node):
        """Shape inference of this node alone, from its inputs' shapes and the constants computed
        so far: where the graph-wide pass gave up (a Reshape to a size computed with Div, which
        ONNX's data propagation does not follow), every later node still gets its shapes."""
        onnx = self.onnx
        helper = onnx.helper
        inputs, inits = [], []
        for name in node.input:
            value = self.values.get(name) if name else None
            if isinstance(value, _Live):
                inputs.append(helper.make_tensor_value_info(name, self.elems.get(name, onnx.TensorProto.FLOAT),
                                                            list(value.shape)))
            elif value is not None:
                inits.append(onnx.numpy_helper.from_array(self.np.asarray(value), name))
        graph = helper.make_graph([node], "one", inputs, [helper.make_tensor_value_info(o, 0, None)
                                                          for o in node.output if o], inits)
        model = helper.make_model(graph, opset_imports=list(self.model.opset_import))
        model.ir_version = self.model.ir_version
        try:
            inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
        except Exception:  # noqa: BLE001 - the caller refuses the node, naming it
            return
        self._record(inferred.graph)

    def _record(self, graph):
        for vi in list(graph.value_info) + list(graph.output) + list(graph.input):
            tt = vi.type.tensor_type
            if vi.type.HasField("tensor_type") and tt.HasField("shape"):
                dims = [d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim]
                if all(d is not None for d in dims):
                    self.shapes[vi.name] = tuple(dims)
                if tt.elem_type:
                    self.elems[vi.name] = tt.elem_type

    def _base_name(self, kind: str) -> str:
        """The node's name in the spec, before it is made unique: its module path (`layer1_0_conv1`),
        or that and the operation where the module makes several layers, or the node's own name."""
        path, op = _node_path(self.node)
        text = _word(path) if path else ""
        if not text or text in self.names:
            text = (text + "_" if text else "") + (_word(op) or kind)
        if text[0].isdigit():
            text = f"{kind}_{text}"
        return text

    def _name(self, kind: str) -> str:
        return self._unique(self._base_name(kind))

    def _add(self, kind, args, inputs, shape, weights=None, name=None, output=None):
        layer = _Layer(self._unique(name) if name else self._name(kind), kind, args,
                       [v.entry for v in inputs], weights or {}, self._where())
        self._push(layer)
        if output is not None or name != "output":
            self.values[output if output is not None else self.node.output[0]] = _Live(layer.name, tuple(shape))
        return layer

    def _push(self, layer: _Layer):
        layer.path, _ = _node_path(self.node)
        layer.classes = _node_classes(self.node)
        self.layers.append(layer)

    def _alias(self, node, value):
        self.values[node.output[0]] = value

    def _fold(self, node) -> bool:
        """Compute the node now when it reads constants only (or the Shape of a known tensor)."""
        np = self.np
        if node.op_type == "Constant":
            attr = node.attribute[0] if node.attribute else None
            if attr is None:
                self._refuse("holds no value")
            value = self.onnx.helper.get_attribute_value(attr)
            if isinstance(value, self.onnx.TensorProto):
                value = self.onnx.numpy_helper.to_array(value)
            self.values[node.output[0]] = np.array(value)
            return True
        if node.op_type in ("Shape", "Size"):
            v = self._in(node, 0)
            if isinstance(v, _Live):
                shape = np.array(v.shape, dtype=np.int64)
                if node.op_type == "Size":
                    value = np.array(int(np.prod(shape)), dtype=np.int64)
                else:
                    start, end = self._attr(node, "start", 0), self._attr(node, "end", None)
                    value = shape[start:end]
                self.values[node.output[0]] = value
                return True
        ins = [self._in(node, k) for k in range(len(node.input))]
        if any(isinstance(v, _Live) for v in ins) or not node.input:
            return False
        if node.op_type in ("RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial",
                            "Bernoulli"):
            return False
        if node.op_type == "Expand" and len(ins) == 2:  # a constant for every example: cls_token.expand(n, -1, -1)
            np = self.np
            const, target = ins[0], tuple(int(v) for v in np.asarray(ins[1]).reshape(-1))
            try:
                full = tuple(np.broadcast_shapes(const.shape, target))
            except ValueError:
                self._refuse(f"expands a constant of shape {list(const.shape)} to {list(target)}, which do not broadcast")
            if full and full[0] == BATCH_PROBE:
                padded = (1,) * (len(full) - const.ndim) + tuple(const.shape)
                if padded[0] != 1 or padded[1:] != full[1:]:
                    self._refuse(f"expands a constant of shape {list(const.shape)} along axes besides the batch "
                                 f"(to {list(full)}); archcalc's parameter is one tensor for every example")
                first = self.net_inputs[0][0]
                self._parameter(const.reshape(padded[1:]), _Live(first, self.values_first_shape), node.output[0])
                return True
            if math.prod(full) > MAX_FOLDED:
                self._refuse(f"computes a constant of {math.prod(full):,} values; archcalc folds constants of at "
                             f"most {MAX_FOLDED:,}")
        for k, name in enumerate(node.output):
            shape = self.shapes.get(name)
            if shape is not None and math.prod(shape) > MAX_FOLDED:
                self._refuse(f"computes a constant of {math.prod(shape):,} values from constants; archcalc folds "
                             f"constants of at most {MAX_FOLDED:,}")
        try:
            from onnx.reference import ReferenceEvaluator

            feeds = {name: v for name, v in zip(node.input, ins) if name}
            graph = self.onnx.helper.make_graph(
                [node], "fold",
                [self.onnx.helper.make_tensor_value_info(n, self.onnx.helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)
                 for n, v in feeds.items()],
                [self.onnx.helper.make_tensor_value_info(n, 0, None) for n in node.output if n])
            model = self.onnx.helper.make_model(graph, opset_imports=list(self.model.opset_import))
            results = ReferenceEvaluator(model).run(None, feeds)
        except SpecError:
            raise
        except Exception as exc:
            self._refuse(f"reads only constants but could not be computed at import time: {_first_line(exc)}")
        for name, value in zip([n for n in node.output if n], results):
            self.values[name] = np.asarray(value)
        return True

    # --- operators ---------------------------------------------------------------------------------
    def _pads(self, node, x, kernel, strides, dilations):
        """(begin, end) paddings per spatial axis, auto_pad resolved from the input's sizes."""
        rank = len(kernel)
        auto = self._attr(node, "auto_pad", b"NOTSET")
        auto = auto.decode() if isinstance(auto, bytes) else auto
        if auto in ("SAME_UPPER", "SAME_LOWER"):
            begin, end = [], []
            for n, k, s, d in zip(x.shape[2:], kernel, strides, dilations):
                total = max((-(-n // s) - 1) * s + (k - 1) * d + 1 - n, 0)
                small = total // 2
                begin.append(small if auto == "SAME_UPPER" else total - small)
                end.append(total - begin[-1])
            return begin, end
        if auto == "VALID":
            return [0] * rank, [0] * rank
        pads = list(self._attr(node, "pads", [0] * (2 * rank)))
        return pads[:rank], pads[rank:]

    def _window(self, node, x, kernel, pool=False):
        rank = len(kernel)
        strides = list(self._attr(node, "strides", [1] * rank))
        dilations = list(self._attr(node, "dilations", [1] * rank))
        begin, end = self._pads(node, x, kernel, strides, dilations)
        return strides, dilations, begin, end

    def _conv_operands(self, node):
        """(input, weight, bias or None, kernel size) of a Conv or ConvTranspose node."""
        x = self._live(node, 0)
        w = self._const(node, 1, "weight")
        b = self._in(node, 2)
        if isinstance(b, _Live):
            self._refuse("has a computed bias; archcalc needs it stored in the file")
        return x, w, b, list(w.shape[2:])

    def _op_Conv(self, node):
        x, w, b, kernel = self._conv_operands(node)
        if not 1 <= len(kernel) <= 3 or len(x.shape) != len(kernel) + 2:
            self._refuse(f"is a {len(kernel)}-d convolution of a rank-{len(x.shape)} tensor; archcalc has 1-, 2- "
                         "and 3-d convolutions of [N, C, ...]")
        strides, dilations, begin, end = self._window(node, x, kernel)
        groups = int(self._attr(node, "group", 1))
        if groups < 1 or x.shape[1] != w.shape[1] * groups or w.shape[0] % groups:
            self._refuse(f"has a weight {list(w.shape)} and group {groups} that do not fit its input's {x.shape[1]} "
                         "channels")
        inputs = [x]
        if begin != end:  # asymmetric padding (auto_pad SAME, TensorFlow's): pad first, exactly
            inputs = [self._zeropad(x, begin, end)]
            begin = [0] * len(kernel)
        self._add_conv("conv", int(w.shape[0]), kernel, strides, begin, dilations, groups, w, b, inputs,
                       self._out_shape(node))

    def _add_conv(self, kind, out_channels, kernel, strides, padding, dilations, groups, w, b, inputs, out,
                  output_padding=()):
        """A conv / conv_transpose layer: its args (only those that differ from the default, in the
        kind's order) and its weight (and bias, if the node has one)."""
        args = {"out": out_channels, "kernel": _one(kernel)}
        _put(args, "stride", strides, 1)
        _put(args, "padding", padding, 0)
        _put(args, "output_padding", output_padding, 0)
        _put(args, "dilation", dilations, 1)
        if groups != 1:
            args["groups"] = groups
        if b is None:
            args["bias"] = False
        weights = {"weight": w} if b is None else {"weight": w, "bias": b}
        self._add(kind, args, inputs, out, weights)

    def _zeropad(self, x, begin, end):
        pad = []
        for lo, hi in reversed(list(zip(begin, end))):
            pad += [int(lo), int(hi)]
        shape = tuple(x.shape[:2]) + tuple(n + lo + hi for n, lo, hi in zip(x.shape[2:], begin, end))
        layer = _Layer(self._unique(self._base_name("conv") + "_pad"), "zeropad", {"padding": _one(pad)}, [x.entry], {}, self._where())
        self._push(layer)
        return _Live(layer.name, shape)

    def _op_ConvTranspose(self, node):
        x, w, b, kernel = self._conv_operands(node)
        rank = len(kernel)
        groups = int(self._attr(node, "group", 1))
        strides = list(self._attr(node, "strides", [1] * rank))
        dilations = list(self._attr(node, "dilations", [1] * rank))
        out_pad = list(self._attr(node, "output_padding", [0] * rank))
        out = self._out_shape(node)
        auto = self._attr(node, "auto_pad", b"NOTSET")
        auto = auto.decode() if isinstance(auto, bytes) else auto
        if self._attr(node, "output_shape") is not None or auto != "NOTSET":
            # total padding from the sizes ONNX computed: out = S(N-1) + op + (K-1)D + 1 - total
            totals = [s * (n - 1) + op + (k - 1) * d + 1 - m
                      for n, m, k, s, d, op in zip(x.shape[2:], out[2:], kernel, strides, dilations, out_pad)]
            if any(t < 0 or t % 2 for t in totals):
                self._refuse("pads its sides unequally (auto_pad/output_shape); archcalc's conv_transpose pads both "
                             "sides alike")
            begin = end = [t // 2 for t in totals]
        else:
            pads = list(self._attr(node, "pads", [0] * (2 * rank)))
            begin, end = pads[:rank], pads[rank:]
        if begin != end:
            self._refuse(f"pads its sides unequally ({begin} before, {end} after); archcalc's conv_transpose pads "
                         "both sides alike")
        self._add_conv("conv_transpose", int(w.shape[1]) * groups, kernel, strides, begin, dilations, groups, w, b,
                       [x], out, output_padding=out_pad)

    def _op_Gemm(self, node):
        np = self.np
        x = self._live(node, 0)
        w = self._const(node, 1, "weight")
        c = self._in(node, 2)
        if isinstance(c, _Live):
            self._refuse("adds a computed C; archcalc's linear needs its bias stored in the file")
        if self._attr(node, "transA", 0):
            self._refuse("transposes its input (transA = 1); archcalc's linear multiplies [N, in] by its weight")
        alpha, beta = float(self._attr(node, "alpha", 1.0)), float(self._attr(node, "beta", 1.0))
        weight = w if self._attr(node, "transB", 0) else w.T  # nn.Linear's weight is [out, in]
        if alpha != 1.0:
            weight = weight * np.asarray(alpha, dtype=weight.dtype)
        out = int(weight.shape[0])
        weights = {"weight": np.ascontiguousarray(weight)}
        args = {"out": out}
        if c is None:
            args["bias"] = False
        else:
            if c.size != out or c.ndim > 2:
                self._refuse(f"adds a C of shape {list(c.shape)}; archcalc's linear takes a bias of {out} values")
            weights["bias"] = (c.reshape(out) * np.asarray(beta, dtype=c.dtype)) if beta != 1.0 else c.reshape(out)
        self._add("linear", args, [x], self._out_shape(node), weights)

    def _op_MatMul(self, node):
        np = self.np
        a, b = self._in(node, 0), self._in(node, 1)
        if isinstance(a, _Live) and isinstance(b, _Live):
            self._add("matmul", {}, [a, b], self._out_shape(node))
            return
        if not isinstance(a, _Live):
            self._refuse("multiplies a constant by a computed tensor from the left; archcalc's linear multiplies "
                         "the tensor by its weight (x W)")
        if b.ndim != 2:
            self._refuse(f"multiplies by a constant of rank {b.ndim}; archcalc's linear takes a weight matrix [in, out]")
        weights = {"weight": np.ascontiguousarray(b.T)}
        args = {"out": int(b.shape[1])}
        out_name, shape = node.output[0], self._out_shape(node)
        nxt = self._only_consumer(out_name)
        if nxt is not None and self.nodes[nxt].op_type == "Add":
            add = self.nodes[nxt]
            other = [self._peek(n) for n in add.input if n != out_name]
            bias = other[0] if len(other) == 1 else None
            if bias is not None and not isinstance(bias, _Live) and bias.size == b.shape[1] and \
                    bias.shape[-1:] == (b.shape[1],) and len(bias.shape) <= len(shape):
                weights["bias"] = bias.reshape(-1)
                self.absorbed.add(nxt)
                self._add("linear", args, [a], shape, weights, output=add.output[0])
                return
        args["bias"] = False
        self._add("linear", args, [a], shape, weights)

    def _peek(self, name):
        return self.values.get(name)

    def _only_consumer(self, name, after=None):
        """The index of the one node reading `name` (after node `after`), or None."""
        if self.uses.get(name) != 1 or name in self.outputs:
            return None
        for k in range((self.index if after is None else after) + 1, len(self.nodes)):
            if name in self.nodes[k].input:
                return k
        return None

    def _scalar(self, name, value) -> bool:
        const = self.values.get(name)
        if const is None:  # a Constant node later in the graph (exporters put them just before use)
            maker = next((n for n in self.nodes if n.op_type == "Constant" and name in n.output and n.attribute), None)
            if maker is not None:
                const = self.onnx.helper.get_attribute_value(maker.attribute[0])
                const = self.np.asarray(self.onnx.numpy_helper.to_array(const)
                                        if isinstance(const, self.onnx.TensorProto) else const)
        return (const is not None and not isinstance(const, _Live) and const.size == 1
                and _close(float(const.reshape(())), value))

    def _erf_gelu(self, node) -> bool:
        """GELU as exporters before opset 20 write it: x / sqrt(2) -> Erf -> + 1 -> x * . -> * 0.5
        (either order of the products). One `gelu` layer when every step is that, and each
        intermediate is used once."""
        x = self._in(node, 0)
        if not isinstance(x, _Live) or not self._scalar(node.input[1], math.sqrt(2)):
            return False
        chain, value, at = [], node.output[0], self.index
        for op in ("Erf", "Add", "Mul", "Mul"):
            k = self._only_consumer(value, at)
            if k is None or self.nodes[k].op_type != op:
                return False
            step = self.nodes[k]
            others = [n for n in step.input if n != value]
            if len(others) != (0 if op == "Erf" else 1):
                return False
            if op == "Erf":
                chain.append((k, None))
                value, at = step.output[0], k
                continue
            if op == "Add" and not self._scalar(others[0], 1.0):
                return False
            if op == "Mul" and not (self._scalar(others[0], 0.5) or others[0] == node.input[0]):
                return False
            chain.append((k, others[0] if op == "Mul" else None))
            value, at = step.output[0], k
        factors = [other for _, other in chain[2:]]
        if sorted(f == node.input[0] for f in factors) != [False, True]:
            return False
        self.absorbed.update(k for k, _ in chain)
        self._add("gelu", {}, [x], self._out_shape(self.nodes[chain[-1][0]]), output=value)
        return True

    def _binary(self, node, kind):
        np = self.np
        a, b = self._in(node, 0), self._in(node, 1)
        op = node.op_type
        if isinstance(a, _Live) and isinstance(b, _Live):
            if op in ("Sub", "Div"):
                self._refuse("takes the difference (quotient) of two computed tensors; archcalc has add and "
                             "multiply for two tensors")
            self._add(kind, {}, [a, b], self._out_shape(node))
            return
        live, const = (a, b) if isinstance(a, _Live) else (b, a)
        if not isinstance(a, _Live) and op in ("Sub", "Div"):
            self._refuse("subtracts from (divides) a constant by a computed tensor; archcalc cannot write that")
        if const.size == 1 and op in ("Mul", "Div"):
            value = float(const.reshape(()))
            if op == "Div":
                if value == 0:
                    self._refuse("divides by zero")
                value = 1.0 / value
            self._add("multiply_by", {"value": value}, [live], self._out_shape(node))
            return
        if op == "Sub":
            const = -const
        elif op == "Div":
            const = (1.0 / const).astype(const.dtype)
        rank = len(live.shape) - 1
        shape = tuple(const.shape)
        if len(shape) == rank + 1:
            if shape[0] != 1:
                self._refuse(f"adds a constant of shape {list(shape)} that runs along the batch")
            shape = shape[1:]
        elif len(shape) > rank + 1:
            self._refuse(f"broadcasts a constant of rank {len(shape)} against a tensor of rank {rank + 1}")
        shape = (1,) * (rank - len(shape)) + shape
        if not shape:
            shape = (1,)
        param = _Layer(self._unique(self._base_name(kind) + "_const"), "parameter", {"shape": list(shape)},
                       [live.entry], {"weight": np.ascontiguousarray(const.reshape(shape))}, self._where())
        self._push(param)
        self._add(kind, {}, [live, _Live(param.name, (self.batch,) + shape)], self._out_shape(node))

    def _op_Add(self, node):
        self._binary(node, "add")

    def _op_Sub(self, node):
        self._binary(node, "add")

    def _op_Mul(self, node):
        self._binary(node, "multiply")

    def _op_Div(self, node):
        if not self._erf_gelu(node):
            self._binary(node, "multiply")

    def _unary(self, kind, args=None):
        node = self.node
        self._add(kind, args or {}, [self._live(node, 0)], self._out_shape(node))

    def _op_Relu(self, node): self._unary("relu")
    def _op_Sigmoid(self, node): self._unary("sigmoid")
    def _op_Tanh(self, node): self._unary("tanh")
    def _op_Softsign(self, node): self._unary("softsign")
    def _op_Mish(self, node): self._unary("mish")
    def _op_HardSwish(self, node): self._unary("hardswish")
    def _op_Softplus(self, node): self._unary("softplus")

    def _op_LeakyRelu(self, node):
        alpha = float(self._attr(node, "alpha", 0.01))
        self._unary("leaky_relu", {} if _close(alpha, 0.01) else {"negative_slope": _f(alpha)})

    def _op_Elu(self, node):
        alpha = float(self._attr(node, "alpha", 1.0))
        self._unary("elu", {} if alpha == 1.0 else {"alpha": _f(alpha)})

    def _op_Celu(self, node):
        alpha = float(self._attr(node, "alpha", 1.0))
        self._unary("celu", {} if alpha == 1.0 else {"alpha": _f(alpha)})

    def _op_Selu(self, node):
        alpha, gamma = float(self._attr(node, "alpha", 1.67326319)), float(self._attr(node, "gamma", 1.05070102))
        if not (_close(alpha, 1.6732632423543772) and _close(gamma, 1.0507009873554805)):
            self._refuse(f"has alpha {alpha}, gamma {gamma}; archcalc's selu is PyTorch's (1.67326, 1.05070)")
        self._unary("selu")

    def _op_HardSigmoid(self, node):
        alpha, beta = float(self._attr(node, "alpha", 0.2)), float(self._attr(node, "beta", 0.5))
        if not (_close(alpha, 1 / 6) and _close(beta, 0.5)):
            self._refuse(f"is max(0, min(1, {alpha} x + {beta})); archcalc's hardsigmoid is PyTorch's relu6(x + 3) / 6 "
                         "(alpha 1/6, beta 0.5)")
        self._unary("hardsigmoid")

    def _op_Gelu(self, node):
        approx = self._attr(node, "approximate", b"none")
        approx = approx.decode() if isinstance(approx, bytes) else approx
        self._unary("gelu", {"approximate": "tanh"} if approx == "tanh" else {})

    def _op_Clip(self, node):
        lo = self._attr(node, "min") if self.opset < 11 else self._in(node, 1)
        hi = self._attr(node, "max") if self.opset < 11 else self._in(node, 2)
        if isinstance(lo, _Live) or isinstance(hi, _Live):
            self._refuse("clips to computed bounds; archcalc needs them stored in the file")
        lo = None if lo is None else float(self.np.asarray(lo).reshape(()))
        hi = None if hi is None else float(self.np.asarray(hi).reshape(()))
        if lo == 0 and hi == 6:
            self._unary("relu6")
        elif lo == 0 and (hi is None or hi == math.inf):
            self._unary("relu")
        elif lo is not None and hi is not None:
            self._unary("hardtanh", {"min_val": _f(lo), "max_val": _f(hi)})
        else:
            self._refuse("clips one side only; archcalc has relu (min 0) and hardtanh (both bounds)")

    def _op_PRelu(self, node):
        x = self._live(node, 0)
        slope = self._const(node, 1, "slope")
        n = int(slope.size)
        if n != 1 and (n != x.shape[1] or sum(d != 1 for d in slope.shape) > 1):
            self._refuse(f"has a slope of shape {list(slope.shape)}; archcalc's prelu has one slope or one per channel")
        self._add("prelu", {} if n == 1 else {"num_parameters": n}, [x], self._out_shape(node),
                  {"weight": slope.reshape(n)})

    def _softmax(self, node, kind):
        x = self._live(node, 0)
        rank = len(x.shape)
        axis = int(self._attr(node, "axis", -1 if self.opset >= 13 else 1))
        axis = axis + rank if axis < 0 else axis
        if self.opset < 13 and axis != rank - 1:
            self._refuse(f"(opset {self.opset}) normalises over every axis from {axis} on; archcalc's softmax takes "
                         "one axis")
        if axis == 0:
            self._refuse("normalises over the batch axis")
        self._add(kind, {"dim": -1 if axis == rank - 1 else axis - 1}, [x], self._out_shape(node))

    def _op_Softmax(self, node): self._softmax(node, "softmax")
    def _op_LogSoftmax(self, node): self._softmax(node, "log_softmax")

    def _op_Identity(self, node):
        self._alias(node, self._live(node, 0))

    def _op_Dropout(self, node):
        if len(node.output) > 1 and node.output[1] and self.uses.get(node.output[1]):
            self._refuse("gives its mask as a second output; archcalc's dropout gives the values only")
        ratio = self._in(node, 1) if self.opset >= 12 else self._attr(node, "ratio", 0.5)
        if isinstance(ratio, _Live):
            self._refuse("has a computed ratio")
        p = 0.5 if ratio is None else float(self.np.asarray(ratio).reshape(()))
        self._unary("dropout", {"p": _f(p)})

    def _pool(self, node, kind):
        x = self._live(node, 0)
        if len(node.output) > 1 and node.output[1] and self.uses.get(node.output[1]):
            self._refuse("gives the indices of the maxima as a second output; archcalc's maxpool gives the values")
        if self._attr(node, "kernel_shape") is None:
            self._refuse("has no kernel_shape")
        kernel = list(self._attr(node, "kernel_shape"))
        strides, dilations, begin, end = self._window(node, x, kernel)
        if begin != end:
            self._refuse(f"pads its sides unequally ({begin} before, {end} after); archcalc's pools pad both "
                         "sides alike")
        args = {"kernel": _one(kernel), "stride": _one(strides)}  # ONNX's default stride is 1, PyTorch's the kernel
        _put(args, "padding", begin, 0)
        if kind == "maxpool":
            _put(args, "dilation", dilations, 1)
        elif any(d != 1 for d in dilations):
            self._refuse("is dilated; archcalc's avgpool (PyTorch's) has no dilation")
        if self._attr(node, "ceil_mode", 0):
            args["ceil_mode"] = True
        if kind == "avgpool" and not self._attr(node, "count_include_pad", 0) and any(begin):
            args["count_include_pad"] = False
        self._add(kind, args, [x], self._out_shape(node))

    def _op_MaxPool(self, node): self._pool(node, "maxpool")
    def _op_AveragePool(self, node): self._pool(node, "avgpool")
    def _op_GlobalAveragePool(self, node): self._unary("global_avgpool")
    def _op_GlobalMaxPool(self, node): self._unary("global_maxpool")

    def _axes(self, node, k=1):
        axes = self._attr(node, "axes")
        if axes is None and len(node.input) > k and node.input[k]:
            axes = self._const(node, k, "axes")
        return None if axes is None else [int(a) for a in self.np.asarray(axes).reshape(-1)]

    def _const_peek(self, name):
        """A constant by name: computed already, or made by a Constant node later in the graph."""
        const = self.values.get(name)
        if const is None:
            maker = next((n for n in self.nodes if n.op_type == "Constant" and name in n.output and n.attribute), None)
            if maker is not None:
                const = self.onnx.helper.get_attribute_value(maker.attribute[0])
                const = self.np.asarray(self.onnx.numpy_helper.to_array(const)
                                        if isinstance(const, self.onnx.TensorProto) else const)
        return None if isinstance(const, _Live) else const

    def _readers(self, name, after):
        return [k for k in range(after + 1, len(self.nodes)) if name in self.nodes[k].input]

    def _decomposed_layernorm(self, node) -> bool:
        """LayerNorm as exporters before opset 17 write it: m = mean(x); d = x - m;
        v = mean(d ** 2); y = d / sqrt(v + eps) (* scale + bias): one `layernorm` (without the
        scale and bias: affine false) when every step is that and each intermediate is used once
        (d twice)."""
        np = self.np
        x = self._in(node, 0)
        if not isinstance(x, _Live) or not self._attr(node, "keepdims", 1):
            return False
        rank = len(x.shape)
        axes = sorted(a + rank if a < 0 else a for a in (self._attr(node, "axes") or
                                                          list(np.asarray(self._const_peek(node.input[1])
                                                                          if len(node.input) > 1 and node.input[1]
                                                                          else []).reshape(-1))))
        if not axes or axes != list(range(rank - len(axes), rank)) or 0 in axes:
            return False

        def one(name, after, op):
            k = self._only_consumer(name, after)
            return (k, self.nodes[k]) if k is not None and self.nodes[k].op_type == op else (None, None)

        k_sub, sub = one(node.output[0], self.index, "Sub")
        if sub is None or list(sub.input) != [node.input[0], node.output[0]]:
            return False
        d = sub.output[0]
        readers = self._readers(d, k_sub)
        if len(readers) != 2 or self.uses.get(d) != 2 or d in self.outputs:
            return False
        k_pow, k_div = sorted(readers, key=lambda k: self.nodes[k].op_type != "Pow")
        pow_, div = self.nodes[k_pow], self.nodes[k_div]
        if pow_.op_type != "Pow" or div.op_type != "Div" or pow_.input[0] != d or div.input[0] != d:
            return False
        if not self._scalar(pow_.input[1], 2.0):
            return False
        k_mean, mean2 = one(pow_.output[0], k_pow, "ReduceMean")
        if mean2 is None or not self._attr(mean2, "keepdims", 1):
            return False
        axes2 = self._attr(mean2, "axes") or list(np.asarray(self._const_peek(mean2.input[1]) if len(mean2.input) > 1
                                                             else []).reshape(-1))
        if sorted(a + rank if a < 0 else a for a in axes2) != axes:
            return False
        k_add, add = one(mean2.output[0], k_mean, "Add")
        if add is None:
            return False
        eps = self._const_peek([n for n in add.input if n != mean2.output[0]][0])
        if eps is None or eps.size != 1:
            return False
        k_sqrt, sqrt = one(add.output[0], k_add, "Sqrt")
        if sqrt is None or one(sqrt.output[0], k_sqrt, "Div")[0] != k_div or div.input[1] != sqrt.output[0]:
            return False
        used = [k_sub, k_pow, k_mean, k_add, k_sqrt, k_div]
        out, weights, norm = div.output[0], {}, tuple(x.shape[rank - len(axes):])
        k_mul, mul = one(out, k_div, "Mul")
        scale = self._const_peek([n for n in mul.input if n != out][0]) if mul is not None else None
        if scale is not None and scale.size == math.prod(norm):
            k_bias, badd = one(mul.output[0], k_mul, "Add")
            bias = self._const_peek([n for n in badd.input if n != mul.output[0]][0]) if badd is not None else None
            weights["weight"] = scale.reshape(norm)
            used.append(k_mul)
            out = mul.output[0]
            if bias is not None and bias.size == math.prod(norm):
                weights["bias"] = bias.reshape(norm)
                used.append(k_bias)
                out = badd.output[0]
        args = {}
        if len(axes) != 1:
            args["dims"] = len(axes)
        eps = float(eps.reshape(()))
        if not _close(eps, 1e-5):
            args["eps"] = _f(eps)
        if not weights:
            args["affine"] = False
        elif "bias" not in weights:
            args["bias"] = False
        self.absorbed.update(used)
        self._add("layernorm", args, [x], self._out_shape(self.nodes[used[-1]]), weights, output=out)
        return True

    def _op_ReduceMean(self, node):
        if self._decomposed_layernorm(node):
            return
        x = self._live(node, 0)
        rank = len(x.shape)
        axes = self._axes(node, 1)
        keep = bool(self._attr(node, "keepdims", 1))
        axes = list(range(rank)) if not axes else sorted(a + rank if a < 0 else a for a in axes)
        if 0 in axes:
            self._refuse("averages over the batch axis")
        if keep and rank >= 3 and axes == list(range(2, rank)):
            self._unary("global_avgpool")
            return
        self._add("mean", {"dim": _one([a - 1 for a in axes]), **({"keepdim": True} if keep else {})}, [x],
                  self._out_shape(node))

    def _op_ReduceMax(self, node):
        x = self._live(node, 0)
        rank = len(x.shape)
        axes = self._axes(node, 1)
        axes = list(range(rank)) if not axes else sorted(a + rank if a < 0 else a for a in axes)
        if not (self._attr(node, "keepdims", 1) and rank >= 3 and axes == list(range(2, rank))):
            self._refuse("takes a maximum other than over every spatial axis (keepdims); archcalc has global_maxpool")
        self._unary("global_maxpool")

    def _op_Cast(self, node):
        x = self._live(node, 0)
        floats = {self.onnx.TensorProto.FLOAT, self.onnx.TensorProto.DOUBLE, self.onnx.TensorProto.FLOAT16,
                  self.onnx.TensorProto.BFLOAT16}
        to = int(self._attr(node, "to", 0))
        source = self.elems.get(node.input[0], self.onnx.TensorProto.FLOAT)
        if to != source and not (to in floats and source in floats):
            self._refuse("changes integers to reals or back; archcalc's values keep their kind")
        self._alias(node, x)  # a precision change: archcalc's figures do not depend on it

    def _op_Flatten(self, node):
        x = self._live(node, 0)
        axis = int(self._attr(node, "axis", 1))
        axis = axis + len(x.shape) if axis < 0 else axis
        if axis != 1:
            self._refuse(f"flattens from axis {axis}; archcalc keeps the batch as the first axis (axis 1 only)")
        self._reshape(node, x)

    def _reshape(self, node, x):
        out = self._out_shape(node)
        if out == x.shape:
            self._alias(node, x)
        elif len(out) == 2 and len(x.shape) > 2:
            self._add("flatten", {}, [x], out)
        else:
            self._add("reshape", {"shape": list(out[1:])}, [x], out)

    def _op_Reshape(self, node): self._reshape(node, self._live(node, 0))
    def _op_Squeeze(self, node): self._reshape(node, self._live(node, 0))
    def _op_Unsqueeze(self, node): self._reshape(node, self._live(node, 0))

    def _op_Transpose(self, node):
        x = self._live(node, 0)
        perm = self._attr(node, "perm")
        perm = list(reversed(range(len(x.shape)))) if perm is None else [int(p) for p in perm]
        if perm[0] != 0:
            self._refuse(f"moves the batch axis (perm {perm}); archcalc keeps it first")
        if perm == sorted(perm):
            self._alias(node, x)
            return
        self._add("permute", {"dims": [p - 1 for p in perm[1:]]}, [x], self._out_shape(node))

    def _parameter(self, value, reader: _Live, output=None) -> _Live:
        """A `parameter` layer holding the constant `value` (batch excluded), its batch read from
        `reader`; its output is `output`'s value (or only returned)."""
        np = self.np
        shape = tuple(int(d) for d in value.shape) or (1,)
        layer = _Layer(self._unique(self._base_name("parameter") + "_const"), "parameter", {"shape": list(shape)},
                       [reader.entry], {"weight": np.ascontiguousarray(value.reshape(shape))}, self._where())
        self._push(layer)
        live = _Live(layer.name, (self.batch,) + shape)
        if output is not None:
            self.values[output] = live
        return live

    def _op_Slice(self, node):
        np = self.np
        x = self._live(node, 0)
        rank = len(x.shape)
        if self.opset < 10:
            starts, ends = self._attr(node, "starts"), self._attr(node, "ends")
            axes, steps = self._attr(node, "axes"), None
        else:
            starts, ends = self._const(node, 1, "starts"), self._const(node, 2, "ends")
            axes = self._in(node, 3)
            steps = self._in(node, 4)
            if isinstance(axes, _Live) or isinstance(steps, _Live):
                self._refuse("slices with computed axes or steps")
        starts = [int(v) for v in np.asarray(starts).reshape(-1)]
        ends = [int(v) for v in np.asarray(ends).reshape(-1)]
        axes = list(range(len(starts))) if axes is None else [int(v) for v in np.asarray(axes).reshape(-1)]
        steps = [1] * len(starts) if steps is None else [int(v) for v in np.asarray(steps).reshape(-1)]
        cuts = []
        for start, end, axis, step in zip(starts, ends, axes, steps):
            axis = axis + rank if axis < 0 else axis
            n = x.shape[axis]
            lo = min(max(start + n if start < 0 else start, 0), n)
            hi = min(max(end + n if end < 0 else end, 0), n)
            if (lo, hi) == (0, n) and step == 1:
                continue
            if step != 1:
                self._refuse(f"takes every {step}th position; archcalc takes contiguous pieces (split)")
            if axis == 0:
                self._refuse("slices the batch axis")
            if hi <= lo:
                self._refuse("takes an empty slice")
            cuts.append((axis, lo, hi, n))
        if not cuts:
            self._alias(node, x)
            return
        if len(cuts) > 1:
            self._refuse("slices several axes at once; archcalc's split takes a piece along one")
        axis, lo, hi, n = cuts[0]
        sizes = ([lo] if lo else []) + [hi - lo] + ([n - hi] if hi < n else [])
        self._add("split", {"sizes": sizes, "dim": axis - 1, "index": 1 if lo else 0}, [x], self._out_shape(node))

    def _op_Concat(self, node):
        ins = [self._in(node, k) for k in range(len(node.input))]
        live = next((v for v in ins if isinstance(v, _Live)), None)
        for k, v in enumerate(ins):  # a constant joined to every example (ViT's class token, batch 1 fixed)
            if not isinstance(v, _Live):
                if v.ndim != len(live.shape) or v.shape[0] != 1:
                    self._refuse(f"concatenates a constant of shape {list(v.shape)}; archcalc joins a constant "
                                 "of batch 1 to every example")
                ins[k] = self._parameter(v[0], live)
        rank = len(ins[0].shape)
        axis = int(self._attr(node, "axis"))
        axis = axis + rank if axis < 0 else axis
        if axis == 0:
            self._refuse("concatenates along the batch axis")
        if len(ins) == 1:
            self._alias(node, ins[0])
            return
        self._add("concat", {"dim": axis - 1}, ins, self._out_shape(node))

    def _op_Split(self, node):
        x = self._live(node, 0)
        rank = len(x.shape)
        axis = int(self._attr(node, "axis", 0))
        axis = axis + rank if axis < 0 else axis
        if axis == 0:
            self._refuse("splits along the batch axis")
        sizes = [self._out_shape(node, k)[axis] for k in range(len(node.output))]
        base = self._name("split")
        for k, out in enumerate(node.output):
            if not out:
                continue
            layer = _Layer(self._unique(f"{base}_{k}"), "split",
                           {"sizes": _one(sizes) if len(set(sizes[:-1])) <= 1 and sizes[-1] <= sizes[0] else sizes,
                            "dim": axis - 1, "index": k}, [x.entry], {}, self._where())
            self._push(layer)
            self.values[out] = _Live(layer.name, self._out_shape(node, k))

    def _op_Resize(self, node):
        """F.interpolate as torch.onnx.export writes it: nearest (asymmetric coordinates, floor),
        linear modes with half_pixel / pytorch_half_pixel (align_corners false) or align_corners,
        cubic (a = -0.75, half_pixel)."""
        np = self.np
        x = self._live(node, 0)
        rank = len(x.shape)
        def text(key, default):
            value = self._attr(node, key, default)
            return value.decode() if isinstance(value, bytes) else value

        mode, coords = text("mode", "nearest"), text("coordinate_transformation_mode", "half_pixel")
        if self.opset < 11:
            self._refuse(f"is opset {self.opset}'s Resize/Upsample; archcalc reads opset 11's and later")
        if self._attr(node, "antialias", 0) or self._attr(node, "axes") is not None or \
                text("keep_aspect_ratio_policy", "stretch") != "stretch":
            self._refuse("uses antialias, axes or keep_aspect_ratio_policy, which nn.Upsample has not")
        scales, sizes = self._in(node, 2), self._in(node, 3)
        if isinstance(scales, _Live) or isinstance(sizes, _Live):
            self._refuse("resizes to computed scales or sizes")
        args = {}
        if sizes is not None and np.asarray(sizes).size:
            sizes = [int(v) for v in np.asarray(sizes).reshape(-1)]
            if sizes[:2] != list(x.shape[:2]):
                self._refuse("resizes the batch or channel axis")
            args["size"] = _one(sizes[2:])
        elif scales is not None and np.asarray(scales).size:
            scales = [float(v) for v in np.asarray(scales).reshape(-1)]
            if scales[:2] != [1.0, 1.0]:
                self._refuse("resizes the batch or channel axis")
            values = [_f(v) for v in scales[2:]]
            args["scale"] = values[0] if len(set(values)) == 1 else values
        else:
            self._refuse("gives neither scales nor sizes")
        spatial = rank - 2
        if mode == "nearest":
            if coords != "asymmetric" or text("nearest_mode", "round_prefer_floor") != "floor":
                self._refuse(f"rounds nearest with coordinate_transformation_mode '{coords}' and nearest_mode "
                             f"'{text('nearest_mode', 'round_prefer_floor')}'; archcalc's nearest is PyTorch's "
                             "(asymmetric, floor)")
        elif mode in ("linear", "cubic"):
            if mode == "cubic" and (spatial != 2 or not _close(float(self._attr(node, "cubic_coeff_a", -0.75)), -0.75)):
                self._refuse("is a cubic resize other than PyTorch's bicubic (2-d, a = -0.75)")
            if mode == "linear":
                args["mode"] = {1: "linear", 2: "bilinear", 3: "trilinear"}.get(spatial)
                if args["mode"] is None:
                    self._refuse(f"interpolates {spatial} axes linearly; PyTorch has 1, 2 or 3")
            else:
                args["mode"] = "bicubic"
            if coords == "align_corners":
                args["align_corners"] = True
            elif coords not in ("half_pixel", "pytorch_half_pixel"):
                self._refuse(f"uses coordinate_transformation_mode '{coords}'; PyTorch's are half_pixel and "
                             "align_corners")
            elif coords == "half_pixel" and any(n == 1 for n in self._out_shape(node)[2:]):
                self._refuse("resizes an axis to one position with half_pixel coordinates (PyTorch's "
                             "pytorch_half_pixel differs there)")
        else:
            self._refuse(f"has mode '{mode}'")
        self._add("upsample", args, [x], self._out_shape(node))

    def _op_BatchNormalization(self, node):
        x = self._live(node, 0)
        if self._attr(node, "training_mode", 0) or len([o for o in node.output if o]) > 1:
            self._refuse("runs in training mode (it updates the statistics as outputs); archcalc imports the "
                         "inference graph")
        scale, bias = self._const(node, 1, "scale"), self._const(node, 2, "bias")
        mean, var = self._const(node, 3, "running mean"), self._const(node, 4, "running variance")
        args = {}
        eps = float(self._attr(node, "epsilon", 1e-5))
        if not _close(eps, 1e-5):
            args["eps"] = _f(eps)
        momentum = round(1 - float(self._attr(node, "momentum", 0.9)), 7)  # ONNX keeps the old share
        if momentum != 0.1:
            args["momentum"] = momentum
        np = self.np
        self._add("batchnorm", args, [x], self._out_shape(node),
                  {"weight": scale, "bias": bias, "running_mean": mean, "running_var": var,
                   "num_batches_tracked": np.array(0, dtype=np.int64)})

    def _op_LayerNormalization(self, node):
        x = self._live(node, 0)
        rank = len(x.shape)
        axis = int(self._attr(node, "axis", -1))
        axis = axis + rank if axis < 0 else axis
        if axis == 0:
            self._refuse("normalises over the batch axis")
        if len([o for o in node.output if o]) > 1 and any(self.uses.get(o) for o in node.output[1:] if o):
            self._refuse("gives its mean and variance as outputs; archcalc's layernorm gives the values only")
        scale, bias = self._const(node, 1, "scale"), self._in(node, 2)
        if isinstance(bias, _Live):
            self._refuse("has a computed bias")
        norm = tuple(x.shape[axis:])
        if scale.size != math.prod(norm):
            self._refuse(f"has a scale of shape {list(scale.shape)} for normalised axes {list(norm)}")
        args = {}
        if rank - axis != 1:
            args["dims"] = rank - axis
        eps = float(self._attr(node, "epsilon", 1e-5))
        if not _close(eps, 1e-5):
            args["eps"] = _f(eps)
        weights = {"weight": scale.reshape(norm)}
        if bias is None:
            args["bias"] = False
        else:
            weights["bias"] = bias.reshape(norm)
        self._add("layernorm", args, [x], self._out_shape(node), weights)

    def _op_InstanceNormalization(self, node):
        x = self._live(node, 0)
        scale, bias = self._const(node, 1, "scale"), self._const(node, 2, "bias")
        args = {"affine": True}
        eps = float(self._attr(node, "epsilon", 1e-5))
        if not _close(eps, 1e-5):
            args["eps"] = _f(eps)
        self._add("instancenorm", args, [x], self._out_shape(node), {"weight": scale, "bias": bias})

    def _op_Pad(self, node):
        x = self._live(node, 0)
        mode = self._attr(node, "mode", b"constant")
        mode = mode.decode() if isinstance(mode, bytes) else mode
        pads = self._attr(node, "pads") if self.opset < 11 else self._const(node, 1, "pads")
        pads = [int(p) for p in self.np.asarray(pads).reshape(-1)]
        value = self._attr(node, "value", 0.0) if self.opset < 11 else self._in(node, 2)
        if isinstance(value, _Live):
            self._refuse("pads with a computed value")
        value = 0.0 if value is None else float(self.np.asarray(value).reshape(-1)[0] if self.np.asarray(value).size
                                                else 0.0)
        if self.opset >= 18 and len(node.input) > 3 and node.input[3]:
            self._refuse("pads chosen axes (the axes input); archcalc's zeropad pads every spatial axis")
        rank = len(x.shape)
        begin, end = pads[:rank], pads[rank:]
        if mode != "constant" or value != 0.0:
            self._refuse(f"pads with mode '{mode}' and value {value}; archcalc's zeropad pads with zeros")
        if any(begin[:2]) or any(end[:2]) or min(pads) < 0:
            self._refuse("pads the batch or channel axis (or crops); archcalc's zeropad pads spatial axes")
        pad = []
        for lo, hi in reversed(list(zip(begin[2:], end[2:]))):
            pad += [lo, hi]
        self._add("zeropad", {"padding": _one(pad)}, [x], self._out_shape(node))

    def _op_Gather(self, node):
        np = self.np
        data, idx = self._in(node, 0), self._in(node, 1)
        axis = int(self._attr(node, "axis", 0))
        if not isinstance(data, _Live) and isinstance(idx, _Live):
            if data.ndim != 2 or axis != 0:
                self._refuse("looks up rows of a constant that is not a [num, dim] table")
            self._add("embedding", {"num": int(data.shape[0]), "dim": int(data.shape[1])}, [idx],
                      self._out_shape(node), {"weight": data})
            return
        if isinstance(data, _Live) and not isinstance(idx, _Live) and np.asarray(idx).ndim == 0:
            rank = len(data.shape)
            axis = axis + rank if axis < 0 else axis
            if axis == 0:
                self._refuse("picks along the batch axis")
            self._add("select", {"index": int(idx), "dim": axis - 1}, [data], self._out_shape(node))
            return
        self._refuse("gathers with computed or several indices; archcalc has embedding (a table's rows) and "
                     "select (one position)")


# --- module-level helpers ---------------------------------------------------------------------------
def _read(path: str):
    import onnx

    p = Path(path)
    try:
        if not p.is_file():
            raise SpecError(f"{path}: no such ONNX file" if not p.exists() else f"{path}: not a regular file")
        if p.stat().st_size > MAX_FILE:
            raise SpecError(f"{path}: the file is larger than 2 GiB, protobuf's limit for one ONNX file")
        model = onnx.load(str(p), load_external_data=True)
    except SpecError:
        raise
    except OSError as exc:
        raise SpecError(f"{path}: cannot read it: {exc.strerror or exc}") from None
    except Exception as exc:  # protobuf's DecodeError and onnx's own errors
        raise SpecError(f"{path}: not an ONNX file ({_first_line(exc) or type(exc).__name__})") from None
    if not model.HasField("graph") or not model.graph.node:
        raise SpecError(f"{path}: not an ONNX model (no graph, or a graph without operators)")
    return model


def _parse_input(text, names):
    """`--input` for an ONNX file: None, one shape (the first input's), or {name: shape}."""
    if text is None:
        return None
    if isinstance(text, (tuple, list)):
        return tuple(int(v) for v in text)
    if isinstance(text, dict):
        return {k: tuple(int(x) for x in v) for k, v in text.items()}
    out = parse_input(str(text), digits=18)
    if isinstance(out, tuple):
        return out
    if "input" in out and "input" not in names and names:
        out[names[0]] = out.pop("input")
    unknown = [n for n in out if names and n not in names]
    if unknown:
        raise SpecError(f"--input {text!r}: the file has no input named '{unknown[0]}' (its inputs: "
                        f"{', '.join(names)})")
    return out


def _node_path(node):
    """(module path, operation) of a node: from the torch exporter's `namespace` metadata
    (`: Sequential/1: Sequential/1.0: B/1.0.conv1: Conv2d/conv2d_1: aten.conv2d.default`), from a
    scoped name (`/layer1/layer1.0/conv1/Conv`), or ('', the node's name)."""
    for prop in node.metadata_props:
        if prop.key == "namespace" and prop.value:
            parts = [p.split(":")[0].strip() for p in prop.value.split("/")]
            modules = [p for p in parts[:-1] if p]
            return (modules[-1] if modules else ""), parts[-1]
    name = node.name or ""
    if name.startswith("/"):
        segs = [s for s in name.strip("/").split("/") if s]
        parts: list = []  # a Sequential's child is scoped `layer1.0` under `layer1`: one part, not two
        for seg in segs[:-1]:
            if parts and seg.startswith(parts[-1] + "."):
                parts[-1] = seg
            else:
                parts.append(seg)
        return ".".join(parts), (segs[-1] if segs else node.op_type)
    name = re.sub(r"^node_", "", name)
    return "", name or node.op_type


def _node_classes(node) -> dict:
    """module path -> class name, from the torch exporter's `namespace` metadata."""
    for prop in node.metadata_props:
        if prop.key == "namespace" and prop.value:
            out = {}
            for part in prop.value.split("/")[:-1]:
                path, _, cls = part.partition(":")
                if path.strip():
                    out[path.strip()] = cls.strip().rsplit(".", 1)[-1]
            return out
    return {}


def _word(text: str) -> str:
    text = re.sub(r"[^A-Za-z0-9_]+", "_", str(text)).strip("_")
    return re.sub(r"_+", "_", text).lower() if text and not text.islower() else re.sub(r"_+", "_", text)


def _one(values):
    values = [int(v) for v in values]
    return values[0] if len(set(values)) == 1 else values


def _put(args, key, values, default):
    values = [int(v) for v in values]
    if any(v != default for v in values):
        args[key] = _one(values)


def _close(a, b, rel=1e-6):
    return abs(a - b) <= rel * max(abs(a), abs(b), 1e-30)


def _f(value: float):
    """A float as short as it reads back exactly in float32 (0.2 rather than 0.20000000298)."""
    for digits in range(1, 18):
        short = float(f"{value:.{digits}g}")
        if abs(short - value) <= 1e-7 * max(abs(value), 1e-30) or short == value:
            return short
    return value


# --- the spec's text --------------------------------------------------------------------------------
def _yaml(value) -> str:
    import yaml

    return yaml.safe_dump(value, default_flow_style=True, width=10**9, sort_keys=False).strip().removesuffix("...").strip()


def _spec_name(imp: _Importer) -> str:
    """The spec's name: the file's stem, printable and at most 200 characters (the spec's limit)."""
    name = "".join(c for c in Path(imp.path).stem if c.isprintable())[:200].strip()
    return name or "model"


def _spec_text(imp: _Importer, header: list) -> str:
    lines = [f"# {h}" for h in header]
    name = _spec_name(imp)
    lines.append(f"name: {_yaml(name)}")
    if len(imp.net_inputs) == 1 and imp.net_inputs[0][0] == "input":
        _, shape, tokens = imp.net_inputs[0]
        lines.append(f"input: {_yaml({'tokens': list(shape)} if tokens else list(shape))}")
    else:
        lines.append("inputs:")
        for n, shape, tokens in imp.net_inputs:
            lines.append(f"  {n}: {_yaml({'tokens': list(shape)} if tokens else list(shape))}")
    lines.append("layers:")
    previous = imp.net_inputs[0][0]
    for layer in imp.layers:
        entry = {"name": layer.name, layer.kind: layer.args or {}}
        if layer.inputs != [previous]:
            entry["from"] = layer.inputs[0] if len(layer.inputs) == 1 else list(layer.inputs)
        lines.append(f"  - {_yaml(entry)}")
        previous = layer.name
    return "\n".join(lines) + "\n"


def _import(path, input_spec):
    imp = _Importer(path, input_spec).run()
    producer = " ".join(x for x in (imp.model.producer_name, imp.model.producer_version) if x)
    ins = ", ".join(f"{n} {list(s)}" + (" (token ids)" if t else "") for n, s, t in imp.net_inputs)
    batch = "a dynamic batch" if imp.batch == BATCH_PROBE else f"batch {imp.batch} in the file"
    header = [f"Imported by `archcalc import` from {Path(imp.path).name} (ONNX, opset {imp.opset}"
              + (f", made by {producer}" if producer else "") + ")",
              f"input: {ins}, batch excluded ({batch})"
              + (f"; --input {imp.input_spec}" if imp.input_spec is not None else ""),
              f"{len(imp.layers)} layers from {len(imp.graph.node)} operators"]
    header = [one_line(h) for h in header]  # a file name with a newline must not end the comment
    imp.keys = None
    if len(imp.net_inputs) == 1 and not imp.net_inputs[0][2] and any(layer.path for layer in imp.layers):
        try:  # the module paths as blocks and repeats (the spec's names are then the module's own)
            text = _blocks_text(imp, header)
            imp.keys = _check(imp, text)
        except Exception:  # noqa: BLE001 - paths that make no blocks: the flat spec below, always valid
            imp.keys = None
    if imp.keys is None:
        text = _spec_text(imp, header)
        imp.keys = _check(imp, text)
    return imp, text


# a spec layer name (reader/parse.py): a word, words joined by '-' (RegNet's block1-0), or an index
_PART = re.compile(r"(?=.{1,100}\Z)[A-Za-z_][A-Za-z0-9_]*(-[A-Za-z0-9_]+)*|0|[1-9][0-9]{0,8}")


def _blocks_text(imp: _Importer, header: list) -> str:
    """The spec with the module paths the exporter recorded as blocks (`layer1.0.conv1`: the
    block instance `layer1`, its copy `0`, the layer `conv1`), repeated instances as `repeat`,
    through archcalc.importers._writer. A path used by one layer alone is that layer's name; a
    path of several layers (a block's residual add, a module called twice) is a scope of them."""
    from collections import Counter

    from archcalc.importers._writer import INPUT, Entry, Scope, write_spec
    from archcalc.layers import KINDS

    paths = [layer.path for layer in imp.layers]
    count = Counter(paths)
    prefixes = {".".join(p.split(".")[:k]) for p in paths if p for k in range(1, p.count(".") + 1)}
    first = imp.net_inputs[0][0]
    entries = []
    for layer in imp.layers:
        parts = layer.path.split(".") if layer.path else []
        if not all(_PART.fullmatch(p) and p not in _TORCH_ATTRS for p in parts):
            raise SpecError("a module path that is no spec name")
        leaf = bool(parts) and count[layer.path] == 1 and layer.path not in prefixes
        inner = parts[:-1] if leaf else parts
        scopes = []
        for k, part in enumerate(inner):
            key = ".".join(inner[:k + 1])
            cls = layer.classes.get(key) or (re.sub(r"[0-9_]+$", "", part).capitalize() or "Block")
            scopes.append(Scope(key, part, cls))
        entries.append(Entry(kind=layer.kind, args=dict(layer.args), output=layer.name,
                             inputs=[INPUT if i == first else i for i in layer.inputs],
                             name=parts[-1] if leaf else None, scope=tuple(scopes), where=layer.where))
    return write_spec(entries, list(imp.net_inputs[0][1]), name=_spec_name(imp), header=header,
                      kinds=tuple(KINDS))


def _check(imp: _Importer, text: str) -> list:
    """Parse and analyse the spec written, and compare its output shape with the file's: a
    mismatch is a bug of this importer, said plainly rather than returned. Returns the spec's
    name of each imported layer, in order (the built module's keys)."""
    from archcalc.analysis.walk import analyze_graph
    from archcalc.reader.parse import parse_spec

    where = f"<import of {Path(imp.path).name}>"
    try:
        graph = parse_spec(text, where)
        report = analyze_graph(graph)
    except SpecError as exc:
        raise SpecError(f"{imp.path}: the imported spec does not analyse (the file is inconsistent, or archcalc's import is wrong): {exc}") from None
    out = imp.values[imp.graph.output[0].name]
    if tuple(report.output_shape) != tuple(out.shape[1:]):
        raise SpecError(f"{imp.path}: the imported spec gives the output {list(report.output_shape)}, the file "
                        f"{list(out.shape[1:])} (the file is inconsistent, or archcalc's import is wrong)")
    kinds = [node.kind for node in graph.nodes]
    if kinds != [layer.kind for layer in imp.layers]:
        raise SpecError(f"{imp.path}: the imported spec's layers are not the file's, in order (the file is inconsistent, or archcalc's import is wrong)")
    return [node.name for node in graph.nodes]


def import_onnx(path, input_spec=None) -> str:
    """The spec (YAML text) of the ONNX file at `path`. `input_spec` is `--input`: the sizes of
    the first input without the batch (`3,224,224`), or `name=sizes;...` by input name; needed
    only where the file leaves sizes other than the batch dynamic."""
    return _import(path, input_spec)[1]


def state_dict(path, input_spec=None) -> dict:
    """The file's weights under the state_dict keys of `archcalc.torch.build` of the imported
    spec (`conv1.weight`, `bn1.running_var`), as numpy arrays:

        model = archcalc.torch.build(archcalc.parse_spec(import_onnx(path)))
        model.load_state_dict({k: torch.from_numpy(v) for k, v in state_dict(path).items()})
    """
    imp, _ = _import(path, input_spec)
    out = {}
    for layer, name in zip(imp.layers, imp.keys):
        for key, value in layer.weights.items():
            out[f"{name}.{key}"] = imp.np.array(value)
    return out


__all__ = ["import_onnx", "state_dict"]
