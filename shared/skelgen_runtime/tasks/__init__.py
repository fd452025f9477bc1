"""Task bindings: loss, training metrics, evaluation and prediction of each task."""
