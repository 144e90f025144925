"""QGIS layer styles (.qml) beside a run's rasters, so that QGIS shows them with the run's legend.

QGIS loads `<name>.qml` beside `<name>.tif` as the layer's default style when the layer is added. This
module writes:

    <aoi>/classes/<period>.qml             paletted renderer: each class code with its colour and name
    <aoi>/classes/<period>_confidence.qml  pseudocolour (viridis) from 0 to 1
    <aoi>/change/first_change.qml          one colour (viridis) per period a change can first be seen in,
                                           labelled with the period; never changed light grey
    <aoi>/classes_cleaned/<period>.qml     as the class maps
    <aoi>/classes_cleaned/<period>_cleaning.qml  paletted: observed, gap-filled, changed by the MMU, both
    <aoi>/change/first_last.qml, change/consecutive/<from>_to_<to>.qml
                                           paletted: stable, each transition of interest, other change
                                           (named from the raster's CHANGE_<value> tags)

The XML follows what QGIS 3 writes and reads for raster layers: `<qgis><pipe><rasterrenderer ...>` with a
`colorPalette` of `paletteEntry` (value, color, alpha, label) for the paletted renderer and a
`rastershader/colorrampshader` of `item`s for the single-band pseudocolour renderer, a
`rasterTransparency/singleValuePixelList` for values drawn transparent (see QGIS' src/core/raster:
qgspalettedrasterrenderer.cpp, qgscolorrampshader.cpp, qgsrastertransparency.cpp). The files hold no
date or path: the same run gives the same bytes.
"""

from __future__ import annotations

import itertools
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

import rasterio
from matplotlib import colormaps
from matplotlib.colors import to_hex

from pipeline import io
from pipeline.change.maps import NO_CHANGE, change_map_colours
from pipeline.classify.cleaning import CLEANING_NODATA, FILLED, SIEVED
from pipeline.classify.predict import UNCLASSIFIED
from pipeline.config import ClassDef
from pipeline.results import open_run

__all__ = ["QGIS_VERSION", "change_map_style", "class_map_style", "cleaning_style", "confidence_style",
           "first_change_style", "write_styles"]

QGIS_VERSION = "3.28.0-Firenze"  # the long-term release whose QML format these files follow
_DOCTYPE = "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"


def _document(renderer: ET.Element) -> str:
    """A complete QML document around one raster renderer."""
    root = ET.Element("qgis", {"version": QGIS_VERSION, "styleCategories": "AllStyleCategories"})
    pipe = ET.SubElement(root, "pipe")
    pipe.append(renderer)
    ET.SubElement(pipe, "brightnesscontrast", {"brightness": "0", "contrast": "0", "gamma": "1"})
    ET.SubElement(pipe, "huesaturation", {"saturation": "0", "grayscaleMode": "0", "colorizeOn": "0",
                                          "colorizeRed": "255", "colorizeGreen": "128", "colorizeBlue": "128",
                                          "colorizeStrength": "100"})
    ET.SubElement(pipe, "rasterresampler", {"maxOversampling": "2"})
    ET.SubElement(root, "blendMode").text = "0"
    ET.indent(root, space="  ")
    return _DOCTYPE + ET.tostring(root, encoding="unicode") + "\n"


def _renderer(kind: str, **attributes: str) -> ET.Element:
    """A rasterrenderer element on band 1, opaque, nodata drawn transparent (nodataColor empty)."""
    return ET.Element("rasterrenderer", {"type": kind, "band": "1", "opacity": "1", "alphaBand": "-1",
                                         "nodataColor": "", **attributes})


def _transparency(renderer: ET.Element, values: Sequence[float] = ()) -> None:
    """Values drawn fully transparent (besides the raster's nodata, which QGIS never draws)."""
    element = ET.SubElement(renderer, "rasterTransparency")
    if values:
        pixels = ET.SubElement(element, "singleValuePixelList")
        for value in values:
            ET.SubElement(pixels, "pixelListEntry", {"min": _number(value), "max": _number(value),
                                                     "percentTransparent": "100"})


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _pseudocolour(renderer: ET.Element, items: Sequence[tuple[float, str, str]], *, ramp: str,
                  minimum: float, maximum: float) -> None:
    """A colorrampshader of (value, colour, label) items: "EXACT" (each value its colour) or
    "INTERPOLATED" (colours blended between the values)."""
    shader = ET.SubElement(ET.SubElement(renderer, "rastershader"), "colorrampshader", {
        "colorRampType": ramp, "classificationMode": "1", "clip": "0",
        "minimumValue": _number(minimum), "maximumValue": _number(maximum)})
    for value, colour, label in items:
        ET.SubElement(shader, "item", {"value": _number(value), "color": colour, "alpha": "255", "label": label})


def _viridis(n: int) -> list[str]:
    """n colours evenly spaced along viridis, as #rrggbb."""
    ramp = colormaps["viridis"]
    return [to_hex(ramp(i / max(n - 1, 1))) for i in range(n)]


def _paletted(entries: Sequence[tuple[int, str, str]], transparent: Sequence[int]) -> str:
    """QML of a paletted renderer: (value, colour, label) entries; `transparent` values not drawn."""
    renderer = _renderer("paletted")
    _transparency(renderer, list(transparent))
    palette = ET.SubElement(renderer, "colorPalette")
    for value, colour, label in entries:
        ET.SubElement(palette, "paletteEntry", {"value": str(value), "color": colour.lower(), "alpha": "255",
                                                "label": label})
    return _document(renderer)


def class_map_style(classes: Sequence[ClassDef]) -> str:
    """QML for a class map: a paletted renderer, each class code with its colour and name; the
    UNCLASSIFIED nodata (and any code not in the schema) is not drawn."""
    return _paletted([(c.code, c.colour, c.name) for c in sorted(classes, key=lambda c: c.code)], [UNCLASSIFIED])


def cleaning_style() -> str:
    """QML for a cleaning map (`pipeline.classify.cleaning.cleaning_flags`): observed pixels transparent
    (the class map shows through beneath), gap-filled orange, changed by the minimum mapping unit purple,
    both red; no class not drawn."""
    return _paletted([(0, "#f0f0f0", "observed"), (FILLED, "#ff7f00", "gap-filled"),
                      (SIEVED, "#6a3d9a", "observed, class changed by the minimum mapping unit"),
                      (FILLED | SIEVED, "#e31a1c", "gap-filled, then changed by the minimum mapping unit")],
                     [0, CLEANING_NODATA])


def change_map_style(names: dict[int, str]) -> str:
    """QML for a change map between two periods: 0 stable light grey, each transition of interest its
    colour, then any other change (`change.change_map_colours`), each labelled with its name; nodata
    (either period unobserved) not drawn."""
    colours = change_map_colours(len(names) - 2)
    return _paletted([(value, colours[value], name) for value, name in sorted(names.items())], [UNCLASSIFIED])


def _change_names(path: Path) -> dict[int, str]:
    """A change map's values and names, from its CHANGE_<value> tags (`change.change_map_tags`)."""
    with rasterio.open(path) as raster:
        tags = raster.tags()
    return {int(key.removeprefix("CHANGE_")): name for key, name in tags.items() if key.startswith("CHANGE_")}


def confidence_style() -> str:
    """QML for a confidence map (highest class probability, 0..1): viridis from 0 (dark) to 1 (yellow)."""
    stops = [0.0, 0.25, 0.5, 0.75, 1.0]
    renderer = _renderer("singlebandpseudocolor", classificationMin="0", classificationMax="1")
    _transparency(renderer)
    _pseudocolour(renderer, [(v, c, f"{v:g}") for v, c in zip(stops, _viridis(len(stops)))],
                  ramp="INTERPOLATED", minimum=0, maximum=1)
    return _document(renderer)


def first_change_style(period_labels: Sequence[str]) -> str:
    """QML for the first-change map (`change.first_change`): value k = first changed in the k-th period,
    one viridis colour per period that can be one (the second on) labelled with the period, NO_CHANGE
    (observed, never changed) light grey; the nodata value (fewer than two periods observed) is
    transparent as the raster's nodata."""
    numbers = list(range(2, len(period_labels) + 1))
    high = numbers[-1] if numbers else 1
    renderer = _renderer("singlebandpseudocolor", classificationMin=str(NO_CHANGE), classificationMax=str(high))
    _transparency(renderer)
    items = [(NO_CHANGE, "#d9d9d9", "never changed")]
    items += [(k, colour, f"changed in {period_labels[k - 1]}") for k, colour in zip(numbers, _viridis(len(numbers)))]
    _pseudocolour(renderer, items, ramp="EXACT", minimum=NO_CHANGE, maximum=high)
    return _document(renderer)


def write_styles(run_dir: Path) -> list[Path]:
    """Write a .qml beside every class map (as classified and cleaned), confidence map, cleaning map and
    change map of a finished run (classes from the run's config); returns the files written, AOI by AOI,
    period by period."""
    run = open_run(run_dir)
    layout = run.layout
    classes = class_map_style(run.classes)
    confidence, cleaning = confidence_style(), cleaning_style()
    written = []
    for aoi_id in run.aoi_ids:
        composite = run.manifest["aois"][aoi_id].get("stages", {}).get("composite", {})
        periods = run.periods(aoi_id) if composite.get("periods") else []
        for period in periods:
            for raster, style, text in ((layout.class_map(aoi_id, period), layout.class_map_style(aoi_id, period),
                                         classes),
                                        (layout.confidence(aoi_id, period), layout.confidence_style(aoi_id, period),
                                         confidence),
                                        (layout.cleaned_class_map(aoi_id, period),
                                         layout.style(layout.cleaned_class_map(aoi_id, period)), classes),
                                        (layout.cleaning(aoi_id, period), layout.style(layout.cleaning(aoi_id, period)),
                                         cleaning)):
                if raster.exists():
                    io.write_bytes(text.encode(), style)
                    written.append(style)
        if layout.first_change(aoi_id).exists():
            style = layout.first_change_style(aoi_id)
            labels = run.period_labels(aoi_id)
            io.write_bytes(first_change_style([labels[p] for p in periods]).encode(), style)
            written.append(style)
        pairs = [layout.change_first_last(aoi_id)] if len(periods) > 1 else []
        pairs += [layout.change_consecutive(aoi_id, a, b) for a, b in itertools.pairwise(periods)]
        for raster in pairs:
            if raster.exists():
                io.write_bytes(change_map_style(_change_names(raster)).encode(), layout.style(raster))
                written.append(layout.style(raster))
    return written
