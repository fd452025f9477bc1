"""``skelgen runs``: list, compare and plot two real training runs; its messages; its speed."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import copy_workspace, git, script, skelgen

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
    "train.epochs=2",
    "--set",
    "train.steps_per_epoch=3",
]
#: the second run differs from the first in exactly these two config values
CHANGED = {"model.base_filters": 8, "train.learning_rate": 0.01}


@pytest.fixture(scope="module")
def two_runs(built_projects, tmp_path_factory) -> tuple[Path, str, str]:
    """A committed workspace's project with two finished runs that differ in exactly :data:`CHANGED`,
    the second evaluated on val; returns the project and the two run ids, oldest first."""
    project = copy_workspace(built_projects, tmp_path_factory.mktemp("runs") / "ws")
    ids = []
    for extra in ([], [a for key, value in CHANGED.items() for a in ("--set", f"{key}={value}")]):
        out = script(project, "train.py", *TINY, *extra).stdout
        ids.append(next(line.split()[1] for line in out.splitlines() if line.startswith("run ")))
    script(project, "evaluate.py", "--run", ids[1])
    return project, ids[0], ids[1]


def _best(project: Path, run_id: str) -> tuple[float, int]:
    with open(project / "logs" / run_id / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    best = max(rows, key=lambda row: (float(row["val_miou"]), -int(row["epoch"])))
    return float(best["val_miou"]), int(best["epoch"])  # metrics.csv counts from 1


def test_training_records_provenance(two_runs) -> None:
    project, first, _ = two_runs
    record = json.loads((project / "logs" / first / "run.json").read_text())
    assert record["git_commit"] == git(project, "rev-parse", "HEAD").strip() and record["git_dirty"] is False
    assert (record["monitor"], record["monitor_mode"], record["seed"]) == ("val_miou", "max", 42)
    assert record["dataset"]["name"] == "shapes" and record["dataset"]["fingerprint"].startswith("sha256:")
    assert "train.py" in record["command"] and "--set" in record["command"]
    assert record["history"][0]["status"] == "running" and record["history"][-1]["status"] == "complete"


def test_runs_lists_newest_first_with_the_varying_keys(two_runs) -> None:
    project, first, second = two_runs
    listing = json.loads(skelgen("runs", "--json", "--project", str(project)).stdout)
    assert listing["varying"] == list(CHANGED)
    assert [r["id"] for r in listing["runs"]] == [second, first]
    assert listing["runs"][0]["params"] == CHANGED and listing["runs"][0]["status"] == "complete"
    for run in listing["runs"]:
        assert (run["best"], run["best_epoch"]) == pytest.approx(_best(project, run["id"]))
        assert run["dataset"] == "shapes" and run["epochs"] == 2 and run["duration_s"] > 0

    lines = skelgen("runs", cwd=project / "core").stdout.splitlines()  # any folder inside the project
    short = [key.rsplit(".", 1)[-1] for key in CHANGED]  # the last part of a key names its column where unique
    assert lines[0].split() == ["run", "status", "dataset", *short, "best", "val_miou", "duration"]
    assert [line.split()[0] for line in lines[1:]] == [second, first]
    assert lines[1].split()[3:5] == ["8", "0.01"]


def test_compare_shows_exactly_the_two_differing_values_and_the_metrics(two_runs) -> None:
    project, first, second = two_runs
    prefix = first[: first.rindex("-")]  # the time stamp alone: a unique prefix
    out = skelgen("runs", "compare", prefix, "latest", "--project", str(project)).stdout
    lines = out.splitlines()
    assert lines[0].split() == [first, second]
    config_rows = [line.split() for line in lines if line.startswith("  ") and "." in line.split()[0]]
    assert config_rows == [["model.base_filters", "4", "8"], ["train.learning_rate", "0.003", "0.01"]], out
    for row in ("best val_miou", "final epoch", "  val_loss", "eval val", "  miou"):
        assert any(line.startswith(row) for line in lines), (row, out)
    assert ["(weights)", "-", "best"] in [line.split() for line in lines]
    assert ["(data)", "-", "as", "trained"] in [line.split() for line in lines]

    data = json.loads(skelgen("runs", "compare", first, second, "--json", "--project", str(project)).stdout)
    assert data["differing"] == list(CHANGED)
    assert [r["id"] for r in data["runs"]] == [first, second]
    assert data["runs"][0]["config"] == {"model.base_filters": 4, "train.learning_rate": 0.003}
    assert data["runs"][1]["config"] == CHANGED
    with open(project / "logs" / second / "metrics.csv") as f:
        last = list(csv.DictReader(f))[-1]
    assert data["runs"][1]["final"]["val_miou"] == pytest.approx(float(last["val_miou"]))
    assert data["runs"][1]["final"]["epoch"] == 2
    assert (data["runs"][1]["best"], data["runs"][1]["best_epoch"]) == pytest.approx(_best(project, second))
    scores = json.loads((project / "logs" / second / "eval_val.json").read_text())
    assert data["runs"][1]["eval"]["val"]["miou"] == pytest.approx(scores["miou"]) and data["runs"][0]["eval"] == {}


def test_evaluating_a_run_on_a_rebuilt_dataset_writes_beside_and_says_so(two_runs, tmp_path: Path) -> None:
    """Scores of other records never replace the scores of the data the run trained on."""
    import shutil

    project, first, second = two_runs
    copy = tmp_path / "p"
    shutil.copytree(project, copy, symlinks=True)
    kept = (copy / "logs" / second / "eval_val.json").read_text()
    assert json.loads(kept)["dataset"]["as_trained"] is True and json.loads(kept)["weights"] == "best"
    script(copy, "datasets/build_shapes_to_tfrecord.py", "--max-examples", "6", "--workers", "1")
    proc = script(copy, "evaluate.py", "--run", second, "--weights", "final")
    fingerprint = json.loads((copy / "logs" / second / "run.json").read_text())["dataset"]["fingerprint"]
    written = [p for p in (copy / "logs" / second).glob("eval_val-*.json")]
    assert len(written) == 1 and "changed since run" in proc.stderr and written[0].name in proc.stderr
    assert (copy / "logs" / second / "eval_val.json").read_text() == kept
    result = json.loads(written[0].read_text())
    assert result["dataset"]["as_trained"] is False and result["dataset"]["fingerprint"] != fingerprint
    assert result["weights"] == "final" and result["examples"] == 6
    data = json.loads(skelgen("runs", "compare", first, second, "--json", "--project", str(copy)).stdout)
    sources = data["runs"][1]["eval_sources"]
    assert sources["val"] == {"weights": "best", "data": "as trained"}
    assert sources[written[0].stem[len("eval_") :]] == {"weights": "final", "data": "rebuilt"}


def test_plot_draws_one_curve_per_run(two_runs, tmp_path: Path) -> None:
    import numpy as np
    from PIL import Image

    from skelgen.runs import plot_runs
    from skelgen_runtime.curves import curves_figure

    project, first, second = two_runs
    out = tmp_path / "curves.png"
    proc = skelgen("runs", "plot", first, second, "--out", str(out), "--project", str(project))
    assert f"wrote {out}" in proc.stdout and "val_miou" in proc.stdout
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = np.asarray(Image.open(out).convert("RGB"))
    assert pixels.shape == (500, 800, 3)
    for colour in ((31, 119, 180), (255, 127, 14)):  # matplotlib's first two line colours
        assert (np.abs(pixels.astype(int) - colour).sum(axis=2) < 30).sum() > 200, colour

    plot = plot_runs(project=project, specs=[first, second], metric="val_loss", out=tmp_path / "loss.svg")
    assert plot.plotted == [first, second] and plot.missing == [] and plot.path.stat().st_size > 1000
    fig = curves_figure({"a": [(1, 0.5), (2, 0.6)], "b": [(1, 0.4), (2, 0.7)]}, metric="val_miou")
    lines = fig.axes[0].get_lines()
    assert len(lines) == 2 and len({line.get_color() for line in lines}) == 2


# --- messages -----------------------------------------------------------------------------------


def _one_error_line(proc: subprocess.CompletedProcess) -> str:
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


def test_run_spec_messages(two_runs, tmp_path: Path) -> None:
    project, first, second = two_runs
    where = ["--project", str(project)]

    typo = first.replace("-demo", "-dmeo")
    proc = skelgen("runs", "compare", typo, second, *where, check=False)
    line = _one_error_line(proc)
    assert proc.returncode == 1 and f"no run {typo!r}" in line and f"did you mean {first!r}?" in line
    assert f"known runs, newest first: {second}, {first}" in line

    common = os.path.commonprefix([first, second])
    proc = skelgen("runs", "plot", common, "--out", str(tmp_path / "x.png"), *where, check=False)
    line = _one_error_line(proc)
    assert proc.returncode == 1 and "is ambiguous" in line and first in line and second in line
    assert "give more of the id" in line

    proc = skelgen(
        "runs", "plot", "latest", "--metric", "val_mio", "--out", str(tmp_path / "x.png"), *where, check=False
    )
    assert proc.returncode == 2 and "did you mean 'val_miou'?" in _one_error_line(proc)
    proc = skelgen("runs", "plot", "latest", "--out", str(tmp_path / "x.gif"), *where, check=False)
    assert proc.returncode == 2 and ".png" in _one_error_line(proc)
    (tmp_path / "file").write_text("")
    proc = skelgen("runs", "plot", "latest", "--out", str(tmp_path / "file" / "x.png"), *where, check=False)
    assert proc.returncode == 2 and "cannot write" in _one_error_line(proc)
    (tmp_path / "file").unlink()
    proc = skelgen("runs", "compare", "latest", *where, check=False)
    assert proc.returncode == 2 and "two runs or more" in _one_error_line(proc)
    proc = skelgen("runs", "compare", "latest", second, *where, check=False)
    assert proc.returncode == 2 and "given twice" in _one_error_line(proc)
    assert not list(tmp_path.iterdir()), "a refused plot writes nothing"


def test_no_runs_yet(built_projects, tmp_path: Path) -> None:
    project = tmp_path / "p"
    shutil.copytree(built_projects("segmentation", "keras"), project, symlinks=True)
    hint = skelgen("runs", "--project", str(project))
    assert hint.stdout.strip() == f"no runs in {project / 'logs'} yet; train one with python train.py"
    assert json.loads(skelgen("runs", "--json", cwd=project).stdout)["runs"] == []
    proc = skelgen("runs", "compare", "latest", "abc", cwd=project, check=False)
    assert proc.returncode == 1 and "no runs in" in _one_error_line(proc) and "python train.py" in proc.stderr
    proc = skelgen("runs", cwd=tmp_path, check=False)
    assert proc.returncode == 1 and "--project DIR" in _one_error_line(proc)


def test_listing_is_fast_and_imports_no_tensorflow(two_runs) -> None:
    project, _, _ = two_runs
    probe = (
        "import sys, time; t0 = time.process_time(); from skelgen.cli import cli;"
        "from click.testing import CliRunner; r = CliRunner().invoke(cli, ['runs', '--project', sys.argv[1]]);"
        "heavy = [m for m in ('tensorflow', 'keras', 'numpy', 'matplotlib') if m in sys.modules];"
        "print(r.exit_code, heavy, round(time.process_time() - t0, 3))"
    )
    out = subprocess.run([sys.executable, "-c", probe, str(project)], capture_output=True, text=True, check=True).stdout
    assert out.startswith("0 [] "), out
    assert float(out.split()[-1]) < 2.0, out


def _fake_run(project: Path, run_id: str, record: str, config: str | None, metrics: str | None) -> None:
    """A run folder as older releases or a crash leave it: only the files given."""
    folder = project / "logs" / run_id
    folder.mkdir(parents=True)
    (folder / "run.json").write_text(record)
    if config is not None:
        (folder / "config.yaml").write_text(config)
    if metrics is not None:
        (folder / "metrics.csv").write_text(metrics)


def test_listing_reads_old_crashed_and_unreadable_runs(tmp_path: Path) -> None:
    from skelgen.runs import list_runs, listing_text

    project = tmp_path / "p"
    project.mkdir()
    (project / ".copier-answers.yml").write_text("_commit: v0.1.0\nscaffold: project\ntask: detection\n")
    old = '{"status": "complete", "started": "2025-01-01T12:00:00+00:00"}'  # no monitor: the task default
    csv_text = "epoch,loss,val_loss,seconds\n0,2.0,1.5,10\n1,1.0,0.9,12\n2,0.8,1.1,11\n"
    _fake_run(project, "20250101-120000-a-9", old, "train:\n  lr: 0.1\n", csv_text)
    _fake_run(project, "20250101-120000-a-10", old, "train:\n  lr: 0.2\n  extra: 1\n", csv_text)
    _fake_run(project, "20250101-120001-b", '{"status": "running"}', "train:\n  lr: 0.1\n", None)
    _fake_run(project, "20250101-120002-c", "{not json", None, None)

    # a run of this version: metrics.csv counts from 1 (run.json says so), the same epochs as the 0.2 run above
    new = '{"status": "complete", "started": "2025-01-01T12:00:03+00:00", "epoch_base": 1}'
    _fake_run(
        project,
        "20250101-120003-d",
        new,
        "train:\n  lr: 0.1\n",
        csv_text.replace("\n0,", "\n1,", 1).replace("\n1,1.0", "\n2,1.0").replace("\n2,0.8", "\n3,0.8"),
    )

    listing = list_runs(project=project)
    assert listing.runs[0].run_id == "20250101-120003-d"
    current = listing.runs[0]
    assert (current.best, current.best_epoch, current.final["epoch"]) == (0.9, 2, 3)
    listing = dataclasses.replace(listing, runs=listing.runs[1:])
    assert [s.run_id for s in listing.runs] == [
        "20250101-120002-c",
        "20250101-120001-b",
        "20250101-120000-a-10",
        "20250101-120000-a-9",
    ]
    assert listing.varying == ["train.lr", "train.extra"]
    crashed, running, ten, _ = listing.runs
    assert (ten.monitor, ten.monitor_mode, ten.best, ten.best_epoch, ten.duration_s) == ("val_loss", "min", 0.9, 2, 33)
    assert (running.status, running.best, running.duration_s) == ("running", None, None)
    assert (crashed.status, crashed.config) == ("unknown", {})
    table = listing_text(listing, width=200).splitlines()
    assert table[0].split() == ["run", "status", "dataset", "lr", "extra", "best", "val_loss", "duration"]
    assert table[3].split() == ["20250101-120000-a-10", "complete", "-", "0.2", "1", "0.9000", "(epoch", "2/3)", "33s"]

    # no wider than the terminal: config columns that do not fit are left out, and named
    narrow = listing_text(listing, width=76).splitlines()
    assert max(len(line) for line in narrow) <= 76, narrow
    assert narrow[0].split() == ["run", "status", "dataset", "lr", "best", "val_loss", "duration"]
    assert " ".join(narrow[5:]).startswith("1 more varying key not shown at this width: train.extra"), narrow
    assert listing_text(listing, width=200).splitlines() == table


@pytest.mark.parametrize(
    "commit, base",
    [
        ("v0.2.0", 0),
        ("0.2.3-4-gabc1234", 0),
        ("v0.1.0", 0),
        ("v0.3.0", 1),
        ("0.3.0.dev2", 1),
        ("1.0.0", 1),
        ("abc1234", 1),
        (None, 1),
    ],
)
def test_metrics_csv_counts_epochs_from_1_except_in_projects_of_older_templates(commit, base) -> None:
    """The training output counts epochs from 1 and so does metrics.csv; a 0.1/0.2 project, whose own
    tests read 0-based rows, keeps that until it is updated."""
    from skelgen_runtime.runs import epoch_base

    assert epoch_base(commit) == base
