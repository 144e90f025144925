"""The run's files opened in the desktop tools researchers use, headless: QGIS 3 (Debian's qgis and
python3-qgis), GDAL's gdalinfo and GNU PSPP. What they show is checked from what they report and from
the pixels QGIS renders.

`make desktop-tools` (which `make test` runs) installs them with apt-get. QGIS's Python bindings work
only with Debian's /usr/bin/python3, so QGIS runs tests/products/qgis_view.py as a subprocess. The QGIS
renders are kept in build/test-artifacts/qgis/.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import rasterio
from PIL import Image

from pipeline.results import open_run

from conftest import ROOT

ARTEFACTS = ROOT / "build" / "test-artifacts" / "qgis"
SYSTEM_PYTHON = "/usr/bin/python3"
INSTALL = ("run `make desktop-tools` (or, as root: apt-get update && apt-get install -y --no-install-recommends "
           "qgis python3-qgis gdal-bin pspp)")
VIEW = Path(__file__).with_name("qgis_view.py")


def _need(command: list[str], what: str) -> None:
    try:
        ok = subprocess.run(command, capture_output=True, timeout=120).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        ok = False
    if not ok:
        pytest.fail(f"these tests need {what}: {INSTALL}")


@pytest.fixture(scope="module")
def aoi_copy(demo_run, tmp_path_factory) -> Path:
    """The small demo's AOI folder, copied (QGIS must not touch the session's run)."""
    target = tmp_path_factory.mktemp("desktop") / "demo_mine"
    shutil.copytree(demo_run / "outputs" / "demo_small" / "demo_mine", target,
                    ignore=shutil.ignore_patterns("*.mp4", ".midr"))
    return target


@pytest.fixture(scope="module")
def qgis(aoi_copy, tmp_path_factory) -> dict:
    """What QGIS 3 makes of the run's files (one QGIS session): the 2018 composite with its style and
    without it, the 2018 class map alone (its .tif and the .tif.aux.xml beside it, no .qml), the 2018
    confidence map with its style, the validation sample. Renders in build/test-artifacts/qgis/."""
    _need([SYSTEM_PYTHON, "-c", "import qgis.core"], "QGIS's Python bindings (python3-qgis)")
    work = tmp_path_factory.mktemp("qgis")
    alone = work / "alone"
    alone.mkdir()
    for name in ("2018.tif", "2018.tif.aux.xml"):
        shutil.copy(aoi_copy / "classes" / name, alone / name)
    shutil.copy(aoi_copy / "composites" / "2018.tif", alone / "composite_2018.tif")  # no style beside it
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    before = sorted(p.relative_to(aoi_copy) for p in aoi_copy.rglob("*"))
    layer = _gpkg_layers(aoi_copy / "validation" / "sample_design.gpkg")[0]
    jobs = [{"raster": str(aoi_copy / "composites" / "2018.tif"), "png": str(ARTEFACTS / "composite_2018.png")},
            {"raster": str(alone / "composite_2018.tif"), "png": str(ARTEFACTS / "composite_2018_without_style.png")},
            {"raster": str(alone / "2018.tif"), "png": str(ARTEFACTS / "classes_2018_file_alone.png")},
            {"raster": str(aoi_copy / "classes" / "2018_confidence.tif"), "png": str(ARTEFACTS / "confidence_2018.png")},
            {"vector": str(aoi_copy / "validation" / "sample_design.gpkg"), "layer": layer}]
    (work / "jobs.json").write_text(json.dumps(jobs))
    result = subprocess.run([SYSTEM_PYTHON, str(VIEW), str(work / "jobs.json")], capture_output=True, text=True,
                            timeout=300, env={**os.environ, "QT_QPA_PLATFORM": "offscreen",
                                              "XDG_RUNTIME_DIR": str(work)})
    assert result.returncode == 0, result.stderr[-3000:]
    composite, bare, classes, confidence, sample = json.loads(result.stdout)
    after = sorted(p.relative_to(aoi_copy) for p in aoi_copy.rglob("*"))
    return {"composite": composite, "bare": bare, "classes": classes, "confidence": confidence, "sample": sample,
            "added": sorted(set(after) - set(before))}


def _gpkg_layers(path: Path) -> list[str]:
    import pyogrio

    return [str(name) for name, _ in pyogrio.list_layers(path) if name != "layer_styles"]


def _rendered(job: dict) -> np.ndarray:
    return np.asarray(Image.open(job["png"]).convert("RGB")).astype(int)


def test_qgis_opens_a_composite_in_true_colour(qgis, aoi_copy):
    """Water blue, vegetation green: from the pixels QGIS renders, where the run's class map says water
    and tree cover. Without its style QGIS shows bands 1-2-3 (blue, green, red) as red, green, blue."""
    renderer = qgis["composite"]["renderer"]
    assert qgis["composite"]["style_uri"].endswith("2018.qml")
    assert renderer["type"] == "multibandcolor" and renderer["bands"] == [3, 2, 1]
    assert [name.split(": ")[-1] for name in renderer["band_names"]] == ["red", "green", "blue"]
    low, high = renderer["limits"][0]
    assert renderer["limits"] == [[low, high]] * 3 and 0 <= low < high < 0.5  # one reflectance stretch
    with rasterio.open(aoi_copy / "classes" / "2018.tif") as src:
        classes = src.read(1)
    image, bare = _rendered(qgis["composite"]), _rendered(qgis["bare"])
    assert image.shape[:2] == classes.shape  # one screen pixel per raster pixel
    water, trees = image[classes == 1].mean(axis=0), image[classes == 2].mean(axis=0)
    assert water[2] > water[0] + 10, water                         # the river: more blue than red
    assert trees[1] > trees[0] and trees[1] > trees[2], trees       # tree cover: green
    water = bare[classes == 1].mean(axis=0)
    assert water[0] > water[2], water                              # without the style: a brown river
    assert qgis["bare"]["renderer"]["bands"] == [1, 2, 3]  # the problem the style solves


def test_a_class_map_alone_shows_its_class_names_and_colours_in_qgis(qgis, demo_run):
    """The .tif and its .tif.aux.xml, no .qml: QGIS 3.22 labels the classes from the GDAL category names."""
    run = open_run(demo_run / "outputs" / "demo_small")
    assert qgis["classes"]["style_uri"].endswith("2018.qml") and qgis["classes"]["renderer"]["type"] == "paletted"
    legend = {label: colour for label, colour in qgis["classes"]["renderer"]["legend"]}
    assert {c.name: c.colour for c in run.classes}.items() <= legend.items()
    image = _rendered(qgis["classes"])
    built = np.array([int(run.classes[4].colour[i:i + 2], 16) for i in (1, 3, 5)])
    assert run.classes[4].name == "built-up" and (np.abs(image - built).max(axis=-1) == 0).any()


def test_qgis_stretches_the_confidence_map_over_its_values(qgis, aoi_copy):
    renderer = qgis["confidence"]["renderer"]
    values = np.concatenate([rasterio.open(p).read(1).ravel() for p in sorted(aoi_copy.glob("classes/*_confidence.tif"))])
    values = values[np.isfinite(values)]
    assert renderer["type"] == "singlebandpseudocolor"
    assert renderer["min"] == pytest.approx(np.floor(np.percentile(values, 2) * 100) / 100, abs=0.011)
    assert renderer["min"] > values.min() - 0.01 and renderer["min"] > 0.2 and renderer["max"] == 1.0
    assert [label for label, _ in renderer["legend"]][0] == f"{renderer['min']:.2f}"


def test_the_validation_sample_opens_with_a_drop_down_of_class_names(qgis, demo_run):
    run = open_run(demo_run / "outputs" / "demo_small")
    fields = qgis["sample"]["fields"]
    names = [c.name for c in run.classes]
    reference, mapped = fields["reference_code"], fields["map_code"]
    assert reference["widget"] == "ValueMap" and reference["editable"]
    assert [next(iter(entry)) for entry in reference["config"]["map"]] == ["(not labelled yet)", *names]
    assert [list(entry.values())[0] for entry in reference["config"]["map"]][1:] == [str(c.code) for c in run.classes]
    assert reference["first_shown"] == "(not labelled yet)" and reference["alias"] == "Reference class (from imagery)"
    assert mapped["widget"] == "ValueMap" and not mapped["editable"]
    assert mapped["first_shown"] == names[int(mapped["first_value"]) - 1]
    assert qgis["sample"]["db_styles"] and qgis["sample"]["features"] > 100


def test_qgis_adds_no_file_to_the_run_folder(qgis):
    """With the styles' fixed stretches QGIS computes no statistics, so it writes no .aux.xml histograms."""
    assert qgis["added"] == []


def test_gdalinfo_lists_the_class_names_and_attribute_table(aoi_copy, demo_run):
    _need(["gdalinfo", "--version"], "GDAL's gdalinfo (gdal-bin)")
    info = json.loads(subprocess.run(["gdalinfo", "-json", str(aoi_copy / "classes" / "2018.tif")],
                                     capture_output=True, text=True, timeout=60, check=True).stdout)
    band = info["bands"][0]
    run = open_run(demo_run / "outputs" / "demo_small")
    assert band["categories"][1:7] == [c.name for c in run.classes]
    rows = [row["f"] for row in info["rat"]["row"]]
    assert [r[1] for r in rows] == [c.name for c in run.classes] and info["rat"]["tableType"] == "thematic"
    assert band["colorInterpretation"] == "Palette" and info["metadata"]["IMAGE_STRUCTURE"]["LAYOUT"] == "COG"
    composite = json.loads(subprocess.run(["gdalinfo", "-json", str(aoi_copy / "composites" / "2018.tif")],
                                          capture_output=True, text=True, timeout=60, check=True).stdout)
    interpretation = {b["description"]: b["colorInterpretation"] for b in composite["bands"]}
    assert (interpretation["red"], interpretation["green"], interpretation["blue"]) == ("Red", "Green", "Blue")
    assert interpretation["nir"] == "Undefined"


def test_pspp_shows_years_and_codes_without_decimals_and_the_measurement_levels(demo_run, tmp_path):
    _need(["pspp", "--version"], "GNU PSPP (pspp)")
    sav = demo_run / "outputs" / "demo_small" / "exports" / "events.sav"
    syntax = tmp_path / "check.sps"
    syntax.write_text(f"GET FILE='{sav}'.\nDISPLAY DICTIONARY.\nLIST /VARIABLES=zone class_code lifecycle_stage "
                      "year_start displaced_count effect_ha /CASES=FROM 1 TO 2.\n")
    shown = subprocess.run(["pspp", "--batch", "--output=-", "-O", "format=txt", "-O", "width=200", str(syntax)],
                           capture_output=True, text=True, timeout=60, check=True).stdout
    (ARTEFACTS.parent / "pspp").mkdir(parents=True, exist_ok=True)
    (ARTEFACTS.parent / "pspp" / "events_dictionary.txt").write_text(shown)

    def variable(name: str) -> list[str]:
        row = next(line for line in shown.splitlines() if re.match(rf"\|{name}\s*\|", line))
        return [cell.strip() for cell in row.strip("|").split("|")]

    for name, level, shown_as in (("zone", "Nominal", "F2.0"), ("class_code", "Nominal", "F2.0"),
                                  ("lifecycle_stage", "Ordinal", "F2.0"), ("year_start", "Scale", "F4.0"),
                                  ("displaced_count", "Scale", "F8.0"), ("effect_ha", "Scale", "F10.2"),
                                  ("company", "Nominal", "A27")):
        cells = variable(name)
        assert level in cells and shown_as in cells, (name, cells)
    data = shown.split("Data List")[1]
    assert re.search(r"\|\s+1\|\s+1\|\s+4\|\s+2018\|\s+240\|", data), data  # not 1.00, 2018.00, 240.00
    assert "2018.00" not in data
