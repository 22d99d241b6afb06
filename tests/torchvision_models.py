"""Import torchvision's model code in an environment where its C extension does not load.

torchvision's wheel here (0.28.0, installed with `pip install torchvision==0.28.0 --no-deps`) is
built against another torch: its `_C` extension fails to load, and importing `torchvision` then
stops at `torch.library.register_fake("torchvision::nms")` ("operator torchvision::nms does not
exist"). Its models are pure Python, so this helper imports it with the registrations of fake
(meta) kernels and autograd formulas for `torchvision::` operators skipped when they fail (the
detection ops nms, roi_align, ... are then unavailable; no classification model uses them).
Nothing else of torchvision is changed.

    from tests.torchvision_models import torchvision_models  # None where torchvision is absent
    models = torchvision_models()
    if models is None: pytest.skip(...)
"""
from __future__ import annotations

import functools
import sys


@functools.lru_cache(maxsize=None)
def torchvision_models():
    """`torchvision.models`, or None where torchvision (or torch) is not installed or its model
    code does not import even with the failing registrations skipped (the skipping itself is the
    module importer's, archcalc.importers.module: `archcalc import torchvision:NAME` needs it too)."""
    try:
        import torch  # noqa: F401
    except ImportError:
        return None
    if "torchvision" in sys.modules and hasattr(sys.modules["torchvision"], "models"):
        return sys.modules["torchvision"].models
    try:
        import torchvision.models as models

        return models
    except Exception:  # noqa: BLE001 - absent, or its C extension does not load against this torch
        from archcalc.importers.module import _torchvision_models_tolerant

        return _torchvision_models_tolerant()
