"""archcalc: exact output shapes, parameters, MACs and receptive fields of neural networks
written as YAML specs, computed analytically (no weights are allocated, torch is not imported)."""
from archcalc.api import analyze, analyze_text, load_graph, load_spec, parse_spec
from archcalc.errors import SpecError
# `archcalc.explain` is the function (archcalc.explain.explain); code inside the package imports
# the module's names with `from archcalc.explain import ...`, which reads the module itself.
from archcalc.explain import explain

from archcalc.importers import import_source

__version__ = "0.1.0"
__all__ = ["SpecError", "analyze", "analyze_text", "explain", "from_module", "import_source", "load_graph",
           "load_spec", "parse_spec", "plan_memory", "__version__"]


def __getattr__(name):
    """`archcalc.from_module(module, input_shape)` (the spec's text of an nn.Module) is imported on
    first use, so `import archcalc` never imports torch; `plan_memory` too (the memory tables)."""
    if name == "from_module":
        from archcalc.importers.module import from_module

        return from_module
    if name == "plan_memory":
        from archcalc.analysis.memory import plan_memory

        return plan_memory
    raise AttributeError(f"module 'archcalc' has no attribute {name!r}")
