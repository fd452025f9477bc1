"""Preprocessing ops, per task. Each op takes and returns tensors of one example (no batch axis)."""
