"""Training loops that write the run record (see :mod:`skelgen_runtime.runs`)."""
