"""Class tables of the published segmentation datasets skelgen reads: plain data, no imports.

Both :mod:`skelgen_runtime.presets` (read by the CLI, which must stay light) and the readers in
:mod:`skelgen_runtime.sources` use these tables, so they live here once.

Sources:

- PASCAL VOC 2012: the 20 object classes of the VOC devkit plus ``background`` (index 0);
  ``SegmentationClass`` PNGs hold these indices, 255 marks borders and "difficult" regions.
- Cityscapes: ``cityscapesscripts/helpers/labels.py`` (the official table: name, labelId, trainId,
  colour). ``*_gtFine_labelIds.png`` holds labelIds; training uses the 19 trainIds, 255 = void.
- ADE20K SceneParsing (``ADEChallengeData2016``): ``objectInfo150.csv`` order (first synonym of
  each entry); annotations hold 1..150, 0 = "other objects" (not evaluated).
- BraTS / MSD Task01_BrainTumour: one canonical class order for the 2018-2023 releases and MSD
  (their files use other ids; :mod:`skelgen_runtime.sources.brats_releases` maps them), and the
  classes of the BraTS 2024 post-treatment glioma release, whose files hold 1 NETC, 2 SNFH, 3 ET and
  4 RC (``get_TissueWiseSeg`` in ``metrics_GLI.py`` of ``rachitsaluja/BraTS-2024-Metrics``, commit
  ``9a0ab9c7d75f158a3ea685cd44ac059c3a6712a1``).
"""

from __future__ import annotations

__all__ = [
    "VOC2012_CLASSES",
    "CITYSCAPES_LABELS",
    "CITYSCAPES_CLASSES",
    "CITYSCAPES_LABEL_IDS",
    "CITYSCAPES_COLORS",
    "ADE20K_CLASSES",
    "BRATS_CLASSES",
    "BRATS_POST_TREATMENT_CLASSES",
]

VOC2012_CLASSES: tuple[str, ...] = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair",
    "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
)

#: ``(name, labelId, trainId, colour)`` of every Cityscapes label, as in the official ``labels.py``.
#: trainId 255 is void; ``license plate`` has labelId -1 and is never drawn into labelIds PNGs.
CITYSCAPES_LABELS: tuple[tuple[str, int, int, tuple[int, int, int]], ...] = (
    ("unlabeled", 0, 255, (0, 0, 0)),
    ("ego vehicle", 1, 255, (0, 0, 0)),
    ("rectification border", 2, 255, (0, 0, 0)),
    ("out of roi", 3, 255, (0, 0, 0)),
    ("static", 4, 255, (0, 0, 0)),
    ("dynamic", 5, 255, (111, 74, 0)),
    ("ground", 6, 255, (81, 0, 81)),
    ("road", 7, 0, (128, 64, 128)),
    ("sidewalk", 8, 1, (244, 35, 232)),
    ("parking", 9, 255, (250, 170, 160)),
    ("rail track", 10, 255, (230, 150, 140)),
    ("building", 11, 2, (70, 70, 70)),
    ("wall", 12, 3, (102, 102, 156)),
    ("fence", 13, 4, (190, 153, 153)),
    ("guard rail", 14, 255, (180, 165, 180)),
    ("bridge", 15, 255, (150, 100, 100)),
    ("tunnel", 16, 255, (150, 120, 90)),
    ("pole", 17, 5, (153, 153, 153)),
    ("polegroup", 18, 255, (153, 153, 153)),
    ("traffic light", 19, 6, (250, 170, 30)),
    ("traffic sign", 20, 7, (220, 220, 0)),
    ("vegetation", 21, 8, (107, 142, 35)),
    ("terrain", 22, 9, (152, 251, 152)),
    ("sky", 23, 10, (70, 130, 180)),
    ("person", 24, 11, (220, 20, 60)),
    ("rider", 25, 12, (255, 0, 0)),
    ("car", 26, 13, (0, 0, 142)),
    ("truck", 27, 14, (0, 0, 70)),
    ("bus", 28, 15, (0, 60, 100)),
    ("caravan", 29, 255, (0, 0, 90)),
    ("trailer", 30, 255, (0, 0, 110)),
    ("train", 31, 16, (0, 80, 100)),
    ("motorcycle", 32, 17, (0, 0, 230)),
    ("bicycle", 33, 18, (119, 11, 32)),
    ("license plate", -1, 255, (0, 0, 142)),
)

_CITYSCAPES_TRAIN = sorted((t, name, i, c) for name, i, t, c in CITYSCAPES_LABELS if t != 255)
#: the 19 training classes in trainId order (road .. bicycle)
CITYSCAPES_CLASSES: tuple[str, ...] = tuple(name for _, name, _, _ in _CITYSCAPES_TRAIN)
#: labelId of each training class, in trainId order
CITYSCAPES_LABEL_IDS: tuple[int, ...] = tuple(i for _, _, i, _ in _CITYSCAPES_TRAIN)
#: official colour of each training class, in trainId order
CITYSCAPES_COLORS: tuple[tuple[int, int, int], ...] = tuple(c for _, _, _, c in _CITYSCAPES_TRAIN)

#: the 150 SceneParsing classes; class ``ADE20K_CLASSES[i]`` is value ``i + 1`` in the annotations
ADE20K_CLASSES: tuple[str, ...] = (
    "wall", "building", "sky", "floor", "tree", "ceiling", "road", "bed", "windowpane", "grass",
    "cabinet", "sidewalk", "person", "earth", "door", "table", "mountain", "plant", "curtain", "chair",
    "car", "water", "painting", "sofa", "shelf", "house", "sea", "mirror", "rug", "field",
    "armchair", "seat", "fence", "desk", "rock", "wardrobe", "lamp", "bathtub", "railing", "cushion",
    "base", "box", "column", "signboard", "chest of drawers", "counter", "sand", "sink", "skyscraper", "fireplace",
    "refrigerator", "grandstand", "path", "stairs", "runway", "case", "pool table", "pillow", "screen door", "stairway",
    "river", "bridge", "bookcase", "blind", "coffee table", "toilet", "flower", "book", "hill", "bench",
    "countertop", "stove", "palm", "kitchen island", "computer", "swivel chair", "boat", "bar", "arcade machine", "hovel",
    "bus", "towel", "light", "truck", "tower", "chandelier", "awning", "streetlight", "booth", "television receiver",
    "airplane", "dirt track", "apparel", "pole", "land", "bannister", "escalator", "ottoman", "bottle", "buffet",
    "poster", "stage", "van", "ship", "fountain", "conveyer belt", "canopy", "washer", "plaything", "swimming pool",
    "stool", "barrel", "basket", "waterfall", "tent", "bag", "minibike", "cradle", "oven", "ball",
    "food", "step", "tank", "trade name", "microwave", "pot", "animal", "bicycle", "lake", "dishwasher",
    "screen", "blanket", "sculpture", "hood", "sconce", "vase", "traffic light", "tray", "ashcan", "fan",
    "pier", "crt screen", "plate", "monitor", "bulletin board", "shower", "radiator", "glass", "clock", "flag",
)

#: training ids 0..3 of the BraTS 2018-2023 releases (2018-2021 files: 0, 1, 2, 4; 2023: 0..3; MSD: 0, 2, 1, 3)
BRATS_CLASSES: tuple[str, ...] = ("background", "necrotic tumor core", "peritumoral edema", "enhancing tumor")
#: training ids 0..4 of BraTS 2024 post-treatment glioma (files: 0..4, the same ids)
BRATS_POST_TREATMENT_CLASSES: tuple[str, ...] = (
    "background", "non-enhancing tumor core", "surrounding FLAIR hyperintensity", "enhancing tissue",
    "resection cavity",
)
