"""``skelgen doctor``: what is wrong with a project (or each project of a workspace), and the command that fixes it.

Every check reads and never writes. Each returns :class:`Finding` s: ``ok``, ``warn`` (worth knowing, nothing
breaks) or ``fail`` (a command of the project will fail or give a wrong result); a failing finding carries the
fix. The checks, in order:

- ``versions``: skelgen-tf, TensorFlow, Keras and TensorBoard installed against the project's
  ``pyproject.toml`` pins; the project's template version against this skelgen's (behind: by how many);
- ``template``: each scaffold's ``_src_path`` readable and holding its ``_commit`` (what ``skelgen update`` needs);
- ``git``: the project in a git work tree; changed files, new code to commit, untracked data to ignore;
- ``datasets`` (:mod:`skelgen.doctor_data`): shards against ``dataset_info.json`` (present, SHA-256), the
  records' schema against the project's and against the runs that trained on them;
- ``runs``: runs recorded ``running`` whose process is gone;
- ``weights``: the files ``model.weights`` names in ``configs/*.yaml``;
- ``disk``: free space for the next build;
- ``devices``: what TensorFlow sees, and whether each config's ``train.distribute`` fits it (the one check that
  imports TensorFlow).
"""

from __future__ import annotations

import platform
import re
import subprocess
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from skelgen import doctor_data, store
from skelgen.doctor_data import CHECKS, Finding, _fail, _ok, _warn
from skelgen.gitutil import toplevel, tree_changes
from skelgen.workspace import read_answers
from skelgen_runtime._text import count, listing
from skelgen_runtime._version import __version__
from skelgen_runtime.errors import ProjectError
from skelgen_runtime.layout import PROJECT_ANSWERS, ProjectLayout

__all__ = ["Finding", "Report", "diagnose", "report_text", "CHECKS"]


@dataclass(frozen=True)
class Report:
    """Everything found under ``root`` (a project or a workspace)."""

    root: Path
    kind: str
    findings: list[Finding]

    @property
    def ok(self) -> bool:
        return not any(f.status == "fail" for f in self.findings)

    def as_json(self) -> dict[str, Any]:
        return {
            "root": str(self.root),
            "kind": self.kind,
            "ok": self.ok,
            "findings": [asdict(f) for f in self.findings],
        }


# -- versions ------------------------------------------------------------------------------------------------------


def _pins(root: Path) -> dict[str, Any]:
    """distribution name -> the project's ``Requirement`` for it (dependencies, then the cpu/gpu extras)."""
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]

    try:
        data = tomllib.loads((root / "pyproject.toml").read_text())
    except (OSError, ValueError):
        return {}
    project = data.get("project", {})
    lines = list(project.get("dependencies", []))
    for extra in ("cpu", "gpu"):
        lines += project.get("optional-dependencies", {}).get(extra, [])
    pins: dict[str, Any] = {}
    for line in lines:
        try:
            req = Requirement(line)
        except InvalidRequirement:
            continue
        pins.setdefault(req.name.lower(), req)
    return pins


def _installed(*names: str) -> tuple[str, str] | None:
    for name in names:
        try:
            return name, metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def check_versions(root: Path) -> list[Finding]:
    from packaging.version import InvalidVersion, Version

    pins = _pins(root)
    found = []
    for label, names in (
        ("skelgen", ("skelgen-tf",)),
        ("TensorFlow", ("tensorflow-cpu", "tensorflow")),
        ("Keras", ("keras",)),
        ("TensorBoard", ("tensorboard",)),
    ):
        have = _installed(*names)
        pin = next((pins[n] for n in names if n in pins), None)
        wanted = f"{pin.name}{pin.specifier}" if pin is not None and str(pin.specifier) else None
        if have is None:
            if pin is not None or label != "Keras":
                install = "pip install -e '.[cpu]'" if label == "TensorFlow" else f"pip install '{wanted or names[0]}'"
                found.append(_fail("versions", f"{label} is not installed", f"in the project: {install}"))
            continue
        dist, version = have
        if pin is not None and str(pin.specifier) and not pin.specifier.contains(version, prereleases=True):
            found.append(
                _fail(
                    "versions",
                    f"{label} {version} ({dist}) is installed, the project pins {wanted}",
                    f"pip install '{wanted}' (or change the pin in pyproject.toml)",
                )
            )
        else:
            found.append(_ok("versions", f"{label} {version}" + (f" (pinned {wanted})" if wanted else "")))
    recorded = store.version_of(str(read_answers(ProjectLayout(root).answers).get("_commit", "")))
    try:
        ahead = Version(recorded) > Version(__version__)
        behind = Version(Version(recorded).base_version) < Version(Version(__version__).base_version)
    except InvalidVersion:
        return [*found, _warn("versions", f"the project's template version {recorded!r} is not a release")]
    if ahead and Version(recorded).base_version != Version(__version__).base_version:
        found.append(
            _fail(
                "versions",
                f"the project was made by skelgen {recorded}, newer than this skelgen {__version__}",
                f"pip install 'skelgen-tf>={Version(recorded).base_version}'",
            )
        )
    elif behind:
        found.append(
            _warn(
                "versions",
                f"the project's template {recorded} is behind this skelgen {__version__}"
                + _versions_behind(recorded, __version__),
                "skelgen update --dry-run, then skelgen update",
            )
        )
    else:
        found.append(_ok("versions", f"template {recorded} (this skelgen: {__version__})"))
    return found


def _versions_behind(old: str, new: str) -> str:
    from skelgen.update import _versions_between

    n = _versions_between(str(store.store_path()), old, new) if store.store_path().is_dir() else None
    return f" by {count(n, 'release')}" if n else ""


# -- template ------------------------------------------------------------------------------------------------------


def check_template(root: Path) -> list[Finding]:
    from skelgen.update import scaffolds

    found = []
    for scaffold in scaffolds(root):
        answers = scaffold.recorded()
        src, commit = str(answers.get("_src_path", "")), str(answers.get("_commit", ""))
        rel = scaffold.answers.relative_to(root)
        if not src or not commit:
            found.append(
                _fail(
                    "template",
                    f"{scaffold.label}: {rel} records no _src_path/_commit",
                    f"restore it from git: git checkout -- {rel}",
                )
            )
            continue
        remote = src.startswith(("http", "git@", "ssh:", "git:"))
        target = src if remote else str(Path(src).expanduser())
        try:
            proc = subprocess.run(
                ["git", "ls-remote", "--tags", "--", target], capture_output=True, text=True, timeout=5
            )
        except subprocess.TimeoutExpired:
            found.append(_warn("template", f"{scaffold.label}: {src} did not answer in 5 s (offline?)"))
            continue
        if proc.returncode != 0:
            fix = (
                "run any skelgen command once (skelgen update --check) to fill the store with this skelgen's "
                "template; for the project's own version, install that skelgen once: "
                f"pip install skelgen-tf=={store.version_of(commit)}"
                if not remote
                else "check the address and your access to it"
            )
            found.append(_fail("template", f"{scaffold.label}: the template source {src} cannot be read", fix))
        elif f"refs/tags/{commit}" not in proc.stdout and not re.fullmatch(r"[0-9a-f]{7,40}", commit):
            found.append(
                _fail(
                    "template",
                    f"{scaffold.label}: {src} has no version {commit} (skelgen update merges from it)",
                    f"install skelgen-tf=={store.version_of(commit)} once and run skelgen update --check with it",
                )
            )
        else:
            found.append(_ok("template", f"{scaffold.label}: {commit} in {src}"))
    return found


# -- git -----------------------------------------------------------------------------------------------------------


def check_git(root: Path) -> list[Finding]:
    top = toplevel(root)
    if top is None:
        return [
            _fail(
                "git",
                f"{root} is not in a git repository (skelgen update merges through git; runs record the commit)",
                f"git -C {root} init && git -C {root} add -A && git -C {root} commit -m 'project'",
            )
        ]
    changes = tree_changes(top, root)
    if not changes:
        return [_ok("git", "the work tree is clean")]
    rel = root.relative_to(top).as_posix() or "."
    prefix = "" if rel == "." else rel + "/"
    found = []
    if changes.data:
        found.append(
            _fail(
                "git",
                f"untracked data or outputs that git does not ignore: {listing(changes.data, 4)} (they make every run "
                "save a patch and skelgen update refuse)",
                f"list them in {root / '.gitignore'} (or move them out of the project); do not commit them",
            )
        )
    if changes.code:
        found.append(
            _warn(
                "git",
                f"new code not committed: {listing(changes.code, 4)}",
                f"git -C {top} add {' '.join(prefix + c for c in changes.code)} && git -C {top} commit",
            )
        )
    if changes.tracked:
        found.append(
            _warn(
                "git",
                f"changed, not committed: {listing(changes.tracked, 4)} (runs save the difference as a patch)",
                f"git -C {top} add -u {rel} && git -C {top} commit",
            )
        )
    return found


# -- runs ----------------------------------------------------------------------------------------------------------


def check_runs(root: Path) -> list[Finding]:
    from skelgen_runtime.locks import process_alive
    from skelgen_runtime.runs import list_runs

    found, running = [], 0
    for run in list_runs(root):
        try:
            record = run.record()
        except Exception:  # noqa: BLE001 - a damaged run.json is reported, not raised
            found.append(
                _warn(
                    "runs",
                    f"{run.record_file.relative_to(root)} cannot be read",
                    "restore it or remove the run's folders",
                )
            )
            continue
        if record.get("status") != "running":
            continue
        host, pid = record.get("host"), record.get("pid")
        if host != platform.node():
            found.append(_warn("runs", f"run {run.run_id} is recorded running on {host}; check it there"))
        elif not isinstance(pid, int) or not process_alive(pid):
            found.append(
                _fail(
                    "runs",
                    f"run {run.run_id} is recorded running, but its process {pid} on {host} is gone (killed, or the "
                    "machine went down)",
                    f"python train.py --resume {run.run_id}",
                )
            )
        else:
            running += 1
    if not found:
        found.append(_ok("runs", f"{count(running, 'run')} training now" if running else "no run is stuck"))
    return found


def diagnose(start: Path, *, full: bool = False, devices: bool = True) -> Report:
    """Run every check on the project holding ``start``, or on each project of the workspace ``start``.

    Args:
        full: hash every shard (default: within a budget of 2 GiB per project; the rest are checked for presence).
        devices: also ask TensorFlow what it sees (imports TensorFlow, a few seconds).

    Raises:
        ProjectError: ``start`` is neither in a project nor a workspace holding projects.
    """
    from skelgen.api import find_project

    start = start.expanduser().resolve()
    try:
        projects, kind = [find_project(start)], "project"
    except ProjectError:
        projects = sorted(p.parent for p in start.glob(f"*/{PROJECT_ANSWERS}") if read_answers(p).get("scaffold"))
        kind = "workspace"
        if not projects:
            raise ProjectError(
                f"{start} is neither inside a skelgen project nor a workspace holding one; run skelgen doctor in a "
                "project (or its workspace), or pass --project DIR"
            ) from None
    findings: list[Finding] = []
    for root in projects:
        name = root.name if kind == "workspace" else None
        results = [
            check_versions(root),
            check_template(root),
            check_git(root),
            doctor_data.check_datasets(root, full=full),
            check_runs(root),
            doctor_data.check_weights(root),
            doctor_data.check_disk(root),
            doctor_data.check_devices(root) if devices else [],
        ]
        for result in results:
            findings += [Finding(f.check, f.status, f.message, f.fix, name) for f in result]
    return Report(start if kind == "workspace" else projects[0], kind, findings)


def report_text(report: Report) -> str:
    """The report as lines: ``STATUS check: message`` and, for a problem, ``  fix: COMMAND``; a verdict last."""
    lines, project = [], None
    for f in report.findings:
        if f.project != project and f.project is not None:
            lines.append(f"{f.project}:")
        project = f.project
        indent = "  " if f.project else ""
        lines.append(f"{indent}{f.status:<4} {f.check}: {f.message}")
        if f.fix and f.status != "ok":
            lines.append(f"{indent}     fix: {f.fix}")
    fails = sum(f.status == "fail" for f in report.findings)
    warns = sum(f.status == "warn" for f in report.findings)
    what = "workspace" if report.kind == "workspace" else "project"
    lines.append(
        f"{report.root}: {count(fails, 'problem')} to fix, {count(warns, 'warning')}"
        if fails or warns
        else f"{report.root}: the {what} is healthy"
    )
    return "\n".join(lines)
