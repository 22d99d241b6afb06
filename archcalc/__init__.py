"""archcalc: exact output shapes, parameters, MACs and receptive fields of neural networks
written as YAML specs, computed analytically (no weights are allocated, torch is not imported)."""
import sys as _sys
import types as _types

__version__ = "0.1.0"
__all__ = ["SpecError", "analyze", "analyze_text", "explain", "from_module", "import_source", "load_graph",
           "load_spec", "parse_spec", "plan_memory", "__version__"]


# Every public name is imported on first use (PEP 562), so `import archcalc` costs next to nothing:
# the command line imports only what its command needs (issue 14 point 8), and the console entry
# point (archcalc.__main__.main) is running, and catches Ctrl-C, before any of it is imported.
# `archcalc.from_module` never imports torch before it is called.
_LAZY = {
    "analyze": "archcalc.api", "analyze_text": "archcalc.api", "load_graph": "archcalc.api",
    "load_spec": "archcalc.api", "parse_spec": "archcalc.api",
    "SpecError": "archcalc.errors",
    "explain": "archcalc.explain",
    "import_source": "archcalc.importers",
    "from_module": "archcalc.importers.module",
    "plan_memory": "archcalc.analysis.memory",
}


def __getattr__(name):
    import importlib

    module = _LAZY.get(name)
    if module is None:
        # A subpackage by its name (`import archcalc; archcalc.analysis.memory`, `archcalc.errors`),
        # as when this file imported the API up front, which imported them all: imported on use.
        if not name.startswith("_") and name.isidentifier():
            import importlib.util

            if importlib.util.find_spec(f"{__name__}.{name}") is not None:
                return importlib.import_module(f"{__name__}.{name}")
        raise AttributeError(f"module 'archcalc' has no attribute {name!r}")

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))


class _Package(_types.ModuleType):
    """`archcalc.explain` is the function (archcalc.explain.explain), though a module of the same
    name exists: Python's import sets the attribute `explain` of this package to the submodule when
    it is first imported (`from archcalc.explain import text`, anywhere); the function is kept."""

    def __setattr__(self, name, value):
        if name == "explain" and isinstance(value, _types.ModuleType) and hasattr(value, "explain"):
            value = value.explain
        super().__setattr__(name, value)


_sys.modules[__name__].__class__ = _Package
