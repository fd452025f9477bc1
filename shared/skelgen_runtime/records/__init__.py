"""Sharded, atomic, resumable TFRecord writing; ``dataset_info.json``; tf.data reading."""
