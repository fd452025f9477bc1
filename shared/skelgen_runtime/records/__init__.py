"""Sharded, atomic, resumable TFRecord writing (by local worker processes or an Apache Beam pipeline);
``dataset_info.json``; tf.data reading."""
