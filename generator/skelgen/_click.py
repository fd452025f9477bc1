"""What the ``skelgen`` commands share: lazily listed choices, errors as one line, asking for missing values.

Imports only click and the library's TensorFlow-free tables, so that ``skelgen --help`` stays instant.
"""

from __future__ import annotations

import sys

import click

from skelgen_runtime.errors import SkelgenError, did_you_mean

__all__ = ["Choice", "Group", "as_path", "ask", "interactive", "PROJECT", "JSON"]


def as_path(value):
    """A command-line path as a ``pathlib.Path`` (imported when a command runs, not for ``--help``)."""
    from pathlib import Path

    return Path(value)


class Choice(click.Choice):
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


class Group(click.Group):
    """Turns :class:`SkelgenError` into ``error: ...`` and its exit code, never a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except SkelgenError as err:
            click.secho(f"{err.prefix}: {err}", fg="red", err=True)
            ctx.exit(err.exit_code)


def interactive(defaults: bool) -> bool:
    return not defaults and sys.stdin.isatty()


def ask(value, *, prompt: str, default, defaults: bool, choices=None):
    """``value`` if given; else a prompt on a terminal; else ``default``."""
    if value is not None:
        return value
    if interactive(defaults):
        kind = click.Choice(choices) if choices else None
        return click.prompt(prompt, default=default, type=kind)
    return default


PROJECT = click.option(
    "--project",
    type=click.Path(file_okay=False),
    default=None,
    help="The project, or any folder inside it (default: the current folder).",
)
JSON = click.option("--json", "as_json", is_flag=True, help="Print JSON (fields: see skelgen runs --help).")
