"""Pictures of an AOI's rasters for the report: true-colour thumbnails with each period's nodata share,
the event zones over a composite, the first-change map.

Rasters are read decimated (at most `PREVIEW_MAX_SIDE` pixels a side, nearest neighbour from the full
resolution, not from the averaged overviews), so a preview never loads a large AOI whole and the
nodata share is a plain sample of the pixels.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
from matplotlib.colors import BoundaryNorm, ListedColormap
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from rasterio.enums import Resampling

from pipeline.change.maps import FIRST_CHANGE_NODATA, NO_CHANGE
from pipeline.video.panels import true_colour

__all__ = ["PREVIEW_MAX_SIDE", "CompositePreview", "composite_previews", "zones_figure", "first_change_figure"]

PREVIEW_MAX_SIDE = 480
ZONE_STYLES = {"origin_community": ("origin community", "#f97316", "-"),
               "resettlement_site": ("resettlement site", "#38bdf8", "-"),
               "old_town": ("old town", "#f97316", "-"),
               "new_town": ("new town", "#38bdf8", "-"),
               "impact": ("impact zone", "#ef4444", "-"),
               "control": ("control ring", "#f8fafc", "--")}


@dataclass(frozen=True)
class CompositePreview:
    """One period's composite as a true-colour (y, x, 3) uint8 image, and its nodata share: the share of
    the AOI's pixels (those with data in at least one period) with no data in this period."""

    period: int
    image: np.ndarray
    nodata_share: float


def _read(path: Path, bands: Sequence[int], max_side: int, *,
          masked: bool = True) -> tuple[np.ndarray, rasterio.Affine, object]:
    """Bands (1-based) of a raster, decimated by nearest neighbour from the full resolution; NaN = nodata
    (where `masked`)."""
    with rasterio.open(path, OVERVIEW_LEVEL="NONE") as src:
        step = max(1, math.ceil(max(src.width, src.height) / max_side))
        shape = (len(bands), math.ceil(src.height / step), math.ceil(src.width / step))
        values = src.read(list(bands), out_shape=shape, resampling=Resampling.nearest, masked=masked)
        transform = src.transform * src.transform.scale(src.width / shape[2], src.height / shape[1])
        values = values.astype("float32")
        return (values.filled(np.nan) if masked else values), transform, src.crs


def composite_previews(paths: dict[int, Path], *, bands: Sequence[str] = ("red", "green", "blue"),
                       percentiles: tuple[float, float] = (2.0, 98.0),
                       max_side: int = PREVIEW_MAX_SIDE) -> list[CompositePreview]:
    """True-colour previews of a series of composites (period -> file), one stretch for all periods
    (the `percentiles` of the three bands together, as the video), each with its nodata share."""
    if not paths:
        return []
    with rasterio.open(next(iter(paths.values()))) as src:
        names = list(src.descriptions)
    if not set(bands) <= set(names):
        return []
    indices = [names.index(b) + 1 for b in bands]
    with ThreadPoolExecutor(min(len(paths), os.cpu_count() or 1)) as pool:  # GDAL decodes without the GIL
        series = dict(zip(paths, (read[0] for read in pool.map(lambda path: _read(path, indices, max_side),
                                                                paths.values()))))
    stack = np.stack(list(series.values()))
    finite = stack[np.isfinite(stack)]
    low, high = (np.percentile(finite, percentiles) if finite.size else (0.0, 1.0))
    high = high if high > low else low + 1e-6
    valid = np.isfinite(stack).all(axis=1)              # (period, y, x): every band has data
    aoi = valid.any(axis=0)                              # data in at least one period
    return [CompositePreview(period, true_colour(*values, vmin=float(low), vmax=float(high)),
                             float(1 - valid[i][aoi].mean()) if aoi.any() else 1.0)
            for i, (period, values) in enumerate(series.items())]


def zones_figure(composite: Path, zones: gpd.GeoDataFrame, *, period: str,
                 percentiles: tuple[float, float] = (2.0, 98.0), max_side: int = PREVIEW_MAX_SIDE) -> Figure:
    """The event zones (origin community, resettlement site, control ring; `events/event_zones.gpkg`)
    outlined over a composite in true colour, in the composite's CRS (axes in its units)."""
    with rasterio.open(composite) as src:
        names = list(src.descriptions)
    values, transform, crs = _read(composite, [names.index(b) + 1 for b in ("red", "green", "blue")], max_side)
    finite = values[np.isfinite(values)]
    low, high = np.percentile(finite, percentiles) if finite.size else (0.0, 1.0)
    image = true_colour(*values, vmin=float(low), vmax=float(max(high, low + 1e-6)))
    left, top = transform.c, transform.f
    right, bottom = left + transform.a * image.shape[1], top + transform.e * image.shape[0]
    figure = Figure(figsize=(7.2, 7.2 * image.shape[0] / image.shape[1] + 0.6), layout="constrained")
    ax = figure.subplots()
    ax.imshow(image, extent=(left, right, bottom, top), interpolation="nearest")
    handles = []
    for zone, (label, colour, line) in ZONE_STYLES.items():
        shapes = zones[zones["zone"] == zone].to_crs(crs)
        if shapes.empty:
            continue
        shapes.boundary.plot(ax=ax, color=colour, linewidth=1.8, linestyle=line)
        handles.append(Line2D([], [], color=colour if colour != "#f8fafc" else "#64748b", linewidth=2,
                              linestyle=line, label=label))
    ax.set_xlim(left, right)
    ax.set_ylim(bottom, top)
    ax.set_title(f"Event zones over the {period} composite (true colour)", loc="left", fontsize=10)
    ax.tick_params(labelsize=8)
    ax.ticklabel_format(style="plain", useOffset=False)
    unit = crs.linear_units if crs is not None and crs.is_projected else "degrees"
    ax.set_xlabel(f"x ({unit})", fontsize=8)
    ax.set_ylabel(f"y ({unit})", fontsize=8)
    if handles:
        figure.legend(handles=handles, loc="outside lower center", ncol=len(handles), frameon=False, fontsize=9)
    return figure


def first_change_figure(path: Path, *, labels: Sequence[str], max_side: int = PREVIEW_MAX_SIDE) -> Figure:
    """The first-change map (`change/first_change.tif`, value k = first changed in the k-th period):
    one viridis colour per period from the second on, labelled with `labels` (one per period, in
    order); never changed light grey; unobserved (fewer than two periods with data) left white."""
    values, _, _ = _read(path, [1], max_side, masked=False)
    numbers = list(range(2, len(labels) + 1)) or [2]
    figure = Figure(figsize=(6.4, 5.6 * values.shape[1] / values.shape[2] + 0.4), layout="constrained")
    ax = figure.subplots()
    ax.imshow(np.where(values[0] == NO_CHANGE, 1.0, np.nan), cmap=ListedColormap(["#e5e7eb"]), vmin=0, vmax=1,
              interpolation="nearest")
    colours = ListedColormap([_viridis(i, len(numbers)) for i in range(len(numbers))])
    bounds = [k - 0.5 for k in numbers] + [numbers[-1] + 0.5]
    changed = np.where((values[0] == NO_CHANGE) | (values[0] == FIRST_CHANGE_NODATA), np.nan, values[0])
    shown = ax.imshow(changed, cmap=colours, norm=BoundaryNorm(bounds, colours.N), interpolation="nearest")
    ax.set_axis_off()
    step = max(1, len(numbers) // 12)  # at most about a dozen labelled ticks
    ticks = numbers[::step]
    bar = figure.colorbar(shown, ax=ax, ticks=ticks, shrink=0.8, aspect=30, label="first period of a change of class")
    bar.ax.set_yticklabels([labels[k - 1] if k - 1 < len(labels) else "" for k in ticks])
    bar.ax.tick_params(labelsize=8)
    ax.set_title("First change of class (light grey: never changed; white: not observed)", loc="left", fontsize=10)
    return figure


def _viridis(index: int, n: int) -> tuple[float, float, float, float]:
    from matplotlib import colormaps

    return colormaps["viridis"](index / max(n - 1, 1))
