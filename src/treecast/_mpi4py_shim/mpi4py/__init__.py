"""treecast's stand-in for the ``mpi4py`` package, put first on ``PYTHONPATH`` by
``treecast run --mpi4py``: ``from mpi4py import MPI`` and ``import mpi4py.MPI`` give
:mod:`treecast.MPI`, so unmodified mpi4py programs run without MPI installed.
"""

from __future__ import annotations

import sys
from types import SimpleNamespace
from typing import Any

from treecast import MPI
from treecast import __version__ as _treecast_version

sys.modules[__name__ + ".MPI"] = MPI

__version__ = "4.1.2"
"""The mpi4py release whose API treecast.MPI follows."""
treecast_version = _treecast_version

rc = SimpleNamespace(
    initialize=True,
    threads=True,
    thread_level="multiple",
    finalize=None,
    fast_reduce=True,
    recv_mprobe=True,
    irecv_bufsz=32768,
    errors="exception",
)
"""mpi4py's runtime configuration; treecast reads none of it (kept so that programs that
set ``mpi4py.rc.<option>`` before importing MPI run)."""


def get_include() -> str:
    """Not available: treecast has no C API.

    Raises:
        NotImplementedError: always.
    """
    raise NotImplementedError("mpi4py.get_include: treecast has no C headers")


def get_config() -> dict[str, Any]:
    """An empty build configuration (treecast builds against no MPI)."""
    return {}


def profile(*args: Any, **kwargs: Any) -> None:
    """Not available: treecast has no MPI profiling layer.

    Raises:
        NotImplementedError: always.
    """
    raise NotImplementedError("mpi4py.profile: treecast has no MPI profiling layer")
