"""matmul, split, chunk, select and mean against real PyTorch: shapes and MACs (FlopCounterMode
counts matmul's mm/bmm), attention built from primitives, the exported source, and which
arguments are valid, decided by torch itself."""
import random

import pytest

torch = pytest.importorskip("torch")

import archcalc  # noqa: E402
from layer_helpers import assert_accepts_what_torch_accepts, flow_mapping, spec, spec_error, torch_check  # noqa: E402

QK = ("{name: q, linear: 8}", "{name: k, from: input, linear: 8}")


@pytest.mark.parametrize("shape, entries", [
    ([4, 6], QK + ("{matmul: {transpose: true, scale: 0.35}, from: [q, k]}",)),
    ([4, 6], QK + ("{name: kt, permute: [1, 0], from: k}", "{matmul: {}, from: [q, kt]}")),
    ([2, 4, 6], ("{name: b, mean: {dim: 0, keepdim: true}}", "{matmul: {transpose: true}, from: [input, b]}")),
    ([2, 4, 6], ("{name: b, mean: {dim: 0, keepdim: true}}", "{matmul: {transpose: true}, from: [b, input]}")),
    ([3, 2, 4, 5], ("{name: b, linear: 4}", "{matmul: {scale: -2}, from: [b, input]}")),
    # leading [2, 1] and [1, 2] broadcast to [2, 2]: 2*2*4*4 outputs * K 5 = 320 MACs
    ([2, 1, 4, 5], ("{name: b, permute: [1, 0, 3, 2]}", "{matmul: {}, from: [input, b]}")),
])
def test_matmul_matches_pytorch(shape, entries):
    torch_check(shape, *entries)


def _attention(d, heads):
    t = "-1"  # the sequence length stays whatever the input has
    dh = d // heads
    entries = [f"{{name: {n}, linear: {d}, from: input}}" for n in "qkv"]
    for n in "qkv":
        entries += [f"{{name: {n}h, reshape: [{t}, {heads}, {dh}], from: {n}}}", f"{{name: {n}p, permute: [1, 0, 2]}}"]
    return entries + [f"{{name: scores, matmul: {{transpose: true, scale: {dh ** -0.5}}}, from: [qp, kp]}}",
                      "{name: weights, softmax: -1}", "{name: mixed, matmul: {}, from: [weights, vp]}",
                      "{permute: [1, 0, 2]}", f"{{reshape: [{t}, {d}]}}", f"{{name: out, linear: {d}}}"]


@pytest.mark.parametrize("t, d, heads", [(6, 8, 2), (5, 12, 3), (7, 4, 1), (1, 6, 6)])
def test_attention_from_primitives(t, d, heads):
    report = torch_check([t, d], *_attention(d, heads))
    assert report.output_shape == (t, d)
    # q, k, v and the output projection: 4*T*D*D; scores and mixing: h*T*T*(D/h) each
    assert report.totals.macs == 4 * t * d * d + 2 * t * t * d
    assert report.layer("scores").output_shape == (heads, t, t)


@pytest.mark.parametrize("shape, entry", [
    ([6, 10], "split: {sizes: 4, index: 2}"),
    ([6, 10], "split: {sizes: [3, 7], index: -1}"),
    ([6, 10, 3], "split: {sizes: [1, 2, 3], dim: 0, index: 1}"),
    ([5, 6], "chunk: {chunks: 4, dim: 0, index: -1}"),
    ([5, 6], "chunk: {chunks: 4, index: 2}"),
    ([5, 6, 7], "chunk: {chunks: 3, dim: 1, index: 1}"),
    ([5, 8], "select: 0"),
    ([3, 4, 5], "select: {dim: -2, index: -1}"),
    ([5, 8], "mean: 0"),
    ([3, 4, 5], "mean: {dim: [2, 0], keepdim: true}"),
    ([3, 4, 5, 2], "mean: [1, -1]"),
])
def test_pieces_and_reductions_match_pytorch(shape, entry):
    torch_check(shape, "{name: a, relu: null}", entry)


def test_token_ids_through_select_split_and_chunk_match_pytorch():
    for entry in ("select: 1", "split: {sizes: [1, 1], dim: 0, index: 1}", "chunk: {chunks: 3, index: -1}"):
        torch_check({"tokens": [2, 7]}, entry, "embedding: {num: 5, dim: 4}")


# --- what torch accepts ------------------------------------------------------------------------

def _make(fn):
    """A `make_module` for assert_accepts_what_torch_accepts. torch refuses an index out of range
    with IndexError, which that helper does not catch: passed on as ValueError."""
    def make():
        def run(x):
            try:
                return fn(x)
            except IndexError as exc:
                raise ValueError(str(exc)) from None
        return run
    return make


def _torch_dim(d):
    """A batch-less dim as torch's dim: counting from the end needs no change."""
    return d + 1 if d >= 0 else d


def _shape(rng, ranks=(1, 2, 3)):
    return [rng.randint(1, 7) for _ in range(rng.choice(ranks))]


def test_split_accepts_what_torch_accepts():
    rng = random.Random(1)
    for _ in range(150):
        shape = _shape(rng)
        rank = len(shape)
        dim = rng.randint(-rank, rank)  # `rank` is one past the end
        if rng.random() < 0.5:
            sizes = rng.randint(-1, 8)
        elif rng.random() < 0.5 or dim == rank:
            sizes = tuple(rng.randint(0, 5) for _ in range(rng.randint(1, 3)))
        else:  # sizes that add up, some of them 0
            cuts = sorted(rng.randint(0, shape[dim]) for _ in range(rng.randint(0, 2)))
            sizes = tuple(b - a for a, b in zip([0] + cuts, cuts + [shape[dim]]))
        index = rng.randint(-3, 3)
        values = {"sizes": sizes, "dim": dim, "index": index}
        arg = list(sizes) if isinstance(sizes, tuple) else sizes
        assert_accepts_what_torch_accepts(shape, "split", values,
                                          _make(lambda x: torch.split(x, arg, _torch_dim(dim))[index]))


def test_chunk_accepts_what_torch_accepts():
    rng = random.Random(2)
    for _ in range(150):
        shape = _shape(rng)
        rank = len(shape)
        dim, chunks, index = rng.randint(-rank, rank), rng.randint(-1, 9), rng.randint(-4, 4)
        assert_accepts_what_torch_accepts(shape, "chunk", {"chunks": chunks, "dim": dim, "index": index},
                                          _make(lambda x: torch.chunk(x, chunks, _torch_dim(dim))[index]))


def test_select_accepts_what_torch_accepts():
    rng = random.Random(3)
    for _ in range(120):
        shape = _shape(rng, ranks=(2, 3))  # rank 1 leaves only the batch: refused on purpose (below)
        rank = len(shape)
        dim, index = rng.randint(-rank, rank), rng.randint(-7, 7)
        assert_accepts_what_torch_accepts(shape, "select", {"dim": dim, "index": index},
                                          _make(lambda x: x.select(_torch_dim(dim), index)))


def test_mean_accepts_what_torch_accepts():
    rng = random.Random(4)
    checked = 0
    for _ in range(120):
        shape = _shape(rng)
        rank = len(shape)
        dims = tuple(rng.randint(-rank, rank) for _ in range(rng.randint(1, 3)))
        keepdim = rng.random() < 0.5
        valid = all(-rank <= d < rank for d in dims) and len({d % rank for d in dims}) == len(dims)
        if valid and len(dims) == rank and not keepdim:
            continue  # every dim without keepdim leaves only the batch: refused on purpose (below)
        values = {"dim": dims, "keepdim": keepdim}
        assert_accepts_what_torch_accepts(
            shape, "mean", values,
            _make(lambda x: x.mean(dim=tuple(_torch_dim(d) for d in dims), keepdim=keepdim)))
        checked += 1
    assert checked > 90


def test_matmul_accepts_what_torch_accepts():
    """Equal ranks of 2 or 3 (batch excluded); each input is a piece of a flat input, reshaped."""
    rng = random.Random(5)
    accepted = 0
    for _ in range(80):
        rank = rng.choice((2, 3))
        a, b = ([rng.randint(1, 3) for _ in range(rank)] for _ in range(2))
        transpose = rng.random() < 0.5
        na, nb = (len(torch.empty(s).flatten()) for s in (a, b))
        entries = (f"{{name: pa, split: {{sizes: [{na}, {nb}], dim: 0, index: 0}}}}", f"{{name: ra, reshape: {a}}}",
                   f"{{name: pb, split: {{sizes: [{na}, {nb}], dim: 0, index: 1}}, from: input}}",
                   f"{{name: rb, reshape: {b}}}",
                   f"{{matmul: {flow_mapping({'transpose': transpose})}, from: [ra, rb]}}")
        try:
            y = torch.randn(2, *b)
            torch.matmul(torch.randn(2, *a), y.transpose(-2, -1) if transpose else y)
            ok_torch = True
        except RuntimeError:
            ok_torch = False
        try:
            archcalc.analyze_text(spec([na + nb], *entries))
        except archcalc.SpecError as err:
            assert not ok_torch, f"archcalc rejects {a} @ {b} (transpose {transpose}): {err.message}"
            continue
        assert ok_torch, f"archcalc accepts {a} @ {b} (transpose {transpose}) but PyTorch rejects it"
        torch_check([na + nb], *entries)
        accepted += 1
    assert 10 < accepted < 70


def test_refused_on_purpose_though_torch_accepts():
    # With the batch in front, torch runs these, but they would leave only the batch dimension
    # (select, mean) or line the batch up with a data dim (matmul of different ranks).
    x = torch.randn(2, 8)
    assert x.select(1, 0).shape == (2,) and x.mean(dim=(1,)).shape == (2,)
    assert "would leave no dimension besides the batch" in spec_error([8], "select: 0").message
    assert "would leave no dimension besides the batch" in spec_error([5, 8], "mean: [0, 1]").message
    assert torch.matmul(torch.randn(2, 3, 4), torch.randn(2, 2, 4, 5)).shape == (2, 2, 3, 5)
    err = spec_error([2, 4, 5], "{name: a, select: 0}", "{matmul: {}, from: [a, input]}")
    assert "matmul needs inputs of the same rank" in err.message


# --- the exported source ------------------------------------------------------------------------

def test_exported_source_is_the_same_network():
    from archcalc.torch import build
    from archcalc.torch.source import class_name, pytorch_source

    text = spec([6, 8], *_attention(8, 2), "{name: cls, select: 0, from: out}", "{name: tok, mean: 0, from: out}",
                "{name: sp, split: {sizes: [3, 5], index: 1, dim: -1}, from: out}",
                "{name: ch, chunk: {chunks: 4, dim: 0, index: -1}, from: out}",
                "{name: both, concat: 0, from: [cls, tok]}")
    graph = archcalc.parse_spec(text)
    source = pytorch_source(graph)
    for expected in ("torch.matmul(qp, kp.transpose(-2, -1)) * 0.5", "torch.split(out, [3, 5], dim=2)[1]",
                     "torch.chunk(out, 4, dim=1)[2]", ".select(1, 0)", ".mean(dim=(1,), keepdim=False)"):
        assert expected in source
    namespace = {"__name__": "generated_net"}
    exec(compile(source, "<generated>", "exec"), namespace)
    reference = build(graph).eval()
    generated = namespace[class_name(graph.name)]().eval()
    generated.load_state_dict(dict(zip(generated.state_dict(), reference.state_dict().values())))
    x = torch.randn(2, 6, 8)
    with torch.no_grad():
        torch.testing.assert_close(generated(x), reference(x), rtol=0, atol=0)
