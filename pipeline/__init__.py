"""midr-pipeline: land-cover change around mines, linked to resettlement events.

The package is a stack of layers; a module imports only from its own layer or from layers above it
in this list (tests/test_layers.py walks the imports and fails on any other):

    errors      the errors the CLI turns into one line and an exit code
    config      the YAML config, typed and checked (PipelineConfig)
    io          what every room writes with: atomic writes, COG/CSV/JSON/Parquet/GPKG, the vector reader
    results     the output layout of a run, and reading a finished run back (open_run)
    job         one AOI of a run (AoiJob)
    ingest      sources, sensor profiles, scene discovery, STAC, grid  -> scene_stack on the AOI grid
    composite   cloud masks, composites, indices                       -> composites per period
    classify    features, training data, models, prediction, accuracy -> class_map, confidence
    change      areas, transitions, change maps                        -> change metrics
    events      event records, zones, effects, public generalisation   -> event effects
    video       timeline, panels, chart, cards, encoder, publishing    -> MP4, .srt, youtube.txt
    products    report, STAC catalog, QGIS styles, SPSS/Kumu exports   -> run-level products
    runner      the run, cluster, memory plan, stamps and provenance   -> wires the rooms above
    cli, demo   the `midr` command; the synthetic demo mine

Each room (ingest ... runner) is a subpackage whose `__init__` names what it holds and exports; the
stage that a room runs for one AOI is its `stage` module.
"""

__version__ = "0.1.0"

LAYERS = ("errors", "config", "io", "results", "job", "ingest", "composite", "classify", "change", "events",
          "video", "products", "runner", ("cli", "demo"))
