"""`midr`: args -> load_config -> run. Errors the user can fix print one line and exit non-zero."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from pipeline.config import config_schema, load_config
from pipeline.errors import PipelineError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="midr-pipeline: land-cover change around mines and resettlement events.")
err_console = Console(stderr=True)


def _fail(err: PipelineError) -> None:
    err_console.print(f"[bold red]error:[/] {escape(str(err))}", highlight=False, soft_wrap=True)
    raise typer.Exit(err.exit_code)


def _setup_logging(verbose: bool) -> None:
    import distributed  # noqa: F401  (configures its loggers on import: quieten them after)

    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(message)s",
                        handlers=[RichHandler(console=err_console, show_path=False)], force=True)
    for noisy in ("distributed", "rasterio", "fiona", "pyogrio", "matplotlib", "PIL"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@app.command()
def run(
    config: Annotated[Path, typer.Argument(help="YAML config file")],
    scheduler: Annotated[str | None, typer.Option(help="address of an existing Dask scheduler")] = None,
    force: Annotated[list[str] | None, typer.Option(
        "--force", help="recompute a stage even if up to date: composite, classify, change, events, video, "
                        "products or all (repeatable)")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Run every stage for every AOI of CONFIG; stages already done and up to date are skipped."""
    from pipeline.runner import STAGES, run_pipeline

    _setup_logging(verbose)
    try:
        settings = load_config(config)
        with Progress(TextColumn("{task.description:<28}"), BarColumn(), TextColumn("{task.fields[stage]}"),
                      TimeElapsedColumn(), console=err_console) as bars:
            tasks: dict[str, int] = {}

            def progress(aoi_id: str, stage: str, status: str) -> None:
                if aoi_id not in tasks:
                    tasks[aoi_id] = bars.add_task(aoi_id, total=len(STAGES) - 1, stage="")
                bars.update(tasks[aoi_id], stage=f"{stage}: {status}",
                            advance=1 if status in ("done", "cached", "skipped") else 0)

            result = run_pipeline(settings, scheduler=scheduler, progress=progress, force=force or ())
    except PipelineError as err:
        _fail(err)
    for aoi_id, error in result.failed.items():
        err_console.print(f"[bold red]error:[/] aoi {aoi_id!r}: {escape(error)}", highlight=False, soft_wrap=True)
    n_aois = len(result.manifest["aois"])
    done = n_aois - len(result.failed)
    if result.stages_run == 0 and not result.failed:
        err_console.print(f"nothing to do: every stage of the {n_aois} AOI(s) is up to date "
                          f"({result.stages_cached} stages; --force STAGE or --force all recomputes); "
                          f"outputs in {result.run_dir}", highlight=False)
    else:
        err_console.print(f"{done} of {n_aois} AOI(s) done ({result.stages_run} stages run, "
                          f"{result.stages_cached} up to date); outputs in {result.run_dir}", highlight=False)
    raise typer.Exit(result.exit_code)


@app.command()
def provenance(path: Annotated[Path, typer.Argument(help="an output file of a run")]) -> None:
    """Tell what produced an output file: run, AOI, stage, inputs, config, versions, cluster."""
    from pipeline.runner.provenance import describe_output

    try:
        found = describe_output(path)
    except PipelineError as err:
        _fail(err)
    where = f"aoi {found['aoi_id']!r}, " if found["aoi_id"] else ""
    lines = [
        f"file        {found['file']}",
        f"run         {found['run_name']} ({found['run_dir']}), {found['started']} -> {found['finished'] or 'unfinished'}",
        f"written by  {where}stage {found['stage']} ({found['status']}{', reused from an earlier run' if found['cached'] else ''})",
        f"stage key   {found['key']}",
        f"sha256      {found['sha256_recorded']} "
        + ("(the file is unchanged)" if found["unchanged"] else "(THE FILE HAS CHANGED since the run wrote it)"),
        f"config      {found['config_file']} (sha256 of the parsed config {found['config_sha256']})",
        f"seeds       {', '.join(f'{k}={v}' for k, v in (found['seeds'] or {}).items()) or '-'}",
        f"cluster     {(found['cluster'] or {}).get('description', '-')}",
        "versions    " + ", ".join(f"{k} {v}" for k, v in (found["versions"] or {}).items()),
        f"inputs      {len(found['inputs'])} file(s) read by this stage:",
        *[f"  {i['sha256'][:16]}  {i['size']:>12,d}  {i['path']}" for i in found["inputs"][:50]],
    ]
    if len(found["inputs"]) > 50:
        lines.append(f"  ... and {len(found['inputs']) - 50} more (manifest.json lists them all)")
    typer.echo("\n".join(lines))


@app.command()
def validate(config: Annotated[Path, typer.Argument(help="YAML config file")]) -> None:
    """Check CONFIG and its inputs without reading pixels or writing anything: keys, files, globs, bands,
    quality bands or the cloud mask that applies, STAC searches, AOIs covered by scenes, periods."""
    from pipeline.runner.validate import validate_inputs

    _setup_logging(False)
    try:
        settings = load_config(config)
        found = validate_inputs(settings)
    except PipelineError as err:
        _fail(err)
    lines = [f"  {note}" for note in found.notes]
    for plan in found.plans:
        lines.append(f"  {plan.summary}" + (f"; {plan.outside} scene(s) fall in no period" if plan.outside else ""))
        lines += [f"    {period.id:<24} {period.start} to {period.end}  {count:>3} scene(s)"
                  for period, count in plan.periods]
        lines += [f"    warning: {text}" for text in plan.warnings]
    lines.append(f"{config}: ok (run {settings.run_name!r}, outputs in {settings.run_dir})")
    typer.echo("\n".join(lines))


@app.command()
def export(run_dir: Annotated[Path, typer.Argument(help="a run's folder, e.g. outputs/demo")]) -> None:
    """Write a finished run's exports: CSV/Parquet tables, event zones GPKG, SPSS .sav, Kumu JSON, charts."""
    from pipeline.products import export_run

    _setup_logging(False)
    try:
        written = export_run(run_dir)
    except PipelineError as err:
        _fail(err)
    typer.echo(f"{len(written)} files written under {run_dir}")


@app.command()
def report(run_dir: Annotated[Path, typer.Argument(help="a run's folder, e.g. outputs/demo")]) -> None:
    """Write a finished run's HTML report: RUN_DIR/report/index.html and a page per AOI (opens from disk)."""
    from pipeline.products import write_report
    from pipeline.results import OutputLayout

    _setup_logging(False)
    try:
        written = write_report(run_dir)
    except PipelineError as err:
        _fail(err)
    typer.echo(f"{len(written)} files written; open {OutputLayout(run_dir).report_index}")


@app.command()
def schema() -> None:
    """Print the JSON Schema of the config file."""
    typer.echo(config_schema())


@app.command("demo-data")
def demo_data(
    out: Annotated[Path, typer.Option(help="folder for scenes, truth, training points, events")] = Path(
        "data/demo"),
    aoi: Annotated[Path, typer.Option(help="AOI file to write")] = Path("aoi/demo_mine.geojson"),
    size: Annotated[str, typer.Option(help="default or small")] = "default",
    seed: Annotated[int | None, typer.Option(help="random seed (default 42; 7 for the pair)")] = None,
    pair: Annotated[bool, typer.Option(help="instead, the rapid-event pair: two scenes around a dated "
                                            "tailings-dam failure (pipeline/demo/pair.py)")] = False,
) -> None:
    """Generate the synthetic demo mine (scenes, truth, labels, events, AOI)."""
    from pipeline.demo import generate_demo
    from pipeline.demo.pair import generate_pair

    _setup_logging(False)
    if size not in ("default", "small"):
        err_console.print(f"[bold red]error:[/] --size must be 'default' or 'small', got {size!r}")
        raise typer.Exit(2)
    if pair:
        written = generate_pair(out, aoi, seed=7 if seed is None else seed)
    else:
        written = generate_demo(out, aoi, size=size, seed=42 if seed is None else seed)  # type: ignore[arg-type]
    for what, path in written.items():
        typer.echo(f"{what:<16} {path}")


def main() -> None:
    app()


if __name__ == "__main__":
    sys.exit(main())
