"""Every output file of a run, with the format a reader needs to know to open it (for the report)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import quote

__all__ = ["file_format", "file_groups"]

_BY_SUFFIX = {
    ".tif": "GeoTIFF (COG)", ".qml": "QGIS style", ".csv": "CSV", ".parquet": "Parquet", ".gpkg": "GeoPackage",
    ".json": "JSON", ".mp4": "MP4 video (H.264)", ".srt": "SubRip subtitles", ".png": "PNG image",
    ".txt": "text", ".skops": "scikit-learn model (skops)", ".sav": "SPSS data (.sav)",
}
_SKIP = {".midr", "report"}  # stage stamps (internal) and the report itself


def file_format(path: Path) -> str:
    """What a file is, for a reader: "GeoTIFF (COG)", "QGIS style", "GDAL class names (.aux.xml)", ..."""
    name = path.name
    if name.endswith(".tif.aux.xml"):
        return "class names for GDAL/ArcGIS (.aux.xml)"
    if name == "kumu.json":
        return "Kumu network (JSON)"
    if name == "manifest.json":
        return "run manifest (JSON)"
    if path.suffix == ".json" and path.parent.name == "models":
        return "model metadata (JSON)"
    if path.suffix == ".json" and "stac" in path.parts:
        return "STAC catalog (JSON)"
    if name == "youtube.txt":
        return "YouTube title, description, chapters (text)"
    if name.endswith("_false_colour.qml"):
        return "QGIS style, false colour"
    return _BY_SUFFIX.get(path.suffix, path.suffix.lstrip(".") or "file")


def file_groups(root: Path, page_dir: Path, *, exclude: Iterable[Path] = ()) -> list[dict]:
    """The files under `root` (not the stage stamps, not the report, nothing hidden, not `exclude`), by
    folder and format: [{"folder", "formats": [{"format", "files": [{"name", "href"}]}]}], hrefs relative
    to `page_dir`, folders and files in name order. No sizes: the manifest's varies with the run's timings,
    and equal runs must give equal reports."""
    excluded = {Path(p) for p in exclude}
    groups: dict[str, dict[str, list[dict]]] = {}
    for folder, subfolders, names in os.walk(root):
        subfolders[:] = sorted(d for d in subfolders if d not in _SKIP and not d.startswith("."))
        for name in sorted(names):
            path = Path(folder) / name
            if name.startswith(".") or path in excluded:
                continue
            where = Path(folder).relative_to(root).as_posix()
            where = "" if where == "." else f"{where}/"
            groups.setdefault(where, {}).setdefault(file_format(path), []).append(
                {"name": name, "href": _href(path, page_dir)})
    return [{"folder": folder, "formats": [{"format": kind, "files": files} for kind, files in formats.items()]}
            for folder, formats in sorted(groups.items())]


def _href(target: Path, page_dir: Path) -> str:
    return "/".join(quote(part) for part in Path(os.path.relpath(target, page_dir)).parts)
