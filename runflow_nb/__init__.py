"""runflow_nb: drive Runflow's Happy Horse reference-to-video model from JupyterLab.

>>> import runflow_nb as rf
>>> client = rf.Client()            # offline simulator unless RUNFLOW_API_KEY is set  # doctest: +SKIP
>>> result = client.generate(prompt="character1 trots", images=["horse.png"], resolution="720p")  # doctest: +SKIP
>>> rf.show(result)                                                                   # doctest: +SKIP

Heavy modules (PyAV, pandas, SQLAlchemy, ipywidgets) load on first use, so importing is fast.
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# A library logs; the application decides where logs go. Without this, a record with no handler
# configured would reach logging.lastResort (stderr: a pink box in Jupyter). Notices meant for the
# researcher are shown by runflow_nb.notices instead.
logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "AsyncClient",
    "Client",
    "Experiment",
    "GenerateForm",
    "Plan",
    "Result",
    "VideoRequest",
    "doctor",
    "errors",
    "form",
    "grid",
    "queue",
    "sample_images",
    "show",
]

_LAZY = {
    "AsyncClient": "runflow_nb.client",
    "Client": "runflow_nb.client",
    "Result": "runflow_nb.client",
    "VideoRequest": "runflow_nb.request",
    "Experiment": "runflow_nb.experiment",
    "Plan": "runflow_nb.plan",
    "grid": "runflow_nb.plan",
    "GenerateForm": "runflow_nb.widgets.form",
    "form": "runflow_nb.widgets.form",
    "show": "runflow_nb.views.display",
    "errors": "runflow_nb.errors",
    "doctor": "runflow_nb.diagnose",
    "sample_images": "runflow_nb.samples",
    "queue": "runflow_nb.experiment",
}

if TYPE_CHECKING:
    from . import errors
    from .client import AsyncClient, Client, Result
    from .diagnose import doctor
    from .experiment import Experiment, queue
    from .plan import Plan, grid
    from .request import VideoRequest
    from .samples import sample_images
    from .views.display import show
    from .widgets.form import GenerateForm, form


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'runflow_nb' has no attribute {name!r}")
    mod = importlib.import_module(module)
    value = getattr(mod, name, mod)  # a function of that name (doctor), else the module itself (errors)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
