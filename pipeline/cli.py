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
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.text import Text
from typer.core import TyperArgument, TyperCommand, TyperGroup

from pipeline import __version__
from pipeline.config import config_schema, load_config
from pipeline.errors import ConfigError, InputError, PipelineError, as_pipeline_error


class _CleanHelp:
    """Help without type placeholders: flags without <bool>, arguments by their name alone (CONFIG, not
    CONFIG <path>); the options' metavars (ADDRESS, STAGE, ...) are set where they are declared."""

    def get_params(self, ctx):
        params = super().get_params(ctx)
        for param in params:
            if getattr(param, "is_flag", False) and param.metavar is None:
                param.metavar = ""  # typer shows "" as nothing, None as <bool>
            if isinstance(param, TyperArgument):
                param.display_type_rich = lambda ctx: None
        return params


class _Command(_CleanHelp, TyperCommand):
    def collect_usage_pieces(self, ctx) -> list[str]:
        """`midr run [OPTIONS] CONFIG`, not typer's `{config}`."""
        pieces = [self.options_metavar] if self.options_metavar else []
        pieces += [param.metavar or param.name.upper() for param in self.get_params(ctx)
                   if isinstance(param, TyperArgument)]
        return pieces


class _Group(_CleanHelp, TyperGroup):
    pass


app = typer.Typer(add_completion=False, no_args_is_help=True, cls=_Group,
                  help="midr-pipeline: land-cover change around mines and resettlement events.")
err_console = Console(stderr=True)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"midr-pipeline {__version__}")
        raise typer.Exit()


@app.callback()
def _main(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                                help="Print the version and exit.")] = False) -> None:
    """midr-pipeline: land-cover change around mines and resettlement events."""


class _TimeLeft(TimeRemainingColumn):
    """The time left, for the rows that count units inside a stage (periods, frames); blank for the others."""

    def render(self, task) -> Text:
        if not task.fields.get("steps") or task.finished:
            return Text("")
        return Text.assemble(("~", "progress.remaining"), super().render(task), (" left", "progress.remaining"))


class _StageProgress:
    """Per AOI, one bar of its stages and, under it, one of the stage running (periods, maps, frames)."""

    def __init__(self, bars: Progress, n_stages: int):
        self.bars, self.n_stages = bars, n_stages
        self.tasks: dict[str, int] = {}
        self.steps: dict[str, tuple[int, str]] = {}  # aoi -> (task, stage it counts)

    def _aoi(self, aoi_id: str) -> int:
        if aoi_id not in self.tasks:
            self.tasks[aoi_id] = self.bars.add_task(aoi_id, total=self.n_stages, stage="", count="", steps=False)
        return self.tasks[aoi_id]

    def stage(self, aoi_id: str, stage: str, status: str) -> None:
        task = self._aoi(aoi_id)
        self.bars.update(task, stage=f"{stage}: {status}", advance=1 if status in ("done", "cached", "skipped") else 0)
        step = self.steps.get(aoi_id)
        if step is not None and step[1] != stage:
            self.bars.update(step[0], visible=False)

    def step(self, aoi_id: str, stage: str, done: int, total: int, unit: str) -> None:
        self._aoi(aoi_id)
        task, counted = self.steps.get(aoi_id, (None, None))
        if task is None:
            task = self.bars.add_task(f"  {stage}", total=total, stage="", count="", steps=True)
        if counted != stage:
            self.bars.reset(task, total=total, completed=done, description=f"  {stage}", visible=True)
        self.steps[aoi_id] = (task, stage)
        self.bars.update(task, completed=done, total=total, count=f"{done}/{total} {unit}", visible=True)


def _fail(err: PipelineError) -> None:
    err_console.print(f"[bold red]error:[/] {escape(str(err))}", highlight=False, soft_wrap=True)
    raise typer.Exit(err.exit_code)


def _interrupted() -> None:
    """Ctrl-C during a run: the run has cancelled its Dask work and closed its cluster (pipeline.runner.
    interrupt); say so and exit 130 at once, without waiting for threads still finishing a cancelled task."""
    import os

    from pipeline.runner.interrupt import INTERRUPTED_EXIT_CODE

    err_console.print("[bold red]interrupted:[/] the run stopped; every file it finished is kept and the next "
                      "`midr run` of this config resumes from there", highlight=False, soft_wrap=True)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(INTERRUPTED_EXIT_CODE)


def _setup_logging(verbose: bool) -> None:
    import distributed  # noqa: F401  (configures its loggers on import: quieten them after)

    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(message)s",
                        handlers=[RichHandler(console=err_console, show_path=False)], force=True)
    for noisy in ("distributed", "rasterio", "fiona", "pyogrio", "matplotlib", "PIL"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@app.command(cls=_Command)
def run(
    config: Annotated[Path, typer.Argument(help="YAML config file", metavar="CONFIG")],
    scheduler: Annotated[str | None, typer.Option(help="address of an existing Dask scheduler, e.g. "
                                                       "tcp://10.0.0.5:8786", metavar="ADDRESS")] = None,
    force: Annotated[list[str] | None, typer.Option(
        "--force", metavar="STAGE", help="recompute a stage even if up to date: composite, classify, change, "
                                         "segmentation, events, video, products or all (repeatable)")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="log debug messages too")] = False,
) -> None:
    """Run every stage for every AOI of CONFIG; stages already done and up to date are skipped."""
    from pipeline.runner import STAGES, run_pipeline

    _setup_logging(verbose)
    try:
        settings = load_config(config)
        with Progress(TextColumn("{task.description:<20}"), BarColumn(bar_width=24), TextColumn("{task.fields[stage]}"),
                      TextColumn("{task.fields[count]}"), _TimeLeft(), TimeElapsedColumn(),
                      console=err_console) as bars:
            shown = _StageProgress(bars, len(STAGES) - 1)
            result = run_pipeline(settings, scheduler=scheduler, progress=shown.stage, step=shown.step,
                                  force=force or ())
    except PipelineError as err:
        _fail(err)
    except KeyboardInterrupt:
        _interrupted()
    except OSError as err:  # a full disk or a file deleted during the run-level products: exit 2, one line
        known = as_pipeline_error(err)
        if known is None:
            raise
        _fail(known)
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


@app.command(cls=_Command)
def provenance(path: Annotated[Path, typer.Argument(help="an output file of a run", metavar="FILE")]) -> None:
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


@app.command(cls=_Command)
def validate(config: Annotated[Path, typer.Argument(help="YAML config file", metavar="CONFIG")]) -> None:
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


@app.command(cls=_Command)
def aois(
    config: Annotated[Path, typer.Argument(help="YAML config file with aoi.from_events", metavar="CONFIG")],
    out: Annotated[Path | None, typer.Option(help="GeoPackage to write (default: RUN_DIR/aois.gpkg)", metavar="FILE")] = None,
) -> None:
    """Write the AOIs that aoi.from_events makes (one per mine of the events table) as a GeoPackage, to edit
    in QGIS and give back as aoi.path."""
    from pipeline import io
    from pipeline.events import configured_aois, normalise_events, read_events, unplaced_events

    try:
        settings = load_config(config)
        if settings.aoi.from_events is None:
            raise ConfigError(f"{config}: aoi has a path ({settings.aoi.path}), not from_events; set aoi.from_events "
                              "(e.g. from_events: {radius_m: 10000}) to make one AOI per mine of the events table")
        records = normalise_events(read_events(settings.events.path))
        made = configured_aois(settings, records)
        path = out or settings.run_dir / "aois.gpkg"
        path.parent.mkdir(parents=True, exist_ok=True)
        io.write_gpkg(made, path, layer="aois")
    except PipelineError as err:
        _fail(err)
    except OSError as err:
        _fail(InputError(f"{path}: cannot write the AOIs ({err.strerror or err}) (--out)"))
    unplaced = unplaced_events(records)
    source = settings.aoi.from_events
    lines = [(f"{len(made)} AOI(s) for {int(made['n_events'].sum())} of {len(records)} event record(s) "
              f"(radius {source.radius_m:g} m, margin {source.margin_m:g} m): {path}")]
    lines += [f"  {row.aoi_id:<32} {row.n_events} event(s): {row.event_ids}" for row in made.itertuples()]
    if len(unplaced):
        lines.append(f"no AOI for {len(unplaced)} record(s) without a mine point (mine_lat, mine_lon): "
                     f"{', '.join(unplaced['event_id'])}")
    lines.append(f"to edit them: open {path} in QGIS, then set aoi: {{path: {path}}} in the config")
    typer.echo("\n".join(lines))


@app.command(cls=_Command)
def export(run_dir: Annotated[Path, typer.Argument(help="a run's folder, e.g. outputs/demo", metavar="RUN_DIR")]) -> None:
    """Write a finished run's exports: CSV/Parquet tables, event zones GPKG, SPSS .sav, Kumu JSON, charts."""
    from pipeline.products import export_run

    _setup_logging(False)
    try:
        written = export_run(run_dir)
    except PipelineError as err:
        _fail(err)
    typer.echo(f"{len(written)} files written under {run_dir}")


@app.command(cls=_Command)
def report(run_dir: Annotated[Path, typer.Argument(help="a run's folder, e.g. outputs/demo", metavar="RUN_DIR")]) -> None:
    """Write a finished run's HTML report: RUN_DIR/report/index.html and a page per AOI (opens from disk)."""
    from pipeline.products import write_report
    from pipeline.results import OutputLayout

    _setup_logging(False)
    try:
        written = write_report(run_dir)
    except PipelineError as err:
        _fail(err)
    typer.echo(f"{len(written)} files written; open {OutputLayout(run_dir).report_index}")


@app.command(cls=_Command)
def schema() -> None:
    """Print the JSON Schema of the config file."""
    typer.echo(config_schema())


@app.command("demo-data", cls=_Command)
def demo_data(
    out: Annotated[Path, typer.Option(help="folder for scenes, truth, training points, events",
                                      metavar="FOLDER")] = Path("data/demo"),
    aoi: Annotated[Path, typer.Option(help="AOI file to write", metavar="FILE")] = Path("aoi/demo_mine.geojson"),
    size: Annotated[str, typer.Option(help="default (500 x 500 pixels, 2008-2022) or small (for tests)",
                                      metavar="default|small")] = "default",
    seed: Annotated[int | None, typer.Option(help="random seed (default 42; 7 for the pair)", metavar="N")] = None,
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
