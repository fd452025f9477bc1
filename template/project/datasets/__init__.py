"""This project's datasets: record schema, tf.data pipeline, preprocessing, per-dataset builders."""
