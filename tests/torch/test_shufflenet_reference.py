"""specs/zoo/shufflenet_v2.yaml against ShuffleNet V2 x1.0 written here as torchvision writes it
(torchvision.models.shufflenetv2; its wheel does not load against the CPU torch used here, so its
model code is followed line by line): parameters, batch-norm statistics, MACs under
FlopCounterMode and the output shape are equal, and so is torchvision's published 2,278,604."""
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import archcalc  # noqa: E402
from bundled import SPECS  # noqa: E402
from reference_check import assert_counts_equal, assert_same_function  # noqa: E402

SPEC = SPECS / "zoo/shufflenet_v2.yaml"


def channel_shuffle(x, groups):
    b, c, h, w = x.shape
    return x.view(b, groups, c // groups, h, w).transpose(1, 2).contiguous().view(b, c, h, w)


def depthwise(i, o, stride):
    return nn.Conv2d(i, o, 3, stride, 1, bias=False, groups=i)


class InvertedResidual(nn.Module):
    def __init__(self, inp, oup, stride):
        super().__init__()
        self.stride = stride
        branch = oup // 2
        if stride > 1:
            self.branch1 = nn.Sequential(depthwise(inp, inp, stride), nn.BatchNorm2d(inp),
                                         nn.Conv2d(inp, branch, 1, bias=False), nn.BatchNorm2d(branch),
                                         nn.ReLU(inplace=True))
        else:
            self.branch1 = nn.Sequential()
        self.branch2 = nn.Sequential(
            nn.Conv2d(inp if stride > 1 else branch, branch, 1, bias=False), nn.BatchNorm2d(branch),
            nn.ReLU(inplace=True), depthwise(branch, branch, stride), nn.BatchNorm2d(branch),
            nn.Conv2d(branch, branch, 1, bias=False), nn.BatchNorm2d(branch), nn.ReLU(inplace=True))

    def forward(self, x):
        if self.stride == 1:
            x1, x2 = x.chunk(2, dim=1)
            out = torch.cat((x1, self.branch2(x2)), dim=1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
        return channel_shuffle(out, 2)


class ShuffleNetV2(nn.Module):
    def __init__(self, repeats=(4, 8, 4), channels=(24, 116, 232, 464, 1024), classes=1000):
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv2d(3, channels[0], 3, 2, 1, bias=False), nn.BatchNorm2d(channels[0]),
                                   nn.ReLU(inplace=True))
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        stages, inp = [], channels[0]
        for n, out in zip(repeats, channels[1:4]):
            stages.append(nn.Sequential(InvertedResidual(inp, out, 2),
                                        *[InvertedResidual(out, out, 1) for _ in range(n - 1)]))
            inp = out
        self.stage2, self.stage3, self.stage4 = stages
        self.conv5 = nn.Sequential(nn.Conv2d(inp, channels[4], 1, 1, 0, bias=False), nn.BatchNorm2d(channels[4]),
                                   nn.ReLU(inplace=True))
        self.fc = nn.Linear(channels[4], classes)

    def forward(self, x):
        x = self.stage4(self.stage3(self.stage2(self.maxpool(self.conv1(x)))))
        return self.fc(self.conv5(x).mean([2, 3]))


@pytest.mark.slow
def test_the_spec_counts_what_the_reference_computes():
    report = assert_counts_equal(SPEC, ShuffleNetV2(), trainable=2_278_604, gmacs=0.14)  # torchvision's figures
    assert report.output_shape == (1000,)


@pytest.mark.slow
def test_with_the_reference_weights_the_spec_computes_the_same_function():
    """Equal outputs show the shuffle, the split and the concatenation are torchvision's."""
    assert_same_function(SPEC, ShuffleNetV2(), batch=2)
