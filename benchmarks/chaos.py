"""Kill the long commands at random moments and check that nothing is lost or half-written.

    python benchmarks/chaos.py [--kills K] [--seed S] [--only NAME ...] [--work DIR] [--json PATH] [--markdown PATH]

For each command (:data:`SCENARIOS`): its inputs are prepared once (a generated project, the shapes
dataset, a trained run); the command runs once uninterrupted, which gives the reference result and its
duration ``T``; then ``K`` times, on a fresh copy of the prepared state, the command is started, its whole
process group is sent SIGKILL at a seeded random moment in ``(0.05 T, 0.95 T)`` (every trial at a new
moment; what a scheduler or the OOM killer does), what it left is checked, it is run again the way the
README says (the same build, ``train.py --resume auto``, ...) until it completes (a kill comes once), and
what it left then is checked and compared with the reference.

Checked after every kill and at the end (:func:`violations`), on everything a later step trusts:

- shards: each ``*.tfrecord`` matches the SHA-256 of its sidecar and its records' CRCs hold;
  ``dataset_info.json`` is absent or valid and every shard it lists is present with that checksum;
  TensorFlow Datasets' files are absent or valid and never there without ``dataset_info.json``;
- runs: ``run.json`` is a JSON object, ``metrics.csv`` parses and logs each epoch at most once, in order;
  ``*.weights.h5`` open as HDF5 and ``final.keras`` as a whole zip archive; ``eval_*.json`` is JSON;
- outputs: an export folder holds its ``export.json`` and model, a predictions folder its ``predict.json``.

Compared with the reference at the end (:class:`Scenario` ``result``): the shards (byte for byte), the epochs
logged (each once) and the final validation loss (within ``LOSS_TOLERANCE``: a resumed run redoes an epoch
from its last backup, which does not replay the same random batches), the evaluation's scores, the
predictions' files, the exported model's outputs on fixed images.

Prints a markdown table per command (kills, recovered, reruns, violations; the last must be 0) and writes
it and the JSON with every trial. ``tests/test_chaos.py`` runs it with a small ``K``; the README shows a full run.
"""

from __future__ import annotations

import argparse
import csv
import datetime as _dt
import hashlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # the harness loads exported models: no start-up lines
sys.path.insert(0, str(HERE))

from common import python, quiet_env  # noqa: E402

#: a tiny training: the demo config on 32 px images with a small network
TINY = [
    "--config",
    "configs/demo.yaml",
    "--set",
    "data.image_size=[32,32]",
    "--set",
    "data.batch_size=8",
    "--set",
    "model.base_filters=4",
    "--set",
    "model.depth=2",
    "--set",
    "train.epochs=4",
]
#: how far the final validation loss of a killed and resumed training may be from the uninterrupted one's
LOSS_TOLERANCE = 0.25
#: the sample images of each starting state: (counts, side in pixels); "raw-large" holds more than the
#: 2 x 32 MiB of source files below which a build does not start a second worker (records.writer.choose_workers)
RAW = {
    "raw": ({"train": 48, "val": 16, "pred": 4}, 64),
    "raw-build": ({"train": 1600, "val": 400, "pred": 8}, 64),
    "raw-large": ({"train": 720, "val": 80, "pred": 8}, 1024),
}


# ------------------------------------------------------------------------------------------------ invariants


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _json(path: Path) -> Any:
    return json.loads(path.read_text())


def _check_records(folder: Path) -> list[str]:
    from skelgen_runtime.records.tfrecord import check_records

    found = []
    for shard in sorted(folder.glob("*.tfrecord")):
        sidecar = folder / f".{shard.name}.meta.json"
        try:
            meta = _json(sidecar)
        except (OSError, ValueError):
            found.append(f"{shard}: no whole sidecar")
            continue
        if _sha256(shard) != meta.get("sha256"):
            found.append(f"{shard}: differs from its sidecar's SHA-256")
        elif check_records(shard, None)[1] and not meta.get("compression"):
            found.append(f"{shard}: {check_records(shard, None)[1]}")
    info_file = folder / "dataset_info.json"
    if info_file.exists():
        try:
            info = _json(info_file)
            for split in info["splits"].values():
                for shard in split["shards"]:
                    if not (folder / shard["file"]).is_file() or _sha256(folder / shard["file"]) != shard["sha256"]:
                        found.append(f"{info_file}: lists {shard['file']}, which is missing or differs")
        except (ValueError, KeyError, TypeError) as err:
            found.append(f"{info_file}: not a whole description ({err})")
    for tfds in (folder / "tfds").rglob("*.json") if (folder / "tfds").is_dir() else []:
        try:
            _json(tfds)
        except ValueError:
            found.append(f"{tfds}: not valid JSON")
        if not info_file.exists():
            found.append(f"{tfds}: present without dataset_info.json")
    return found


def _check_run(log_dir: Path) -> list[str]:
    found = []
    record = log_dir / "run.json"
    try:
        if not isinstance(_json(record), dict):
            found.append(f"{record}: not a JSON object")
    except (OSError, ValueError) as err:
        found.append(f"{record}: not whole ({err})")
    if (log_dir / "metrics.csv").exists():
        try:
            with open(log_dir / "metrics.csv", newline="") as f:
                epochs = [int(row["epoch"]) for row in csv.DictReader(f)]
            if epochs != sorted(set(epochs)) or (epochs and epochs != list(range(epochs[0], epochs[0] + len(epochs)))):
                found.append(f"{log_dir / 'metrics.csv'}: epochs {epochs} (each must be logged once, in order)")
        except (ValueError, KeyError, TypeError) as err:
            found.append(f"{log_dir / 'metrics.csv'}: does not parse ({err})")
    for evaluation in log_dir.glob("eval_*.json"):
        try:
            _json(evaluation)
        except ValueError:
            found.append(f"{evaluation}: not valid JSON")
    return found


def _check_models(model_dir: Path) -> list[str]:
    import h5py

    found = []
    for weights in model_dir.glob("checkpoints/[!.]*.weights.h5"):  # hidden temporaries are trusted by nobody
        try:
            with h5py.File(weights, "r") as f:
                list(f.keys())
        except OSError as err:
            found.append(f"{weights}: not a whole HDF5 file ({err})")
    final = model_dir / "final.keras"
    if final.exists():
        try:
            with zipfile.ZipFile(final) as z:
                if z.testzip() is not None:
                    found.append(f"{final}: a damaged member")
        except zipfile.BadZipFile as err:
            found.append(f"{final}: not a whole archive ({err})")
    return found


def violations(project: Path) -> list[str]:
    """Everything a later step would trust in ``project`` that is not whole (empty: nothing)."""
    found = []
    for records in sorted(project.glob("datasets/*/tfrecords")):
        found += _check_records(records)
    for log_dir in sorted(p for p in project.glob("logs/*") if p.is_dir() and (p / "run.json").exists()):
        found += _check_run(log_dir)
    for model_dir in sorted(p for p in project.glob("models/*") if p.is_dir()):
        found += _check_models(model_dir)
    for export in [project / "export"] if (project / "export").exists() else []:
        if not (export / "export.json").is_file() or not (export / "saved_model.pb").is_file():
            found.append(f"{export}: an export folder without its export.json or saved_model.pb")
    for output in [project / "preds"] if (project / "preds").exists() else []:
        try:
            _json(output / "predict.json")
        except (OSError, ValueError):
            found.append(f"{output}: a predictions folder without a whole predict.json")
    return found


# ------------------------------------------------------------------------------------------------ results


def _shards(project: Path) -> dict[str, str]:
    """Every shard of every dataset of the project: a digest of the examples it decodes to (deflated arrays
    inflated: ISA-L's deflate may pick other matches from one run to the next, the arrays are the same)."""
    import zlib

    import tensorflow as tf

    out = {}
    for shard in sorted(project.glob("datasets/*/tfrecords/*.tfrecord")):
        digest, meta = hashlib.sha256(), _json(shard.with_name(f".{shard.name}.meta.json"))
        for record in tf.data.TFRecordDataset(str(shard), meta.get("compression") or "").as_numpy_iterator():
            example = tf.train.Example.FromString(record)
            for key in sorted(example.features.feature):
                digest.update(key.encode())
                for value in example.features.feature[key].bytes_list.value:
                    try:
                        value = zlib.decompress(value)
                    except zlib.error:
                        pass
                    digest.update(value)
                digest.update(str(example.features.feature[key].int64_list.value).encode())
                digest.update(str(example.features.feature[key].float_list.value).encode())
        out[str(shard.relative_to(project))] = digest.hexdigest()
    return out


def _training(project: Path) -> dict[str, Any]:
    (run,) = [p for p in (project / "logs").iterdir() if (p / "run.json").exists()]
    with open(run / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return {
        "epochs": [int(r["epoch"]) for r in rows],
        "val_loss": float(rows[-1]["val_loss"]),
        "status": _json(run / "run.json")["status"],
    }


def _same_training(ours: dict, reference: dict) -> bool:
    return (
        ours["status"] == reference["status"] == "complete"
        and ours["epochs"] == reference["epochs"]
        and abs(ours["val_loss"] - reference["val_loss"]) <= LOSS_TOLERANCE * max(1.0, abs(reference["val_loss"]))
    )


def _evaluation(project: Path) -> dict[str, Any]:
    (scores,) = project.glob("logs/*/eval_val.json")
    return {k: v for k, v in _json(scores).items() if isinstance(v, (int, float))}


def _predictions(project: Path) -> dict[str, str]:
    return {p.name: _sha256(p) for p in sorted((project / "preds").iterdir()) if p.name != "predict.json"}


def _exported(project: Path) -> list[float]:
    """The exported model's outputs on fixed images (flattened, rounded)."""
    import numpy as np
    import tensorflow as tf

    model = tf.saved_model.load(str(project / "export"))
    serve = model.signatures["serving_default"]
    images = np.random.default_rng(0).integers(0, 255, size=(2, 32, 32, 3), dtype=np.uint8)
    out = serve(tf.constant(images))
    return [round(float(v), 4) for key in sorted(out) for v in np.asarray(out[key], np.float64).reshape(-1)[:64]]


def _close(ours: list[float], reference: list[float]) -> bool:
    return len(ours) == len(reference) and all(abs(a - b) <= 1e-4 for a, b in zip(ours, reference))


# ------------------------------------------------------------------------------------------------ skelgen itself

JOURNAL = ".skelgen-journal"


def _journals(project: Path) -> list[Path]:
    """skelgen's journals around ``project``: new's and add-dataset's, and update's (in .git)."""
    ws = project.parent
    return [*ws.rglob(JOURNAL), *ws.glob(".git/skelgen-update-journal")]


_STAMP = re.compile(r"^- \d{4}-\d\d-\d\d \d\d:\d\d: ", re.M)


def _git(folder: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True).stdout


def _workspace_state(project: Path) -> dict[str, Any]:
    """The workspace around ``project``: every file's digest (not .git; the changelog's dates left out), the
    commit subjects and ``git status``."""
    ws, files = project.parent, {}
    for path in sorted(ws.rglob("*")):
        rel = path.relative_to(ws)
        if rel.parts[0] == ".git" or not path.is_file():
            continue
        data = path.read_bytes()
        if path.name == "CHANGELOG.md":
            data = _STAMP.sub("- DATE: ", data.decode()).encode()
        files[str(rel)] = hashlib.sha256(data).hexdigest()
    return {
        "files": files,
        "commits": _git(ws, "log", "--format=%s").splitlines(),
        "status": _git(ws, "status", "--porcelain"),
    }


def workspace_violations(project: Path) -> list[str]:
    """After a kill: a half-done change of skelgen's must be covered by a journal (which the next command
    undoes); without one, every answers file is whole and the git tree clean. At the end: no journal, clean."""
    from skelgen_runtime.layout import PROJECT_ANSWERS

    ws = project.parent
    if _journals(project):
        return []
    found = []
    for answers in sorted([*ws.glob(f"*/{PROJECT_ANSWERS}"), *ws.glob("*/datasets/*/.copier-answers*.yml")]):
        try:
            import yaml

            if not isinstance(yaml.safe_load(answers.read_text()), dict):
                found.append(f"{answers}: not a whole answers file")
        except (OSError, ValueError) as err:
            found.append(f"{answers}: unreadable ({err})")
    status = _git(ws, "status", "--porcelain")
    if status.strip():
        found.append(f"{ws}: uncommitted changes and no journal to undo them: {status.strip()[:300]}")
    return found


def _committed(subject: str) -> Callable[[Path], bool]:
    def done(project: Path) -> bool:
        return _git(project.parent, "log", "-1", "--format=%s").startswith(subject) and not _journals(project)

    return done


# ------------------------------------------------------------------------------------------------ scenarios


@dataclass(frozen=True)
class Scenario:
    """A command, the state it starts from, how it is rerun and what it must end with."""

    name: str
    state: str  # a key of RAW (the sample images, not built), "built", "trained" or "generated" (a new project)
    framework: str
    command: list[str]
    rerun: list[str]
    result: Callable[[Path], Any]
    #: whether the command's work is done in a project (a kill after it finished needs no rerun)
    done: Callable[[Path], bool]
    same: Callable[[Any, Any], bool] = lambda a, b: a == b
    #: what is checked after each kill and at the end (default: the trusted files of the project)
    check: Callable[[Path], list[str]] = violations
    #: variables the command runs with, given the project
    env: Callable[[Path], dict[str, str]] = lambda project: {}


BUILD = ["datasets/build_shapes_to_tfrecord.py", "--shard-size", "8"]
BRATS_BUILD = ["datasets/build_brats_to_tfrecord.py", "--workers", "1", "--shard-size", "2"]
#: BraTS 2021 cases (four modalities and a label map as NIfTI files, as the organisers ship them), small volumes
BRATS_CASES, BRATS_SHAPE = 16, (64, 64, 48)


def _built(project: Path) -> bool:
    return any(project.glob("datasets/*/tfrecords/dataset_info.json"))


def _trained(project: Path) -> bool:
    records = [p / "run.json" for p in (project / "logs").glob("*") if (p / "run.json").is_file()]
    return any(_json(r).get("status") == "complete" for r in records)


def _evaluated(project: Path) -> bool:
    return any(project.glob("logs/*/eval_val.json"))


def _predicted(project: Path) -> bool:
    return (project / "preds" / "predict.json").is_file()


def _exported_done(project: Path) -> bool:
    return (project / "export" / "export.json").is_file()


def _scenario(name: str, state: str, framework: str, command: list[str], rerun: list[str] | None = None, **kw):
    return Scenario(name, state, framework, command, rerun or command, **kw)


PREDICT = ["predict.py", "--run", "latest", "--output", "preds"]
EXPORT = ["export.py", "--run", "latest", "--format", "saved_model", "--out", "export"]
#: what a job scheduler reruns: the same command with --resume auto (resumes the run it started, or starts it)
RESUME = ["train.py", *TINY, "--resume", "auto"]
SCENARIOS = [
    _scenario("build", "raw-build", "keras", [*BUILD, "--workers", "1"], result=_shards, done=_built),
    _scenario("build --workers 2", "raw-large", "keras", [*BUILD, "--workers", "2"], result=_shards, done=_built),
    _scenario("build --runner beam", "raw-build", "keras", [*BUILD, "--runner", "beam"], result=_shards, done=_built),
    _scenario("BraTS build", "brats", "keras", BRATS_BUILD, result=_shards, done=_built),
    _scenario(
        "train.py (keras)",
        "built",
        "keras",
        ["train.py", *TINY],
        RESUME,
        result=_training,
        done=_trained,
        same=_same_training,
    ),
    _scenario(
        "train.py (tf)",
        "built",
        "tf",
        ["train.py", *TINY],
        RESUME,
        result=_training,
        done=_trained,
        same=_same_training,
    ),
    _scenario(
        "evaluate.py", "trained", "keras", ["evaluate.py", "--run", "latest"], result=_evaluation, done=_evaluated
    ),
    _scenario("predict.py", "trained", "keras", PREDICT, result=_predictions, done=_predicted),
    _scenario("export.py", "trained", "keras", EXPORT, result=_exported, done=_exported_done, same=_close),
    _scenario(
        "skelgen new",
        "generated",
        "keras",
        ["-m", "skelgen", "new", "p2", "--task", "detection", "--workspace", "..", "--defaults"],
        result=_workspace_state,
        done=_committed("skelgen new p2"),
        check=workspace_violations,
    ),
    _scenario(
        "skelgen update",
        "outdated",
        "keras",
        ["-m", "skelgen", "update", "--to", "99.0.0"],
        result=_workspace_state,
        done=_committed("skelgen update: dataset shapes"),
        check=workspace_violations,
        env=lambda project: {"SKELGEN_TEMPLATE": str(project.parents[2] / "states" / "outdated-template")},
    ),
    _scenario(
        "add-dataset",
        "generated",
        "keras",
        ["-m", "skelgen", "add-dataset", "shapes"],
        result=_workspace_state,
        done=_committed("skelgen add-dataset shapes"),
        check=workspace_violations,
    ),
]


def _prepare(work: Path, state: str, framework: str) -> Path:
    """The project a scenario starts from, made once under ``work/states``."""
    from skelgen import api
    from skelgen_runtime.samples.shapes import write_shapes

    folder = work / "states" / f"{state}-{framework}"
    project = folder / "proj"
    done = folder.with_name(f"{folder.name}.complete")  # beside it: the folder may be a git workspace
    if done.exists():
        return project
    shutil.rmtree(folder, ignore_errors=True)
    if state == "generated":  # a workspace with one project, committed
        api.new_project(name="proj", task="segmentation", framework=framework, workspace=folder)
    elif state == "outdated":  # a project and a dataset of this template, a user edit; then a new template version
        _outdated(folder, framework)
    elif state == "brats":  # the cases outside the project (add-dataset --source), as a user keeps them
        from brats_build_memory import write_cases

        write_cases(folder / "raw", BRATS_CASES, shape=BRATS_SHAPE)
        project = api.new_project(name="proj", task="segmentation", framework=framework, workspace=folder).path
        api.add_dataset(name="brats", project=project, source=folder / "raw" / "BraTS2021_TrainingData")
    elif state in RAW:
        counts, size = RAW[state]
        project = api.new_project(name="proj", task="segmentation", framework=framework, workspace=folder).path
        api.add_dataset(name="shapes", project=project, sample_counts={"train": 0, "val": 0, "pred": 0})
        write_shapes(project / "datasets" / "shapes", task="segmentation", counts=counts, size=size)
    else:
        raw = _prepare(work, "raw", framework)
        shutil.copytree(raw.parent, folder, symlinks=True)
        _run(project, [*BUILD, "--workers", "1"])
        if state == "trained":
            _run(project, ["train.py", *TINY, "--set", "train.epochs=2"])
    done.touch()
    return project


#: the template changes of the release "skelgen update" brings (file, old text, new text), in both scaffolds
RELEASE = [
    ("template/project/train.py.jinja", '"""', '"""\n'),
    ("template/project/evaluate.py", "import", "# evaluation, as the template has it now\nimport"),
    ("template/project/.gitignore", "__pycache__/", "__pycache__/\n*.tmp"),
    (
        "template/dataset/datasets/build_{{dataset_name}}_to_tfrecord.py.jinja",
        "NAME = ",
        "# the dataset's name\nNAME = ",
    ),
]


def _outdated(folder: Path, framework: str) -> None:
    """A template repository (this checkout's template, tagged with this version), a project and its shapes
    dataset made from it and committed, a user's edit of a template-owned file; then the template's next
    version (99.0.0, :data:`RELEASE`), which the update brings."""
    from skelgen_runtime._version import __version__

    repo = folder.with_name(f"{folder.name.rsplit('-', 1)[0]}-template")
    shutil.rmtree(repo, ignore_errors=True)
    files = _git(HERE.parent, "ls-files", "-co", "--exclude-standard", "-z", "--", "copier.yml", "template")
    for rel in filter(None, files.split("\0")):
        if (HERE.parent / rel).is_file():
            (repo / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(HERE.parent / rel, repo / rel)
    ident = ["-c", "user.name=chaos", "-c", "user.email=chaos@localhost"]

    def tag(version: str) -> None:
        for args in (["add", "-A"], [*ident, "commit", "-qm", version], ["tag", f"v{version}"]):
            _git(repo, *args)

    _git(repo, "init", "-q", "-b", "main")
    tag(__version__)
    env = {"SKELGEN_TEMPLATE": str(repo)}
    _run(folder.parent, ["-m", "skelgen", "new", "proj", "--task", "segmentation", "--framework", framework,
                         "--workspace", folder.name, "--defaults"], env=env)  # fmt: skip
    project = folder / "proj"
    _run(project, ["-m", "skelgen", "add-dataset", "shapes"], env=env)
    evaluate = project / "evaluate.py"
    evaluate.write_text(evaluate.read_text() + "\n# my note\n")
    _git(folder, *ident, "commit", "-qam", "my note")
    for rel, old, new in [*RELEASE, ("copier.yml", f'default: "{__version__}"', 'default: "99.0.0"')]:
        text = (repo / rel).read_text()
        assert old in text, f"{old!r} not in {rel}"
        (repo / rel).write_text(text.replace(old, new, 1))
    tag("99.0.0")


def _run(
    project: Path, args: list[str], timeout: float = 900, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        python(*args), cwd=project, env=quiet_env(**(env or {})), capture_output=True, text=True, timeout=timeout
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed in {project}:\n{proc.stdout}\n{proc.stderr}")
    return proc


def _fresh(work: Path, scenario: Scenario, label: str) -> Path:
    source = _prepare(work, scenario.state, scenario.framework)
    folder = work / "trials" / f"{re.sub(r'[^a-z0-9]+', '-', scenario.name.lower()).strip('-')}-{label}"
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(source.parent, folder, symlinks=True)
    project = folder / "proj"
    if scenario.state in RAW:  # the copy's shards are fingerprinted by its own paths: none yet
        shutil.rmtree(project / "datasets" / "shapes" / "tfrecords", ignore_errors=True)
    return project


def _kill_at(project: Path, args: list[str], moment: float, env: dict[str, str]) -> float:
    """Start ``args``, SIGKILL its process group after ``moment`` seconds (or let it end first); its run time."""
    start = time.monotonic()
    proc = subprocess.Popen(
        python(*args),
        cwd=project,
        env=quiet_env(**env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        proc.wait(timeout=moment)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    return time.monotonic() - start


@dataclass
class Trial:
    moment: float
    finished_before_kill: bool
    reruns: int
    recovered: bool
    violations: list[str] = field(default_factory=list)


@dataclass
class Outcome:
    command: str
    reference_seconds: float
    trials: list[Trial]

    @property
    def row(self) -> dict[str, Any]:
        return {
            "command": self.command,
            "kills": sum(not t.finished_before_kill for t in self.trials),
            "recovered": sum(t.recovered for t in self.trials),
            "reruns": sum(t.reruns for t in self.trials),
            "violations": sum(len(t.violations) for t in self.trials),
            "seconds": round(self.reference_seconds, 1),
        }


def run_scenario(scenario: Scenario, work: Path, kills: int, rng: random.Random, say: Callable[[str], None]) -> Outcome:
    reference = _fresh(work, scenario, "reference")
    start = time.monotonic()
    _run(reference, scenario.command, env=scenario.env(reference))
    seconds = time.monotonic() - start
    expected = scenario.result(reference)
    trials = []
    for k in range(kills):
        project = _fresh(work, scenario, f"kill{k}")
        moment = rng.uniform(0.05, 0.95) * seconds
        ran = _kill_at(project, scenario.command, moment, scenario.env(project))
        finished = ran < moment
        found = [f"after the kill at {moment:.1f} s: {v}" for v in scenario.check(project.resolve())]
        reruns, recovered, said = 0, scenario.done(project), ""  # killed after its work was done: nothing to rerun
        while not recovered and reruns < 3:
            reruns += 1
            proc = subprocess.run(
                python(*scenario.rerun),
                cwd=project,
                env=quiet_env(**scenario.env(project)),
                capture_output=True,
                text=True,
            )
            recovered = proc.returncode == 0
            said = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-6:] if not recovered else ""
        found += [f"at the end: {v}" for v in scenario.check(project.resolve())]
        if _journals(project):
            found.append("at the end: a journal of skelgen's is left")
        if recovered and not scenario.same(scenario.result(project), expected):
            found.append(
                f"at the end: the result differs from the uninterrupted run's ({scenario.result(project)} vs {expected})"
            )
        if not recovered:
            found.append(f"not recovered after {reruns} reruns of {' '.join(scenario.rerun)}; the last said: {said}")
        trials.append(Trial(round(moment, 2), finished, reruns, recovered, found))
        say(
            f"  {scenario.name}: kill {k + 1}/{kills} at {moment:.1f} s of {seconds:.1f} s: "
            f"{'recovered' if recovered else 'NOT recovered'}, {len(found)} violations"
        )
        shutil.rmtree(project.parent, ignore_errors=True)
    return Outcome(scenario.name, seconds, trials)


def markdown(outcomes: list[Outcome], kills: int, seed: int) -> str:
    lines = [
        f"Chaos run of {_dt.datetime.now(_dt.timezone.utc):%Y-%m-%d %H:%M} UTC: {kills} SIGKILLs per command at seeded "
        f"random moments (seed {seed}), `python benchmarks/chaos.py --kills {kills}`.",
        "",
        "| command | kills | recovered | reruns | violations | uninterrupted s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for outcome in outcomes:
        r = outcome.row
        lines.append(
            f"| {r['command']} | {r['kills']} | {r['recovered']} | {r['reruns']} | {r['violations']} | {r['seconds']} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kills", type=int, default=20, help="SIGKILLs per command (default 20)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill moments (default 0)")
    parser.add_argument(
        "--only",
        nargs="+",
        metavar="NAME",
        help="commands to run (default all): " + ", ".join(s.name for s in SCENARIOS),
    )
    parser.add_argument(
        "--work", type=Path, default=None, help="where to keep the prepared projects (default: a temporary folder)"
    )
    parser.add_argument("--json", type=Path, default=None, help="write every trial as JSON here")
    parser.add_argument("--markdown", type=Path, default=None, help="write the table here")
    args = parser.parse_args(argv)
    chosen = [s for s in SCENARIOS if not args.only or s.name in args.only]
    unknown = set(args.only or ()) - {s.name for s in SCENARIOS}
    if unknown:
        parser.error(f"unknown command(s): {', '.join(sorted(unknown))}; known: {', '.join(s.name for s in SCENARIOS)}")
    import tempfile

    work = args.work or Path(tempfile.mkdtemp(prefix="skelgen-chaos-"))
    work.mkdir(parents=True, exist_ok=True)
    rng = random.Random(args.seed)
    outcomes = []
    for scenario in chosen:
        print(f"{scenario.name}: {args.kills} kills", flush=True)
        outcomes.append(run_scenario(scenario, work, args.kills, rng, lambda line: print(line, flush=True)))
    table = markdown(outcomes, args.kills, args.seed)
    print(table)
    if args.markdown:
        args.markdown.write_text(table)
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "kills": args.kills,
                    "seed": args.seed,
                    "rows": [o.row for o in outcomes],
                    "trials": {o.command: [asdict(t) for t in o.trials] for o in outcomes},
                },
                indent=2,
            )
        )
    bad = sum(o.row["violations"] for o in outcomes)
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
