"""``python -m skelgen``: the same command line as ``skelgen``."""

from skelgen.cli import main

if __name__ == "__main__":
    main()
