"""The chaos harness in the suite: each long command killed at seeded random moments (a few per command,
``benchmarks/chaos.py``), rerun the way the README says, with every invariant checked after each kill and
at the end; the README shows a full run (20 kills per command)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow

#: the commands and kills per command of the suite's run ("build --workers 2" needs 230 MB of images: the full run)
KILLS = {
    "build": 3,
    "build --runner beam": 1,
    "BraTS build": 2,
    "train.py (keras)": 2,
    "train.py (tf)": 1,
    "evaluate.py": 1,
    "predict.py": 1,
    "export.py": 1,
    "skelgen new": 2,
    "skelgen update": 2,
    "add-dataset": 2,
}


def test_no_kill_leaves_a_half_written_file_and_every_command_recovers(tmp_path: Path) -> None:
    rows = []
    for seed, (command, kills) in enumerate(KILLS.items()):
        out = tmp_path / f"chaos-{seed}.json"
        proc = subprocess.run(
            [
                sys.executable,
                str(REPO / "benchmarks" / "chaos.py"),
                "--kills",
                str(kills),
                "--seed",
                str(seed),
                "--only",
                command,
                "--work",
                str(tmp_path / "work"),
                "--json",
                str(out),
            ],
            capture_output=True,
            text=True,
            timeout=1200,
        )
        report = json.loads(out.read_text())
        rows += report["rows"]
        trials = report["trials"][command]
        assert proc.returncode == 0, json.dumps(trials, indent=1) + proc.stderr[-2000:]
        assert len(trials) == kills and all(t["recovered"] and not t["violations"] for t in trials), trials
    assert [r["command"] for r in rows] == list(KILLS) and sum(r["violations"] for r in rows) == 0
    assert sum(r["kills"] for r in rows) >= 12, rows  # most trials were killed before the command ended
