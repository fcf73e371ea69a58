"""Is there a live notebook front end (JupyterLab) to draw widgets in, or only a kernel run by
papermill, nbval or a script (where plain text and static HTML are the right output)?"""

from __future__ import annotations

import os

__all__ = ["interactive_frontend"]


def interactive_frontend() -> bool:
    """True in a kernel with a live frontend (JupyterLab), False under papermill/nbval/scripts."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    if shell is None or type(shell).__name__ != "ZMQInteractiveShell":
        return False
    # Kernels started by a Jupyter server get JPY_SESSION_NAME; papermill/nbval start kernels directly.
    return bool(os.environ.get("JPY_SESSION_NAME"))
