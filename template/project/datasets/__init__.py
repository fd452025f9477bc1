"""This project's datasets: record schema, tf.data pipelines, preprocessing, per-dataset builders.

Owner: template. skelgen update brings new versions of this file and keeps your edits (three-way merge).
"""
