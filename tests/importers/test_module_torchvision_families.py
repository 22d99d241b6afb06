"""Importing the module families that read parameters outside a module call: LayerNorm2d's
functional layer norm, ConvNeXt's layer scale, ViT's class token and position table, Swin's
windows; timm's DropPath and LayerScale (archcalc.importers.module).

Each round trip checks the figures (trainable and non-trainable parameters, MACs as
FlopCounterMode / 2, output shape) against the module's, that `build(spec)` has the module's
state_dict keys and shapes, and that after `load_state_dict(module.state_dict())` the outputs are
equal. Models are small (64 x 64 inputs, few layers) to keep the suite fast.
"""
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import archcalc  # noqa: E402
from archcalc.errors import SpecError  # noqa: E402
from archcalc.importers.module import compare, from_module  # noqa: E402
from archcalc.torch.build import build  # noqa: E402


def round_trip(module, shape):
    torch.manual_seed(0)
    text = from_module(module, shape)
    result = compare(module, text)
    assert result["spec"] == result["module"], text
    assert result["equal"], result
    built = build(archcalc.parse_spec(text))
    assert {k: tuple(v.shape) for k, v in built.state_dict().items()} == \
        {k: tuple(v.shape) for k, v in module.state_dict().items()}
    return text, result


# --- a functional call reading one module's own parameters ----------------------------------------

class LayerNorm2d(nn.LayerNorm):  # torchvision's (and timm's) LayerNorm2d: a LayerNorm over channels of NCHW
    def forward(self, x):
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class FunctionalLinear(nn.Linear):
    def forward(self, x):
        return F.linear(x, self.weight, self.bias)


class FunctionalConv(nn.Conv2d):
    def forward(self, x):
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)


def test_functional_call_of_a_modules_own_parameters_is_its_layer():
    net = nn.Sequential(FunctionalConv(3, 8, 3, 2, 1), LayerNorm2d(8, eps=1e-6), nn.Flatten(),
                        FunctionalLinear(8 * 8 * 8, 5))
    for p in net.parameters():  # no unit norms or zero biases hiding a weight that does not load
        nn.init.normal_(p)
    text, result = round_trip(net, (3, 16, 16))
    # conv 3*9*8 + 8 = 224, layernorm 2 * 8 = 16, linear 512*5 + 5 = 2,565; MACs: 8*8*8 outputs of 27
    # products = 13,824, linear 2,560 (a layernorm counts no MACs)
    assert result["spec"] == {"trainable": 2805, "non_trainable": 0, "macs": 16384, "output": (5,)}
    lines = text.splitlines()
    at = lines.index("  - {name: 1, layernorm: {eps: 1.0e-06}}")  # named as the module, the permutes unnamed
    assert lines[at - 2:at + 4] == ["  - {name: 0, conv: {out: 8, kernel: 3, stride: 2, padding: 1}}",
                                    "  - permute: {dims: [1, 2, 0]}",
                                    "  - {name: 1, layernorm: {eps: 1.0e-06}}",
                                    "  - permute: {dims: [2, 0, 1]}",
                                    "  - {name: 2, flatten}",
                                    "  - {name: 3, linear: {out: 5}}"]


def test_own_parameters_read_otherwise_stay_refused():
    class NormPlusWeight(nn.LayerNorm):  # the weight read a second time, outside the layer norm
        def forward(self, x):
            return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps) + self.weight

    with pytest.raises(SpecError, match=r"'0\.weight' \(a parameter\) is read directly by the forward of "
                                        r"'0' \(NormPlusWeight\)"):
        from_module(nn.Sequential(NormPlusWeight(4)), (4,))

    class HalfLinear(nn.Module):  # F.linear with its weight but another module's bias
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.randn(4, 4))
            self.other = nn.Linear(4, 4)

        def forward(self, x):
            return F.linear(x, self.weight, self.other.bias)

    with pytest.raises(SpecError, match=r"'weight' \(a parameter\) is read directly"):
        from_module(HalfLinear(), (4,))

    class TwiceNorm(nn.Module):  # one LayerNorm2d called twice: shared weights
        def __init__(self):
            super().__init__()
            self.norm = LayerNorm2d(3)

        def forward(self, x):
            return self.norm(self.norm(x))

    with pytest.raises(SpecError, match=r"'norm\.weight' \(a parameter\) is read directly"):
        from_module(TwiceNorm(), (3, 4, 4))


# --- timm's DropPath and LayerScale -----------------------------------------------------------------

@pytest.fixture(scope="module")
def timm_layers():
    from torchvision_models import torchvision_models

    torchvision_models()  # timm imports torchvision, whose C extension does not load here
    try:
        import timm.layers as layers
    except Exception:  # noqa: BLE001
        pytest.skip("timm does not import here")
    return layers


def test_timm_drop_path_and_layer_scale(timm_layers):
    class Block(nn.Module):  # timm's ViT block shape: x + drop_path(ls(fc(norm(x))))
        def __init__(self):
            super().__init__()
            self.norm = nn.LayerNorm(16)
            self.fc = nn.Linear(16, 16)
            self.ls = timm_layers.LayerScale(16, init_values=1e-5)
            self.drop_path = timm_layers.DropPath(0.25)

        def forward(self, x):
            return x + self.drop_path(self.ls(self.fc(self.norm(x))))

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(3, 16, 1)
            self.ls = timm_layers.LayerScale2d(16, init_values=0.5)
            self.blocks = nn.Sequential(Block(), Block())

        def forward(self, x):
            x = self.ls(self.stem(x)).flatten(2).transpose(1, 2)
            return self.blocks(x)

    net = Net()
    text, result = round_trip(net, (3, 4, 4))
    # stem 3*16 + 16 = 64, ls 16; per block: norm 32, fc 272, ls 16 -> 64 + 16 + 2 * 320 = 720
    assert result["spec"]["trainable"] == 720
    assert "- {name: ls, scale: 0.5}" in text or "- {name: ls, scale: {init: 0.5}}" in text
    assert "scale: {init: 1.0e-05, dim: -1}" in text
    assert "stochastic_depth: {p: 0.25}" in text
    # in training both drop the same rows with the same seed (stochastic depth per example, the kept
    # ones divided by 1 - p): timm's rule is torchvision's
    built = build(archcalc.parse_spec(text))
    built.load_state_dict(net.state_dict())
    built.train()
    net.train()
    x = torch.randn(8, 3, 4, 4)
    torch.manual_seed(3)
    theirs = net(x)
    torch.manual_seed(3)
    assert torch.allclose(built(x), theirs, atol=1e-6)

    with pytest.raises(SpecError, match=r"DropPath with scale_by_keep=False"):
        from_module(nn.Sequential(nn.Linear(4, 4), timm_layers.DropPath(0.1, scale_by_keep=False)), (4,))


# --- parameters read directly: `bare: true` layers ---------------------------------------------------

def test_parameters_read_by_a_forward_become_bare_layers():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 4, 4)
            self.layer_scale = nn.Parameter(torch.full((8, 1, 1), 0.5))  # torchvision's ConvNeXt
            self.class_token = nn.Parameter(torch.randn(1, 1, 8))  # torchvision's ViT
            self.pos_embedding = nn.Parameter(torch.randn(1, 5, 8))
            self.gamma = nn.Parameter(torch.randn(8))  # another value each: init 1.0, the values load
            self.fc = nn.Linear(8, 3)

        def forward(self, x):
            x = self.layer_scale * self.conv(x)  # [8, 2, 2]
            x = x.flatten(2).transpose(1, 2)  # [4, 8]
            x = torch.cat([self.class_token.expand(x.shape[0], -1, -1), x], dim=1)
            x = x + self.pos_embedding
            return self.fc(x * self.gamma)

    net = Net()
    text, result = round_trip(net, (3, 8, 8))
    # conv 3*16*8 + 8 = 392; layer scale 8, class token 8, positions 5*8 = 40, gamma 8; fc 27
    assert result["spec"]["trainable"] == 392 + 8 + 8 + 40 + 8 + 27
    for line in ["- {name: layer_scale, scale: {init: 0.5, broadcast: true}, bare: true}",
                 "- {name: class_token, class_token, bare: true}",
                 "- {name: pos_embedding, positional: {broadcast: true}, bare: true}",
                 "- {name: gamma, scale: {dim: -1}, bare: true}"]:
        assert line in text, text
    built = build(archcalc.parse_spec(text))
    assert {k: tuple(v.shape) for k, v in built.state_dict().items()}["layer_scale"] == (8, 1, 1)


def test_parameters_read_otherwise_stay_refused():
    class LeadingOnes(nn.Module):  # [1, C, 1, 1]: not a shape scale holds
        def __init__(self):
            super().__init__()
            self.s = nn.Parameter(torch.ones(1, 4, 1, 1))

        def forward(self, x):
            return x * self.s

    with pytest.raises(SpecError, match=r"'s' \(a parameter\) is read directly by the forward of the top level"):
        from_module(LeadingOnes(), (4, 2, 2))

    class TwoUses(nn.Module):
        def __init__(self):
            super().__init__()
            self.s = nn.Parameter(torch.ones(4))

        def forward(self, x):
            return x * self.s + self.s

    with pytest.raises(SpecError, match=r"'s' \(a parameter\) is read directly"):
        from_module(TwoUses(), (4,))

    class TokenAtTheEnd(nn.Module):  # appended, not prepended: class_token prepends
        def __init__(self):
            super().__init__()
            self.t = nn.Parameter(torch.zeros(1, 1, 4))

        def forward(self, x):
            return torch.cat([x, self.t.expand(x.shape[0], -1, -1)], dim=1)

    with pytest.raises(SpecError, match=r"'t' \(a parameter\) is read directly"):
        from_module(TokenAtTheEnd(), (3, 4))

    class TableWithoutBatch(nn.Module):  # x + P with P [T, D]: positional's bare table is [1, T, D]
        def __init__(self):
            super().__init__()
            self.p = nn.Parameter(torch.zeros(3, 4))

        def forward(self, x):
            return x + self.p

    with pytest.raises(SpecError, match=r"'p' \(a parameter\) is read directly"):
        from_module(TableWithoutBatch(), (3, 4))


# --- torchvision's ConvNeXt, ViT and Swin --------------------------------------------------------------

@pytest.fixture(scope="module")
def tv():
    from torchvision_models import torchvision_models

    models = torchvision_models()
    if models is None:
        pytest.skip("torchvision does not import here")
    return models


@pytest.mark.slow
def test_torchvision_convnext_tiny(tv):
    torch.manual_seed(0)
    module = tv.convnext_tiny()
    text = from_module(module, (3, 64, 64), source="torchvision:convnext_tiny")
    result = compare(module, text)
    assert result["spec"] == result["module"] and result["equal"], result
    assert result["spec"]["trainable"] == 28_589_128  # torchvision's documented count
    assert "- {name: layer_scale, scale: {init: 1.0e-06, broadcast: true}, bare: true}" in text
    assert "- {name: 1, permute: {dims: [1, 2, 0]}}" in text  # torchvision's Permute module, entry 1 of `block`
    keys = {k: tuple(v.shape) for k, v in build(archcalc.parse_spec(text)).state_dict().items()}
    assert keys == {k: tuple(v.shape) for k, v in module.state_dict().items()}
    assert keys["features.1.0.layer_scale"] == (96, 1, 1) and keys["features.0.1.weight"] == (96,)


def test_torchvision_vision_transformer(tv):
    from torchvision.models.vision_transformer import VisionTransformer

    module = VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=16, mlp_dim=32,
                               num_classes=10)
    text, result = round_trip(module, (3, 32, 32))
    # conv_proj 3*64*16 + 16 = 3,088; class token 16; pos_embedding 17*16 = 272; a layer: ln_1 32,
    # attention 4*16*16 + 4*16 = 1,088, ln_2 32, mlp 16*32 + 32 + 32*16 + 16 = 1,072; ln 32; head 170
    assert result["spec"]["trainable"] == 3088 + 16 + 272 + 2 * (32 + 1088 + 32 + 1072) + 32 + 170
    assert "- {name: class_token, class_token, bare: true}" in text
    assert "- {name: pos_embedding, positional: {broadcast: true}, bare: true}" in text
    assert "- select: {index: 0}" in text  # x[:, 0]


@pytest.mark.slow
def test_torchvision_swin_t(tv):
    torch.manual_seed(0)
    module = tv.swin_t()
    text = from_module(module, (3, 64, 64), source="torchvision:swin_t")
    result = compare(module, text)
    assert result["spec"] == result["module"] and result["equal"], result
    assert result["spec"]["trainable"] == 28_288_354  # torchvision's documented count
    assert "window_attention: {heads: heads, window: 7, shift: shift}" in text
    assert "- {name: 2, patch_merging}" in text
    graph = archcalc.parse_spec(text)
    assert {n.name: n.args["shift"] for n in graph.nodes if n.kind == "window_attention"}["features.1.1.attn"] == 3


def test_swin_v2_stays_refused(tv):
    from torchvision.models.swin_transformer import PatchMergingV2, SwinTransformer, SwinTransformerBlockV2

    v2 = SwinTransformer(patch_size=[4, 4], embed_dim=16, depths=[2, 2], num_heads=[2, 4], window_size=[4, 4],
                         block=SwinTransformerBlockV2, downsample_layer=PatchMergingV2)
    # its attention computes the bias from a buffer through an MLP: no archcalc kind
    with pytest.raises(SpecError, match=r"'features\.1\.0\.attn\.relative_coords_table' \(a buffer\)"):
        from_module(v2, (3, 32, 32))


def test_timm_vision_transformer(timm_layers):
    # timm's ViT: cls_token and pos_embed bare, Attention as attention with layout: fused (qkv, proj)
    from timm.models.vision_transformer import VisionTransformer

    torch.manual_seed(0)
    module = VisionTransformer(img_size=32, patch_size=8, embed_dim=48, depth=2, num_heads=3, num_classes=10)
    text = from_module(module, (3, 32, 32), source="timm")
    assert "layout: fused" in text and "{name: cls_token, class_token, bare: true}" in text
    result = compare(module, text)
    assert result["spec"] == result["module"] and result["equal"], result
    # by hand: patch conv 8*8*3*48 + 48; cls 48; positions 17*48; per block 2 norms (4*48), qkv 48*144 + 144,
    # proj 48*48 + 48, mlp 48*192 + 192 + 192*48 + 48; final norm 2*48; head 48*10 + 10
    block = 4 * 48 + 48 * 144 + 144 + 48 * 48 + 48 + 48 * 192 + 192 + 192 * 48 + 48
    assert result["spec"]["trainable"] == 8 * 8 * 3 * 48 + 48 + 48 + 17 * 48 + 2 * block + 2 * 48 + 48 * 10 + 10


def test_timm_attention_variants_are_refused(timm_layers):
    from timm.models.vision_transformer import VisionTransformer

    module = VisionTransformer(img_size=32, patch_size=8, embed_dim=48, depth=1, num_heads=3, num_classes=10,
                               qk_norm=True)
    with pytest.raises(SpecError, match=r"Attention with qk_norm=True: attention's layout: fused .* \(at 'blocks\.0\.attn'"):
        from_module(module, (3, 32, 32))


@pytest.mark.slow
def test_timm_convnext_gamma_reshaped(timm_layers):
    import timm

    torch.manual_seed(0)
    module = timm.create_model("convnext_atto", pretrained=False)
    text = from_module(module, (3, 32, 32), source="timm:convnext_atto")
    result = compare(module, text)
    assert result["spec"] == result["module"] and result["equal"], result
    assert result["spec"]["trainable"] == 3_695_520  # timm's convnext_atto
    assert "- {name: gamma, scale: 1.0e-06, bare: true}" in text or \
        "- {name: gamma, scale: {init: 1.0e-06}, bare: true}" in text, text
