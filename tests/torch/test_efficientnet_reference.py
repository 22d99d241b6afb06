"""specs/zoo/efficientnet_b0.yaml against EfficientNet-B0 written here as torchvision writes it
(torchvision.models.efficientnet: MBConv, SqueezeExcitation, Conv2dNormActivation; its wheel does
not load against the CPU torch used here, so its model code is followed): parameters, batch-norm
statistics, FlopCounterMode MACs, the output, and torchvision's published 5,288,548 parameters."""
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import archcalc  # noqa: E402
from bundled import SPECS  # noqa: E402
from reference_check import assert_counts_equal, assert_same_function  # noqa: E402

SPEC = SPECS / "zoo/efficientnet_b0.yaml"
# expand ratio, kernel, stride, input channels, output channels, blocks (torchvision's _efficientnet_conf)
STAGES = [(1, 3, 1, 32, 16, 1), (6, 3, 2, 16, 24, 2), (6, 5, 2, 24, 40, 2), (6, 3, 2, 40, 80, 3),
          (6, 5, 1, 80, 112, 3), (6, 5, 2, 112, 192, 4), (6, 3, 1, 192, 320, 1)]


def conv_bn_act(i, o, k, stride=1, groups=1, act=True):
    layers = [nn.Conv2d(i, o, k, stride, (k - 1) // 2, groups=groups, bias=False), nn.BatchNorm2d(o)]
    return nn.Sequential(*layers, *([nn.SiLU(inplace=True)] if act else []))


class SqueezeExcitation(nn.Module):
    def __init__(self, channels, squeeze):
        super().__init__()
        self.fc1, self.fc2 = nn.Conv2d(channels, squeeze, 1), nn.Conv2d(squeeze, channels, 1)

    def forward(self, x):
        scale = nn.functional.adaptive_avg_pool2d(x, 1)
        return torch.sigmoid(self.fc2(nn.functional.silu(self.fc1(scale)))) * x


class MBConv(nn.Module):
    def __init__(self, expand, k, stride, cin, cout):
        super().__init__()
        self.residual = stride == 1 and cin == cout
        wide = cin * expand
        layers = [conv_bn_act(cin, wide, 1)] if wide != cin else []
        layers += [conv_bn_act(wide, wide, k, stride, groups=wide),
                   SqueezeExcitation(wide, max(1, cin // 4)), conv_bn_act(wide, cout, 1, act=False)]
        self.block = nn.Sequential(*layers)

    def forward(self, x):
        out = self.block(x)
        return out + x if self.residual else out  # stochastic depth: identity at inference


class EfficientNetB0(nn.Module):
    def __init__(self):
        super().__init__()
        blocks = [conv_bn_act(3, 32, 3, 2)]
        for expand, k, stride, cin, cout, n in STAGES:
            blocks += [MBConv(expand, k, stride if i == 0 else 1, cin if i == 0 else cout, cout) for i in range(n)]
        blocks.append(conv_bn_act(320, 1280, 1))
        self.features = nn.Sequential(*blocks)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, 1000))

    def forward(self, x):
        return self.classifier(torch.flatten(nn.functional.adaptive_avg_pool2d(self.features(x), 1), 1))


@pytest.mark.slow
def test_the_spec_counts_what_the_reference_computes():
    report = assert_counts_equal(SPEC, EfficientNetB0(), trainable=5_288_548, gmacs=0.39)  # torchvision's figures
    assert report.output_shape == (1000,)


@pytest.mark.slow
def test_with_the_reference_weights_the_spec_computes_the_same_function():
    assert_same_function(SPEC, EfficientNetB0(), batch=2)
