"""Training metrics as a project registry: ``train.metrics`` names what is logged per epoch.

A metric factory is called as ``factory(config, info)`` (the whole config and the dataset's
``dataset_info.json``) and returns a ``keras.metrics.Metric`` (logged as ``NAME`` and ``val_NAME``),
or None when it does not apply (top-k accuracy with k at or above the class count). The project's
``core/metrics.py`` starts from :func:`default_metrics` and registers its own. The task's monitor
(``val_miou``, ``val_accuracy``; detection monitors ``val_loss``) picks the best checkpoint, so the
metrics must include the one it names: :func:`build_metrics` refuses a list without it.

Keras is imported by the factories, not by this module.
"""

from __future__ import annotations

from typing import Any, Sequence

from skelgen_runtime.errors import ConfigError
from skelgen_runtime.registry import Registry

__all__ = ["default_metrics", "build_metrics"]


def _miou(config: Any, info: Any) -> Any:
    """Mean IoU of argmax predictions (labels outside ``[0, num_classes)``, e.g. 255, are dropped); with
    ``model.output: regions``, of the labels the region outputs give by the nesting rule."""
    import keras

    from skelgen_runtime.tasks.volume_regions import output_mode, region_table

    if output_mode(config) == "regions":
        from skelgen_runtime.training.region_metrics import RegionMeanIoU

        table = region_table(info)
        return RegionMeanIoU(info.num_classes, own=table.own, order=table.order, name="miou")
    return keras.metrics.MeanIoU(num_classes=info.num_classes, sparse_y_pred=False, name="miou")


def _accuracy(config: Any, info: Any) -> Any:
    """Accuracy of the arg-max class against one-hot labels."""
    import keras

    return keras.metrics.CategoricalAccuracy(name="accuracy")


def _top_k(config: Any, info: Any) -> Any:
    """Top-k accuracy with ``k = train.top_k``; None when k reaches the class count (it would always be 1)."""
    import keras

    k = max(1, int(getattr(config.train, "top_k", 3)))
    return keras.metrics.TopKCategoricalAccuracy(k=k, name=f"top{k}") if k < info.num_classes else None


def default_metrics(task: str) -> Registry:
    """The library's metrics of ``task``: segmentation ``miou``; classification ``accuracy``, ``top_k``;
    detection none (its curve is the loss; COCO mAP comes from ``evaluate.py``)."""
    registry: Registry[Any] = Registry("metric")
    if task == "segmentation":
        registry.register("miou")(_miou)
    elif task == "classification":
        registry.register("accuracy")(_accuracy)
        registry.register("top_k")(_top_k)
    return registry


def build_metrics(names: Sequence[str], registry: Registry, config: Any, info: Any, monitor: str) -> list:
    """The metrics ``names`` from ``registry``, checked to include the one ``monitor`` (``val_NAME``) reads.

    Raises:
        ConfigError: a name the registry does not hold (the closest one suggested), or no metric named
            as the monitor needs (the best checkpoint could not be chosen).
    """
    built = [registry.get(name)(config, info) for name in names]
    metrics = [m for m in built if m is not None]
    wanted = monitor.removeprefix("val_")
    if monitor != "val_loss" and wanted not in {m.name for m in metrics}:
        raise ConfigError(
            f"train.metrics {list(names)}: the best checkpoint is the one with the best {monitor}, so "
            f"the metrics must include {wanted!r} (core/metrics.py)"
        )
    return metrics
