"""The time-lapse chart of the small demo run: what it plots does not move with the clouds."""

from __future__ import annotations

import numpy as np

from pipeline.demo import truth_class_map
from pipeline.results import open_run
from pipeline.video.stage import chart_series


def test_the_chart_plots_class_shares_that_clouds_do_not_move(demo_run):
    """In the cloudiest year the maps as classified lose a sixth of the AOI to nodata; the chart's shares
    (of the cleaned maps' mapped area) stay within 1.5 percentage points of the truth in every year, and
    the grey bars are the nodata shares of the table."""
    run = open_run(demo_run / "outputs" / "demo_small")
    table, aoi = run.class_area("demo_mine"), run.aoi_table("demo_mine").iloc[0]
    periods, codes = run.periods("demo_mine"), [c.code for c in run.classes]
    shares, nodata = chart_series(table, codes, periods)
    per_period = table.drop_duplicates("period").set_index("period")
    np.testing.assert_allclose(nodata, per_period.loc[periods, "nodata_pct"])
    cloudiest = int(np.argmax(nodata))
    assert nodata[cloudiest] > 15
    truth = truth_class_map(demo_run / "data" / "truth", run.class_map("demo_mine")).values
    inside = (truth != 255).all(axis=0)
    raw = table.set_index(["class_code", "period"])["raw_area_ha"]
    for code in codes:
        true_share = 100 * ((truth == code) & inside[None]).sum(axis=(1, 2)) / inside.sum()
        np.testing.assert_allclose(shares[code], true_share, atol=1.5, err_msg=f"class {code}")
    # what the chart plotted before (classified pixels only, ha): the largest class "loses" > 5 % of the AOI
    largest = max(codes, key=lambda c: shares[c][0])
    before = 100 * raw.loc[largest].loc[periods].to_numpy() / aoi["area_ha"]
    true_largest = 100 * ((truth == largest) & inside[None]).sum(axis=(1, 2)) / inside.sum()
    assert true_largest[cloudiest] - before[cloudiest] > 5
