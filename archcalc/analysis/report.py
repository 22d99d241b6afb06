"""Analysis results: one row per leaf layer, totals, and the stable JSON form."""
from __future__ import annotations

from dataclasses import dataclass, field

from archcalc.geometry.receptive_field import GLOBAL, RF

#: Bytes per element of the dtypes memory figures can be given for.
DTYPE_BYTES = {"float64": 8, "float32": 4, "float16": 2, "bfloat16": 2, "float8": 1, "int8": 1}
JSON_VERSION = 1  # the layout's first version; every JSON document now carries archcalc's own version


def _package_version() -> str:
    """archcalc.__version__: every JSON document archcalc writes says which archcalc wrote it
    (read when a report is written out: the package is initialised by then)."""
    from archcalc import __version__

    return __version__


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


def _n(value) -> str:
    """A figure for a repr: an integer with thousands separators, a formula as its text."""
    return f"{value:,}" if isinstance(value, int) else str(value)


def _shape(shape) -> str:
    return "[" + ", ".join(str(n) for n in shape) + "]"


def _md(text) -> str:
    """`text` safe in a Markdown table cell: the marks of emphasis, code, links and cells
    (backslash, backtick, * _ [ ] | ~) backslash-escaped, < and & as HTML entities, line breaks
    as spaces."""
    from html import escape

    text = escape(" ".join(str(text).splitlines()), quote=False)
    return "".join("\\" + c if c in "\\`*_[]|~" else c for c in text)


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
        """The row of the layer named `name` (its full dotted name, `layer1.0.conv1`); a name that
        is not there raises KeyError with the closest names (did you mean)."""
        for row in self.layers:
            if row.name == name:
                return row
        from archcalc.errors import did_you_mean

        names = [row.name for row in self.layers]
        # a block's name (`layer1`: its layers), or a leaf's last part (`conv1`: each one so named)
        close = [n for n in names if n.startswith(f"{name}.") or n.rsplit(".", 1)[-1] == str(name)]
        if close:
            shown = ", ".join(f"'{n}'" for n in close[:3]) + (", ..." if len(close) > 3 else "")
            hint = f" (did you mean {shown}?)"
        else:
            hint = did_you_mean(name, names)
        raise KeyError(f"no layer named {str(name)!r} in {self.name!r}{hint}")

    # --- notebooks: a short repr, a table, plain records ------------------------------------

    def __repr__(self) -> str:
        """A few lines (the whole report would be tens of kilobytes): name, input, totals."""
        t = self.totals
        active = f", active {_n(t.active_params)}" if t.active_params is not None else ""
        return (f"<archcalc Report {self.name!r}: input {_shape(self.input_shape)} -> "
                f"{_shape(self.output_shape)}, batch {self.batch}, {self.dtype}, {len(self.layers)} layers, "
                f"{_n(t.params)} params ({_n(t.trainable_params)} trainable{active}), {_n(t.macs)} MACs>")

    def to_records(self) -> list[dict]:
        """One dict per layer (plain values: str, int, list; formulas of a symbolic spec as their
        text), in the order of the rows: name, kind, from, output_shape, params, trainable_params,
        non_trainable_params, macs, flops, rf_size, rf_stride, activation_bytes."""
        out = []
        for row in self.layers:
            rf = row.rf
            size = stride = None
            if rf == GLOBAL:
                size = stride = "global"
            elif isinstance(rf, RF):
                size, stride = _j(list(rf.size)), _j(list(rf.stride))
            out.append({
                "name": row.name, "kind": row.kind, "from": list(row.inputs),
                "output_shape": _j(list(row.output_shape)), "params": _j(row.params),
                "trainable_params": _j(row.trainable_params), "non_trainable_params": _j(row.non_trainable_params),
                "macs": _j(row.macs), "flops": _j(row.flops), "rf_size": size, "rf_stride": stride,
                "activation_bytes": _j(row.activation_bytes),
            })
        return out

    def to_pandas(self):
        """`to_records()` as a pandas DataFrame indexed by layer name (pandas is imported only
        here; without it, an ImportError saying what to install)."""
        try:
            import pandas
        except ImportError:
            raise ImportError("Report.to_pandas() needs pandas, which is not installed: "
                              "pip install pandas (or use report.to_records(), a list of dicts)") from None
        return pandas.DataFrame.from_records(self.to_records(), index="name")

    _TABLE = ("name", "kind", "output_shape", "params", "macs")

    def _table_rows(self):
        for row in self.layers:
            yield [row.name, row.kind, _shape(row.output_shape), _n(row.params), _n(row.macs)]

    def _repr_markdown_(self) -> str:
        """A Markdown table for Jupyter: one row per layer, then the totals (user text escaped)."""
        t = self.totals
        lines = [f"**{_md(self.name)}**: input {_md(_shape(self.input_shape))}, batch {self.batch}, "
                 f"{_md(self.dtype)}", "",
                 "| " + " | ".join(self._TABLE) + " |", "|" + "---|" * 2 + "---:|" * 3]
        lines += ["| " + " | ".join(_md(c) for c in cells) + " |" for cells in self._table_rows()]
        lines.append(f"| **total** | | {_md(_shape(self.output_shape))} | {_md(_n(t.params))} | "
                     f"{_md(_n(t.macs))} |")
        return "\n".join(lines) + "\n"

    def _repr_html_(self) -> str:
        """An HTML table for Jupyter (every piece of user text escaped)."""
        from html import escape

        t = self.totals
        head = "".join(f"<th>{h}</th>" for h in self._TABLE)
        body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in cells) + "</tr>"
                       for cells in self._table_rows())
        foot = (f"<tr><th>total</th><td></td><td>{escape(_shape(self.output_shape))}</td>"
                f"<td>{escape(_n(t.params))}</td><td>{escape(_n(t.macs))}</td></tr>")
        return (f"<p><b>{escape(self.name)}</b>: input {escape(_shape(self.input_shape))}, batch {self.batch}, "
                f"{escape(self.dtype)}</p><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody>"
                f"<tfoot>{foot}</tfoot></table>")

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
            "version": _package_version(),
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
