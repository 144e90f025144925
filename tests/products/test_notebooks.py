"""The notebooks run top to bottom on the small demo and show what a user opens them for."""

from __future__ import annotations

import re

import geopandas as gpd
import pytest

from pipeline.results import open_run

from conftest import ROOT

NOTEBOOKS = ROOT / "notebooks"
COUNTRIES = ["Brazil", "Chile", "Colombia", "Democratic Republic of the Congo", "Germany", "Ghana", "India",
             "Mongolia", "Mozambique", "Papua New Guinea", "Peru", "South Africa", "Sweden", "United States",
             "Zimbabwe"]


@pytest.fixture
def execute(demo_run, monkeypatch, tmp_path):
    """Run a notebook of notebooks/ as a user would (from its folder) on the small demo run."""
    import nbclient
    import nbformat

    monkeypatch.setenv("MIDR_RUN_DIR", str(demo_run / "outputs" / "demo_small"))
    monkeypatch.setenv("MIDR_DATA_DIR", str(demo_run / "data"))
    monkeypatch.setenv("MIDR_WORK_DIR", str(tmp_path))

    def run(name: str):
        notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
        for cell in notebook.cells:  # the stored outputs (of the full demo) go: these come from the small one
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = [], None
        nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                                resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
        return notebook

    return run


def _outputs(notebook, source_start: str | None = None) -> list[dict]:
    return [o for c in notebook.cells if c.cell_type == "code"
            and (source_start is None or c.source.startswith(source_start)) for o in c.outputs]


def _printed(notebook) -> str:
    return "".join(o.get("text", "") for o in _outputs(notebook) if o.get("name") == "stdout")


def _shown(notebook, source_start: str | None = None) -> str:
    """The plain-text form of every displayed result (tables, series)."""
    return "\n".join(o["data"]["text/plain"] for o in _outputs(notebook, source_start)
                     if "text/plain" in o.get("data", {}))


def _images(notebook) -> int:
    return sum(bool({"image/png", "image/jpeg"} & set(o.get("data", {}))) for o in _outputs(notebook))


def _number(pattern: str, text: str) -> float:
    match = re.search(pattern, text)
    assert match, f"{pattern!r} not printed in:\n{text}"
    return float(match.group(1))


@pytest.mark.parametrize("name", sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")))
def test_notebooks_are_stored_with_small_outputs_of_a_run_on_the_demo(name):
    """What the repository page shows: every code cell run once, in order, on the demo (`make notebooks`),
    no error, figures included, no folder of the machine that ran them, small enough to open."""
    import nbformat

    path = NOTEBOOKS / name
    notebook = nbformat.read(path, as_version=4)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1)), "not run top to bottom in one go"
    outputs = [o for c in code for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert sum(bool({"image/png", "image/jpeg"} & set(o.get("data", {}))) for o in outputs) >= 2
    assert "run 'demo'" in "".join(o.get("text", "") for o in outputs if o.get("name") == "stdout")
    text = path.read_text()
    assert not re.search(r"(/work/|/home/|/tmp/|/root/|[A-Z]:\\\\Users)", text), "absolute paths in the outputs"
    assert path.stat().st_size < 2_000_000


def test_the_aoi_notebook_shows_scenes_composites_ndvi_classes_and_video(execute):
    notebook = execute("01_explore_aoi.ipynb")
    printed = _printed(notebook)
    assert "run 'demo_small': done, AOIs ['demo_mine']" in printed
    assert "18 acquisitions listed for demo_mine" in printed  # the small demo: 3 scenes a year, 2016-2021
    # scene inventory, true and false colour, NDVI, class maps, class areas, the video's poster
    assert _images(notebook) == 7
    ndvi_table = _shown(notebook, "zones = ")
    assert "origin community (demo_mine_village_a)" in ndvi_table and "whole AOI" in ndvi_table
    assert any("<video" in o.get("data", {}).get("text/html", "") for o in _outputs(notebook))
    assert not [o for o in _outputs(notebook) if o.get("name") == "stderr"], "warnings in the notebook"


def test_the_classifier_notebook_trains_assesses_and_plans_a_validation_round(execute, demo_run, tmp_path):
    notebook = execute("02_train_and_assess_classifier.ipynb")
    printed = _printed(notebook)
    assert 0.9 <= _number(r"hold-out overall accuracy (\d\.\d+)", printed) <= 1
    assert 0.8 <= _number(r"spatial CV overall accuracy (\d\.\d+)", printed) <= 1
    assert 0.9 <= _number(r"whole map against the truth: overall accuracy (\d\.\d+)", printed) <= 1
    planned = int(_number(r"(\d+) points allocated", printed))
    run = open_run(demo_run / "outputs" / "demo_small")
    run_design = gpd.read_file(run.layout.sample_design("demo_mine"), layer="demo_mine validation sample 2021")
    design = gpd.read_file(tmp_path / "demo_mine_sample_design.gpkg", layer="demo_mine validation sample 2021")
    assert len(design) == planned == len(run_design)  # the notebook draws the run's own sample
    assert design.geometry.geom_equals(run_design.geometry).all() and design["reference_code"].isna().all()
    assert gpd.list_layers(tmp_path / "demo_mine_sample_design.gpkg")["name"].tolist() == [
        "demo_mine validation sample 2021", "layer_styles"]  # with its drop-down of class names for QGIS
    labelled = gpd.read_file(tmp_path / "demo_mine_sample_labelled.gpkg", layer=0)
    assert len(labelled) == planned and labelled["reference_code"].notna().all()
    assert 0.9 <= _number(r"design-based overall accuracy (\d\.\d+)", printed) <= 1
    assert _images(notebook) == 2  # the confusion matrix and the area estimates
    assert "adjusted_area_ha" in _shown(notebook, "plots.area_estimates_figure")


def test_the_events_notebook_summarises_effects_and_cases_by_country_commodity_and_stage(execute):
    notebook = execute("03_events_across_aois.ipynb")
    overview = _shown(notebook, "events = ")
    assert re.search(r"events\s+29\b", overview) and re.search(r"countries\s+15\b", overview)
    by_country = _shown(notebook, "by_country = ")
    assert [c for c in COUNTRIES if c not in by_country] == []
    assert re.search(r"Germany\s+5\s+5\b", by_country)  # five German cases, each with a displaced count
    assert "gold" in _shown(notebook, "by_commodity = ") and "construction" in _shown(notebook, "by_stage = ")
    effects = _shown(notebook, "baci = ")
    assert "demo_mine_village_a" in effects and "Mozambique" in effects
    assert "Mozambique" in _shown(notebook, "summary = ")
    assert _images(notebook) == 5  # BACI effects, country, commodity, stage, timeline
