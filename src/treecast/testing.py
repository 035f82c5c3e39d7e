"""Reusable helpers for tests of treecast and of programs built on it."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from .launch import launch


def run_ranks(fn: Callable[..., Any], nprocs: int, *args: Any, timeout: float = 120.0) -> list[Any]:
    """Run ``fn(*args)`` on ``nprocs`` ranks and return every rank's result.

    Unlike :func:`treecast.launch`, the function's module is shipped by value, so test
    functions defined in modules that the ranks cannot import (pytest test files) work.

    Raises:
        RemoteError: a rank raised; the message carries its traceback.
        TimeoutError: the job did not finish within ``timeout`` seconds.
    """
    module = sys.modules.get(getattr(fn, "__module__", "") or "")
    registered = False
    try:
        import cloudpickle

        if (
            module is not None
            and module.__name__ not in ("__main__",)
            and not module.__name__.startswith("treecast")
        ):
            cloudpickle.register_pickle_by_value(module)
            registered = True
    except ImportError:  # pragma: no cover - cloudpickle is a dev dependency
        cloudpickle = None
    try:
        return launch(fn, nprocs, *args, timeout=timeout)
    finally:
        if registered and cloudpickle is not None and module is not None:
            cloudpickle.unregister_pickle_by_value(module)
