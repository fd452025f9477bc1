"""Config mistakes answered before TensorFlow loads: a snapshot of the project's schema, checked in a fraction of a second.

A project's schema (``core/config.py``) is built from its registries of models, losses and metrics,
whose modules import Keras, and so TensorFlow: seconds before the first key can be checked. So once
``train.py`` has loaded the schema, :func:`write_snapshot` saves it as JSON Schema (pydantic's
``model_json_schema``, with the registries' names and each model builder's keywords) in the user's
cache folder, under a key that changes with anything the schema is made of: every ``.py`` file under
``core/``, the library's config modules, and the versions of skelgen, pydantic, Keras and keras-hub.
The next ``train.py`` reads the config and, when a snapshot with the current key exists, checks it
(:func:`precheck`) before importing TensorFlow.

The snapshot answers what JSON Schema can say exactly as the full validation would: an unknown key
(with the closest one), a name that is not in a registry or a choice, a number out of its bounds, and
a value of the wrong kind where the full validation could not coerce it (text for a number, a number
for a list). Anything else (whole-config checks, files that must exist) is left to the full
validation after TensorFlow, which always runs: a config the snapshot passes is validated again.
"""

from __future__ import annotations

import hashlib
import json
import os
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable, Sequence

from skelgen_runtime._version import __version__
from skelgen_runtime.config.base import config_source, read_config
from skelgen_runtime.errors import ConfigError, did_you_mean
from skelgen_runtime.files import atomic_write_text

__all__ = ["schema_key", "snapshot_path", "write_snapshot", "precheck"]

#: the folder of snapshots (default: the user cache folder's ``skelgen/config-schemas``)
CACHE_ENV = "SKELGEN_CACHE"


def _versions() -> list[str]:
    found = []
    for dist in ("pydantic", "keras", "keras-hub"):
        try:
            found.append(f"{dist}=={metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            found.append(f"{dist}: none")
    return found


def schema_key(root: Path) -> str:
    """A digest of everything the project's schema is made of (module docstring)."""
    digest = hashlib.sha256(f"skelgen {__version__}\n{' '.join(_versions())}\n".encode())
    library = Path(__file__).resolve().parent
    files = sorted((root / "core").rglob("*.py")) + sorted(library.glob("*.py"))
    for path in files:
        try:
            digest.update(f"{path.name}\0".encode() + path.read_bytes() + b"\0")
        except OSError:
            digest.update(f"{path.name}\0unreadable\0".encode())
    return digest.hexdigest()[:32]


def snapshot_path(root: Path) -> Path:
    """Where the snapshot of ``root``'s current schema is (or would be) kept."""
    folder = os.environ.get(CACHE_ENV)
    if folder:
        base = Path(folder).expanduser()
    else:
        from platformdirs import user_cache_path

        base = user_cache_path("skelgen", appauthor=False)
    return base / "config-schemas" / f"{schema_key(root)}.json"


def write_snapshot(root: Path, schema: Any) -> Path | None:
    """Save ``schema``'s JSON Schema for :func:`precheck`; None (and nothing saved) when it has none or the
    cache folder cannot be written: the snapshot only saves time, the full validation never depends on it."""
    path = snapshot_path(root)
    if path.is_file():
        return path
    try:
        document = schema.model_json_schema()
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(document))
    except Exception:  # noqa: BLE001 - any type without a JSON schema, a read-only cache: no snapshot
        return None
    return path


def _dotted(parts: Iterable[Any]) -> str:
    return ".".join(str(p) for p in parts) or "(top level)"


_NUMBER = ("number", "integer")


def _kind_mismatch(instance: Any, expected: Any) -> bool:
    """Whether the full validation would refuse ``instance`` for a JSON type ``expected`` too (pydantic's lax
    mode turns "5" into 5 and 1 into True, so those are left to it)."""
    wanted = set(expected if isinstance(expected, list) else [expected])
    if isinstance(instance, bool) or isinstance(instance, (int, float)):
        return not wanted & {*_NUMBER, "boolean", "string"}
    if isinstance(instance, str):
        if wanted & {"string"}:
            return False
        try:
            float(instance)
            return not wanted & {*_NUMBER, "boolean"}
        except ValueError:
            return instance.lower() not in ("true", "false", "yes", "no", "on", "off") or not wanted & {"boolean"}
    if isinstance(instance, (list, dict)):
        return not wanted & {"array" if isinstance(instance, list) else "object"}
    if instance is None:
        return "null" not in wanted
    return False


def _problems(errors: Iterable[Any]) -> list[str]:
    """Messages in the full validation's words, for the errors the snapshot can be sure of."""
    found: list[str] = []
    for err in errors:
        if err.validator in ("anyOf", "oneOf"):  # the alternative the value came closest to, as jsonschema ranks them
            from jsonschema.exceptions import best_match

            closest = best_match(err.context or [])
            found += _problems([closest] if closest is not None else [])
            continue
        path = list(err.absolute_path)
        if err.validator == "additionalProperties" and isinstance(err.instance, dict):
            names = list(err.schema.get("properties", {}))
            for key in err.instance:
                if key not in names:
                    found.append(f"{_dotted([*path, key])}: unknown key{did_you_mean(str(key), names)}")
        elif err.validator == "enum" and "x-registry" in err.schema:  # the registry's own words
            names = [str(c) for c in err.validator_value]
            found.append(
                f"{_dotted(path)}: unknown {err.schema['x-registry']} {err.instance!r}; registered: {', '.join(names)}"
                f"{did_you_mean(str(err.instance), names)}"
            )
        elif err.validator == "enum":
            choices = ", ".join(str(c) for c in err.validator_value)
            found.append(
                f"{_dotted(path)}: {err.instance!r} is not one of: {choices}"
                f"{did_you_mean(str(err.instance), [str(c) for c in err.validator_value])}"
            )
        elif err.validator in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
            if not isinstance(err.instance, bool):
                found.append(f"{_dotted(path)}: {err.message}")
        elif err.validator in ("minItems", "maxItems"):
            found.append(f"{_dotted(path)}: {err.message}")
        elif err.validator == "type" and _kind_mismatch(err.instance, err.validator_value):
            found.append(f"{_dotted(path)}: {err.instance!r} is not of type {err.validator_value}")
    return found


def precheck(root: Path, path: Path | None, overrides: Sequence[str] = ()) -> bool:
    """Read the config (its YAML and ``--set`` mistakes are errors now) and check it against the snapshot of the
    project's schema when one is current; True when a snapshot was there to check against.

    Raises:
        ConfigError: what :func:`~skelgen_runtime.config.load_config` would say, for the mistakes the snapshot
            can be sure of (module docstring).
    """
    raw = read_config(path, overrides)
    snapshot = snapshot_path(root)
    try:
        document = json.loads(snapshot.read_text())
    except (OSError, ValueError):
        return False
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(document)
    # one message per key: an unknown key reported once, even if several alternatives of an anyOf report it
    problems = list(dict.fromkeys(_problems(validator.iter_errors(raw))))
    if problems:
        raise ConfigError(f"invalid config {config_source(path, overrides)}: " + "; ".join(problems))
    return True
