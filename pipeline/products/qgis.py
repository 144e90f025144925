"""QGIS layer styles (.qml) beside a run's rasters, so that QGIS shows them with the run's legend.

QGIS loads `<name>.qml` beside `<name>.tif` as the layer's default style when the layer is added. This
module writes:

    <aoi>/composites/<period>.qml              true colour: bands red, green, blue (found by name), one
                                               stretch for the whole series so periods compare by eye
    <aoi>/composites/<period>_false_colour.qml false colour (nir, red, green), to load by hand
    <aoi>/classes/<period>.qml                 paletted renderer: each class code with its colour and name
    <aoi>/classes/<period>.tif.aux.xml         class names and colours for GDAL-based tools (`io.write_category_sidecar`)
    <aoi>/classes/<period>_confidence.qml      pseudocolour (viridis) over the run's confidence values (2nd
                                               percentile to the highest, over all periods)
    <aoi>/change/first_change.qml              one colour (viridis) per period a change can first be seen in,
                                               labelled with the period; never changed light grey
    <aoi>/classes_cleaned/<period>.qml         as the class maps (and the .aux.xml class names beside them)
    <aoi>/classes_cleaned/<period>_cleaning.qml  paletted: observed, gap-filled, changed by the MMU, both
    <aoi>/change/first_last.qml, change/consecutive/<from>_to_<to>.qml
                                               paletted: stable, each transition of interest, other change
                                               (named from the raster's CHANGE_<value> tags)
    <aoi>/change/disturbance_period.qml        the same for the segmentation's disturbance period (change.segmentation)
    <aoi>/change/disturbance_<name>.qml        magnitude (yellow to red), duration and recovery (viridis) ramps

Without its .qml QGIS shows a composite with bands 1, 2, 3 (blue, green, red) as red, green, blue: it
does not use the file's colour interpretation to pick them.

The XML follows what QGIS 3 writes and reads for raster layers: `<qgis><pipe><rasterrenderer ...>` with a
`colorPalette` of `paletteEntry` (value, color, alpha, label) for the paletted renderer and a
`rastershader/colorrampshader` of `item`s for the single-band pseudocolour renderer, a
`rasterTransparency/singleValuePixelList` for values drawn transparent (see QGIS' src/core/raster:
qgspalettedrasterrenderer.cpp, qgscolorrampshader.cpp, qgsrastertransparency.cpp). The files hold no
date or path: the same run gives the same bytes.
"""

from __future__ import annotations

import itertools
import math
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import rasterio
from matplotlib import colormaps
from matplotlib.colors import to_hex

from pipeline import io
from pipeline.change.maps import NO_CHANGE, change_map_colours
from pipeline.change.segmentation import NO_DISTURBANCE
from pipeline.classify.cleaning import CLEANING_NODATA, FILLED, SIEVED
from pipeline.classify.predict import UNCLASSIFIED
from pipeline.config import ClassDef
from pipeline.results import open_run

__all__ = ["QGIS_VERSION", "TRUE_COLOUR", "FALSE_COLOUR", "change_map_style", "class_map_style", "cleaning_style",
           "composite_style", "confidence_style", "first_change_style", "disturbance_period_style", "disturbance_style",
           "series_range", "write_styles"]

TRUE_COLOUR = ("red", "green", "blue")
FALSE_COLOUR = ("nir", "red", "green")  # colour infrared: vegetation red, water dark, bare ground cyan-grey
_CONFIDENCE_PERCENTILES = (2.0, 100.0)  # the confidence style spans the run's values: lowest 2 % darkest
_SAMPLE_SIDE = 512  # rasters are read decimated to at most this many pixels a side for a style's stretch

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


def confidence_style(minimum: float = 0.0, maximum: float = 1.0) -> str:
    """QML for a confidence map (highest class probability, 0..1): viridis from `minimum` (dark) to
    `maximum` (yellow), e.g. the range of the run's confidence (`series_range`), so that the colours
    spread over the values there are."""
    if not maximum > minimum:
        minimum, maximum = 0.0, 1.0
    stops = [round(minimum + (maximum - minimum) * i / 4, 4) for i in range(5)]
    renderer = _renderer("singlebandpseudocolor", classificationMin=_number(minimum),
                         classificationMax=_number(maximum))
    _transparency(renderer)
    _pseudocolour(renderer, [(v, c, f"{v:.2f}") for v, c in zip(stops, _viridis(len(stops)))],
                  ramp="INTERPOLATED", minimum=minimum, maximum=maximum)
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


def composite_style(band_names: Sequence[str], rgb: Sequence[str] = TRUE_COLOUR, *,
                    minimum: Sequence[float], maximum: Sequence[float]) -> str:
    """QML for a composite: a multiband colour renderer showing the bands named `rgb` as red, green and
    blue, each stretched from `minimum` to `maximum` (one value per channel; give the same three for a
    true colour that keeps grey grey). The limits are fixed ("user defined"), so QGIS neither recomputes
    them per file nor writes statistics beside it."""
    red, green, blue = (list(band_names).index(name) + 1 for name in rgb)
    renderer = ET.Element("rasterrenderer", {"type": "multibandcolor", "redBand": str(red),
                                             "greenBand": str(green), "blueBand": str(blue), "opacity": "1",
                                             "alphaBand": "-1", "nodataColor": ""})
    _transparency(renderer)
    origin = ET.SubElement(renderer, "minMaxOrigin")
    for tag, text in (("limits", "None"), ("extent", "WholeRaster"), ("statAccuracy", "Estimated"),
                      ("cumulativeCutLower", "0.02"), ("cumulativeCutUpper", "0.98"), ("stdDevFactor", "2")):
        ET.SubElement(origin, tag).text = text
    for colour, low, high in zip(("red", "green", "blue"), minimum, maximum):
        enhancement = ET.SubElement(renderer, f"{colour}ContrastEnhancement")
        ET.SubElement(enhancement, "minValue").text = _number(round(float(low), 4))
        ET.SubElement(enhancement, "maxValue").text = _number(round(float(high), 4))
        ET.SubElement(enhancement, "algorithm").text = "StretchToMinimumMaximum"
    return _document(renderer)


def series_range(paths: Sequence[Path], bands: Sequence[int], percentiles: tuple[float, float] = (0.0, 100.0),
                 *, common: bool = True) -> list[tuple[float, float]]:
    """The low and high percentiles of bands (1-based) over a series of rasters, one pair per band, or
    the same pair for all where `common`. Read decimated (at most 512 pixels a side), nodata left out."""
    samples: list[list[np.ndarray]] = [[] for _ in bands]
    for path in paths:
        with rasterio.open(path) as src:
            step = max(1, math.ceil(max(src.width, src.height) / _SAMPLE_SIDE))
            shape = (len(bands), math.ceil(src.height / step), math.ceil(src.width / step))
            values = src.read(list(bands), out_shape=shape, masked=True).astype("float64").filled(np.nan)
        for i, band in enumerate(values):
            samples[i].append(band[np.isfinite(band)])
    merged = [np.concatenate(s) if s else np.array([]) for s in samples]
    if common:
        merged = [np.concatenate(merged)] * len(bands)
    return [tuple(float(v) for v in np.percentile(m, percentiles)) if m.size else (0.0, 1.0) for m in merged]


def disturbance_period_style(period_labels: Sequence[str]) -> str:
    """QML for change/disturbance_period.tif (`change.segmentation`): value k = the largest disturbance is
    first seen in the k-th period, one viridis colour per period that can be one (the second on),
    labelled with the period; no disturbance light grey; too few observations (the raster's nodata)
    transparent."""
    numbers = list(range(2, len(period_labels) + 1))
    high = numbers[-1] if numbers else 1
    renderer = _renderer("singlebandpseudocolor", classificationMin=str(NO_DISTURBANCE), classificationMax=str(high))
    _transparency(renderer)
    items = [(NO_DISTURBANCE, "#d9d9d9", "no disturbance")]
    items += [(k, colour, f"disturbed in {period_labels[k - 1]}") for k, colour in zip(numbers, _viridis(len(numbers)))]
    _pseudocolour(renderer, items, ramp="EXACT", minimum=NO_DISTURBANCE, maximum=high)
    return _document(renderer)


def disturbance_style(name: str, maximum: float) -> str:
    """QML for change/disturbance_{magnitude,duration,recovery}.tif: a ramp from 0 to `maximum` (magnitude:
    the run's largest loss; duration: years; recovery: 0 none to 1 full), NaN (not disturbed) transparent.
    Magnitude runs yellow to dark red (bigger losses darker), duration and recovery along viridis."""
    maximum = maximum if maximum > 0 else 1.0
    stops = [round(maximum * i / 4, 4) for i in range(5)]
    colours = (["#ffffb2", "#fecc5c", "#fd8d3c", "#f03b20", "#bd0026"] if name == "magnitude" else _viridis(5))
    unit = {"magnitude": "", "duration": " yr", "recovery": ""}[name]
    renderer = _renderer("singlebandpseudocolor", classificationMin="0", classificationMax=_number(maximum))
    _transparency(renderer)
    _pseudocolour(renderer, [(v, c, f"{v:g}{unit}") for v, c in zip(stops, colours)], ramp="INTERPOLATED",
                  minimum=0.0, maximum=maximum)
    return _document(renderer)


def write_styles(run_dir: Path) -> list[Path]:
    """Write a .qml beside every composite, class map (as classified and cleaned), confidence map, cleaning
    map, first-change-year map and change map of a finished run, and the class names beside every class map
    (classes from the run's config); returns the files written, AOI by AOI, period by period."""
    run = open_run(run_dir)
    layout = run.layout
    classes, cleaning = class_map_style(run.classes), cleaning_style()
    names = [(c.code, c.name, c.colour) for c in run.classes]
    percentiles = tuple((run.manifest["config"].get("video") or {}).get("stretch_percentiles", (2.0, 98.0)))
    written = []
    for aoi_id in run.aoi_ids:
        composite = run.manifest["aois"][aoi_id].get("stages", {}).get("composite", {})
        periods = run.periods(aoi_id) if composite.get("periods") else []
        written += _composite_styles(layout, aoi_id, periods, percentiles)
        confidences = [layout.confidence(aoi_id, p) for p in periods if layout.confidence(aoi_id, p).exists()]
        confidence = (confidence_style(*_rounded_range(series_range(confidences, [1], _CONFIDENCE_PERCENTILES)[0]))
                      if confidences else "")
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
            for class_map in (layout.class_map(aoi_id, period), layout.cleaned_class_map(aoi_id, period)):
                if class_map.exists():
                    written.append(io.write_category_sidecar(class_map, names))
        if periods and layout.first_change(aoi_id).exists():
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
        written += _disturbance_styles(run, aoi_id, periods)
    return written


def _disturbance_styles(run, aoi_id: str, periods: Sequence[str]) -> list[Path]:
    """Styles beside the segmentation's rasters (change.segmentation), where the run wrote them."""
    layout, written = run.layout, []
    if not periods or not layout.disturbance(aoi_id, "period").exists():
        return written
    labels = run.period_labels(aoi_id)
    texts = {"period": disturbance_period_style([labels[p] for p in periods])}
    for name in ("magnitude", "duration", "recovery"):
        if layout.disturbance(aoi_id, name).exists():
            with rasterio.open(layout.disturbance(aoi_id, name)) as src:
                values = src.read(1)
            finite = values[np.isfinite(values)]
            top = {"recovery": 1.0, "duration": float(finite.max()) if finite.size else 1.0}.get(
                name, float(np.percentile(finite, 98)) if finite.size else 1.0)
            texts[name] = disturbance_style(name, round(top, 2))
    for name, text in texts.items():
        style = layout.disturbance(aoi_id, name).with_suffix(".qml")
        io.write_bytes(text.encode(), style)
        written.append(style)
    return written


def _composite_styles(layout, aoi_id: str, periods: Sequence[str], percentiles: tuple[float, float]) -> list[Path]:
    """The true- and false-colour styles of an AOI's composites: one stretch for all periods (true colour:
    one range for the three bands; false colour: one per band), from the run's video.stretch_percentiles."""
    paths = [layout.composite(aoi_id, p) for p in periods if layout.composite(aoi_id, p).exists()]
    if not paths:
        return []
    with rasterio.open(paths[0]) as src:
        band_names = list(src.descriptions)
    written = []
    for rgb, common, style in ((TRUE_COLOUR, True, layout.composite_style),
                               (FALSE_COLOUR, False, layout.composite_false_colour_style)):
        if not set(rgb) <= set(band_names):
            continue
        ranges = series_range(paths, [band_names.index(b) + 1 for b in rgb], percentiles, common=common)
        text = composite_style(band_names, rgb, minimum=[low for low, _ in ranges],
                               maximum=[high for _, high in ranges])
        for period in periods:
            if layout.composite(aoi_id, period).exists():
                io.write_bytes(text.encode(), style(aoi_id, period))
                written.append(style(aoi_id, period))
    return written


def _rounded_range(limits: tuple[float, float]) -> tuple[float, float]:
    """(low, high) rounded outwards to 0.01: legend labels such as 0.37 .. 1.00."""
    low, high = limits
    return math.floor(low * 100) / 100, math.ceil(high * 100) / 100
