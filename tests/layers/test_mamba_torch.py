"""mamba against PyTorch: shapes, parameters and FlopCounterMode MACs of the built module; the same
outputs as Hugging Face's MambaMixer (its PyTorch path) with the weights copied, and as the paper's
recurrence written out step by step here; causality; the meta device; what autograd keeps."""
import math

import pytest

torch = pytest.importorskip("torch")

from torch.nn import functional as F  # noqa: E402

import archcalc  # noqa: E402
from archcalc.layers import KINDS  # noqa: E402
from archcalc.torch import build  # noqa: E402
from archcalc.torch.verify import flop_counter  # noqa: E402
from layer_helpers import flow_mapping, spec, torch_check  # noqa: E402

CASES = [  # (T, D, arguments)
    (5, 8, {"d_state": 4, "d_conv": 3}),
    (1, 8, {"d_state": 4}),
    (9, 6, {"d_state": 2, "d_conv": 1, "expand": 3, "dt_rank": 3}),
    (7, 20, {"d_state": 5, "d_conv": 2, "bias": True, "conv_bias": False}),
    (4, 33, {"d_state": 3, "expand": 1, "dt_rank": "auto", "bias": True}),
]


def _mixer(t, d, args):
    return archcalc.parse_spec(spec([t, d], f"mamba: {flow_mapping(args)}"))


@pytest.mark.parametrize("t, d, args", CASES)
def test_shapes_params_and_macs_match_pytorch(t, d, args):
    torch_check([t, d], f"mamba: {flow_mapping(args)}")


def test_stacked_with_other_kinds():
    torch_check({"tokens": [6]}, "embedding: {num: 11, dim: 8}", "{name: n, rmsnorm: {eps: 1.0e-5}}",
                "{name: m, mamba: {d_state: 4, d_conv: 3}}", "{add: {}, from: [embedding1, m]}", "linear: 11")


def _hf_mixer(d, args):
    transformers = pytest.importorskip("transformers")
    rank = args.get("dt_rank", "auto")
    config = transformers.MambaConfig(hidden_size=d, state_size=args.get("d_state", 16),
                                      conv_kernel=args.get("d_conv", 4), expand=args.get("expand", 2),
                                      time_step_rank=rank, use_bias=args.get("bias", False),
                                      use_conv_bias=args.get("conv_bias", True), num_hidden_layers=1)
    return transformers.models.mamba.modeling_mamba.MambaMixer(config, layer_idx=0).eval()


def _randomised(module, seed=0):
    """Every parameter random (A_log in [-1, 1], dt_proj's bias in [-3, 1]), so that each one matters."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name == "A_log":
                p.copy_(torch.rand(p.shape, generator=g) * 2 - 1)
            elif name == "dt_proj.bias":
                p.copy_(torch.rand(p.shape, generator=g) * 4 - 3)
            else:
                p.copy_(torch.randn(p.shape, generator=g) * 0.4)
    return module


@pytest.mark.parametrize("t, d, args", CASES)
def test_same_outputs_and_macs_as_hugging_face(t, d, args):
    theirs = _randomised(_hf_mixer(d, args))
    ours = build(_mixer(t, d, args)).eval().mamba1
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(3, t, d, generator=torch.Generator().manual_seed(1))  # not the global stream: what ran before must not matter
    with torch.no_grad(), flop_counter() as hf_count:
        expected = theirs(x)
    with torch.no_grad(), flop_counter() as our_count:
        got = ours(x)
    assert expected.abs().max() > 0.1
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    row = archcalc.analyze(_mixer(t, d, args)).layers[0]
    assert hf_count.get_total_flops() == our_count.get_total_flops() == 2 * 3 * row.macs
    assert sum(p.numel() for p in theirs.parameters()) == row.trainable_params


def _by_the_paper(m, x):
    """Gu & Dao's selective SSM written out position by position and feature by feature (float64):
    h_t = exp(dt_t A) h_{t-1} + dt_t B_t x_t, y_t = C_t h_t + D x_t, for every inner feature."""
    n, t, _ = x.shape
    e, big_n = m.A_log.shape
    k = m.conv1d.kernel_size[0]
    xz = F.linear(x, m.in_proj.weight, m.in_proj.bias)
    u_in, z = xz[..., :e], xz[..., e:]
    out = torch.zeros(n, t, x.shape[-1], dtype=x.dtype)
    for b in range(n):
        h = torch.zeros(e, big_n, dtype=x.dtype)
        for i in range(t):
            conv = torch.zeros(e, dtype=x.dtype)
            for j in range(k):  # causal: tap j reads position i - (k - 1 - j)
                src = i - (k - 1 - j)
                if src >= 0:
                    conv += m.conv1d.weight[:, 0, j] * u_in[b, src]
            if m.conv1d.bias is not None:
                conv += m.conv1d.bias
            u = F.silu(conv)
            proj = m.x_proj.weight @ u
            r = m.dt_proj.in_features
            dt = F.softplus(m.dt_proj.weight @ proj[:r] + m.dt_proj.bias)
            bb, cc = proj[r:r + big_n], proj[r + big_n:]
            a = -torch.exp(m.A_log)
            for f in range(e):
                h[f] = torch.exp(dt[f] * a[f]) * h[f] + dt[f] * bb * u[f]
            y = h @ cc + m.D * u
            y = y * F.silu(z[b, i])
            out[b, i] = F.linear(y, m.out_proj.weight, m.out_proj.bias)
    return out


@pytest.mark.parametrize("t, d, args", CASES[:4])
def test_computes_the_recurrence_of_the_paper(t, d, args):
    ours = _randomised(build(_mixer(t, d, args)).eval().mamba1, seed=1).double()
    x = torch.randn(2, t, d, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), _by_the_paper(ours, x), rtol=1e-10, atol=1e-10)


def test_output_t_reads_positions_0_to_t_only():
    t, d = 8, 6
    ours = _randomised(build(_mixer(t, d, {"d_state": 3, "d_conv": 3})).mamba1).double()
    for i in (0, 3, 7):
        x = torch.randn(1, t, d, dtype=torch.float64, requires_grad=True)
        ours(x)[0, i].sum().backward()
        seen = x.grad[0].abs().sum(-1) > 0
        assert seen.tolist() == [s <= i for s in range(t)]  # the whole prefix, nothing after i


def test_meta_device_counts_the_same():
    graph = archcalc.parse_spec(spec({"tokens": [128]}, "embedding: {num: 50280, dim: 768}", "mamba: {}",
                                     "mamba: {}", "linear: {out: 50280, bias: false}"))
    report = archcalc.analyze(graph)
    model = build(graph, device="meta").eval()
    assert next(model.parameters()).device.type == "meta"
    with torch.no_grad(), flop_counter() as counter:
        out = model(torch.zeros(1, 128, dtype=torch.long, device="meta"))
    assert tuple(out.shape) == (1, 128, 50280)
    assert counter.get_total_flops() // 2 == report.totals.macs
    assert sum(p.numel() for p in model.parameters()) == report.totals.params


@pytest.mark.parametrize("t, d, args", CASES)
def test_saved_for_backward_is_what_autograd_keeps(t, d, args):
    """saved_tensors_hooks see every tensor autograd keeps; their storages' bytes, parameters aside,
    at a batch of 2 (the convention: one [T, E] copy fewer for a batch of 1) and of 3, equal the
    kind's saved tensors (the input among them; exp(A_log) and A once for the batch)."""
    graph = _mixer(t, d, args)
    model = build(graph).mamba1
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    node = graph.nodes[0]
    for batch in (2, 3):
        kept = {}

        def pack(tensor):
            storage = tensor.untyped_storage()
            if storage.data_ptr() not in params:
                kept[storage.data_ptr()] = storage.nbytes()
            return tensor

        x = torch.randn(batch, t, d, requires_grad=True)
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
            model(x)
        assert x.untyped_storage().data_ptr() in kept
        from archcalc.layers.base import saved_elements

        want = sum(saved_elements(s, [(t, d)], (t, d)) * 4 * (1 if s.per_batch else batch)
                   for s in KINDS["mamba"].saved_tensors(node.args, [(t, d)], (t, d)))
        assert sum(kept.values()) == want


def test_verify_is_clean(tmp_path):
    from archcalc.torch.verify import verify

    path = tmp_path / "mamba.yaml"
    path.write_text(spec({"tokens": [10]}, "embedding: {num: 17, dim: 12}", "mamba: {d_state: 4, d_conv: 3}",
                         "{mamba: {d_state: 2, bias: true}, trainable: false}", "linear: 17"))
    result = verify(archcalc.load_spec(path))
    assert result.ok, result.mismatches()
    frozen = next(layer for layer in result.layers if layer.name == "mamba2")
    assert frozen.checks["non_trainable_params"].ok and frozen.checks["non_trainable_params"].measured > 0


def test_hugging_face_initialisation():
    """A = -(1..N) in every row, D = 1, softplus(dt_proj.bias) in [1e-3, 1e-1], as Hugging Face's
    init_mamba_weights."""
    m = build(_mixer(4, 16, {"d_state": 5})).mamba1
    assert torch.equal(-torch.exp(m.A_log), -torch.arange(1, 6, dtype=torch.float32).expand(32, 5))
    assert torch.equal(m.D.detach(), torch.ones(32))
    dt = F.softplus(m.dt_proj.bias.detach())
    assert dt.min() >= 1e-3 * (1 - 1e-5) and dt.max() <= 0.1 * (1 + 1e-5)
    assert m.dt_proj.weight.abs().max() <= 1 / math.sqrt(1)


@pytest.mark.parametrize("dtype, within", [(torch.bfloat16, 0.03), (torch.float16, 0.005)])
def test_half_precision_scans_in_float32_as_hugging_face(dtype, within):
    """In bfloat16 and float16 the weights' dtype runs the projections and the scan runs in float32,
    as in Hugging Face's path: the outputs agree to the rounding of the dtype (bfloat16 keeps 8
    bits: differences of about 1% of the largest output), and come out in the input's dtype."""
    t, d, args = 6, 16, {"d_state": 4, "d_conv": 3}
    theirs = _randomised(_hf_mixer(d, args)).to(dtype)
    ours = build(_mixer(t, d, args)).eval().mamba1.to(dtype)
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(2, t, d, generator=torch.Generator().manual_seed(0)).to(dtype)
    with torch.no_grad():
        got, expected = ours(x), theirs(x)
    assert got.dtype == expected.dtype == dtype
    assert (got.float() - expected.float()).abs().max() <= within * expected.float().abs().max()
