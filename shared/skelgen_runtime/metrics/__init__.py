"""Task metrics. NumPy implementations for evaluation reports; Keras metrics for training curves."""
