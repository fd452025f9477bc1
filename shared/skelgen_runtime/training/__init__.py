"""Training loops that write the run record (see :mod:`skelgen_runtime.runs`).

One loop per framework a project can be generated with (:data:`FRAMEWORKS`): ``keras``
(:mod:`.keras_fit`, ``model.fit``) and ``tf`` (:mod:`.custom_loop`, the project's own steps).
Importing this package is cheap (no TensorFlow).
"""

__all__ = ["FRAMEWORKS", "REMOVED_FRAMEWORKS"]

#: the --framework choices, each the name of a training loop
FRAMEWORKS = ("keras", "tf")
#: frameworks users ask for that are gone, and why
REMOVED_FRAMEWORKS = {
    "estimator": "tf.estimator was removed in TensorFlow 2.16; use --framework keras (model.fit) or tf (custom loop)",
}
