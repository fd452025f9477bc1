"""BraTS (2018 to 2024+) and MSD Task01_BrainTumour: replicas -> records -> train/evaluate/predict.

Every replica is generated here with the real folder and file names of its release (as the Synapse and
MSD archives extract; the BraTS papers and challenge pages describe the labels), tiny
volumes (24x24x16 voxels of 1 x 1 x 1.2 mm) and the release's own label ids. Expected training ids,
channel order and evaluation regions are written out in this file from those public descriptions,
not taken from the library; Dice and HD95 are recomputed here with NumPy and SciPy (``cdist`` over surface voxels).
"""

from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import make_project, script, skelgen

nib = pytest.importorskip("nibabel")
tf = pytest.importorskip("tensorflow")

SHAPE = (24, 24, 16)  # NIfTI (i, j, k); records hold (D, H, W) = (k, j, i)
AFFINE = np.array([[-1.0, 0, 0, 119.0], [0, -1.0, 0, 119.0], [0, 0, 1.2, -70.0], [0, 0, 0, 1]])
SPACING_DHW = (1.2, 1.0, 1.0)
#: every modality's brain values lie in [code, code + 50): the channel order can be read off them
CODES = {"t1": 100, "t1ce": 200, "t2": 300, "flair": 400}
CANONICAL = ("t1", "t1ce", "t2", "flair")
CLASSES = ("background", "necrotic tumor core", "peritumoral edema", "enhancing tumor")
#: BraTS 2024 post-treatment glioma: 1 NETC, 2 SNFH, 3 ET, 4 RC (BraTS-2024-Metrics@9a0ab9c metrics_GLI.py)
POST_CLASSES = (
    "background",
    "non-enhancing tumor core",
    "surrounding FLAIR hyperintensity",
    "enhancing tissue",
    "resection cavity",
)
#: training class names per release family
CLASSES_OF = {"old": CLASSES, "new": CLASSES, "msd": CLASSES, "post": POST_CLASSES}
#: file label id -> training id, per release family (canonical order: background, NCR, ED, ET)
TO_TRAIN = {
    "old": {0: 0, 1: 1, 2: 2, 4: 3},  # 2018-2021: 1 NCR/NET, 2 ED, 4 ET
    "new": {0: 0, 1: 1, 2: 2, 3: 3},  # 2023+: 1 NCR, 2 ED, 3 ET
    "msd": {0: 0, 1: 2, 2: 1, 3: 3},  # MSD: 1 edema, 2 non-enhancing, 3 enhancing
    "post": {0: 0, 1: 1, 2: 2, 3: 3, 4: 4},  # 2024 post-treatment glioma: its own ids
}
#: evaluation regions in each family's file ids (the BraTS challenge papers: WT, TC, ET)
REGIONS = {
    "old": {"WT": (1, 2, 4), "TC": (1, 4), "ET": (4,)},
    "new": {"WT": (1, 2, 3), "TC": (1, 3), "ET": (3,)},
    "msd": {"WT": (1, 2, 3), "TC": (2, 3), "ET": (3,)},
    "post": {"WT": (1, 2, 3), "TC": (1, 3), "NETC": (1,), "SNFH": (2,), "ET": (3,), "RC": (4,)},
}
OLD_TAGS = {"t1": "t1", "t1ce": "t1ce", "t2": "t2", "flair": "flair"}
NEW_TAGS = {"t1": "t1n", "t1ce": "t1c", "t2": "t2w", "flair": "t2f"}


# ---------------------------------------------------------------------------------------- replicas


def _brain() -> np.ndarray:
    i, j, k = np.meshgrid(*(np.arange(n) for n in SHAPE), indexing="ij")
    return ((i - 11.5) / 10) ** 2 + ((j - 11.5) / 10) ** 2 + ((k - 7.5) / 7) ** 2 <= 1


def _modality(rng, name: str, dtype) -> np.ndarray:
    values = CODES[name] + rng.integers(0, 50, SHAPE)
    return np.where(_brain(), values, 0).astype(dtype)


def _seg(rng, values: tuple[int, ...]) -> np.ndarray:
    """A tumour blob of the release's ids, every id present, background elsewhere."""
    i, j, k = np.meshgrid(*(np.arange(n) for n in SHAPE), indexing="ij")
    centre = rng.integers(8, 16, 3)
    blob = (i - centre[0]) ** 2 + (j - centre[1]) ** 2 + ((k - min(centre[2], 11)) * 1.2) ** 2 <= 20
    seg = np.where(blob, rng.choice(np.array(values[1:]), SHAPE), 0)
    seg[1, 1, 1 : 1 + len(values)] = values
    return seg.astype(np.uint8)


def _save(data: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(data, AFFINE), str(path))


class Replica(dict):
    """case id -> ``{"images": {canonical: array}, "seg": array | None}``, plus the release's family."""

    family = "old"


def write_case(
    folder: Path,
    case: str,
    sep: str,
    tags: dict,
    values,
    rng,
    *,
    labelled: bool = True,
    suffix: str = ".nii.gz",
    seg_name: str | None = None,
    dtype=np.int16,
    seg_dtype=np.uint8,
) -> dict:
    images = {}
    for canonical, tag in tags.items():
        images[canonical] = _modality(rng, canonical, dtype)
        _save(images[canonical], folder / case / f"{case}{sep}{tag}{suffix}")
    seg = seg_path = None
    if labelled:
        seg, seg_path = _seg(rng, values), folder / case / (seg_name or f"{case}{sep}seg{suffix}")
        _save(seg.astype(seg_dtype), seg_path)
    return {"images": images, "seg": seg, "seg_path": seg_path}


def make_brats2018(root: Path, year: int = 2018) -> Replica:
    rng, out = np.random.default_rng(year), Replica()
    prefix = "Brats18" if year == 2018 else "BraTS19"
    train = root / (f"MICCAI_BraTS_{year}_Data_Training")
    for grade, case in (("HGG", f"{prefix}_2013_2_1"), ("HGG", f"{prefix}_CBICA_AAB_1"), ("LGG", f"{prefix}_2013_0_1")):
        out[case] = write_case(train / grade, case, "_", OLD_TAGS, (0, 1, 2, 4), rng)
    (train / "survival_data.csv").write_text("BraTS19ID,Age,Survival\n")
    case = f"{prefix}_CBICA_AAM_1"
    out[case] = write_case(root / f"MICCAI_BraTS_{year}_Data_Validation", case, "_", OLD_TAGS, (), rng, labelled=False)
    return out


def make_brats2020(root: Path) -> Replica:
    rng, out = np.random.default_rng(2020), Replica()
    train = root / "MICCAI_BraTS2020_TrainingData"
    for n in (1, 2):
        case = f"BraTS20_Training_{n:03d}"
        out[case] = write_case(train, case, "_", OLD_TAGS, (0, 1, 2, 4), rng, dtype=np.float32, seg_dtype=np.float32)
    # case 355 as published: uncompressed files and a label file named after something else
    out["BraTS20_Training_355"] = write_case(
        train,
        "BraTS20_Training_355",
        "_",
        OLD_TAGS,
        (0, 1, 2, 4),
        rng,
        suffix=".nii",
        seg_name="W39_1998.09.19_Segm.nii",
        dtype=np.float32,
    )
    (train / "name_mapping.csv").write_text("Grade,BraTS_2020_subject_ID\n")
    (train / "survival_info.csv").write_text("Brats20ID,Age,Survival_days,Extent_of_Resection\n")
    case = "BraTS20_Validation_001"
    out[case] = write_case(
        root / "MICCAI_BraTS2020_ValidationData", case, "_", OLD_TAGS, (), rng, labelled=False, dtype=np.float32
    )
    return out


def make_brats2021(
    root: Path, cases=("BraTS2021_00000", "BraTS2021_00002", "BraTS2021_00003"), unlabelled=("BraTS2021_00001",)
) -> Replica:
    rng, out = np.random.default_rng(2021), Replica()
    for case in cases:
        out[case] = write_case(
            root / "RSNA_ASNR_MICCAI_BraTS2021_TrainingData_16July2021", case, "_", OLD_TAGS, (0, 1, 2, 4), rng
        )
    for case in unlabelled:
        out[case] = write_case(
            root / "RSNA_ASNR_MICCAI_BraTS2021_ValidationData", case, "_", OLD_TAGS, (), rng, labelled=False
        )
    return out


def make_brats2023(root: Path, cohort: str = "GLI") -> Replica:
    rng, out = np.random.default_rng(2023), Replica()
    out.family = "new"
    train = root / f"ASNR-MICCAI-BraTS2023-{cohort}-Challenge-TrainingData"
    for n in (0, 2, 3):
        case = f"BraTS-{cohort}-{n:05d}-000"
        out[case] = write_case(train, case, "-", NEW_TAGS, (0, 1, 2, 3), rng)
    case = f"BraTS-{cohort}-00001-000"
    out[case] = write_case(
        root / f"ASNR-MICCAI-BraTS2023-{cohort}-Challenge-ValidationData", case, "-", NEW_TAGS, (), rng, labelled=False
    )
    return out


def _post_treatment_seg(rng) -> np.ndarray:
    """Nested shells around a random centre, inside out: resection cavity 4, enhancing tissue 3,
    non-enhancing core 1, FLAIR hyperintensity 2 (each a compact lesion well above 20 voxels)."""
    i, j, k = np.meshgrid(*(np.arange(n) for n in SHAPE), indexing="ij")
    centre = rng.integers(10, 14, 3)
    r2 = (i - centre[0]) ** 2 + (j - centre[1]) ** 2 + ((k - min(centre[2], 8)) * 1.2) ** 2
    seg = np.select([r2 <= 6, r2 <= 12, r2 <= 20, r2 <= 36], [4, 3, 1, 2], 0)
    return seg.astype(np.uint8)


def make_brats2024(
    root: Path,
    cases=("BraTS-GLI-02073-100", "BraTS-GLI-02073-101", "BraTS-GLI-02074-100"),
    unlabelled=("BraTS-GLI-02075-100",),
    training: str = "BraTS2024-GLI-PostTreatment-TrainingData",
) -> Replica:
    """The post-treatment glioma release: 2023 naming with time points 1YY, labels 1..4 (4 = cavity)."""
    rng, out = np.random.default_rng(2024), Replica()
    out.family = "post"
    for case in cases:
        out[case] = write_case(root / training, case, "-", NEW_TAGS, (), rng, labelled=False)
        seg = _post_treatment_seg(rng)
        out[case].update(seg=seg, seg_path=root / training / case / f"{case}-seg.nii.gz")
        _save(seg, out[case]["seg_path"])
    for case in unlabelled:
        out[case] = write_case(
            root / "BraTS2024-GLI-PostTreatment-ValidationData", case, "-", NEW_TAGS, (), rng, labelled=False
        )
    return out


MSD_CHANNELS = ("flair", "t1", "t1ce", "t2")  # FLAIR, T1w, t1gd, T2w


def make_msd(root: Path, train=("BRATS_001", "BRATS_002", "BRATS_003"), test=("BRATS_485",)) -> Replica:
    rng, out = np.random.default_rng(17), Replica()
    out.family = "msd"
    task = root / "Task01_BrainTumour"
    (task / "labelsTr").mkdir(parents=True)
    for folder, names, labelled in (("imagesTr", train, True), ("imagesTs", test, False)):
        (task / folder).mkdir(parents=True, exist_ok=True)
        for case in names:
            images = {m: _modality(rng, m, np.float32) for m in MSD_CHANNELS}
            _save(np.stack([images[m] for m in MSD_CHANNELS], axis=-1), task / folder / f"{case}.nii.gz")
            seg = _seg(rng, (0, 1, 2, 3)) if labelled else None
            seg_path = task / "labelsTr" / f"{case}.nii.gz" if labelled else None
            if labelled:
                _save(seg, seg_path)
            out[case] = {"images": images, "seg": seg, "seg_path": seg_path}
            (task / folder / f"._{case}.nii.gz").write_bytes(b"\x00\x05\x16\x07 AppleDouble")  # macOS junk
    (task / "labelsTr" / "._BRATS_001.nii.gz").write_bytes(b"\x00\x05\x16\x07")
    meta = {
        "name": "BRATS",
        "tensorImageSize": "4D",
        "release": "2.0 04/05/2018",
        "modality": {"0": "FLAIR", "1": "T1w", "2": "t1gd", "3": "T2w"},
        "labels": {"0": "background", "1": "edema", "2": "non-enhancing tumor", "3": "enhancing tumour"},
        "numTraining": len(train),
        "numTest": len(test),
        "training": [{"image": f"./imagesTr/{c}.nii.gz", "label": f"./labelsTr/{c}.nii.gz"} for c in train],
        "test": [f"./imagesTs/{c}.nii.gz" for c in test],
    }
    (task / "dataset.json").write_text(json.dumps(meta, indent=4))
    (root / "._Task01_BrainTumour").write_bytes(b"\x00\x05\x16\x07")
    return out


# ------------------------------------------------------------------------------------------- helpers


def build(raw: Path, out: Path, *args: str, val_fraction: float = 0.2):
    """The generated build script's code path, in this process (one worker: no spawn), with its
    ``--release`` option and no class names (the release's own)."""
    from skelgen_runtime.records.build import main
    from skelgen_runtime.sources import BratsSource

    return main(
        dataset="brats",
        default_source=raw,
        out_dir=out,
        schema_task="segmentation",
        make_source=lambda root, release: BratsSource(root, val_fraction=val_fraction, release=release),
        argv=["--workers", "1", *args],
        extra_options=BratsSource.build_options,
    )


def records(out: Path) -> dict[str, dict]:
    """case id -> decoded record (NumPy), over every split, plus ``split``."""
    from skelgen_runtime.records.info import load_info
    from skelgen_runtime.records.reader import read_split
    from skelgen_runtime.schemas.volume import SCHEMA

    info = load_info(out)
    found = {}
    for split in info.data["splits"]:
        for ex in read_split(info, SCHEMA, split, training=False):
            item = {k: v.numpy() for k, v in ex.items()}
            found[item["case_id"].decode()] = {**item, "split": split}
    return found


def _lut(family: str) -> np.ndarray:
    lut = np.full(256, 99, np.uint8)
    for source, train in TO_TRAIN[family].items():
        lut[source] = train
    return lut


def check_records(replica: Replica, out: Path, release: str) -> dict:
    info = json.loads((out / "dataset_info.json").read_text())
    assert (info["schema"], info["schema_version"], info["compression"]) == ("volume_segmentation", 2, None)
    assert info["source_info"]["release"] == release
    assert [e["name"] for e in info["label_map"]] == list(CLASSES_OF[replica.family])
    assert [e["source_id"] for e in info["label_map"]] == [
        s for s, _ in sorted(TO_TRAIN[replica.family].items(), key=lambda kv: kv[1])
    ]
    got = records(out)
    assert sorted(got) == sorted(replica)
    for case, expected in replica.items():
        record = got[case]
        assert record["modalities"].decode() == ",".join(CANONICAL)
        assert tuple(record["shape"]) == (*SHAPE[::-1], 4)
        np.testing.assert_allclose(record["spacing"], SPACING_DHW, rtol=1e-6)
        np.testing.assert_allclose(record["affine"], AFFINE, atol=1e-5)
        assert record["release"].decode().startswith(release)
        for c, name in enumerate(CANONICAL):  # canonical order, every value kept
            np.testing.assert_array_equal(record["image"][..., c], np.swapaxes(expected["images"][name], 0, 2))
        if expected["seg"] is None:
            assert record["split"] == "pred" and "label" not in record
        else:
            assert record["split"] in ("train", "val")
            want = np.swapaxes(_lut(replica.family)[expected["seg"]], 0, 2)
            np.testing.assert_array_equal(record["label"][..., 0], want)
            assert set(np.unique(record["label"])) == set(TO_TRAIN[replica.family].values())
    return info


# ------------------------------------------------------------------------------------ each release


@pytest.mark.parametrize("year", [2018, 2019])
def test_brats_2018_2019_hgg_lgg(tmp_path: Path, year: int) -> None:
    replica = make_brats2018(tmp_path / "raw", year)
    build(tmp_path / "raw", tmp_path / "out")
    info = check_records(replica, tmp_path / "out", f"brats{year}")
    assert info["splits"]["pred"]["count"] == 1 and info["splits"]["pred"]["labelled"] is False


def test_brats_2020_with_misnamed_case_355(tmp_path: Path) -> None:
    replica = make_brats2020(tmp_path / "raw")
    build(tmp_path / "raw", tmp_path / "out")
    check_records(replica, tmp_path / "out", "brats2020")
    assert records(tmp_path / "out")["BraTS20_Validation_001"]["dtype"] == b"float32"


def test_brats_2021(tmp_path: Path) -> None:
    replica = make_brats2021(tmp_path / "raw")
    report = build(tmp_path / "raw", tmp_path / "out")
    check_records(replica, tmp_path / "out", "brats2021")
    assert report.counts["train"] + report.counts["val"] == 3 and report.counts["val"] >= 1


@pytest.mark.parametrize("cohort", ["GLI", "SSA", "MEN", "MET", "PED"])
def test_brats_2023_cohorts(tmp_path: Path, cohort: str) -> None:
    replica = make_brats2023(tmp_path / "raw", cohort)
    build(tmp_path / "raw", tmp_path / "out")
    check_records(replica, tmp_path / "out", "brats2023")
    assert records(tmp_path / "out")[f"BraTS-{cohort}-00000-000"]["release"] == f"brats2023-{cohort.lower()}".encode()


def test_msd_task01_4d_files_dataset_json_and_resource_forks(tmp_path: Path) -> None:
    replica = make_msd(tmp_path / "raw")
    build(tmp_path / "raw", tmp_path / "out")
    info = check_records(replica, tmp_path / "out", "msd-task01")
    assert info["splits"]["pred"]["count"] == 1
    # --source may also be the task folder itself
    build(tmp_path / "raw" / "Task01_BrainTumour", tmp_path / "out2")
    assert sorted(records(tmp_path / "out2")) == sorted(replica)


def test_brats_2024_post_treatment_glioma(tmp_path: Path) -> None:
    replica = make_brats2024(tmp_path / "raw")
    build(tmp_path / "raw", tmp_path / "out")
    info = check_records(replica, tmp_path / "out", "brats2024-gli")  # 5 classes, file ids 0..4 kept
    assert info["num_classes"] == 5 and info["source_info"]["release_detected"] is True
    assert info["source_info"]["regions"] == {k: list(v) for k, v in REGIONS["post"].items()}
    assert info["source_info"]["challenge"] == "GLI2024"


def test_post_treatment_detection_and_release_override(tmp_path: Path, capsys) -> None:
    from skelgen_runtime.errors import DatasetError
    from skelgen_runtime.sources import BratsSource, LabelMap

    # glioma cases named -000 whose first label file holds 4 (the cavity) are post-treatment
    renamed = tmp_path / "renamed"
    make_brats2024(renamed, cases=("BraTS-GLI-00000-000", "BraTS-GLI-00001-000"), unlabelled=())
    assert BratsSource(renamed).release.key == "brats2024-gli"
    # pre-treatment (-000, labels 1..3) beside post-treatment (-1YY) glioma cases: the post-treatment labels
    mixed = tmp_path / "mixed"
    make_brats2023(mixed)
    make_brats2024(mixed, cases=("BraTS-GLI-00005-100",), unlabelled=())
    source = BratsSource(mixed)
    assert source.release.key == "brats2024-gli" and source.label_map.names == POST_CLASSES
    assert "regions (file ids): WT = 1+2+3; TC = 1+3; NETC = 1; SNFH = 2; ET = 3; RC = 4" in source.summary()
    # a cavity label in a 2023 SSA case: refused, with the way out
    raw = tmp_path / "ssa"
    replica = make_brats2023(raw, "SSA")
    seg_path = replica["BraTS-SSA-00002-000"]["seg_path"]
    seg = replica["BraTS-SSA-00002-000"]["seg"].copy()
    seg[2, 2, 2] = 4
    _save(seg, seg_path)
    error = _fails(raw, tmp_path / "out", capsys)
    assert "label values [4] are not BraTS 2023+ labels" in error and "--release brats2024-gli" in error
    build(raw, tmp_path / "out", "--release", "brats2024-gli")
    got = records(tmp_path / "out")["BraTS-SSA-00002-000"]
    assert got["release"] == b"brats2024-gli" and got["label"][2, 2, 2, 0] == 4  # (D, H, W) = (k, j, i)
    info = json.loads((tmp_path / "out" / "dataset_info.json").read_text())
    assert info["source_info"]["release_detected"] is False and info["num_classes"] == 5
    # --release must name its files alike; a label map must have the release's class count
    with pytest.raises(DatasetError, match=r"--release brats2021: .* named as BraTS 2023\+ cases"):
        BratsSource(raw, release="brats2021")
    with pytest.raises(DatasetError, match=r"has 5 classes but the label map .* lists 4"):
        BratsSource(renamed, LabelMap(CLASSES))


def test_paediatric_2024_labels_are_read_with_release_brats2024_ped_and_scored_as_ped2025(
    tmp_path: Path, capsys
) -> None:
    """The 2024+ paediatric ids (1 ET, 2 NETC, 3 CC, 4 ED) come in 2023's file names: a 4 in a PED case
    names --release brats2024-ped; read so, the dataset records its classes and the PED2025 scorer."""
    raw = tmp_path / "ped"
    replica = make_brats2023(raw, "PED")
    seg = replica["BraTS-PED-00002-000"]["seg"].copy()
    seg[2, 2, 2] = 4
    _save(seg, replica["BraTS-PED-00002-000"]["seg_path"])
    error = _fails(raw, tmp_path / "out", capsys)
    assert "4 is edema of BraTS 2024+ paediatric: build with --release brats2024-ped" in error, error
    build(raw, tmp_path / "out", "--release", "brats2024-ped")
    info = json.loads((tmp_path / "out" / "dataset_info.json").read_text())
    assert [e["name"] for e in info["label_map"]] == [
        "background",
        "enhancing tumor",
        "non-enhancing tumor",
        "cystic component",
        "edema",
    ]
    assert (info["source_info"]["release"], info["source_info"]["challenge"]) == ("brats2024-ped", "PED2025")
    assert records(tmp_path / "out")["BraTS-PED-00002-000"]["label"][2, 2, 2, 0] == 4


def test_splits_are_a_deterministic_holdout_by_case_id(tmp_path: Path) -> None:
    from skelgen_runtime.sources import BratsSource, LabelMap

    raw = tmp_path / "raw"
    make_brats2021(raw, cases=tuple(f"BraTS2021_{n:05d}" for n in range(10)), unlabelled=())
    source = BratsSource(raw, LabelMap(CLASSES))
    val = [i.key for i in source.items("val")]
    assert 1 <= len(val) < 10 and source.splits() == ["train", "val"]
    assert val == [i.key for i in BratsSource(raw, LabelMap(CLASSES)).items("val")]
    # adding cases keeps the earlier cases where they were
    make_brats2021(raw, cases=tuple(f"BraTS2021_{n:05d}" for n in range(10, 14)), unlabelled=())
    bigger = {i.key for i in BratsSource(raw, LabelMap(CLASSES)).items("val")}
    assert set(val) <= bigger
    assert BratsSource(raw, LabelMap(CLASSES), val_fraction=0).splits() == ["train"]


def test_folds_partition_the_labelled_cases_and_a_fold_reads_its_own(tmp_path: Path) -> None:
    from skelgen_runtime.errors import ConfigError, DatasetError
    from skelgen_runtime.records.info import load_info
    from skelgen_runtime.records.reader import read_split
    from skelgen_runtime.schemas.volume import SCHEMA
    from skelgen_runtime.sources.brats_cases import folds

    ids = [f"BraTS2021_{n:05d}" for n in range(12)]
    assigned = folds(ids, 5)
    assert assigned == folds(list(reversed(ids)), 5)  # deterministic, whatever the order cases are listed in
    sizes = sorted(list(assigned.values()).count(f) for f in range(5))
    assert sizes == [2, 2, 2, 3, 3]  # 12 cases in 5 folds: sizes differ by at most one
    make_brats2021(tmp_path / "raw", cases=tuple(ids[:6]), unlabelled=("BraTS2021_00100",))
    build(tmp_path / "raw", tmp_path / "out")
    info = load_info(tmp_path / "out")
    recorded = info.data["source_info"]["folds"]
    labelled = {c for s in ("train", "val") for c in info_cases(info, s)}
    assert recorded["k"] == 5 and set(recorded["cases"]) == labelled == set(ids[:6])  # pred cases are in none
    seen = []
    for k in range(5):
        fold = info.with_fold(k)
        train = {e["case_id"].numpy().decode() for e in read_split(fold, SCHEMA, "train", training=True)}
        val = {e["case_id"].numpy().decode() for e in read_split(fold, SCHEMA, "val", training=False)}
        assert not train & val and train | val == labelled, k
        assert (fold.count("train"), fold.count("val")) == (len(train), len(val)) and val
        assert fold.count("pred") == 1
        seen += sorted(val)
    assert sorted(seen) == sorted(labelled)  # every labelled case is validated exactly once
    with pytest.raises(ConfigError, match=r"data.fold: fold 5 is outside the dataset's 5 folds: choose 0 to 4"):
        info.with_fold(5)
    del info.data["source_info"]["folds"]  # a dataset built before folds were recorded
    with pytest.raises(DatasetError, match=r"records no cross-validation folds .*rebuild the dataset"):
        info.with_fold(0)


def info_cases(info, split: str) -> list[str]:
    from skelgen_runtime.records.reader import read_split
    from skelgen_runtime.schemas.volume import SCHEMA

    return [e["case_id"].numpy().decode() for e in read_split(info, SCHEMA, split, training=False)]


def test_one_case_folder_and_mixed_releases(tmp_path: Path) -> None:
    from skelgen_runtime.errors import DatasetError
    from skelgen_runtime.sources import BratsSource, LabelMap

    make_brats2021(tmp_path / "a", cases=("BraTS2021_00000",), unlabelled=())
    case = tmp_path / "a" / "RSNA_ASNR_MICCAI_BraTS2021_TrainingData_16July2021" / "BraTS2021_00000"
    assert [i.key for i in BratsSource(case, LabelMap(CLASSES)).items("train")] == ["BraTS2021_00000"]
    make_brats2023(tmp_path / "a")
    with pytest.raises(DatasetError, match=r"mixes cases of several releases") as err:
        BratsSource(tmp_path / "a", LabelMap(CLASSES))
    assert "BraTS 2021 (e.g." in str(err.value) and "BraTS 2023+ (e.g." in str(err.value)
    (tmp_path / "empty" / "HGG").mkdir(parents=True)
    with pytest.raises(DatasetError, match=r"no BraTS cases found under .*empty"):
        BratsSource(tmp_path / "empty", LabelMap(CLASSES))


# ------------------------------------------------------------------------------------- bad inputs


def _fails(raw: Path, out: Path, capsys, *args: str) -> str:
    with pytest.raises(SystemExit) as exit_:
        build(raw, out, *args)
    assert exit_.value.code != 0
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("error:")
    # nothing half-written counts as done: no dataset_info.json, no temporary files, every shard complete
    assert not (out / "dataset_info.json").exists()
    assert not out.exists() or not [p for p in out.iterdir() if ".tmp-" in p.name]
    for shard in out.glob("*.tfrecord"):
        meta = json.loads((out / f".{shard.name}.meta.json").read_text())
        assert meta["size"] == shard.stat().st_size
    return error


@pytest.fixture
def raw2021(tmp_path: Path) -> tuple[Path, Path]:
    raw = tmp_path / "raw"
    make_brats2021(raw)
    return raw, raw / "RSNA_ASNR_MICCAI_BraTS2021_TrainingData_16July2021"


def test_missing_modality_names_case_and_file_and_is_skippable(raw2021, tmp_path: Path, capsys) -> None:
    raw, train = raw2021
    (train / "BraTS2021_00002" / "BraTS2021_00002_flair.nii.gz").unlink()
    error = _fails(raw, tmp_path / "out", capsys)
    assert "BraTS2021_00002" in error and "flair (BraTS2021_00002_flair.nii.gz) is missing" in error
    assert "--skip-bad" in error
    report = build(raw, tmp_path / "out", "--skip-bad")
    out = capsys.readouterr().out
    assert "skipped 1 bad example:" in out and "BraTS2021_00002" in out
    info = json.loads((tmp_path / "out" / "dataset_info.json").read_text())
    assert info["skipped"][0]["file"] == str(train / "BraTS2021_00002") and "flair" in info["skipped"][0]["reason"]
    assert report.counts["train"] + report.counts.get("val", 0) == 2


def test_training_case_without_seg(raw2021, tmp_path: Path, capsys) -> None:
    raw, train = raw2021
    (train / "BraTS2021_00003" / "BraTS2021_00003_seg.nii.gz").unlink()
    error = _fails(raw, tmp_path / "out", capsys)
    assert "training case BraTS2021_00003 has no seg label file" in error
    assert str(train / "BraTS2021_00003" / "BraTS2021_00003_seg.nii.gz") in error


def test_modalities_of_different_shapes(raw2021, tmp_path: Path, capsys) -> None:
    raw, train = raw2021
    path = train / "BraTS2021_00000" / "BraTS2021_00000_t2.nii.gz"
    _save(np.zeros((24, 24, 15), np.int16), path)
    error = _fails(raw, tmp_path / "out", capsys)
    assert str(path) in error and "modalities differ in shape: t2 is 24x24x15 but t1 is 24x24x16" in error


def test_label_outside_the_release_set(raw2021, tmp_path: Path, capsys) -> None:
    raw, train = raw2021
    path = train / "BraTS2021_00003" / "BraTS2021_00003_seg.nii.gz"
    seg = np.asarray(nib.load(str(path)).dataobj).copy()
    seg[2, 2, 2] = 3  # a 2023 id in a 2021 file
    _save(seg, path)
    error = _fails(raw, tmp_path / "out", capsys)
    assert str(path) in error and "label values [3] are not BraTS 2021 labels" in error
    # fixed input: the rebuild finishes and keeps the shards the failed build completed
    seg[2, 2, 2] = 4
    _save(seg, path)
    build(raw, tmp_path / "out")
    assert (tmp_path / "out" / "dataset_info.json").is_file()


def test_empty_splits(tmp_path: Path, capsys) -> None:
    from skelgen_runtime.errors import DatasetError
    from skelgen_runtime.sources import BratsSource, LabelMap

    raw = tmp_path / "raw"
    make_msd(raw, train=(), test=("BRATS_485",))  # imagesTr holds only a ._ file
    with pytest.raises(DatasetError, match=r"imagesTr holds no cases .*training split would be empty"):
        BratsSource(raw, LabelMap(CLASSES))
    error = _fails(raw, tmp_path / "out", capsys)
    assert "imagesTr holds no cases" in error
    raw2 = tmp_path / "raw2"
    make_brats2021(raw2, unlabelled=())
    error = _fails(raw2, tmp_path / "out2", capsys, "--splits", "train", "pred")
    assert "split 'pred'" in error and "is empty" in error


# ------------------------------------------------------------------------------- metrics, predict


def _surface(mask: np.ndarray) -> np.ndarray:
    """Mask voxels with a face neighbour outside the mask or the volume (written out, no SciPy)."""
    padded = np.pad(mask, 1)
    outside = np.zeros_like(mask)
    for axis in range(3):
        for step in (-1, 1):
            outside |= ~np.roll(padded, step, axis=axis)[1:-1, 1:-1, 1:-1]
    return mask & outside


def independent_scores(pred: np.ndarray, truth: np.ndarray, spacing) -> tuple[float, float]:
    from scipy.spatial.distance import cdist

    if not pred.any() and not truth.any():
        return 1.0, 0.0
    if not pred.any() or not truth.any():
        return 0.0, float(np.sqrt(sum((n * s) ** 2 for n, s in zip(pred.shape, spacing))))
    dice = 2 * (pred & truth).sum() / (pred.sum() + truth.sum())
    a = np.argwhere(_surface(pred)) * np.asarray(spacing)
    b = np.argwhere(_surface(truth)) * np.asarray(spacing)
    d = cdist(a, b)
    return float(dice), float(max(np.percentile(d.min(axis=1), 95), np.percentile(d.min(axis=0), 95)))


def test_dice_and_hd95_agree_with_an_independent_computation() -> None:
    from skelgen_runtime.metrics.volume import dice, hd95

    rng = np.random.default_rng(3)
    spacing = (2.0, 1.0, 0.5)
    for _ in range(6):
        truth = rng.random((14, 12, 10)) < 0.3
        pred = truth ^ (rng.random(truth.shape) < 0.1)
        want_dice, want_hd = independent_scores(pred, truth, spacing)
        assert dice(pred, truth) == pytest.approx(want_dice, abs=1e-12)
        assert hd95(pred, truth, spacing) == pytest.approx(want_hd, abs=1e-9)
    empty = np.zeros((240, 240, 155), bool)
    one = empty.copy()
    one[100, 100, 70] = True
    assert (dice(empty, empty), hd95(empty, empty, (1, 1, 1))) == (1.0, 0.0)
    assert dice(one, empty) == 0.0 and hd95(empty, one, (1, 1, 1)) == pytest.approx(373.13, abs=0.01)


def _config(*overrides: str):
    from conftest import library_config

    return library_config("segmentation", *overrides)


@pytest.mark.parametrize(
    "make,release",
    [(make_brats2021, "old"), (make_brats2023, "new"), (make_msd, "msd"), (make_brats2024, "post")],
    ids=["2021", "2023", "msd", "2024"],
)
def test_ground_truth_as_prediction_round_trips_and_scores_perfectly(
    tmp_path: Path, make, release, monkeypatch
) -> None:
    from test_surfels import deepmind_hd95

    from skelgen_runtime.metrics import surfels
    from skelgen_runtime.preprocessing.volume import case_dataset
    from skelgen_runtime.records.info import load_info
    from skelgen_runtime.tasks import volume_segmentation as task

    replica = make(tmp_path / "raw")
    out = tmp_path / "out"
    build(tmp_path / "raw", out)
    info = load_info(out)
    config = _config()
    labelled = [s for s in ("train", "val") if s in info.data["splits"]]
    pairs, perturbed = [], []
    for split in labelled:
        for case in case_dataset(config.data, info, split):
            case_id = case["case_id"].numpy().decode()
            truth = case["label"].numpy()[..., 0]
            item = task.predict_item(case, info)
            written = task.write_prediction(
                tmp_path / "pred" / f"{case_id}.nii.gz",
                truth,
                nifti_header=item["nifti_header"],
                affine=item["affine"],
                source_ids=item["source_ids"],
            )
            original = replica[case_id]["seg"]
            image = nib.load(str(written))
            assert np.asarray(image.dataobj).dtype == np.uint8
            np.testing.assert_array_equal(np.asarray(image.dataobj), original)  # voxel for voxel, file ids
            assert set(np.unique(image.dataobj)) == set(TO_TRAIN[release])
            np.testing.assert_array_equal(image.affine, nib.load(str(replica[case_id]["seg_path"])).affine)
            np.testing.assert_allclose(image.header.get_zooms()[:3], (1.0, 1.0, 1.2))
            pairs.append((case, truth))
            # a worse prediction: the tumour shifted by one slice
            perturbed.append((case, np.roll(truth, 1, axis=0), original))
    result = task.score_predictions(pairs, info)
    assert list(result["mean"]) == list(REGIONS[release])
    # lesion-wise parameters of the release's challenge: 2024 post-treatment GLI (penalty 337), else 2023 GLI (374)
    assert (result["challenge"]["key"], result["challenge"]["penalty"]) == (
        ("GLI2024", 337.0) if release == "post" else ("GLI", 374.0)
    )
    perfect = {
        "lesion_dice": 1.0,
        "lesion_hd95": 0.0,
        "dice": 1.0,
        "hd95": 0.0,
        "sensitivity": 1.0,
        "specificity": 1.0,
        "fp": 0,
        "fn": 0,
    }
    for case in result["per_case"]:
        for region in REGIONS[release]:
            assert {k: v for k, v in case[region].items() if k != "tp"} == perfect and case[region]["tp"] >= 1
    # the evaluator's numbers for a shifted prediction equal the independent ones, in the file's own ids:
    # Dice written out here, HD95 (full and lesion-wise) by DeepMind's surface-distance on the arrays in
    # NIfTI order with the header's spacing, as the 2023/2024 organisers' scripts compute it
    scored = task.score_predictions([(c, p) for c, p, _ in perturbed], info)
    lut = np.zeros(256, np.uint8)
    for source, train in TO_TRAIN[release].items():
        lut[train] = source
    for (case, pred, original), got in zip(perturbed, scored["per_case"]):
        pred_file_ids = np.swapaxes(lut[pred], 0, 2)  # back to NIfTI order and file ids
        for region, ids in REGIONS[release].items():
            p, t = np.isin(pred_file_ids, ids), np.isin(original, ids)
            assert got[region]["dice"] == pytest.approx(independent_scores(p, t, (1.0, 1.0, 1.2))[0], abs=1e-9)
            want = deepmind_hd95(p.T, t.T, (1.2, 1.0, 1.0), one_empty=result["challenge"]["penalty"])
            assert got[region]["hd95"] == pytest.approx(want, abs=1e-6)
    monkeypatch.setattr(surfels, "hd95", deepmind_hd95)  # every lesion's HD95 by DeepMind's code instead
    reference = task.score_predictions([(c, p) for c, p, _ in perturbed], info)
    for got, want in zip(scored["per_case"], reference["per_case"]):
        for region in REGIONS[release]:
            assert got[region]["lesion_hd95"] == pytest.approx(want[region]["lesion_hd95"], abs=1e-6)
    # a prediction of another shape is refused naming its case
    from skelgen_runtime.errors import UserInputError

    case, pred, _ = perturbed[0]
    with pytest.raises(UserInputError, match=rf"case {case['case_id'].numpy().decode()}: the prediction's shape"):
        task.score_predictions([(case, pred[1:])], info)
    csv_path = task.write_artifacts(scored, info, tmp_path, "val")[0]
    rows = list(csv.DictReader(open(csv_path)))
    assert [r["case_id"] for r in rows[:-1]] == [c["case_id"] for c in scored["per_case"]] and rows[-1][
        "case_id"
    ] == "mean"
    assert float(rows[-1]["WT_dice"]) == pytest.approx(scored["mean"]["WT"]["dice"], abs=1e-6)


def test_volume_pipeline_gives_slices_and_patches(tmp_path: Path) -> None:
    from skelgen_runtime.data.volumes import VolumePipeline
    from skelgen_runtime.preprocessing import volume
    from skelgen_runtime.records.info import load_info

    make_brats2021(tmp_path / "raw")
    build(tmp_path / "raw", tmp_path / "out", val_fraction=0)
    info = load_info(tmp_path / "out")
    cfg2d = _config(
        "data.image_size=[16,16]", "data.samples_per_case=3", "data.batch_size=3", "data.modalities=[flair,t1ce]"
    ).data
    x, y = next(iter(VolumePipeline(cfg2d, info, hooks=None).train_batches(seed=1)))
    assert x.shape == (3, 16, 16, 2) and y.shape == (3, 16, 16, 1) and y.dtype == tf.int32
    assert volume.model_input_shape(cfg2d, info) == (16, 16, 2) and volume.train_examples(cfg2d, info) == 9
    cfg3d = _config(
        "data.mode=3d", "model.name=unet3d", "data.patch_size=[8,32,16]", "data.samples_per_case=2", "data.batch_size=2"
    ).data
    x, y = next(iter(VolumePipeline(cfg3d, info, hooks=None).train_batches(seed=1)))
    assert x.shape == (2, 8, 32, 16, 4) and y.shape == (2, 8, 32, 16, 1)
    assert set(np.unique(y.numpy())) <= {0, 1, 2, 3, 255}  # 255: padding beyond the 24-voxel side
    # per-modality z-score over the brain: mean 0, std 1 inside, 0 outside
    case = next(iter(volume.case_dataset(cfg3d, info, "train")))
    image, brain = case["image"].numpy(), np.swapaxes(_brain(), 0, 2)
    np.testing.assert_allclose(image[brain].mean(axis=0), 0, atol=1e-4)
    np.testing.assert_allclose(image[brain].std(axis=0), 1, atol=1e-4)
    assert (image[~brain] == 0).all()


def test_montage_rows_per_modality_with_regions_coloured() -> None:
    from skelgen_runtime.viz_volume import montage

    rng = np.random.default_rng(0)
    image = np.swapaxes(np.stack([_modality(rng, m, np.int16) for m in CANONICAL], -1), 0, 2).astype(np.float32)
    label = np.swapaxes(_lut("old")[_seg(rng, (0, 1, 2, 4))], 0, 2)
    colors = ((0, 0, 0), (255, 0, 0), (0, 255, 0), (255, 255, 0))
    picture = montage(image, label, CANONICAL, colors, slices=4)
    assert picture.shape[0] == 5 * 24 and picture.dtype == np.uint8  # 4 modalities + labels row
    last_row = picture[4 * 24 :]
    for colour in colors[1:]:
        assert (last_row == colour).all(axis=-1).any()


# ---------------------------------------------------------------------------------- the project


def test_add_dataset_brats_trains_3d_and_2d_evaluates_and_writes_nifti(tmp_path: Path) -> None:
    from skelgen_runtime.sources.brats import holdout

    raw = tmp_path / "raw"
    cases = ("BraTS2021_00000", "BraTS2021_00002", "BraTS2021_00003")
    assert len(holdout(list(cases), 0.2)) == 1  # two training cases, one validation case
    replica = make_brats2021(raw, cases=cases)
    project = make_project(tmp_path / "ws")
    skelgen("add-dataset", "brats", "--source", str(raw), cwd=project)
    assert (project / "configs" / "brats_3d.yaml").is_file() and (project / "configs" / "brats_2d.yaml").is_file()
    script(project, "datasets/build_brats_to_tfrecord.py", "--workers", "2")
    info = json.loads((project / "datasets/brats/tfrecords/dataset_info.json").read_text())
    assert {s: v["count"] for s, v in info["splits"].items()} == {"train": 2, "val": 1, "pred": 1}

    preview = tmp_path / "preview"
    script(project, "datasets/tfrecord2image_brats_format.py", "--split", "val", "--num", "2", "--out", str(preview))
    assert (preview / "grid.png").is_file() and len(list(preview.glob("BraTS2021_*.png"))) == 1

    tiny = [
        "--set",
        "train.epochs=1",
        "--set",
        "data.batch_size=2",
        "--set",
        "data.samples_per_case=1",
        "--set",
        "model.base_filters=4",
        "--set",
        "model.depth=2",
        "--set",
        "data.eval_batch_size=4",
    ]
    out = script(
        project, "train.py", "--config", "configs/brats_3d.yaml", "--set", "data.patch_size=[16,16,16]", *tiny
    ).stdout
    run_id = next(line.split()[1] for line in out.splitlines() if line.startswith("run "))
    with open(project / "logs" / run_id / "metrics.csv") as f:
        assert [row["epoch"] for row in csv.DictReader(f)] == ["1"]

    shown = script(project, "evaluate.py", "--run", run_id, "--split", "val").stdout
    assert "mean_dice=" in shown and "HD95" in shown
    scores = json.loads((project / "logs" / run_id / "eval_val.json").read_text())
    assert [c["case_id"] for c in scores["per_case"]] == list(holdout(list(cases), 0.2))
    assert set(scores["mean"]) == {"WT", "TC", "ET"} and scores["regions"] == {"WT": [1, 2, 3], "TC": [1, 3], "ET": [3]}
    for region in scores["mean"].values():
        assert 0 <= region["dice"] <= 1 and 0 <= region["hd95"] <= 40
    # the removal of small components tried region by region on val, recorded for predict.py
    chosen = json.loads((project / "logs" / run_id / "postprocessing.json").read_text())
    assert (chosen["chosen_on"], chosen["weights"]) == ("val", "best") and chosen["plan"] == scores["postprocessing"][
        "plan"
    ]
    assert [s["region"] for s in chosen["steps"]] == ["WT", "TC", "ET"] and "post-processing chosen:" in shown
    rows = list(csv.DictReader(open(project / "logs" / run_id / "eval_val_cases.csv")))
    metrics = ["lesion_dice", "lesion_hd95", "dice", "hd95", "sensitivity", "specificity", "tp", "fp", "fn"]
    assert list(rows[0]) == ["case_id", *(f"{r}_{m}" for r in ("WT", "TC", "ET") for m in metrics)]

    predictions = tmp_path / "pred"
    script(project, "predict.py", "--run", run_id, "--split", "pred", "--output", str(predictions))
    written = nib.load(str(predictions / "BraTS2021_00001.nii.gz"))
    source = nib.load(str(raw / "RSNA_ASNR_MICCAI_BraTS2021_ValidationData/BraTS2021_00001/BraTS2021_00001_t1.nii.gz"))
    assert written.shape == SHAPE and np.array_equal(written.affine, source.affine)
    assert set(np.unique(written.dataobj)) <= {0, 1, 2, 4}
    # predict.py applies the run's recorded post-processing: a plan removing every tumour leaves none
    (project / "logs" / run_id / "postprocessing.json").write_text(json.dumps({"plan": {"WT": 1e9}}))
    script(project, "predict.py", "--run", run_id, "--split", "pred", "--output", str(tmp_path / "pred-post"))
    assert not np.asarray(nib.load(str(tmp_path / "pred-post" / "BraTS2021_00001.nii.gz")).dataobj).any()
    assert json.loads((tmp_path / "pred-post" / "predict.json").read_text())["postprocess"] == {"WT": 1e9}
    (project / "logs" / run_id / "postprocessing.json").write_text("{not json")
    damaged = script(
        project, "predict.py", "--run", run_id, "--split", "pred", "--output", str(tmp_path / "p3"), check=False
    )
    errors = [line for line in damaged.stderr.splitlines() if line.startswith("error:")]
    assert damaged.returncode != 0 and len(errors) == 1 and "postprocessing.json is damaged" in errors[0], (
        damaged.stderr
    )
    (project / "logs" / run_id / "postprocessing.json").unlink()
    # a plan naming a region the release does not have is refused before any case is predicted
    config = project / "logs" / run_id / "config.yaml"
    kept_config = config.read_text()
    config.write_text(kept_config.replace("postprocess: null", "postprocess: {RC: 5}"))
    bad = script(
        project, "predict.py", "--run", run_id, "--split", "pred", "--output", str(tmp_path / "p4"), check=False
    )
    errors = [line for line in bad.stderr.splitlines() if line.startswith("error:")]
    assert bad.returncode == 2 and errors == [
        "error: eval.postprocess names regions RC; the dataset's regions are WT, TC, ET"
    ], bad.stderr
    config.write_text(kept_config)
    one_case = raw / "RSNA_ASNR_MICCAI_BraTS2021_TrainingData_16July2021" / "BraTS2021_00000"
    script(
        project, "predict.py", "--run", run_id, "--input", str(one_case), "--output", str(tmp_path / "pred2"), "--tta"
    )
    assert nib.load(str(tmp_path / "pred2" / "BraTS2021_00000.nii.gz")).shape == SHAPE  # 8 mirrorings averaged
    # volumes are predicted, not exported: one error line naming what to use instead
    refused = script(project, "export.py", "--run", run_id, "--format", "saved_model", check=False)
    errors = [line for line in refused.stderr.splitlines() if line.startswith("error:")]
    assert refused.returncode == 2 and len(errors) == 1 and "Traceback" not in refused.stderr, refused.stderr
    assert "trained on volumes" in errors[0] and "python predict.py --run" in errors[0]
    assert not (project / "models" / run_id / "export").exists()

    # cross-validation: the build recorded folds of the 3 labelled cases (fewer than 5: one case each)
    folds = info["source_info"]["folds"]
    assert folds["k"] == 3 and sorted(folds["cases"]) == sorted(c for c in cases)
    patch = ["--set", "data.patch_size=[16,16,16]"]
    out = script(project, "train.py", "--config", "configs/brats_3d.yaml", "--fold", "1", *patch, *tiny).stdout
    run_fold = next(line.split()[1] for line in out.splitlines() if line.startswith("run "))
    assert "fold: 1" in (project / "logs" / run_fold / "config.yaml").read_text()
    script(project, "evaluate.py", "--run", run_fold, "--split", "val")
    held_out = json.loads((project / "logs" / run_fold / "eval_val.json").read_text())["per_case"]
    assert [c["case_id"] for c in held_out] == [c for c, f in folds["cases"].items() if f == 1]
    refused = script(project, "train.py", "--config", "configs/brats_3d.yaml", "--fold", "3", *patch, check=False)
    errors = [line for line in refused.stderr.splitlines() if line.startswith("error:")]
    assert refused.returncode == 2 and errors == [
        "error: data.fold: fold 3 is outside the dataset's 3 folds: choose 0 to 2"
    ], refused.stderr
    # runs of different folds trained on each other's validation cases: their ensemble is not scored there
    refused = script(project, "evaluate.py", "--run", f"{run_id},{run_fold}", "--split", "val", check=False)
    errors = [line for line in refused.stderr.splitlines() if line.startswith("error:")]
    assert refused.returncode == 2 and len(errors) == 1 and f"{run_fold} fold 1" in errors[0], refused.stderr
    # an ensemble averages the runs' probabilities; scored beside the first run's own scores
    import shutil

    for folder in ("logs", "models"):
        shutil.copytree(project / folder / run_id, project / folder / f"copy-{run_id}")
    shown = script(project, "evaluate.py", "--run", f"{run_id},copy-{run_id}", "--split", "val").stdout
    assert "ensemble of 2 runs" in shown
    (ensembled,) = (project / "logs" / run_id).glob("eval_val-ensemble-*.json")
    assert json.loads(ensembled.read_text())["ensemble"] == [run_id, f"copy-{run_id}"]
    # an ensemble of a run and its copy scores and predicts what the run does
    alone = json.loads((project / "logs" / run_id / "eval_val.json").read_text())
    for region, scores_alone in alone["mean"].items():
        assert json.loads(ensembled.read_text())["mean"][region] == pytest.approx(scores_alone, abs=1e-9), region
    script(
        project, "predict.py", "--run", f"{run_id},copy-{run_id}", "--split", "pred", "--output", str(tmp_path / "ens")
    )
    script(project, "predict.py", "--run", run_id, "--split", "pred", "--output", str(tmp_path / "one"))
    alone, pair = (np.asarray(nib.load(str(tmp_path / d / "BraTS2021_00001.nii.gz")).dataobj) for d in ("one", "ens"))
    np.testing.assert_array_equal(pair, alone)
    assert json.loads((tmp_path / "ens" / "predict.json").read_text())["ensemble"] == [run_id, f"copy-{run_id}"]

    out = script(
        project, "train.py", "--config", "configs/brats_2d.yaml", "--set", "data.image_size=[24,24]", *tiny
    ).stdout
    run_2d = next(line.split()[1] for line in out.splitlines() if line.startswith("run "))
    # a 2D run and a 3D run take different inputs: refused naming both
    refused = script(
        project, "predict.py", "--run", f"{run_id},{run_2d}", "--output", str(tmp_path / "no"), check=False
    )
    errors = [line for line in refused.stderr.splitlines() if line.startswith("error:")]
    assert (
        refused.returncode == 2
        and len(errors) == 1
        and f"runs {run_id} and {run_2d} take different inputs" in errors[0]
    )
    # scored under the 2023 paediatric rules (the same regions), the comparison says the numbers differ in kind
    config = project / "logs" / run_2d / "config.yaml"
    config.write_text(config.read_text().replace("brats_challenge: null", "brats_challenge: PED"))
    script(project, "evaluate.py", "--run", run_2d, "--split", "val", "--tta")
    scored = json.loads((project / "logs" / run_2d / "eval_val.json").read_text())
    assert scored["per_case"] and scored["tta"] is True  # 4 mirrorings of each slice, recorded
    assert scores["scored_as"]["challenge"] == "GLI" and scored["scored_as"]["challenge"] == "PED"
    compared = skelgen("runs", "compare", run_id, run_2d, "--project", str(project)).stdout
    assert ["(rules)", "GLI,", "HD95", "surface-distance", "PED,", "HD95", "surface-distance"] in [
        line.split() for line in compared.splitlines()
    ], compared
    assert "warning: eval val was scored under different rules" in compared
    data = json.loads(skelgen("runs", "compare", run_id, run_2d, "--json", "--project", str(project)).stdout)
    assert (
        data["rules_differ"] == ["val"]
        and data["runs"][1]["eval_sources"]["val"]["rules"] == "PED, HD95 surface-distance"
    )
    assert replica  # the replica's arrays are checked by the release tests above


def test_add_dataset_brats_2024_post_treatment_trains_evaluates_with_its_regions_and_writes_its_ids(
    tmp_path: Path,
) -> None:
    raw = tmp_path / "raw"
    replica = make_brats2024(raw)
    project = make_project(tmp_path / "ws")
    skelgen("add-dataset", "post", "--preset", "brats", "--source", str(raw), cwd=project)
    readme = (project / "datasets" / "post" / "README.md").read_text()
    assert "source_info" in readme and "lesion-wise Dice" in readme and "RC 4" in readme
    out = script(project, "datasets/build_post_to_tfrecord.py", "--workers", "1", "--release", "brats2024-gli").stdout
    assert "release: BraTS 2024 post-treatment glioma (brats2024-gli, --release)" in out
    info = json.loads((project / "datasets/post/tfrecords/dataset_info.json").read_text())
    assert [e["name"] for e in info["label_map"]] == list(POST_CLASSES)
    assert [e["source_id"] for e in info["label_map"]] == [0, 1, 2, 3, 4]

    tiny = [
        "--set",
        "train.epochs=1",
        "--set",
        "data.batch_size=2",
        "--set",
        "data.samples_per_case=1",
        "--set",
        "model.base_filters=4",
        "--set",
        "model.depth=2",
        "--set",
        "data.eval_batch_size=4",
        "--set",
        "data.patch_size=[16,16,16]",
    ]
    out = script(project, "train.py", "--config", "configs/post_3d.yaml", *tiny).stdout
    run_id = next(line.split()[1] for line in out.splitlines() if line.startswith("run "))
    shown = script(project, "evaluate.py", "--run", run_id, "--split", "val").stdout
    assert "ranked by lesion Dice and lesion HD95" in shown and "BraTS 2024 post-treatment adult glioma" in shown
    scores = json.loads((project / "logs" / run_id / "eval_val.json").read_text())
    assert scores["regions"] == {k: list(v) for k, v in REGIONS["post"].items()}  # training ids = file ids
    assert scores["challenge"]["key"] == "GLI2024" and scores["challenge"]["dilation"]["RC"] == 5
    for region in scores["mean"].values():
        assert 0 <= region["lesion_dice"] <= 1 and 0 <= region["lesion_hd95"] <= 337
        assert 0 <= region["dice"] <= 1 and 0 <= region["sensitivity"] <= 1
    header = next(csv.reader(open(project / "logs" / run_id / "eval_val_cases.csv")))
    assert header[:4] == ["case_id", "WT_lesion_dice", "WT_lesion_hd95", "WT_dice"] and "RC_fn" in header
    assert scores["scored_as"] == {
        "challenge": "GLI2024",
        "title": "BraTS 2024 post-treatment adult glioma (GLI2024)",
        "hd95": "surface-distance",
        "chosen_by": "the release",
        "release": "brats2024-gli",
    }
    assert (
        "scored as BraTS 2024 post-treatment adult glioma (GLI2024), detected from the release brats2024-gli" in shown
    )
    # eval.brats_challenge in the run's config picks other rules; one that does not score the release's
    # regions (MEN: WT, TC, ET) is refused before any case is predicted, naming both
    config = project / "logs" / run_id / "config.yaml"
    before = (project / "logs" / run_id / "eval_val.json").read_text()
    config.write_text(config.read_text().replace("brats_challenge: null", "brats_challenge: MEN"))
    refused = script(project, "evaluate.py", "--run", run_id, "--split", "val", check=False)
    errors = [line for line in refused.stderr.splitlines() if line.startswith("error:")]
    assert refused.returncode == 2 and len(errors) == 1 and "Traceback" not in refused.stderr, refused.stderr
    assert "MEN" in errors[0] and "WT, TC, NETC, SNFH, ET, RC" in errors[0] and "brats2024-gli" in errors[0]
    assert (project / "logs" / run_id / "eval_val.json").read_text() == before
    config.write_text(config.read_text().replace("brats_challenge: MEN", "brats_challenge: gli2024"))
    script(project, "evaluate.py", "--run", run_id, "--split", "val")
    chosen = json.loads((project / "logs" / run_id / "eval_val.json").read_text())["scored_as"]
    assert (chosen["challenge"], chosen["chosen_by"]) == ("GLI2024", "eval.brats_challenge")

    # a 2025 edition is scored by panoptica; every number of every validation case equals panoptica run as the
    # organisers run it, on predict.py's NIfTI file and the release's own seg file (tests/test_brats2025.py)
    from test_brats2025 import organisers_scores, same

    from skelgen_runtime.metrics.brats_challenges import get_challenge

    config.write_text(config.read_text().replace("brats_challenge: gli2024", "brats_challenge: GLI2025"))
    shown = script(project, "evaluate.py", "--run", run_id, "--split", "val").stdout
    assert "scored as BraTS 2025 adult glioma (GLI2025), chosen by eval.brats_challenge" in shown, shown
    assert (
        "please cite panoptica" in shown
        and "post-processing chosen: none (these rules leave no lesion out by its size)" in shown
    ), shown
    scored = json.loads((project / "logs" / run_id / "eval_val.json").read_text())
    assert scored["scored_as"]["scorer"].startswith("panoptica 2.") and scored["challenge"]["scorer"] == "panoptica"
    header = next(csv.reader(open(project / "logs" / run_id / "eval_val_cases.csv")))
    assert header[:4] == ["case_id", "WT_lesion_dice", "WT_lesion_nsd", "WT_lesion_hd95"] and "RC_nsd" in header
    script(project, "predict.py", "--run", run_id, "--split", "val", "--output", str(tmp_path / "val2025"))
    for case in scored["per_case"]:
        case_id = case["case_id"]
        theirs = organisers_scores(
            get_challenge("GLI2025"), tmp_path / "val2025" / f"{case_id}.nii.gz", replica[case_id]["seg_path"]
        )
        for region, metrics in theirs.items():
            for metric, value in metrics.items():
                assert same(case[region][metric], float(value)), (case_id, region, metric, case[region][metric], value)
    # the same files scored by evaluate.py --predictions (as another tool's output would be): the same numbers,
    # beside the run's own scores; a file on another grid, of another shape, with a foreign label or missing
    # is refused naming the case, before anything is written
    files = tmp_path / "val2025"
    script(project, "evaluate.py", "--run", run_id, "--split", "val", "--predictions", str(files))
    (written,) = (project / "logs" / run_id).glob("eval_val-files-*.json")
    from_files = json.loads(written.read_text())
    assert (
        from_files["predictions"] == str(files) and from_files["weights"] is None and "postprocessing" not in from_files
    )
    for ours, theirs in zip(from_files["per_case"], scored["per_case"], strict=True):
        assert ours["case_id"] == theirs["case_id"]
        assert all(same(ours[r][m], theirs[r][m]) for r in theirs if r != "case_id" for m in theirs[r])
    first = scored["per_case"][0]["case_id"]
    good = nib.load(str(files / f"{first}.nii.gz"))
    data = np.asanyarray(good.dataobj)
    shifted = good.affine.copy()
    shifted[0, 3] += 2.0
    for why, image, expected in (
        ("grid", nib.Nifti1Image(data, shifted, good.header), "lies on another grid"),
        ("shape", nib.Nifti1Image(data[:-1], good.affine, good.header), "but its ground truth is"),
        ("labels", nib.Nifti1Image(np.where(data == 2, 7, data).astype(np.uint8), good.affine, good.header), "[7]"),
        ("missing", None, "no prediction"),
    ):
        bad = tmp_path / f"bad-{why}"
        shutil.copytree(files, bad)
        (bad / f"{first}.nii.gz").unlink()
        if image is not None:
            nib.save(image, str(bad / f"{first}.nii.gz"))
        refused = script(
            project, "evaluate.py", "--run", run_id, "--split", "val", "--predictions", str(bad), check=False
        )
        errors = [line for line in refused.stderr.splitlines() if line.startswith("error:")]
        assert refused.returncode == 2 and len(errors) == 1 and "Traceback" not in refused.stderr, (why, refused.stderr)
        assert f"case {first}" in errors[0] and expected in errors[0], (why, errors[0])
    assert len(list((project / "logs" / run_id).glob("eval_val-files-*.json"))) == 1

    # region-based training: one sigmoid output per region (six here), back to the release's labels
    regions = ["--set", "model.output=regions", "--set", "train.loss=region_dice_bce"]
    out = script(project, "train.py", "--config", "configs/post_3d.yaml", *tiny, *regions).stdout
    run_regions = next(line.split()[1] for line in out.splitlines() if line.startswith("run "))
    import keras

    assert (
        keras.models.load_model(project / "models" / run_regions / "final.keras", compile=False).output_shape[-1] == 6
    )
    with open(project / "logs" / run_regions / "metrics.csv") as f:
        assert "val_miou" in next(csv.DictReader(f))
    script(project, "evaluate.py", "--run", run_regions, "--split", "val")
    scored = json.loads((project / "logs" / run_regions / "eval_val.json").read_text())
    assert list(scored["mean"]) == list(REGIONS["post"]) and scored["per_case"]
    script(project, "predict.py", "--run", run_regions, "--split", "pred", "--output", str(tmp_path / "by-regions"))
    assert set(np.unique(nib.load(str(tmp_path / "by-regions" / "BraTS-GLI-02075-100.nii.gz")).dataobj)) <= {
        0,
        1,
        2,
        3,
        4,
    }
    refused = script(
        project, "train.py", "--config", "configs/post_3d.yaml", *tiny, regions[0], regions[1], check=False
    )
    errors = [line for line in refused.stderr.splitlines() if line.startswith("error:")]
    assert (
        refused.returncode == 2 and len(errors) == 1 and "train.loss 'dice_ce' is a loss of softmax labels" in errors[0]
    )

    predictions = tmp_path / "pred"
    script(project, "predict.py", "--run", run_id, "--split", "pred", "--output", str(predictions))
    written = nib.load(str(predictions / "BraTS-GLI-02075-100.nii.gz"))
    source = raw / "BraTS2024-GLI-PostTreatment-ValidationData/BraTS-GLI-02075-100/BraTS-GLI-02075-100-t1n.nii.gz"
    assert written.shape == SHAPE and np.array_equal(written.affine, nib.load(str(source)).affine)
    assert set(np.unique(written.dataobj)) <= {0, 1, 2, 3, 4}
    # one raw case folder: read as the 2024 release too, written in its ids
    script(project, "predict.py", "--run", run_id, "--input", str(source.parent), "--output", str(tmp_path / "pred2"))
    again = nib.load(str(tmp_path / "pred2" / "BraTS-GLI-02075-100.nii.gz"))
    np.testing.assert_array_equal(np.asarray(again.dataobj), np.asarray(written.dataobj))


def test_prediction_files_of_float_nan_or_fractional_labels_are_refused(tmp_path: Path) -> None:
    """evaluate.py --predictions reads what other tools write: float label volumes are read when they hold
    whole label ids, refused naming the case when they hold NaN or fractions."""
    from skelgen_runtime.errors import UserInputError
    from skelgen_runtime.schemas.volume import to_nifti_axes
    from skelgen_runtime.tasks.volume_files import _read

    truth, affine = np.zeros((4, 5, 6), np.uint8), np.diag([1.0, 1.0, 1.5, 1.0])
    shape = to_nifti_axes(truth).shape
    for value, refused in ((np.nan, "[nan]"), (1.5, "[1.5]"), (9.0, "[9.0]"), (2.0, None)):
        nib.save(nib.Nifti1Image(np.full(shape, value, np.float32), affine), str(tmp_path / "c.nii.gz"))
        if refused is None:
            assert np.unique(_read(tmp_path / "c.nii.gz", "c", truth, affine, (0, 1, 2, 3))).tolist() == [2]
            continue
        with pytest.raises(UserInputError, match=rf"case c: .* holds values {re.escape(refused)} that are not the"):
            _read(tmp_path / "c.nii.gz", "c", truth, affine, (0, 1, 2, 3))
