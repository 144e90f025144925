"""Figures of a run's outputs for notebooks and reports (matplotlib; no computation of their own)."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from pipeline.config import ClassDef

__all__ = ["class_maps_figure", "class_area_figure"]


def class_maps_figure(class_map: xr.DataArray, classes: Sequence[ClassDef], *, columns: int = 5) -> Figure:
    """A grid of class maps, one panel per period, with the class legend."""
    periods = list(class_map["period"].values)
    rows = int(np.ceil(len(periods) / columns))
    figure, axes = plt.subplots(rows, columns, figsize=(3 * columns, 3 * rows + 0.8), squeeze=False)
    lookup = np.full(256, len(classes), dtype=int)  # index of each code in the colour list; last = nodata
    for i, c in enumerate(classes):
        lookup[c.code] = i
    colours = ListedColormap([c.colour for c in classes] + ["#ffffff"])
    for ax, period in zip(axes.flat, periods):
        ax.imshow(lookup[class_map.sel(period=period).values], cmap=colours, vmin=0, vmax=len(classes),
                  interpolation="nearest")
        ax.set_title(str(period))
    for ax in axes.flat:
        ax.set_axis_off()
    figure.legend(handles=[Patch(color=c.colour, label=c.name) for c in classes], loc="lower center",
                  ncol=len(classes), frameon=False)
    return figure


def class_area_figure(class_area: pd.DataFrame, classes: Sequence[ClassDef]) -> Figure:
    """Stacked areas (ha) of each class over the periods, from a class_area.csv table."""
    table = class_area.pivot_table(index="period", columns="class_code", values="area_ha", aggfunc="sum")
    figure, ax = plt.subplots(figsize=(9, 4.5))
    codes = [c.code for c in classes if c.code in table.columns]
    ax.stackplot(table.index, [table[c] for c in codes], colors=[c.colour for c in classes if c.code in codes],
                 labels=[c.name for c in classes if c.code in codes])
    ax.set_xlabel("period")
    ax.set_ylabel("area (ha)")
    ax.legend(loc="center left", bbox_to_anchor=(1, 0.5), frameon=False)
    ax.set_xlim(table.index.min(), table.index.max())
    figure.tight_layout()
    return figure
