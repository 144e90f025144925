"""`midr`: args -> load_config -> run. Errors the user can fix print one line and exit non-zero."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from pipeline.config import config_schema, load_config
from pipeline.errors import PipelineError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="midr-pipeline: land-cover change around mines and resettlement events.")
err_console = Console(stderr=True)


def _fail(err: PipelineError) -> None:
    err_console.print(f"[bold red]error:[/] {err}", highlight=False, soft_wrap=True)
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
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Run every stage for every AOI of CONFIG."""
    from pipeline.run import STAGES, run_pipeline

    _setup_logging(verbose)
    try:
        settings = load_config(config)
        with Progress(TextColumn("{task.description:<28}"), BarColumn(), TextColumn("{task.fields[stage]}"),
                      TimeElapsedColumn(), console=err_console) as bars:
            tasks: dict[str, int] = {}

            def progress(aoi_id: str, stage: str, status: str) -> None:
                if aoi_id not in tasks:
                    tasks[aoi_id] = bars.add_task(aoi_id, total=len(STAGES), stage="")
                bars.update(tasks[aoi_id], stage=f"{stage}: {status}",
                            advance=1 if status == "done" else 0)

            result = run_pipeline(settings, scheduler=scheduler, progress=progress)
    except PipelineError as err:
        _fail(err)
    for aoi_id, error in result.failed.items():
        err_console.print(f"[bold red]failed:[/] aoi {aoi_id!r}: {error}", highlight=False)
    done = len(result.manifest["aois"]) - len(result.failed)
    err_console.print(f"{done} of {len(result.manifest['aois'])} AOI(s) done; outputs in {result.run_dir}")
    raise typer.Exit(1 if result.failed else 0)


@app.command()
def validate(config: Annotated[Path, typer.Argument(help="YAML config file")]) -> None:
    """Check CONFIG without running anything."""
    try:
        settings = load_config(config)
    except PipelineError as err:
        _fail(err)
    typer.echo(f"{config}: ok (run {settings.run_name!r}, outputs in {settings.run_dir})")


@app.command()
def export(run_dir: Annotated[Path, typer.Argument(help="a run's folder, e.g. outputs/demo")]) -> None:
    """Write a finished run's exports: CSV/Parquet tables, event zones GPKG, SPSS .sav, Kumu JSON, charts."""
    from pipeline.export_run import export_run

    _setup_logging(False)
    try:
        written = export_run(run_dir)
    except PipelineError as err:
        _fail(err)
    typer.echo(f"{len(written)} files written under {run_dir}")


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
    seed: Annotated[int, typer.Option()] = 42,
) -> None:
    """Generate the synthetic demo mine (scenes, truth, labels, events, AOI)."""
    from pipeline.demo import generate_demo

    _setup_logging(False)
    if size not in ("default", "small"):
        err_console.print(f"[bold red]error:[/] --size must be 'default' or 'small', got {size!r}")
        raise typer.Exit(2)
    written = generate_demo(out, aoi, size=size, seed=seed)  # type: ignore[arg-type]
    for what, path in written.items():
        typer.echo(f"{what:<16} {path}")


def main() -> None:
    app()


if __name__ == "__main__":
    sys.exit(main())
