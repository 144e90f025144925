"""Writers every room shares: each file is written once, to a temporary name in the target folder,
renamed into place only when complete (no half-written file ever looks done); and the one vector reader.

Each room reads and writes its own formats in a module of its own (scene discovery in `ingest.scenes`,
training labels in `classify.training`, event tables in `events.records`, SPSS/Kumu in
`products.exports`); what they all need lives here: `atomic_path`, COG/CSV/JSON/Parquet/GeoPackage/PNG
writers, `sha256`, and the record of what a stage wrote (`written_files`).

Two guards for text that came from users' tables: `neutralise_formulas` (every CSV and spreadsheet
export: a text cell that a spreadsheet would run as a formula is prefixed with `'`, as OWASP advises)
and `plain_text` (plain-text outputs such as subtitles, youtube.txt and Kumu JSON carry no markup).
"""

from __future__ import annotations

import contextlib
import contextvars
import errno
import hashlib
import json
import os
import re
import socket
from collections.abc import Iterator, Sequence
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr
from rasterio.enums import ColorInterp

from pipeline.errors import InputError, OutputError, PipelineError, detached

__all__ = ["atomic_path", "write_cog", "write_period_cog", "write_csv", "write_json", "write_parquet",
           "write_bytes", "write_gpkg", "write_figure", "sha256", "read_vector", "written_files",
           "note_written", "neutralise_formulas", "plain_text", "part_path", "part_writer", "rgb_colour_interpretation",
           "category_sidecar", "write_category_sidecar", "LAYER_STYLES"]

LAYER_STYLES = "layer_styles"  # the GeoPackage table where QGIS keeps the layers' default styles


def read_vector(path: Path, *, what: str) -> gpd.GeoDataFrame:
    """The first layer of a vector file (a GeoPackage's `layer_styles` table, QGIS's, is not a layer)."""
    if not path.exists():
        raise InputError(f"{path}: {what} not found")
    try:
        layer = _first_data_layer(path)
        return gpd.read_file(path, **({"layer": layer} if layer is not None else {}))
    except Exception as err:  # pyogrio raises DataSourceError, ValueError, ...
        raise InputError(f"{path}: cannot read the {what} ({err})") from None


_HOST = hashlib.sha1(socket.gethostname().encode()).hexdigest()[:8]
_PART = re.compile(r"^\..*\.part-(\d+)-([0-9a-f]{8})(\.[^.]*)?$")


def part_path(path: Path) -> Path:
    """The temporary name `path` is written under: `.<stem>.part-<pid>-<host>.<ext>`, hidden, with the
    writing process and (a hash of) its host, so a clean-up can tell whether its writer is gone."""
    return path.with_name(f".{path.stem}.part-{os.getpid()}-{_HOST}{path.suffix}")


def part_writer(name: str) -> tuple[int, bool] | None:
    """(pid, written on this host) of a temporary file named by `part_path`; None for any other name."""
    match = _PART.match(name)
    return (int(match.group(1)), match.group(2) == _HOST) if match else None


def _first_data_layer(path: Path) -> str | None:
    """The name of the first layer other than `layer_styles`, where the file has several (else None)."""
    import pyogrio

    if path.suffix.lower() != ".gpkg":
        return None
    names = [str(name) for name, _ in pyogrio.list_layers(path)]
    data = [name for name in names if name != LAYER_STYLES]
    return data[0] if len(names) > 1 and data else None


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path beside `path` (`part_path`), renamed to `path` when the block ends without error.

    However the block fails, the temporary file is removed and a previous file at `path` is left as it
    was. A full disk, or a folder that cannot be written, raises OutputError naming `path`.
    """
    tmp = part_path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        yield tmp
        os.replace(tmp, path)
        note_written(path)
    except Exception as err:
        code = getattr(err, "errno", None) if isinstance(err, OSError) else None
        # GDAL (rasterio) reports a full disk without an errno: then the free space tells
        if code in _DISK_FULL or (code is None and not isinstance(err, OutputError) and _disk_full(path.parent)):
            raise OutputError(f"disk full while writing {path} (No space left on device); the previous "
                              f"{path.name}, if any, is unchanged: free some space and run again") from err
        if code in _NOT_WRITABLE:
            raise OutputError(f"cannot write {path} ({err.strerror}); check that the output folder "
                              "(output_dir) is a writable folder") from err
        raise
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


_DISK_FULL = {errno.ENOSPC, errno.EDQUOT}


_NOT_WRITABLE = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR, errno.EEXIST}


_ALMOST_FULL = 16 * 2**20  # bytes: less than a few of GDAL's blocks left


def _disk_full(folder: Path) -> bool:
    """Whether the file system of `folder` has (almost) no space left for this user."""
    try:
        stats = os.statvfs(folder)
    except (OSError, AttributeError):  # no folder, or no statvfs (Windows)
        return False
    blocks = stats.f_bfree if os.geteuid() == 0 else stats.f_bavail  # root may use the reserved blocks
    return blocks * stats.f_frsize < _ALMOST_FULL


def write_cog(
    raster: xr.DataArray,
    path: Path,
    *,
    band_names: Sequence[str],
    nodata: float,
    colormap: dict[int, tuple[int, int, int, int]] | None = None,
    tags: dict[str, str] | None = None,
    categorical: bool | None = None,
    colour_interpretation: Sequence[str] | None = None,
) -> None:
    """Write a computed (band, y, x) or (y, x) raster as a Cloud-Optimised GeoTIFF (deflate, overviews).

    CRS and transform come from the raster (`.rio`); band descriptions from `band_names`; `tags` are
    written as dataset metadata (e.g. PERIOD, PERIOD_START, PERIOD_END); `colour_interpretation`: one GDAL
    colour interpretation per band ("red", "green", "blue", "undefined", ...; see
    `rgb_colour_interpretation`), stored in the file for GDAL-based tools. `categorical` (default: when a
    colormap is given): codes, not quantities, so the overviews take the nearest pixel, not the average.
    """
    values = np.asarray(raster.values)
    if values.ndim == 2:
        values = values[np.newaxis]
    if len(band_names) != values.shape[0]:
        raise ValueError(f"{len(band_names)} band names for {values.shape[0]} bands")
    profile = {
        "driver": "COG",
        "width": values.shape[2],
        "height": values.shape[1],
        "count": values.shape[0],
        "dtype": values.dtype.name,
        "crs": raster.rio.crs,
        "transform": raster.rio.transform(),
        "nodata": nodata,
        "compress": "deflate",
        "predictor": 2 if values.dtype.kind in "iu" else 3,
        "blocksize": 256,
        "num_threads": "ALL_CPUS",  # the blocks are compressed in parallel; the file is the same
        "overview_resampling": "nearest" if (colormap is not None if categorical is None else categorical)
        else "average",
    }
    with atomic_path(path) as tmp:
        with rasterio.open(tmp, "w", **profile) as dst:
            dst.write(values)
            for i, name in enumerate(band_names, start=1):
                dst.set_band_description(i, name)
            if colormap is not None:
                dst.write_colormap(1, colormap)
            if tags:
                dst.update_tags(**tags)
            if colour_interpretation is not None:
                dst.colorinterp = [ColorInterp[name] for name in colour_interpretation]


def rgb_colour_interpretation(band_names: Sequence[str]) -> list[str] | None:
    """GDAL colour interpretations for bands named red, green and blue ("undefined" for the others);
    None where the bands lack one of the three. GDAL-based tools then know which band is which colour
    (QGIS 3 ignores it when it picks its RGB bands: the composites' .qml does that)."""
    if not {"red", "green", "blue"} <= set(band_names):
        return None
    return [name if name in ("red", "green", "blue") else "undefined" for name in band_names]


def category_sidecar(path: Path) -> Path:
    """Where GDAL looks for a raster's category names and attribute table: `<name>.tif.aux.xml`."""
    return path.with_name(path.name + ".aux.xml")


def write_category_sidecar(path: Path, classes: Sequence[tuple[int, str, str]]) -> Path:
    """Class names and colours of a class map for every GDAL-based tool, in its PAM sidecar
    (`category_sidecar(path)`): GDAL category names (QGIS 3.22 labels the classes with them; gdalinfo,
    rasterio `.tags()` none, ArcGIS shows them) and a thematic raster attribute table (VALUE, CLASS_NAME,
    RED, GREEN, BLUE; QGIS >= 3.30 builds its legend from it). A GeoTIFF cannot hold either: GDAL
    itself keeps them in this file. `classes`: (code, name, "#rrggbb"), codes 0..254. Returns the file."""
    from xml.sax.saxutils import escape

    by_code = {int(code): (name, colour) for code, name, colour in classes}
    names = "".join(f"      <Category>{escape(by_code[v][0]) if v in by_code else ''}</Category>\n"
                    for v in range(max(by_code, default=-1) + 1))
    fields = "".join(f'      <FieldDefn index="{i}"><Name>{name}</Name><Type>{kind}</Type><Usage>{usage}</Usage>'
                     "</FieldDefn>\n" for i, (name, kind, usage) in enumerate(
                         (("VALUE", 0, 5), ("CLASS_NAME", 2, 2), ("RED", 0, 6), ("GREEN", 0, 7), ("BLUE", 0, 8))))
    rows = "".join(
        f'      <Row index="{i}"><F>{code}</F><F>{escape(name)}</F>'
        + "".join(f"<F>{int(colour[k:k + 2], 16)}</F>" for k in (1, 3, 5)) + "</Row>\n"
        for i, (code, (name, colour)) in enumerate(sorted(by_code.items())))
    xml = ('<PAMDataset>\n  <PAMRasterBand band="1">\n    <CategoryNames>\n' + names + "    </CategoryNames>\n"
           '    <GDALRasterAttributeTable tableType="thematic">\n' + fields + rows
           + "    </GDALRasterAttributeTable>\n  </PAMRasterBand>\n</PAMDataset>\n")
    sidecar = category_sidecar(path)
    write_bytes(xml.encode(), sidecar)
    return sidecar


def write_csv(table: pd.DataFrame, path: Path) -> None:
    """A table as CSV (4 decimals), formula-like text cells neutralised (`neutralise_formulas`); a carriage
    return inside a cell becomes a line feed (a cell with one is quoted; a bare CR would end the row)."""
    table = neutralise_formulas(table)
    text_columns = [c for c in table.columns if table[c].dtype == object or pd.api.types.is_string_dtype(table[c])]
    if any(table[c].map(lambda v: isinstance(v, str) and "\r" in v).any() for c in text_columns):
        table = table.copy()
        for column in text_columns:
            table[column] = table[column].map(lambda v: v.replace("\r\n", "\n").replace("\r", "\n")
                                              if isinstance(v, str) else v)
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False, float_format="%.4f")


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def _neutral(value: object) -> object:
    if isinstance(value, str) and value.startswith(_FORMULA_START) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def neutralise_formulas(table: pd.DataFrame) -> pd.DataFrame:
    """The table with every text cell (and column name) that starts with =, +, -, @, a tab or a carriage
    return prefixed with a single quote, so a spreadsheet shows it as text instead of running it as a
    formula (OWASP, "CSV Injection"). Numbers, and text that is only a number (e.g. "-5"), are untouched."""
    text_columns = [c for c in table.columns if table[c].dtype == object or pd.api.types.is_string_dtype(table[c])
                    or isinstance(table[c].dtype, pd.CategoricalDtype)]
    renamed = {c: _neutral(c) for c in table.columns if _neutral(c) != c}
    if not renamed and not any(table[c].map(lambda v: _neutral(v) is not v).any() for c in text_columns):
        return table
    safe = table.copy()
    for column in text_columns:
        safe[column] = safe[column].astype(object).map(_neutral)
    return safe.rename(columns=renamed)


_MARKUP = re.compile(r"</?[A-Za-z!?][^<>]*>|\{\\[^{}]*\}")  # HTML/XML tags; SubRip/ASS override blocks like {\an8}
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def plain_text(value: object, *, one_line: bool = True) -> str:
    """Text for a plain-text output (subtitles, youtube.txt, Kumu labels): tags (`<b>`, `<font ...>`) and
    subtitle override blocks (`{\\an8}`) removed, any other `<` `>` shown as ‹ ›, `-->` (a subtitle
    timing line) as an arrow, control characters dropped and, with `one_line`, line breaks made spaces
    (a line break in a subtitle would start a cue of its own)."""
    text = _MARKUP.sub("", str(value))
    text = text.replace("-->", "\u2192").replace("<", "\u2039").replace(">", "\u203a")
    text = _CONTROL.sub("", text)
    if one_line:
        text = " ".join(text.split())
    return text


def write_json(document: dict, path: Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(document, indent=2, default=str) + "\n")


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_gpkg(table: gpd.GeoDataFrame, path: Path, *, layer: str, qgis_style: str | None = None) -> None:
    """A GeoPackage with one layer, written atomically; with `qgis_style` (a QML document), also the
    layer's default QGIS style in the `layer_styles` table, as QGIS's "Save as Default" stores it
    (QGIS applies it when the layer is opened)."""
    _fixed_gpkg_date()
    with atomic_path(path) as tmp:
        table.to_file(tmp, layer=layer, driver="GPKG")
        if qgis_style is not None:
            _write_layer_style(tmp, layer=layer, geometry_column="geom", qml=qgis_style)


def _write_layer_style(path: Path, *, layer: str, geometry_column: str, qml: str) -> None:
    """One default style row in `layer_styles`, with the columns of QGIS's OGR provider (qgsogrprovider.cpp,
    saveStyle). QGIS matches f_table_schema '' (empty, not NULL), f_table_name = the layer and
    f_geometry_column; `update_time` is fixed (1 ms past the epoch: a GeoPackage DATETIME has milliseconds)
    so equal runs write equal files."""
    import pyogrio

    row = {"f_table_catalog": "", "f_table_schema": "", "f_table_name": layer, "f_geometry_column": geometry_column,
           "styleName": layer, "styleQML": qml, "styleSLD": "", "useAsDefault": True,
           "description": "midr-pipeline default style", "owner": "", "ui": "",
           "update_time": pd.Timestamp("1970-01-01T00:00:00.001", tz="UTC")}
    pyogrio.write_dataframe(pd.DataFrame([row]), path, layer=LAYER_STYLES, driver="GPKG", append=True)


def write_bytes(content: bytes, path: Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(content)


def write_parquet(table: pd.DataFrame, path: Path) -> None:
    with atomic_path(path) as tmp:
        table.to_parquet(tmp, index=False)


def _fixed_gpkg_date() -> None:
    """GeoPackages stamp their layers with the time of writing: fix it (for the whole process; GDAL reads
    the option at write time) so equal runs write equal files."""
    import pyogrio

    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": "1970-01-01T00:00:00.000Z"})


def write_figure(figure, path: Path, *, dpi: int = 150) -> None:
    """A matplotlib figure as PNG."""
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=dpi, format="png")


_WRITTEN: contextvars.ContextVar[list[Path] | None] = contextvars.ContextVar("written", default=None)


@contextlib.contextmanager
def written_files() -> Iterator[list[Path]]:
    """Collect the paths of every file written (renamed into place) in this thread while the block runs."""
    collected: list[Path] = []
    token = _WRITTEN.set(collected)
    try:
        yield collected
    finally:
        _WRITTEN.reset(token)


def note_written(path: Path) -> None:
    """Tell the active `written_files` block about a file written without `atomic_path`."""
    collected = _WRITTEN.get()
    if collected is not None:
        collected.append(Path(path))


def write_period_cog(raster: xr.DataArray, path: Path, *, band_names: list[str], nodata: float,
                     colormap: dict | None = None, tags: dict[str, str] | None = None,
                     skip_empty: bool = False, colour_interpretation: Sequence[str] | None = None) -> Path | None:
    """Write one period's raster as a COG where it is computed (on a worker: the pixels never travel to
    the driver; workers see the output folder as they see the inputs). None if `skip_empty` and the
    raster has no valid pixel."""
    try:
        if skip_empty and not np.isfinite(raster.values).any():
            return None
        write_cog(raster, path, band_names=band_names, nodata=nodata, colormap=colormap, tags=tags,
                  colour_interpretation=colour_interpretation)
    except PipelineError as err:  # a bad input or a full disk met on a worker: keep its kind on the way back
        raise detached(err)
    return path
