"""The AOI file as an unfriendly or unlucky user writes it: ids that would walk out of the run folder or
take a run-level folder's name, and polygons that cross themselves (issue 18, cases 1 and 6)."""

from __future__ import annotations

import logging

import geopandas as gpd
import pytest
from shapely.geometry import MultiPolygon, Polygon, box

from pipeline.errors import InputError, OutputError
from pipeline.ingest import aoi_outline, read_aois
from pipeline.results import SAFE_ID_RULE, OutputLayout, check_id

CRS = "EPSG:32736"


def _aoi_file(tmp_path, ids, geometries=None):
    geometries = geometries or [box(500_000 + 1000 * i, 8_200_000, 500_500 + 1000 * i, 8_200_500) for i in range(len(ids))]
    path = tmp_path / "aois.gpkg"
    gpd.GeoDataFrame({"aoi_id": ids}, geometry=geometries, crs=CRS).to_file(path)
    return path


@pytest.mark.parametrize("bad", ["../../evil", "/srv/x", "a/b", "a\\b", ".hidden", "-rf", "", "x" * 101,
                                 "mine a", "caf\u00e9"])
def test_an_unsafe_aoi_id_is_refused_at_load_naming_it_and_the_rule(tmp_path, bad):
    path = _aoi_file(tmp_path, ["good", bad])
    with pytest.raises(InputError) as caught:
        read_aois(path, id_field="aoi_id")
    assert str(caught.value) == (f"{path} (aoi.id_field 'aoi_id'): AOI id {bad!r} is not a safe name: use "
                                 f"{SAFE_ID_RULE}")


@pytest.mark.parametrize("reserved", ["report", "stac", "exports", "summary", "Report", "manifest.json"])
def test_an_aoi_may_not_take_the_name_of_a_run_level_folder(tmp_path, reserved):
    with pytest.raises(InputError, match=f"AOI id '{reserved}' is the name of a run-level output .*another id"):
        read_aois(_aoi_file(tmp_path, [reserved]), id_field="aoi_id")


def test_ids_that_differ_only_in_case_would_share_a_folder(tmp_path):
    with pytest.raises(InputError, match=r"unique \(ignoring case\), repeated: \['mine_A'\]"):
        read_aois(_aoi_file(tmp_path, ["mine_a", "mine_A"]), id_field="aoi_id")


def test_safe_ids_pass():
    for good in ("mine_a", "Mine-2", "1999.b", "_x", "a" * 100):
        assert check_id(good) == good
    assert check_id("report", what="event") == "report"  # reserved only for AOIs (folders of the run)


def test_every_output_path_stays_inside_the_run_folder(tmp_path):
    layout = OutputLayout(tmp_path / "run")
    assert layout.class_map("mine_a", 2018) == tmp_path / "run" / "mine_a" / "classes" / "2018.tif"
    for build in (lambda: layout.aoi_dir("../../evil"), lambda: layout.video("/srv/x"),
                  lambda: layout.composite("a/b", 2018), lambda: layout.report_page(".."),
                  lambda: layout.class_map("mine_a", "../../../x"), lambda: layout.path("..", "x.html"),
                  lambda: layout.path("/etc"), lambda: layout.stamp("report", "video")):
        with pytest.raises((OutputError, InputError), match="refusing to write|not a safe name|run-level output"):
            build()
    chart = layout.summary_chart("country", "origin_community", "../bare ground & mining")
    assert chart.parent == tmp_path / "run" / "summary" and "/" not in chart.name


def test_a_self_intersecting_aoi_keeps_every_part_and_says_so(tmp_path, caplog):
    side = 1200.0  # a bow-tie: one ring crossing itself, two triangles of 36 ha
    bow = Polygon([(510_000 + x, 8_200_000 + y) for x, y in [(0, 0), (side, side), (side, 0), (0, side)]])
    overlapping = MultiPolygon([box(520_000, 8_200_000, 521_000, 8_201_000), box(520_500, 8_200_000, 521_500, 8_201_000)])
    path = _aoi_file(tmp_path, ["bow", "overlap"], [bow, overlapping])
    assert not gpd.read_file(path).is_valid.any()
    assert gpd.GeoSeries([bow]).buffer(0).area.iloc[0] == pytest.approx(side * side / 4)  # buffer(0) keeps one lobe
    with caplog.at_level(logging.WARNING, logger="pipeline.ingest.aois"):
        aois = read_aois(path, id_field="aoi_id")
    assert aois.is_valid.all()
    areas = dict(zip(aois["aoi_id"], aois.area / 1e4))
    assert areas["bow"] == pytest.approx(72.0)  # both lobes
    assert areas["overlap"] == pytest.approx(150.0)  # two 100 ha squares overlapping by 50 ha, counted once
    outline = aoi_outline(aois.geometry.iloc[0], aois.crs)  # what the runner clips to
    assert outline.area.iloc[0] == pytest.approx(72.0e4)
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 2 and set(aois.attrs["repaired"]) == {"bow", "overlap"}
    bow_warning = next(w for w in warnings if "'bow'" in w)
    assert "Self-intersection" in bow_warning and "72.0 ha in 2 part(s)" in bow_warning
    assert "the outline as drawn measures 0.0 ha" in bow_warning and "Fix geometries" in bow_warning
