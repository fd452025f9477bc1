"""The ``skelgen`` command line: parse options, ask for what is missing, call :mod:`skelgen.api`, print.

Kept light on purpose: importing this module must not import TensorFlow or copier, so that
``skelgen --help`` is instant.
"""

from __future__ import annotations

import shlex
import sys

import click

from skelgen_runtime._version import __version__
from skelgen_runtime.errors import SkelgenError, did_you_mean

__all__ = ["main", "cli"]

from skelgen_runtime.training import FRAMEWORKS, REMOVED_FRAMEWORKS  # noqa: E402


def _as_path(value):
    """A command-line path as a ``pathlib.Path`` (imported when a command runs, not for ``--help``)."""
    from pathlib import Path

    return Path(value)


def _tasks() -> tuple[str, ...]:
    from skelgen_runtime.tasks import TASK_NAMES

    return tuple(TASK_NAMES)


def _presets() -> tuple[str, ...]:
    from skelgen_runtime.presets import preset_names

    return tuple(preset_names())


class _Choice(click.Choice):
    """A ``click.Choice`` (listed in ``--help``, completed by the shell) whose refusal names the closest
    choice; the choices are read when first asked for, so that ``skelgen --help`` does not load the tables."""

    def __init__(self, load, what: str, reasons=None) -> None:  # click.Choice's attributes; choices lazily
        self._load = load
        self.what = what
        self.reasons = reasons or {}  # value -> why it is refused, for values users ask for that are gone
        self.case_sensitive = True

    @property
    def choices(self) -> tuple[str, ...]:  # type: ignore[override]  # click.Choice's attribute, read lazily
        return self._load()

    def convert(self, value, param, ctx):
        if value in self.choices:
            return value
        folded = {choice.casefold(): choice for choice in self.choices}
        if str(value).casefold() in folded:  # --framework TF: the choice meant, whatever its case
            return folded[str(value).casefold()]
        if value in self.reasons:
            self.fail(self.reasons[value], param, ctx)
        self.fail(
            f"unknown {self.what} {value!r}; choose one of: {', '.join(self.choices)}"
            f"{did_you_mean(str(value), self.choices)}",
            param,
            ctx,
        )


class _Group(click.Group):
    """Turns :class:`SkelgenError` into ``error: ...`` and its exit code, never a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except SkelgenError as err:
            click.secho(f"{err.prefix}: {err}", fg="red", err=True)
            ctx.exit(err.exit_code)


def _interactive(defaults: bool) -> bool:
    return not defaults and sys.stdin.isatty()


def _ask(value, *, prompt: str, default, defaults: bool, choices=None):
    """``value`` if given; else a prompt on a terminal; else ``default``."""
    if value is not None:
        return value
    if _interactive(defaults):
        kind = click.Choice(choices) if choices else None
        return click.prompt(prompt, default=default, type=kind)
    return default


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="skelgen")
def cli() -> None:
    """Generate TensorFlow projects and keep them up to date.

    \b
    skelgen new NAME --task segmentation      a project in the current workspace
    skelgen add-dataset shapes                a dataset in the current project
    skelgen update                            the newest template into the current project
    skelgen runs                              the current project's runs, newest first
    skelgen weights import FILE               pretrained weights for a machine without internet
    """


@cli.command("new")
@click.argument("name", required=False)
@click.option("--task", type=_Choice(_tasks, "task"), help="What the project learns.")
@click.option(
    "--framework",
    type=_Choice(lambda: FRAMEWORKS, "framework", REMOVED_FRAMEWORKS),
    help="Training loop: keras (model.fit) or tf (custom tf.GradientTape loop).",
)
@click.option(
    "--workspace",
    type=click.Path(file_okay=False),
    default=".",
    show_default=True,
    help="Folder of projects; made a workspace (README index, CHANGELOG, git) if it is not one.",
)
@click.option("--defaults", is_flag=True, help="Never ask: take defaults for every missing value.")
@click.option(
    "--no-commit",
    is_flag=True,
    help="Do not commit the new project in the workspace's git repository (updates need it committed).",
)
def new_cmd(name, task, framework, workspace, defaults, no_commit) -> None:
    """Generate project NAME inside the workspace.

    NAME is an ASCII Python identifier (letters, digits, underscores; not a keyword) that does not name
    an installed distribution or one the project needs (tensorflow, keras, ...); the workspace must not
    lie inside another project. Choices are case-insensitive. Missing values are asked for
    on a terminal; with --defaults or without a terminal the defaults are taken (task
    segmentation, framework keras). Both frameworks give the same layout, record formats, configs
    and run record; only the training loop differs. The generated files are committed (git
    commit "skelgen new NAME ...") so that skelgen update can merge later template versions.
    """
    from skelgen import api

    if name is None and not _interactive(defaults):
        raise click.UsageError("missing NAME: skelgen new NAME --task segmentation")
    name = _ask(name, prompt="Project name", default=None, defaults=defaults)
    task = _ask(task, prompt="Task", default="segmentation", defaults=defaults, choices=_tasks())
    framework = _ask(framework, prompt="Framework", default="keras", defaults=defaults, choices=FRAMEWORKS)
    made = api.new_project(
        name=name, task=task, framework=framework, workspace=_as_path(workspace), commit=not no_commit
    )
    if made.workspace_created:
        click.echo(f"workspace {made.path.parent}: created {', '.join(made.workspace_created)}")
    click.echo(
        f"created {task} project ({framework}) at {made.path}" + (f" (commit {made.commit[:8]})" if made.commit else "")
    )
    click.echo(f"next: cd {shlex.quote(str(made.path))} && skelgen add-dataset shapes")


@cli.command("add-dataset")
@click.argument("name", required=False)
@click.option(
    "--preset",
    type=_Choice(_presets, "dataset preset"),
    help="Layout of the raw data (default: NAME when NAME is a known dataset).",
)
@click.option(
    "--project",
    type=click.Path(file_okay=False),
    default=".",
    show_default=True,
    help="The project, or any folder inside it.",
)
@click.option(
    "--source",
    type=click.Path(file_okay=False),
    help="Folder where the raw data already lives (another disk); nothing is copied.",
)
@click.option("--defaults", is_flag=True, help="Never ask: take defaults for every missing value.")
@click.option("--no-commit", is_flag=True, help="Do not commit the files the dataset adds.")
def add_dataset_cmd(name, preset, project, source, defaults, no_commit) -> None:
    """Add dataset NAME to a project: datasets/NAME/, its build script and its viewer.

    The built-in preset 'shapes' also generates its images and labels (no download). The files the
    dataset adds are committed (raw data and records are git-ignored, never committed).
    """
    from skelgen import api

    if name is None and not _interactive(defaults):
        raise click.UsageError("missing NAME: skelgen add-dataset NAME [--preset PRESET]")
    name = _ask(name, prompt="Dataset name", default="shapes", defaults=defaults)
    path = api.add_dataset(
        name=name,
        preset=preset,
        project=_as_path(project),
        source=_as_path(source) if source else None,
        commit=not no_commit,
    )
    rel = path.parent.parent
    from skelgen_runtime.presets import get_preset

    spec = get_preset(preset or name)
    click.echo(f"added dataset {path.name} at {path} ({spec.name}: {spec.description})")
    click.echo(f"next: cd {shlex.quote(str(rel))} && python datasets/build_{path.name}_to_tfrecord.py")


@cli.command("update")
@click.option(
    "--project",
    type=click.Path(file_okay=False),
    default=".",
    show_default=True,
    help="The project, or any folder inside it.",
)
@click.option("--to", "to", metavar="VERSION", help="Template version to update to (default: this skelgen's).")
@click.option("--dry-run", is_flag=True, help="Show what would change, on a temporary clone; change nothing.")
@click.option(
    "--conflict",
    type=click.Choice(["inline", "rej"]),
    default="inline",
    show_default=True,
    help="Where a change that overlaps your edits goes: markers in the file, or a .rej file beside it.",
)
@click.option("--check", is_flag=True, help="Only say whether the project is behind, and by how much (exit 1 if so).")
@click.option("--json", "as_json", is_flag=True, help="With --check: print JSON.")
def update_cmd(project, to, dry_run, conflict, check, as_json) -> None:
    """Bring this skelgen's template into a project: the project scaffold, then each dataset.

    \b
    Template-owned files (train.py, pipelines, build scripts, README, ...) get the new version,
    three-way merged with your edits; your files (core/, configs/, datasets/preprocesses.py) are
    never touched. Each scaffold is committed on its own ("skelgen update: project 0.2.0 -> 0.2.1").
    The project must be committed first. On a conflict the command stops with exit status 3, names
    the files, and leaves both versions in them (or in .rej files) for you to resolve and commit.
    """
    import json

    from skelgen import update

    if as_json and not check:
        raise click.UsageError("--json goes with --check")
    if check:
        statuses = update.check_project(project=_as_path(project), to=to)
        if as_json:
            click.echo(
                json.dumps(
                    [
                        {
                            k: getattr(s, k)
                            for k in ("label", "answers_file", "recorded", "target", "behind", "versions_behind")
                        }
                        for s in statuses
                    ],
                    indent=2,
                )
            )
        for s in statuses if not as_json else ():
            ahead = f"behind: {s.recorded} -> {s.target}" + (
                f" ({s.versions_behind} version{'s' * (s.versions_behind != 1)})" if s.versions_behind else ""
            )
            click.echo(f"{s.label}: {ahead if s.behind else f'{s.recorded} (up to date)'}")
        if any(s.behind for s in statuses):
            if not as_json:
                click.echo("run skelgen update to bring them up to date")
            sys.exit(1)
        return
    prefix = "would update" if dry_run else "updated"

    def show(s) -> None:
        if not s.behind:
            click.echo(f"{s.label}: {s.recorded} (up to date)")
        elif not s.conflicts:
            files = ", ".join(line.strip() for line in s.changed) or "no file changed"
            click.echo(f"{s.label}: {prefix} {s.recorded} -> {s.target}: {files}")
        for rel in s.kept:
            click.echo(
                f"  kept {rel}: the new template no longer has it, but you had edited it, so it stays; carry "
                "your change over (the project README's 'Who owns what' says where) and delete it"
            )

    update.update_project(project=_as_path(project), to=to, dry_run=dry_run, conflict=conflict, on_scaffold=show)
    if dry_run:
        click.echo("dry run: nothing was changed")


_PROJECT = click.option(
    "--project",
    type=click.Path(file_okay=False),
    default=None,
    help="The project, or any folder inside it (default: the current folder).",
)
_JSON = click.option("--json", "as_json", is_flag=True, help="Print JSON (fields: see skelgen runs --help).")


@cli.group("runs", invoke_without_command=True)
@_PROJECT
@_JSON
@click.pass_context
def runs_cmd(ctx: click.Context, project, as_json) -> None:
    """List the project's runs, newest first: id, status, dataset, the config values that differ
    between runs, the best validation value (the run's monitor) with its epoch, and time spent.

    \b
    skelgen runs compare A B [C ...]          differing config values and metrics side by side
    skelgen runs plot A B ... --out F.png     the runs' curves in one figure
    A run is named by its id, a unique prefix of it, or latest (the newest run).

    \b
    --json fields: {"project", "varying": [KEY], "runs": [{"id", "status", "started", "dataset",
    "params": {KEY: VALUE}, "monitor", "monitor_mode", "best", "best_epoch", "epochs", "duration_s"}]};
    compare --json: {"project", "differing": [KEY], "runs": [{"id", "status", "config": {KEY: VALUE},
    "monitor", "monitor_mode", "best", "best_epoch", "epochs", "final": {COLUMN: VALUE},
    "eval": {SPLIT: {KEY: VALUE}}, "eval_sources": {SPLIT: {"weights", "data"}}}]}. KEY is a dotted config key;
    epochs count from 1; SPLIT-FINGERPRINT is an evaluation of a dataset rebuilt after the run trained.
    """
    if ctx.invoked_subcommand is not None:
        return
    import json

    from skelgen import runs

    listing = runs.list_runs(project=_as_path(project or "."))
    click.echo(json.dumps(runs.listing_json(listing), indent=2) if as_json else runs.listing_text(listing))


@runs_cmd.command("compare")
@click.argument("specs", nargs=-1, required=True, metavar="RUN RUN [RUN ...]")
@_PROJECT
@_JSON
@click.pass_context
def runs_compare_cmd(ctx: click.Context, specs, project, as_json) -> None:
    """Show runs side by side: only the config values that differ, then best, final and evaluation metrics."""
    import json

    from skelgen import runs

    group = ctx.parent.params if ctx.parent else {}  # the options given before the subcommand (skelgen runs --json ...)
    comparison = runs.compare_runs(project=_as_path(project or group.get("project") or "."), specs=specs)
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
@_PROJECT
@click.pass_context
def runs_plot_cmd(ctx: click.Context, specs, metric, out, project) -> None:
    """Draw the runs' curves of one metric, one line per run, into one figure."""
    from skelgen import runs

    group = ctx.parent.params if ctx.parent else {}
    plot = runs.plot_runs(
        project=_as_path(project or group.get("project") or "."), specs=specs, metric=metric, out=_as_path(out)
    )
    for run_id in plot.missing:
        click.echo(f"note: run {run_id} has no {plot.metric} values; left out", err=True)
    click.echo(f"wrote {plot.path} ({plot.metric} of {', '.join(plot.plotted)})")


@cli.group("weights")
def weights_cmd() -> None:
    """Pretrained weights for machines without internet (model.weights: imagenet)."""


@weights_cmd.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--backbone", help="The backbone the file is for (default: found from the file name), e.g. resnet50.")
@click.option(
    "--sha256",
    metavar="HEX",
    help="The SHA-256 you trust for the file; required where Keras checks no hash (MobileNetV2).",
)
def weights_import_cmd(file, backbone, sha256) -> None:
    """Check FILE and put it where Keras looks for model.weights: imagenet.

    \b
    FILE is Keras's ImageNet file for a backbone, downloaded on another machine under the name Keras
    gives it (e.g. resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5; the error of a training
    run that needs it names the file and its address). It is checked against the MD5 in Keras's own
    source (or against --sha256 where Keras has none), then copied to $KERAS_HOME/models
    (~/.keras/models); a file whose hash differs is refused and nothing is copied.
    """
    from skelgen_runtime.models.pretrained import import_weights

    target = import_weights(_as_path(file), backbone=backbone, sha256=sha256)
    click.echo(f"imported {target} (model.weights: imagenet now loads it offline)")


def main() -> None:
    cli(prog_name="skelgen")


if __name__ == "__main__":
    main()
