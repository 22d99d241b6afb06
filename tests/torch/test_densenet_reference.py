"""specs/zoo/densenet121.yaml against DenseNet-121 written here as torchvision writes it
(torchvision.models.densenet: _DenseLayer, _DenseBlock, _Transition; its wheel does not load
against the CPU torch used here, so its model code is followed): parameters, batch-norm
statistics, FlopCounterMode MACs, the output, and torchvision's published 7,978,856 parameters."""
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import archcalc  # noqa: E402
from bundled import SPECS  # noqa: E402
from reference_check import assert_counts_equal, assert_same_function  # noqa: E402

SPEC = SPECS / "zoo/densenet121.yaml"
GROWTH, BN_SIZE, BLOCKS = 32, 4, (6, 12, 24, 16)


class DenseLayer(nn.Module):
    def __init__(self, cin):
        super().__init__()
        self.norm1, self.relu1 = nn.BatchNorm2d(cin), nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(cin, BN_SIZE * GROWTH, 1, bias=False)
        self.norm2, self.relu2 = nn.BatchNorm2d(BN_SIZE * GROWTH), nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(BN_SIZE * GROWTH, GROWTH, 3, padding=1, bias=False)

    def forward(self, features):  # a list of the tensors before, as torchvision passes them
        x = torch.cat(features, 1)
        return self.conv2(self.relu2(self.norm2(self.conv1(self.relu1(self.norm1(x))))))


class DenseBlock(nn.ModuleList):
    def forward(self, x):
        features = [x]
        for layer in self:
            features.append(layer(features))
        return torch.cat(features, 1)


class DenseNet121(nn.Module):
    def __init__(self):
        super().__init__()
        layers = [nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True),
                  nn.MaxPool2d(3, 2, 1)]
        c = 64
        for i, n in enumerate(BLOCKS):
            layers.append(DenseBlock([DenseLayer(c + j * GROWTH) for j in range(n)]))
            c += n * GROWTH
            if i != len(BLOCKS) - 1:
                layers += [nn.BatchNorm2d(c), nn.ReLU(inplace=True), nn.Conv2d(c, c // 2, 1, bias=False),
                           nn.AvgPool2d(2, 2)]
                c //= 2
        layers.append(nn.BatchNorm2d(c))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(c, 1000)

    def forward(self, x):
        out = nn.functional.adaptive_avg_pool2d(nn.functional.relu(self.features(x)), 1)
        return self.classifier(torch.flatten(out, 1))


@pytest.mark.slow
def test_the_spec_counts_what_the_reference_computes():
    report = assert_counts_equal(SPEC, DenseNet121(), trainable=7_978_856, gmacs=2.83)  # torchvision's figures
    assert report.output_shape == (1000,)


@pytest.mark.slow
def test_with_the_reference_weights_the_spec_computes_the_same_function():
    assert_same_function(SPEC, DenseNet121())
