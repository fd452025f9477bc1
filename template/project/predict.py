"""Predict label maps with a trained run: one label PNG and one overlay PNG per image.

    python predict.py --run latest --split pred --output predictions/
    python predict.py --run latest --input photo.jpg --output predictions/
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

from skelgen_runtime.errors import DatasetError, exit_on_error  # noqa: E402


def _inputs(path: Path):
    """Yield ``(name, RGB array)`` for an image file or every image in a folder."""
    import numpy as np

    from skelgen_runtime.sources.images_masks import IMAGE_SUFFIXES, read_image

    files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES) if path.is_dir() else [path]
    if not files:
        raise DatasetError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {path}")
    import io

    from PIL import Image

    for f in files:
        if not f.is_file():
            raise DatasetError(f"input {f} does not exist")
        data, _, _ = read_image(f)
        yield f.stem, np.array(Image.open(io.BytesIO(data)).convert("RGB"))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", default="latest", help="run id (or unique prefix), or 'latest' (default)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--split", default="pred", help="split of the run's dataset (default: pred)")
    source.add_argument("--input", type=Path, help="an image file or a folder of images instead of a split")
    parser.add_argument("--output", type=Path, required=True, help="folder for the PNGs (created)")
    args = parser.parse_args(argv)
    with exit_on_error():
        import keras
        from PIL import Image

        from datasets import data_generator
        from datasets.build_data import TASK
        from skelgen_runtime.config import load_config
        from skelgen_runtime.runs import find_run
        from skelgen_runtime.tasks import segmentation as task
        from skelgen_runtime.viz import overlay, save_label_png

        run = find_run(ROOT, args.run)
        config = load_config(run.config_file, task=TASK)
        info = data_generator.dataset_info(config.data)
        colors = info.label_map.colors
        model = keras.models.load_model(run.final_model, compile=False)
        if args.input is not None:
            if not args.input.exists():
                raise DatasetError(f"input {args.input} does not exist")
            items = _inputs(args.input)
        else:
            items = ((Path(e["filename"].numpy().decode()).stem, e["image"].numpy())
                     for e in data_generator.raw_dataset(info, args.split))
        args.output.mkdir(parents=True, exist_ok=True)
        n = 0
        for name, image in items:
            label = task.predict_label(model, image, config.data.image_size, config.data.mean, config.data.std)
            save_label_png(args.output / f"{name}_label.png", label, colors)
            Image.fromarray(overlay(image, label, colors)).save(args.output / f"{name}_overlay.png")
            n += 1
        print(f"run {run.run_id}: wrote {n} label PNGs and {n} overlays to {args.output}")


if __name__ == "__main__":
    main()
