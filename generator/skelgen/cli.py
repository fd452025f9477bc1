"""The ``skelgen`` command line: parse options, ask for what is missing, call :mod:`skelgen.api`, print.

Kept light on purpose: importing this module must not import TensorFlow or copier, so that
``skelgen --help`` is instant.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from skelgen_runtime._version import __version__
from skelgen_runtime.errors import SkelgenError
from skelgen_runtime.presets import get_preset, preset_names

__all__ = ["main", "cli"]

# module-level import is cheap: skelgen.api imports copier only when it renders
from skelgen.api import FRAMEWORKS, TASKS  # noqa: E402


class _Group(click.Group):
    """Turns :class:`SkelgenError` into ``error: ...`` and its exit code, never a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except SkelgenError as err:
            click.secho(f"error: {err}", fg="red", err=True)
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
    """


@cli.command("new")
@click.argument("name", required=False)
@click.option("--task", type=str, help=f"What the project learns: {', '.join(TASKS)}.")
@click.option("--framework", type=str, help="Training loop: keras (model.fit) or tf (custom tf.GradientTape loop).")
@click.option("--workspace", type=click.Path(path_type=Path, file_okay=False), default=Path("."),
              show_default=True, help="Folder of projects; made a workspace (README index, CHANGELOG, git) if it is not one.")
@click.option("--defaults", is_flag=True, help="Never ask: take defaults for every missing value.")
def new_cmd(name, task, framework, workspace, defaults) -> None:
    """Generate project NAME inside the workspace.

    NAME must be a Python identifier (letters, digits, underscores). Missing values are asked for
    on a terminal; with --defaults or without a terminal the defaults are taken (task
    segmentation, framework keras). Both frameworks give the same layout, record formats, configs
    and run record; only the training loop differs.
    """
    from skelgen import api

    if name is None and not _interactive(defaults):
        raise click.UsageError("missing NAME: skelgen new NAME --task segmentation")
    name = _ask(name, prompt="Project name", default=None, defaults=defaults)
    task = _ask(task, prompt="Task", default="segmentation", defaults=defaults, choices=TASKS)
    framework = _ask(framework, prompt="Framework", default="keras", defaults=defaults, choices=FRAMEWORKS)
    made = api.new_project(name=name, task=task, framework=framework, workspace=workspace)
    if made.workspace_created:
        click.echo(f"workspace {made.path.parent}: created {', '.join(made.workspace_created)}")
    click.echo(f"created {task} project ({framework}) at {made.path}")
    click.echo(f"next: cd {made.path} && skelgen add-dataset shapes")


@cli.command("add-dataset")
@click.argument("name", required=False)
@click.option("--preset", type=str,
              help=f"Layout of the raw data (default: NAME when NAME is a known dataset): {', '.join(preset_names())}.")
@click.option("--project", type=click.Path(path_type=Path, file_okay=False), default=Path("."),
              show_default=True, help="The project, or any folder inside it.")
@click.option("--source", type=click.Path(path_type=Path, file_okay=False),
              help="Folder where the raw data already lives (another disk); nothing is copied.")
@click.option("--defaults", is_flag=True, help="Never ask: take defaults for every missing value.")
def add_dataset_cmd(name, preset, project, source, defaults) -> None:
    """Add dataset NAME to a project: datasets/NAME/, its build script and its viewer.

    The built-in preset 'shapes' also generates its images and labels (no download).
    """
    from skelgen import api

    if name is None and not _interactive(defaults):
        raise click.UsageError("missing NAME: skelgen add-dataset NAME [--preset PRESET]")
    name = _ask(name, prompt="Dataset name", default="shapes", defaults=defaults)
    path = api.add_dataset(name=name, preset=preset, project=project, source=source)
    rel = path.parent.parent
    spec = get_preset(preset or name)
    click.echo(f"added dataset {path.name} at {path} ({spec.name}: {spec.description})")
    click.echo(f"next: cd {rel} && python datasets/build_{path.name}_to_tfrecord.py")


def main() -> None:
    cli(prog_name="skelgen")


if __name__ == "__main__":
    main()
