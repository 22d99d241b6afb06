"""PyTorch backend (imported only when asked for): build a spec as a real `nn.Module`."""
from archcalc.torch.build import SpecModule, build

__all__ = ["SpecModule", "build"]
