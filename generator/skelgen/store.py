"""Where copier finds skelgen's template: a git repository with one tagged commit per skelgen version.

``copier update`` renders a project's recorded template version and the new one and merges the
difference into the project, so it needs the template as a git repository holding *both*. An
installed skelgen carries only its own version's template (``skelgen/_template/``: ``copier.yml``
and ``template/``, in the wheel). So every skelgen run makes sure its version is committed and
tagged ``vX.Y.Z`` in a repository in the user's data directory (the *store*); versions installed
earlier stay there, which is what lets a later version update projects made by an earlier one.

Projects record the store as ``_src_path: ~/.local/share/skelgen/template`` (the home folder
written as ``~``), a path that means the same on every machine and does not depend on the
virtual environment or checkout that generated the project. Plain ``copier update`` works wherever
skelgen has run once; ``skelgen update`` fills the store first.

Content that differs from what an existing tag holds for the same version (an edited development
checkout) is committed as ``vX.Y.Z.postN``, so every tag keeps meaning one content. A project's
``_commit`` is therefore always a release tag, never ``tag-N-gHASH``.

``SKELGEN_TEMPLATE`` (a path or git URL of a template repository) bypasses the store: skelgen then
renders that source's newest tag, as plain copier would. ``SKELGEN_HOME`` moves the store.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from skelgen_runtime._version import __version__
from skelgen_runtime.errors import TemplateError
from skelgen_runtime.locks import waiting_lock

__all__ = [
    "Source",
    "ENV_TEMPLATE",
    "ENV_HOME",
    "packaged_template",
    "store_path",
    "recorded",
    "source",
    "release_tags",
    "version_of",
    "adopt",
]

ENV_TEMPLATE = "SKELGEN_TEMPLATE"
ENV_HOME = "SKELGEN_HOME"
_IDENTITY = {
    "GIT_AUTHOR_NAME": "skelgen",
    "GIT_AUTHOR_EMAIL": "skelgen@localhost",
    "GIT_COMMITTER_NAME": "skelgen",
    "GIT_COMMITTER_EMAIL": "skelgen@localhost",
}
_SKIP = {"__pycache__", ".DS_Store"}


@dataclass(frozen=True)
class Source:
    """A template source for copier.

    Attributes:
        src: what copier is given, and records as ``_src_path``.
        ref: the tag to render; None lets copier take the newest tag.
        version: the version ``ref`` names (None: the newest).
    """

    src: str
    ref: str | None
    version: str | None


def packaged_template() -> Path:
    """The folder holding this skelgen's ``copier.yml`` and ``template/``: the wheel's ``skelgen/_template``,
    or, in a checkout (where ``_template`` links to them), the checkout itself."""
    here = Path(__file__).resolve().parent / "_template"
    root = (here / "template").resolve().parent
    if (root / "copier.yml").is_file() and (root / "template").is_dir():
        return root
    raise TemplateError(f"skelgen's template is missing from {here} (a broken install); reinstall skelgen-tf")


def store_path() -> Path:
    """The store's location: ``$SKELGEN_HOME/template``, else the user data directory's ``skelgen/template``."""
    home = os.environ.get(ENV_HOME)
    if home:
        return Path(home).expanduser().resolve() / "template"
    from platformdirs import user_data_path

    return user_data_path("skelgen", appauthor=False) / "template"


def recorded(path: Path) -> str:
    """``path`` as a project records it: under the home folder written with ``~``, so any machine resolves it."""
    home = Path.home().resolve()
    try:
        return "~/" + path.resolve().relative_to(home).as_posix()
    except ValueError:
        return path.resolve().as_posix()


def _git(repo: Path, *args: str, env: dict[str, str] | None = None, input: str | None = None) -> str:
    proc = subprocess.run(
        ["git", "-C", str(repo), *args],
        capture_output=True,
        text=True,
        input=input,
        env={**os.environ, **_IDENTITY, **(env or {})},
    )
    if proc.returncode != 0:
        raise TemplateError(
            f"preparing skelgen's template repository {repo} failed: git {' '.join(args)}: {proc.stderr.strip()}"
        )
    return proc.stdout


def _files(root: Path) -> list[str]:
    """``copier.yml`` and every file under ``template/``, relative to ``root``, as the template holds them."""
    files = ["copier.yml"]
    for folder, dirs, names in os.walk(root / "template", followlinks=True):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP)
        rel = Path(folder).relative_to(root)
        files += [(rel / n).as_posix() for n in sorted(names) if n not in _SKIP and not n.endswith(".pyc")]
    return files


def _tree(repo: Path, root: Path) -> str:
    """The git tree of the template under ``root``, written into ``repo`` without touching its work tree."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index"), "GIT_WORK_TREE": str(root), "GIT_LITERAL_PATHSPECS": "1"}
        # explicit paths and -f: the template's own .gitignore files must not hide template files
        _git(repo, "add", "-f", "--", *_files(root), env=env)
        return _git(repo, "write-tree", env=env).strip()


def _init(repo: Path) -> None:
    """Create an empty store repository atomically (a half-made one is never left in place)."""
    repo.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".template-", dir=repo.parent))
    try:
        _git(staging, "init", "-q", "-b", "main")
        staging.rename(repo)  # write: staged
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def release_tags(repo: str | Path) -> dict[str, str]:
    """Tag -> commit of every ``vX.Y.Z`` tag of a repository (a path or a git URL)."""
    from packaging.version import InvalidVersion, Version

    target = str(Path(repo).expanduser()) if not str(repo).startswith(("http", "git@", "ssh:", "git:")) else str(repo)
    proc = subprocess.run(["git", "ls-remote", "--tags", "--refs", "--", target], capture_output=True, text=True)
    if proc.returncode != 0:
        raise TemplateError(f"the template repository {repo} cannot be read: {proc.stderr.strip()}")
    tags = {}
    for line in proc.stdout.splitlines():
        commit, ref = line.split("\t", 1)
        tag = ref.removeprefix("refs/tags/")
        try:
            Version(tag)
        except InvalidVersion:
            continue
        tags[tag] = commit
    return tags


def version_of(tag: str) -> str:
    """The version a release tag names: ``v0.2.0.post1`` -> ``0.2.0.post1``."""
    return tag[1:] if tag[:1] in "vV" else tag


def _head(repo: Path) -> str | None:
    proc = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "--verify", "-q", "HEAD"], capture_output=True, text=True
    )
    return proc.stdout.strip() or None


def _materialise(version: str) -> str:
    """Make sure the store holds this skelgen's template as a tagged commit; return the tag."""
    from packaging.version import Version

    root = packaged_template()
    repo = store_path()
    with waiting_lock(repo.parent / "template.lock"):  # two skelgen processes never write the store at once
        if repo.exists() and not (repo / ".git").is_dir():
            raise TemplateError(f"{repo} exists but is not skelgen's template repository; move it away and rerun")
        if not repo.exists():
            _init(repo)
        tree = _tree(repo, root)
        base = Version(version).base_version
        same = [t for t in release_tags(repo) if Version(version_of(t)).base_version == base]
        for tag in same:
            if _git(repo, "rev-parse", f"{tag}^{{tree}}").strip() == tree:
                return tag
        tag = f"v{version}" if not same else f"v{base}.post{len(same)}"
        parent = _head(repo)
        commit = _git(
            repo, "commit-tree", tree, *(["-p", parent] if parent else []), input=f"skelgen {version_of(tag)}\n"
        ).strip()
        _git(repo, "tag", tag, commit)
        _git(repo, "reset", "-q", "--hard", commit)  # the work tree shows the newest version, clean
        return tag


def source(version: str | None = None) -> Source:
    """The copier source to render ``version`` (default: this skelgen's) from.

    With ``SKELGEN_TEMPLATE`` set, that source as is (``ref`` the tag of ``version`` if given, else
    None: copier's newest tag). Otherwise the store, filled with this skelgen's version first.

    Raises:
        TemplateError: the store cannot be prepared, or ``version`` is not in it.
    """
    override = os.environ.get(ENV_TEMPLATE)
    if override:
        return Source(override, f"v{version}" if version else None, version)
    tag = _materialise(__version__)
    if version is not None and version_of(tag) != version:
        wanted = next((t for t in release_tags(store_path()) if version_of(t) == version.lstrip("vV")), None)
        if wanted is None:
            known = ", ".join(sorted(version_of(t) for t in release_tags(store_path())))
            raise TemplateError(
                f"template version {version} is not in {store_path()} (it holds: {known}); "
                f"install that skelgen version once (pip install skelgen-tf=={version}) and run it"
            )
        tag = wanted
    return Source(recorded(store_path()), tag, version_of(tag))


def adopt(checkout: str, commit: str) -> str | None:
    """Bring ``commit`` of a skelgen checkout into the store, tagged ``vX.Y.Z+gHASH``; return the tag.

    Projects generated by a development install of skelgen 0.1 record the checkout's path and a bare
    commit hash. If that checkout still holds the commit, its template becomes a version of the store
    (its release number from the commit's ``_version.py``, the hash as a PEP 440 local label), so the
    project can be updated like any other. Returns None when the checkout or the commit is gone.
    """
    import re

    path = Path(checkout).expanduser()
    if not re.fullmatch(r"[0-9a-f]{7,40}", commit) or not (path / ".git").exists():
        return None
    resolved = subprocess.run(
        ["git", "-C", str(path), "rev-parse", "--verify", "-q", f"{commit}^{{commit}}"], capture_output=True, text=True
    ).stdout.strip()
    if not resolved:
        return None
    commit = resolved
    shown = subprocess.run(
        ["git", "-C", str(path), "show", f"{commit}:shared/skelgen_runtime/_version.py"], capture_output=True, text=True
    )
    match = re.search(r'__version__ = "([^"]+)"', shown.stdout)
    if shown.returncode != 0 or not match:
        return None
    tag = f"v{match.group(1)}+g{commit[:8]}"
    repo = store_path()
    _materialise(__version__)  # the store exists
    with waiting_lock(repo.parent / "template.lock"):  # two skelgen processes never write the store at once
        if tag not in release_tags(repo):
            _git(repo, "fetch", "-q", "--no-tags", str(path), f"+refs/*:refs/adopted/{commit[:8]}/*")
            _git(repo, "tag", tag, commit)
            refs = _git(repo, "for-each-ref", "--format=delete %(refname)", f"refs/adopted/{commit[:8]}/")
            _git(repo, "update-ref", "--stdin", input=refs)
    return tag
