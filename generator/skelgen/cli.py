"""The ``skelgen`` command line: parse options, ask for what is missing, call :mod:`skelgen.api`, print.

Kept light on purpose: importing this module must not import TensorFlow or copier, so that
``skelgen --help`` is instant. The commands about an existing project's runs, weights and health
are in :mod:`skelgen.cli_tools`.
"""

from __future__ import annotations

import shlex
import sys

import click

from skelgen import _click
from skelgen._click import Choice, Group, as_path, ask
from skelgen_runtime._version import __version__
from skelgen_runtime.training import FRAMEWORKS, REMOVED_FRAMEWORKS

__all__ = ["main", "cli"]


def _tasks() -> tuple[str, ...]:
    from skelgen_runtime.tasks import TASK_NAMES

    return tuple(TASK_NAMES)


def _presets() -> tuple[str, ...]:
    from skelgen_runtime.presets import preset_names

    return tuple(preset_names())


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="skelgen")
def cli() -> None:
    """Generate TensorFlow projects and keep them up to date.

    \b
    skelgen new NAME --task segmentation      a project in the current workspace
    skelgen add-dataset shapes                a dataset in the current project
    skelgen update                            the newest template into the current project
    skelgen runs                              the current project's runs, newest first
    skelgen weights import FILE               pretrained weights for a machine without internet
    skelgen doctor                            what is wrong with this project or workspace, and the fix

    Each command's --help lists its choices and defaults and shows an example.

    \b
    Example, from nothing to a trained model:
      skelgen new demo --task classification && cd demo && skelgen add-dataset shapes
      python datasets/build_shapes_to_tfrecord.py && python train.py --config configs/demo.yaml
    """


@cli.command("new")
@click.argument("name", required=False)
@click.option(
    "--task", type=Choice(_tasks, "task"), help="What the project learns (default: segmentation; asked on a terminal)."
)
@click.option(
    "--framework",
    type=Choice(lambda: FRAMEWORKS, "framework", REMOVED_FRAMEWORKS),
    help="Training loop: keras (model.fit) or tf (custom tf.GradientTape loop) (default: keras; asked on a terminal).",
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

    \b
    Example:
      skelgen new brain --task segmentation --framework tf --workspace ~/projects
    """
    from skelgen import api

    if name is None and not _click.interactive(defaults):
        raise click.UsageError("missing NAME: skelgen new NAME --task segmentation")
    name = ask(name, prompt="Project name", default=None, defaults=defaults)
    task = ask(task, prompt="Task", default="segmentation", defaults=defaults, choices=_tasks())
    framework = ask(framework, prompt="Framework", default="keras", defaults=defaults, choices=FRAMEWORKS)
    made = api.new_project(
        name=name, task=task, framework=framework, workspace=as_path(workspace), commit=not no_commit
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
    type=Choice(_presets, "dataset preset"),
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
    help="Folder where the raw data already lives (another disk); nothing is copied (default: the raw data goes into datasets/NAME/, where its README says).",
)
@click.option(
    "--classes",
    metavar="A,B,...",
    help="Class names in label-id order, comma-separated (default: the preset's; custom: asked on a terminal, "
    "else read from the data where its layout names them).",
)
@click.option("--defaults", is_flag=True, help="Never ask: take defaults for every missing value.")
@click.option("--no-commit", is_flag=True, help="Do not commit the files the dataset adds.")
def add_dataset_cmd(name, preset, project, source, classes, defaults, no_commit) -> None:
    """Add dataset NAME to a project: datasets/NAME/, its build script and its viewer.

    The built-in preset 'shapes' also generates its images and labels (no download). The files the
    dataset adds are committed (raw data and records are git-ignored, never committed).

    \b
    Examples:
      skelgen add-dataset shapes                                  the built-in sample, generated
      skelgen add-dataset voc2012 --source /data/VOCdevkit/VOC2012  a publisher's layout, read in place
      skelgen add-dataset cells --preset custom --classes background,nucleus,membrane
    """
    from skelgen import api

    if name is None and not _click.interactive(defaults):
        raise click.UsageError("missing NAME: skelgen add-dataset NAME [--preset PRESET]")
    name = ask(name, prompt="Dataset name", default="shapes", defaults=defaults)
    if classes is None and (preset or name) == "custom" and _click.interactive(defaults):
        classes = click.prompt(
            "Class names in label-id order, comma-separated (empty: read from the data)", default="", show_default=False
        )
    names = classes.split(",") if classes else None
    path = api.add_dataset(
        name=name,
        preset=preset,
        project=as_path(project),
        source=as_path(source) if source else None,
        commit=not no_commit,
        announce=lambda line: click.echo(f"{line} ...", err=True),
        classes=names,
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

    \b
    Examples:
      skelgen update --check        behind? by how many versions? (exit 1 if behind)
      skelgen update --dry-run      what would change, changing nothing
    """
    import json

    from skelgen import update

    if as_json and not check:
        raise click.UsageError("--json goes with --check")
    if check:
        statuses = update.check_project(project=as_path(project), to=to)
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

    update.update_project(project=as_path(project), to=to, dry_run=dry_run, conflict=conflict, on_scaffold=show)
    if dry_run:
        click.echo("dry run: nothing was changed")


from skelgen.cli_sweep import sweep_cmd  # noqa: E402  # registered below
from skelgen.cli_tools import doctor_cmd, runs_cmd, weights_cmd  # noqa: E402

cli.add_command(runs_cmd)
cli.add_command(weights_cmd)
cli.add_command(doctor_cmd)
cli.add_command(sweep_cmd)


def main() -> None:
    cli(prog_name="skelgen")


if __name__ == "__main__":
    main()
