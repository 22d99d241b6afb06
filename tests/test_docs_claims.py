"""Claims in the docs about what archcalc can do, checked against the code (issue 14 point 11)."""
import re
from pathlib import Path

import archcalc
from archcalc.layers import KINDS

ROOT = Path(__file__).resolve().parent.parent
PEERS = (ROOT / "docs" / "peers.md").read_text()


def test_peers_names_the_kinds_that_count_macs_and_they_exist():
    intro = PEERS.split("\n## ")[0].split("That is exactly")[0]  # the paragraph on what counts
    named = re.findall(r"`([a-z_]+)`", intro)
    assert {"attention", "cross_attention", "window_attention", "moe", "mamba"} <= set(named)
    assert set(named) <= set(KINDS), set(named) - set(KINDS)
    # "no attention kind" was true once; nowhere outside the record of the 2026-11-26 run now
    prose = PEERS.split("\n## Measured tables")[0]
    assert "no attention kind" not in prose and "no archcalc kind" not in prose


def test_peers_figures_are_archcalcs():
    # the single MultiheadAttention(768, 12 heads) layer on 197 tokens: 4 projections of
    # 197 x 768 x 768 and 2 products of 197 x 197 x 768 (by hand) = 524,391,936
    layer = archcalc.analyze(archcalc.parse_spec("input: [197, 768]\nlayers:\n  - attention: {heads: 12}\n"))
    assert layer.totals.macs == 4 * 197 * 768 * 768 + 2 * 197 * 197 * 768 == 524_391_936
    assert "as 524,391,936, the `need_weights=True` figure" in PEERS
    vit = archcalc.analyze(ROOT / "specs" / "transformers" / "vit_b16.yaml").totals
    assert (vit.macs, vit.params) == (17_563_828_224, 86_567_656)
    assert "MACs 17,563,828,224, params 86,567,656" in " ".join(PEERS.split())


def test_readme_training_speed_names_its_machine_and_adds_up():
    readme = (ROOT / "README.md").read_text()
    unit = {"": 1, "k": 1e3, "M": 1e6, "G": 1e9}
    line = re.search(r"^epoch   5/5 .*? ([\d.]+) (k?)ex/s  ([\d.]+) ([MG]?)FLOP/s$", readme, re.M)
    assert line, "the README's training example"
    after = " ".join(readme[line.end():line.end() + 600].split())
    assert re.search(r"\d cores of an? [A-Z][\w ]+", after) and "torch 2.13.0+cpu" in after and "GPU" in after
    # achieved FLOP/s = 3 x 2 x MACs per example x examples/s (docs/train.md); digits_cnn: 309,248 MACs
    macs = archcalc.analyze(ROOT / "specs" / "lecture" / "digits_cnn.yaml").totals.macs
    assert macs == 309_248
    rate = float(line.group(1)) * unit[line.group(2)]
    flops = float(line.group(3)) * unit[line.group(4)]
    assert abs(6 * macs * rate - flops) <= 0.005 * flops
    # docs/train.md shows the same epoch line
    assert line.group(0) in (ROOT / "docs" / "train.md").read_text()


def test_readme_setup_makes_a_venv_and_keeps_two_commands():
    setup = (ROOT / "README.md").read_text().split("\n## Set-up\n", 1)[1].split("\n## ", 1)[0]
    assert "`python -m venv .venv && . .venv/bin/activate`" in setup
    assert ".venv/" in (ROOT / ".gitignore").read_text().split()  # "(`.venv/` is git-ignored)"
    blocks = re.findall(r"```sh\n(.*?)```", setup, flags=re.S)
    assert len(blocks) == 2 and "archcalc analyze" in blocks[0] and "pytest" in blocks[1]
    # the install sizes are given, with how they were measured
    assert "du -sh" in setup and re.search(r"\d+ MiB after the first command", " ".join(setup.split()))
    # and how long the tests take, with the machine and how many tests that was
    assert re.search(r"quick run took \d+ min \d+ s on \d{4}-\d\d-\d\d .*?\([\d,]+ tests", " ".join(setup.split()))


def test_readme_counts_the_kinds_there_are():
    # "lists the 70 layer kinds" stayed while kinds were added (81 on 2026-12-01)
    readme = " ".join((ROOT / "README.md").read_text().split())
    said = re.findall(r"lists the (\d+) layer kinds", readme)
    assert said == [str(len(KINDS))], (said, len(KINDS))
    assert len(re.findall(r"^## ", (ROOT / "docs" / "layers.md").read_text(), re.M)) == len(KINDS)


def test_readme_layout_names_every_package_folder_where_it_is():
    # the layout still said analysis/ held the receptive-field algebra after it moved to geometry/
    layout = (ROOT / "README.md").read_text().split("\n## Layout\n", 1)[1].split("```")[1]
    named = set(re.findall(r"^(archcalc/[\w./]+)", layout, re.M))
    folders = {f"archcalc/{p.name}/" for p in (ROOT / "archcalc").iterdir()
               if p.is_dir() and (p / "__init__.py").exists()}
    assert folders <= named, folders - named
    assert all((ROOT / name).exists() for name in named), [n for n in named if not (ROOT / n).exists()]
    rows = {m.group(1): m.group(2) for m in re.finditer(r"^(archcalc/\S+)\s+(.*)$", layout, re.M)}
    assert "receptive-field" not in rows["archcalc/analysis/"] and "receptive-field" in rows["archcalc/geometry/"]
    import archcalc.geometry.receptive_field  # noqa: F401  (where the layout says it is)


def _documented_keys(doc: str, lead: str) -> list[str]:
    """The top-level keys docs/json.md gives for the document introduced by `lead` (nested {...} dropped)."""
    body = " ".join(doc.split(lead, 1)[1].split("`{", 1)[1].split())
    depth, top = 0, []
    for ch in body:
        if ch == "}" and depth == 0:
            break
        depth += {"{": 1, "}": -1, "[": 1, "]": -1}.get(ch, 0)
        top.append(ch if depth == 0 else " ")
    return re.findall(r'"(\w+)"', "".join(top))


def test_json_doc_gives_the_parallel_and_saved_memory_documents_keys():
    import json

    import pytest
    from typer.testing import CliRunner

    from archcalc.cli import app

    doc = (ROOT / "docs" / "json.md").read_text()
    runner = CliRunner()
    plan = ["memory", "transformers:llama2_70b", "--gpus", "64", "--tp", "8", "--global-batch", "1024",
            "--dtype", "bfloat16", "--json"]
    got = json.loads(runner.invoke(app, plan).stdout)
    assert _documented_keys(doc, "`archcalc memory SPEC --gpus N ... --json`:") == list(got)
    assert got["version"] == archcalc.__version__ and got["config"]["dp"] == 64 // 8
    fit = json.loads(runner.invoke(app, plan[:-3] + ["--dtype", "bfloat16", "--fit", "--gpu-memory", "80GiB",
                                                     "--json"]).stdout)
    assert list(fit) == ["version", "gpu_memory_bytes", "fits", "configurations"]
    assert fit["gpu_memory_bytes"] == 80 * 2**30 and fit["fits"] == len(fit["configurations"]) > 0
    assert list(fit["configurations"][0]) == list(got)
    # every object says archcalc's version (each configuration said 1), and a key carries its unit once
    assert {c["version"] for c in fit["configurations"]} == {archcalc.__version__}
    timed = json.loads(runner.invoke(app, plan + ["--gpu-model", "h100-sxm", "--tokens", "2000000000000"]).stdout)
    keys = [k for section in ("memory", "schedule", "cost", "communication") for k in timed[section]]
    assert "model_flops" in timed["cost"] and not [k for k in keys if re.search(r"(_flops|_bytes|_s)\1", k)], keys
    # 6 x MACs x tokens per step: llama2_70b at 4,096 tokens, global batch 1024 (archcalc's own MACs)
    macs = archcalc.analyze(ROOT / "specs" / "transformers" / "llama2_70b.yaml").totals.macs
    assert timed["cost"]["model_flops"] == 6 * macs * 1024
    pytest.importorskip("torch")
    saved = json.loads(runner.invoke(app, ["verify", "--memory", "lecture:rf_stack_stride1", "--json"]).stdout)
    assert _documented_keys(doc, "`archcalc verify SPEC --memory --json`:") == list(saved)
    layer_keys = re.search(r'"layers": \[\{(.*?)\}\]', " ".join(doc.split("`archcalc verify SPEC --memory --json`:")[1]
                                                             .split()[:40]))
    assert re.findall(r'"(\w+)"', layer_keys.group(1)) == list(saved["layers"][0])


def test_the_python_apis_json_says_archcalcs_version_too():
    # docs/json.md: every document begins with archcalc's version; the memory plan's to_json() said 1
    # (the command line put the right one over it, a notebook saw 1)
    graph = archcalc.load_graph(ROOT / "specs" / "zoo" / "resnet18.yaml")
    plan = archcalc.plan_memory(graph, archcalc.analyze(graph)).to_json()
    assert list(plan)[0] == "version" and plan["version"] == archcalc.__version__
    assert archcalc.analyze(graph).to_json()["version"] == archcalc.__version__


def test_nothing_names_the_folders_as_they_were_before_the_renames():
    # archcalc/spec/ is archcalc/reader/, analysis/rf.py is geometry/receptive_field.py (issue 14
    # point 10); comments and docs that still said spec/parse.py sent readers to no file
    old = re.compile(r"(?<![\w/])(?:archcalc/)?spec/(?:parse|graph|expr|yaml_source|cli_text|bundled)\.py"
                     r"|archcalc/spec/|analysis/rf\.py|archcalc\.spec\.|archcalc\.analysis\.rf\b")
    files = [ROOT / "README.md", *(ROOT / "docs").glob("*.md"), *(ROOT / "archcalc").rglob("*.py"),
             *(ROOT / "tests").rglob("*.py"), *(ROOT / "bench").glob("*")]
    here = Path(__file__).resolve()
    found = [f"{p.relative_to(ROOT)}: {m.group()}" for p in files if p.is_file() and p.resolve() != here
             for m in old.finditer(p.read_text(errors="replace"))]
    assert found == []
