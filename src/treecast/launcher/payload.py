"""Files shared by :func:`treecast.launch` and its worker: payload and per-rank results."""

from __future__ import annotations

import os
import pickle
from typing import Any

PAYLOAD_FILE = "payload.pkl"
"""Name of the payload file inside the work directory."""


def result_file(workdir: str, rank: int) -> str:
    """Path of the file where rank ``rank`` leaves its outcome."""
    return os.path.join(workdir, f"result-{rank}.pkl")


def dumps(obj: Any) -> bytes:
    """Pickle ``obj`` with cloudpickle (functions of ``__main__`` or a notebook, lambdas and
    closures by value).

    Raises:
        Exception: whatever the pickler raises for an object it cannot serialize.
    """
    import cloudpickle  # only the caller of launch pickles: not at every rank's start-up

    return bytes(cloudpickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))
