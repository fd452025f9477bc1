"""Serving (issue 9): ``--weights best|final``, ``export.py --format saved_model|tflite|onnx``, and exported
models that predict what ``predict.py`` predicts on raw images of other sizes than the training size."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from conftest import script

#: raw test images (height, width), none of them the training size
SIZES = [(50, 70), (96, 80), (33, 41), (128, 64)]
TINY = {
    "segmentation": ["--set", "model.base_filters=4", "--set", "model.depth=2"],
    "classification": ["--set", "model.base_filters=4", "--set", "model.depth=2"],
    "detection": [
        "--set",
        "model.base_filters=4",
        "--set",
        "model.depth=3",
        "--set",
        "model.neck_filters=8",
        "--set",
        "model.head_filters=8",
        "--set",
        "data.augment.crop=false",
    ],
}
LITE_DEPRECATION = "ignore:.*tf.lite.Interpreter is deprecated:UserWarning"


# ---------------------------------------------------------------- the resize inside the signature


@pytest.mark.parametrize("size", [(32, 32), (64, 48), (17, 100)])
def test_resize_images_equals_tensorflows_antialiased_resize(size: tuple[int, int]) -> None:
    from skelgen_runtime.serving import resize_images

    rng = np.random.default_rng(0)
    for height, width in [*SIZES, (1, 1), (7, 300), (32, 32)]:
        images = rng.integers(0, 256, (2, height, width, 3), dtype=np.uint8)
        want = tf.image.resize(tf.cast(images, tf.float32), size, method="bilinear", antialias=True)
        got = resize_images(images, size)
        assert got.shape == (2, *size, 3)
        np.testing.assert_allclose(got.numpy(), want.numpy(), atol=5e-3, err_msg=f"{height}x{width} -> {size}")


# ---------------------------------------------------------------- one trained run per task, shared


def _run_id(stdout: str) -> str:
    return next(line.split()[1] for line in stdout.splitlines() if line.startswith("run "))


@pytest.fixture(scope="module")
def trained(built_projects, tmp_path_factory):
    """``get(task)``: ``(project, run id)`` of a tiny keras run at 32x32 (one epoch), trained once per module."""
    cache: dict[str, tuple[Path, str]] = {}

    def get(task: str) -> tuple[Path, str]:
        if task not in cache:
            project = tmp_path_factory.mktemp(f"export-{task}") / "p"
            shutil.copytree(built_projects(task, "keras"), project, symlinks=True)
            out = script(
                project,
                "train.py",
                "--config",
                "configs/demo.yaml",
                "--set",
                "data.image_size=[32,32]",
                "--set",
                "data.batch_size=8",
                "--set",
                "train.epochs=1",
                *TINY[task],
            ).stdout
            cache[task] = project, _run_id(out)
        return cache[task]

    return get


def _raw_images(project: Path, folder: Path) -> dict[str, np.ndarray]:
    """Four validation pictures resized to :data:`SIZES`, written as PNG (lossless) into ``folder``."""
    folder.mkdir()
    sources = sorted(project.glob("datasets/shapes/data/val/**/*.jpg"))[: len(SIZES)]
    images = {}
    for source, (height, width) in zip(sources, SIZES):
        name = f"img_{height}x{width}"
        images[name] = np.asarray(Image.open(source).convert("RGB").resize((width, height), Image.BILINEAR))
        Image.fromarray(images[name]).save(folder / f"{name}.png")
    return images


def _tflite(path: Path, image: np.ndarray) -> dict[str, np.ndarray]:
    """Run ``model.tflite`` on one image: resize the dynamic input to it, then the signature runner."""
    interpreter = tf.lite.Interpreter(model_path=str(path))
    interpreter.resize_tensor_input(interpreter.get_input_details()[0]["index"], [1, *image.shape])
    interpreter.allocate_tensors()
    return interpreter.get_signature_runner("serving_default")(images=image[None])


def _onnx(path: Path, image: np.ndarray) -> dict[str, np.ndarray]:
    """Run ``model.onnx`` on one image with onnxruntime, outputs by name."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in session.get_outputs()], session.run(None, {"images": image[None]})))


def _predict_py(task: str, out: Path, names: list[str]) -> dict[str, object]:
    """What ``predict.py`` wrote per image: a label map, a class name, or ``[(class id, [x, y, w, h], score)]``."""
    if task == "segmentation":
        return {n: np.array(Image.open(out / f"{n}_label.png")) for n in names}
    if task == "classification":
        with open(out / "predictions.csv") as f:
            return {row["image"]: row["class1"] for row in csv.DictReader(f)}
    found = {n: [] for n in names}
    for r in json.loads((out / "predictions.json").read_text()):
        found[r["file_name"]].append((r["category_id"], r["bbox"], r["score"]))
    return found


def _agree(task: str, expected, got: dict[str, np.ndarray], names: list[str], image: np.ndarray) -> float:
    """Assert that one exported model's outputs ``got`` (batch of one) match ``predict.py``'s; return the worst gap."""
    if task == "segmentation":
        labels = got["labels"][0]
        assert labels.shape == image.shape[:2]
        disagree = int((labels != expected).sum())
        assert disagree == 0, f"{disagree} pixels differ"
        return 0.0
    if task == "classification":
        probabilities = got["probabilities"][0]
        assert probabilities.shape == (len(names),) and abs(float(probabilities.sum()) - 1) < 1e-5
        assert names[int(got["classes"][0])] == names[int(np.argmax(probabilities))] == expected
        return 0.0
    n = int(got["num_detections"][0])
    assert n == len(expected) and not got["scores"][0, n:].any()
    ymin, xmin, ymax, xmax = got["boxes_pixels"][0, :n].T
    exported = [
        (int(c), [x0, y0, x1 - x0, y1 - y0], float(s))
        for c, x0, y0, x1, y1, s in zip(got["classes"][0], xmin, ymin, xmax, ymax, got["scores"][0])
    ]
    np.testing.assert_allclose(
        got["boxes"][0, :n] * np.array([*image.shape[:2]] * 2), got["boxes_pixels"][0, :n], rtol=1e-5, atol=1e-3
    )
    worst = 0.0
    for cls, box, score in expected:  # the same detections, in score order up to ties
        gaps = [
            max(abs(a - b) for a, b in zip(box, e_box)) if e_cls == cls and abs(e_score - score) < 1e-3 else np.inf
            for e_cls, e_box, e_score in exported
        ]
        best = int(np.argmin(gaps))
        assert gaps[best] <= 1.0, f"no exported box within 1 px of {cls} {box} {score}"
        worst = max(worst, gaps[best])
        exported.pop(best)
    return worst


@pytest.mark.filterwarnings(LITE_DEPRECATION)
@pytest.mark.parametrize("task", ["segmentation", "classification", "detection"])
def test_saved_model_tflite_and_onnx_predict_what_predict_py_predicts(trained, task: str, tmp_path: Path) -> None:
    project, run_id = trained(task)
    images = _raw_images(project, tmp_path / "raw")
    saved, lite, onnx, out = tmp_path / "saved_model", tmp_path / "tflite", tmp_path / "onnx", tmp_path / "pred"
    shown = script(project, "export.py", "--run", run_id, "--format", "saved_model", "--out", str(saved)).stdout
    assert "weights: best" in shown and f"exported saved_model to {saved}" in shown
    script(project, "export.py", "--run", run_id, "--format", "tflite", "--out", str(lite))
    script(project, "export.py", "--run", run_id, "--format", "onnx", "--out", str(onnx))
    script(project, "predict.py", "--run", run_id, "--input", str(tmp_path / "raw"), "--output", str(out))

    about = json.loads((lite / "export.json").read_text())
    assert about["input"] == {"name": "images", "dtype": "uint8", "shape": [-1, -1, -1, 3]}
    assert about["run"] == run_id and about["weights"] == "best" and about["task"] == task
    names = [label["name"] for label in about["labels"]]
    signature = tf.saved_model.load(str(saved)).signatures["serving_default"]
    assert set(signature.structured_outputs) == set(about["outputs"])
    expected = _predict_py(task, out, list(images))
    box_gap, lite_gap = 0.0, 0.0
    for name, image in images.items():
        from_saved = {k: v.numpy() for k, v in signature(images=tf.constant(image[None])).items()}
        from_lite = _tflite(lite / "model.tflite", image)
        from_onnx = _onnx(onnx / "model.onnx", image)
        assert set(from_lite) == set(from_saved) == set(from_onnx)
        box_gap = max(
            box_gap, *(_agree(task, expected[name], got, names, image) for got in (from_saved, from_lite, from_onnx))
        )
        lite_gap = max(
            lite_gap,
            *(
                float(np.abs(from_lite[k].astype(np.float64) - from_saved[k]).max())
                for k in from_saved
                if from_saved[k].size
            ),
        )
    # with -s: the measured gaps (SavedModel vs TFLite on any output; exported vs predict.py on boxes)
    print(f"{task}: largest TFLite - SavedModel difference {lite_gap:.2e}, largest box gap {box_gap:.3f} px")
    if task == "detection":
        assert sum(map(len, expected.values())) > 0, "a test without detections would compare nothing"


@pytest.mark.parametrize("task", ["segmentation", "classification", "detection"])
def test_onnx_equals_the_saved_model_on_eight_fixed_images(trained, task: str, tmp_path: Path) -> None:
    from skelgen_runtime.serving.export import PARITY_IMAGES, parity_images

    project, run_id = trained(task)
    saved, onnx = tmp_path / "saved_model", tmp_path / "onnx"
    script(project, "export.py", "--run", run_id, "--format", "saved_model", "--out", str(saved))
    script(project, "export.py", "--run", run_id, "--format", "onnx", "--out", str(onnx))
    signature = tf.saved_model.load(str(saved)).signatures["serving_default"]
    images = parity_images()
    assert len(images) == PARITY_IMAGES == 8 and len({i.shape for i in images}) > 1  # assorted sizes
    worst: dict[str, float] = {}
    from skelgen_runtime.serving.export import paired_rows  # detections of near-tied score, matched

    for image in images:
        from_onnx, from_saved = paired_rows(
            _onnx(onnx / "model.onnx", image[0]),
            {k: v.numpy() for k, v in signature(images=tf.constant(image)).items()},
        )
        for name, value in from_saved.items():
            assert from_onnx[name].shape == value.shape and from_onnx[name].dtype == value.dtype, name
            if value.dtype.kind == "f":
                worst[name] = max(worst.get(name, 0.0), float(np.abs(from_onnx[name] - value).max(initial=0)))
            else:
                assert np.array_equal(from_onnx[name], value), name
    assert worst and max(worst.values()) <= 1e-4, worst
    about = json.loads((onnx / "export.json").read_text())
    assert about["format"] == "onnx" and about["parity"]["images"] == 8
    assert max(about["parity"]["max_abs_difference"].values()) <= 1e-4
    print(f"{task}: largest ONNX - SavedModel difference {max(worst.values()):.2e}")


def test_a_mixed_precision_model_is_served_as_a_float32_copy_with_the_same_weights() -> None:
    import keras

    from skelgen_runtime.serving import float32_copy

    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        keras.utils.set_random_seed(0)
        inputs = keras.Input((16, 16, 3))
        x = keras.layers.Conv2D(4, 3, name="conv")(inputs)
        x = keras.layers.BatchNormalization(name="bn")(x)
        mixed = keras.Model(inputs, keras.layers.Dense(2, dtype="float32", name="head")(x))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert mixed.get_layer("conv").compute_dtype == "float16"
    copy = float32_copy(mixed)
    assert copy is not mixed and {layer.compute_dtype for layer in copy.layers} == {"float32"}
    assert all(np.array_equal(a, b) for a, b in zip(copy.get_weights(), mixed.get_weights()))
    images = np.random.default_rng(0).uniform(0, 1, (2, 16, 16, 3)).astype("float32")
    np.testing.assert_allclose(copy(images).numpy(), mixed(images).numpy(), atol=5e-2)  # float16 rounding
    assert float32_copy(copy) is copy  # already float32: itself


# ---------------------------------------------------------------- best or final


def test_weights_best_or_final_say_which_and_fall_back_with_a_notice(trained, tmp_path: Path) -> None:
    source, run_id = trained("segmentation")
    project = tmp_path / "p"
    shutil.copytree(source, project, symlinks=True)
    image = sorted(project.glob("datasets/shapes/data/val/*.jpg"))[0]
    # a best checkpoint unlike the final model: every weight 0 but the head's bias, which favours class 3
    script(
        project,
        "-c",
        "import sys, core, keras, numpy as np\n"
        f"m = keras.models.load_model('models/{run_id}/final.keras', compile=False)\n"
        "w = [np.zeros_like(v) for v in m.get_weights()]\n"
        "w[-1] = np.array([0, 0, 0, 5], dtype=w[-1].dtype)\n"
        f"m.set_weights(w); m.save_weights('models/{run_id}/checkpoints/best.weights.h5')\n",
    )

    def labels(*args: str) -> tuple[np.ndarray, str, str]:
        out = tmp_path / "-".join(args or ("default",))
        proc = script(project, "predict.py", "--run", run_id, "--input", str(image), "--output", str(out), *args)
        return np.array(Image.open(out / f"{image.stem}_label.png")), proc.stdout, proc.stderr

    best, said, _ = labels()
    assert f"weights: best (checkpoint with the best val_miou: models/{run_id}/checkpoints/best.weights.h5)" in said
    assert (best == 3).all()
    final, said, _ = labels("--weights", "final")
    assert f"weights: final (models/{run_id}/final.keras)" in said and not (final == 3).all()

    said = script(project, "evaluate.py", "--run", run_id).stdout
    scores = json.loads((project / "logs" / run_id / "eval_val.json").read_text())
    assert "weights: best" in said and scores["weights"] == "best"
    assert scores["per_class"]["background"]["iou"] == 0.0  # nothing predicted background: the best checkpoint's

    (project / "models" / run_id / "checkpoints" / "best.weights.h5").unlink()
    fallback, said, noise = labels("--weights", "best")
    notices = [line for line in noise.splitlines() if line.startswith("notice:")]
    assert len(notices) == 1 and "best.weights.h5" in notices[0] and "final" in notices[0], noise
    assert "weights: final" in said and np.array_equal(fallback, final)


# ---------------------------------------------------------------- messages


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        (
            ["--format", "tflit"],
            2,
            "unknown --format 'tflit'; choose saved_model, tflite or onnx; did you mean 'tflite'?",
        ),
        (["--format", "tflite", "--weights", "bset"], 2, "did you mean 'best'?"),
        (["--format", "tflite", "--run", "nosuchrun"], 1, "no run 'nosuchrun'"),
        (["--format", "tflite", "--out", "NOT_EMPTY"], 2, "already exists and is not empty"),
    ],
)
def test_export_errors_are_one_line_with_the_next_step(
    trained, tmp_path: Path, args: list[str], status: int, message: str
) -> None:
    project, run_id = trained("segmentation")
    full = tmp_path / "full"
    full.mkdir()
    (full / "model.tflite").write_bytes(b"")
    args = [str(full) if a == "NOT_EMPTY" else a for a in args]
    proc = script(project, "export.py", *args, check=False)
    assert proc.returncode == status, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0] and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.rstrip().endswith(errors[0])
    if "no run" in message:
        assert run_id in errors[0]  # the runs there are named
    if "not empty" in message:
        assert "--out" in errors[0] and (full / "model.tflite").is_file()


def test_detections_of_two_backends_are_paired_across_near_ties_and_the_cut() -> None:
    """Scores that differ by float rounding may swap near-tied rows, and at the top-M cut keep one twin or
    the other: those are paired; a detection that really differs still shows."""
    from skelgen_runtime.serving.export import paired_rows

    theirs = {
        "scores": np.array([[0.9, 0.50001, 0.50000, 0.2, 0.1]], np.float32),
        "classes": np.array([[1, 2, 3, 1, 2]]),
        "boxes": np.array(
            [[[0, 0, 1, 1], [0, 0, 0.5, 0.5], [0.5, 0.5, 1, 1], [0.1, 0.1, 0.2, 0.2], [0.3, 0.3, 0.4, 0.4]]], np.float32
        ),
        "num_detections": np.array([5]),
    }
    order = [0, 2, 1, 3]  # the near-tie swapped; the weakest (0.1, at the cut) replaced by a twin of its score
    ours = {
        "scores": np.concatenate([theirs["scores"][:, order] + 2e-6, [[0.10001]]], axis=1),
        "classes": np.concatenate([theirs["classes"][:, order], [[3]]], axis=1),
        "boxes": np.concatenate([theirs["boxes"][:, order], [[[0.6, 0.6, 0.7, 0.7]]]], axis=1),
        "num_detections": np.array([5]),
    }
    o, t = paired_rows(ours, theirs)
    assert o["boxes"].shape == t["boxes"].shape == (4, 4)  # the row at the cut is left out
    assert np.abs(o["boxes"] - t["boxes"]).max() == 0 and (o["classes"] == t["classes"]).all()
    moved = {**ours, "boxes": ours["boxes"].copy()}
    moved["boxes"][0, 1] += 0.1  # a real difference in a matched detection
    o, t = paired_rows(moved, theirs)
    assert np.abs(o["boxes"] - t["boxes"]).max() == pytest.approx(0.1, abs=1e-6)
    lost = {k: v.copy() for k, v in ours.items()}
    lost["scores"][0, 0] = 0.7  # the best detection scores otherwise: paired with the nearest score, differs
    o, t = paired_rows(lost, theirs)
    assert np.abs(o["scores"] - t["scores"]).max() > 0.1
