"""A killed ``skelgen new`` / ``add-dataset`` is undone by the next command: the journal of each step is on
disk before the step; a process that dies (SIGKILL, here sent by the process to itself at a chosen step)
leaves it behind, and the next command that writes there rolls the steps back (or forward, when the
command's commit had landed), says so, and does its own work."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from conftest import git, skelgen

#: a process that journals steps in a workspace, takes them, and is killed (SIGKILL) after step ``STOP``
KILLED = """
import os, signal, sys
from pathlib import Path
from skelgen.journal import Journal
from skelgen.gitutil import commit_paths

ws, stop = Path(sys.argv[1]), int(sys.argv[2])
journal = Journal(ws, command="skelgen new p2 --task segmentation").__enter__()
steps = [
    lambda: journal.created(ws / "p2").mkdir(),
    lambda: (ws / "p2" / "train.py").write_text("half"),
    lambda: journal.changing(ws / "README.md").write_text("rewritten index"),
    lambda: journal.committing(ws, [ws / "p2", ws / "README.md"], "skelgen new p2 (segmentation, keras)"),
    lambda: commit_paths(ws, [ws / "p2", ws / "README.md"], "skelgen new p2 (segmentation, keras)"),
]
for step in steps[:stop]:
    step()
for lock in sys.argv[3:]:  # what a git killed in the middle of the commit leaves behind
    (ws / ".git" / lock).write_text("")
os.kill(os.getpid(), signal.SIGKILL)
"""


def _workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    skelgen("new", "p1", "--task", "classification", "--workspace", str(ws), "--defaults")
    return ws


def _kill_after(ws: Path, steps: int, *locks: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(KILLED), str(ws), str(steps), *locks], capture_output=True
    )
    assert proc.returncode == -9, proc.stderr


def test_a_command_killed_half_way_is_undone_by_the_next_one(tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    readme, head = (ws / "README.md").read_text(), git(ws, "rev-parse", "HEAD").strip()
    _kill_after(ws, 3)  # the project half-rendered, the index rewritten, nothing committed
    assert (ws / ".skelgen-journal").is_dir() and (ws / "p2" / "train.py").exists()
    assert "?? .skelgen-journal/" not in git(ws, "status", "--porcelain")  # the workspace .gitignore names it

    done = skelgen("new", "p2", "--task", "segmentation", "--workspace", str(ws), "--defaults")
    note = done.stderr.strip().splitlines()[0]
    assert note.startswith("note: skelgen new p2 --task segmentation (process ") and note.endswith(
        f"was interrupted while it changed {ws}; what it had done was undone"
    ), done.stderr
    assert not (ws / ".skelgen-journal").exists() and (ws / "p2" / "train.py").read_text() != "half"
    assert git(ws, "status", "--porcelain") == "" and git(ws, "rev-parse", "HEAD~1").strip() == head
    assert "| [p2](p2/) | segmentation | keras | - |" in (ws / "README.md").read_text()
    assert (ws / "README.md").read_text() != readme


def test_a_kill_after_the_commit_is_rolled_forward_and_the_same_command_then_succeeds(tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    _kill_after(ws, 5)  # everything done and committed; only the journal was not removed yet
    committed = git(ws, "rev-parse", "HEAD").strip()
    done = skelgen("new", "p2", "--task", "segmentation", "--workspace", str(ws), "--defaults")
    assert "it had finished; its journal was removed" in done.stderr, done.stderr
    assert git(ws, "rev-parse", "HEAD").strip() == committed and (ws / "README.md").read_text() == "rewritten index"
    assert not (ws / ".skelgen-journal").exists()


def test_the_locks_of_a_git_killed_in_the_commit_are_removed_by_the_next_command(tmp_path: Path) -> None:
    """Killed while git commit held the index and the branch (found by the chaos harness: the next commands
    then failed with git's "remove the file manually"): undone or rolled forward, the locks it made go."""
    ws = _workspace(tmp_path)
    branch = git(ws, "symbolic-ref", "--short", "HEAD").strip()
    old = ws / ".git" / "refs" / "heads" / "old.lock"  # another process's, from before the command: it stays
    old.write_text("")
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    _kill_after(ws, 5, "index.lock", f"refs/heads/{branch}.lock", "HEAD.lock")  # the commit landed, then the kill
    done = skelgen("new", "p3", "--task", "segmentation", "--workspace", str(ws), "--defaults")
    assert "it had finished" in done.stderr, done.stderr
    assert [p.name for p in (ws / ".git").rglob("*.lock")] == ["old.lock"]
    ws = _workspace(tmp_path / "b")
    head = git(ws, "rev-parse", "HEAD").strip()
    _kill_after(ws, 4, "index.lock", f"refs/heads/{branch}.lock")  # killed in the commit: undone
    skelgen("new", "p2", "--task", "segmentation", "--workspace", str(ws), "--defaults")
    assert not list((ws / ".git").rglob("*.lock"))
    assert git(ws, "rev-parse", "HEAD~1").strip() == head and git(ws, "status", "--porcelain") == ""


def test_a_killed_add_dataset_is_undone_by_the_next_one_in_the_project(tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    project = ws / "p1"
    proc = subprocess.Popen(
        [sys.executable, "-m", "skelgen", "add-dataset", "shapes"],
        cwd=project,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    for line in proc.stderr or []:  # killed while it writes the sample images (its progress is on stderr)
        if line.startswith("generating"):
            break
    images = project / "datasets" / "shapes"
    deadline = time.monotonic() + 60
    while not any(p.suffix in (".png", ".jpg") for p in images.rglob("*")) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert proc.poll() is None, "add-dataset ended before it could be killed"
    proc.kill()
    proc.wait()
    assert (project / ".skelgen-journal").is_dir()
    again = skelgen("add-dataset", "shapes", cwd=project)
    assert "was interrupted while it changed" in again.stderr and "what it had done was undone" in again.stderr
    assert git(ws, "status", "--porcelain") == "" and not (project / ".skelgen-journal").exists()
    assert git(ws, "log", "-1", "--format=%s").startswith("skelgen add-dataset shapes (shapes) to p1")


def test_a_command_still_running_is_not_rolled_back_under_it(tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    hold = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from skelgen.journal import Journal;"
            "j = Journal(Path(sys.argv[1]), command='skelgen new slow').__enter__(); print('in', flush=True);"
            "time.sleep(60)",
            str(ws),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert (hold.stdout.readline() if hold.stdout else "").strip() == "in"
        busy = skelgen("new", "p3", "--task", "detection", "--workspace", str(ws), "--defaults", check=False)
        last = busy.stderr.strip().splitlines()[-1]
        assert busy.returncode == 75 and f"{ws} is being changed by process {hold.pid}" in last, busy.stderr
        assert last.endswith("wait for that command to finish, then run this one again") and not (ws / "p3").exists()
    finally:
        hold.kill()
        hold.wait()
    # the lock went with its process: the next command undoes the journal it left (nothing) and goes on
    done = skelgen("new", "p3", "--task", "detection", "--workspace", str(ws), "--defaults")
    assert "note: skelgen new slow (process " in done.stderr and git(ws, "status", "--porcelain") == ""


#: a process that starts an update's journal, changes the project as copier would, and is killed
KILLED_UPDATE = """
import os, signal, sys
from pathlib import Path
from skelgen.journal import Journal, update_journal

project = Path(sys.argv[1])
journal = Journal(project, command="skelgen update", home=update_journal(project.parent), undo_on_error=False)
journal.__enter__().restoring(project.parent, project)
(project / "train.py").write_text("half-merged")
(project / "core" / "new_module.py").write_text("made by the update")
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_killed_update_is_undone_to_the_last_commit_by_the_next_update(tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    project = ws / "p1"
    train = (project / "train.py").read_text()
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(KILLED_UPDATE), str(project)], capture_output=True)
    assert proc.returncode == -9, proc.stderr
    assert git(ws, "status", "--porcelain").split() == ["M", "p1/train.py", "??", "p1/core/new_module.py"]
    again = skelgen("update", cwd=project)  # up to date already: it only has the kill to undo
    note = again.stderr.strip().splitlines()[0]
    assert note.startswith("note: skelgen update (process ") and "it is back at its last commit" in note, note
    assert "files git did not track there were moved to " in note and note.endswith("(1 file)"), note
    assert (project / "train.py").read_text() == train and git(ws, "status", "--porcelain") == ""
    (rescued,) = (ws / ".git" / "skelgen-rescued").glob("*/p1/core/new_module.py")
    assert rescued.read_text() == "made by the update"  # moved aside, not deleted
    assert not (ws / ".git" / "skelgen-update-journal").exists()
