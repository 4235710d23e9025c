"""`recap exp ...`, `recap link` and `recap rerun`: experiments, runs and their links to entries."""

import re
from pathlib import Path
from typing import Annotated

import typer

from recap.cli.output import print_json, print_table

app = typer.Typer(help="Experiments and their recorded runs.", no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _fmt(value, digits: int = 6) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


_RECAP_ERROR = re.compile(r"^recap\.errors\.\w+: ")


def _hanging(label: str, text: str) -> str:
    """``label`` then ``text``, wrapped under its first character on a terminal (one line in a
    pipe)."""
    from recap.cli.output import fitted, wrapped

    return "\n".join(wrapped(text, label, " " * len(label))) if fitted() else label + text


def _params_text(params: dict) -> str:
    return " ".join(f"{k}={_fmt(v)}" for k, v in params.items())


@app.command("list")
def list_cmd(json_: JsonOpt = False):
    """List the experiment folders with their last run's status and primary metric."""
    from recap import db
    from recap.lab.experiments import list_experiments

    rows, errors = list_experiments(db.connect())
    if json_:
        print_json(rows)
    else:
        print_table(
            ["name", "project", "description", "last run", "status", "primary"],
            [
                [
                    r["name"],
                    r["project"],
                    r["description"],
                    r["last_run"] or "-",
                    r["last_status"] or "never run",
                    f"{r['primary']} {_fmt(r['last_primary'])}",
                ]
                for r in rows
            ],
            empty="no experiments: 'recap init .' copies the shipped ones into experiments/ "
            "(or add experiments/NAME/experiment.toml)",
            detail=(2, 5),  # on a narrow terminal: the description and the metric under the name
        )
    for err in errors:
        typer.echo(f"error: {err}", err=True)
    if errors:
        raise typer.Exit(2)


@app.command("run")
def run_cmd(
    name: Annotated[str, typer.Argument(help="The experiment (a folder in experiments/).")],
    param: Annotated[
        list[str] | None,
        typer.Option("-p", "--param", help="Override a param: key=value (repeatable)."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed handed to the run.")] = 0,
    device: Annotated[str, typer.Option(help="cpu, cuda or auto.")] = "auto",
    force: Annotated[
        bool, typer.Option("--force", help="Run even when a cached run matches.")
    ] = False,
    processes: Annotated[
        int, typer.Option(help="Data-parallel processes on this machine, through torchrun.")
    ] = 1,
    gpus: Annotated[
        int, typer.Option(help="One process per GPU (NCCL): --processes N --device cuda.")
    ] = 0,
    nodes: Annotated[int, typer.Option(help="Machines the run spans (torchrun --nnodes).")] = 1,
    node_rank: Annotated[int, typer.Option(help="This machine's rank, 0..nodes-1.")] = 0,
    main_address: Annotated[
        str | None, typer.Option(help="Address of the node-rank 0 machine (torchrun).")
    ] = None,
    main_port: Annotated[
        int | None, typer.Option(help="Its port for the rendezvous (torchrun).")
    ] = None,
    lr_rule: Annotated[
        str, typer.Option(help="LR for the batch x processes: none, linear or sqrt.")
    ] = "none",
    json_: JsonOpt = False,
):
    """Run an experiment in a child process and record it (a matching finished run is reused)."""
    from recap import db
    from recap.lab.launch import Launch
    from recap.lab.records import run_record
    from recap.lab.runner import run_experiment

    launch = Launch(gpus or processes, nodes, node_rank, main_address, main_port, gpus > 0, lr_rule)
    conn = db.connect()
    outcome = run_experiment(
        conn,
        name,
        param or [],
        seed=seed,
        device=device,
        force=force,
        watch=_live(),
        launch=launch,
    )
    if not outcome.run_id:  # node rank > 0: node 0 records the run
        typer.echo(f"node {node_rank}: {outcome.status}")
        raise typer.Exit(0 if outcome.status == "succeeded" else 1)
    for w in outcome.warnings:
        typer.echo(f"warning: {w}", err=True)
    rec = run_record(conn, outcome.run_id)
    rec["cached"] = outcome.cached
    if json_:
        print_json(rec)
    else:
        _print_outcome(conn, rec)
    if rec["status"] == "interrupted":
        typer.echo(f"interrupted: run {rec['id']} recorded as interrupted", err=True)
        raise typer.Exit(130)
    if rec["status"] != "succeeded":
        raise typer.Exit(1)


def _live():
    """Where a run is going: its log path, then (on a terminal) a spinner with its last metrics."""
    import sys

    from recap.lab.runner import Watcher

    class Live(Watcher):
        progress = None
        line = ""

        def start(self, experiment, run_id, log_path):
            typer.echo(f"{experiment} run {run_id} started (log: {log_path})", err=True)
            if not sys.stderr.isatty():
                return
            from rich.console import Console
            from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            self.progress = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self.progress.start()
            self.task = self.progress.add_task("running")

        def update(self, step, last):
            if self.progress and not self.line:  # an epoch line, once there is one, says more
                shown = "  ".join(f"{k}={_fmt(v, 4)}" for k, v in list(last.items())[:4])
                self.progress.update(self.task, description=f"step {step}  {shown}")

        def progress_line(self, line):
            self.line = line
            if self.progress:
                self.progress.update(self.task, description=line, refresh=True)

        def stop(self):
            if self.progress:
                self.progress.stop()

    return Live()


def _print_outcome(conn, rec: dict) -> None:
    from recap.lab.records import experiment_primary
    from recap.lab.runner import run_dir_of

    if rec["cached"]:
        typer.echo(
            f"cached: {rec['experiment']} run {rec['id']} (succeeded {rec['started']}; "
            "--force runs it again)"
        )
    else:
        typer.echo(
            f"{rec['experiment']} run {rec['id']} {rec['status']} in {_fmt(rec['duration'])} s"
        )
    primary, direction = experiment_primary(conn, rec["experiment"])
    if primary in rec["summary"]:
        typer.echo(f"  {primary} = {_fmt(rec['summary'][primary])} ({direction})")
    for name, message in rec["flags"].items():
        typer.echo(f"  flag {name}: {message}")
    typer.echo(f"  outputs: {run_dir_of(rec)}")
    if rec["status"] != "succeeded":
        last = (rec["error"] or "").strip().splitlines()[-1:] or ["(no detail)"]
        # recap's own errors are written for the user: their message, not the class's path
        typer.echo(f"  error: {_RECAP_ERROR.sub('', last[0])}", err=True)
        typer.echo(f"  log: {rec['log_path']}", err=True)


def _show_experiment(spec, json_: bool) -> None:
    if json_:
        print_json(spec.as_dict())
        return
    typer.echo(f"{spec.name} ({spec.project or 'no project'}): {spec.description}")
    typer.echo(f"primary metric: {spec.primary} ({spec.direction}), tolerance {spec.tolerance}")
    print_table(
        ["param", "type", "default", "help"],
        [
            [
                p.name,
                p.type + (f" {'|'.join(map(str, p.choices))}" if p.choices else ""),
                _fmt(p.default),
                p.help,
            ]
            for p in spec.params.values()
        ],
        empty="no params",
        wrap=32,
    )
    typer.echo(f"run it: recap exp run {spec.name} -p KEY=VALUE")


@app.command("rm")
def rm_cmd(
    run: Annotated[str, typer.Argument(help="A run id (or a unique prefix or suffix of one).")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    json_: JsonOpt = False,
):
    """Delete a run: its records, its links and its output folder (asks first unless --yes)."""
    from recap import db
    from recap.lab.records import resolve_run
    from recap.lab.remove import remove_run

    conn = db.connect()
    run_id = resolve_run(conn, run)
    if not yes and not typer.confirm(f"delete run {run_id} and its outputs?", default=False):
        typer.echo("nothing deleted")
        raise typer.Exit(1)
    result = remove_run(conn, run_id)
    if json_:
        print_json(result)
        return
    where = f" and {result['folder']}" if result["folder"] else ""
    typer.echo(f"deleted {result['experiment']} run {result['id']}{where}")


@app.command("runs")
def runs_cmd(
    name: Annotated[str | None, typer.Argument(help="Only this experiment's runs.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 50,
    json_: JsonOpt = False,
):
    """List recorded runs, newest first (stale 'running' ones are marked failed)."""
    from recap import db
    from recap.lab.records import experiment_primary, list_runs

    conn = db.connect()
    runs = list_runs(conn, name, limit=limit)
    if json_:
        print_json(runs)
        return
    primaries = {}
    rows = []
    for r in runs:
        if r["experiment"] not in primaries:
            primaries[r["experiment"]] = experiment_primary(conn, r["experiment"])[0]
        p = primaries[r["experiment"]]
        rows.append(
            [
                r["id"],
                r["experiment"],
                r["status"],
                r["started"][:16].replace("T", " "),
                _fmt(r["duration"]),
                f"{p}={_fmt(r['summary'].get(p))}" if p else "-",
                _params_text(r["params"]) + f" seed={r['seed']}",
                r["parent_id"] or "",
            ]
        )
    print_table(
        ["id", "experiment", "status", "started", "secs", "primary", "params", "rerun of"],
        rows,
        empty="no runs yet (recap exp run NAME)",
        detail=(5, 6, 7),  # on a narrow terminal: under the run, whole
    )


@app.command("show")
def show_cmd(
    run: Annotated[
        str,
        typer.Argument(
            help="A run id (or a unique prefix or suffix of one), or an experiment's name."
        ),
    ],
    plot: Annotated[
        Path | None,
        typer.Option("--plot", help="Also write the metric curves as a PNG to this file."),
    ] = None,
    json_: JsonOpt = False,
):
    """Show a run (params, metrics, flags, artifacts, environment) or an experiment's params."""
    from recap import db
    from recap.lab import spec as specmod
    from recap.lab.plots import curve_png
    from recap.lab.records import mark_stale, resolve_run, run_record

    conn = db.connect()
    if any(f.name == run for f in specmod.iter_folders()):
        _show_experiment(specmod.load_spec(specmod.experiment_folder(run)), json_)
        return
    mark_stale(conn)
    rec = run_record(conn, resolve_run(conn, run))
    png = curve_png(conn, rec["id"], plot) if plot else None
    if json_:
        print_json(rec | ({"plot": str(png)} if png else {}))
        return
    env = rec["environment"]
    lines = [
        f"run {rec['id']}  ({rec['experiment']})",
        f"status    {rec['status']}"
        + (f" in {_fmt(rec['duration'])} s" if rec["duration"] is not None else ""),
        f"started   {rec['started']}   ended {_fmt(rec['ended'])}",
        f"seed      {rec['seed']}   device {_fmt(rec['device'])}",
        _hanging("params    ", _params_text(rec["params"]) or "-"),
        f"git       {_fmt(rec['git_commit'])}"
        + (" (dirty, diff " + (rec["git_diff_hash"] or "")[:12] + ")" if rec["git_dirty"] else ""),
        f"folder    {(rec['folder_hash'] or '-')[:16]}   cache key "
        f"{(rec['cache_key'] or '-')[:16]}",
        f"python    {env.get('python', '-')}   torch {_fmt(env.get('torch'))}   "
        f"cuda {_fmt(env.get('cuda'))}   gpu {_fmt(env.get('gpu'))}",
    ]
    if rec["parent_id"]:
        lines.append(f"rerun of  {rec['parent_id']}")
    lines.append(f"log       {rec['log_path']}")
    typer.echo("\n".join(lines))
    summary = {k: v for k, v in rec["summary"].items() if k != "flags"}
    if summary:
        typer.echo("summary")
        for k, v in summary.items():
            typer.echo(f"  {k} = {_fmt(v)}")
    for name, message in rec["flags"].items():
        typer.echo(f"FLAG {name}: {message}")
    if rec["metrics"]:
        typer.echo("metrics (count, last, min, max)")
        for k, m in rec["metrics"].items():
            typer.echo(
                f"  {k}: {m['count']}, {_fmt(m['last'])}, {_fmt(m['min'])}, {_fmt(m['max'])}"
            )
    if rec["artifacts"]:
        typer.echo("artifacts")
        for a in rec["artifacts"]:
            typer.echo(f"  {a['path']}  {a['kind']}  {a['size']} B  sha256 {a['sha256'][:16]}")
    if rec["error"]:
        typer.echo("error\n" + rec["error"].rstrip())
    if png:
        typer.echo(f"curves: {png}")
    elif plot:
        typer.echo("curves: none (the run logged no metrics)")


@app.command("compare")
def compare_cmd(
    runs: Annotated[list[str], typer.Argument(help="Two or more run ids.")],
    all_: Annotated[bool, typer.Option("--all", help="Also list rows that are the same.")] = False,
    json_: JsonOpt = False,
):
    """Compare runs side by side: params, metrics and environment, differences marked '*'."""
    from recap import db
    from recap.errors import InvalidInput
    from recap.lab.compare import compare_runs

    if len(runs) < 2:
        raise InvalidInput("compare needs at least two runs")
    result = compare_runs(db.connect(), runs)
    if json_:
        print_json(result)
        return
    rows = [
        [("*" if r["differs"] else ""), r["section"], r["key"], *map(_fmt, r["values"])]
        for r in result["rows"]
        if all_ or r["differs"] or r["section"] != "environment"
    ]
    print_table(["", "section", "key", *result["runs"]], rows)
    n = sum(r["differs"] for r in result["rows"])
    typer.echo(f"{n} difference{'s' if n != 1 else ''}")


def link_cmd(
    entry: Annotated[str, typer.Argument(help="The entry (id or slug).")],
    run: Annotated[str | None, typer.Option("--run", help="A run id.")] = None,
    exp: Annotated[str | None, typer.Option("--exp", help="An experiment name.")] = None,
    bookmark: Annotated[str | None, typer.Option("--bookmark", help="A bookmark id.")] = None,
    note: Annotated[
        str | None, typer.Option("--note", help="A note on the link, shown in the post.")
    ] = None,
    json_: JsonOpt = False,
):
    """Link an entry to a run, an experiment or a bookmark (linking again updates the note)."""
    from recap import db
    from recap import week as weekview

    link = weekview.link(db.connect(), entry, run=run, exp=exp, bookmark=bookmark, note=note)
    if json_:
        print_json(link)
        return
    what = next(f"{k} {link[k]}" for k in ("run", "experiment", "bookmark") if k in link)
    typer.echo(
        f"{'linked' if link['created'] else 'updated link of'} entry {link['slug']} -> {what}"
    )


def unlink_cmd(
    entry: Annotated[str, typer.Argument(help="The entry (id or slug).")],
    run: Annotated[str | None, typer.Option("--run", help="A run id.")] = None,
    exp: Annotated[str | None, typer.Option("--exp", help="An experiment name.")] = None,
    bookmark: Annotated[str | None, typer.Option("--bookmark", help="A bookmark id.")] = None,
    json_: JsonOpt = False,
):
    """Take a run, experiment or bookmark out of an entry (the week's automatic ones too)."""
    from recap import db
    from recap import week as weekview

    result = weekview.unlink(db.connect(), entry, run=run, exp=exp, bookmark=bookmark)
    if json_:
        print_json(result)
        return
    what = next(f"{k} {result[k]}" for k in ("run", "experiment", "bookmark") if k in result)
    verb = "unlinked" if result["removed"] else "kept out (it was not shown)"
    typer.echo(f"{verb}: entry {result['slug']} -x- {what}")


def rerun_cmd(
    ref: Annotated[str, typer.Argument(help="An entry (id or slug) or a run id.")],
    device: Annotated[
        str | None, typer.Option(help="cpu, cuda or auto (default: the device each run recorded).")
    ] = None,
    json_: JsonOpt = False,
):
    """Replay linked runs with their recorded params and seed; exit non-zero if one differs."""
    import sys

    from recap import db
    from recap import week as weekview
    from recap.errors import NotReproduced
    from recap.lab.rerun import rerun

    conn = db.connect()
    result = rerun(
        conn,
        ref,
        device=device,
        warn=lambda m: typer.echo(f"warning: {m}", err=True),
        targets=weekview.rerun_targets(conn, ref),
        watch=_live() if sys.stderr.isatty() else None,  # a progress line per replayed run
    )
    if json_:
        print_json(result)
    elif not result["runs"]:
        typer.echo("nothing was rerun")
    else:
        # One small table per replayed run under a line naming it: the ids stay whole at 80
        # columns (one table of eight columns cut them to "20261…").
        for i, r in enumerate(result["runs"]):
            again = f"rerun {r['rerun']}" if r["rerun"] else "not rerun"
            typer.echo(("\n" if i else "") + f"{r['experiment']} run {r['original']} -> {again}")
            if r["verdicts"]:
                rows = [
                    [v["metric"], _fmt(v["recorded"], 12), _fmt(v["now"], 12),
                     _fmt(v["tolerance"]), v["verdict"]]
                    for v in r["verdicts"]
                ]  # fmt: skip
                print_table(["metric", "recorded", "now", "tolerance", "verdict"], rows)
        typer.echo("")
    if not result["reproduced"]:
        bad = sum(1 for r in result["runs"] for v in r["verdicts"] if v["verdict"] != "ok")
        raise NotReproduced(
            f"{result['target']}: did not reproduce "
            f"({bad} metric{'s' if bad != 1 else ''} off, "
            f"{len(result['runs'])} run{'s' if len(result['runs']) != 1 else ''}"
            " replayed)"
        )
    if not json_:
        typer.echo(f"{result['target']}: reproduced")


def register(root: typer.Typer) -> None:
    from recap.cli import exp_export

    exp_export.register(app)
    root.add_typer(app, name="exp")
    root.command("link")(link_cmd)
    root.command("unlink")(unlink_cmd)
    root.command("rerun")(rerun_cmd)
