"""skelgen installed from wheels, as users get it: no checkout, no network, no SKELGEN_TEMPLATE.

Wheels of version N (this checkout) and N+1 (the same with a template change) are built from
temporary copies. Each fresh virtual environment gets skelgen-tf only from a wheel; the third-party
packages (TensorFlow, copier, ...) come from the test environment through a ``.pth`` file, so
nothing is downloaded.
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO
from skelgen_runtime._version import __version__

_MAJOR, _MINOR = (int(p) for p in __version__.split(".")[:2])
#: a later release of this minor series, made from a copy of this checkout
NEXT = f"{_MAJOR}.{_MINOR}.99" if __version__ != f"{_MAJOR}.{_MINOR}.99" else f"{_MAJOR}.{_MINOR}.100"
GIT_ID = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}


def _run(cmd: list[str], cwd: Path, env: dict[str, str], check: bool = True, timeout: int = 900):
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if check:
        assert proc.returncode == 0, (
            f"{' '.join(map(str, cmd))} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


def _source_copy(dest: Path) -> Path:
    """The checkout's files (committed or not, never ignored ones), symlinks kept."""
    files = subprocess.run(
        ["git", "-C", str(REPO), "ls-files", "-co", "--exclude-standard", "-z"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    for rel in filter(None, files):
        src = REPO / rel
        if not src.exists() and not src.is_symlink():
            continue  # deleted in the working tree
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            (dest / rel).symlink_to(os.readlink(src))
        else:
            shutil.copy2(src, dest / rel)
    return dest


def _wheel(source: Path, out: Path, env: dict[str, str]) -> Path:
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-w",
            str(out),
            str(source),
        ],
        source,
        env,
    )
    (wheel,) = out.glob("skelgen_tf-*.whl")
    return wheel


def _venv(path: Path, env: dict[str, str], wheel: Path) -> Path:
    """A fresh venv with skelgen-tf from ``wheel`` only; third-party packages borrowed, not downloaded."""
    _run([sys.executable, "-m", "venv", str(path)], path.parent, env)
    python = path / "bin" / "python"
    purelib = _run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], path.parent, env
    ).stdout.strip()
    (Path(purelib) / "_borrowed_dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    _run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)], path.parent, env)
    return path / "bin"


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


@pytest.mark.slow
def test_wheels_generate_and_update_a_project_offline_with_no_checkout(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SKELGEN_", "PYTHON", "VIRTUAL_ENV"))}
    env.update(GIT_ID, HOME=str(tmp_path / "home"), PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    (tmp_path / "home").mkdir()

    src_n = _source_copy(tmp_path / "src-n")
    wheel_n = _wheel(src_n, tmp_path / "wheels-n", env)
    src_n1 = tmp_path / "src-n1"
    shutil.copytree(src_n, src_n1, symlinks=True)
    _edit(src_n1 / "shared/skelgen_runtime/_version.py", f'"{__version__}"', f'"{NEXT}"')
    _edit(src_n1 / "copier.yml", f'default: "{__version__}"', f'default: "{NEXT}"')
    _edit(
        src_n1 / "template/project/train.py.jinja",
        "def main(argv=None) -> None:\n",
        "def main(argv=None) -> None:\n    # from the N+1 wheel\n",
    )
    wheel_n1 = _wheel(src_n1, tmp_path / "wheels-n1", env)
    with __import__("zipfile").ZipFile(wheel_n) as z:
        packaged = {n.removeprefix("skelgen/_template/") for n in z.namelist() if n.startswith("skelgen/_template/")}
    tracked = subprocess.run(
        ["git", "-C", str(REPO), "ls-files", "-co", "--exclude-standard", "-z", "--", "copier.yml", "template"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    assert {t for t in tracked if t and (REPO / t).exists()} == packaged, "the wheel carries the whole template"

    # version N: a fresh venv generates a project; nothing points at a checkout
    bin_n = _venv(tmp_path / "venv-n", env, wheel_n)
    where = _run([str(bin_n / "python"), "-c", "import skelgen; print(skelgen.__file__)"], tmp_path, env).stdout
    assert str(tmp_path / "venv-n") in where and str(REPO) not in where
    ws = tmp_path / "ws"
    _run([str(bin_n / "skelgen"), "new", "demo", "--workspace", str(ws), "--defaults"], tmp_path, env)
    project = ws / "demo"
    _run([str(bin_n / "skelgen"), "add-dataset", "shapes"], project, env)
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert answers["_src_path"] == "~/.local/share/skelgen/template" and answers["_commit"] == f"v{__version__}"
    _edit(project / "train.py", "        loss = job.loss()", "        # user edit\n        loss = job.loss()")
    _run(["git", "commit", "-qam", "user edit"], ws, env)

    # version N+1 installed over it: skelgen update brings its change and moves the requirement
    _run(
        [
            str(bin_n / "python"),
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-index",
            "--force-reinstall",
            str(wheel_n1),
        ],
        tmp_path,
        env,
    )
    out = _run([str(bin_n / "skelgen"), "update"], project, env).stdout
    assert f"project: updated {__version__} -> {NEXT}" in out
    train = (project / "train.py").read_text()
    assert "# from the N+1 wheel" in train and "# user edit" in train
    assert f'"skelgen-tf>={NEXT},<{_MAJOR}.{_MINOR + 1}"' in (project / "pyproject.toml").read_text()
    tests = _run([str(bin_n / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], project, env)
    assert "3 passed" in tests.stdout

    # the generating venv and the sources are gone; another install still knows where the project stands
    bin_other = _venv(tmp_path / "venv-other", env, wheel_n1)
    for gone in (tmp_path / "venv-n", src_n, src_n1):
        shutil.rmtree(gone)
    check = _run([str(bin_other / "skelgen"), "update", "--check"], project, env)
    assert "project: " + NEXT + " (up to date)" in check.stdout and "dataset shapes: " + NEXT in check.stdout
    plain = _run([str(bin_other / "python"), "-m", "copier", "update", "--defaults"], project, env)  # resolves ~ too
    assert plain.returncode == 0
