"""The HTML report of a run: what its pages say, that everything they reference is there, that it is
byte-identical when written again, that public runs hide communities, and that failed AOIs do not
break it. (tests/test_report_browser.py opens it in Chromium.)"""

from __future__ import annotations

import hashlib
import json
import shutil
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import numpy as np
import pandas as pd
import pytest

from pipeline.classify import sampling as accuracies
from pipeline.products.report import write_report
from pipeline.results import OutputLayout, open_run

from conftest import midr


class Page(HTMLParser):
    """A report page, parsed: its text, links, referenced files and tables (rows of cell texts)."""

    def __init__(self, path: Path):
        super().__init__()
        self.path, self.text_parts, self.links, self.sources = path, [], [], []
        self.tables: dict[str, list[list[str]]] = {}
        self._table, self._row, self._cell = None, None, None
        self.feed(path.read_text(encoding="utf-8"))

    @property
    def text(self) -> str:
        return " ".join("".join(self.text_parts).split())

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "a" and "href" in attrs:
            self.links.append(attrs["href"])
        for name in ("src", "poster"):
            if tag in ("img", "video") and attrs.get(name):
                self.sources.append(attrs[name])
        if tag == "link" and attrs.get("rel") == "stylesheet":
            self.sources.append(attrs["href"])
        if tag == "br":
            self.handle_data(" ")
        if tag == "table":
            self._table = self.tables.setdefault(attrs.get("id") or attrs.get("class", "") + str(len(self.tables)), [])
        elif tag == "tr" and self._table is not None:
            self._row = []
            self._table.append(self._row)
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "table":
            self._table = self._row = None

    def handle_data(self, data):
        self.text_parts.append(data)
        if self._cell is not None:
            self._cell.append(data)

    def local_targets(self) -> list[Path]:
        """Every file the page links to or embeds, outside the internet."""
        targets = []
        for ref in self.links + self.sources:
            url = urlsplit(ref)
            if url.scheme or not url.path:  # http(s) sources, #anchors
                continue
            targets.append((self.path.parent / unquote(url.path)).resolve())
        return targets


def _copy_run(demo_run: Path, where: Path) -> Path:
    """A copy of the small demo's run folder (the report is written into the copy)."""
    shutil.copytree(demo_run / "outputs" / "demo_small", where)
    return where


@pytest.fixture(scope="module")
def report_run(demo_run, tmp_path_factory) -> Path:
    run_dir = _copy_run(demo_run, tmp_path_factory.mktemp("report") / "demo_small")
    write_report(run_dir)
    return run_dir


def test_overview_lists_the_aoi_with_its_records_footprint_and_provenance(report_run):
    layout = OutputLayout(report_run)
    page = Page(layout.report_index)
    record = pd.read_csv(layout.event_records).iloc[0]
    row = next(r for r in page.tables["aoi-table"] if r[0].startswith("demo_mine"))
    assert row[1:5] == [record["country"], record["company"], record["commodity"], record["lifecycle_stage"]]
    footprint = pd.read_csv(layout.mining_footprint("demo_mine"))
    first, last = footprint["area_ha"].iloc[0], footprint["area_ha"].iloc[-1]
    assert row[5].startswith(f"{first:,.1f} → {last:,.1f}") and row[6].startswith(f"{last - first:+,.1f} ha")
    assert row[7] == "1" and row[8] == "done"
    assert "demo_mine.html" in page.links
    manifest = json.loads(layout.manifest.read_text())
    assert manifest["config_sha256"] in page.text and "demo_small" in page.text
    versions = dict(page.tables["versions"][1:])
    assert versions["xarray"] == manifest["versions"]["xarray"] and versions["midr-pipeline"] == "0.1.0"
    for entry in manifest["inputs"]:
        assert entry["sha256"][:12] in page.text and entry["path"] not in page.text  # relative paths only
    assert "../exports/baci.csv" in page.links and "../summary/effects_by_indicator.csv" in page.links


def test_aoi_page_shows_accuracy_events_and_baci_effects_as_in_the_run(report_run):
    run = open_run(report_run)
    page = Page(run.layout.report_page("demo_mine"))
    accuracy = run.accuracy("demo_mine")
    assert f"Overall accuracy {accuracy['overall_accuracy'] * 100:.1f}%" in page.text
    baci = run.baci("demo_mine")
    assert set(baci["event_id"]) == {"demo_mine_village_a"} and "demo_mine_village_a" in page.text
    rows, zone = {}, None
    for cells in next(t for name, t in page.tables.items() if name.startswith("data effects"))[1:]:
        if len(cells) == 7:  # the first row of a zone carries its name (rowspan)
            zone, cells = cells[0], cells[1:]
        rows[(zone, cells[0])] = cells
    assert len(rows) == len(baci) == 12
    for effect in baci.itertuples():
        cells = rows[(effect.zone.replace("_", " "), effect.class_name)]
        assert cells[4] == f"{effect.effect_ha:+,.2f} [{effect.ci95_low_ha:+,.2f}, {effect.ci95_high_ha:+,.2f}]"
        assert cells[5] == "ok"
    built = baci[(baci["class_name"] == "built-up") & (baci["zone"] == "origin_community")].iloc[0]
    assert built["ci95_high_ha"] < 0  # the village was cleared: shown as an effect clear of zero
    matrix = next(t for name, t in page.tables.items() if "matrix" in name and "reference" in t[0][0])
    counts = np.asarray(accuracy["confusion_matrix"]["counts"])
    assert [int(v) for v in matrix[1][1:-1]] == counts[0].tolist()
    families = next(t for name, t in page.tables.items() if "importance" in name and t[0][0] == "Feature families")
    want = [r for r in accuracy["spatial_cv"]["importance"]["features"] if r["kind"] == "group"]
    assert [row[0] for row in families[1:]] == [r["feature"] for r in want]   # what carried the classification
    assert families[1][1] == f"{want[0]['mean_oa_drop']:.3f}"
    assert "240 households resettled from Village A" in page.text  # the caption (not a public run)
    assert "synthetic demo generated by pipeline.demo" in page.text  # the record's source
    periods = run.periods("demo_mine")
    assert [s for s in page.sources if "classes_" in s] == [f"assets/demo_mine/classes_{p}.png" for p in periods]
    assert {"../demo_mine/video/demo_mine.mp4", "../demo_mine/video/demo_mine_poster.png"} <= set(page.sources)
    transitions = next(t for name, t in page.tables.items() if "matrix" in name and "↓" in t[0][0])
    first_last = pd.read_csv(run.layout.transitions_first_last("demo_mine"))
    assert transitions[-1][-1] == f"{first_last['area_ha'].sum():,.1f}"


def test_aoi_page_states_the_aoi_area_and_the_period_most_without_data(report_run):
    """Cloud is reported as missing data, not as a change of land cover: the page names the cloudiest
    period with its nodata and gap-filled shares, and the AOI's area, from the run's tables."""
    run = open_run(report_run)
    page = Page(run.layout.report_page("demo_mine"))
    aoi = run.aoi_table("demo_mine").iloc[0]
    per_period = run.class_area("demo_mine").drop_duplicates("period").set_index("period")
    worst = per_period["nodata_pct"].idxmax()
    label = run.period_labels("demo_mine")[worst]
    assert f"AOI {aoi['area_ha']:,.0f} ha" in page.text
    assert (f"Most without data: {label}, {per_period.at[worst, 'nodata_pct']:.1f}% of the AOI "
            f"({per_period.at[worst, 'filled_pct']:.1f}% gap-filled)") in page.text
    assert "minimum mapping unit 0.50 ha (8-connected)" in page.text and "share of the mapped area" in page.text
def test_the_report_links_every_output_file_with_its_format(report_run):
    """Every file of the run (not the stage stamps, not the report itself) is linked from a page, in a
    row naming its format; the links resolve."""
    layout = OutputLayout(report_run)
    pages = [Page(p) for p in sorted(layout.report.glob("*.html"))]
    linked = {t for page in pages for t in page.local_targets()}
    outputs = {p.resolve() for p in report_run.rglob("*") if p.is_file() and ".midr" not in p.parts
               and "report" not in p.relative_to(report_run).parts and not p.name.startswith(".")}
    assert outputs and not sorted(str(p.relative_to(report_run)) for p in outputs - linked)
    files = Page(layout.report_page("demo_mine")).tables["aoi-files"]
    formats = {row[-2]: row[-1] for row in files[1:]}
    assert "2018.tif" in formats["GeoTIFF (COG)"] and "2018.qml" in formats["QGIS style"]
    assert "2018.tif.aux.xml" in formats["class names for GDAL/ArcGIS (.aux.xml)"]
    assert "2018_false_colour.qml" in formats["QGIS style, false colour"]
    assert formats["GeoPackage"] in ("event_zones.gpkg", "sample_design.gpkg")
    run_files = {row[-2]: row[-1] for row in Page(layout.report_index).tables["run-files"][1:]}
    assert run_files["STAC catalog (JSON)"] and "manifest.json" in run_files["run manifest (JSON)"]


def test_aoi_page_shows_each_periods_composite_with_its_nodata_share(report_run):
    import rasterio

    run = open_run(report_run)
    page = Page(run.layout.report_page("demo_mine"))
    periods = run.periods("demo_mine")
    assert [s for s in page.sources if "composite_" in s] == [f"assets/demo_mine/composite_{p}.png" for p in periods]
    bands = {}
    for period in periods:
        with rasterio.open(run.layout.composite("demo_mine", period)) as src:
            rgb = [src.descriptions.index(b) + 1 for b in ("red", "green", "blue")]
            bands[period] = np.isfinite(src.read(rgb)).all(axis=0)
    aoi = np.any(list(bands.values()), axis=0)  # the small demo is not decimated: the share is exact
    for period in periods:
        share = 1 - bands[period][aoi].mean()
        assert f"{period} {share * 100:.1f}% no data" in page.text, period
    assert any(1 - bands[p][aoi].mean() > 0.1 for p in periods)  # some period is clouded: the figure matters
    from PIL import Image

    thumb = np.asarray(Image.open(run.layout.report_assets("demo_mine") / f"composite_{periods[0]}.png"))
    assert thumb.shape[:2] == bands[periods[0]].shape and (thumb[~bands[periods[0]]] == 0).all()  # nodata black


def test_aoi_page_maps_the_event_zones_and_the_first_change(report_run):
    run = open_run(report_run)
    page = Page(run.layout.report_page("demo_mine"))
    assert "assets/demo_mine/event_zones.png" in page.sources and "assets/demo_mine/first_change.png" in page.sources
    assert "origin community, resettlement site, control ring, over the 2017 composite" in page.text  # event 2018
    for name in ("event_zones.png", "first_change.png"):
        assert (run.layout.report_assets("demo_mine") / name).stat().st_size > 10_000


def test_the_across_events_table_gives_intervals(report_run):
    layout = OutputLayout(report_run)
    table = Page(layout.report_index).tables["effects-table"]
    summary = pd.read_csv(layout.effects_by_indicator)
    row = summary[(summary.indicator == "country") & (summary.zone == "origin_community")
                  & (summary.class_name == "built-up")].iloc[0]
    cells = next(r for r in table if r[0] == "Country")
    header = table[0]
    cell = cells[header.index(next(h for h in header if h.startswith("built-up origin")))]
    assert cell == (f"{row.pooled_effect_ha:+,.2f} [{row.pooled_ci95_low_ha:+,.2f}, {row.pooled_ci95_high_ha:+,.2f}]")
    baci = pd.read_csv(layout.baci("demo_mine")).set_index(["zone", "class_name"]).loc[("origin_community", "built-up")]
    assert (row.pooled_ci95_low_ha, row.pooled_ci95_high_ha) == pytest.approx((baci.ci95_low_ha, baci.ci95_high_ha))


def test_every_file_the_report_references_exists_and_paths_are_relative(report_run):
    layout = OutputLayout(report_run)
    pages = sorted(layout.report.glob("*.html"))
    assert [p.name for p in pages] == ["demo_mine.html", "index.html"]
    for path in pages:
        page = Page(path)
        missing = [str(t) for t in page.local_targets() if not t.is_file()]
        assert not missing, f"{path.name} references missing files {missing}"
        assert str(report_run) not in path.read_text() and "file:" not in path.read_text()
    pngs = list(layout.report.rglob("*.png"))
    assert len(pngs) >= 8 and all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    assert not any(b"tEXt" in p.read_bytes() for p in pngs)  # no metadata (e.g. a matplotlib version)


def test_report_is_byte_identical_when_written_again_elsewhere(report_run, demo_run, tmp_path):
    other = _copy_run(demo_run, tmp_path / "elsewhere" / "demo_small")
    (other / "report" / "assets").mkdir(parents=True, exist_ok=True)  # the run wrote a report already
    (other / "report" / "assets" / "old.png").write_bytes(b"from an earlier report")
    written = write_report(other)
    assert not (other / "report" / "assets" / "old.png").exists()

    def digests(run_dir: Path) -> dict[str, str]:
        return {str(p.relative_to(run_dir)): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted((run_dir / "report").rglob("*")) if p.is_file()}

    assert digests(other) == digests(report_run)
    assert sorted(str(p.relative_to(other)) for p in written) == sorted(digests(other))


def test_area_estimates_are_shown_with_their_confidence_intervals(demo_run, tmp_path):
    run_dir = _copy_run(demo_run, tmp_path / "demo_small")
    layout = OutputLayout(run_dir)
    counts = np.diag([40, 40, 40, 40, 40, 40]) + 2  # map (rows) x reference
    table = accuracies.area_estimate_table(counts, np.array([900, 2000, 3000, 500, 200, 600]),
                                           codes=[1, 2, 3, 4, 5, 6], names=[c.name for c in open_run(run_dir).classes],
                                           pixel_area_ha=0.09)
    table.to_csv(layout.area_estimates("demo_mine"), index=False)
    accuracy = json.loads(layout.accuracy("demo_mine").read_text())
    matrix = {"labels": [1, 2, 3, 4, 5, 6], "rows": "map", "columns": "reference", "counts": counts.tolist()}
    accuracy["design_based"] = {"method": f"Olofsson et al. (2014); sample {tmp_path / 'labelled.gpkg'}",
                                "n_samples": int(counts.sum()), "overall_accuracy": 0.8, "se_overall_accuracy": 0.02,
                                "confusion_matrix": matrix}
    layout.accuracy("demo_mine").write_text(json.dumps(accuracy))
    write_report(run_dir)
    page = Page(layout.report_page("demo_mine"))
    rows = {r[0]: r for r in next(t for n, t in page.tables.items() if n.startswith("data area-estimates"))[1:]}
    for estimate in table.itertuples():
        assert rows[estimate.class_name][2] == f"{estimate.adjusted_area_ha:,.1f}"
        assert rows[estimate.class_name][3] == f"[{estimate.ci95_low_ha:,.1f}, {estimate.ci95_high_ha:,.1f}]"
    assert "design-based 80.0% ± 3.9%" in page.text
    assert str(tmp_path) not in page.text and "labelled.gpkg" in page.text


def test_failed_and_composites_only_aois_get_pages_that_say_so(demo_run, tmp_path):
    run_dir = _copy_run(demo_run, tmp_path / "demo_small")
    layout = OutputLayout(run_dir)
    manifest = json.loads(layout.manifest.read_text())
    stages = manifest["aois"]["demo_mine"]["stages"]
    for stage in ("classify", "change", "events"):  # as a run with no classify section
        stages[stage] = {"status": "skipped", "reason": "no classify section"}
    manifest["aois"]["nowhere"] = {"status": "failed", "error": "InputError: the AOI does not overlap any of the "
                                   "18 scenes", "stages": {"ingest": {"status": "failed", "seconds": 0.1}}}
    manifest["status"] = "failed"
    layout.manifest.write_text(json.dumps(manifest))
    write_report(run_dir)
    overview = Page(layout.report_index)
    statuses = {r[0].split()[0]: r[8] for r in overview.tables["aoi-table"][1:]}
    assert statuses["nowhere"].startswith("failed") and "does not overlap" in statuses["nowhere"]
    assert statuses["demo_mine"] == "done skipped: no classify section"
    failed = Page(layout.report_page("nowhere"))
    assert "This AOI failed: InputError: the AOI does not overlap any of the 18 scenes" in failed.text
    assert not failed.sources[1:] and "index.html" in failed.links
    only = Page(layout.report_page("demo_mine"))
    assert "Some stages were skipped: no classify section" in only.text
    assert not [s for s in only.sources if "classes_" in s] and "Accuracy assessment" not in only.text
    assert "not classified" in only.text
    assert "../demo_mine/video/demo_mine.mp4" in only.sources


def test_public_report_names_no_community_and_gives_no_location(demo_run):
    config = (demo_run / "config.yaml").read_text().replace("run_name: demo_small", "run_name: report_public")
    config = config.replace("dask:\n", "dask:\n  cluster: threads\n") + "public:\n  enabled: true\n  grid_m: 1000\n"
    (demo_run / "report_public.yaml").write_text(config)
    result = midr("run", str(demo_run / "report_public.yaml"))
    assert result.returncode == 0, result.stderr
    run_dir = demo_run / "outputs" / "report_public"
    files = write_report(run_dir)
    event = pd.read_csv(demo_run / "data" / "events.csv").iloc[0]
    secrets = [event["origin_community"], event["resettlement_site"], "Village A"]
    for lat, lon in (("origin_lat", "origin_lon"), ("site_lat", "site_lon")):
        for digits in (3, 4, 5):
            secrets += [f"{event[lat]:.{digits}f}", f"{event[lon]:.{digits}f}"]
    assert len(files) > 8
    for path in files:
        text = path.read_bytes().decode("latin-1")
        found = [s for s in secrets if s in text]
        assert not found, f"{path.relative_to(run_dir)} holds {found}"
    page = Page(OutputLayout(run_dir).report_page("demo_mine"))
    assert "2018: 240 households resettled" in page.text and "Public version" in page.text
