"""Scene discovery: the files of a files source -> one `SceneFiles` per acquisition (headers only).

Dates come from file names, tags or band descriptions; bands from descriptions, file-name tokens or
variables. Globs are recursive (`**` matches any depth of folders). Unreadable, truncated or
unreferenced files fail here, naming the file and the key; so does a band of a scene found in several
files (e.g. a Sentinel-2 SAFE's B02 at 10, 20 and 60 m), naming the files and the key that chooses.
"""

from __future__ import annotations

import glob
import logging
import os
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pandas as pd
import rasterio
from rasterio.errors import RasterioIOError

from pipeline.errors import InputError
from pipeline.ingest.rasters import one_line as _one_line

__all__ = ["SceneFiles", "find_scene_files"]

log = logging.getLogger(__name__)


@dataclass
class SceneFiles:
    """One acquisition of one source: its time, an id, and where each native band lies.

    `layers` maps a native band name (description, file-name token or variable) to (file, 1-based band).
    `radiometry`: the product's own scale and offsets where its metadata give them (set by `sources`,
    e.g. from a Sentinel-2 MTD_MSIL2A.xml), else None. `footprint`: (left, bottom, right, top) and the
    CRS (WKT) of the scene's first file, from its header.
    """

    when: datetime
    scene_id: str
    layers: dict[str, tuple[Path, int]]
    radiometry: object | None = field(default=None, compare=False)
    footprint: tuple[tuple[float, float, float, float], str] | None = field(default=None, compare=False)


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
    paths = sorted(Path(p) for p in glob.glob(pattern, recursive=True) if Path(p).is_file())
    if not paths:
        raise InputError(f"no scene files match {pattern!r} ({key}.scenes)")
    date_regex = re.compile(date_pattern)
    band_regex = re.compile(band_pattern) if band_pattern else None
    if band_regex is not None and layout != "multiband":
        paths = _with_band(paths, band_regex, key=key, pattern=pattern)
    seen: dict[tuple, list[Path]] = {}  # (time, scene, band) -> files, to find a band given by several files
    if date_from == "name" and layout != "date-per-band" and not any(date_regex.search(p.name) for p in paths):
        raise InputError(f"{key}.date_pattern {date_pattern!r} matches none of the {len(paths)} files "
                         f"matching {pattern!r} (e.g. {paths[0].name})")
    scenes: dict[tuple[datetime, str], SceneFiles] = {}
    for path in paths:
        header = _read_header(path, key=key, on_error=on_error)
        if header is None:
            continue
        descriptions, tags, band_tags, footprint = header
        if layout == "date-per-band":
            variable = _band_token(path, band_regex, key) if band_regex else path.stem
            for index, (description, btags) in enumerate(zip(descriptions, band_tags), start=1):
                when = _band_time(path, index, description, btags, key)
                scene = scenes.setdefault((when, ""), SceneFiles(when, when.isoformat(), {}, footprint=footprint))
                scene.layers[variable] = (path, index)
                seen.setdefault((when, scene.scene_id, variable), []).append(path)
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
            scene = scenes.setdefault((when, scene_id), SceneFiles(when, scene_id, {}, footprint=footprint))
            scene.layers[band] = (path, 1)
            seen.setdefault((when, scene_id, band), []).append(path)
        else:
            names = [d or f"b{i}" for i, d in enumerate(descriptions, start=1)]
            repeated = sorted({n for n in names if names.count(n) > 1})
            if repeated:
                raise InputError(f"{path}: the band description(s) {repeated} occur more than once, so "
                                 f"{key}.bands cannot tell those bands apart; give each band its own description")
            if (when, path.stem) in scenes:
                first = next(iter(scenes[(when, path.stem)].layers.values()))[0]
                seen.setdefault((when, path.stem, "(all bands)"), [first]).append(path)
            scenes[(when, path.stem)] = SceneFiles(when, path.stem, {n: (path, i) for i, n in
                                                                    enumerate(names, start=1)}, footprint=footprint)
    _check_unique(seen, key=key, layout=layout)
    if not scenes:
        raise InputError(f"none of the {len(paths)} files matching {pattern!r} could be read ({key})")
    return [scenes[k] for k in sorted(scenes)]


def _with_band(paths: list[Path], regex: re.Pattern, *, key: str, pattern: str) -> list[Path]:
    """The files whose name has a band for `regex`; the others are left out with a log line (a `**` glob
    over a product folder also finds its previews, metadata and quality files)."""
    kept = [p for p in paths if regex.search(p.name)]
    if not kept:
        raise InputError(f"{key}.band_pattern {regex.pattern!r} matches none of the {len(paths)} files matching "
                         f"{pattern!r} (e.g. {paths[0].name})")
    if len(kept) < len(paths):
        left = [p.name for p in paths if not regex.search(p.name)]
        log.info("%s: %d of %d files have no band matching band_pattern %r; left out (e.g. %s)", key, len(left),
                 len(paths), regex.pattern, left[0])
    return kept


def _check_unique(seen: dict[tuple, list[Path]], *, key: str, layout: str) -> None:
    """Raise InputError naming the files when one band of one scene comes from several files."""
    for (when, scene_id, band), files in seen.items():
        if len(files) > 1:
            chooser = (f"{key}.band_pattern (e.g. '_(B0[2348](?=_10m)|B1[12](?=_20m)|SCL(?=_20m))_' keeps "
                       "Sentinel-2's native resolutions) or a narrower "
                       f"{key}.scenes" if layout == "band-per-file" else f"a narrower {key}.scenes")
            scene = f"scene {scene_id!r} ({when.isoformat()})" if scene_id != when.isoformat() else f"scene {scene_id}"
            what = scene if band == "(all bands)" else f"band {band!r} of {scene}"
            raise InputError(f"{what} is in {len(files)} files: {', '.join(str(f) for f in files)}; choose one "
                             f"with {chooser}")


def _read_header(path: Path, *, key: str, on_error: str):
    """(band descriptions, dataset tags, per-band tags, (bounds, CRS WKT)), or None when skipped; raises
    InputError."""
    try:
        with rasterio.open(path) as src:
            if src.crs is None:
                problem = f"{path}: has no CRS; the pipeline needs georeferenced scenes"
            else:
                problem = _truncated(src, path)
                if problem is None:
                    return (list(src.descriptions), src.tags(),
                            [src.tags(i) for i in range(1, src.count + 1)], (tuple(src.bounds), src.crs.to_wkt()))
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
