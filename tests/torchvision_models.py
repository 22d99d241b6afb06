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

import contextlib
import functools
import sys


@contextlib.contextmanager
def _skip_failing_registrations():
    import torch.library as library

    saved = {name: getattr(library, name) for name in ("register_fake", "register_autograd", "impl_abstract")
             if hasattr(library, name)}

    def tolerant(original):
        @functools.wraps(original)
        def register(qualname, *args, **kwargs):
            if not (isinstance(qualname, str) and qualname.startswith("torchvision::")):
                return original(qualname, *args, **kwargs)
            try:
                result = original(qualname, *args, **kwargs)
            except RuntimeError:  # the operator does not exist: the C extension did not load
                return (lambda fn: fn) if not args else None
            if callable(result) and not args:  # used as a decorator: tolerate the registration too
                def decorate(fn):
                    try:
                        return result(fn)
                    except RuntimeError:
                        return fn
                return decorate
            return result
        return register

    for name, original in saved.items():
        setattr(library, name, tolerant(original))
    try:
        yield
    finally:
        for name, original in saved.items():
            setattr(library, name, original)


@functools.lru_cache(maxsize=None)
def torchvision_models():
    """`torchvision.models`, or None where torchvision (or torch) is not installed or its model
    code does not import even with the failing registrations skipped."""
    try:
        import torch  # noqa: F401
    except ImportError:
        return None
    if "torchvision" in sys.modules and hasattr(sys.modules["torchvision"], "models"):
        return sys.modules["torchvision"].models
    for name in [n for n in sys.modules if n == "torchvision" or n.startswith("torchvision.")]:
        del sys.modules[name]  # a failed earlier import leaves half-initialised modules behind
    try:
        with _skip_failing_registrations():
            import torchvision.models as models
    except Exception:  # noqa: BLE001 - any failure means: no torchvision here
        return None
    return models
