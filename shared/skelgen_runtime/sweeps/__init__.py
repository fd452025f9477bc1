"""Sweeps: hyperparameter search on Optuna where every trial is an ordinary ``train.py`` run.

- :mod:`~skelgen_runtime.sweeps.spec`: the sweep file (``sweeps/NAME.yaml``) read and checked;
- :mod:`~skelgen_runtime.sweeps.check`: the file checked against the project's own config schema;
- :mod:`~skelgen_runtime.sweeps.runner`: the workers (exactly N finished trials, kill-safe, several
  processes or machines on one RDB storage);
- :mod:`~skelgen_runtime.sweeps.trial`: the training side (the run tagged, the objective reported
  per epoch, pruning);
- :mod:`~skelgen_runtime.sweeps.results`: the ranked trials, the best config, Optuna's plots.

``skelgen sweep run|show|plot|best`` is the command line. Optuna is the ``sweep`` extra
(``pip install 'skelgen-tf[sweep]'``); nothing here imports TensorFlow but ``check``.
"""
