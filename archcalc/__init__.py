"""archcalc: exact output shapes, parameters, MACs and receptive fields of neural networks
written as YAML specs, computed analytically (no weights are allocated, torch is not imported)."""
from archcalc.api import analyze, analyze_text, load_spec, parse_spec
from archcalc.errors import SpecError

__version__ = "0.1.0"
__all__ = ["SpecError", "analyze", "analyze_text", "load_spec", "parse_spec", "__version__"]
