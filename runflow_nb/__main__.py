"""``python -m runflow_nb``: the ``runflow-nb`` command line."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
