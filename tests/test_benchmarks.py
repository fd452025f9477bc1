"""The benchmark suite runs: ``benchmarks/run.py --quick`` on tiny data, every group, a row per comparison."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

from conftest import REPO


def test_benchmark_suite_runs_quick(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks/run.py"),
            "--quick",
            "--json",
            str(out),
            "--work",
            str(tmp_path / "work"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(out.read_text())
    rows = result["rows"]
    assert {r["group"] for r in rows} == {"cli", "build", "brats", "train", "pipeline", "models"}
    for row in rows:
        assert row["ours"] > 0 and row["baseline"] > 0 and math.isfinite(row["ratio"]), row
        if row["compare"] == "difference":
            assert row["ratio"] == round(row["ours"] - row["baseline"], 3), row
        assert row["met"] is None or row["met"] == (row["ratio"] >= row["target"]), row
    table = [line for line in proc.stdout.splitlines() if line.startswith("| ")]
    assert len(table) == len(rows) + 1  # the header and one line per row
