"""treecast's stand-in for the ``mpi4py`` package, put first on ``PYTHONPATH`` in the ranks
of ``treecast run`` and :func:`treecast.launch` (unless ``--real-mpi4py`` /
``TREECAST_MPI4PY=real``): ``from mpi4py import MPI`` and ``import mpi4py.MPI`` give
:mod:`treecast.MPI`, so unmodified mpi4py programs run without MPI installed.

Once imported, it takes its directory off ``PYTHONPATH``: processes that a rank starts (an
``mpiexec`` of a real MPI program, say) see the installed mpi4py again.
"""

from __future__ import annotations

import os
import sys
from types import SimpleNamespace
from typing import Any

from treecast import MPI
from treecast import __version__ as _treecast_version


def _leave_pythonpath() -> None:
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    entries = os.environ.get("PYTHONPATH", "").split(os.pathsep)
    kept = [e for e in entries if e and os.path.abspath(e) != here]
    if len(kept) != len([e for e in entries if e]):
        if kept:
            os.environ["PYTHONPATH"] = os.pathsep.join(kept)
        else:
            del os.environ["PYTHONPATH"]


_leave_pythonpath()


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
