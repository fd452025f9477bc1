"""``skelgen update``: bring a newer template into a project and each of its datasets, keeping the user's edits.

A project holds one *scaffold* per copier answers file: the project itself (``.copier-answers.yml``)
and one per dataset (``datasets/.copier-answers.NAME.yml``). Each is updated with ``copier update``
in turn (copier three-way merges the template's change with the user's edits; files the user owns
are never touched, see ``copier.yml``'s ``_skip_if_exists``) and committed on its own, so the next
one starts from a clean tree. An update that conflicts stops there: the files keep both versions
(inline markers or ``.rej`` files), the conflicting change is not committed, and the error names every
file and every commit the update made before it (earlier scaffolds, a new template source recorded).
"""

from __future__ import annotations

import os
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal

from skelgen import store
from skelgen.gitutil import commit_paths, dirty_paths, git, toplevel, tree_changes
from skelgen.journal import Journal, recover, update_journal
from skelgen.workspace import read_answers
from skelgen_runtime._text import count, listing
from skelgen_runtime.errors import BusyError, ProjectError, SkelgenError, TemplateError
from skelgen_runtime.files import atomic_write_text
from skelgen_runtime.layout import ProjectLayout

__all__ = ["Scaffold", "ScaffoldStatus", "UpdateConflictError", "scaffolds", "check_project", "update_project"]

CONFLICT_MARKERS = (b"<<<<<<< before updating", b">>>>>>> after updating")


class UpdateConflictError(SkelgenError):
    """An update's change overlaps an edit of the user's: both versions are left in the named files."""

    exit_code = 3


@dataclass(frozen=True)
class Scaffold:
    """One copier answers file of a project: ``label`` ("project" or "dataset NAME") and its path."""

    label: str
    answers: Path

    def recorded(self) -> dict:
        return read_answers(self.answers)


@dataclass
class ScaffoldStatus:
    """Where a scaffold stands, or what an update did to it."""

    label: str
    answers_file: str
    recorded: str
    target: str
    behind: bool
    versions_behind: int | None = None
    changed: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    #: files the new template no longer has but the user had edited: kept, not deleted (see _keep_edited)
    kept: list[str] = field(default_factory=list)
    commit: str | None = None
    #: every commit this update made for the scaffold, oldest first: (short hash, message)
    commits: list[tuple[str, str]] = field(default_factory=list)

    def _commit(self, top: Path, paths: list[Path], message: str) -> str | None:
        sha = commit_paths(top, paths, message)
        if sha:
            self.commits.append((sha[:10], message))
        return sha


def scaffolds(root: Path) -> list[Scaffold]:
    """The project's scaffold first, then its datasets by name."""
    found = [Scaffold("project", ProjectLayout(root).answers)]
    for answers in ProjectLayout(root).all_dataset_answers():
        name = read_answers(answers).get("dataset_name") or answers.name.split(".")[2]
        found.append(Scaffold(f"dataset {name}", answers))
    return found


def _target(version: str | None) -> store.Source:
    """The source to update to; with ``SKELGEN_TEMPLATE`` and no version, that source's newest tag."""
    src = store.source(version)
    if src.ref is None:
        from packaging.version import Version

        tags = store.release_tags(src.src)
        if not tags:
            raise TemplateError(f"{src.src} has no release tags (vX.Y.Z); updates need a tagged template")
        newest = max(tags, key=lambda t: Version(store.version_of(t)))
        src = store.Source(src.src, newest, store.version_of(newest))
    return src


def _versions_between(src: str, old: str, new: str) -> int | None:
    from packaging.version import InvalidVersion, Version

    try:
        low, high = Version(old), Version(new)
        return sum(1 for t in store.release_tags(src) if low < Version(store.version_of(t)) <= high)
    except (InvalidVersion, TemplateError):
        return None


def _status(scaffold: Scaffold, root: Path, src: store.Source) -> ScaffoldStatus:
    from packaging.version import InvalidVersion, Version

    answers = scaffold.recorded()
    commit = str(answers.get("_commit", ""))
    recorded = store.version_of(commit)
    assert src.version is not None, "the update target names its version (_target)"
    try:
        behind = Version(recorded) < Version(src.version)
    except InvalidVersion:
        behind = True  # a bare commit hash: not a release skelgen knows
    return ScaffoldStatus(
        scaffold.label,
        scaffold.answers.relative_to(root).as_posix(),
        recorded,
        src.version,
        behind,
        _versions_between(src.src, recorded, src.version) if behind else 0,
    )


def check_project(*, project: Path, to: str | None = None) -> list[ScaffoldStatus]:
    """Whether each scaffold of ``project`` is behind ``to`` (default: the installed skelgen's version)."""
    from skelgen.api import find_project

    root = find_project(project)
    src = _target(to)
    return [_status(s, root, src) for s in scaffolds(root)]


def _refuse_training(root: Path) -> None:
    """An update rewrites files a training run reads while it trains (core/, configs/, the scripts): refuse
    while one trains, naming it (runs hold ``logs/RUN/train.lock`` while they train)."""
    from skelgen_runtime.runs import list_runs

    for run in list_runs(root):
        holder = run.trained_by()
        if holder is not None:
            raise BusyError(
                f"run {run.run_id} is training ({holder.describe()}); skelgen update would change files it reads: "
                "wait for it to finish, or stop it (Ctrl-C in its terminal; resume it after the update with "
                f"python train.py --resume {run.run_id})"
            )


def _refuse_dirty(top: Path, root: Path) -> None:
    changes = tree_changes(top, root)
    if not changes:
        return
    rel = root.relative_to(top).as_posix() or "."
    prefix = "" if rel == "." else rel + "/"
    tracked, code, data = changes.tracked, changes.code, changes.data
    advice = []
    if tracked:
        advice.append(
            f"changed: {listing(tracked, 4)}: commit them (git -C {top} add -u {rel} && git -C {top} commit -m "
            f"'before skelgen update') or stash them (git -C {top} stash push -- {rel})"
        )
    if code:
        advice.append(
            f"new code: {listing(code, 4)}: commit it (git -C {top} add {' '.join(prefix + c for c in code)})"
        )
    if data:
        advice.append(
            f"untracked data or outputs: {listing(data, 4)}: list them in {root / '.gitignore'} (or move them out of the "
            "project); do not commit them"
        )
    raise ProjectError(
        f"{root} has uncommitted changes, and copier merges updates into a clean tree; "
        + "; ".join(advice)
        + "; then run skelgen update again"
    )


def _conflicts(top: Path, root: Path, changed: list[str]) -> list[str]:
    found = []
    for line in changed:
        rel = line[3:].strip().strip('"')
        path = top / rel
        if path.suffix == ".rej" or (
            path.is_file() and any(marker in path.read_bytes().splitlines() for marker in CONFLICT_MARKERS)
        ):
            found.append(path.relative_to(root).as_posix())
    return found


def _update_one(
    scaffold: Scaffold, top: Path, root: Path, src: store.Source, conflict: Literal["inline", "rej"]
) -> ScaffoldStatus:
    import copier
    from copier.errors import CopierError
    from jinja2 import TemplateError as JinjaError

    status = _status(scaffold, root, src)
    if not status.behind:
        return status
    known, answers = store.release_tags(src.src), scaffold.recorded()
    adopted = (
        None
        if f"v{status.recorded}" in known or os.environ.get(store.ENV_TEMPLATE)
        else store.adopt(str(answers.get("_src_path", "")), str(answers.get("_commit", "")))
    )
    if adopted:  # a project of a development install: its checkout's commit is now a version of the store
        _set_answers(scaffold.answers, _commit=adopted, _src_path=src.src)
        status._commit(
            top,
            [scaffold.answers],
            f"skelgen update: {status.label} template {status.recorded[:8]} "
            f"is {store.version_of(adopted)} in {src.src}",
        )
        status.recorded, known = store.version_of(adopted), store.release_tags(src.src)
    if f"v{status.recorded}" not in known and status.recorded not in known:
        raise TemplateError(
            f"{status.answers_file} records template version {status.recorded!r}, which {src.src} does not hold "
            f"(it holds: {', '.join(sorted(store.version_of(t) for t in known)) or 'nothing'}); install that skelgen "
            f"version once (pip install skelgen-tf=={status.recorded}) and run any skelgen command, then update"
        )
    if scaffold.recorded().get("_src_path") != src.src:
        # a project made from another copy of the template (a checkout, a moved store): point it here
        _set_answers(scaffold.answers, _src_path=src.src)
        status._commit(top, [scaffold.answers], f"skelgen update: {status.label} reads the template from {src.src}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            copier.run_update(
                str(root),
                answers_file=status.answers_file,
                vcs_ref=src.ref,
                defaults=True,
                overwrite=True,
                conflict=conflict,
                quiet=True,
                unsafe=False,
                skip_answered=True,
            )
        except BaseException as err:  # a failed or interrupted update leaves the project as it was committed
            _restore(top, root)
            if isinstance(err, (CopierError, JinjaError, ValueError, OSError)):
                raise TemplateError(
                    f"copier could not update {status.label} of {root}: {err} (the project is back as it was)"
                ) from err
            raise
    old_ref = f"v{status.recorded}" if f"v{status.recorded}" in known else status.recorded
    status.kept = _keep_edited(top, root, src.src, old_ref, scaffold.recorded(), dirty_paths(top, root))
    changes = dirty_paths(top, root)
    status.conflicts = _conflicts(top, root, changes)
    prefix = root.relative_to(top).as_posix() + "/" if root != top else ""
    status.changed = [f"{line[:2].strip()} {line[3:].strip().strip(chr(34)).removeprefix(prefix)}" for line in changes]
    if not status.conflicts:
        status.commit = status._commit(
            top, [root], f"skelgen update: {status.label} {status.recorded} -> {status.target}"
        )
    return status


def _keep_edited(top: Path, root: Path, src: str, old_ref: str, answers: dict, changes: list[str]) -> list[str]:
    """Put back the files the update deleted (the new template no longer has them) that the user had
    edited: copier deletes them whatever they hold, which would drop the user's work without a word.

    A deleted file counts as edited when its committed content differs from what the template's
    previous version (``old_ref``) renders for the same answers. Returns the files kept, relative to ``root``.
    """
    import tempfile

    import copier

    prefix = root.relative_to(top).as_posix() + "/" if root != top else ""
    deleted = [line[3:].strip().strip('"') for line in changes if line[:2].strip() == "D"]
    if not deleted:
        return []
    data = {k: v for k, v in answers.items() if not str(k).startswith("_")}
    kept = []
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        copier.run_copy(src, tmp, vcs_ref=old_ref, data=data, defaults=True, overwrite=True, quiet=True, unsafe=False)
        for rel in deleted:
            inside = rel.removeprefix(prefix)
            rendered = Path(tmp) / inside
            committed = git(top, "show", f"HEAD:{rel}", check=False)
            if not rendered.is_file() or rendered.read_text(errors="replace") != committed:
                git(top, "checkout", "-q", "HEAD", "--", rel)
                kept.append(inside)
    return kept


def _restore(top: Path, root: Path) -> None:
    """Put the project back to its last commit: the tree was clean when the update began, so whatever is
    changed or new (and not ignored) under ``root`` is the update's."""
    git(top, "reset", "-q", "--", str(root), check=False)
    git(top, "checkout", "-q", "HEAD", "--", str(root), check=False)
    git(top, "clean", "-fdq", "--", str(root), check=False)


def _set_answers(answers: Path, **fields: str) -> None:
    """Rewrite the given ``_key: value`` lines of a copier answers file, leaving every other line as it is."""
    lines = answers.read_text().splitlines(keepends=True)
    out = []
    for line in lines:
        key = line.split(":", 1)[0]
        out.append(f"{key}: {fields[key]}\n" if key in fields else line)
    atomic_write_text(answers, "".join(out))


def update_project(
    *,
    project: Path,
    to: str | None = None,
    dry_run: bool = False,
    conflict: Literal["inline", "rej"] = "inline",
    on_scaffold: Callable[[ScaffoldStatus], None] | None = None,
) -> list[ScaffoldStatus]:
    """Update the project scaffold, then each dataset's, to ``to`` (default: the installed skelgen's version).

    Args:
        project: the project, or any folder inside it.
        to: the template version to update to.
        dry_run: do it on a temporary clone of the repository and report; change nothing here.
        conflict: ``inline`` (markers in the files) or ``rej`` (``.rej`` files beside them).
        on_scaffold: called with each scaffold's status as soon as it is done.

    Returns:
        One status per scaffold, in the order they were updated.

    Raises:
        ProjectError: not a project, not in git, or uncommitted changes (the message says what to run).
        TemplateError: the recorded or requested version is not available.
        UpdateConflictError: a change overlapped the user's edits (files named; that change not committed,
            the commits made before it named).
    """
    from skelgen.api import find_project

    if conflict not in ("inline", "rej"):
        raise ProjectError(f"--conflict must be inline or rej, got {conflict!r}")
    root = find_project(project)
    top = toplevel(root)
    if top is None:
        raise ProjectError(
            f"{root} is not in a git repository, which copier needs to merge updates: "
            f"git -C {root} init && git -C {root} add -A && git -C {root} commit -m 'skelgen project'"
        )
    journal = update_journal(top)  # a killed skelgen command's half-done changes go first (not in a dry run)
    for folder, home in ((root, journal), (root, None), (root.parent, None)) if not dry_run else ():
        recover(folder, home=home)
    _refuse_dirty(top, root)
    _refuse_training(root)
    src = _target(to)
    if dry_run:
        with tempfile.TemporaryDirectory(prefix="skelgen-dry-run-") as tmp:
            clone = Path(tmp) / "repo"
            git(top, "clone", "-q", "--no-hardlinks", str(top), str(clone))
            return _update_all(clone, clone / root.relative_to(top), src, conflict, dry_run=True, report=on_scaffold)
    # a kill is undone by the next update (back to the last commit: each scaffold is committed whole)
    with Journal(root, home=journal, undo_on_error=False) as steps:
        steps.restoring(top, root)
        return _update_all(top, root, src, conflict, dry_run=False, report=on_scaffold)


def _update_all(
    top: Path,
    root: Path,
    src: store.Source,
    conflict: Literal["inline", "rej"],
    *,
    dry_run: bool,
    report: Callable[[ScaffoldStatus], None] | None,
) -> list[ScaffoldStatus]:
    done = []
    for scaffold in scaffolds(root):
        status = _update_one(scaffold, top, root, src, conflict)
        done.append(status)
        if report:
            report(status)
        if status.conflicts:
            files = ", ".join(status.conflicts)
            if dry_run:
                raise UpdateConflictError(
                    f"updating {status.label} {status.recorded} -> {status.target} would "
                    f"conflict with your edits in: {files} (dry run: nothing changed)"
                )
            kind = "conflict markers" if conflict == "inline" else ".rej files"
            made = [f"{sha} {message!r}" for s in done for sha, message in s.commits]
            committed = (
                f"this update committed {count(len(made), 'change')} before it: {'; '.join(made)}"
                if made
                else "nothing committed"
            )
            raise UpdateConflictError(
                f"updating {status.label} {status.recorded} -> {status.target} conflicts with your edits in: {files} "
                f"({kind} left in place, this change not committed; {committed}); resolve them, then git add and "
                "git commit"
            )
    return done
