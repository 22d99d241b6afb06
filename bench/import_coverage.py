"""Round-trip every torchvision classification model through `archcalc import` and print a table.

    python bench/import_coverage.py [NAME ...]          # torchvision
    python bench/import_coverage.py --timm [NAME ...]   # a broad timm selection (where timm imports)

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
TIMM = ["cspresnet50", "convnext_tiny", "deit_tiny_patch16_224", "densenet121", "dla34", "dpn68", "edgenext_small",
        "efficientnet_b0", "efficientnet_lite0", "ghostnet_100", "hrnet_w18_small", "inception_v3", "levit_128",
        "mixer_b16_224", "mobilenetv3_large_100", "mobilevit_s", "regnety_002", "repvgg_a2", "res2net50_26w_4s",
        "resnest14d", "resnet18", "resnet50d", "rexnet_100", "selecsls42b", "swin_tiny_patch4_window7_224",
        "tf_mobilenetv3_small_100", "tresnet_m", "vit_tiny_patch16_224", "xception41"]


def models_to_run(models, names=None):
    all_names = sorted(models.list_models(module=models))
    return [n for n in all_names if not names or n in names]


def round_trip(models, name, library="torchvision"):
    """(lines, result) where result is "equal", "figures differ: ..." or the refusal's message."""
    import torch

    from archcalc.errors import SpecError
    from archcalc.importers.module import compare, from_module

    torch.manual_seed(0)
    try:
        if library == "torchvision":
            module = models.get_model(name, weights=None)
        else:
            import timm  # it imports torchvision, which torchvision_models() (called first) made importable

            module = timm.create_model(name, pretrained=False)
    except Exception as exc:  # noqa: BLE001 - a model that does not build here is a row, not a stop
        return None, f"does not build: {type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0]}"
    shape = INPUT.get(name, (3, 224, 224))
    if library == "timm":
        shape = tuple(module.pretrained_cfg.get("input_size", shape)) if hasattr(module, "pretrained_cfg") else shape
    try:
        text = from_module(module, shape, source=f"{library}:{name}", name=name)
    except SpecError as exc:
        return None, f"refused: {getattr(exc, 'message', exc)}"
    lines = len(text.splitlines())
    try:
        result = compare(module, text)
    except SpecError as exc:
        return lines, f"round trip failed: {getattr(exc, 'message', exc)}"
    if result["equal"]:
        return lines, "equal"
    diff = [f"{k} {result['spec'][k]} vs {result['module'][k]}" for k in result["spec"]
            if result["spec"][k] != result["module"][k]]
    return lines, "differs: " + ("; ".join(diff) or f"outputs differ by {result['max_abs_diff']:.3g}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*")
    parser.add_argument("--timm", action="store_true", help="a broad timm selection instead of torchvision")
    args = parser.parse_args(argv)
    from tests.torchvision_models import torchvision_models

    models = torchvision_models()
    if models is None:
        print("torchvision does not import here: nothing to measure")
        return 1
    library = "timm" if args.timm else "torchvision"
    names = [n for n in TIMM if not args.names or n in args.names] if args.timm else models_to_run(models, args.names)
    rows, start = [], time.time()
    for name in names:
        lines, result = round_trip(models, name, library)
        rows.append((name, lines, result))
        print(f"{name}: {lines} lines, {result}", file=sys.stderr, flush=True)
    equal = sum(r[2] == "equal" for r in rows)
    print(f"{equal} of {len(rows)} {library} classification models round-trip with every figure equal "
          f"({time.time() - start:.0f} s)\n")
    print("| model | spec lines | figures |")
    print("| --- | ---: | --- |")
    for name, lines, result in rows:
        cell = result.replace("|", "\\|")
        print(f"| {name} | {lines if lines is not None else '—'} | {cell} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
