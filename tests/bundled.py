"""The bundled specs, for tests that run over all of them (importable from every test folder:
tests/conftest.py puts this folder on sys.path)."""
from pathlib import Path

import archcalc

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
#: Every spec file; answers files (*.answers.yaml) and answer keys (*.key.yaml, for `archcalc grade`)
#: sit beside the homework specs and are not specs.
SPEC_FILES = sorted(p for p in SPECS.rglob("*.yaml") if not p.name.endswith((".answers.yaml", ".key.yaml")))
#: Sizes given to symbolic specs (homework: input [1, H, W]) where a test needs numbers.
EXAMPLE_SIZE = 28


#: Above this many parameters a bundled model (LLaMA, GPT-3) is built on the meta device: shapes,
#: counts and FlopCounterMode work there without allocating its weights.
LARGE_PARAMS = 200_000_000


def torch_device(graph) -> str:
    """Where tests build a bundled spec's PyTorch module."""
    return "meta" if archcalc.analyze(graph).totals.params > LARGE_PARAMS else "cpu"


def numeric_graph(path):
    """The spec's graph, with its size symbols (if any) set to EXAMPLE_SIZE."""
    graph = archcalc.load_spec(path)
    if graph.symbols:
        graph = archcalc.load_spec(path, bindings={name: EXAMPLE_SIZE for name in graph.symbols})
    return graph
