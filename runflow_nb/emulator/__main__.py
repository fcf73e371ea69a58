"""``python -m runflow_nb.emulator``: the same as ``runflow-nb emulator``."""

from .cli import emulator_main

raise SystemExit(emulator_main())
