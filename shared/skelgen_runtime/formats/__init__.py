"""Output formats: how a model's output tensor is laid out, its training targets and its decoding.

A format sits below both the data pipeline (which encodes targets) and the task binding (which
decodes outputs), so neither imports the other.
"""

__all__ = ["centernet"]
