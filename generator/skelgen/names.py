"""Validation of the names users give to projects and datasets.

Names become directory names, file names (``build_NAME_to_tfrecord.py``) and Python identifiers in
generated code, so they must be plain ASCII identifiers that are not Python keywords; a project also
becomes a distribution name, which must not shadow an installed one or one the project depends on.
"""

from __future__ import annotations

import keyword
import re

from skelgen_runtime.errors import UserInputError

__all__ = ["validate_name"]


def validate_name(name: str, *, kind: str) -> str:
    """Return ``name`` if it can name a project or dataset, else raise :class:`UserInputError`.

    Args:
        name: the name as the user typed it.
        kind: ``"project"`` or ``"dataset"``, used in the message.
    """
    hint = f"a {kind} name must be a Python identifier such as my_{kind} (letters, digits, underscores)"
    if not name or not name.strip():
        raise UserInputError(f"the {kind} name is empty; {hint}")
    if "/" in name or "\\" in name or name in {".", ".."}:
        raise UserInputError(f"invalid {kind} name {name!r}: it must not contain a path; {hint}")
    if not name.isascii():
        others = "".join(dict.fromkeys(c for c in name if not c.isascii()))
        raise UserInputError(
            f"invalid {kind} name {name!r}: {others!r} is not ASCII; names become file, folder and package names, "
            f"which skelgen keeps to ASCII letters, digits and underscores (e.g. {_ascii_hint(name, kind)})"
        )
    if not name.isidentifier():
        raise UserInputError(f"invalid {kind} name {name!r}; {hint}, not starting with a digit")
    if keyword.iskeyword(name) or keyword.issoftkeyword(name):
        raise UserInputError(f"invalid {kind} name {name!r}: it is a Python keyword; {hint}")
    if kind == "project":
        _refuse_shadowing(name)
    return name


def _ascii_hint(name: str, kind: str) -> str:
    import unicodedata

    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return plain if plain.isidentifier() and not keyword.iskeyword(plain) else f"my_{kind}"


def _normalized(name: str) -> str:
    """A distribution name as packaging compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


#: what a generated project installs beside itself (its pyproject.toml's dependencies and their extras)
_PROJECT_DEPENDENCIES = (
    "skelgen-tf",
    "skelgen",
    "tensorflow",
    "tensorflow-cpu",
    "keras",
    "keras-hub",
    "tensorboard",
    "numpy",
    "pillow",
    "matplotlib",
    "onnx",
    "onnxruntime",
    "tf2onnx",
    "pyyaml",
    "pydantic",
)


def _refuse_shadowing(name: str) -> None:
    """A project is installable under its name (``pip install -e .``): refuse one that would replace an
    installed distribution or one the project itself depends on (``tensorflow``, ``keras``, ...)."""
    from importlib import metadata

    wanted = _normalized(name)
    clash = wanted if wanted in _PROJECT_DEPENDENCIES else None
    if clash is None:
        try:
            clash = metadata.distribution(name).metadata["Name"]
        except metadata.PackageNotFoundError:
            return
    raise UserInputError(
        f"invalid project name {name!r}: the project installs as a Python distribution of that name, which would "
        f"shadow {clash!r} (installed or needed by the project); choose another, e.g. {name}_project"
    )
