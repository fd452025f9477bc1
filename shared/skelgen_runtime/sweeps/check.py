"""A sweep file checked against the project's own config schema, before the first trial.

Run in the project's Python (``python -m skelgen_runtime.sweeps.check ROOT SWEEP_FILE``), because the
schema (``core/config.py``) is built from the project's registries, which import Keras. It validates the
base config with the fixed values, then every bound of the search space (both ends of each range, every
choice) with them: a misspelt key gets the closest key, a value outside a key's validation (a negative
learning rate) is refused naming the key. It prints one JSON line: the objective and direction the sweep
will use (the task's monitor and its mode by default), or ``{"error": MESSAGE}`` with exit status 2.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from skelgen_runtime.errors import ConfigError, SkelgenError

__all__ = ["check_sweep", "main"]


def check_sweep(root: Path, path: Path) -> dict[str, Any]:
    """The sweep file ``path`` checked against ``root``'s schema; its objective and direction.

    Raises:
        ConfigError: a key or value the project's config refuses (the file and key named).
        DatasetError: the base config's dataset is not built.
    """
    from skelgen_runtime.config import load_config
    from skelgen_runtime.layout import ProjectLayout
    from skelgen_runtime.project import load_project
    from skelgen_runtime.records.info import load_info
    from skelgen_runtime.sweeps.spec import read_sweep
    from skelgen_runtime.tasks import get_binding

    spec = read_sweep(path, root)
    project = load_project(root)
    try:
        config = load_config(spec.base, spec.overrides(), schema=project.config)
    except ConfigError as err:
        raise ConfigError(f"sweep file {path}: base {spec.base} with fixed: {err}") from None
    for param in spec.params:
        for value in param.probes():
            try:
                load_config(spec.base, spec.overrides({param.key: value}), schema=project.config)
            except ConfigError as err:
                problem = str(err).split(": ", 1)[-1]
                if "unknown key" in problem:
                    raise ConfigError(
                        f"sweep file {path}: params.{param.key}: not a key of the project's config (core/config.py): "
                        f"{problem}"
                    ) from None
                raise ConfigError(
                    f"sweep file {path}: params.{param.key}: the value {value!r} is refused by the project's config "
                    f"(core/config.py): {problem}"
                ) from None
    info = load_info(ProjectLayout(root).tfrecords(config.data.dataset))
    task = get_binding(project.task, info.schema)
    monitor, mode = task.MONITOR, task.MONITOR_MODE
    objective = spec.objective or monitor
    direction = spec.direction or (
        "maximize" if (mode == "max" if objective == monitor else "loss" not in objective) else "minimize"
    )
    return {"objective": objective, "direction": direction, "monitor": monitor, "epochs": config.train.epochs}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    root, path = Path(args[0]), Path(args[1])
    sys.path.insert(0, str(root))  # the project's core/ and datasets/, as its scripts have them
    try:
        from skelgen_runtime.startup import import_tensorflow

        import_tensorflow()
        result = check_sweep(root, path)
    except SkelgenError as err:
        print(json.dumps({"error": str(err)}))
        return 2
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
