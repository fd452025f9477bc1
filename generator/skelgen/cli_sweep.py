"""``skelgen sweep``: hyperparameter sweeps on Optuna, each trial an ordinary run (:mod:`skelgen.sweeps`)."""

from __future__ import annotations

import click

from skelgen._click import JSON, PROJECT, as_path

__all__ = ["sweep_cmd"]

STORAGE = click.option(
    "--storage",
    metavar="URL",
    help="the study's database (default: sqlite:///PROJECT/logs/sweeps.db); a postgresql+psycopg://USER@HOST/DB "
    "shared by several machines runs one sweep on all of them",
)


@click.group("sweep")
def sweep_cmd() -> None:
    """Search hyperparameters with Optuna: every trial is a train.py run (logs/RUN, models/RUN, run.json
    tagged with the sweep and trial; skelgen runs --sweep ID lists them).

    \b
    skelgen sweep run sweeps/NAME.yaml [--trials N] [--workers K]   run trials until N have finished
    skelgen sweep show NAME [--json]                                the trials ranked by the objective
    skelgen sweep plot NAME --out DIR                               history.png, importances.png
    skelgen sweep best NAME --out configs/best.yaml                 the best trial's complete config

    The sweep file (yours: sweeps/NAME.yaml) names the search space over config keys, the objective
    (default: the task's monitor), the number of trials, the sampler (tpe, seeded) and the pruner
    (median, hyperband or none). A killed sweep or worker loses nothing: run the same command again.

    \b
    Example:
      skelgen sweep run sweeps/demo.yaml --workers 2 && skelgen sweep show demo
    """


@sweep_cmd.command("run")
@click.argument("file", type=click.Path(dir_okay=False), metavar="SWEEP_FILE")
@click.option("--trials", type=int, help="finished trials the study ends with (default: the file's trials)")
@click.option("--workers", type=int, default=1, show_default=True, help="trials run at once by this command")
@STORAGE
@PROJECT
def sweep_run_cmd(file, trials, workers, storage, project) -> None:
    """Run the sweep SWEEP_FILE until its study has the asked number of finished (complete or pruned) trials.

    Checked before the first trial against the project's config schema (a misspelt key gets the closest
    one, a value out of its key's range is refused). Several commands on one storage (other terminals,
    other machines with --storage postgresql+psycopg://...) share the work and never run a trial twice.
    Ctrl-C stops after the running trials' current step; a kill -9 fails the killed trial; either
    way the same command goes on.

    \b
    Example:
      skelgen sweep run sweeps/demo.yaml --trials 12 --workers 2
    """
    from skelgen import sweeps

    outcome = sweeps.run_sweep(
        file=as_path(file),
        project=as_path(project or "."),
        trials=trials,
        workers=workers,
        storage=storage,
        say=lambda line: click.echo(line),
    )
    from skelgen_runtime.sweeps.results import results_text

    shown = sweeps.show_sweep(
        sweep=outcome.study.study_name, project=as_path(project or as_path(file).parent), storage=storage
    )
    click.echo(results_text(shown))


@sweep_cmd.command("show")
@click.argument("sweep", metavar="SWEEP")
@STORAGE
@PROJECT
@JSON
def sweep_show_cmd(sweep, storage, project, as_json) -> None:
    """The trials of SWEEP ranked: trial, run id, status, objective, parameters; failed trials' reasons.

    \b
    --json fields: {"sweep", "objective", "direction", "finished", "trials": [{"trial", "run", "status",
    "value", "params": {KEY: VALUE}, "reason"}]}

    \b
    Example:
      skelgen sweep show demo --json
    """
    import json

    from skelgen import sweeps
    from skelgen_runtime.sweeps.results import results_json, results_text

    results = sweeps.show_sweep(sweep=sweep, project=as_path(project or "."), storage=storage)
    click.echo(json.dumps(results_json(results), indent=2) if as_json else results_text(results))


@sweep_cmd.command("plot")
@click.argument("sweep", metavar="SWEEP")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="folder for the PNGs")
@STORAGE
@PROJECT
def sweep_plot_cmd(sweep, out, storage, project) -> None:
    """Optuna's optimisation history and parameter importances of SWEEP as PNGs in --out (history.png,
    and importances.png once two trials are complete).

    \b
    Example:
      skelgen sweep plot demo --out sweep-plots
    """
    from skelgen import sweeps

    for path in sweeps.plot_sweep(sweep=sweep, out=as_path(out), project=as_path(project or "."), storage=storage):
        click.echo(f"wrote {path}")


@sweep_cmd.command("best")
@click.argument("sweep", metavar="SWEEP")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="the config file to write")
@STORAGE
@PROJECT
def sweep_best_cmd(sweep, out, storage, project) -> None:
    """Write the best trial's complete config (its run's config.yaml), ready for python train.py --config.

    \b
    Example:
      skelgen sweep best demo --out configs/best.yaml && python train.py --config configs/best.yaml
    """
    from skelgen import sweeps

    best, path = sweeps.best_config(sweep=sweep, out=as_path(out), project=as_path(project or "."), storage=storage)
    click.echo(f"wrote {path}: trial {best.trial} (run {best.run}), {best.value:.4f}")
    click.echo(f"next: python train.py --config {path}")
