"""Atomicity as one rule: every file a later step trusts is written through ``skelgen_runtime.files``
(temporary file, fsync, rename, fsync of the folder). This test lists every write in the library, the
generator and the template (``open`` for writing, ``write_text``/``write_bytes``, ``save``/``save_weights``,
``json.dump``, ``shutil`` copies, renames) outside ``files.py`` and fails on each that carries no
``# write: CATEGORY`` mark (on its line or the line above) saying why it is not such a file."""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

#: why a write may stay outside the helpers
CATEGORIES = {
    "staged": "written inside a temporary file or staging folder that a files.* helper publishes whole",
    "picture": "a picture for people: no step reads it back",
    "lock": "a lock file: the lock is the kernel's, the content only names the holder",
    "memory": "an in-memory buffer, not a file",
    "private": "a process's own temporary copy, removed when it ends",
    "tensorflow": "TensorFlow writes its checkpoint under temporary names and renames it whole itself",
    "sample data": "the generated sample images, which the build reads and reports one by one if damaged",
    "journal": "the generator's journal restores the file if the command fails",
    "object store": "tf.io.gfile's rename on an object store: the copy appears under its name once complete",
    "test": "a generated project's test sandbox",
    "console log": "a process's console output, appended as it runs: for people (a sweep reads its last error line)",
}
_WRITE_MODES = set("wax+")
_ATTRS = {"write_text", "write_bytes", "save", "save_weights", "savez", "copyfile", "copy2", "copytree", "rename"}
#: receivers whose ``write_text`` is records.folder's Folder API, atomic by contract (atomic_write_text / gfile rename)
_FOLDERS = {"folder", "self.folder"}
_MARK = re.compile(r"#\s*write:\s*([a-z ]+?)\s*$")


_LINE_WRITE = re.compile(
    r"open\([^)]*['\"][rb]*[wax+][rb+]*['\"]|\.(write_text|write_bytes|save|save_weights|copyfile|copy2|copytree|rename)\("
    r"|os\.replace\(|json\.dump\("
)


def _writes(source: str) -> list[tuple[int, str]]:
    try:
        tree = ast.parse(source)
    except SyntaxError:  # a template file whose Jinja tags leave no valid Python: line by line
        return [
            (i, line.strip())
            for i, line in enumerate(source.splitlines(), 1)
            if _LINE_WRITE.search(line) and not line.lstrip().startswith("#") and "folder.write_text" not in line
        ]
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id == "open":
            mode = (
                node.args[1] if len(node.args) > 1 else next((k.value for k in node.keywords if k.arg == "mode"), None)
            )
            if isinstance(mode, ast.Constant) and isinstance(mode.value, str) and _WRITE_MODES & set(mode.value):
                found.append((node.lineno, f"open(..., {mode.value!r})"))
        elif isinstance(func, ast.Attribute):
            receiver = ast.unparse(func.value)
            if func.attr in _ATTRS and not (func.attr == "write_text" and receiver in _FOLDERS):
                found.append((node.lineno, f"{receiver}.{func.attr}()"))
            elif (func.attr, receiver) in {("replace", "os"), ("dump", "json"), ("dump", "yaml")}:
                found.append((node.lineno, f"{receiver}.{func.attr}()"))
    return found


def _mark(lines: list[str], lineno: int) -> str | None:
    for line in (lines[lineno - 1], lines[lineno - 2] if lineno > 1 else ""):
        match = _MARK.search(line)
        if match:
            return match.group(1)
    return None


def _sources() -> list[Path]:
    library = [p for p in (REPO / "shared" / "skelgen_runtime").rglob("*.py") if p.name != "files.py"]
    generator = [p for p in (REPO / "generator" / "skelgen").rglob("*.py") if "_template" not in p.parts]
    return sorted(library + generator)


def _template_python() -> list[tuple[Path, str]]:
    """The template's Python files with their Jinja tags blanked (so that ``ast`` reads them)."""
    out = []
    for path in sorted((REPO / "template").rglob("*")):
        if path.is_file() and (path.suffix == ".py" or path.name.endswith(".py.jinja")):
            text = re.sub(r"{%-?.*?-?%}", "", path.read_text(), flags=re.S)
            out.append((path, re.sub(r"{{.*?}}", "X", text)))
    return out


def test_every_write_of_a_trusted_file_goes_through_the_helpers() -> None:
    unmarked, unknown, seen = [], [], 0
    for path, source in [(p, p.read_text()) for p in _sources()] + _template_python():
        lines = source.splitlines()
        for lineno, what in _writes(source):
            seen += 1
            category = _mark(lines, lineno)
            where = f"{path.relative_to(REPO)}:{lineno}: {what}"
            if category is None:
                unmarked.append(where)
            elif category not in CATEGORIES:
                unknown.append(f"{where} (# write: {category})")
    assert seen > 30, "the scan finds the library's writes"  # it looks where the writes are
    assert not unknown, "unknown write categories (known: " + ", ".join(CATEGORIES) + "):\n" + "\n".join(unknown)
    assert not unmarked, (
        "writes that bypass skelgen_runtime.files (use atomic_write_text / atomic_path / publish_dir, or mark why "
        "the file is not one a later step trusts with '# write: CATEGORY'):\n" + "\n".join(unmarked)
    )


def test_the_scan_sees_the_ways_a_file_is_written() -> None:
    source = (
        "open(p, 'w')\nopen(p, mode='ab')\np.write_text(t)\np.write_bytes(b)\nmodel.save(p)\nm.save_weights(p)\n"
        "shutil.copyfile(a, b)\nos.replace(a, b)\njson.dump(d, f)\nfolder.write_text('x', t)\nopen(p)\n"
    )
    assert [line for line, _ in _writes(source)] == [1, 2, 3, 4, 5, 6, 7, 8, 9]


def test_an_atomic_write_leaves_the_old_file_or_the_new_one(tmp_path: Path) -> None:
    from skelgen_runtime.files import TMP_MARK, atomic_path, atomic_write_text, publish_dir

    target = tmp_path / "run.json"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")  # write: test
        raise RuntimeError("killed while writing")
    assert target.read_text() == "old" and not [p for p in os.listdir(tmp_path) if TMP_MARK in p]
    with atomic_path(tmp_path / "model.weights.h5") as tmp:
        assert tmp.name.endswith(".weights.h5") and tmp.parent == tmp_path  # Keras picks the format by it
        tmp.write_bytes(b"w")  # write: test
    assert (tmp_path / "model.weights.h5").read_bytes() == b"w"
    out, staging = tmp_path / "export", tmp_path / ".export.staging"
    for content in ("first", "second"):
        staging.mkdir()
        (staging / "model.tflite").write_text(content)  # write: test
        publish_dir(staging, out)
        assert (out / "model.tflite").read_text() == content and not staging.exists()
    assert sorted(os.listdir(tmp_path)) == ["export", "model.weights.h5", "run.json"]
