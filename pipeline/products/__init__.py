"""Products: run-level outputs, made from a finished run read back, and helpers for the notebooks.

    export_run  every table as CSV and Parquet, event zones GPKG, SPSS .sav, Kumu JSON, summaries
    exports     the SPSS and Kumu formats; effects across events by indicator
    report      the HTML report (templates/report/)
    previews    its pictures of rasters: true-colour thumbnails and nodata shares, event zones, first change
    files       every output file of a run with its format, for the report's file lists
    catalog     the static STAC catalog of the outputs
    qgis        QGIS .qml styles beside the rasters, class names for GDAL beside the class maps
    plots       figures for the report and the notebooks
    explore     tables for the notebooks
    kept        what an AOI that failed in this run keeps of the earlier products

Uses: every room above it (ingest ... video) and the base modules; reads a run through `pipeline.results`.
"""

from pipeline.products.export_run import export_run
from pipeline.products.report import write_report
from pipeline.products.catalog import write_output_catalog, validate_output_catalog
from pipeline.products.qgis import write_styles
from pipeline.products.kept import kept_aois

__all__ = ["export_run", "write_report", "write_output_catalog", "validate_output_catalog", "write_styles", "kept_aois"]
