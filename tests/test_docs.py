"""Documentation that must not drift from the code."""
from pathlib import Path

from archcalc.layers import KINDS
from archcalc.layers._reference import markdown_reference

ROOT = Path(__file__).resolve().parent.parent


def test_layer_reference_is_in_sync():
    # Regenerate with: archcalc kinds --markdown > docs/layers.md
    assert (ROOT / "docs" / "layers.md").read_text() == markdown_reference()


def test_every_kind_has_a_summary_and_formulas():
    for name, layer in KINDS.items():
        assert layer.summary, name
        assert set(layer.formulas) >= {"output", "params", "macs", "rf"}, name


def test_spec_doc_names_every_error_class_and_convention():
    text = (ROOT / "docs" / "spec.md").read_text()
    for phrase in ("FlopCounterMode", "2C trainable", "num_batches_tracked", "Araujo", "global",
                   "did-you-mean", "100,000", "repeat", "from"):
        assert phrase in text, phrase


def test_spec_doc_json_example_matches_resnet18():
    import json
    import re

    import archcalc

    text = (ROOT / "docs" / "spec.md").read_text()
    report = archcalc.analyze(ROOT / "specs" / "zoo" / "resnet18.yaml").to_json()
    block = re.search(r'"totals": (\{.*?\})\}', text, re.S).group(1)
    assert json.loads(block) == report["totals"]
    assert json.dumps(report["layers"][0])[1:-1].split(", \"activation_bytes\"")[0] in " ".join(text.split())


def test_homework_doc_shows_current_output():
    from typer.testing import CliRunner

    from archcalc.cli import app

    text = (ROOT / "docs" / "homework.md").read_text()
    spec = ROOT / "specs" / "homework" / "conv_pool_fc.yaml"
    analyzed = CliRunner().invoke(app, ["analyze", str(spec)]).stdout
    for line in analyzed.splitlines()[3:]:
        assert line.rstrip() in text, line
    explained = CliRunner().invoke(app, ["explain", str(spec), "conv1", "pool1", "fc"]).stdout
    for line in explained.splitlines():
        assert line.rstrip() in text, line


def test_homework_doc_shows_the_current_solution_sheet_and_grades(tmp_path):
    """The TA's walk in docs/homework.md shows what `archcalc key` and `archcalc grade` print now."""
    from typer.testing import CliRunner

    from archcalc.cli import app

    text = (ROOT / "docs" / "homework.md").read_text()
    homework = ROOT / "specs" / "homework"
    sheet = CliRunner().invoke(app, ["key", str(homework / "written_assignment_1.key.yaml")]).stdout
    lines = [line for line in sheet.splitlines() if line.strip() and not line.startswith("```")]
    assert len(lines) > 20
    for line in lines:
        assert line.strip() in text, line
    csv = tmp_path / "grades.csv"
    import os

    cwd = os.getcwd()
    os.chdir(ROOT)  # the CSV's notes name the files as given, relative to the repository
    try:
        CliRunner().invoke(app, ["grade", str(homework / "written_assignment_2.key.yaml"),
                                 "tests/homework/class/wa2_colour/", "--csv", str(csv)])
    finally:
        os.chdir(cwd)
    for line in csv.read_text().splitlines():
        assert line in text, line


def test_homework_doc_lists_every_diagnosed_mistake():
    """docs/homework.md's catalogue table is the registry's own (regenerate it from
    archcalc.homework.mistakes.catalogue_markdown() when a rule is added)."""
    from archcalc.homework.mistakes import catalogue_markdown

    assert catalogue_markdown().strip() in (ROOT / "docs" / "homework.md").read_text()


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as '-'."""
    import re

    text = heading.strip().lower().replace("`", "")
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def test_links_between_docs_reach_a_file_and_heading():
    import re

    root = Path(__file__).resolve().parents[1]
    pages = [root / "README.md", *sorted((root / "docs").glob("*.md"))]
    checked = 0
    for page in pages:
        text = page.read_text()
        for target, anchor in re.findall(r"\]\(([\w./-]*\.md)?(?:#([\w-]+))?\)", text):
            if not target and not anchor:
                continue
            path = (page.parent / target) if target else page
            assert path.exists(), f"{page.name}: link to missing {target}"
            if anchor:
                headings = {_slug(h) for h in re.findall(r"^#+ (.+)$", path.read_text(), flags=re.M)}
                assert anchor in headings, f"{page.name}: no heading '#{anchor}' in {path.name}"
            checked += 1
    assert checked >= 10
