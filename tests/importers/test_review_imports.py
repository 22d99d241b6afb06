"""Review of the importers (issue 12): cases found by trying to break them, each checked against
the reference (transformers' own module with the same weights, or PyTorch)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_hf_config import _DROP, _same_as_hf, _write, hf  # noqa: E402,F401  (hf: the fixture)

_LLAMA3 = {"rope_type": "llama3", "rope_theta": 5e5, "factor": 8.0, "low_freq_factor": 1.0,
           "high_freq_factor": 4.0, "original_max_position_embeddings": 16}


@pytest.mark.parametrize("base, changes", [
    # transformers reads `rope_scaling or rope_parameters`: a rope_scaling that is not empty replaces
    # rope_parameters whole, its theta included (rope_parameters' 5e5 is not used: base 10000)
    ("tiny_llama", {"rope_parameters": _LLAMA3, "rope_scaling": {"rope_type": "default"}}),
    ("tiny_llama", {"rope_parameters": {"rope_type": "default", "rope_theta": 5e5},
                    "rope_scaling": {"rope_type": "linear", "factor": 2.0}}),
    ("tiny_llama", {"rope_parameters": _LLAMA3, "rope_scaling": {}}),  # empty: rope_parameters is read
    # original_max_position_embeddings left out: max_position_embeddings, as transformers' standardize_rope_params
    ("tiny_gemma", {"rope_parameters": {"rope_type": "llama3", "factor": 4.0, "low_freq_factor": 1.0,
                                        "high_freq_factor": 4.0}, "max_position_embeddings": 16}),
    ("tiny_llama", {"rope_parameters": _DROP, "max_position_embeddings": 16,
                    "rope_scaling": {"type": "llama3", "factor": 4.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0}}),
    ("tiny_mixtral", {"rope_parameters": _DROP, "rope_scaling": {"type": "linear", "factor": 2.0}}),  # base 1e6
    ("tiny_llama", {"rope_parameters": _DROP, "rope_scaling": {"type": "default", "rope_type": "linear", "factor": 2.5}}),
])
def test_rope_layouts_are_the_same_function_as_transformers(hf, tmp_path, base, changes):  # noqa: F811
    folder = _write(tmp_path, base, **changes).parent
    _same_as_hf(hf, folder, family=base)
