"""Dataset presets: plain data that both the CLI (no TensorFlow) and the runtime library read.

A preset names a dataset layout that skelgen knows how to read: which tasks it serves, its classes
and how ``add-dataset`` prepares it. Readers of the layouts live in :mod:`skelgen_runtime.sources`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from skelgen_runtime.errors import UserInputError, did_you_mean
from skelgen_runtime.published_classes import ADE20K_CLASSES, CITYSCAPES_CLASSES, VOC2012_CLASSES

__all__ = ["DatasetPreset", "PRESETS", "get_preset", "preset_names"]


@dataclass(frozen=True)
class DatasetPreset:
    """What skelgen knows about one dataset layout.

    Attributes:
        name: preset key, e.g. ``"shapes"``.
        readers: task -> name of the reader class in :mod:`skelgen_runtime.sources` for that task;
            its keys are the tasks this layout can feed.
        description: one line, printed by ``skelgen add-dataset``.
        classes: task -> class names in label-id order, or absent when read from the data.
        builtin: True when ``add-dataset`` generates the data itself (no download, no ``--source``).
    """

    name: str
    readers: dict[str, str]
    description: str
    classes: dict[str, tuple[str, ...]] = field(default_factory=dict)
    builtin: bool = False

    @property
    def tasks(self) -> tuple[str, ...]:
        return tuple(self.readers)


PRESETS: dict[str, DatasetPreset] = {
    p.name: p
    for p in (
        DatasetPreset(
            name="shapes",
            readers={
                "segmentation": "ImagesMasksSource",
                "classification": "ImageFolderSource",
                "detection": "CocoSource",
            },
            description="built-in sample: circles, squares and triangles on textured backgrounds",
            classes={
                "segmentation": ("background", "circle", "square", "triangle"),
                "classification": ("circle", "square", "triangle"),
                "detection": ("circle", "square", "triangle"),
            },
            builtin=True,
        ),
        # published segmentation datasets, read in place from --source (or datasets/NAME); layouts and
        # label conventions are in the readers' docstrings (skelgen_runtime/sources/<name>.py)
        DatasetPreset(
            name="voc2012",
            readers={"segmentation": "Voc2012Source"},
            description="PASCAL VOC 2012 segmentation as extracted from VOCtrainval_11-May-2012.tar "
            "(21 classes, 255 = border)",
            classes={"segmentation": VOC2012_CLASSES},
        ),
        DatasetPreset(
            name="cityscapes",
            readers={"segmentation": "CityscapesSource"},
            description="Cityscapes leftImg8bit + gtFine (labelIds mapped to the 19 trainIds, void = 255; "
            "test unlabelled)",
            classes={"segmentation": CITYSCAPES_CLASSES},
        ),
        DatasetPreset(
            name="ade20k",
            readers={"segmentation": "Ade20kSource"},
            description="ADE20K SceneParsing ADEChallengeData2016 (150 classes; 0 = other, ignored)",
            classes={"segmentation": ADE20K_CLASSES},
        ),
        # no classes: the build takes those of the release it detects (4, or 5 for 2024 post-treatment glioma)
        DatasetPreset(
            name="brats",
            readers={"segmentation": "BratsSource"},
            description="BraTS brain-tumour MRI 2018-2024+ or MSD Task01_BrainTumour: 3D NIfTI, 4 modalities, "
            "release detected from the folder (classes and regions follow it; val = a holdout of the labelled cases)",
        ),
        DatasetPreset(
            name="coco",
            readers={"detection": "Coco2017Source"},
            description="MS COCO 2017/2014: train2017/, val2017/, annotations/instances_*.json (80 classes, "
            "original category ids kept, crowd flag)",
        ),
        DatasetPreset(
            name="pascal-voc",
            readers={"detection": "PascalVocSource"},
            description="PASCAL VOC detection (VOC2007/VOC2012 Annotations/*.xml with difficult flags, "
            "ImageSets/Main splits)",
            classes={"detection": VOC2012_CLASSES[1:]},
        ),
        # the layouts users collect themselves; classes are read from the data where the layout names them
        DatasetPreset(
            name="imagefolder",
            readers={"classification": "ImageFolderSource"},
            description="folder per class: data/{train,val}/<class>/*.jpg, data/pred/*.jpg "
            "(classes = the train folders, sorted)",
        ),
        DatasetPreset(
            name="custom",
            readers={
                "segmentation": "ImagesMasksSource",
                "classification": "ImageFolderSource",
                "detection": "CocoSource",
            },
            description="your own data in the plain layout of the project's task (images + label PNGs, "
            "folder per class, or COCO JSON); datasets/NAME/source.py (its classes, make_source()) is yours to edit",
            classes={"segmentation": ("background", "foreground")},
        ),
    )
}


def preset_names() -> list[str]:
    """All preset keys, sorted."""
    return sorted(PRESETS)


def get_preset(name: str) -> DatasetPreset:
    """Return the preset called ``name``; raise :class:`UserInputError` listing the valid ones."""
    try:
        return PRESETS[name]
    except KeyError:
        raise UserInputError(
            f"unknown dataset preset {name!r}; choose one of: {', '.join(preset_names())}{did_you_mean(name, preset_names())}"
        ) from None
