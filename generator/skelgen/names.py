"""Validation of the names users give to projects and datasets.

Names become directory names, file names (``build_NAME_to_tfrecord.py``) and Python identifiers in
generated code, so they must be plain ASCII identifiers that are not Python keywords.
"""

from __future__ import annotations

import keyword

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
    if not (name.isascii() and name.isidentifier()):
        raise UserInputError(f"invalid {kind} name {name!r}; {hint}")
    if keyword.iskeyword(name) or keyword.issoftkeyword(name):
        raise UserInputError(f"invalid {kind} name {name!r}: it is a Python keyword; {hint}")
    return name
