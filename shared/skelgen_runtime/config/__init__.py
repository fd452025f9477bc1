"""Typed, validated experiment configuration: YAML files plus ``--set key=value`` overrides.

The library keeps the defaults and the validation (:mod:`.sections`, :mod:`.base`); each project
owns its schema in ``core/config.py``, built from them. See :mod:`skelgen_runtime.config.base`.
"""

from skelgen_runtime.config.base import (
    Section,
    apply_overrides,
    builder_keywords,
    builder_section,
    dump_config,
    load_config,
    registry_key,
)
from skelgen_runtime.config.sections import *  # noqa: F403
from skelgen_runtime.config.sections import __all__ as _sections

__all__ = [
    "Section",
    "builder_section",
    "builder_keywords",
    "registry_key",
    "apply_overrides",
    "load_config",
    "dump_config",
    *_sections,
]
