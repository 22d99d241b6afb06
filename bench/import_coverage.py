"""Round-trip every torchvision classification model through `archcalc import` and print a table.

    python bench/import_coverage.py [--markdown] [NAME ...]

For each model (random weights, eval mode, input [3, 224, 224]; inception_v3 [3, 299, 299]):
import it (`archcalc.importers.module.from_module`), analyse the spec, build it with
`archcalc.torch.build`, load the model's `state_dict` and run both on one random image. A row says
how many lines the imported spec has and whether every figure is equal (trainable and non-trainable
parameters, MACs = FlopCounterMode's FLOPs / 2, output shape, and the outputs within 1e-4 relative),
or the construct the import refused (its error message, which names it, its class and where it sits).

torchvision is imported with tests/torchvision_models.py (its C extension does not load here).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

INPUT = {"inception_v3": (3, 299, 299)}


def models_to_run(models, names=None):
    all_names = sorted(models.list_models(module=models))
    return [n for n in all_names if not names or n in names]


def round_trip(models, name):
    """(lines, result) where result is "equal", "figures differ: ..." or the refusal's message."""
    import torch

    from archcalc.errors import SpecError
    from archcalc.importers.module import compare, from_module

    torch.manual_seed(0)
    module = models.get_model(name, weights=None)
    shape = INPUT.get(name, (3, 224, 224))
    try:
        text = from_module(module, shape, source=f"torchvision:{name}", name=name)
    except SpecError as exc:
        return None, f"refused: {exc}"
    lines = len(text.splitlines())
    try:
        result = compare(module, text)
    except SpecError as exc:
        return lines, f"round trip failed: {exc}"
    if result["equal"]:
        return lines, "equal"
    diff = [f"{k} {result['spec'][k]} vs {result['module'][k]}" for k in result["spec"]
            if result["spec"][k] != result["module"][k]]
    return lines, "differs: " + ("; ".join(diff) or f"outputs differ by {result['max_abs_diff']:.3g}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*")
    args = parser.parse_args(argv)
    from tests.torchvision_models import torchvision_models

    models = torchvision_models()
    if models is None:
        print("torchvision does not import here: nothing to measure")
        return 1
    rows, start = [], time.time()
    for name in models_to_run(models, args.names):
        lines, result = round_trip(models, name)
        rows.append((name, lines, result))
        print(f"{name}: {lines} lines, {result}", file=sys.stderr, flush=True)
    equal = sum(r[2] == "equal" for r in rows)
    print(f"{equal} of {len(rows)} torchvision classification models round-trip with every figure equal "
          f"({time.time() - start:.0f} s)\n")
    print("| model | spec lines | figures |")
    print("| --- | ---: | --- |")
    for name, lines, result in rows:
        cell = result.replace("|", "\\|")
        print(f"| {name} | {lines if lines is not None else '—'} | {cell} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
