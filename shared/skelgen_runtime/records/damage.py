"""Damaged shards named: what a truncated or bit-flipped TFRecord file is called when TensorFlow stops on it.

TensorFlow stops reading a damaged shard with ``DataLossError: corrupted record at 12345`` (a CRC that
does not match) or ``truncated record at ...``, naming neither the file nor the dataset. A job that reads
records runs inside :func:`explain_damaged_shards`: on such an error it checks the shards of the splits it
read, record by record (:func:`~skelgen_runtime.records.tfrecord.check_records`: both CRCs of every
record, as TensorFlow checks them), and stops with one line naming the first damaged shard, the record
and its byte offset, and the command that finds and rewrites damaged shards (the build's ``--verify``).
The check runs only after such an error, so reading whole shards costs nothing otherwise.

The build's ``--verify`` (:func:`forget_damaged`) hashes every shard an earlier build finished and compares
it with the SHA-256 that build recorded; a damaged shard (same size: a bit flipped) would otherwise be
reused, so its sidecar is removed and the build writes it again.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator, Sequence

from skelgen_runtime.errors import DatasetError, UserInputError
from skelgen_runtime.files import file_digest
from skelgen_runtime.layout import ProjectLayout
from skelgen_runtime.records.folder import Folder
from skelgen_runtime.records.info import DatasetInfo
from skelgen_runtime.records.tfrecord import check_records
from skelgen_runtime.records.writer import ShardPlan, completed, sidecar_name

__all__ = ["explain_damaged_shards", "find_damage", "forget_damaged", "repair_advice"]

#: what TensorFlow's readers say about a damaged file (TFRecord framing, the GZIP/ZLIB stream)
_SIGNS = ("corrupted record", "truncated record", "inflate", "compression", "data loss")


def repair_advice(info: DatasetInfo) -> str:
    """What finds and rewrites the damaged shards of ``info``'s dataset."""
    if ProjectLayout.is_project_records(info.folder):
        return (
            "find and rewrite the damaged shards with "
            f"python datasets/build_{info.folder.parent.name}_to_tfrecord.py --verify"
        )
    return "find and rewrite the damaged shards with the dataset's build script and --verify"


def find_damage(info: DatasetInfo, splits: Sequence[str]) -> list[tuple[Path, str]]:
    """The damaged shards of ``splits`` and what is wrong with each (a missing shard raises, naming it)."""
    found = []
    for split in splits:
        for shard in info.split_files(split):
            _, problem = check_records(shard, info.compression)
            if problem:
                found.append((shard, problem))
    return found


@contextlib.contextmanager
def explain_damaged_shards(info: DatasetInfo, splits: Sequence[str]) -> Iterator[None]:
    """Run a job that reads ``splits`` of ``info``'s dataset; turn TensorFlow's data-loss error into a
    :class:`DatasetError` naming the damaged shard (other errors, and a data loss no shard explains, go on)."""
    try:
        yield
    except Exception as err:
        text = str(err).lower()
        if type(err).__name__ != "DataLossError" and not any(sign in text for sign in _SIGNS[:2]):
            raise
        damaged = find_damage(info, [s for s in splits if s in info.data.get("splits", {})])
        if not damaged:
            raise
        (shard, problem), more = damaged[0], damaged[1:]
        also = (
            f"; {len(more)} more damaged ({', '.join(p.name for p, _ in more[:3])}{', ...' if len(more) > 3 else ''})"
        )
        raise DatasetError(
            f"shard {shard} is damaged: {problem}{also if more else ''}; {repair_advice(info)}"
        ) from None


def forget_damaged(
    folder: Folder, plans: list[ShardPlan], skip_bad: bool, compression: str | None, progress: bool
) -> tuple[int, list[tuple[str, str]]]:
    """Check each shard an earlier build finished against the SHA-256 it recorded (its sidecar, the same value
    as ``dataset_info.json``'s); forget the damaged ones (their sidecars removed), so they are written again.
    Returns how many shards were checked and the damaged ones with what is wrong (CRC-checked, record and byte)."""
    from tqdm import tqdm

    if folder.local_path is None:
        raise UserInputError(f"--verify reads every shard: verify a local folder, not {folder}")
    finished = [(plan, result) for plan in plans if (result := completed(plan, skip_bad, folder)) is not None]
    damaged = []
    bar = tqdm(
        total=sum(r.size for _, r in finished), unit="B", unit_scale=True, desc="verifying", disable=not progress
    )
    with bar:
        for plan, result in finished:
            if file_digest(plan.path) != result.sha256:
                _, problem = check_records(plan.path, compression)
                damaged.append((plan.path.name, problem or "its SHA-256 differs from the one its build recorded"))
                folder.remove(sidecar_name(plan.path.name))
            bar.update(result.size)
    return len(finished), damaged
