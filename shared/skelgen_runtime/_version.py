"""The version of the ``skelgen-tf`` distribution (CLI, template and runtime library move together)."""

__version__ = "0.3.0"
