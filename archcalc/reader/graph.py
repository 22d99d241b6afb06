"""The validated layer graph a spec turns into."""
from __future__ import annotations

from dataclasses import dataclass, field

from archcalc.errors import Loc

INPUT = "input"  # the name that refers to the network's (or a block's) input


@dataclass(slots=True)
class Node:
    name: str  # unique dotted name, e.g. "conv1", "basic1.main", "stage.2.conv1"
    kind: str  # a layer kind from archcalc.layers.KINDS
    args: dict  # validated arguments, defaults filled in
    inputs: tuple  # names of the nodes it reads ("input" for the network input)
    loc: Loc  # where the entry was written
    arg_locs: dict = field(default_factory=dict)  # argument -> where its value was written
    blocks: tuple = ()  # enclosing block instances as (instance name, block kind), outermost first
    # False: `trainable: false` on the entry or an enclosing block instance; its parameters are
    # counted non-trainable and built with requires_grad=False.
    trainable: bool = True
    # True: `bare: true` on the entry; the built module holds the layer's one learned tensor in the
    # enclosing block's module, under the layer's own name (archcalc.torch.build). Figures unchanged.
    bare: bool = False

    @property
    def block(self) -> str | None:
        """The kind of the innermost block this node was expanded from."""
        return self.blocks[-1][1] if self.blocks else None


@dataclass(frozen=True, slots=True)
class NetInput:
    """One input of the network: `input: SHAPE` is the single input named `input`; `inputs:` maps
    several names to shapes (`{tokens: [T]}` for integer token ids). Layers read it by its name."""

    name: str
    shape: tuple
    tokens: bool = False
    loc: Loc | None = None


@dataclass
class Graph:
    name: str
    nodes: list[Node]
    # Every network input (NetInput) in order: one named `input` for `input:`, or those of
    # `inputs:`. The first is the one `input_shape`, `tokens` and `input_loc` describe.
    inputs: tuple
    file: str = "<spec>"
    symbols: tuple = ()  # names of the size symbols left free (not bound by --set)
    back: dict = field(default_factory=dict)  # internal symbol -> its form in the user's symbols
    constraints: dict = field(default_factory=dict)  # symbol -> {multiple_of, min, max}
    # The spec's `vars` that are numbers (after --set): name -> value. An answer may name them
    # (`(d + 1)*N_H` for the lecture's MLP) and is read with these values.
    vars: dict = field(default_factory=dict)

    @property
    def input_shape(self) -> tuple:
        """The first input's shape, batch excluded."""
        return tuple(self.inputs[0].shape)

    @property
    def tokens(self) -> bool:
        """The first input holds integer token ids (`input: {tokens: [T]}`), not real values."""
        return self.inputs[0].tokens

    @property
    def input_loc(self) -> Loc | None:
        """Where the first input was written."""
        return self.inputs[0].loc

    @property
    def input_names(self) -> tuple:
        """The names layers read the inputs by, in order (`input` for a spec with one `input:`)."""
        return tuple(i.name for i in self.inputs)

    @property
    def input_shapes(self) -> dict:
        """Input name -> its shape (batch excluded), in order."""
        return {i.name: tuple(i.shape) for i in self.inputs}

    @property
    def token_inputs(self) -> set:
        """Names of the inputs that hold integer token ids."""
        return {i.name for i in self.inputs if i.tokens}

    @property
    def named_inputs(self) -> bool:
        """Written with `inputs:` (names of the user's own), not one `input:`."""
        return len(self.inputs) > 1 or self.inputs[0].name != INPUT

    @property
    def output(self) -> str:
        return self.nodes[-1].name if self.nodes else INPUT
