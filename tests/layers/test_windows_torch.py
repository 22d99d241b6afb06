"""Swin's window kinds against PyTorch: shapes, parameters and FlopCounterMode MACs of the built
modules (torch_check), their outputs against definitions written out here element by element (a
naive, loop-by-loop shifted window attention included, not torchvision's vectorised code), the
receptive fields claimed (the real modules' gradients, and verify's probe), and why a shifted
window's field is not tracked (torchvision's -100 mask lets an edge output see the far border)."""
import itertools
import math

import pytest

torch = pytest.importorskip("torch")

import archcalc  # noqa: E402
from archcalc.torch import build  # noqa: E402
from layer_helpers import spec, torch_check  # noqa: E402

CHANNELS_LAST = ("conv: {out: 12, kernel: 1}", "permute: [1, 2, 0]")


def built(shape, *entries):
    return build(archcalc.parse_spec(spec(shape, *entries))).eval()


# --- counts ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape, entries", [
    ([3, 9, 10], ("roll: {shifts: [-3, 2, 1], dims: [1, 2, 0]}",)),
    ([3, 10, 15], ("window_partition: [5, 4]",)),
    ([3, 10, 15], ("{name: p, window_partition: 7}", "{window_merge: 7, from: [p, permute1]}")),
    ([3, 7, 10], ("patch_merging",)),
    ([3, 10, 10], ("patch_merging: {eps: 1.0e-6}",)),
    ([3, 6, 9], ("window_attention: {heads: 3, window: 4, shift: 2}",)),
    ([3, 4, 9], ("window_attention: {heads: 2, window: 4, shift: [1, 2], qkv_bias: false}",)),
    ([3, 6, 10], ("window_attention: {heads: 4, window: [3, 5], proj_bias: false}",)),
    ([3, 2, 3], ("window_attention: {heads: 1, window: 7, shift: 3}",)),  # one padded window
])
def test_shapes_params_and_macs_match_pytorch(shape, entries):
    torch_check(shape, *CHANNELS_LAST, *entries)


# --- outputs by definition -----------------------------------------------------------------------

def test_roll_is_torch_roll_with_the_batch_kept_first():
    model = built([3, 5, 6], "roll: {shifts: [2, -1], dims: [-1, 0]}")
    x = torch.randn(2, 3, 5, 6)
    expected = torch.empty_like(x)
    for c, i, j in itertools.product(range(3), range(5), range(6)):
        expected[:, c, i, j] = x[:, (c + 1) % 3, i, (j - 2) % 6]  # output j is input (j - shift) mod n
    assert torch.equal(model(x), expected)


def test_partition_by_definition_and_merge_inverts_it():
    h, w, c, mh, mw = 10, 15, 4, 5, 4
    model = built([h, w, c], "{name: p, window_partition: [5, 4]}", "{name: m, window_merge: [5, 4], from: [p, input]}")
    x = torch.randn(2, h, w, c)
    windows = model.get_submodule("p")(x)
    nw = -(-w // mw)
    expected = torch.zeros(2, 2 * nw, mh * mw, c)
    for r, col, i, j in itertools.product(range(2), range(nw), range(mh), range(mw)):
        if r * mh + i < h and col * mw + j < w:  # beyond: the zero padding
            expected[:, r * nw + col, i * mw + j] = x[:, r * mh + i, col * mw + j]
    assert torch.equal(windows, expected)
    assert torch.equal(model(x), x)


def test_patch_merging_by_definition():
    h, w, c = 5, 6, 3
    model = built([h, w, c], "patch_merging").double()
    module = model.get_submodule("patch_merging1")
    with torch.no_grad():
        module.norm.weight.uniform_(0.5, 1.5)
        module.norm.bias.uniform_(-0.5, 0.5)
    x = torch.randn(2, h, w, c, dtype=torch.float64)

    def at(i, j):
        return x[:, i, j] if i < h and j < w else torch.zeros(2, c, dtype=torch.float64)

    for i, j in itertools.product(range(3), range(3)):  # ceil(5/2) x ceil(6/2)
        patch = torch.cat([at(2 * i, 2 * j), at(2 * i + 1, 2 * j), at(2 * i, 2 * j + 1), at(2 * i + 1, 2 * j + 1)], -1)
        normed = torch.nn.functional.layer_norm(patch, (4 * c,), module.norm.weight, module.norm.bias, 1e-5)
        expected = normed @ module.reduction.weight.T
        torch.testing.assert_close(model(x)[:, i, j], expected)


def naive_window_attention(x, module, window, shift):
    """Shifted window attention position by position, from its definition: pad with zeros to whole
    windows; drop the shift along an axis whose padded size is no larger than the window; padded
    position p sits at rolled position (p - s) mod P, in window floor(r / M) at row/column r mod M;
    each query attends to the keys of its window, with the bias table entry of their relative
    offset and, where shifted, -100 between keys from different regions of the rolled map (rows
    [0, P - M), [P - M, P - s), [P - s, P), likewise columns)."""
    n, h, w, c = x.shape
    heads = module.num_heads
    d = c // heads
    (mh, mw), (sh, sw) = window, shift
    ph, pw = -(-h // mh) * mh, -(-w // mw) * mw
    sh, sw = (0 if mh >= ph else sh), (0 if mw >= pw else sw)
    padded = torch.zeros(n, ph, pw, c, dtype=x.dtype)
    padded[:, :h, :w] = x
    qkv = padded @ module.qkv.weight.T + (module.qkv.bias if module.qkv.bias is not None else 0)
    q, k, v = qkv[..., :c], qkv[..., c:2 * c], qkv[..., 2 * c:]
    table = module.relative_position_bias_table

    def place(i, j):
        r, s = (i - sh) % ph, (j - sw) % pw
        return (r // mh, s // mw), (r % mh, s % mw)

    def region(i, j):
        r, s = (i - sh) % ph, (j - sw) % pw
        return tuple(0 if a < p - m else 1 if a < p - t else 2 for a, p, m, t in ((r, ph, mh, sh), (s, pw, mw, sw)))

    out = torch.zeros(n, h, w, c, dtype=x.dtype)
    positions = list(itertools.product(range(ph), range(pw)))
    for i, j in itertools.product(range(h), range(w)):
        win, (a, b) = place(i, j)
        keys = [(y, z) for y, z in positions if place(y, z)[0] == win]
        heads_out = []
        for head in range(heads):
            part = slice(head * d, (head + 1) * d)
            scores = []
            for y, z in keys:
                _, (e, f) = place(y, z)
                index = (a - e + mh - 1) * (2 * mw - 1) + (b - f + mw - 1)
                score = (q[:, i, j, part] * d ** -0.5 * k[:, y, z, part]).sum(-1) + table[index, head]
                if (sh or sw) and region(i, j) != region(y, z):
                    score = score - 100.0
                scores.append(score)
            weights = torch.softmax(torch.stack(scores, -1), -1)
            heads_out.append(sum(weights[:, t, None] * v[:, y, z, part] for t, (y, z) in enumerate(keys)))
        out[:, i, j] = torch.cat(heads_out, -1) @ module.proj.weight.T + (
            module.proj.bias if module.proj.bias is not None else 0)
    return out


@pytest.mark.parametrize("shape, window, shift, bias", [
    ((5, 9, 6), (3, 4), (1, 2), True),    # padded to 6 x 12, shifted on both axes
    ((3, 9, 4), (3, 3), (1, 1), True),    # padded H is the window: H's shift dropped, W's kept
    ((4, 6, 4), (2, 3), (0, 0), False),   # no shift, no biases
    ((6, 6, 4), (4, 4), (2, 2), True),    # padded to 8 x 8: two windows an axis, wrap and mask
])
@pytest.mark.slow
def test_window_attention_by_definition(shape, window, shift, bias):
    h, w, c = shape
    heads = 2
    model = built([h, w, c], f"window_attention: {{heads: {heads}, window: {list(window)}, shift: {list(shift)}, "
                             f"qkv_bias: {str(bias).lower()}, proj_bias: {str(bias).lower()}}}").double()
    module = model.get_submodule("window_attention1")
    with torch.no_grad():
        module.relative_position_bias_table.normal_(0, 1.0)  # large enough that a wrong index shows
    x = torch.randn(2, h, w, c, dtype=torch.float64)
    torch.testing.assert_close(model(x), naive_window_attention(x, module, window, shift))


def test_the_relative_position_index_is_an_integer_buffer_of_n_squared_entries():
    module = built([3, 7, 7], *CHANNELS_LAST, "window_attention: {heads: 3, window: [3, 4]}").get_submodule(
        "window_attention1")
    index = module.relative_position_index
    assert not index.is_floating_point() and index.numel() == 12 * 12
    assert int(index.min()) == 0 and int(index.max()) == (2 * 3 - 1) * (2 * 4 - 1) - 1
    assert module.relative_position_bias_table.shape == (5 * 7, 3)


# --- receptive fields ----------------------------------------------------------------------------

def _support(model, shape, position):
    """(first, last) input pixel per spatial axis reaching output `position` (channels-last [H, W])."""
    x = torch.randn(1, *shape, dtype=torch.float64, requires_grad=True)
    y = model.double()(x)
    y[(0, *position)].sum().backward()
    seen = (x.grad[0].abs().sum(0) > 0).nonzero()
    return seen.min(0).values.tolist(), seen.max(0).values.tolist()


def test_the_real_module_sees_exactly_its_window_when_unshifted():
    # 1x1 conv, window [4, 3] on 8 x 9: output (5, 4) lies in window rows 4..7, columns 3..5.
    graph = archcalc.parse_spec(spec([3, 8, 9], *CHANNELS_LAST, "window_attention: {heads: 3, window: [4, 3]}"))
    rf = archcalc.analyze(graph).layers[-1].rf
    assert rf.exact_axes()[0].window(5) == (4, 7) and rf.exact_axes()[1].window(4) == (3, 5)
    assert _support(build(graph), (3, 8, 9), (5, 4)) == ([4, 3], [7, 5])


def test_a_shifted_edge_output_reaches_the_far_border_so_its_field_is_not_tracked():
    """torch.roll puts the last rows first; the mask between the two borders is -100, not -inf, so
    the first output still depends (by about e^-100) on the last rows, while an inner one sees only
    its own window: a position-dependent field, which the analysis does not approximate."""
    graph = archcalc.parse_spec(spec([3, 8, 8], *CHANNELS_LAST, "window_attention: {heads: 3, window: 4, shift: 2}"))
    assert archcalc.analyze(graph).layers[-1].rf is None
    model = build(graph)
    assert _support(model, (3, 8, 8), (0, 0)) == ([0, 0], [7, 7])  # both borders
    assert _support(model, (3, 8, 8), (3, 3)) == ([2, 2], [5, 5])  # its own shifted window


def test_verify_is_clean_and_measures_the_window_fields(tmp_path):
    from archcalc.torch.verify import verify

    path = tmp_path / "windows.yaml"
    path.write_text(spec([3, 32, 32], "conv: {out: 12, kernel: 2, stride: 2}", "permute: [1, 2, 0]",
                         "{name: a, window_attention: {heads: 3, window: 4}}", "{name: r, add: {}, from: [a, permute1]}",
                         "{name: m, patch_merging: {}}", "{name: b, window_attention: {heads: 3, window: 2}}",
                         "{name: s, window_attention: {heads: 3, window: 2, shift: 1}}",
                         "roll: {shifts: [1], dims: [2]}", "permute: [2, 0, 1]", "global_avgpool"))
    result = verify(archcalc.load_spec(path))
    assert result.ok
    rows = {row.name: row for row in result.layers}
    for name in ("a", "r", "m", "b"):
        assert rows[name].checks["rf"].ok, name
    assert rows["s"].checks["rf"].analytic is None


@pytest.mark.slow
def test_swin_t_verifies_clean():
    from bundled import SPECS
    from archcalc.torch.verify import verify

    result = verify(archcalc.load_spec(SPECS / "zoo/swin_t.yaml"))
    assert result.ok
    rows = {row.name: row for row in result.layers}
    assert rows["features.1.0.attn"].checks["rf"].ok and rows["features.1.0.add2"].checks["rf"].ok
    assert rows["features.1.0.attn"].checks["rf"].analytic.size == (28, 28)
