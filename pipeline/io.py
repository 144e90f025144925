"""Every read and every write of the pipeline.

Readers turn files into xarray/geopandas objects (lazy where it matters) and raise `InputError` naming
the file at fault. Writers take computed values and write each file once, to a temporary name in the
target folder that is renamed into place only when complete: no half-written file ever looks done.
"""

from __future__ import annotations

import contextlib
import contextvars
import errno
import glob
import hashlib
import json
import logging
import os
import re
from dataclasses import dataclass
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path

import dask
import dask.array as da
import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr
from rasterio.errors import RasterioIOError

from pipeline.errors import InputError, OutputError

__all__ = [
    "SceneFiles",
    "find_scene_files",
    "open_layer",
    "open_raster",
    "read_aois",
    "read_events",
    "write_cog",
    "write_csv",
    "write_json",
    "atomic_path",
    "sha256",
    "read_training_data",
    "write_gpkg",
    "read_validation_sample",
    "write_bytes",
    "read_model_file",
]

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------------------- readers


@dataclass
class SceneFiles:
    """One acquisition of one source: its time, an id, and where each native band lies.

    `layers` maps a native band name (description, file-name token or variable) to (file, 1-based band).
    """

    when: datetime
    scene_id: str
    layers: dict[str, tuple[Path, int]]


def find_scene_files(
    pattern: str,
    *,
    layout: str = "multiband",
    date_pattern: str = r"(\d{8})",
    date_format: str = "%Y%m%d",
    band_pattern: str | None = None,
    date_from: str = "name",
    key: str = "ingest",
    on_error: str = "raise",
) -> list[SceneFiles]:
    """The scenes of one files source, sorted by time; only file headers are read.

    layout "multiband": one file per date, bands named by their descriptions ("b1", ... without);
    "band-per-file": one file per band per date, the band from `band_pattern`, grouped by (date, name
    without the band); "date-per-band": one file per variable (`band_pattern` on the file name, default
    the file's stem), one band per date, the date from the band description or its DATETIME tag.
    The date comes from the file name (`date_pattern` group 1 in `date_format`) or, with `date_from`
    "tags", from TIFFTAG_DATETIME / DATETIME / ACQUISITION_DATE. `on_error` "skip" logs unreadable
    files and files without CRS and goes on.
    """
    paths = sorted(Path(p) for p in glob.glob(pattern))
    if not paths:
        raise InputError(f"no scene files match {pattern!r} ({key}.scenes)")
    date_regex = re.compile(date_pattern)
    band_regex = re.compile(band_pattern) if band_pattern else None
    if date_from == "name" and layout != "date-per-band" and not any(date_regex.search(p.name) for p in paths):
        raise InputError(f"{key}.date_pattern {date_pattern!r} matches none of the {len(paths)} files "
                         f"matching {pattern!r} (e.g. {paths[0].name})")
    scenes: dict[tuple[datetime, str], SceneFiles] = {}
    for path in paths:
        header = _read_header(path, key=key, on_error=on_error)
        if header is None:
            continue
        descriptions, tags, band_tags = header
        if layout == "date-per-band":
            variable = _band_token(path, band_regex, key) if band_regex else path.stem
            for index, (description, btags) in enumerate(zip(descriptions, band_tags), start=1):
                when = _band_time(path, index, description, btags, key)
                scene = scenes.setdefault((when, ""), SceneFiles(when, when.isoformat(), {}))
                scene.layers[variable] = (path, index)
            continue
        when = (_tag_time(path, tags, key) if date_from == "tags"
                else _name_time(path, date_regex, date_format, key, date_pattern))
        if layout == "band-per-file":
            if band_regex is None:
                raise InputError(f"{key}.band_pattern is needed for layout band-per-file")
            band = _band_token(path, band_regex, key)
            match = band_regex.search(path.name)
            scene_id = path.name[:match.start()].strip("_-. ") or Path(
                path.name[:match.start(1)] + path.name[match.end(1):]).stem.strip("_-. ")
            scene = scenes.setdefault((when, scene_id), SceneFiles(when, scene_id, {}))
            scene.layers[band] = (path, 1)
        else:
            names = [d or f"b{i}" for i, d in enumerate(descriptions, start=1)]
            scenes[(when, path.stem)] = SceneFiles(when, path.stem, {n: (path, i) for i, n in
                                                                    enumerate(names, start=1)})
    if not scenes:
        raise InputError(f"none of the {len(paths)} files matching {pattern!r} could be read ({key})")
    return [scenes[k] for k in sorted(scenes)]


def _read_header(path: Path, *, key: str, on_error: str):
    """(band descriptions, dataset tags, per-band tags), or None when skipped; raises InputError."""
    try:
        with rasterio.open(path) as src:
            if src.crs is None:
                problem = f"{path}: has no CRS; the pipeline needs georeferenced scenes"
            else:
                problem = _truncated(src, path)
                if problem is None:
                    return (list(src.descriptions), src.tags(),
                            [src.tags(i) for i in range(1, src.count + 1)])
    except (RasterioIOError, OSError) as err:
        problem = f"{path}: cannot open as a raster ({_one_line(err)})"
        if _looks_like_tiff(path):
            problem += "; the file looks truncated or corrupt (copy or download it again)"
    if on_error == "skip":
        log.warning("%s; skipped (%s.on_error: skip)", problem, key)
        return None
    if key == "ingest":  # the ingest.scenes shorthand has no on_error of its own
        raise InputError(f"{problem} (to skip such files, give the scenes as ingest.sources with on_error: skip)")
    raise InputError(f"{problem} (set {key}.on_error: skip to skip such files)")


_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")  # TIFF and BigTIFF, both byte orders


def _looks_like_tiff(path: Path) -> bool:
    try:
        with open(path, "rb") as stream:
            return stream.read(4) in _TIFF_MAGIC
    except OSError:
        return False


def _truncated(src, path: Path) -> str | None:
    """Why a (Geo)TIFF whose header reads is cut short, or None: the last block of each band must end
    within the file. Reads a few header entries, no pixels; other formats are not checked."""
    if src.driver not in ("GTiff", "COG"):
        return None
    try:
        size = os.path.getsize(path)
    except OSError:
        return None
    end = 0
    bands = range(1, src.count + 1) if getattr(src.interleaving, "value", None) == "BAND" else [1]
    for band in bands:
        block_y, block_x = src.block_shapes[band - 1]
        last = f"{-(-src.width // block_x) - 1}_{-(-src.height // block_y) - 1}"
        offset = src.get_tag_item(f"BLOCK_OFFSET_{last}", "TIFF", bidx=band)
        length = src.get_tag_item(f"BLOCK_SIZE_{last}", "TIFF", bidx=band)
        if offset and length:
            end = max(end, int(offset) + int(length))
    if end > size:
        return (f"{path}: is truncated: its pixel data end at byte {end} but the file has {size} bytes "
                "(copy or download it again)")
    return None


def _one_line(err: BaseException) -> str:
    """An exception's text on one line (GDAL messages may hold line breaks)."""
    return " ".join(str(err).split())


def _name_time(path: Path, regex: re.Pattern, date_format: str, key: str, date_pattern: str) -> datetime:
    match = regex.search(path.name)
    if match is None:
        raise InputError(f"{path}: no date in the file name matching {key}.date_pattern {date_pattern!r}")
    try:
        return datetime.strptime(match.group(1), date_format)
    except ValueError:
        raise InputError(
            f"{path}: {match.group(1)!r} is not a date in {key}.date_format {date_format!r}") from None


def _tag_time(path: Path, tags: dict, key: str) -> datetime:
    for name in ("TIFFTAG_DATETIME", "DATETIME", "ACQUISITION_DATE", "ACQUISITIONDATETIME"):
        if name in tags:
            text = tags[name]
            try:
                if name == "TIFFTAG_DATETIME":
                    return datetime.strptime(text, "%Y:%m:%d %H:%M:%S")
                return pd.Timestamp(text).tz_localize(None).to_pydatetime()
            except ValueError:
                raise InputError(f"{path}: tag {name}={text!r} is not a date ({key}.date_from)") from None
    raise InputError(f"{path}: no date tag (TIFFTAG_DATETIME, DATETIME, ACQUISITION_DATE) "
                     f"for {key}.date_from: tags")


def _band_time(path: Path, index: int, description: str | None, tags: dict, key: str) -> datetime:
    for text in (tags.get("DATETIME"), description):
        if text:
            try:
                return pd.Timestamp(text).tz_localize(None).to_pydatetime()
            except ValueError:
                continue
    raise InputError(f"{path}: band {index} has no date in its description or DATETIME tag "
                     f"({key}.layout: date-per-band)")


def _band_token(path: Path, regex: re.Pattern, key: str) -> str:
    match = regex.search(path.name)
    if match is None:
        raise InputError(f"{path}: no band in the file name matching {key}.band_pattern {regex.pattern!r}")
    return match.group(1)


def open_raster(path: Path | str, *, chunk_size: int) -> xr.DataArray:
    """A raster file (local path or URL GDAL reads), lazily: (band, y, x) in the file's dtype, every band
    and `chunk_size` pixels a side per chunk (a pixel-interleaved file is decompressed once per window,
    not once per band); CRS and grid as coordinates (`.odc.geobox`), nodata in attrs["nodata"], band
    descriptions in attrs["descriptions"].

    Each chunk opens the file, reads its window and closes it: reads run in parallel without a lock, and
    no file handle (with GDAL's per-dataset buffers) stays open while a long series is computed.
    """
    from odc.geo.geobox import GeoBox
    from odc.geo.xr import xr_coords

    try:
        with rasterio.open(path) as src:
            if src.crs is None:
                raise InputError(f"{path}: has no CRS; the pipeline needs georeferenced scenes")
            grid = GeoBox((src.height, src.width), src.transform, src.crs.to_wkt())
            count, dtype, nodata, descriptions = src.count, src.dtypes[0], src.nodata, src.descriptions
    except (RasterioIOError, OSError) as err:
        raise InputError(f"{path}: cannot open as a raster ({err})") from None
    chunks = ((count,), _split(grid.shape.y, chunk_size), _split(grid.shape.x, chunk_size))
    name = "read-" + dask.base.tokenize(str(path), os.path.getmtime(path) if os.path.exists(path) else 0,
                                         chunk_size)
    data = da.map_blocks(_read_block, path=str(path), chunks=chunks, dtype=dtype, name=name,
                         meta=np.array((), dtype=dtype))
    return xr.DataArray(data, coords={"band": np.arange(1, count + 1), **xr_coords(grid)},
                        dims=("band", *grid.dimensions),
                        attrs={"nodata": nodata, "descriptions": tuple(descriptions)})


def _split(size: int, chunk: int) -> tuple[int, ...]:
    return tuple(min(chunk, size - start) for start in range(0, size, chunk))


def _read_block(*, path: str, block_info=None) -> np.ndarray:
    """One chunk of `open_raster`: the window of bands, rows and columns dask asks for."""
    (b0, b1), (r0, r1), (c0, c1) = block_info[None]["array-location"]
    try:
        with rasterio.open(path) as src:
            return src.read(list(range(b0 + 1, b1 + 1)), window=((r0, r1), (c0, c1)))
    except (RasterioIOError, OSError) as err:  # a file cut short or damaged after its header was read
        cause = f"{_one_line(err)}{f': {_one_line(err.__cause__)}' if err.__cause__ else ''}"
        bands = f"band {b1}" if b1 - b0 == 1 else f"bands {b0 + 1}-{b1}"
        raise InputError(f"{path}: cannot read {bands}, rows {r0}-{r1 - 1} ({cause}); the file looks "
                         "truncated or corrupt (copy or download it again)") from None


def open_layer(path: Path | str, band: int, *, chunk_size: int) -> xr.DataArray:
    """One band (1-based) of a raster file, lazily: (y, x) in the file's dtype, CRS and nodata kept."""
    return open_raster(path, chunk_size=chunk_size).isel(band=band - 1, drop=True)


def read_aois(path: Path, *, id_field: str) -> gpd.GeoDataFrame:
    """Mine areas (one polygon feature per AOI) with a unique id column `aoi_id`."""
    aois = _read_vector(path, what="AOI file (aoi.path)")
    if aois.empty:
        raise InputError(f"{path}: the AOI file has no features; it needs one polygon per mine area (aoi.path)")
    if id_field not in aois.columns:
        raise InputError(
            f"{path}: no field {id_field!r} (aoi.id_field); fields are {sorted(map(str, aois.columns))}"
        )
    if aois.crs is None:
        raise InputError(f"{path}: the AOI file has no CRS")
    aois = aois.rename(columns={id_field: "aoi_id"})
    aois["aoi_id"] = aois["aoi_id"].astype(str)
    duplicated = aois["aoi_id"][aois["aoi_id"].duplicated()].unique()
    if len(duplicated):
        raise InputError(f"{path}: AOI ids must be unique, repeated: {list(duplicated)}")
    if not aois.geom_type.isin(["Polygon", "MultiPolygon"]).all():
        raise InputError(f"{path}: every AOI must be a polygon")
    return aois


def read_events(path: Path) -> pd.DataFrame:
    """Resettlement events in the columns of the resettlement events table (CSV or GeoPackage).

    In a GeoPackage (or other vector file) whose features are polygons, each polygon is the origin
    community's outline and becomes the `origin_wkt` column (WGS84 WKT); point features are ignored
    (the table's coordinate columns locate the points)."""
    if not path.exists():
        raise InputError(f"{path}: events file not found (events.path)")
    try:
        if path.suffix.lower() == ".csv":
            events = pd.read_csv(path, dtype={"event_id": str})
        else:
            frame = gpd.read_file(path)
            events = pd.DataFrame(frame.drop(columns="geometry", errors="ignore"))
            if frame.crs is not None and frame.geom_type.isin(["Polygon", "MultiPolygon"]).any():
                outlines = frame.geometry.to_crs(4326)
                events["origin_wkt"] = [g.wkt if g is not None and g.geom_type.endswith("Polygon") else None
                                        for g in outlines]
    except Exception as err:  # pandas/pyogrio raise many types for unreadable files
        raise InputError(f"{path}: cannot read the events table ({err})") from None
    required = ["event_id", "year_start"]
    missing = [c for c in required if c not in events.columns]
    if missing:
        raise InputError(f"{path}: the events table lacks the column(s) {missing} (events.path; every "
                         f"table needs {required}, columns found: {sorted(map(str, events.columns))})")
    return events


def _read_vector(path: Path, *, what: str) -> gpd.GeoDataFrame:
    if not path.exists():
        raise InputError(f"{path}: {what} not found")
    try:
        return gpd.read_file(path)
    except Exception as err:  # pyogrio raises DataSourceError, ValueError, ...
        raise InputError(f"{path}: cannot read the {what} ({err})") from None


# ----------------------------------------------------------------------------------------- writers


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path beside `path`, renamed to `path` when the block ends without error.

    However the block fails, the temporary file is removed and a previous file at `path` is left as it
    was. A full disk, or a folder that cannot be written, raises OutputError naming `path`.
    """
    tmp = path.with_name(f".{path.stem}.part{path.suffix}")
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
) -> None:
    """Write a computed (band, y, x) or (y, x) raster as a Cloud-Optimised GeoTIFF (deflate, overviews).

    CRS and transform come from the raster (`.rio`); band descriptions from `band_names`.
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
        "overview_resampling": "nearest" if colormap is not None else "average",
    }
    with atomic_path(path) as tmp:
        with rasterio.open(tmp, "w", **profile) as dst:
            dst.write(values)
            for i, name in enumerate(band_names, start=1):
                dst.set_band_description(i, name)
            if colormap is not None:
                dst.write_colormap(1, colormap)


def write_csv(table: pd.DataFrame, path: Path) -> None:
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False, float_format="%.4f")


def write_json(document: dict, path: Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(document, indent=2, default=str) + "\n")


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# ------------------------------------------------------------------ classification inputs and outputs


def read_training_data(path: Path, *, class_field: str, period_field: str | None,
                       class_codes: Sequence[int] | None = None, merge_classes: dict[int, int] | None = None,
                       ignore_classes: Sequence[int] = ()) -> gpd.GeoDataFrame:
    """Labelled points or polygons (GPKG/GeoJSON/Shapefile) with an integer `class_code` and, where
    given, a `period` (year) column. Polygons are sampled to pixels later (classify.polygon_pixels).

    With `class_codes` (the config's classes), a label whose code, after `ignore_classes` and
    `merge_classes`, is not one of them raises InputError: once, before any AOI runs."""
    labels = _read_vector(path, what="training data (classify.training)")
    for name in (class_field, period_field):
        if name is not None and name not in labels.columns:
            raise InputError(f"{path}: no field {name!r}; fields are {sorted(map(str, labels.columns))}")
    if labels.crs is None:
        raise InputError(f"{path}: the training data has no CRS")
    kinds = set(labels.geom_type)
    if not (kinds <= {"Point"} or kinds <= {"Polygon", "MultiPolygon"}):
        raise InputError(f"{path}: training data must be all points or all polygons, found {sorted(kinds)}")
    renamed = {class_field: "class_code"} | ({period_field: "period"} if period_field else {})
    labels = labels.rename(columns=renamed)
    try:
        labels["class_code"] = labels["class_code"].astype(int)
        if period_field:
            labels["period"] = labels["period"].astype(int)
    except (TypeError, ValueError) as err:
        raise InputError(f"{path}: field {class_field!r} or {period_field!r} is not an integer ({err})") from None
    if class_codes is not None:
        kept = labels["class_code"][~labels["class_code"].isin(list(ignore_classes))]
        codes = kept.replace(merge_classes or {})
        unknown = sorted(int(c) for c in set(codes) - set(class_codes))
        if unknown:
            raise InputError(
                f"{path}: {int(codes.isin(unknown).sum())} label(s) have class codes {unknown} (field "
                f"{class_field!r}) that are not in the config's classes {sorted(class_codes)}; add them to "
                "`classes`, map them with classify.merge_classes or leave them out with classify.ignore_classes")
    return labels


def write_gpkg(table: gpd.GeoDataFrame, path: Path, *, layer: str) -> None:
    """A GeoPackage with one layer, written atomically."""
    _fixed_gpkg_date()
    with atomic_path(path) as tmp:
        table.to_file(tmp, layer=layer, driver="GPKG")


def read_validation_sample(path: Path, *, reference_field: str) -> gpd.GeoDataFrame:
    """A labelled validation sample (validation/sample_design.gpkg after labelling in QGIS): the
    pipeline's columns (sample_id, map_code) and an integer `reference_code` on every row."""
    sample = _read_vector(path, what="validation sample (classify.validation_sample)")
    missing = [c for c in ("sample_id", "map_code", reference_field) if c not in sample.columns]
    if missing:
        raise InputError(f"{path}: the validation sample lacks the field(s) {missing}")
    unlabelled = sample[reference_field].isna()
    if unlabelled.any():
        ids = sample.loc[unlabelled, "sample_id"].tolist()
        raise InputError(f"{path}: {int(unlabelled.sum())} sample(s) have no {reference_field!r} yet "
                         f"(sample_id {ids[:10]}{' ...' if len(ids) > 10 else ''}); label them all")
    sample = sample.rename(columns={reference_field: "reference_code"})
    sample["reference_code"] = sample["reference_code"].astype(int)
    return sample


def write_bytes(content: bytes, path: Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(content)


def read_model_file(path: Path) -> tuple[bytes, dict]:
    """A saved model's skops bytes and its metadata (the JSON beside it, same stem)."""
    meta_path = path.with_suffix(".json")
    for needed in (path, meta_path):
        if not needed.is_file():
            raise InputError(f"{needed}: model file not found (classify.model_path)")
    try:
        return path.read_bytes(), json.loads(meta_path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise InputError(f"{meta_path}: cannot read the model metadata ({err})") from None


def write_parquet(table: pd.DataFrame, path: Path) -> None:
    with atomic_path(path) as tmp:
        table.to_parquet(tmp, index=False)


_SAV_CREATED = 92  # offset of creation_date (9 bytes) and creation_time (8 bytes) in the .sav header


def _fixed_gpkg_date() -> None:
    """GeoPackages stamp their layers with the time of writing: fix it (for the whole process; GDAL reads
    the option at write time) so equal runs write equal files."""
    import pyogrio

    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": "1970-01-01T00:00:00.000Z"})


def write_sav(table: pd.DataFrame, path: Path, *, column_labels: dict[str, str],
              value_labels: dict[str, dict]) -> None:
    """An SPSS .sav with variable labels and value labels (pyreadstat)."""
    import pyreadstat

    with atomic_path(path) as tmp:
        pyreadstat.write_sav(table, str(tmp), column_labels=column_labels,
                             variable_value_labels={k: v for k, v in value_labels.items() if k in table.columns})
        with open(tmp, "r+b") as stream:  # the header's creation date and time: fixed, so equal runs give equal files
            stream.seek(_SAV_CREATED)
            stream.write(b"01 Jan 7000:00:00")


def write_figure(figure, path: Path, *, dpi: int = 150) -> None:
    """A matplotlib figure as PNG."""
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=dpi, format="png")


# ------------------------------------------------------------------------- what a stage wrote

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
