"""skelgen's Python API: everything the CLI does, as keyword-only functions.

Nothing here imports TensorFlow. Every user mistake raises a
:class:`~skelgen_runtime.errors.SkelgenError` subclass before anything is written.
"""

from __future__ import annotations

import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path

from skelgen.names import validate_name
from skelgen.template import template_source
from skelgen.workspace import PROJECT_ANSWERS, ensure_workspace, log_change, read_answers, write_index
from skelgen_runtime.errors import ProjectError, TemplateError, UserInputError
from skelgen_runtime.presets import PRESETS, get_preset, preset_names
from skelgen_runtime.tasks import TASK_NAMES

__all__ = ["TASKS", "FRAMEWORKS", "NewProject", "new_project", "add_dataset", "find_project"]

#: the --task choices: the library's task table
TASKS = TASK_NAMES
FRAMEWORKS = ("keras", "tf")
_REMOVED_FRAMEWORKS = {
    "estimator": "tf.estimator was removed in TensorFlow 2.16; use --framework keras (model.fit) or tf (custom loop)",
}


@dataclass(frozen=True)
class NewProject:
    """What :func:`new_project` made."""

    path: Path
    workspace_created: list[str]


def _copy(data: dict, dest: Path) -> None:
    import copier
    from copier.errors import CopierError

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # copier warns about dirty local templates; not the user's business
        try:
            copier.run_copy(template_source(), str(dest), data=data, defaults=True, quiet=True, unsafe=False,
                            overwrite=False, vcs_ref="HEAD")  # the template this skelgen ships, not the newest tag
        except (CopierError, ValueError) as err:  # copier reports invalid answers as ValueError
            raise TemplateError(f"rendering the template into {dest} failed: {err}") from err


def _check_choice(value: str, choices: tuple[str, ...], what: str) -> str:
    if value in _REMOVED_FRAMEWORKS and what == "framework":
        raise UserInputError(_REMOVED_FRAMEWORKS[value])
    if value not in choices:
        raise UserInputError(f"unknown {what} {value!r}; choose one of: {', '.join(choices)}")
    return value


def new_project(*, name: str, task: str, framework: str = "keras", workspace: Path = Path(".")) -> NewProject:
    """Generate project ``workspace/name``; make ``workspace`` a workspace first if needed.

    Raises:
        UserInputError: invalid name, task or framework; the project folder exists and is not empty.
    """
    validate_name(name, kind="project")
    _check_choice(task, TASKS, "task")
    _check_choice(framework, FRAMEWORKS, "framework")
    workspace = workspace.expanduser().resolve()
    if workspace.exists() and not workspace.is_dir():
        raise UserInputError(f"workspace {workspace} is a file, not a folder")
    dest = workspace / name
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise UserInputError(f"{dest} already exists and is not empty; choose another name or remove it")
    created = ensure_workspace(workspace)
    existed = dest.exists()
    try:
        _copy({"scaffold": "project", "project_name": name, "task": task, "framework": framework}, dest)
    except BaseException:
        if not existed:
            shutil.rmtree(dest, ignore_errors=True)
        raise
    log_change(workspace, f"created project {name} ({task}, {framework})")
    write_index(workspace)
    return NewProject(dest, created)


def find_project(start: Path) -> Path:
    """The skelgen project containing ``start`` (it or a parent holds a project answers file)."""
    start = start.expanduser().resolve()
    for folder in (start, *start.parents):
        answers = folder / PROJECT_ANSWERS
        if answers.is_file() and read_answers(answers).get("scaffold") == "project":
            return folder
    raise ProjectError(
        f"{start} is not inside a skelgen project (no {PROJECT_ANSWERS} from skelgen new found there or above); "
        "run the command inside a project or pass --project DIR"
    )


def add_dataset(
    *,
    name: str,
    preset: str | None = None,
    project: Path = Path("."),
    source: Path | None = None,
    sample_counts: dict[str, int] | None = None,
) -> Path:
    """Add dataset ``name`` to a project: its folders, build script and viewer (and data for built-in presets).

    Args:
        name: dataset name; also the default preset when it names one.
        preset: layout of the raw data; default: ``name`` if it is a preset, else an error.
        project: the project folder or any folder inside it.
        source: where the raw data lives, if not in ``datasets/NAME``. Nothing is copied from it.
        sample_counts: images per split generated for a built-in preset (default: the preset's own).

    Returns:
        The dataset folder ``PROJECT/datasets/NAME``.
    """
    if preset is None and name in PRESETS and not name.isidentifier():
        preset, name = name, name.replace("-", "_")  # add-dataset pascal-voc -> datasets/pascal_voc
    validate_name(name, kind="dataset")
    root = find_project(project)
    answers = read_answers(root / PROJECT_ANSWERS)
    if preset is None:
        if name not in PRESETS:
            raise UserInputError(
                f"{name!r} is not a known dataset, so its layout is unknown; pass --preset "
                f"(one of: {', '.join(preset_names())})"
            )
        preset = name
    spec = get_preset(preset)
    task = answers.get("task")
    if task not in spec.tasks:
        raise UserInputError(
            f"preset {spec.name!r} is for {', '.join(spec.tasks)}; project {root.name} is a {task} project"
        )
    if source is not None:
        if spec.builtin:
            raise UserInputError(f"preset {spec.name!r} is generated by skelgen; it takes no --source")
        source = source.expanduser().resolve()
        if not source.is_dir():
            raise UserInputError(f"--source {source} is not a folder")
    dataset_dir = root / "datasets" / name
    answers_file = root / "datasets" / f".copier-answers.{name}.yml"
    if answers_file.exists() or (dataset_dir.exists() and any(dataset_dir.iterdir())):
        raise UserInputError(f"dataset {name!r} already exists in {root / 'datasets'}; choose another name")
    data = {
        "scaffold": "dataset",
        "task": task,
        "dataset_name": name,
        "preset": spec.name,
        "class_names": list(spec.classes.get(task, ())),
        "reader": spec.readers[task],
        "source": str(source) if source else "",
    }
    written = [answers_file, root / "datasets" / f"build_{name}_to_tfrecord.py",
               root / "datasets" / f"tfrecord2image_{name}_format.py"]
    # configs the dataset scaffold adds for some presets (BraTS: its 2D and 3D modes); never one the user has
    written += [p for p in (root / "configs" / f"{name}_{mode}.yaml" for mode in ("2d", "3d"))
                if spec.name == "brats" and not p.exists()]
    try:
        _copy(data, root)
        if spec.builtin:
            from skelgen_runtime.samples.shapes import write_shapes

            write_shapes(dataset_dir, task=task, counts=sample_counts)
    except BaseException:
        shutil.rmtree(dataset_dir, ignore_errors=True)
        for path in written:
            path.unlink(missing_ok=True)
        raise
    workspace = root.parent
    if (workspace / "README.md").is_file() and (workspace / "CHANGELOG.md").is_file():
        log_change(workspace, f"added dataset {name} ({spec.name}) to {root.name}")
        write_index(workspace)
    return dataset_dir
