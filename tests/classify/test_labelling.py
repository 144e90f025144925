"""The validation sample's labelling form: a QGIS value map of class names, stored in the sample's GPKG."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import geopandas as gpd

from pipeline.classify.labelling import VALUE_MAP_NULL, labelling_style
from pipeline.results import open_run


def _value_maps(qml: str) -> dict[str, list[tuple[str, str]]]:
    root = ET.fromstring(qml.split("\n", 1)[1])
    return {field.get("name"): [(o.get("name"), o.get("value")) for o in field.iter("Option") if o.get("value")]
            for field in root.find("fieldConfiguration")}


def test_labelling_style_offers_class_names_and_stores_codes():
    qml = labelling_style({2: "tree cover", 1: 'water "open"'})
    maps = _value_maps(qml)
    assert maps["reference_code"] == [("(not labelled yet)", VALUE_MAP_NULL), ('water "open"', "1"), ("tree cover", "2")]
    assert maps["map_code"] == [('water "open"', "1"), ("tree cover", "2")]
    editable = {f.get("name"): f.get("editable") for f in ET.fromstring(qml.split("\n", 1)[1]).find("editable")}
    assert editable["reference_code"] == "1" and editable["map_code"] == editable["sample_id"] == "0"


def test_the_runs_sample_design_carries_its_labelling_form(demo_run):
    run = open_run(demo_run / "outputs" / "demo_small")
    path = run.layout.sample_design("demo_mine")
    layers = gpd.list_layers(path)["name"].tolist()
    assert layers == [layers[0], "layer_styles"] and layers[0].startswith("demo_mine validation sample")
    style = gpd.read_file(path, layer="layer_styles").iloc[0]
    assert style["f_table_name"] == layers[0] and bool(style["useAsDefault"])
    assert _value_maps(style["styleQML"])["reference_code"][1:] == [(c.name, str(c.code)) for c in run.classes]
    assert len(gpd.read_file(path, layer=layers[0])) == run.manifest["aois"]["demo_mine"]["stages"]["classify"][
        "sample_design"]["n_samples"]
