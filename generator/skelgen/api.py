"""skelgen's Python API: everything the CLI does, as keyword-only functions.

Nothing here imports TensorFlow. Every user mistake raises a
:class:`~skelgen_runtime.errors.SkelgenError` subclass before anything is written, and a command
that fails or is killed later leaves the workspace as it found it (:class:`~skelgen.journal.Journal`).
``new_project`` and ``add_dataset`` commit what they generate, so that the project is ready for
``copier update`` / :func:`skelgen.update.update_project`.
"""

from __future__ import annotations

import shlex
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from skelgen import store
from skelgen.gitutil import commit_paths, toplevel
from skelgen.journal import Journal, recover
from skelgen.names import validate_name
from skelgen.workspace import PROJECT_ANSWERS, ensure_workspace, log_change, read_answers, write_index
from skelgen_runtime.errors import ProjectError, TemplateError, UserInputError, did_you_mean
from skelgen_runtime.layout import ProjectLayout, dataset_folders
from skelgen_runtime.options import check_writable
from skelgen_runtime.presets import PRESETS, get_preset, preset_names
from skelgen_runtime.tasks import TASK_NAMES
from skelgen_runtime.training import FRAMEWORKS, REMOVED_FRAMEWORKS

__all__ = ["TASKS", "FRAMEWORKS", "NewProject", "new_project", "add_dataset", "find_project"]

#: the --task choices: the library's task table
TASKS = TASK_NAMES


@dataclass(frozen=True)
class NewProject:
    """What :func:`new_project` made: the project, what the workspace gained, and the commit (if any)."""

    path: Path
    workspace_created: list[str]
    commit: str | None = None


def _copy(data: dict, dest: Path) -> None:
    import copier
    from copier.errors import CopierError
    from jinja2 import TemplateError as JinjaError

    src = store.source()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # copier warns about dirty local templates; not the user's business
        try:
            copier.run_copy(
                src.src, str(dest), data=data, defaults=True, quiet=True, unsafe=False, overwrite=False, vcs_ref=src.ref
            )
        except (CopierError, JinjaError, ValueError, OSError) as err:  # copier reports invalid answers as ValueError
            raise TemplateError(f"rendering the template into {dest} failed: {err}") from err


def _check_choice(value: str, choices: tuple[str, ...], what: str) -> str:
    if value in REMOVED_FRAMEWORKS and what == "framework":
        raise UserInputError(REMOVED_FRAMEWORKS[value])
    if value not in choices:
        raise UserInputError(
            f"unknown {what} {value!r}; choose one of: {', '.join(choices)}{did_you_mean(value, choices)}"
        )
    return value


def _commit(paths: list[Path], message: str, journal: Journal) -> str | None:
    """Commit ``paths`` in the repository holding them; a failure is rolled back with the rest."""
    top = toplevel(paths[0])
    if top is None:
        return None
    journal.committing(top, paths, message)
    return commit_paths(top, paths, message)


def new_project(
    *, name: str, task: str, framework: str = "keras", workspace: Path = Path("."), commit: bool = True
) -> NewProject:
    """Generate project ``workspace/name``; make ``workspace`` a workspace first if needed.

    Args:
        commit: commit the project and the workspace files in the workspace's git repository
            (``copier update`` needs the project committed).

    Raises:
        UserInputError: invalid name, task or framework; the project folder exists and is not empty.
        TemplateError: the template cannot be found or rendered. Nothing is left behind.
    """
    validate_name(name, kind="project")
    _check_choice(task, TASKS, "task")
    _check_choice(framework, FRAMEWORKS, "framework")
    workspace = workspace.expanduser().resolve()
    if workspace.exists() and not workspace.is_dir():
        raise UserInputError(f"workspace {workspace} is a file, not a folder")
    check_writable(workspace, "workspace")
    inside = _project_around(workspace)
    if inside is not None:  # a project nested in a project would turn the project into a workspace
        raise UserInputError(
            f"{workspace} is inside the project {inside}; a new project goes beside it, in its workspace: "
            f"skelgen new {name} --workspace {shlex.quote(str(inside.parent))}"
        )
    dest = workspace / name
    message = f"skelgen new {name} ({task}, {framework})"
    interrupted = recover(workspace) if workspace.is_dir() else None  # a killed command's half-done changes go first
    if interrupted and interrupted.get("message") == message:  # this very command, killed once it had committed
        return NewProject(dest, [], interrupted["commit"])
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise UserInputError(f"{dest} already exists and is not empty; choose another name or remove it")
    with Journal(workspace) as journal:
        if dest.exists():  # an empty folder: put back as empty
            journal.emptied(dest)
        else:
            journal.created(dest)
        _copy({"scaffold": "project", "project_name": name, "task": task, "framework": framework}, dest)
        created = ensure_workspace(workspace, journal)
        changed = [
            log_change(workspace, f"created project {name} ({task}, {framework})", journal),
            write_index(workspace, journal),
        ]
        made = None
        if commit:
            paths = [dest, *changed, *(workspace / f for f in created if f != "git repository")]
            made = _commit(paths, message, journal)
    return NewProject(dest, created, made)


def _project_around(folder: Path) -> Path | None:
    """The skelgen project ``folder`` is (or lies in), else None."""
    for candidate in (folder, *folder.parents):
        if read_answers(candidate / PROJECT_ANSWERS).get("scaffold") == "project":
            return candidate
    return None


def find_project(start: Path) -> Path:
    """The skelgen project containing ``start`` (it or a parent holds a project answers file)."""
    start = start.expanduser().resolve()
    for folder in (start, *start.parents):
        answers = folder / PROJECT_ANSWERS
        if not answers.is_file():
            continue
        recorded = read_answers(answers)
        if recorded.get("scaffold") == "project":
            return folder
        if not recorded and (folder / "datasets").is_dir() and (folder / "train.py").is_file():
            raise ProjectError(
                f"{answers} cannot be read (not a YAML mapping); it records how the project was "
                f"generated: restore it, e.g. git -C {folder} checkout -- {PROJECT_ANSWERS}"
            )
    raise ProjectError(
        f"{start} is not inside a skelgen project (no {PROJECT_ANSWERS} from skelgen new found there or above); "
        "run the command inside a project or pass --project DIR"
    )


def _class_names(names: Sequence[str]) -> list[str]:
    cleaned = [str(n).strip() for n in names]
    if any(not n for n in cleaned):
        raise UserInputError(f"--classes {','.join(names)!r}: a class name is empty; give names separated by commas")
    twice = sorted({n for n in cleaned if cleaned.count(n) > 1})
    if twice:
        raise UserInputError(f"--classes: {', '.join(twice)} given twice; each class is named once, in label-id order")
    return cleaned


def add_dataset(
    *,
    name: str,
    preset: str | None = None,
    project: Path = Path("."),
    source: Path | None = None,
    sample_counts: dict[str, int] | None = None,
    commit: bool = True,
    announce: Callable[[str], None] | None = None,
    classes: Sequence[str] | None = None,
) -> Path:
    """Add dataset ``name`` to a project: its folders, build script and viewer (and data for built-in presets).

    Args:
        name: dataset name; also the default preset when it names one.
        preset: layout of the raw data; default: ``name`` if it is a preset, else an error.
        project: the project folder or any folder inside it.
        source: where the raw data lives, if not in ``datasets/NAME``. Nothing is copied from it.
        sample_counts: images per split generated for a built-in preset (default: the preset's own).
        commit: commit the files the dataset adds (never the data, which git ignores).
        announce: called with a line as each step of the work starts (the command line prints them).
        classes: class names in label-id order (default: the preset's; empty for ``custom``: read from the
            data where its layout names them); they go to ``datasets/NAME/source.py``.

    Returns:
        The dataset folder ``PROJECT/datasets/NAME``.
    """
    if preset is None and name in PRESETS and not name.isidentifier():
        preset, name = name, name.replace("-", "_")  # add-dataset pascal-voc -> datasets/pascal_voc
    validate_name(name, kind="dataset")
    root = find_project(project)
    # a killed skelgen command's half-done changes go first
    interrupted = [found for found in (recover(root), recover(root.parent)) if found]
    answers = read_answers(root / PROJECT_ANSWERS)
    if preset is None:
        if name not in PRESETS:
            raise UserInputError(
                f"{name!r} is not a known dataset, so its layout is unknown; pass --preset "
                f"(one of: {', '.join(preset_names())}){did_you_mean(name, preset_names())}"
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
    layout = ProjectLayout(root)
    dataset_dir, answers_file = layout.dataset(name), layout.dataset_answers(name)
    message = f"skelgen add-dataset {name} ({spec.name}) to {root.name}"
    if any(found.get("message") == message for found in interrupted):  # this very command, killed once committed
        return dataset_dir
    if answers_file.exists() or (dataset_dir.exists() and any(dataset_dir.iterdir())):
        raise UserInputError(f"dataset {name!r} already exists in {root / 'datasets'}; choose another name")
    data = {
        "scaffold": "dataset",
        "task": task,
        "dataset_name": name,
        "preset": spec.name,
        "class_names": _class_names(classes) if classes is not None else list(spec.classes.get(task, ())),
        "reader": spec.readers[task],
        "source": str(source) if source else "",
    }
    written = [
        answers_file,
        root / "datasets" / f"build_{name}_to_tfrecord.py",
        root / "datasets" / f"tfrecord2image_{name}_format.py",
    ]
    # configs the dataset scaffold adds for some presets (BraTS: its 2D and 3D modes); never one the user has
    written += [
        p
        for p in (root / "configs" / f"{name}_{mode}.yaml" for mode in ("2d", "3d"))
        if spec.name == "brats" and not p.exists()
    ]
    say = announce or (lambda line: None)
    say(f"rendering dataset {name} ({spec.name}) into {root.name}")
    with Journal(root) as journal:
        for path in (dataset_dir, *written):
            if not path.exists():
                journal.created(path)
        _copy(data, root)
        for folder in dataset_folders(spec.readers[task], source_given=source is not None):
            (dataset_dir / folder).mkdir(parents=True, exist_ok=True)
        if spec.builtin:
            from skelgen_runtime.samples.shapes import DEFAULT_COUNTS, TASK_COUNTS, write_shapes

            counts = sample_counts if sample_counts is not None else TASK_COUNTS.get(task, DEFAULT_COUNTS)
            say(f"generating {sum(counts.values())} images ({', '.join(f'{k} {v}' for k, v in counts.items())})")
            write_shapes(dataset_dir, task=task, counts=counts)
        workspace = root.parent
        changed = []
        if (workspace / "README.md").is_file() and (workspace / "CHANGELOG.md").is_file():
            changed = [
                log_change(workspace, f"added dataset {name} ({spec.name}) to {root.name}", journal),
                write_index(workspace, journal),
            ]
        if commit:
            _commit([dataset_dir, *written, *changed], message, journal)
    return dataset_dir
