"""Pipeline commands: `fti run`, `runs`, `lineage`, `backfill`, `schedule`, `scheduler`."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from fti.cli.options import console, emit_json, json_option, open_store, store_option
from fti.errors import ValidationError

if TYPE_CHECKING:
    from fti.pipelines.runs import PipelineRun

__all__ = ["register", "runs_app", "schedule_app"]

runs_app = typer.Typer(
    help="Recorded pipeline runs. Example: fti runs list --limit 5",
    no_args_is_help=True,
    rich_markup_mode=None,
)
schedule_app = typer.Typer(
    help='Cron schedules. Example: fti schedule add hourly flows.py:weather --cron "0 * * * *"',
    no_args_is_help=True,
    rich_markup_mode=None,
)

param_option = Annotated[
    list[str] | None,
    typer.Option("--param", "-p", help="KEY=VALUE, parsed by the function's type hint (repeat)."),
]
start_option = Annotated[
    str | None, typer.Option("--start", help="Window start, ISO 8601 with timezone (…Z).")
]
end_option = Annotated[
    str | None, typer.Option("--end", help="Window end (exclusive), ISO 8601 with timezone.")
]


def parse_params(pairs: list[str] | None) -> dict[str, str]:
    """``["days=7", "origins=JFK,EWR"]`` -> {"days": "7", "origins": "JFK,EWR"}."""
    out: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValidationError(f"Invalid --param {pair!r}: use KEY=VALUE, e.g. --param days=7.")
        if key in out:
            raise ValidationError(f"--param {key} was given twice.")
        out[key] = value
    return out


def _entry(e: dict[str, Any]) -> str:
    extra = ", ".join(
        f"{k}={str(v)[:12] + '…' if k == 'sha256' else v}"
        for k, v in e.items()
        if k not in ("kind", "name", "version")
    )
    version = "" if e.get("version") is None else f" v{e['version']}"
    return f"{e['kind']} {e['name']}{version}" + (f" ({extra})" if extra else "")


def run_json(r: PipelineRun) -> dict[str, Any]:
    """The keys of ``fti runs list --json`` (``runs show`` adds code_version, steps, extra)."""
    return {
        "id": r.id,
        "kind": r.kind,
        "pipeline": r.pipeline,
        "function": r.function,
        "status": r.status,
        "started_at": r.started_at,
        "ended_at": r.ended_at,
        "seconds": r.seconds,
        "parameters": r.parameters,
        "inputs": r.inputs,
        "outputs": r.outputs,
        "error": r.error,
    }


def _report(run: PipelineRun) -> None:
    seconds = f" in {run.seconds:.2f}s" if run.seconds is not None else ""
    colour = "green" if run.succeeded else "red"
    console.print(
        f"[{colour}]{run.kind} run {run.id} {run.status}[/]{seconds}  ({run.pipeline})",
        highlight=False,
    )
    for label, entries in (("read", run.inputs), ("wrote", run.outputs)):
        for e in entries:
            console.print(f"  {label:<5} {_entry(e)}", highlight=False, markup=False)
    if not run.succeeded:
        console.print(f"[red]error:[/] {escape(str(run.error))}", highlight=False)
        console.print(f"Details: fti runs show {run.id}", highlight=False)
        raise typer.Exit(1)


def run(
    targets: Annotated[list[str], typer.Argument(help="FILE.py:FUNCTION (two with --monolithic).")],
    param: param_option = None,
    start: start_option = None,
    end: end_option = None,
    monolithic: Annotated[
        bool,
        typer.Option(
            "--monolithic", help="Run a feature pipeline then a training/inference pipeline."
        ),
    ] = False,
    root: store_option = None,
) -> None:
    """Run a pipeline function and record the run (parameters, code version, lineage).

    Examples:

      fti run flows.py:weather --start 2013-01-01T00:00:00Z --end 2013-01-02T00:00:00Z

      fti run flows.py:train --param max_depth=6

      fti run --monolithic flows.py:weather flows.py:train --param days=30
    """
    from fti.pipelines.loader import load_pipeline
    from fti.pipelines.monolithic import run_monolithic
    from fti.pipelines.runner import run_pipeline

    params = parse_params(param)
    if monolithic and len(targets) != 2:
        raise ValidationError(
            "--monolithic takes two pipelines: FILE:FEATURE_FUNC FILE:TRAIN_OR_INFERENCE_FUNC; "
            f"got {len(targets)}."
        )
    if not monolithic and len(targets) != 1:
        raise ValidationError(
            f"fti run takes one FILE.py:FUNCTION (got {len(targets)}); use --monolithic for two."
        )
    pipelines = [load_pipeline(t) for t in targets]
    fs = open_store(root)
    if monolithic:
        result = run_monolithic(
            pipelines[0], pipelines[1], fs=fs, params=params, start=start, end=end,
            raise_on_error=False,
        )  # fmt: skip
        for step in result.steps:
            console.print(
                f"  step {step['step']} {step['kind']} {step['pipeline']}: {step['status']}",
                highlight=False,
            )
    else:
        result = run_pipeline(
            pipelines[0], fs=fs, params=params, start=start, end=end, raise_on_error=False
        )
    _report(result)


@runs_app.command("list")
def runs_list(
    pipeline: Annotated[str | None, typer.Option(help="Only this pipeline name.")] = None,
    kind: Annotated[
        str | None, typer.Option(help="feature, training, inference or monolithic.")
    ] = None,
    status: Annotated[str | None, typer.Option(help="running, succeeded, failed or died.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="Newest N runs.")] = 20,
    root: store_option = None,
    json_: json_option = False,
) -> None:
    """List recorded runs, newest first.

    Examples: fti runs list --kind feature -n 5 ;  fti runs list --json
    """
    from fti.pipelines.runs import list_runs

    fs = open_store(root)
    from fti.store import context_of
    runs = list_runs(context_of(fs), pipeline=pipeline, kind=kind, status=status, limit=limit)
    if json_:
        emit_json([run_json(r) for r in runs])
        return
    table = Table(title="Pipeline runs")
    # the id starts with the start time (UTC), so it doubles as the "started" column
    table.add_column("id", no_wrap=True, min_width=31)
    for col in ("kind", "pipeline", "status", "seconds", "in/out"):
        table.add_column(col)
    for r in runs:
        table.add_row(
            r.id,
            r.kind,
            r.pipeline,
            r.status,
            "-" if r.seconds is None else f"{r.seconds:.2f}",
            f"{len(r.inputs)}/{len(r.outputs)}",
        )
    console.print(table)


@runs_app.command("show")
def runs_show(
    run_id: Annotated[str, typer.Argument(help="Run id (or a unique prefix of it).")],
    root: store_option = None,
    json_: json_option = False,
) -> None:
    """Everything recorded about one run.

    Examples: fti runs show 20130101T060000 ;  fti runs show 20130101T060000 --json
    """
    from fti.pipelines.runs import get_run

    fs = open_store(root)
    from fti.store import context_of
    r = get_run(context_of(fs), run_id)
    if json_:
        emit_json(
            {
                **run_json(r),
                "code_version": r.code_version,
                "steps": r.steps,
                "extra": r.extra,
            }
        )
        return
    console.print(
        f"[bold]run {r.id}[/]  {r.kind} pipeline {escape(r.pipeline)}  status: {r.status}"
    )
    console.print(f"  function    {r.function}", highlight=False, markup=False)
    cv = r.code_version
    commit = cv.get("git_commit")
    code = (
        f"git {commit[:12]}{' (dirty)' if cv.get('git_dirty') else ''}"
        if commit
        else "not in a git work tree"
    )
    console.print(f"  code        {code}; source sha256 {str(cv.get('source_sha256'))[:12]}")
    console.print(f"  started     {r.started_at.isoformat()}")
    console.print(f"  ended       {r.ended_at.isoformat() if r.ended_at else '-'}")
    for key, value in {**r.parameters, **r.extra}.items():
        if key not in ("traceback", "second_kind"):
            console.print(f"  {key:<11} {value}", highlight=False, markup=False)
    for label, entries in (("input", r.inputs), ("output", r.outputs)):
        for e in entries:
            console.print(f"  {label:<11} {_entry(e)}", highlight=False, markup=False)
    for step in r.steps:
        console.print(
            f"  step {step['step']}      {step['kind']} {step['pipeline']}: {step['status']}",
            highlight=False,
        )
    if r.error:
        console.print(f"[red]error[/]       {escape(str(r.error))}", highlight=False)
        if r.extra.get("traceback"):
            console.print(str(r.extra["traceback"]), highlight=False, markup=False)


def lineage(
    kind: Annotated[
        str, typer.Argument(help="model, training_dataset (td), feature_group (fg), run, ...")
    ],
    name: Annotated[str, typer.Argument(help="NAME[:VERSION] (run: its id; file: its path).")],
    direction: Annotated[str, typer.Option(help="upstream, downstream or both.")] = "both",
    root: store_option = None,
    json_: json_option = False,
) -> None:
    """Show what an object was built from and what was built on it; raw files are listed once,
    with each version (sha256) and the runs that read it. An unknown object is an error.

    Examples: fti lineage model delays:3 ;  fti lineage fg weather:1 --direction downstream ;
    fti lineage fv delays:1 ;  fti lineage td delays_v1:2 --json
    """
    from fti.pipelines.lineage import lineage as lineage_of

    if direction not in ("upstream", "downstream", "both"):
        raise ValidationError(
            f"--direction must be upstream, downstream or both. Got {direction!r} instead."
        )
    graph = lineage_of(open_store(root), kind, name)
    directions = ("upstream", "downstream") if direction == "both" else (direction,)
    if json_:
        emit_json(lineage_json(graph, directions))
        return
    for d in directions:
        console.print(graph.tree(d))


def lineage_json(graph: Any, directions: tuple[str, ...]) -> dict[str, Any]:
    """The keys of ``fti lineage --json``: root, upstream/downstream nodes (nearest first, files
    apart), files (each once, with its versions)."""

    def node(n: Any) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": n.kind, "name": n.name, "version": n.version}
        if n.kind == "run":
            out.update({k: v for k, v in n.info().items() if k in ("pipeline", "status")})
        return out

    data: dict[str, Any] = {"root": node(graph.root)}
    for d in directions:
        nodes = graph.upstream() if d == "upstream" else graph.downstream()
        data[d] = [node(n) for n in nodes if n.kind != "file"]
    data["files"] = graph.files("upstream") if "upstream" in directions else []
    return data


def backfill(
    target: Annotated[str, typer.Argument(help="FILE.py:FUNCTION with start/end parameters.")],
    start: Annotated[str, typer.Option(help="Range start, ISO 8601 with timezone.")],
    end: Annotated[str, typer.Option(help="Range end (exclusive), ISO 8601 with timezone.")],
    chunk: Annotated[
        str, typer.Option(help="Chunk length: 30m, 6h, 1d, 1w, or calendar months: 1mo.")
    ] = "1d",
    param: param_option = None,
    root: store_option = None,
) -> None:
    """Run a feature pipeline over a time range, one recorded run per chunk.

    Example: fti backfill flows.py:weather --start 2013-01-01T00:00:00Z --end 2013-02-01T00:00:00Z --chunk 7d
    """  # noqa: E501
    from fti.pipelines.backfill import backfill as run_backfill
    from fti.pipelines.loader import load_pipeline

    pipeline = load_pipeline(target)
    runs = run_backfill(
        pipeline, fs=open_store(root), start=start, end=end, chunk=chunk, params=parse_params(param)
    )
    console.print(f"[green]Backfilled {escape(pipeline.name)}[/]: {len(runs)} chunk run(s)")
    for r in runs:
        console.print(f"  {r.id}  {r.parameters.get('start')} .. {r.parameters.get('end')}")


@schedule_app.command("add")
def schedule_add(
    name: Annotated[str, typer.Argument(help="Schedule name (an identifier).")],
    target: Annotated[str, typer.Argument(help="FILE.py:FUNCTION.")],
    cron: Annotated[str, typer.Option(help='Cron expression in UTC, e.g. "0 * * * *".')],
    param: param_option = None,
    catch_up: Annotated[
        bool, typer.Option("--catch-up/--no-catch-up", help="Run every missed tick.")
    ] = True,
    root: store_option = None,
) -> None:
    """Run a pipeline on a cron schedule (start it with 'fti scheduler').

    Example: fti schedule add hourly_weather flows.py:weather --cron "5 * * * *"
    """
    from fti.pipelines.scheduler import add_schedule

    s = add_schedule(
        open_store(root), name, target, cron=cron, params=parse_params(param), catch_up=catch_up
    )
    console.print(
        f"[green]Schedule {s.name}[/]: {escape(s.function)} on '{s.cron}', next at "
        f"{s.next_tick(s.last_tick).isoformat()}",
        highlight=False,
    )


@schedule_app.command("list")
def schedule_list(root: store_option = None, json_: json_option = False) -> None:
    """List schedules with their cron, cursor and next tick.

    Examples: fti schedule list ;  fti schedule list --json
    """
    from fti.pipelines.scheduler import list_schedules

    schedules = list_schedules(open_store(root))
    if json_:
        emit_json(
            [
                {
                    "name": s.name,
                    "function": s.function,
                    "cron": s.cron,
                    "parameters": s.parameters,
                    "catch_up": s.catch_up,
                    "enabled": s.enabled,
                    "created_at": s.created_at,
                    "last_tick": s.last_tick,
                    "next_tick": s.next_tick(s.last_tick),
                }
                for s in schedules
            ]
        )
        return
    table = Table(title="Schedules")
    for col in ("name", "pipeline", "cron", "catch-up", "last tick", "next tick"):
        table.add_column(col)
    for s in schedules:
        table.add_row(
            s.name,
            escape(s.function),
            s.cron,
            "yes" if s.catch_up else "no",
            s.last_tick.isoformat(),
            s.next_tick(s.last_tick).isoformat(),
        )
    console.print(table)


@schedule_app.command("remove")
def schedule_remove(
    name: Annotated[str, typer.Argument(help="Schedule name.")], root: store_option = None
) -> None:
    """Delete a schedule (its past runs stay recorded).

    Example: fti schedule remove hourly_weather
    """
    from fti.pipelines.scheduler import remove_schedule

    remove_schedule(open_store(root), name)
    console.print(f"Removed schedule {name}")


def scheduler(
    once: Annotated[bool, typer.Option("--once", help="Run what is due now, then exit.")] = False,
    root: store_option = None,
) -> None:
    """Run scheduled pipelines: every due tick (catching up missed ones), one run per pipeline
    at a time, also across several schedulers.

    Examples: fti scheduler ;  fti scheduler --once
    """
    from fti.pipelines.scheduler import Scheduler

    sched = Scheduler(
        open_store(root), on_event=lambda msg: console.print(msg, highlight=False, markup=False)
    )
    if once:
        runs = sched.run_due()
        console.print(f"{len(runs)} run(s) started.")
        return
    console.print("Scheduler running; Ctrl+C to stop.")
    try:
        sched.loop(stop=threading.Event())
    except KeyboardInterrupt:
        console.print("Scheduler stopped.")


def register(app: typer.Typer) -> None:
    """Add the pipeline commands to the main app."""
    app.command("run")(run)
    app.command("lineage")(lineage)
    app.command("backfill")(backfill)
    app.command("scheduler")(scheduler)
    app.add_typer(runs_app, name="runs")
    app.add_typer(schedule_app, name="schedule")
