"""Every registered layer kind is exercised by a hand-value test file and by a PyTorch
cross-check file in this folder."""
import re
from pathlib import Path

import pytest

from archcalc.layers import KINDS

HERE = Path(__file__).parent


def _text(pattern):
    return "\n".join(p.read_text() for p in sorted(HERE.glob(pattern)))


TORCH = _text("test_*_torch.py")
HAND = "\n".join(p.read_text() for p in sorted(HERE.glob("test_*.py"))
                 if not p.name.endswith("_torch.py") and p.name != Path(__file__).name)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_kind_is_covered(kind):
    used = re.compile(r'(?<![\w.])' + re.escape(kind) + r'(?=[:"}])')
    assert used.search(HAND), f"no hand-value test uses {kind}"
    assert used.search(TORCH), f"no PyTorch cross-check uses {kind}"
