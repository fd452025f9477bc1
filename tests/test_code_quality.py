"""The habits that keep the code as it is: ruff's lint and format and mypy's types over the repository, as configured
in pyproject.toml (each rendered project's own lint is checked in tests/test_template.py)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import REPO

pytestmark = pytest.mark.lint


def test_ruff_finds_nothing() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "."], cwd=REPO, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_ruff_format_changes_nothing() -> None:
    """The code is as ``ruff format`` writes it (the template's hand-laid files excepted, pyproject.toml)."""
    proc = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--check", "--no-cache", "."], cwd=REPO, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_mypy_finds_nothing(tmp_path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path / "mypy")], cwd=REPO, capture_output=True, text=True
    )
    assert proc.returncode == 0 and "Success: no issues found" in proc.stdout, proc.stdout + proc.stderr


def test_the_repository_cites_public_sources_not_files_beside_it() -> None:
    """Facts the code relies on are cited where anyone can read them; nothing points outside the checkout."""
    tracked = subprocess.run(
        ["git", "-C", str(REPO), "ls-files", "-z"], capture_output=True, text=True, check=True
    ).stdout.split("\0")
    # the reference documents beside a checkout (spelt in pieces so that this file does not match itself)
    outside = tuple(
        name + suffix for name, suffix in (("../shared", "/"), ("FACTS", ".md"), ("DESIGN", ".md"), ("STYLE", ".md"))
    )
    found = []
    for rel in filter(None, tracked):
        path = REPO / rel
        if path.is_file() and path.suffix in (".py", ".md", ".jinja", ".yml", ".yaml", ".toml", ".txt", ""):
            text = path.read_text(errors="replace")
            found += [f"{rel}: {needle}" for needle in outside if needle in text]
    assert not found, found
