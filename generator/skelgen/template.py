"""Where the copier template lives.

The template (``copier.yml`` and ``template/``) is versioned in skelgen's own git repository so that
``copier update`` can diff template versions. An editable install or a source checkout finds it next
to this package; ``SKELGEN_TEMPLATE`` (a path or a git URL) overrides that.
"""

from __future__ import annotations

import os
from pathlib import Path

from skelgen_runtime.errors import ProjectError

__all__ = ["template_source"]

ENV_VAR = "SKELGEN_TEMPLATE"


def template_source() -> str:
    """Return the copier source (a local path or git URL) of skelgen's template."""
    override = os.environ.get(ENV_VAR)
    if override:
        return override
    root = Path(__file__).resolve().parents[2]
    if (root / "copier.yml").is_file() and (root / "template").is_dir():
        return str(root)
    raise ProjectError(
        f"skelgen's template was not found next to {Path(__file__).parent}; install skelgen from its "
        f"git checkout (pip install -e .) or set {ENV_VAR} to the template's path or git URL"
    )
