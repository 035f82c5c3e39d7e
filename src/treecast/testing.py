"""Reusable helpers for tests of treecast and of programs built on it.

Transport conformance: :func:`check_transport` runs every check of
:mod:`treecast.transports.conformance` against ranks made by a runner, such as
:func:`inproc_ranks` (threads over an in-process world) or :func:`shm_ranks` (processes over
shared memory, started like :func:`treecast.launch`).
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

from .errors import ProcessFailedError, RemoteError, TimeoutError
from .launch import launch
from .launcher import describe_exit
from .runtime.world import world_transport
from .transports.conformance import CHECKS, Body, RankRunner, check_transport
from .transports.inproc import InprocWorld

__all__ = ["CHECKS", "RankRunner", "check_transport", "inproc_ranks", "run_ranks", "shm_ranks"]

DIED_STATUS = 86
"""Exit status of a rank of :func:`shm_ranks` that called ``die()``."""


@contextlib.contextmanager
def _shipped_by_value(fn: Callable[..., Any]) -> Iterator[None]:
    """Pickle ``fn``'s module by value while the block runs, so that functions defined in
    modules the ranks cannot import (pytest test files) can run there."""
    module = sys.modules.get(getattr(fn, "__module__", "") or "")
    try:
        import cloudpickle
    except ImportError:  # pragma: no cover - cloudpickle is a dev dependency
        yield
        return
    ship = (
        module is not None
        and module.__name__ != "__main__"
        and not module.__name__.startswith("treecast")
    )
    if ship:
        cloudpickle.register_pickle_by_value(module)
    try:
        yield
    finally:
        if ship:
            cloudpickle.unregister_pickle_by_value(module)


def run_ranks(
    fn: Callable[..., Any],
    nprocs: int,
    *args: Any,
    timeout: float = 120.0,
    keep_going: bool = False,
) -> list[Any]:
    """Run ``fn(*args)`` on ``nprocs`` ranks and return every rank's result.

    Unlike :func:`treecast.launch`, the function's module is shipped by value, so test
    functions defined in modules that the ranks cannot import (pytest test files) work.
    ``keep_going``: as :func:`treecast.launch`'s (a failing rank's entry is its
    :class:`~treecast.errors.RemoteError`; a rank that returned and then failed at exit
    keeps its value).

    Raises:
        RemoteError: a rank raised (without ``keep_going``); the message carries its
            traceback.
        TimeoutError: the job did not finish within ``timeout`` seconds.
    """
    with _shipped_by_value(fn):
        if keep_going:
            return launch(fn, nprocs, *args, timeout=timeout, keep_going=True)
        return launch(fn, nprocs, *args, timeout=timeout)


def _shm_rank(body: Body) -> Any:
    def die() -> NoReturn:
        os._exit(DIED_STATUS)

    return body(world_transport(), die)


def shm_ranks(n: int, body: Body, timeout: float = 120.0) -> list[Any]:
    """Run ``body(transport, die)`` on ``n`` processes over the shared-memory transport
    (the world transport of a :func:`treecast.launch` job); ``die()`` ends the process with
    status :data:`DIED_STATUS`, which the launcher reports to the others as a death.

    Returns:
        Each rank's return value; None for a rank that called ``die()``.

    Raises:
        RemoteError: a rank raised or died otherwise (the lowest such rank).
        TimeoutError: the ranks did not finish within ``timeout`` seconds.
    """
    with _shipped_by_value(body):
        outcomes = launch(_shm_rank, n, body, timeout=timeout, keep_going=True)
    died = describe_exit(DIED_STATUS)
    results: list[Any] = []
    for outcome in outcomes:
        if isinstance(outcome, RemoteError):
            if died not in str(outcome):
                raise outcome
            outcome = None
        results.append(outcome)
    return results


class _Died(BaseException):
    """Unwinds the thread of an in-process rank that called ``die()``."""


def inproc_ranks(n: int, body: Body, timeout: float = 60.0) -> list[Any]:
    """Run ``body(transport, die)`` on the ``n`` ranks of a new
    :class:`~treecast.transports.inproc.InprocWorld`, one thread each; ``die()`` kills the
    calling rank (:meth:`~treecast.transports.inproc.InprocWorld.kill`) and ends its thread.

    A rank that raises is killed too, so that its peers stop waiting for it.

    Returns:
        Each rank's return value; None for a rank that called ``die()``.

    Raises:
        BaseException: the first error a rank raised, preferring a root cause over the
            :class:`ProcessFailedError` its peers then raised.
        TimeoutError: a rank was still running after ``timeout`` seconds.
    """
    ranks = InprocWorld(n)
    results: list[Any] = [None] * n
    errors: dict[int, BaseException] = {}

    def run(rank: int) -> None:
        transport = ranks[rank]
        transport.default_timeout = timeout

        def die() -> NoReturn:
            ranks.kill(rank)
            raise _Died

        try:
            results[rank] = body(transport, die)
        except _Died:
            pass
        except BaseException as exc:  # handed to the caller below
            errors[rank] = exc
            ranks.kill(rank)

    threads = [
        threading.Thread(target=run, args=(r,), name=f"inproc rank {r}", daemon=True)
        for r in range(n)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout + 5.0)
    stuck = [r for r, thread in enumerate(threads) if thread.is_alive()]
    if stuck:
        raise TimeoutError(f"inproc_ranks: ranks {stuck} still running after {timeout:g} s")
    if errors:
        causes = [e for e in errors.values() if not isinstance(e, ProcessFailedError)]
        raise (causes or list(errors.values()))[0]
    return results
