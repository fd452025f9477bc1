"""The library's config sections: defaults that a project's ``core/config.py`` derives its schema from.

Each class is one section with documented keys and bounds; a project subclasses the ones it
extends (``class Augment(AugmentConfig): color_jitter: float = 0.0``) and composes its whole schema
in ``core/config.py``, where the ``model`` section is derived from its builders' keywords
(:func:`skelgen_runtime.config.builder_section`).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from skelgen_runtime.config.base import Section
from skelgen_runtime.errors import ConfigError

__all__ = [
    "AugmentConfig",
    "DataConfig",
    "TrainConfig",
    "SegmentationDataConfig",
    "EvalConfig",
    "ClassificationAugmentConfig",
    "ClassificationDataConfig",
    "ClassificationTrainConfig",
    "DetectionAugmentConfig",
    "DetectionDataConfig",
]


class AugmentConfig(Section):
    """Training-time augmentation (evaluation only resizes and normalises)."""

    flip: bool = True
    scale_min: float = Field(0.75, gt=0)
    scale_max: float = Field(1.25, gt=0)
    crop: bool = True


class DataConfig(Section):
    """Which dataset, at what size, in what batches."""

    dataset: str = "shapes"
    image_size: tuple[int, int] = (128, 128)
    batch_size: int = Field(
        8,
        ge=1,
        description="training examples per replica: a step's global batch is "
        "batch_size x the replicas of train.distribute (1 on one device)",
    )
    eval_batch_size: int = Field(16, ge=1, description="validation examples per replica (x replicas, as batch_size)")
    shuffle_buffer: int = Field(1024, ge=1)
    cache: bool = Field(True, description="keep decoded, resized examples in memory after the first epoch")
    mean: tuple[float, float, float] | None = Field(
        (0.485, 0.456, 0.406),
        description="per-channel mean of (x / 255 - mean) / std, applied by the pipeline; "
        "null for a backbone that preprocesses its own input (keras.applications, keras-hub): it gets RGB 0-255",
    )
    std: tuple[float, float, float] | None = Field((0.229, 0.224, 0.225), description="per-channel std (see mean)")
    augment: AugmentConfig = AugmentConfig()

    @field_validator("image_size")
    @classmethod
    def _positive(cls, v: tuple[int, int]) -> tuple[int, int]:
        if min(v) < 16:
            raise ValueError("both sides must be at least 16 pixels")
        return v

    @model_validator(mode="after")
    def _mean_and_std_together(self):
        if (self.mean is None) != (self.std is None):
            raise ValueError("data.mean and data.std are set together, or both null (images in [0, 255])")
        return self


class TrainConfig(Section):
    """Optimisation and the run record."""

    epochs: int = Field(20, ge=1)
    steps_per_epoch: int | None = Field(None, ge=1)
    # a project's core/config.py makes optimizer and lr_schedule keys of its own registries (core/optimizers.py)
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    learning_rate: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0, description="adamw: decoupled weight decay")
    momentum: float = Field(0.9, ge=0, lt=1, description="sgd: momentum")
    nesterov: bool = Field(True, description="sgd: Nesterov momentum")
    lr_schedule: Literal["constant", "cosine"] = "cosine"
    warmup_epochs: int = Field(0, ge=0, description="cosine: epochs of linear warm-up from 10 % of learning_rate")
    seed: int = 42
    distribute: Literal["default", "mirrored", "multi_worker", "tpu"] = Field(
        "default",
        description="tf.distribute strategy: default (one device), mirrored (every GPU of this host; "
        "CPU without GPUs), multi_worker (hosts listed in TF_CONFIG), tpu; the global batch is "
        "data.batch_size x replicas (learning_rate is not rescaled)",
    )
    mixed_precision: Literal[False, "mixed_float16", "mixed_bfloat16"] = Field(
        False,
        description="Keras dtype policy while the model is built: false (float32), mixed_float16 (GPUs; "
        "with loss scaling), mixed_bfloat16 (TPUs, recent CPUs); model outputs stay float32",
    )
    freeze_backbone_epochs: int = Field(
        0,
        ge=0,
        description="fine-tuning: epochs at the start with the backbone (layers named encoder, encoder.*) "
        "frozen, BatchNorm in inference mode; then it trains too",
    )
    backbone_lr_multiplier: float = Field(
        1.0, gt=0, description="fine-tuning: the backbone's learning rate as a multiple of the rest's (e.g. 0.1)"
    )
    jit_compile: bool | Literal["auto"] = Field(
        "auto",
        description="XLA-compile the training step: true, false, or auto (Keras's choice for model.fit: "
        "on a GPU without a strategy; off in the custom loop)",
    )
    trackers: list[Literal["tensorboard", "mlflow"]] = Field(
        default_factory=lambda: ["tensorboard"],  # type: ignore[arg-type, return-value]
        description="where each run is logged besides metrics.csv and run.json: tensorboard (always: "
        "logs/RUN's summaries) and mlflow (params, epoch metrics, tags, artifacts; MLFLOW_TRACKING_URI or "
        "sqlite:///logs/mlflow.db; pip install 'skelgen-tf[mlflow]')",
    )

    @field_validator("trackers")
    @classmethod
    def _tensorboard_first(cls, value: list[str]) -> list[str]:
        if "tensorboard" not in value:
            raise ValueError(
                "tensorboard is always on (the run's summaries in logs/RUN): list it, e.g. [tensorboard, mlflow]"
            )
        if len(set(value)) != len(value):
            raise ValueError(f"{value} names a tracker twice")
        return value


class SegmentationDataConfig(DataConfig):
    """Segmentation data; the keys after ``augment`` only matter for volume datasets (BraTS).

    See :mod:`skelgen_runtime.preprocessing.volume`: ``mode`` 2d trains on axial slices resized to
    ``image_size``, 3d on patches of ``patch_size`` ``(D, H, W)`` (with ``model.name: unet3d``).
    """

    mode: Literal["2d", "3d"] = Field("2d", description="volumes: 2d axial slices or 3d patches")
    patch_size: tuple[int, int, int] = Field((64, 64, 64), description="volumes, 3d: patch (D, H, W) in voxels")
    modalities: list[str] | None = Field(None, description="volumes: channels to use, e.g. [flair, t1ce]; null: all")
    samples_per_case: int = Field(4, ge=1, description="volumes: slices or patches drawn per case and epoch")
    foreground_fraction: float = Field(0.5, ge=0, le=1, description="volumes: share of samples centred on tumour")
    fold: int | None = Field(
        None,
        ge=0,
        description="volumes: train on every labelled case but those of this cross-validation fold and validate on "
        "them (the folds dataset_info.json records; train.py --fold K); null: the train and val splits",
    )

    @field_validator("patch_size")
    @classmethod
    def _patch_positive(cls, v: tuple[int, int, int]) -> tuple[int, int, int]:
        if min(v) < 8:
            raise ValueError("every side must be at least 8 voxels")
        return v


class EvalConfig(Section):
    """How ``evaluate.py`` scores; ``brats_challenge`` only matters for BraTS volume datasets."""

    brats_challenge: str | None = Field(
        None,
        description="volumes: the BraTS challenge whose rules score the cases (GLI, SSA, MEN, MET, PED, "
        "GLI2024; the 2025 editions GLI2025, MET2025, MEN2025, GOAT2025, PED2025, by panoptica); null: the one "
        "of the dataset's release",
    )
    tta: bool = Field(
        False,
        description="volumes: predict each case as the mean over every mirroring of its input (8 in 3D, 4 in "
        "2D; as many times slower); evaluate.py and predict.py --tta set it",
    )

    postprocess: dict[str, Annotated[float, Field(ge=0)]] | None = Field(
        None,
        description="volumes: predict.py removes predicted components of at most this many mm^3 per region, "
        "e.g. {ET: 10}; null: what evaluate.py --split val chose for the run (logs/RUN/postprocessing.json), "
        "if it chose anything; {}: none",
    )

    @field_validator("brats_challenge")
    @classmethod
    def _known_challenge(cls, v: str | None) -> str | None:
        from skelgen_runtime.metrics.brats_challenges import get_challenge

        if v is None:
            return v
        try:
            return get_challenge(v).key
        except ConfigError as err:
            raise ValueError(str(err).removeprefix("eval.brats_challenge: ")) from None


class ClassificationAugmentConfig(Section):
    """Training-time augmentation for classification."""

    flip: bool = True
    crop: bool = Field(True, description="random resized crop instead of a plain resize")
    min_area: float = Field(0.6, gt=0, le=1, description="smallest crop, as a fraction of the image area")


class ClassificationDataConfig(DataConfig):
    augment: ClassificationAugmentConfig = ClassificationAugmentConfig()  # type: ignore[assignment]  # a narrower section


class ClassificationTrainConfig(TrainConfig):
    label_smoothing: float = Field(0.0, ge=0, lt=1)
    class_weights: list[float] | Literal["balanced"] | None = Field(
        None, description="per-class loss weights in label-id order, 'balanced', or null"
    )
    top_k: int = Field(3, ge=1, description="k of the top-k accuracy (capped at the class count)")


class DetectionAugmentConfig(Section):
    """Training-time augmentation for detection; boxes follow the image."""

    flip: bool = True
    scale_min: float = Field(0.75, gt=0)
    scale_max: float = Field(1.25, gt=0)
    crop: bool = Field(True, description="random scale, then crop or pad back to image_size (else resize only)")
    min_visible: float = Field(0.3, gt=0, le=1, description="drop a cropped box keeping less of its area than this")


class DetectionDataConfig(DataConfig):
    augment: DetectionAugmentConfig = DetectionAugmentConfig()  # type: ignore[assignment]  # a narrower section

    @field_validator("image_size")
    @classmethod
    def _divisible_by_output_stride(cls, v: tuple[int, int]) -> tuple[int, int]:
        if v[0] % 4 or v[1] % 4:
            raise ValueError("both sides must be divisible by 4 (the detector's output stride)")
        return v
