"""Loading and validating configs, and the building blocks of a project's config schema.

A config file is one YAML mapping; ``--set key.sub=value`` overrides any key (values parsed as
YAML). The *schema* says which keys exist: a pydantic model whose sections derive from
:class:`Section`, which refuses unknown keys. A project declares its own schema in ``core/config.py``
from the library's sections (:mod:`skelgen_runtime.config.sections`) and two helpers:

- :func:`builder_section`: a section whose keys are the keyword arguments of the builder that its
  ``name`` selects from a registry (the ``model`` section: add a keyword to ``build_unet`` and
  ``model.<keyword>`` is valid, typed by the keyword's annotation, defaulting to its default);
- :func:`registry_key`: a string that must name an entry of a registry (``train.loss``).

Every problem is reported with its dotted key; an unknown key names the closest valid one.
"""

from __future__ import annotations

import copy
import inspect
import typing
from pathlib import Path
from typing import Annotated, Any, Callable, Mapping, Sequence, TypeVar

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from skelgen_runtime.errors import ConfigError, did_you_mean
from skelgen_runtime.registry import Registry

#: the config class :func:`load_config` validates against (and returns an instance of)
ConfigT = TypeVar("ConfigT", bound=BaseModel)

__all__ = [
    "Section",
    "builder_section",
    "builder_keywords",
    "registry_key",
    "apply_overrides",
    "read_config",
    "load_config",
    "dump_config",
]

#: keys of a builder section that are not builder keywords
_SECTION_KEYS = ("name", "num_classes")
#: builder parameters that the caller fills, never the config
_CALLER_ARGS = ("input_shape", "num_classes", "name")


class Section(BaseModel):
    """Base of every config section: unknown keys are errors, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def builder_keywords(builder: Callable) -> dict[str, inspect.Parameter]:
    """The keyword parameters of ``builder`` that a config may set (all but input_shape, num_classes, name)."""
    return {
        name: p
        for name, p in inspect.signature(builder).parameters.items()
        if name not in _CALLER_ARGS and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }


def _where(builder: Callable) -> str:
    try:
        path = Path(inspect.getsourcefile(builder) or "?")
        shown = f"{path.parent.name}/{path.name}"
    except TypeError:
        shown = "?"
    return f"{builder.__name__} in {shown}"


def _hints(builder: Callable) -> dict[str, Any]:
    try:
        return typing.get_type_hints(builder, include_extras=True)
    except Exception:  # an annotation that does not evaluate: accept any value for it
        return {}


def builder_section(registry: Registry, *, default: str) -> type[BaseModel]:
    """A config section validated against the keyword signature of the builder it names.

    The section has ``name`` (a key of ``registry``, default ``default``), ``num_classes`` (``None``:
    taken from the dataset) and one key per keyword parameter of the named builder (except
    ``input_shape``, ``num_classes`` and ``name``). Each value is validated against the parameter's
    annotation (``Annotated[int, Field(ge=1)]`` adds bounds); keys left out get the parameter's
    default, so the resolved config records every value the builder received.

    Raises (at validation): a ``builder_keywords`` error listing each unknown key with the closest
    keyword, each badly typed value, and each required keyword left out.
    """

    class BuilderSection(BaseModel):
        model_config = ConfigDict(extra="allow", validate_assignment=False)

        name: str = default
        num_classes: int | None = Field(None, ge=1, description="None: taken from dataset_info.json")

        @model_validator(mode="before")
        @classmethod
        def _keywords(cls, data: Any) -> Any:
            if data is None:
                data = {}
            if not isinstance(data, Mapping):
                raise PydanticCustomError("builder_keywords", "must be a mapping of keyword: value", {"problems": []})
            name = data.get("name", default)
            if name not in registry:
                raise PydanticCustomError(
                    "builder_keywords",
                    "{detail}",
                    {"detail": registry.unknown(str(name)), "problems": [("name", registry.unknown(str(name)))]},
                )
            builder = registry.get(name)
            params, hints = builder_keywords(builder), _hints(builder)
            out: dict[str, Any] = {k: data[k] for k in _SECTION_KEYS if k in data}
            problems: list[tuple[str, str]] = []
            for key, value in data.items():
                if key in _SECTION_KEYS:
                    continue
                if key not in params:
                    allowed = [*params, *_SECTION_KEYS]
                    problems.append(
                        (key, f"unknown key: not a keyword of {_where(builder)}{did_you_mean(key, allowed)}")
                    )
                    continue
                try:
                    out[key] = TypeAdapter(hints.get(key, Any)).validate_python(value)
                except ValidationError as err:
                    problems.append((key, "; ".join(e["msg"] for e in err.errors())))
            for key, param in params.items():
                if key in out or key in dict(problems):
                    continue
                if param.default is inspect.Parameter.empty:
                    problems.append((key, f"missing: {_where(builder)} has no default for it"))
                else:
                    out[key] = param.default
            if problems:
                raise PydanticCustomError(
                    "builder_keywords",
                    "{detail}",
                    {"detail": "; ".join(f"{k}: {m}" for k, m in problems), "problems": problems},
                )
            return out

        @classmethod
        def __get_pydantic_json_schema__(cls, core_schema: Any, handler: Any) -> dict[str, Any]:
            return _builder_json_schema(registry, default)

    BuilderSection.__name__ = BuilderSection.__qualname__ = f"{registry.kind.title()}Section"
    BuilderSection.__doc__ = (
        f"The ``{registry.kind}`` section: ``name`` picks the builder, the other keys are its keywords."
    )
    return BuilderSection


class _Names:
    """Annotation metadata: the JSON schema of a registry key lists the registry's names as they are when the
    schema is made (:mod:`skelgen_runtime.config.precheck` checks configs against it before TensorFlow)."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def __get_pydantic_json_schema__(self, core_schema: Any, handler: Any) -> dict[str, Any]:
        return {"type": "string", "enum": self.registry.names(), "x-registry": self.registry.kind}


def registry_key(registry: Registry) -> Any:
    """A ``str`` type that must name an entry of ``registry`` (checked when the config is validated)."""

    def check(value: str) -> str:
        if value not in registry:
            raise PydanticCustomError("registry_key", "{detail}", {"detail": registry.unknown(value)})
        return value

    return Annotated[str, AfterValidator(check), _Names(registry)]


def _keyword_schema(hint: Any) -> dict[str, Any]:
    """The JSON schema of one builder keyword's annotation; ``{}`` (anything) where it has none of its own."""
    try:
        schema = TypeAdapter(hint).json_schema()
    except Exception:  # noqa: BLE001 - a type without a JSON schema: the full validation checks it
        return {}
    return {} if "$defs" in schema or "$ref" in schema else schema


def _builder_json_schema(registry: Registry, default: str) -> dict[str, Any]:
    """The ``model`` section as JSON schema: ``name`` one of the registry's names, and per builder, its
    keywords (typed by their annotations) and no other key."""
    cases = []
    for name in registry.names():
        builder = registry.get(name)
        hints = _hints(builder)
        keywords = {key: _keyword_schema(hints.get(key, Any)) for key in builder_keywords(builder)}
        chosen: dict[str, Any] = {"properties": {"name": {"const": name}}, "required": ["name"]}
        if name == default:  # no name: the default builder
            chosen = {"anyOf": [chosen, {"not": {"required": ["name"]}}]}
        cases.append(
            {
                "if": chosen,
                "then": {
                    "properties": {"name": {}, "num_classes": {}, **keywords},
                    "additionalProperties": False,
                },
            }
        )
    return {
        "type": "object",
        "properties": {
            "name": {"type": "string", "enum": registry.names(), "x-registry": registry.kind},
            "num_classes": {"anyOf": [{"type": "integer", "minimum": 1}, {"type": "null"}]},
        },
        "allOf": cases,
    }


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping (PyYAML keeps the last one silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, Any] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            if key in seen:
                first = seen[key].start_mark.line + 1
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is given twice (first on line {first})", key_node.start_mark
                )
            seen[key] = key_node
        return super().construct_mapping(node, deep=deep)


def apply_overrides(raw: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Apply ``key.sub=value`` strings to a nested dict (values parsed as YAML). Returns a new dict."""
    out = copy.deepcopy(raw)
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r}: expected key=value, e.g. train.epochs=5")
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError as err:
            raise ConfigError(f"--set {item!r}: the value is not valid YAML ({err})") from None
        node = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"--set {item!r}: {part!r} is a value, not a section")
            node = child
        node[parts[-1]] = value
    return out


def _section_at(schema: type[BaseModel], loc: Sequence[Any]) -> type[BaseModel] | None:
    """The section class reached by following ``loc`` from ``schema`` (None if it leaves the sections)."""
    cls: Any = schema
    for part in loc:
        field = getattr(cls, "model_fields", {}).get(part)
        if field is None or not (isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)):
            return None
        cls = field.annotation
    return cls


def _problems(err: ValidationError, schema: type[BaseModel]) -> list[str]:
    problems = []
    for e in err.errors():
        loc = [str(p) for p in e["loc"]]
        where = ".".join(loc) or "(top level)"
        if e["type"] == "extra_forbidden":
            section = _section_at(schema, e["loc"][:-1])
            names = list(section.model_fields) if section is not None else []
            problems.append(f"{where}: unknown key{did_you_mean(loc[-1], names)}")
        elif e["type"] == "builder_keywords" and e.get("ctx", {}).get("problems"):
            problems += [f"{where}.{key}: {msg}" for key, msg in e["ctx"]["problems"]]
        else:
            message = e["msg"].removeprefix("Value error, ")  # pydantic's prefix for a validator's ValueError
            # a whole-config check names its keys itself
            problems.append(
                message
                if not loc and message.startswith(("data.", "model.", "train.", "eval."))
                else f"{where}: {message}"
            )
    return problems


def read_config(path: Path | None, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """The config as a plain mapping: ``path`` read as YAML, then ``overrides`` applied; not validated.

    Raises:
        ConfigError: the file is missing, empty or not YAML (a key given twice included), or an override is
            malformed.
    """
    raw: dict[str, Any] = {}
    if path is not None:
        if not path.is_file():
            raise ConfigError(f"config file {path} not found")
        try:
            raw = yaml.load(path.read_text(), Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader)
        except yaml.MarkedYAMLError as err:  # one line: where and what
            line = f", line {err.problem_mark.line + 1}" if err.problem_mark else ""
            raise ConfigError(f"{path}{line}: not valid YAML: {err.problem or err.context}") from None
        except yaml.YAMLError as err:
            raise ConfigError(f"{path} is not valid YAML: {err}") from None
        if raw is None:  # nothing but comments or whitespace: a run on library defaults nobody asked for
            raise ConfigError(
                f"{path} is empty; give it the sections data, model, train (configs/default.yaml lists every key), "
                "or leave --config out to use configs/default.yaml"
            )
        if not isinstance(raw, dict):
            raise ConfigError(f"{path} must hold a YAML mapping (sections data, model, train)")
    return apply_overrides(raw, overrides)


def config_source(path: Path | None, overrides: Sequence[str] = ()) -> str:
    """How a config error names what it read: the file, with the overrides."""
    return (f"{path}" + (f" with --set {' '.join(overrides)}" if overrides else "")) if path else "(defaults)"


def load_config(
    path: Path | None,
    overrides: Sequence[str] = (),
    *,
    schema: type[ConfigT],
) -> ConfigT:
    """Read, override and validate a config.

    Args:
        path: the YAML file (None: defaults only).
        overrides: ``key.sub=value`` strings, applied after the file.
        schema: the project's config class (``core/config.py``'s ``Config``).

    Raises:
        ConfigError: the file is missing, empty or not YAML (a key given twice included), an override is
            malformed, or validation fails
            (the message lists every problem with its dotted key and, for unknown keys, the closest one).
    """
    raw = read_config(path, overrides)
    try:
        return schema.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(
            f"invalid config {config_source(path, overrides)}: " + "; ".join(_problems(err, schema))
        ) from None


def dump_config(config: BaseModel) -> str:
    """The resolved config as YAML (what ``logs/RUN/config.yaml`` holds)."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
