"""Readers of dataset layouts on disk: they list a split's examples and turn one into a record.

Listing is cheap and happens in the main process; encoding (decode, validate, serialise) happens in
the build's worker processes, one example at a time, so memory stays bounded by one example.
"""

from skelgen_runtime.sources.ade20k import Ade20kSource
from skelgen_runtime.sources.base import LabelMap, Source, SourceItem
from skelgen_runtime.sources.brats import BratsSource
from skelgen_runtime.sources.cityscapes import CityscapesSource
from skelgen_runtime.sources.coco import CocoSource
from skelgen_runtime.sources.coco2017 import Coco2017Source
from skelgen_runtime.sources.imagefolder import ImageFolderSource
from skelgen_runtime.sources.images_masks import ImagesMasksSource
from skelgen_runtime.sources.pascal_voc import PascalVocSource
from skelgen_runtime.sources.voc2012 import Voc2012Source

__all__ = [
    "LabelMap",
    "Source",
    "SourceItem",
    "ImagesMasksSource",
    "ImageFolderSource",
    "CocoSource",
    "Coco2017Source",
    "Voc2012Source",
    "CityscapesSource",
    "Ade20kSource",
    "BratsSource",
    "PascalVocSource",
]
