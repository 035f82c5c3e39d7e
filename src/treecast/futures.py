"""Task pools over a communicator (what ``mpi4py.futures`` offers): one rank submits calls,
the others run them.

    with CommExecutor(comm, root=0) as pool:   # collective over comm
        if pool is not None:                   # only the root gets an executor
            print(list(pool.map(f, range(100))))

The root's executor is a :class:`concurrent.futures.Executor`; a manager thread on the root
owns all of its communication (on a duplicate of ``comm``): it sends each call to an idle
worker and sets the future when the result comes back. Every other rank runs
:func:`serve` until the root shuts the pool down. Calls and results travel pickled; an
exception raised by a call is set on its future; a call that cannot be rebuilt on the
worker (a function the worker cannot import) fails its future and the worker goes on.

``python -m mpi4py.futures script.py`` under ``treecast run --mpi4py`` uses the same
pieces: rank 0 runs the script with a pool of every other rank, the others serve.
"""

from __future__ import annotations

import atexit
import collections
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future, ThreadPoolExecutor, as_completed
from typing import Any

from .comm import Comm
from .constants import ANY_SOURCE
from .errors import DeserializationError, TreecastError
from .status import Status

TASK_TAG = 1
RESULT_TAG = 2
POLL_SECONDS = 0.0002
"""How long the manager waits for new work between polls while calls are out."""


def serve(comm: Comm, root: int = 0) -> int:
    """Run calls sent by ``root`` until it says stop; return how many ran.

    Raises:
        ProcessFailedError: the root died.
    """
    done = 0
    while True:
        try:
            task = comm.recv(source=root, tag=TASK_TAG)
        except TreecastError as exc:  # the call could not be rebuilt here
            comm.send((False, exc), root, RESULT_TAG)
            continue
        if task is None:
            return done
        fn, args, kwargs = task
        try:
            outcome: tuple[bool, Any] = (True, fn(*args, **kwargs))
        except BaseException as exc:  # reported to the submitter, as concurrent.futures does
            outcome = (False, exc)
        try:
            comm.send(outcome, root, RESULT_TAG)
        except TreecastError as exc:  # the result (or exception) does not pickle
            comm.send(
                (False, RuntimeError(f"the result could not be sent back: {exc}")), root, RESULT_TAG
            )
        done += 1


class Manager(threading.Thread):
    """The root's side of a pool: hands calls to idle workers, collects results."""

    def __init__(self, comm: Comm, workers: list[int]) -> None:
        super().__init__(name="treecast-pool", daemon=True)
        self.comm = comm
        self.workers = list(workers)
        self._queue: collections.deque[tuple[Future[Any], Callable[..., Any], Any, Any]] = (
            collections.deque()
        )
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = False
        self.error: BaseException | None = None
        _LIVE.add(self)
        _stop_at_exit()

    def submit(self, future: Future[Any], fn: Callable[..., Any], args: Any, kwargs: Any) -> None:
        """Queue a call for the next idle worker.

        Raises:
            RuntimeError: the pool was shut down or has failed.
        """
        with self._lock:
            if self.error is not None:
                raise RuntimeError(f"the pool has failed: {self.error}")
            if self._stopping:
                raise RuntimeError("cannot submit to a pool that has been shut down")
            self._queue.append((future, fn, args, kwargs))
        self._wake.set()

    def stop(self, wait: bool = True) -> None:
        """Stop the workers once every queued call has run."""
        with self._lock:
            self._stopping = True
        self._wake.set()
        if wait and self.is_alive():
            self.join()

    def cancel_queued(self) -> None:
        with self._lock:
            while self._queue:
                self._queue.popleft()[0].cancel()

    def run(self) -> None:
        """Hand queued calls to idle workers and settle their futures until stopped; if the
        job fails, fail every future and free the workers."""
        comm, idle = self.comm, list(self.workers)
        running: dict[int, Future[Any]] = {}
        pending = None
        status = Status()
        try:
            while True:
                if self._dispatch(idle, running):
                    for worker in self.workers:
                        comm.send(None, worker, TASK_TAG)
                    return
                if not running:
                    self._wake.wait(0.1)
                    self._wake.clear()
                    continue
                if pending is None:
                    pending = comm.irecv(source=ANY_SOURCE, tag=RESULT_TAG)
                try:
                    finished, outcome = pending.test(status)
                except DeserializationError as exc:  # the result does not rebuild here
                    finished, outcome = True, (False, exc)
                if not finished:
                    self._wake.wait(POLL_SECONDS)
                    self._wake.clear()
                    continue
                pending = None
                worker = status.Get_source()
                fut = running.pop(worker)
                idle.append(worker)
                _settle(fut, outcome)
        except BaseException as exc:  # the job is failing: fail every future, free the workers
            self._fail(exc, running)

    def _dispatch(self, idle: list[int], running: dict[int, Future[Any]]) -> bool:
        """Send queued calls to idle workers; return whether the pool is done (stopping, with
        nothing queued or out)."""
        with self._lock:
            work = []
            while idle and self._queue:
                fut, fn, args, kwargs = self._queue.popleft()
                if fut.set_running_or_notify_cancel():
                    work.append((idle.pop(0), fut, (fn, args, kwargs)))
            done = self._stopping and not self._queue and not running and not work
        for worker, fut, task in work:
            try:
                self.comm.send(task, worker, TASK_TAG)
            except TreecastError as exc:  # the call does not pickle
                fut.set_exception(exc)
                idle.append(worker)
                continue
            running[worker] = fut
        return done

    def _fail(self, exc: BaseException, running: dict[int, Future[Any]]) -> None:
        """Record ``exc`` as the pool's error, set it on every unfinished future, drop the
        queue and stop the workers that can still hear."""
        with self._lock:
            self.error = exc
        for fut in running.values():
            if not fut.done():
                fut.set_exception(exc)
        self.cancel_queued()
        for worker in self.workers:
            try:
                self.comm.send(None, worker, TASK_TAG)
            except BaseException:  # a dead worker: nothing to stop
                pass


def _settle(fut: Future[Any], outcome: tuple[bool, Any]) -> None:
    """Set a worker's ``(ok, value)`` outcome on its future: the result, or the exception."""
    ok, value = outcome
    if ok:
        fut.set_result(value)
    else:
        fut.set_exception(value)


_LIVE: weakref.WeakSet[Manager] = weakref.WeakSet()
_EXIT_HOOK: list[bool] = []


def _stop_at_exit() -> None:
    """At interpreter exit, before the transport closes (atexit runs hooks last-in first-out
    and the world registered its close first), let every pool finish its calls and stop
    its workers, as ``concurrent.futures`` joins its threads: no pool thread may still be
    polling when the transport flushes."""
    if not _EXIT_HOOK:
        _EXIT_HOOK.append(True)
        atexit.register(_stop_all)


def _stop_all() -> None:
    for manager in list(_LIVE):
        if manager.is_alive():
            manager.stop(wait=True)


class PoolExecutor(Executor):
    """A :class:`concurrent.futures.Executor` whose calls run on other ranks.

    Args:
        manager: the root's manager (made by :class:`CommExecutor` or the ``mpi4py.futures``
            runner).
        owns: shutting this executor down stops the workers (else only waits for its own
            calls, and the runner stops the workers at the end).
    """

    def __init__(self, manager: Manager, owns: bool = True) -> None:
        self._manager = manager
        self._owns = owns
        self._futures: set[Future[Any]] = set()
        self._shutdown = False

    @property
    def num_workers(self) -> int:
        """How many ranks run the calls."""
        return len(self._manager.workers)

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        """Schedule ``fn(*args, **kwargs)`` on a worker; return its future.

        Raises:
            RuntimeError: the executor was shut down.
        """
        if self._shutdown:
            raise RuntimeError("cannot submit after shutdown")
        fut: Future[Any] = Future()
        self._manager.submit(fut, fn, args, kwargs)
        self._futures.add(fut)
        fut.add_done_callback(self._futures.discard)
        return fut

    def map(
        self,
        fn: Callable[..., Any],
        *iterables: Iterable[Any],
        timeout: float | None = None,
        chunksize: int = 1,
        unordered: bool = False,
    ) -> Iterator[Any]:
        """``fn`` over the iterables, as :meth:`concurrent.futures.Executor.map`;
        ``unordered=True`` yields results as they complete (mpi4py's extension).
        ``chunksize`` is accepted; every call travels on its own.

        Raises:
            TimeoutError: a result is not there within ``timeout`` seconds.
        """
        if chunksize < 1:
            raise ValueError(f"map: chunksize must be >= 1, got {chunksize}")
        futures = [self.submit(fn, *args) for args in zip(*iterables, strict=False)]
        if unordered:
            return (f.result() for f in as_completed(futures, timeout))
        return (f.result(timeout) for f in futures)

    def starmap(
        self, fn: Callable[..., Any], iterable: Iterable[Any], timeout: float | None = None
    ) -> Iterator[Any]:
        """``map`` with argument tuples: ``fn(*args)`` for each ``args``."""
        futures = [self.submit(fn, *args) for args in iterable]
        return (f.result(timeout) for f in futures)

    def bootup(self, wait: bool = True) -> PoolExecutor:
        """The workers are already up (mpi4py's API); returns self."""
        return self

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """No new calls; with ``wait``, return once the submitted ones finished.
        ``cancel_futures`` cancels calls not yet started."""
        self._shutdown = True
        if cancel_futures:
            for fut in list(self._futures):
                fut.cancel()
        if self._owns:
            if cancel_futures:
                self._manager.cancel_queued()
            self._manager.stop(wait)
        elif wait:
            for fut in list(self._futures):
                try:
                    fut.exception()
                except BaseException:  # cancelled
                    pass


class CommExecutor:
    """``with CommExecutor(comm, root) as pool``: collective over ``comm``. The root gets a
    :class:`PoolExecutor` over every other rank; the others serve calls inside ``__enter__``
    until the root's block ends, then get None.

    On a communicator of one rank the calls run on a thread of that rank.

    Raises:
        InvalidRootError: a bad ``root``.
    """

    def __init__(self, comm: Comm | None = None, root: int = 0) -> None:
        from .runtime.world import world

        self._parent = world() if comm is None else comm
        self._root = self._parent._root(root, "CommExecutor")
        self._comm: Comm | None = None
        self._pool: PoolExecutor | None = None
        self._local: ThreadPoolExecutor | None = None

    def __enter__(self) -> Executor | None:
        comm = self._comm = self._parent.Dup()
        if comm.size < 2:  # nobody to send calls to: run them here, one at a time
            self._local = ThreadPoolExecutor(max_workers=1)
            return self._local
        if comm.rank != self._root:
            serve(comm, self._root)
            return None
        manager = Manager(comm, [r for r in range(comm.size) if r != self._root])
        manager.start()
        self._pool = PoolExecutor(manager)
        return self._pool

    def __exit__(self, *exc: Any) -> None:
        if self._local is not None:
            self._local.shutdown(wait=True)
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        if self._comm is not None:
            self._comm.Free()
