"""Tie a rank's life to its launcher's, so that no rank outlives a killed launcher.

A launcher that gets SIGINT or SIGTERM ends its ranks itself. One that is SIGKILLed cannot,
so on Linux each rank asks the kernel (``prctl(PR_SET_PDEATHSIG)``) to be sent SIGKILL when
its parent dies. The setting survives ``exec``, so it is made in the child between fork and
exec (``treecast run``) or first thing in the worker (``treecast.launch``).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int) -> bool:
    """Ask to be SIGKILLed when the parent process ``parent_pid`` dies (Linux only).

    If the parent is already gone (it died before the request was made), exit at once.

    Args:
        parent_pid: the pid the caller expects as its parent (the launcher).

    Returns:
        True if the kernel took the request, False on platforms without ``prctl``.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        ok = libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False
    if os.getppid() != parent_pid:
        os._exit(128 + int(signal.SIGKILL))
    return ok
