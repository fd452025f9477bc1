"""Shared fixtures: generated workspaces and projects, and a runner for their scripts."""

from __future__ import annotations

import atexit
import csv
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SKELGEN = str(BIN / "skelgen")

# no network: this process and every Python process it starts (PYTHONPATH) fail on a connection or a
# name look-up outside the loopback, so a hidden download fails loudly (tests/netblock/sitecustomize.py)
NETBLOCK = Path(__file__).resolve().parent / "netblock"
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(NETBLOCK), os.environ.get("PYTHONPATH", "")) if p)
sys.path.insert(0, str(NETBLOCK))
import sitecustomize as _netblock  # noqa: E402

if not hasattr(_netblock, "NetworkBlocked"):  # another sitecustomize came first
    import importlib.util as _util

    _spec = _util.spec_from_file_location("skelgen_netblock", NETBLOCK / "sitecustomize.py")
    _netblock = _util.module_from_spec(_spec)
    _spec.loader.exec_module(_netblock)
_netblock.install()

# MLflow's usage telemetry stays off (the network is blocked anyway: this keeps its attempts out of the output)
os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
# quiet TensorFlow's C++ start-up logs in the scripts the tests run
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# skelgen's template repository (the store) of this test session, never the user's; SKELGEN_TEMPLATE
# set by the environment that runs the tests would bypass the template under test
os.environ["SKELGEN_HOME"] = tempfile.mkdtemp(prefix="skelgen-home-")
atexit.register(shutil.rmtree, os.environ["SKELGEN_HOME"], ignore_errors=True)
os.environ.pop("SKELGEN_TEMPLATE", None)
# the config schemas' snapshots of this session (skelgen_runtime.config.precheck), never the user's cache
os.environ["SKELGEN_CACHE"] = tempfile.mkdtemp(prefix="skelgen-cache-")
atexit.register(shutil.rmtree, os.environ["SKELGEN_CACHE"], ignore_errors=True)


def skelgen(
    *args: str, cwd: Path | None = None, check: bool = True, input: str | None = None
) -> subprocess.CompletedProcess:
    """Run the installed ``skelgen`` command."""
    # without COLUMNS/LINES: readline (loaded by pytest) exports COLUMNS=80 in the C environment, and a pytest
    # worker process may have them in os.environ; either would make skelgen fit its tables to a terminal it is
    # not writing to
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    proc = subprocess.run([SKELGEN, *args], cwd=cwd, capture_output=True, text=True, input=input, timeout=120, env=env)
    if check:
        assert proc.returncode == 0, f"skelgen {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


class ChildCPU:
    """The CPU time (user + system seconds) of the child processes that ended inside the block: what a
    command costs, unchanged by other work on the machine (the suite runs two tests side by side, so wall
    time is not the command's own)."""

    def __enter__(self) -> "ChildCPU":
        self._before = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.seconds = 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.seconds = (after.ru_utime - self._before.ru_utime) + (after.ru_stime - self._before.ru_stime)


def script(
    project: Path, *args: str, check: bool = True, timeout: int = 900, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run one of a generated project's Python scripts with this interpreter (``env``: variables to add)."""
    proc = subprocess.run(
        [sys.executable, *args],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **env} if env else None,
    )
    if check:
        assert proc.returncode == 0, f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return proc


def in_terminal(args: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 600) -> tuple[int, str]:
    """Run ``args`` with stdin, stdout and stderr on a pseudo-terminal (what a user sees: progress bars drawn
    only for terminals); its exit status and everything it wrote."""
    import fcntl
    import pty
    import struct
    import termios

    main, child = pty.openpty()
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))  # 40 rows, 120 columns
    proc = subprocess.Popen(args, cwd=cwd, stdin=child, stdout=child, stderr=child, env=env, close_fds=True)
    os.close(child)
    out = b""
    while True:
        try:
            chunk = os.read(main, 1 << 16)
        except OSError:  # EIO: every end of the terminal's child side is closed
            break
        if not chunk:
            break
        out += chunk
    os.close(main)
    return proc.wait(timeout=timeout), out.decode(errors="replace")


def make_project(workspace: Path, name: str = "proj", task: str = "segmentation", framework: str = "keras") -> Path:
    from skelgen import api

    return api.new_project(name=name, task=task, framework=framework, workspace=workspace).path


@pytest.fixture(scope="session")
def shapes_project(tmp_path_factory) -> Path:
    """A segmentation project with the shapes dataset added (raw data only; not built). Treat as read-only."""
    from skelgen import api

    project = make_project(tmp_path_factory.mktemp("ws"), "shapes_proj")
    api.add_dataset(name="shapes", project=project)
    return project


SMALL = {"train": 48, "val": 16, "pred": 4}


@pytest.fixture(scope="session")
def built_projects(tmp_path_factory):
    """``get(task, framework)``: a project whose small shapes dataset (48/16/4 images of 64x64) is
    built, made once per session and combination. Treat as read-only (copy it to change it)."""
    from skelgen import api
    from skelgen_runtime.samples.shapes import write_shapes

    cache: dict[tuple[str, str], Path] = {}

    def get(task: str = "segmentation", framework: str = "keras") -> Path:
        if (task, framework) not in cache:
            project = make_project(tmp_path_factory.mktemp("ws"), f"{task}_{framework}", task, framework)
            api.add_dataset(name="shapes", project=project, sample_counts={"train": 0, "val": 0, "pred": 0})
            write_shapes(project / "datasets" / "shapes", task=task, counts=SMALL, size=64)
            script(project, "datasets/build_shapes_to_tfrecord.py", "--workers", "1", "--shard-size", "16")
            cache[task, framework] = project
        return cache[task, framework]

    return get


@pytest.fixture(scope="session")
def built_project(built_projects) -> Path:
    """The segmentation/keras project of :func:`built_projects`."""
    return built_projects("segmentation", "keras")


def epochs_logged(run_dir: Path) -> list[int]:
    """The ``epoch`` column of a run's ``metrics.csv``."""
    with open(run_dir / "metrics.csv") as f:
        return [int(row["epoch"]) for row in csv.DictReader(f)]


def train_and_kill(
    project: Path, args: list[str], *, after_epochs: int, sig: int = signal.SIGKILL, timeout: float = 300
) -> tuple[Path, subprocess.CompletedProcess]:
    """Start ``train.py ARGS`` and send ``sig`` once ``after_epochs`` rows are in its ``metrics.csv``.

    Returns the run's log folder and the finished process (exit status, stdout, stderr), with two
    more attributes: ``epochs_at_signal`` (rows in ``metrics.csv`` when the signal went) and
    ``seconds_after_signal`` (until the process had exited).
    """
    before = set((project / "logs").glob("*/metrics.csv"))
    proc = subprocess.Popen(
        [sys.executable, "train.py", *args], cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.time() + timeout
    while True:
        assert proc.poll() is None, f"training finished before it could be stopped:\n{proc.communicate()}"
        assert time.time() < deadline, "training did not reach the epoch in time"
        csv_files = [p for p in (project / "logs").glob("*/metrics.csv") if p not in before]
        if csv_files and len(epochs_logged(csv_files[0].parent)) >= after_epochs:
            break
        time.sleep(0.05)
    at_signal = len(epochs_logged(csv_files[0].parent))
    sent = time.monotonic()
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    done = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    done.epochs_at_signal, done.seconds_after_signal = at_signal, time.monotonic() - sent
    return csv_files[0].parent, done


GIT_ID = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}


def git(cwd: Path, *args: str) -> str:
    """``git ARGS`` in ``cwd`` as a test identity; its stdout (fails the test on a non-zero exit)."""
    return subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=True, env={**os.environ, **GIT_ID}
    ).stdout


def copy_workspace(built_projects, dest: Path) -> Path:
    """A private copy of the committed workspace of the built segmentation/keras project; returns the project."""
    project = built_projects("segmentation", "keras")
    shutil.copytree(project.parent, dest, symlinks=True)
    assert not git(dest, "status", "--porcelain"), "the built workspace is committed"
    return dest / project.name


def library_schema(task: str = "segmentation"):
    """A config class made of the library's sections alone (what a project's ``core/config.py`` composes),
    with an open ``model`` section: for tests of library code that takes a config."""
    from pydantic import ConfigDict, create_model

    from skelgen_runtime import config as c

    data = {
        "segmentation": c.SegmentationDataConfig,
        "classification": c.ClassificationDataConfig,
        "detection": c.DetectionDataConfig,
    }[task]
    train = c.ClassificationTrainConfig if task == "classification" else c.TrainConfig
    model = create_model("Model", __base__=c.Section, name=(str, "model"))
    model.model_config = ConfigDict(**{**model.model_config, "extra": "allow"})  # any builder keyword
    model.model_rebuild(force=True)
    return create_model(
        "Config",
        __base__=c.Section,
        experiment=(str, "default"),
        data=(data, data()),
        model=(model, model()),
        train=(train, train()),
        eval=(c.EvalConfig, c.EvalConfig()),
    )


def library_config(task: str = "segmentation", *overrides: str):
    """:func:`library_schema`'s config with ``key=value`` overrides."""
    from skelgen_runtime.config import load_config

    return load_config(None, list(overrides), schema=library_schema(task))
