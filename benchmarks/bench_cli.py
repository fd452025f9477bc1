"""CLI rows: ``skelgen --help``, ``new`` and ``add-dataset`` against a bare click app and ``copier.run_copy``; a
config mistake answered by ``train.py`` against ``python -c "import tensorflow"``.

Every side is a fresh process (what a user waits for), repetitions interleaved.
"""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from common import Row, Settings, interleave, median, python, quiet_env, run_timed

__all__ = ["cli_rows"]

BARE_CLICK = r'''
import click

@click.group()
def cli():
    """A bare click app with one command."""

@cli.command()
@click.argument("name")
def new(name):
    """Make NAME."""

if __name__ == "__main__":
    cli()
'''

BARE_COPIER = r"""
import json, sys, warnings
import copier

warnings.simplefilter("ignore")
copier.run_copy(sys.argv[1], sys.argv[2], data=json.loads(sys.argv[3]), defaults=True, quiet=True,
                overwrite=False, vcs_ref=sys.argv[4])
"""


def cli_rows(settings: Settings) -> list[Row]:
    from skelgen import store

    work = settings.work / "cli"
    shutil.rmtree(work, ignore_errors=True)  # projects of an earlier run in a kept --work folder
    work.mkdir(parents=True)
    skelgen = str(Path(sys.executable).parent / "skelgen")
    bare_click, bare_copier = work / "bare_click.py", work / "bare_copier.py"
    bare_click.write_text(BARE_CLICK)
    bare_copier.write_text(BARE_COPIER)
    source = store.source()  # the template repository skelgen renders from, at its version's tag
    template, ref = source.src, source.ref
    counter = itertools.count()
    workspace = work / "ws"
    run_timed([skelgen, "new", "first", "--workspace", str(workspace), "--defaults"])  # the workspace itself
    project = workspace / "first"
    raw = work / "raw"
    (raw / "data/train").mkdir(parents=True, exist_ok=True)

    def new_skelgen() -> float:
        return run_timed([skelgen, "new", f"p{next(counter)}", "--workspace", str(workspace), "--defaults"])

    def new_copier() -> float:
        name = f"c{next(counter)}"
        data = {"scaffold": "project", "project_name": name, "task": "segmentation", "framework": "keras"}
        return run_timed(python(bare_copier, template, workspace / name, json.dumps(data), ref))

    def add_skelgen() -> float:
        return run_timed(
            [
                skelgen,
                "add-dataset",
                f"d{next(counter)}",
                "--preset",
                "custom",
                "--source",
                str(raw),
                "--project",
                str(project),
                "--defaults",
            ]
        )

    def add_copier() -> float:
        data = {
            "scaffold": "dataset",
            "task": "segmentation",
            "dataset_name": f"d{next(counter)}",
            "preset": "custom",
            "class_names": [],
            "reader": "ImagesMasksSource",
            "source": str(raw),
        }
        return run_timed(python(bare_copier, template, project, json.dumps(data), ref))

    # train.py's answer to a config typo: the schema's snapshot written once (as the first train.py does), then
    # the mistake reported before TensorFlow is imported
    snapshot = (
        "import sys; from pathlib import Path; sys.path.insert(0, sys.argv[1]); "
        "from skelgen_runtime.project import load_project; from skelgen_runtime.config.precheck import write_snapshot; "
        "root = Path(sys.argv[1]); assert write_snapshot(root, load_project(root).config)"
    )
    run_timed([sys.executable, "-c", snapshot, str(project)], env=quiet_env())

    def config_typo() -> float:
        start = time.perf_counter()
        proc = subprocess.run(
            python(project / "train.py", "--set", "train.lerning_rate=0.1"), cwd=project, capture_output=True, text=True
        )
        seconds = time.perf_counter() - start
        assert proc.returncode == 2 and "did you mean 'learning_rate'" in proc.stderr, proc.stderr
        return seconds

    typos = interleave(
        {"skelgen": config_typo, "tensorflow": lambda: run_timed(python("-c", "import tensorflow"), env=quiet_env())},
        settings.reps,
    )
    helps = interleave(
        {"skelgen": lambda: run_timed([skelgen, "--help"]), "click": lambda: run_timed(python(bare_click, "--help"))},
        settings.reps * 3,
    )
    news = interleave({"skelgen": new_skelgen, "copier": new_copier}, settings.reps)
    adds = interleave({"skelgen": add_skelgen, "copier": add_copier}, settings.reps)
    return [
        Row(
            "cli",
            "skelgen --help vs a bare click app --help",
            median(helps["skelgen"]),
            median(helps["click"]),
            "s",
            False,
            1 / 1.3,
            {"ours": helps["skelgen"], "baseline": helps["click"]},
            "target: at most 1.3x the bare app's time (ratio >= 0.77)",
        ),
        Row(
            "cli",
            "train.py reporting a config typo vs python -c 'import tensorflow'",
            median(typos["skelgen"]),
            median(typos["tensorflow"]),
            "s",
            False,
            5.0,
            {"ours": typos["skelgen"], "baseline": typos["tensorflow"]},
            "target: at most 0.2x TensorFlow's import (ratio >= 5); checked against the schema's snapshot",
        ),
        Row(
            "cli",
            "skelgen new vs copier.run_copy of the same answers",
            median(news["skelgen"]),
            median(news["copier"]),
            "s",
            False,
            None,
            {"ours": news["skelgen"], "baseline": news["copier"]},
            "skelgen also validates, writes the workspace index and changelog, and commits",
        ),
        Row(
            "cli",
            "skelgen add-dataset (custom --source) vs copier.run_copy",
            median(adds["skelgen"]),
            median(adds["copier"]),
            "s",
            False,
            None,
            {"ours": adds["skelgen"], "baseline": adds["copier"]},
        ),
    ]
