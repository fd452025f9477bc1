"""``skelgen runs``, ``skelgen weights`` and ``skelgen doctor``: commands about a project's runs, the weights it
loads, and its health."""

from __future__ import annotations

import click

from skelgen._click import JSON, PROJECT, as_path

__all__ = ["runs_cmd", "weights_cmd", "doctor_cmd"]


@click.group("runs", invoke_without_command=True)
@PROJECT
@JSON
@click.option(
    "--sweep",
    metavar="ID",
    help="only the runs of this sweep's trials (skelgen sweep show ID ranks them); default: every run",
)
@click.pass_context
def runs_cmd(ctx: click.Context, project, as_json, sweep) -> None:
    """List the project's runs, newest first: id, status, dataset, the config values that differ
    between runs, the best validation value (the run's monitor) with its epoch, and time spent.

    \b
    skelgen runs compare A B [C ...]          differing config values and metrics side by side
    skelgen runs plot A B ... --out F.png     the runs' curves in one figure
    A run is named by its id, a unique prefix of it, or latest (the newest run, whatever its status).
    Lines fit the terminal (COLUMNS sets the width): config keys that do not fit are named on a last line;
    written to a file or a pipe, the table is whole.

    \b
    Example:
      skelgen runs compare latest 20261204-0915 --json

    \b
    --json fields: {"project", "varying": [KEY], "runs": [{"id", "status", "started", "dataset",
    "params": {KEY: VALUE}, "monitor", "monitor_mode", "best", "best_epoch", "epochs", "duration_s",
    "sweep": {"id", "trial"} | null}]};
    compare --json: {"project", "differing": [KEY], "runs": [{"id", "status", "config": {KEY: VALUE},
    "monitor", "monitor_mode", "best", "best_epoch", "epochs", "final": {COLUMN: VALUE},
    "eval": {SPLIT: {KEY: VALUE}}, "eval_sources": {SPLIT: {"weights", "data"}}}]}. KEY is a dotted config key;
    epochs count from 1; SPLIT-FINGERPRINT is an evaluation of a dataset rebuilt after the run trained.
    """
    if ctx.invoked_subcommand is not None:
        return
    import json

    from skelgen import runs

    listing = runs.list_runs(project=as_path(project or "."), sweep=sweep)
    for summary in listing.runs:  # a damaged record hides no other run: said on stderr, the run listed as unknown
        if summary.problem:
            click.echo(
                f"warning: run {summary.run_id}: {summary.problem}; its status is unknown (restore the file, or "
                "remove the run's logs/ and models/ folders)",
                err=True,
            )
    click.echo(json.dumps(runs.listing_json(listing), indent=2) if as_json else runs.listing_text(listing))


@runs_cmd.command("compare")
@click.argument("specs", nargs=-1, required=True, metavar="RUN RUN [RUN ...]")
@PROJECT
@JSON
@click.pass_context
def runs_compare_cmd(ctx: click.Context, specs, project, as_json) -> None:
    """Show runs side by side: only the config values that differ, then best, final and evaluation metrics.

    \b
    Example:
      skelgen runs compare 20261204-0915 latest
    """
    import json

    from skelgen import runs

    group = ctx.parent.params if ctx.parent else {}  # the options given before the subcommand (skelgen runs --json ...)
    comparison = runs.compare_runs(project=as_path(project or group.get("project") or "."), specs=specs)
    if as_json or group.get("as_json"):
        click.echo(json.dumps(runs.comparison_json(comparison), indent=2))
    else:
        click.echo(runs.comparison_text(comparison))


@runs_cmd.command("plot")
@click.argument("specs", nargs=-1, required=True, metavar="RUN [RUN ...]")
@click.option("--metric", help="A metrics.csv column, e.g. val_loss (default: the first run's monitor).")
@click.option(
    "--out", type=click.Path(dir_okay=False), required=True, help="The picture to write: .png, .pdf, .svg or .jpg."
)
@PROJECT
@click.pass_context
def runs_plot_cmd(ctx: click.Context, specs, metric, out, project) -> None:
    """Draw the runs' curves of one metric, one line per run, into one figure.

    \b
    Example:
      skelgen runs plot 20261204-0915 latest --metric val_loss --out curves.png
    """
    from skelgen import runs

    group = ctx.parent.params if ctx.parent else {}
    plot = runs.plot_runs(
        project=as_path(project or group.get("project") or "."), specs=specs, metric=metric, out=as_path(out)
    )
    for run_id in plot.missing:
        click.echo(f"note: run {run_id} has no {plot.metric} values; left out", err=True)
    click.echo(f"wrote {plot.path} ({plot.metric} of {', '.join(plot.plotted)})")


@click.group("weights")
def weights_cmd() -> None:
    """Pretrained weights for machines without internet (model.weights: imagenet).

    \b
    Example:
      skelgen weights import resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5
    """


@weights_cmd.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--backbone", help="The backbone the file is for (default: found from the file name), e.g. resnet50.")
@click.option(
    "--sha256",
    metavar="HEX",
    help="The SHA-256 you trust for the file; required where Keras checks no hash (MobileNetV2) (default: the MD5 in Keras's source is checked).",
)
def weights_import_cmd(file, backbone, sha256) -> None:
    """Check FILE and put it where Keras looks for model.weights: imagenet.

    \b
    FILE is Keras's ImageNet file for a backbone, downloaded on another machine under the name Keras
    gives it (e.g. resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5; the error of a training
    run that needs it names the file and its address). It is checked against the MD5 in Keras's own
    source (or against --sha256 where Keras has none), then copied to $KERAS_HOME/models
    (~/.keras/models); a file whose hash differs is refused and nothing is copied.

    \b
    Example:
      skelgen weights import ~/Downloads/resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5
    """
    from skelgen_runtime.models.pretrained import import_weights

    target = import_weights(as_path(file), backbone=backbone, sha256=sha256)
    click.echo(f"imported {target} (model.weights: imagenet now loads it offline)")


@click.command("doctor")
@click.option(
    "--project",
    type=click.Path(file_okay=False),
    default=None,
    help="A project (or any folder inside it) or a workspace of projects (default: the current folder).",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print JSON: {root, kind, ok, findings: [{check, status, message, fix, project}]}.",
)
@click.option(
    "--full", is_flag=True, help="Hash every shard (default: up to 2 GiB per project, the rest checked for presence)."
)
@click.option(
    "--no-devices", is_flag=True, help="Skip the devices check, the one that imports TensorFlow (default: it runs)."
)
def doctor_cmd(project, as_json, full, no_devices) -> None:
    """Say what is wrong with a project, or with each project of a workspace, and how to fix it.

    \b
    versions  skelgen-tf, TensorFlow, Keras, TensorBoard against the project's pins; the template behind?
    template  each scaffold's template source (_src_path) readable and holding its version (_commit)
    git       the tree committed; untracked data or outputs that git does not ignore
    datasets  shards against dataset_info.json (present, SHA-256); schema against the project and its runs
    runs      runs recorded running whose process is gone
    weights   files that model.weights names in configs/*.yaml
    disk      free space for the next build
    devices   what TensorFlow sees; whether each config's train.distribute fits it

    Each line is ok, warn (worth knowing) or fail, with the command that fixes it. Exit status 1 when
    a check fails, 0 otherwise. Nothing is changed.

    \b
    Example:
      skelgen doctor --project ~/skelgen-demo --json
    """
    import json

    from skelgen import doctor

    report = doctor.diagnose(as_path(project or "."), full=full, devices=not no_devices)
    click.echo(json.dumps(report.as_json(), indent=2) if as_json else doctor.report_text(report))
    if not report.ok:
        raise SystemExit(1)
