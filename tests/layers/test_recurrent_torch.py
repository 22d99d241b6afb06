"""rnn, lstm and gru against real PyTorch: shapes and parameters of nn.RNN/LSTM/GRU, and MACs both
as FlopCounterMode counts the modules and as it counts an unrolled F.linear reference."""
import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from layer_helpers import assert_accepts_what_torch_accepts, flow_mapping, last, torch_check  # noqa: E402

# (T, F, hidden, other arguments) for every kind, then each kind's own arguments.
COMMON = [
    (5, 10, 20, {}),
    (1, 3, 4, {"layers": 2}),
    (7, 6, 5, {"bidirectional": True}),
    (3, 1, 1, {"bias": False}),
    (4, 8, 3, {"layers": 3, "bidirectional": True, "dropout": 0.3}),
    (9, 2, 7, {"layers": 2, "bidirectional": True, "bias": False}),
    (2, 16, 2, {"layers": 2, "dropout": 1.0}),
]
OWN = {
    "rnn": [(6, 4, 5, {"nonlinearity": "relu"}),
            (3, 5, 4, {"nonlinearity": "relu", "layers": 2, "bidirectional": True, "bias": False})],
    "lstm": [(5, 7, 6, {"proj_size": 3}),
             (4, 3, 5, {"proj_size": 1, "layers": 3, "bidirectional": True}),
             (6, 2, 8, {"proj_size": 5, "bias": False, "layers": 2}),
             (1, 9, 2, {"proj_size": 1, "bidirectional": True, "bias": False})],
    "gru": [(11, 3, 6, {"layers": 4})],
}
CASES = [(kind, t, f, {"hidden": h, **args}) for kind in ("rnn", "lstm", "gru")
         for t, f, h, args in COMMON + OWN[kind]]


def _id(case):
    kind, t, f, args = case
    return f"{kind}-[{t},{f}]-" + "-".join(f"{k}={v}" for k, v in args.items())


@pytest.fixture
def no_onednn(monkeypatch):
    # On the CPU a float32 nn.LSTM without projection runs as aten.mkldnn_rnn_layer (oneDNN),
    # which FlopCounterMode does not count: 0 FLOPs. PyTorch's own implementation, used without
    # oneDNN, runs the gates as mm/addmm, which it counts. nn.RNN and nn.GRU always take that path.
    monkeypatch.setattr(torch.backends.mkldnn, "enabled", False)


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_matches_pytorch(no_onednn, case):
    kind, t, f, args = case
    torch_check([t, f], f"{kind}: {flow_mapping(args)}")


def test_stacked_kinds_match_pytorch(no_onednn):
    torch_check([8, 12], "lstm: {hidden: 10, bidirectional: true}", "gru: 6",
                "rnn: {hidden: 4, layers: 2, nonlinearity: relu}", "linear: 3")


@pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")
@pytest.mark.parametrize("case", CASES, ids=_id)
def test_matches_pytorch_on_the_default_cpu_path(case):
    # nn.RNN, nn.GRU and nn.LSTM with a projection (which oneDNN does not support) run as
    # mm/addmm, which FlopCounterMode counts as they are; a plain float32 nn.LSTM runs oneDNN's
    # mkldnn_rnn_layer, counted by the formula archcalc.torch.verify registers for it.
    kind, t, f, args = case
    torch_check([t, f], f"{kind}: {flow_mapping(args)}")


# --- an independent measurement: the recurrences unrolled with F.linear ----------------------------

def unrolled(rnn, x):
    """The output sequence of `rnn` (batch_first, eval mode) computed step by step with F.linear on
    its own weights, following the equations in PyTorch's documentation."""
    kind = type(rnn).__name__
    batch, steps, _ = x.shape
    proj = getattr(rnn, "proj_size", 0)
    seq = x
    for layer in range(rnn.num_layers):
        outs = []
        for direction in range(2 if rnn.bidirectional else 1):
            suffix = f"_l{layer}" + ("_reverse" if direction else "")

            def w(name, suffix=suffix):
                return getattr(rnn, name + suffix, None)  # biases are absent without bias

            h = x.new_zeros(batch, proj or rnn.hidden_size)
            c = x.new_zeros(batch, rnn.hidden_size)
            ys = [None] * steps
            for t in reversed(range(steps)) if direction else range(steps):
                gi = F.linear(seq[:, t], w("weight_ih"), w("bias_ih"))
                gh = F.linear(h, w("weight_hh"), w("bias_hh"))
                if kind == "RNN":
                    h = torch.tanh(gi + gh) if rnn.nonlinearity == "tanh" else torch.relu(gi + gh)
                elif kind == "GRU":
                    (ir, iz, i_n), (hr, hz, h_n) = gi.chunk(3, 1), gh.chunk(3, 1)
                    r, z = torch.sigmoid(ir + hr), torch.sigmoid(iz + hz)
                    h = (1 - z) * torch.tanh(i_n + r * h_n) + z * h
                else:
                    i, f, g, o = (gi + gh).chunk(4, 1)
                    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                    h = torch.sigmoid(o) * torch.tanh(c)
                    if proj:
                        h = F.linear(h, w("weight_hr"))
                ys[t] = h
            outs.append(torch.stack(ys, 1))
        seq = torch.cat(outs, -1)
    return seq


def plain_module(kind, f, args):
    """The torch.nn module itself, built here from the arguments (not by archcalc)."""
    extra = {k: args[k] for k in ("nonlinearity", "proj_size") if k in args}
    cls = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[kind]
    return cls(f, args["hidden"], args.get("layers", 1), bias=args.get("bias", True), batch_first=True,
               bidirectional=args.get("bidirectional", False), **extra).eval()


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_plain_module_and_unrolled_reference(case):
    kind, t, f, args = case
    row = last([t, f], f"{kind}: {flow_mapping(args)}")
    torch.manual_seed(0)
    rnn = plain_module(kind, f, args)
    assert sum(p.numel() for p in rnn.parameters()) == row.trainable_params
    batch = 3
    x = torch.randn(batch, t, f)
    with torch.no_grad():
        y = rnn(x)[0]
        with FlopCounterMode(display=False) as counter:
            ref = unrolled(rnn, x)
    assert tuple(y.shape) == (batch,) + row.output_shape
    torch.testing.assert_close(ref, y, atol=1e-5, rtol=1e-5)
    flops = counter.get_total_flops()
    assert flops % (2 * batch) == 0
    assert flops // 2 // batch == row.macs


# --- what archcalc accepts -------------------------------------------------------------------------

class _Output(nn.Module):
    def __init__(self, rnn):
        super().__init__()
        self.rnn = rnn

    def forward(self, x):
        return self.rnn(x)[0]


@pytest.mark.parametrize("proj_size", [0, 1, 5, 6, 7])
def test_projection_accepted_as_pytorch_accepts(no_onednn, proj_size):
    values = {"hidden": 6, "proj_size": proj_size}
    assert_accepts_what_torch_accepts([4, 3], "lstm", values,
                                      lambda: _Output(nn.LSTM(3, 6, proj_size=proj_size, batch_first=True)))


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("shape", [[2, 5, 3], [2, 2, 5, 3]])
def test_rejects_inputs_pytorch_does_not_read_as_a_sequence(kind, shape):
    # Not [F]: PyTorch would read a batch of vectors [N, F] as one unbatched sequence of N steps.
    values = {"hidden": 4}
    make = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[kind]
    assert_accepts_what_torch_accepts(shape, kind, values,
                                      lambda: _Output(make(shape[-1], 4, batch_first=True)))
