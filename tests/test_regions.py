"""Region-based outputs (model.output: regions): the nesting rule, the loss and the metric, and that a model
trained on regions learns (skelgen_runtime.tasks.volume_regions, losses.region_dice_bce, training.region_metrics)."""

from __future__ import annotations

import numpy as np
import pytest

from skelgen_runtime.errors import ConfigError
from skelgen_runtime.sources.brats_releases import LABEL_SETS
from skelgen_runtime.tasks.volume_regions import RegionTable


def table_of(key: str) -> RegionTable:
    labels = LABEL_SETS[key]
    to_train = {s: i for i, s in enumerate(labels.source_ids)}
    regions = {name: tuple(to_train[s] for s in ids) for name, ids in labels.regions.items()}
    return RegionTable.build(regions, len(labels.source_ids))


@pytest.mark.parametrize("key", list(LABEL_SETS))
def test_every_label_map_of_every_release_round_trips_through_its_regions(key) -> None:
    table = table_of(key)
    rng = np.random.default_rng(0)
    labels = rng.integers(0, len(LABEL_SETS[key].source_ids), size=(9, 10, 11))
    masks = table.to_regions(labels)
    assert masks.shape == (9, 10, 11, len(table.names)) and masks.dtype == bool
    np.testing.assert_array_equal(table.to_labels(masks.astype(np.float32)), labels)
    # probabilities either side of 0.5 give the same labels
    soft = np.where(masks, 0.9, 0.1).astype(np.float32)
    np.testing.assert_array_equal(table.to_labels(soft), labels)


def test_the_nesting_rule_paints_the_smallest_region_above_one_half() -> None:
    table = table_of("brats2023")  # WT 1+2+3, TC 1+3, ET 3 (training ids as the file's)
    assert table.names == ("WT", "TC", "ET") and table.own == (2, 1, 3)
    # WT alone: edema; WT and TC: necrosis; all three: enhancing; ET without TC still enhancing (painted last)
    probs = np.array([[0.9, 0.1, 0.1], [0.9, 0.8, 0.2], [0.9, 0.8, 0.7], [0.2, 0.1, 0.9], [0.4, 0.4, 0.4]])
    assert table.to_labels(probs).tolist() == [2, 1, 3, 3, 0]
    post = table_of("brats2024-gli-post")
    assert post.own == (None, None, 1, 2, 3, 4)  # WT and TC are made of smaller regions: they only train


def test_regions_that_cannot_tell_their_labels_apart_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"region WT holds labels \[1, 2\] that no smaller region tells apart"):
        RegionTable.build({"WT": (1, 2)}, 3)


def test_the_region_loss_and_metric_on_perfect_and_on_wrong_outputs() -> None:
    tf = pytest.importorskip("tensorflow")
    from skelgen_runtime.losses import region_dice_bce
    from skelgen_runtime.training.region_metrics import RegionMeanIoU

    table = table_of("brats2023")
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 4, size=(2, 6, 6, 6, 1))
    labels[0, 0, 0, 0, 0] = 255  # ignored
    perfect = np.where(table.to_regions(np.minimum(labels[..., 0], 3)), 30.0, -30.0).astype(np.float32)
    loss = region_dice_bce(table.membership, 255)
    assert float(tf.reduce_mean(loss(tf.constant(labels), tf.constant(perfect)))) < 0.02
    wrong = -perfect
    assert float(tf.reduce_mean(loss(tf.constant(labels), tf.constant(wrong)))) > 5
    metric = RegionMeanIoU(4, own=table.own, order=table.order)
    metric.update_state(tf.constant(labels), tf.constant(perfect))
    assert float(metric.result()) == pytest.approx(1.0)
    again = RegionMeanIoU.from_config(metric.get_config())  # saved with the model's compile config
    assert (again.own, again.order) == (list(table.own), list(table.order))


def test_a_region_model_learns_nested_spheres() -> None:
    pytest.importorskip("tensorflow")
    keras = pytest.importorskip("keras")
    from skelgen_runtime.losses import region_dice_bce
    from skelgen_runtime.training.region_metrics import RegionMeanIoU

    table = table_of("brats2023")
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    grid = np.stack(np.meshgrid(*(np.arange(16),) * 3, indexing="ij"), -1)
    images, labels = [], []
    for _ in range(16):  # nested spheres: edema around necrosis around enhancing tumour, seen in the image
        centre = rng.uniform(6, 10, 3)
        r = np.linalg.norm(grid - centre, axis=-1)
        label = np.select([r < 2.5, r < 4, r < 6], [3, 1, 2], 0)
        image = np.stack([label == k for k in (1, 2, 3)], -1).astype(np.float32) + rng.normal(0, 0.3, (16,) * 3 + (3,))
        images.append(image)
        labels.append(label[..., None])
    x, y = np.stack(images).astype(np.float32), np.stack(labels).astype(np.int32)
    inputs = keras.Input((16, 16, 16, 3))
    h = keras.layers.Conv3D(8, 3, padding="same", activation="relu")(inputs)
    model = keras.Model(inputs, keras.layers.Conv3D(3, 1)(h))
    model.compile(
        keras.optimizers.Adam(0.01),
        loss=region_dice_bce(table.membership, 255),
        metrics=[RegionMeanIoU(4, own=table.own, order=table.order, name="miou")],
    )
    before = model.evaluate(x, y, verbose=0, return_dict=True)
    model.fit(x, y, batch_size=4, epochs=40, verbose=0)
    after = model.evaluate(x, y, verbose=0, return_dict=True)
    assert after["loss"] < 0.5 * before["loss"] and after["miou"] > 0.8, (before, after)


@pytest.mark.parametrize("key", list(LABEL_SETS))
def test_the_graph_and_the_numpy_nesting_rule_agree(key) -> None:
    # the metric paints in TensorFlow from logits, inference in NumPy from probabilities: the same labels
    tf = pytest.importorskip("tensorflow")
    from skelgen_runtime.training.region_metrics import regions_to_labels

    table = table_of(key)
    logits = np.random.default_rng(3).normal(0, 2, size=(7, 8, 9, len(table.names))).astype(np.float32)
    in_graph = regions_to_labels(tf.constant(logits), table.own, table.order).numpy()
    np.testing.assert_array_equal(in_graph, table.to_labels(tf.sigmoid(logits).numpy()))
