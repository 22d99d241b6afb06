"""specs/zoo/convnext_tiny.yaml against ConvNeXt-T written here as torchvision writes it
(torchvision.models.convnext: CNBlock, LayerNorm2d; its wheel does not load against the CPU torch
used here, so its model code is followed): parameters, FlopCounterMode MACs, the output, the
function itself with copied weights, and torchvision's published 28,589,128 parameters."""
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import archcalc  # noqa: E402
from bundled import SPECS  # noqa: E402
from reference_check import assert_counts_equal, assert_same_function  # noqa: E402

SPEC = SPECS / "zoo/convnext_tiny.yaml"
DEPTHS, DIMS = (3, 3, 9, 3), (96, 192, 384, 768)


class LayerNorm2d(nn.LayerNorm):
    def forward(self, x):
        x = x.permute(0, 2, 3, 1)
        return nn.functional.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps).permute(0, 3, 1, 2)


class CNBlock(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.block = nn.Sequential(nn.Conv2d(dim, dim, 7, padding=3, groups=dim), _Permute(0, 2, 3, 1),
                                   nn.LayerNorm(dim, eps=1e-6), nn.Linear(dim, 4 * dim), nn.GELU(),
                                   nn.Linear(4 * dim, dim), _Permute(0, 3, 1, 2))
        self.layer_scale = nn.Parameter(torch.ones(dim, 1, 1) * 1e-6)

    def forward(self, x):
        return self.layer_scale * self.block(x) + x  # stochastic depth: identity at inference


class _Permute(nn.Module):
    def __init__(self, *dims):
        super().__init__()
        self.dims = dims

    def forward(self, x):
        return x.permute(self.dims)


class ConvNeXtTiny(nn.Module):
    def __init__(self):
        super().__init__()
        layers = [nn.Sequential(nn.Conv2d(3, DIMS[0], 4, 4), LayerNorm2d(DIMS[0], eps=1e-6))]
        for i, (depth, dim) in enumerate(zip(DEPTHS, DIMS)):
            if i:
                layers.append(nn.Sequential(LayerNorm2d(DIMS[i - 1], eps=1e-6), nn.Conv2d(DIMS[i - 1], dim, 2, 2)))
            layers.append(nn.Sequential(*[CNBlock(dim) for _ in range(depth)]))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(LayerNorm2d(DIMS[-1], eps=1e-6), nn.Flatten(1), nn.Linear(DIMS[-1], 1000))

    def forward(self, x):
        return self.classifier(nn.functional.adaptive_avg_pool2d(self.features(x), 1))


@pytest.mark.slow
def test_the_spec_counts_what_the_reference_computes():
    report = assert_counts_equal(SPEC, ConvNeXtTiny(), trainable=28_589_128, gmacs=4.46)  # torchvision's figures
    assert report.totals.non_trainable_params == 0 and report.output_shape == (1000,)


def test_the_receptive_field_goes_through_every_channels_last_section():
    report = archcalc.analyze(SPEC)
    assert all(row.rf is not None for row in report.layers if row.kind != "flatten" and row.name != "classifier")
    # Stem 4 /4; each block's 7x7 adds 6 jumps; each downsample's 2x2 adds one jump.
    size, jump = 4, 4
    for i, depth in enumerate(DEPTHS):
        if i:
            size, jump = size + jump, jump * 2
        size += depth * 6 * jump
    assert report.layer("features.7.2.add1").rf.size == (size, size) == (1688, 1688)


@pytest.mark.slow
def test_with_the_reference_weights_the_spec_computes_the_same_function():
    torch.manual_seed(0)
    reference = ConvNeXtTiny()
    with torch.no_grad():
        for name, p in reference.named_parameters():  # away from the defaults, so that a mix-up shows
            if "layer_scale" in name or name.endswith("norm.weight") or ".weight" not in name:
                p.uniform_(0.5, 1.5)
    # the layer scale is bare in the spec too: the parameters come in the reference's own order
    assert_same_function(SPEC, reference, tol=1e-3)
