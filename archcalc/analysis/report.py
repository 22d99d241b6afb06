"""Analysis results: one row per leaf layer, totals, and the stable JSON form."""
from __future__ import annotations

from dataclasses import dataclass, field

from archcalc.analysis.rf import GLOBAL, RF

#: Bytes per element of the dtypes memory figures can be given for.
DTYPE_BYTES = {"float64": 8, "float32": 4, "float16": 2, "bfloat16": 2, "float8": 1, "int8": 1}
JSON_VERSION = 1


def _prod(shape):
    out = 1
    for n in shape:
        out *= n
    return out


@dataclass(slots=True)
class LayerResult:
    name: str
    kind: str
    inputs: tuple
    output_shape: tuple
    trainable_params: int
    non_trainable_params: int
    macs: int  # for the whole batch
    rf: object  # RF, GLOBAL or None
    activation_bytes: int  # output of this layer, whole batch
    blocks: tuple = ()  # enclosing block instances as (instance name, block kind)
    # Parameters of this layer that are another's (a linear tied to an embedding): PyTorch counts
    # them in both modules, and once in the model's total.
    shared_params: int = 0
    shared_with: str | None = None
    frozen: bool = False  # `trainable: false`: all its parameters are non-trainable
    # Routed experts (moe): the parameters one token uses, params minus the experts it is not sent
    # to; None for layers that route nothing (all of their parameters are active).
    active_params: int | None = None

    @property
    def params(self):
        return self.trainable_params + self.non_trainable_params

    @property
    def flops(self):
        return 2 * self.macs

    def to_json(self) -> dict:
        return {
            "name": self.name, "kind": self.kind, "from": list(self.inputs),
            "output_shape": _j(self.output_shape),
            "params": _j(self.params), "trainable_params": _j(self.trainable_params),
            "non_trainable_params": _j(self.non_trainable_params),
            **({"active_params": _j(self.active_params)} if self.active_params is not None else {}),
            "macs": _j(self.macs), "flops": _j(self.flops),
            "rf": rf_json(self.rf), "activation_bytes": _j(self.activation_bytes),
            **({"shared_params": _j(self.shared_params), "shared_with": self.shared_with}
               if self.shared_params else {}),
            **({"trainable": False} if self.frozen else {}),
        }


def _j(value):
    """JSON value of a figure: numbers as numbers, formulas (sympy) as their text."""
    if isinstance(value, (int, float)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_j(v) for v in value]
    return str(value)


def rf_json(rf):
    if rf is None or rf == GLOBAL:
        return rf
    return rf.to_json()


@dataclass
class Totals:
    params: int = 0
    trainable_params: int = 0
    non_trainable_params: int = 0
    macs: int = 0
    param_bytes: int = 0
    activation_bytes: int = 0
    input_bytes: int = 0
    # Active parameters per token: params minus the routed experts a token is not sent to; None
    # for a network without routed experts (then every parameter is active).
    active_params: int | None = None

    @property
    def flops(self):
        return 2 * self.macs


@dataclass
class Report:
    name: str
    input_shape: tuple
    batch: int
    dtype: str
    layers: list[LayerResult]
    output_shape: tuple
    totals: Totals = field(default_factory=Totals)
    symbols: tuple = ()  # free size symbols: figures are then formulas (sympy)
    constraints: dict = field(default_factory=dict)
    # A spec written with `inputs:`: every input as (name, shape, token ids?), in order; the first
    # is input_shape. Empty for a spec with one `input:`.
    inputs: tuple = ()

    def layer(self, name: str) -> LayerResult:
        for row in self.layers:
            if row.name == name:
                return row
        raise KeyError(name)

    def folded(self, depth: int) -> list[LayerResult]:
        """Rows with names cut to `depth` dotted parts; parts of one group are summed and the
        group shows the shape and receptive field of its last layer."""
        rows: list[LayerResult] = []
        index: dict[str, LayerResult] = {}
        for row in self.layers:
            parts = row.name.split(".")
            if len(parts) <= depth:
                rows.append(row)
                continue
            key = ".".join(parts[:depth])
            group = index.get(key)
            if group is None or rows[-1] is not group:
                # A block instance shows its block's kind; a repeat shows what it repeats.
                kinds = dict(row.blocks)
                # (its copies may be numbered from 0 or any `start:`: the copy this row is in)
                kind = kinds.get(key) or kinds.get(".".join(parts[:depth + 1])) or row.kind
                group = LayerResult(key, kind, row.inputs, row.output_shape, 0, 0, 0, None, 0, frozen=row.frozen)
                index[key] = group
                rows.append(group)
            group.output_shape, group.rf = row.output_shape, row.rf
            group.frozen = group.frozen and row.frozen  # frozen when every part is
            group.trainable_params += row.trainable_params
            group.non_trainable_params += row.non_trainable_params
            if row.active_params is not None or group.active_params is not None:  # a group holding experts
                before = group.params - row.params  # the group's earlier parts, all active unless routed
                group.active_params = (before if group.active_params is None else group.active_params) + (
                    row.params if row.active_params is None else row.active_params)
            group.macs += row.macs
            group.activation_bytes += row.activation_bytes
        return rows

    def to_json(self, depth: int | None = None) -> dict:
        t = self.totals
        out = {
            "version": JSON_VERSION,
            "name": self.name,
            "input": _j(self.input_shape),
            "batch": self.batch,
            "dtype": self.dtype,
            "layers": [row.to_json() for row in self.layers],
            "totals": {
                "params": _j(t.params), "trainable_params": _j(t.trainable_params),
                "non_trainable_params": _j(t.non_trainable_params),
                **({"active_params": _j(t.active_params)} if t.active_params is not None else {}),
                "macs": _j(t.macs), "flops": _j(t.flops),
                "output_shape": _j(self.output_shape), "param_bytes": _j(t.param_bytes),
                "activation_bytes": _j(t.activation_bytes), "input_bytes": _j(t.input_bytes),
            },
        }
        if self.inputs:  # after "input" (the first one's shape): every input by name
            listed = {name: ({"tokens": _j(shape)} if tokens else _j(shape)) for name, shape, tokens in self.inputs}
            keys = list(out)
            keys.insert(keys.index("input") + 1, "inputs")
            out = {k: listed if k == "inputs" else out[k] for k in keys}
        if self.symbols:
            out["symbols"] = {name: self.constraints.get(name, {}) for name in self.symbols}
        if depth is not None:
            out["folded"] = [row.to_json() for row in self.folded(depth)]
        return out


def make_totals(layers, input_shapes, batch, dtype) -> Totals:
    """The network's totals from its layer rows; `input_shapes` lists every network input's
    shape (one example), whose batch together is the input's memory."""
    size = DTYPE_BYTES[dtype]
    t = Totals()
    for row in layers:
        # Shared weights count once, on the side they are on (a tie joins two frozen layers or none).
        t.trainable_params += row.trainable_params - (0 if row.frozen else row.shared_params)
        t.non_trainable_params += row.non_trainable_params - (row.shared_params if row.frozen else 0)
        t.macs += row.macs
        t.activation_bytes += row.activation_bytes
    t.params = t.trainable_params + t.non_trainable_params
    routed = [row for row in layers if row.active_params is not None]
    if routed:  # the experts a token is not sent to are all that is inactive (never tied)
        t.active_params = t.params - sum(row.params - row.active_params for row in routed)
    t.param_bytes = t.params * size
    t.input_bytes = sum(_prod(shape) for shape in input_shapes) * batch * size
    return t


__all__ = ["DTYPE_BYTES", "LayerResult", "Report", "RF", "Totals", "make_totals", "rf_json"]
