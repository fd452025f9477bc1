"""The reference page of the public API, generated from the docstrings: ``shared/REFERENCE.md``.

    python -m skelgen_runtime._reference > shared/REFERENCE.md

Every module of :data:`skelgen_runtime.PUBLIC_MODULES` with the first paragraph of its docstring, then
each name of its ``__all__``: its kind, its signature (functions and classes) and the first paragraph
of its docstring. ``tests/test_library.py`` fails when the committed page differs from what this
prints, so the page and the code cannot drift apart.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from types import ModuleType
from typing import Any

__all__ = ["reference_page"]


def _first_paragraph(doc: str | None) -> str:
    text = inspect.cleandoc(doc or "").strip()
    return " ".join(text.split("\n\n", 1)[0].split()) if text else ""


def _entry(name: str, obj: Any) -> str:
    if isinstance(obj, ModuleType):
        return f"- module `{name}`: {_first_paragraph(obj.__doc__)}"
    fields = getattr(obj, "model_fields", None) if inspect.isclass(obj) else None
    if fields is not None:  # a config section: its keys, not pydantic's long constructor
        summary = _first_paragraph(obj.__doc__)
        keys = ", ".join(f"`{key}`" for key in fields)
        return f"- config section `{name}`" + (f": {summary}" if summary else "") + (f" Keys: {keys}." if keys else "")
    if inspect.isclass(obj) or inspect.isfunction(obj):
        kind = "class" if inspect.isclass(obj) else "function"
        try:
            signature = str(inspect.signature(obj))
        except (TypeError, ValueError):
            signature = "(...)"
        summary = _first_paragraph(obj.__doc__)
        return f"- {kind} `{name}{signature}`" + (f": {summary}" if summary else "")
    if callable(obj):  # a registry, a preconfigured object
        return f"- `{name}`: {type(obj).__name__}"
    shown = repr(obj)
    shown = shown if len(shown) <= 80 else shown[:77] + "..."
    return f"- constant `{name}` = `{shown}`"


def reference_page() -> str:
    """The Markdown page of every public module and name (imports them, TensorFlow included)."""
    from skelgen_runtime import PUBLIC_MODULES

    lines = [
        "# skelgen_runtime: the public API",
        "",
        "Generated from the docstrings (`python -m skelgen_runtime._reference > shared/REFERENCE.md`); "
        "a test keeps it current. Template files and projects import these modules and, from each, the "
        "names listed; within a minor series they keep their meaning. Anything else may change in any "
        "release.",
        "",
    ]
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        lines += [f"## `{module_name}`", "", _first_paragraph(module.__doc__), ""]
        names = getattr(module, "__all__", ())
        lines += [_entry(name, getattr(module, name)) for name in names]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    sys.stdout.write(reference_page())
