"""``skelgen sweep``: Optuna studies whose trials are ordinary train.py runs; exact trial counts with several
workers (SQLite and a real PostgreSQL server), pruning, kill -9 and Ctrl-C, results, and bad sweep files."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from conftest import SKELGEN, git

optuna = pytest.importorskip("optuna")

FIXED = {
    "train.epochs": 2,
    "train.steps_per_epoch": 2,
    "data.batch_size": 8,
    "data.image_size": [32, 32],
    "model.depth": 2,
}
SPACE = {
    "train.learning_rate": {"type": "float", "low": 1.0e-4, "high": 1.0e-2, "log": True},
    "model.base_filters": {"type": "int", "low": 4, "high": 8, "step": 4},
}


def private_project(built_projects, dest: Path, task: str = "segmentation", framework: str = "keras") -> Path:
    """A private copy of a built project's committed workspace."""
    project = built_projects(task, framework)
    shutil.copytree(project.parent, dest, symlinks=True)
    assert not git(dest, "status", "--porcelain")
    return dest / project.name


def write_sweep(project: Path, name: str, *, trials: int, fixed=None, params=None, **keys) -> Path:
    path = project / "sweeps" / f"{name}.yaml"
    body = {"base": "configs/demo.yaml", "fixed": {**FIXED, **(fixed or {})}, "trials": trials}
    body.update({"params": params or SPACE, **keys})
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    return path


def sweep(project: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    return subprocess.run(
        [SKELGEN, "sweep", *args], cwd=project, capture_output=True, text=True, timeout=timeout, env=env
    )


def start(project: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [SKELGEN, "sweep", "run", *args], cwd=project, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def study_of(project: Path, name: str, url: str | None = None):
    return optuna.load_study(study_name=name, storage=url or f"sqlite:///{project}/logs/sweeps.db")


def states(study) -> dict[str, int]:
    out: dict[str, int] = {}
    for trial in study.get_trials(deepcopy=False):
        out[trial.state.name] = out.get(trial.state.name, 0) + 1
    return out


def run_record(project: Path, run_id: str) -> dict:
    return json.loads((project / "logs" / run_id / "run.json").read_text())


def assert_exact(study, n: int, *, made_by_test: int = 0) -> None:
    """Exactly ``n`` finished trials, numbers 0..len-1 each once, nothing left running; each finished trial but
    the first ``made_by_test`` (added by the test, not run) has a run of its own."""
    trials = study.get_trials(deepcopy=False)
    numbers = [t.number for t in trials]
    assert sorted(numbers) == list(range(len(numbers))), numbers
    assert sum(t.state.name in ("COMPLETE", "PRUNED") for t in trials) == n, states(study)
    assert not [t for t in trials if t.state.name == "RUNNING"], states(study)
    run_ids = [t.user_attrs.get("run_id") for t in trials if t.state.name != "FAIL" and t.number >= made_by_test]
    assert len(set(run_ids)) == len(run_ids) == n - made_by_test and None not in run_ids, run_ids


def wait_for(path_glob, project: Path, text: str, timeout: float = 300) -> Path:
    deadline = time.time() + timeout
    while time.time() < deadline:
        for path in project.glob(path_glob):
            if text in path.read_text(errors="replace"):
                return path
        time.sleep(0.2)
    raise AssertionError(f"no {path_glob} said {text!r} in {timeout} s")


# ---------------------------------------------------------------------------------------------- the sweep file


def test_bad_sweep_files_are_refused_before_any_trial(built_projects, tmp_path):
    """No TensorFlow needed: each mistake is named with the file and the key, and no storage is written."""
    project = private_project(built_projects, tmp_path / "ws")
    cases = {
        "notyaml": ("params: [unclosed", "is not valid YAML"),
        "topkey": ("trails: 4\nparams: {train.learning_rate: [0.1]}", "trails: unknown key; did you mean 'trials'?"),
        "inverted": (
            "params: {train.learning_rate: {type: float, low: 0.1, high: 0.01}}",
            "params.train.learning_rate: the range [0.1, 0.01] is inverted",
        ),
        "empty": ("params: {model.base_filters: {type: int, low: 8, high: 8}}", "[8, 8] is empty"),
        "zero": ("trials: 0\nparams: {train.learning_rate: [0.1]}", "trials: 0: give a whole number of trials"),
        "logneg": (
            "params: {train.learning_rate: {type: float, low: 0, high: 1, log: true}}",
            "a log range must be positive",
        ),
        "kind": ("params: {train.learning_rate: {type: floats, low: 0, high: 1}}", "did you mean 'float'?"),
        "noparams": ("trials: 3", "params: give at least one dotted config key"),
    }
    for name, (text, expected) in cases.items():
        path = project / "sweeps" / f"{name}.yaml"
        path.write_text(text)
        proc = sweep(project, "run", f"sweeps/{name}.yaml", timeout=60)
        assert proc.returncode == 2, (name, proc.stdout, proc.stderr)
        assert proc.stderr.startswith(f"error: sweep file {path}") and expected in proc.stderr, (name, proc.stderr)
    assert not (project / "logs" / "sweeps.db").exists()


def test_keys_and_values_are_checked_against_the_projects_schema(built_projects, tmp_path):
    project = private_project(built_projects, tmp_path / "ws")
    write_sweep(project, "misspelt", trials=2, params={"train.learnig_rate": [0.001, 0.01]})
    proc = sweep(project, "run", "sweeps/misspelt.yaml", timeout=180)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "params.train.learnig_rate: not a key of the project's config" in proc.stderr, proc.stderr
    assert "did you mean 'learning_rate'?" in proc.stderr
    write_sweep(project, "negative", trials=2, params={"train.learning_rate": {"type": "float", "low": -1, "high": 1}})
    proc = sweep(project, "run", "sweeps/negative.yaml", timeout=180)
    assert proc.returncode == 2 and "params.train.learning_rate: the value -1" in proc.stderr, proc.stderr
    study_names = [s.study_name for s in optuna.get_all_study_summaries(f"sqlite:///{project}/logs/sweeps.db")]
    assert study_names == []  # refused before the study was made


def test_unreachable_storage_is_one_line_and_writes_nothing(built_projects, tmp_path):
    project = private_project(built_projects, tmp_path / "ws")
    write_sweep(project, "s", trials=1)
    for url, said in (
        ("postgresql+psycopg://nobody@127.0.0.1:9/none", "cannot open sweep storage postgresql+psycopg://nobody@"),
        (f"sqlite:///{tmp_path}/missing/dir/s.db", "cannot open sweep storage sqlite:///"),
    ):
        proc = sweep(project, "run", "sweeps/s.yaml", "--storage", url, timeout=60)
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and said in proc.stderr, proc.stderr
    assert not (tmp_path / "missing").exists() and not list((project / "logs").glob("sweeps*"))


# ---------------------------------------------------------------------------------------------- running


@pytest.mark.slow
def test_two_worker_processes_finish_exactly_n_trials_then_show_plot_best(built_projects, tmp_path):
    """The budget (issue: 6 trials of 2 steps on shapes in under 3 minutes on 2 cores), with two commands on one
    SQLite study (one of them with two workers), then every way of reading the results."""
    project = private_project(built_projects, tmp_path / "ws")
    write_sweep(project, "lr", trials=6)
    t0 = time.monotonic()
    first = start(project, "sweeps/lr.yaml", "--workers", "2")
    time.sleep(1.0)
    second = start(project, "sweeps/lr.yaml")
    outs = [p.communicate(timeout=600)[0] for p in (first, second)]
    seconds = time.monotonic() - t0
    assert [first.returncode, second.returncode] == [0, 0], outs
    assert seconds < 180, f"6 trials took {seconds:.0f} s"
    study = study_of(project, "lr")
    assert_exact(study, 6)
    started = [line for out in outs for line in out.splitlines() if " started: " in line]
    assert len(started) == len(study.trials)  # each trial number run by one worker once
    # every trial is an ordinary run, tagged
    for trial in study.trials:
        record = run_record(project, trial.user_attrs["run_id"])
        assert record["sweep"] == {"id": "lr", "trial": trial.number}
        assert record["status"] in ("complete", "pruned")
        assert trial.user_attrs["run_id"].endswith(f"-lr-t{trial.number}")
        config = yaml.safe_load((project / "logs" / trial.user_attrs["run_id"] / "config.yaml").read_text())
        assert config["train"]["learning_rate"] == pytest.approx(trial.params["train.learning_rate"])
        assert config["model"]["base_filters"] == trial.params["model.base_filters"]
    listed = json.loads(
        subprocess.run([SKELGEN, "runs", "--sweep", "lr", "--json"], cwd=project, capture_output=True, text=True).stdout
    )
    assert sorted(r["sweep"]["trial"] for r in listed["runs"]) == sorted(t.number for t in study.trials)
    shown = json.loads(sweep(project, "show", "lr", "--json").stdout)
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    best = max(complete, key=lambda t: t.value)
    assert shown["trials"][0]["trial"] == best.number and shown["finished"] == 6
    assert shown["trials"][0]["value"] == pytest.approx(best.value)
    assert shown["objective"] == "val_miou" and shown["direction"] == "maximize"
    # the value is the run's best val_miou
    rows = (project / "logs" / best.user_attrs["run_id"] / "metrics.csv").read_text().splitlines()
    header = rows[0].split(",")
    assert best.value == pytest.approx(max(float(r.split(",")[header.index("val_miou")]) for r in rows[1:]))
    proc = sweep(project, "plot", "lr", "--out", str(tmp_path / "plots"))
    assert proc.returncode == 0, proc.stderr
    for name in ("history.png", "importances.png"):
        assert (tmp_path / "plots" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    proc = sweep(project, "best", "lr", "--out", "configs/best.yaml")
    assert proc.returncode == 0, proc.stderr
    best_config = yaml.safe_load((project / "configs" / "best.yaml").read_text())
    trained = yaml.safe_load((project / "logs" / best.user_attrs["run_id"] / "config.yaml").read_text())
    assert best_config == trained
    # a new search space under the same name is refused, saying how to start anew
    write_sweep(project, "lr", trials=6, params={"train.learning_rate": [0.001, 0.002]})
    proc = sweep(project, "run", "sweeps/lr.yaml", timeout=180)
    assert proc.returncode == 2 and "another space" in proc.stderr and "start a new study" in proc.stderr, proc.stderr


@pytest.mark.slow
def test_pruned_trials_stop_at_the_epoch_and_count_as_finished_tf_framework(built_projects, tmp_path):
    """The custom loop (framework tf): three earlier trials that reported a perfect score make the median
    pruner stop every new trial after its first epoch; the run says pruned with the epoch."""
    from optuna.distributions import FloatDistribution, IntDistribution
    from optuna.trial import TrialState, create_trial

    from skelgen_runtime.sweeps.runner import open_study
    from skelgen_runtime.sweeps.spec import read_sweep

    project = private_project(built_projects, tmp_path / "ws", framework="tf")
    path = write_sweep(project, "prune", trials=5, fixed={"train.epochs": 4}, pruner="median")
    url = f"sqlite:///{project}/logs/sweeps.db"
    (project / "logs").mkdir(exist_ok=True)
    study = open_study(url, read_sweep(path, project), objective="val_miou", direction="maximize")
    space = {
        "train.learning_rate": FloatDistribution(1e-4, 1e-2, log=True),
        "model.base_filters": IntDistribution(4, 8, step=4),
    }
    for k in range(3):
        study.add_trial(
            create_trial(
                state=TrialState.COMPLETE,
                value=1.0,
                params={"train.learning_rate": 1e-3, "model.base_filters": 4},
                distributions=space,
                intermediate_values={1: 1.0, 2: 1.0, 3: 1.0, 4: 1.0},
            )
        )
    proc = sweep(project, "run", "sweeps/prune.yaml")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    study = study_of(project, "prune")
    assert_exact(study, 5, made_by_test=3)
    new = [t for t in study.trials if t.number >= 3]
    assert [t.state.name for t in new] == ["PRUNED", "PRUNED"]
    for trial in new:
        record = run_record(project, trial.user_attrs["run_id"])
        assert record["status"] == "pruned" and record["pruned_epoch"] == 1, record
        assert record["reason"] == "pruned by the sweep after epoch 1"
        assert len((project / "logs" / trial.user_attrs["run_id"] / "metrics.csv").read_text().splitlines()) == 2
        assert not (project / "models" / trial.user_attrs["run_id"] / "backup").exists()
    assert "pruned" in proc.stdout


@pytest.mark.slow
def test_kill_9_of_one_worker_and_of_the_sweep_loses_and_repeats_nothing(built_projects, tmp_path):
    """kill -9 of one of two worker processes mid-trial: the other fails the killed trial at once (its run
    too) and finishes the study; a kill -9 of the sweep, then the same command again: the same. Exactly N
    finished trials, each number once, the killed ones failed, never counted."""
    project = private_project(built_projects, tmp_path / "ws")
    write_sweep(project, "k", trials=3, fixed={"train.epochs": 500}, pruner="none")  # long: killed mid-trial
    victim = start(project, "sweeps/k.yaml")
    wait_for("logs/sweeps/k/trial-0000.log", project, "Epoch 2/500")
    write_sweep(
        project, "k", trials=3, fixed={"train.epochs": 2}, pruner="none"
    )  # the same space: the other's trials are quick
    other = start(project, "sweeps/k.yaml")
    wait_for("logs/sweeps/k/trial-0001.log", project, "$ ")
    assert "Epoch 500/500" not in (project / "logs/sweeps/k/trial-0000.log").read_text()  # killed mid-trial
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=30)
    out = other.communicate(timeout=600)[0]
    assert other.returncode == 0, out
    study = study_of(project, "k")
    assert_exact(study, 3)
    killed = study.trials[0]
    assert killed.state.name == "FAIL" and "ended during the trial" in killed.system_attrs["fail_reason"], out
    record = run_record(project, killed.user_attrs["run_id"])
    assert record["status"] == "failed" and "sweep k trial 0" in record["reason"], record
    assert not subprocess.run(["pgrep", "-f", "experiment=.k-t0[^0-9]"], capture_output=True).stdout  # no orphan
    # the whole sweep killed mid-trial, then the same command
    number = len(study.trials)
    write_sweep(project, "k", trials=3, fixed={"train.epochs": 500}, pruner="none")
    again = start(project, "sweeps/k.yaml", "--trials", "4")
    wait_for(f"logs/sweeps/k/trial-{number:04d}.log", project, "Epoch 2/500")
    again.send_signal(signal.SIGKILL)
    again.wait(timeout=30)
    write_sweep(project, "k", trials=3, fixed={"train.epochs": 2}, pruner="none")
    proc = sweep(project, "run", "sweeps/k.yaml", "--trials", "4")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    study = study_of(project, "k")
    assert_exact(study, 4)
    assert study.trials[number].state.name == "FAIL"
    assert run_record(project, study.trials[number].user_attrs["run_id"])["status"] == "failed"
    assert f"trial {number} failed: its worker" in proc.stdout
    assert not subprocess.run(["pgrep", "-f", f"experiment=.k-t{number}[^0-9]"], capture_output=True).stdout


@pytest.mark.slow
def test_ctrl_c_stops_after_the_current_step_and_a_failing_trial_does_not_stop_the_sweep(built_projects, tmp_path):
    from skelgen_runtime.sweeps.runner import open_study
    from skelgen_runtime.sweeps.spec import read_sweep

    project = private_project(built_projects, tmp_path / "ws")
    # a learning rate of 1e30 makes the loss NaN at once: that trial fails with the reason, the sweep goes on
    params = {"train.learning_rate": {"type": "categorical", "choices": [0.001, 1.0e30]}}
    path = write_sweep(project, "c", trials=2, params=params, fixed={"train.epochs": 30})
    (project / "logs").mkdir(exist_ok=True)
    study = open_study(
        f"sqlite:///{project}/logs/sweeps.db", read_sweep(path, project), objective="val_miou", direction="maximize"
    )
    for value in (0.001, 1.0e30, 0.001, 0.001):  # the trials in this order (enqueued ones are asked for first)
        study.enqueue_trial({"train.learning_rate": value})
    proc = start(project, "sweeps/c.yaml")
    wait_for("logs/sweeps/c/trial-*.log", project, "Epoch 3/30")
    proc.send_signal(signal.SIGINT)
    out = proc.communicate(timeout=120)[0]
    assert proc.returncode == 130, out
    assert "stopping the sweep after the running trials' current step" in out and "the same command goes on" in out
    study = study_of(project, "c")
    stopped = [t for t in study.trials if t.state.name == "FAIL" and "Ctrl-C" in t.system_attrs.get("fail_reason", "")]
    assert len(stopped) == 1
    assert run_record(project, stopped[0].user_attrs["run_id"])["status"] == "interrupted"
    write_sweep(project, "c", trials=2, params=params)  # fixed changed: the same space
    proc = sweep(project, "run", "sweeps/c.yaml")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    study = study_of(project, "c")
    assert_exact(study, 2)
    assert [t.state.name for t in study.trials] == ["FAIL", "FAIL", "COMPLETE", "COMPLETE"]
    nan = [t for t in study.trials if t.params["train.learning_rate"] > 1 and t.state.name == "FAIL"]
    assert nan and "the loss became nan" in nan[0].system_attrs["fail_reason"], [t.system_attrs for t in study.trials]
    assert run_record(project, nan[0].user_attrs["run_id"])["status"] == "failed"


# ---------------------------------------------------------------------------------------------- PostgreSQL


def _pg_bin() -> Path | None:
    for folder in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (folder / "initdb").is_file():
            return folder
    found = shutil.which("initdb")
    return Path(found).resolve().parent if found else None


@pytest.fixture
def postgres(tmp_path):
    """A PostgreSQL server of this test alone: a new cluster in a temporary folder, on a free loopback port
    (Debian's postgresql package; .ci/run installs it). As root, the server runs as the postgres user."""
    import socket

    binaries = _pg_bin()
    if binaries is None:
        pytest.fail("PostgreSQL's initdb is not installed: apt-get install postgresql (.ci/run does)")
    import tempfile

    home = Path(tempfile.mkdtemp(prefix="skelgen-pg-"))  # in /tmp: the postgres user cannot enter pytest's folders
    data = home / "data"
    data.mkdir()
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        home.chmod(0o755)
        shutil.chown(data, "postgres", "postgres")
        data.chmod(0o700)
        as_user = ["runuser", "-u", "postgres", "--"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    run = lambda *cmd: subprocess.run([*as_user, *cmd], check=True, capture_output=True, text=True)  # noqa: E731
    run(str(binaries / "initdb"), "-D", str(data), "-U", "skelgen", "--auth=trust", "-E", "UTF8")
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {data}"
    run(str(binaries / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(data / "server.log"), "-w", "start")
    try:
        run(str(binaries / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "skelgen", "sweeps")
        yield f"postgresql+psycopg://skelgen@127.0.0.1:{port}/sweeps"
    finally:
        run(str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(home, ignore_errors=True)


@pytest.mark.slow
def test_two_workers_share_a_postgresql_study(built_projects, tmp_path, postgres):
    project = private_project(built_projects, tmp_path / "ws")
    write_sweep(project, "pg", trials=4)
    first = start(project, "sweeps/pg.yaml", "--storage", postgres)
    time.sleep(1.0)
    second = start(project, "sweeps/pg.yaml", "--storage", postgres)
    outs = [p.communicate(timeout=600)[0] for p in (first, second)]
    assert [first.returncode, second.returncode] == [0, 0], outs
    study = study_of(project, "pg", postgres)
    assert_exact(study, 4)
    assert not list((project / "logs").glob("sweeps.db*"))  # nothing in the default SQLite file
    shown = json.loads(sweep(project, "show", "pg", "--storage", postgres, "--json").stdout)
    assert shown["finished"] == 4
