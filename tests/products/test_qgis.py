"""QGIS styles: valid QML with the run's classes, colours and years, beside every raster of a run."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET

import pytest

from pipeline.change import NO_CHANGE
from pipeline.config import DEFAULT_CLASSES, ClassDef
from pipeline.errors import InputError
from pipeline.products.qgis import (change_map_style, class_map_style, cleaning_style, composite_style,
                                    confidence_style, first_change_style, series_range, write_styles)
from pipeline.results import open_run


def _renderer(qml: str) -> ET.Element:
    assert qml.startswith("<!DOCTYPE qgis")
    root = ET.fromstring(qml)
    assert root.tag == "qgis" and root.get("version").startswith("3.")
    renderers = root.findall("./pipe/rasterrenderer")
    assert len(renderers) == 1 and renderers[0].get("band") == "1"
    return renderers[0]


def _transparent(renderer: ET.Element) -> list[tuple[str, str, str]]:
    return [(e.get("min"), e.get("max"), e.get("percentTransparent"))
            for e in renderer.findall("./rasterTransparency/singleValuePixelList/pixelListEntry")]


def test_class_map_style_lists_every_class_with_its_colour_and_name():
    classes = [*DEFAULT_CLASSES, ClassDef(code=12, name='tailings <"pond">', colour="#00AABB")]
    renderer = _renderer(class_map_style(classes))
    assert renderer.get("type") == "paletted"
    entries = [(e.get("value"), e.get("color"), e.get("alpha"), e.get("label"))
               for e in renderer.findall("./colorPalette/paletteEntry")]
    assert entries == [("1", "#1f78b4", "255", "water"), ("2", "#33a02c", "255", "tree cover"),
                       ("3", "#b2df8a", "255", "grass/shrub"), ("4", "#ffd92f", "255", "cropland"),
                       ("5", "#e31a1c", "255", "built-up"), ("6", "#8c6d31", "255", "bare ground & mining"),
                       ("12", "#00aabb", "255", 'tailings <"pond">')]
    assert _transparent(renderer) == [("255", "255", "100")]  # nodata (unclassified) is not drawn


def test_first_change_style_labels_each_period_and_shows_never_changed():
    renderer = _renderer(first_change_style(["Jan 2019", "Feb 2019", "Mar 2019"]))
    assert renderer.get("type") == "singlebandpseudocolor"
    shader = renderer.find("./rastershader/colorrampshader")
    assert shader.get("colorRampType") == "EXACT"
    items = shader.findall("item")
    assert [(i.get("value"), i.get("label")) for i in items] == [
        (str(NO_CHANGE), "never changed"), ("2", "changed in Feb 2019"), ("3", "changed in Mar 2019")]
    assert len({i.get("color") for i in items}) == 3
    assert (renderer.get("classificationMin"), renderer.get("classificationMax")) == (str(NO_CHANGE), "3")


def test_change_map_style_names_stable_each_transition_and_other_change():
    renderer = _renderer(change_map_style({0: "stable", 1: "grass/shrub -> bare ground & mining",
                                           2: "cropland -> bare ground & mining", 3: "other change"}))
    assert renderer.get("type") == "paletted"
    entries = [(e.get("value"), e.get("color"), e.get("label")) for e in renderer.findall("./colorPalette/paletteEntry")]
    assert [(v, label) for v, _, label in entries] == [("0", "stable"), ("1", "grass/shrub -> bare ground & mining"),
                                                       ("2", "cropland -> bare ground & mining"), ("3", "other change")]
    assert len({colour for _, colour, _ in entries}) == 4 and entries[0][1] == "#d9d9d9"
    assert _transparent(renderer) == [("255", "255", "100")]  # either period unobserved: not drawn


def test_cleaning_style_shows_filled_and_mmu_pixels_over_a_transparent_observed_map():
    renderer = _renderer(cleaning_style())
    labels = {e.get("value"): e.get("label") for e in renderer.findall("./colorPalette/paletteEntry")}
    assert labels["1"] == "gap-filled" and "minimum mapping unit" in labels["2"] and labels["0"] == "observed"
    assert _transparent(renderer) == [("0", "0", "100"), ("255", "255", "100")]


def test_confidence_style_ramps_from_zero_to_one():
    shader = _renderer(confidence_style()).find("./rastershader/colorrampshader")
    assert shader.get("colorRampType") == "INTERPOLATED"
    values = [float(i.get("value")) for i in shader.findall("item")]
    assert values[0] == 0 and values[-1] == 1 and values == sorted(values)


def test_confidence_style_spans_the_range_it_is_given():
    renderer = _renderer(confidence_style(0.37, 1.0))
    shader = renderer.find("./rastershader/colorrampshader")
    items = shader.findall("item")
    assert (shader.get("minimumValue"), shader.get("maximumValue")) == ("0.37", "1")
    assert [i.get("label") for i in items] == ["0.37", "0.53", "0.69", "0.84", "1.00"]
    assert (renderer.get("classificationMin"), renderer.get("classificationMax")) == ("0.37", "1")


def test_composite_style_picks_red_green_blue_by_name_with_one_fixed_stretch():
    root = ET.fromstring(composite_style(["blue", "green", "red", "nir", "ndvi"], minimum=[0.02] * 3,
                                         maximum=[0.19] * 3))
    renderer = root.find("./pipe/rasterrenderer")
    assert renderer.get("type") == "multibandcolor"
    assert (renderer.get("redBand"), renderer.get("greenBand"), renderer.get("blueBand")) == ("3", "2", "1")
    assert renderer.find("./minMaxOrigin/limits").text == "None"  # user-defined: QGIS keeps them
    for colour in ("red", "green", "blue"):
        assert renderer.find(f"./{colour}ContrastEnhancement/minValue").text == "0.02"
        assert renderer.find(f"./{colour}ContrastEnhancement/maxValue").text == "0.19"
    false = ET.fromstring(composite_style(["blue", "green", "red", "nir"], ("nir", "red", "green"),
                                          minimum=[0.1, 0.02, 0.03], maximum=[0.5, 0.2, 0.2])).find("./pipe/rasterrenderer")
    assert (false.get("redBand"), false.get("greenBand"), false.get("blueBand")) == ("4", "3", "2")
    assert false.find("./redContrastEnhancement/maxValue").text == "0.5"


def test_series_range_is_over_every_raster_of_the_series(tmp_path):
    import numpy as np
    import xarray as xr

    from pipeline import io
    from conftest import CRS

    paths = []
    for i in range(2):
        values = np.full((2, 4, 4), np.nan, "float32")
        values[0, :2] = 0.1 * (i + 1)        # band 1: 0.1 then 0.2
        values[1, :2] = 1.0 + i               # band 2: 1 then 2
        raster = xr.DataArray(values, dims=("band", "y", "x"),
                              coords={"y": 100.0 - np.arange(4) * 30, "x": np.arange(4) * 30.0}).rio.write_crs(CRS)
        paths.append(tmp_path / f"{i}.tif")
        io.write_cog(raster, paths[-1], band_names=["a", "b"], nodata=np.nan)
    assert series_range(paths, [1, 2], common=False) == [pytest.approx((0.1, 0.2)), pytest.approx((1.0, 2.0))]
    assert series_range(paths, [1, 2]) == [pytest.approx((0.1, 2.0))] * 2


def test_styles_are_written_beside_every_map_of_the_demo_run(demo_run, tmp_path):
    run_dir = tmp_path / "demo_small"  # a copy: the session's run stays as the runner left it
    shutil.copytree(demo_run / "outputs" / "demo_small", run_dir)
    written = write_styles(run_dir)
    run = open_run(run_dir)
    periods = run.periods("demo_mine")
    classes_dir = run_dir / "demo_mine" / "classes"
    maps = sorted(p for p in classes_dir.glob("*.tif"))
    assert len(maps) == 2 * len(periods)  # class map and confidence per period
    class_maps = [classes_dir / f"{p}.tif" for p in periods]
    assert sorted(p for p in written if p.parent == classes_dir) == sorted(
        [p.with_suffix(".qml") for p in maps] + [p.with_name(p.name + ".aux.xml") for p in class_maps])
    composites = run_dir / "demo_mine" / "composites"
    assert sorted(p.name for p in written if p.parent == composites) == sorted(
        [f"{p}.qml" for p in periods] + [f"{p}_false_colour.qml" for p in periods])
    assert len({(composites / f"{p}.qml").read_text() for p in periods}) == 1  # one stretch for the series
    for period in periods:
        entries = _renderer((classes_dir / f"{period}.qml").read_text()).findall("./colorPalette/paletteEntry")
        assert [(e.get("value"), e.get("color"), e.get("label")) for e in entries] == [
            (str(c.code), c.colour, c.name) for c in run.classes]
        assert _renderer((classes_dir / f"{period}_confidence.qml").read_text()).get("type") == "singlebandpseudocolor"
    change_style = run_dir / "demo_mine" / "change" / "first_change.qml"
    assert change_style in written
    items = _renderer(change_style.read_text()).findall("./rastershader/colorrampshader/item")
    # a pixel first changes in the 2nd period or later
    assert [i.get("label") for i in items] == ["never changed", *(f"changed in {p}" for p in periods[1:])]
    cleaned_dir = run_dir / "demo_mine" / "classes_cleaned"
    for period in periods:  # the cleaned maps as the class maps; what cleaning did, paletted
        assert (cleaned_dir / f"{period}.qml").read_text() == (classes_dir / f"{period}.qml").read_text()
        assert _renderer((cleaned_dir / f"{period}_cleaning.qml").read_text()).get("type") == "paletted"
    first_last = run_dir / "demo_mine" / "change" / "first_last.qml"
    assert first_last in written
    entries = _renderer(first_last.read_text()).findall("./colorPalette/paletteEntry")
    assert [(e.get("value"), e.get("label")) for e in entries] == [("0", "stable"), ("1", "changed")]
    first = {p: p.read_bytes() for p in written}
    assert write_styles(run_dir) == written
    assert {p: p.read_bytes() for p in written} == first  # same run, same bytes
    assert not [p for p in written if str(tmp_path).encode() in first[p]]  # no absolute paths


def test_a_folder_without_a_run_is_refused(tmp_path):
    with pytest.raises(InputError, match="no manifest.json"):
        write_styles(tmp_path)
