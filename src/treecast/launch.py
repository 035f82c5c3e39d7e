"""``treecast.launch``: run a Python function on N fresh processes and collect its results.

The function and its arguments are pickled with cloudpickle (so that
lambdas, closures and functions defined in a notebook or ``__main__`` work) into a private
temporary directory. Each rank is a new interpreter (``sys.executable -m
treecast._launch_worker``, never a fork of the caller), started and supervised by the same
launcher as ``treecast run``. Ranks' output is forwarded to the caller's ``sys.stdout`` and
``sys.stderr``, so it shows in Jupyter.
"""

from __future__ import annotations

import inspect
import os
import pickle
import shutil
import site
import sys
import tempfile
import warnings
from collections.abc import Callable
from typing import Any, Literal, TypeVar, overload

from .errors import InvalidArgumentError, RemoteError, SerializationError, TimeoutError
from .launcher import (
    MPI4PY_SHIM,
    REAL_MPI4PY_WARNING,
    TextSink,
    describe_exit,
    mpi4py_env,
    run_job,
    wants_real_mpi4py,
)
from .launcher.payload import PAYLOAD_FILE, dumps, result_file
from .launcher.supervisor import GRACE_SECONDS

T = TypeVar("T")

WORKER_MODULE = "treecast._launch_worker"


def _name(fn: Callable[..., Any]) -> str:
    return getattr(fn, "__qualname__", None) or repr(fn)


def _payload(fn: Callable[..., Any], args: tuple[Any, ...]) -> bytes:
    """Pickle ``(fn, args)`` for the ranks (cloudpickle: a function defined in a notebook,
    ``__main__``, a lambda or a closure goes by value).

    Raises:
        SerializationError: naming what cannot be pickled (the function, or which argument)
            and why, with advice for that cause.
    """
    try:
        return dumps((fn, args))
    except Exception as exc:
        raise _unpicklable(fn, args, exc) from exc


def _unpicklable(fn: Callable[..., Any], args: tuple[Any, ...], exc: Exception) -> Exception:
    """The error for a payload that does not pickle: find which part fails."""
    for i, arg in enumerate(args):
        try:
            dumps(arg)
        except Exception as part_exc:
            return SerializationError(
                f"launch: cannot send argument {i} of {_name(fn)} ({type(arg).__name__} "
                f"object) to the ranks: {part_exc}. Each rank is a new process: pass what it "
                f"can rebuild the object from (a path, a configuration) and create the "
                f"{type(arg).__name__} inside the function"
            )
    if inspect.isfunction(fn):
        held = "the globals and closure variables it uses"
    else:  # a bound method, a functools.partial, a callable object
        held = f"what it holds (a {type(fn).__name__}: its object, arguments or attributes)"
    return SerializationError(
        f"launch: cannot send {_name(fn)} to the ranks: {exc}. It is pickled by value with "
        f"{held}; one of those cannot be pickled (a lock, an open file or connection, a "
        f"live communicator): create it inside the function"
    )


def _real_mpi4py() -> bool:
    """Whether the ranks import the installed mpi4py (``TREECAST_MPI4PY=real``; warned:
    the real one sees a world of 1 in every rank) rather than treecast's stand-in.

    Raises:
        InvalidArgumentError: ``TREECAST_MPI4PY`` holds a value it does not take.
    """
    try:
        real = wants_real_mpi4py()
    except ValueError as exc:
        raise InvalidArgumentError(f"launch: {exc}") from None
    if real:
        warnings.warn(f"launch: {REAL_MPI4PY_WARNING}", RuntimeWarning, stacklevel=3)
    return real


def _worker_env(real_mpi4py: bool) -> dict[str, str]:
    """Make the workers able to import treecast even if the caller put it on sys.path
    itself, and give them treecast's stand-in as ``mpi4py`` unless ``real_mpi4py``."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    standard = [*site.getsitepackages(), site.getusersitepackages()]
    existing = os.environ.get("PYTHONPATH")
    path = existing if root in standard else root + (os.pathsep + existing if existing else "")
    env = {"PYTHONPATH": path} if path else {}
    return env if real_mpi4py else mpi4py_env(env)


def _caller_path(real_mpi4py: bool) -> list[str]:
    """The caller's sys.path, with '' (the current directory) made absolute, for the ranks
    (after the stand-in ``mpi4py``'s directory unless ``real_mpi4py``)."""
    path = [entry or os.getcwd() for entry in sys.path]
    return path if real_mpi4py else [MPI4PY_SHIM, *path]


def _load(path: str) -> tuple[Any, ...] | None:
    try:
        with open(path, "rb") as f:
            outcome: tuple[Any, ...] = pickle.load(f)  # written by our own worker, in our 0700 dir
    except FileNotFoundError:
        return None
    return outcome


@overload
def launch(
    fn: Callable[..., T],
    nprocs: int,
    *args: Any,
    timeout: float | None = None,
    keep_going: Literal[False] = False,
    grace: float = GRACE_SECONDS,
) -> list[T]: ...


@overload
def launch(
    fn: Callable[..., T],
    nprocs: int,
    *args: Any,
    timeout: float | None = None,
    keep_going: Literal[True],
    grace: float = GRACE_SECONDS,
) -> list[T | RemoteError]: ...


def launch(
    fn: Callable[..., T],
    nprocs: int,
    *args: Any,
    timeout: float | None = None,
    keep_going: bool = False,
    grace: float = GRACE_SECONDS,
) -> list[T] | list[T | RemoteError]:
    """Run ``fn(*args)`` on ``nprocs`` new processes (ranks) and return their results.

    Each rank is a fresh Python interpreter with the ``TREECAST_*`` environment of a
    ``treecast run`` job, so ``fn`` can call :func:`treecast.world` and communicate. The
    caller's ``sys.path`` and current directory are reproduced in the ranks. Their output
    goes to this process's ``sys.stdout``/``sys.stderr`` in whole lines; their stdin is
    /dev/null. If a rank fails, the others' calls with it raise ``ProcessFailedError``; they
    get ``grace`` seconds to handle it and return or exit, then are ended, and the first
    failure is raised here (unless ``keep_going``).

    Args:
        fn: the function to run on every rank.
        nprocs: number of ranks (>= 1).
        *args: positional arguments passed to ``fn`` on every rank.
        timeout: seconds after which the job is ended (None: no limit).
        keep_going: a rank that fails does not end the others (its peers see it dead), and
            its entry in the result is the :class:`RemoteError` that would have been raised.
        grace: seconds the other ranks get after a rank failed before they are ended (>= 0).

    Returns:
        ``fn``'s return values, indexed by rank.

    Raises:
        TypeError: ``fn`` is not callable.
        SerializationError: ``fn`` or ``args`` cannot be pickled (a ``TypeError`` too).
        InvalidArgumentError: ``nprocs`` < 1, ``timeout`` <= 0 or ``grace`` < 0 (a
            ``ValueError`` too).
        RemoteError: a rank raised (the message holds its traceback, also in
            ``remote_traceback``), or died or exited without returning.
        TimeoutError: the job ran longer than ``timeout``.
        OSError: the ranks or their shared memory could not be created.
    """
    if not callable(fn):
        raise TypeError(f"launch: fn must be callable, got {type(fn).__name__}")
    if isinstance(nprocs, bool) or not isinstance(nprocs, int) or nprocs < 1:
        raise InvalidArgumentError(f"launch: nprocs must be an int >= 1, got {nprocs!r}")
    if timeout is not None and not timeout > 0:
        raise InvalidArgumentError(f"launch: timeout must be > 0 seconds, got {timeout!r}")
    if isinstance(grace, bool) or not isinstance(grace, (int, float)) or not grace >= 0:
        raise InvalidArgumentError(f"launch: grace must be a number >= 0 seconds, got {grace!r}")
    payload = _payload(fn, args)
    real_mpi4py = _real_mpi4py()
    workdir = tempfile.mkdtemp(prefix="treecast-launch-")  # mode 0700
    try:
        with open(os.path.join(workdir, PAYLOAD_FILE), "wb") as f:
            pickle.dump(_caller_path(real_mpi4py), f)
            f.write(payload)
        result = run_job(
            [sys.executable, "-m", WORKER_MODULE, workdir],
            nprocs,
            sink=TextSink(),
            stdin_to_rank0=False,
            env=_worker_env(real_mpi4py),
            timeout=timeout,
            keep_going=keep_going,
            grace=grace,
        )
        return _results(fn, nprocs, result, workdir, timeout, keep_going=keep_going)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _results(
    fn: Callable[..., T],
    nprocs: int,
    result: Any,
    workdir: str,
    timeout: float | None,
    *,
    keep_going: bool,
) -> list[T | RemoteError]:
    """Every rank's return value from the job's ``result`` and the ranks' result files, or
    the error that reports how the job failed (see :func:`launch`)."""
    if result.start_error is not None:
        raise result.start_error
    if result.timed_out:
        unfinished = [r for r in range(nprocs) if not os.path.exists(result_file(workdir, r))]
        raise TimeoutError(
            f"launch({_name(fn)}) timed out after {timeout:g} s; "
            f"ranks {unfinished} had not returned"
        )
    if result.failed_rank is not None and not keep_going:
        raise _rank_error(fn, result.failed_rank, result.statuses, workdir)
    values: list[T | RemoteError] = []
    for rank in range(nprocs):
        outcome = _load(result_file(workdir, rank))
        if keep_going and (outcome is None or outcome[0] == "error"):
            values.append(_rank_error(fn, rank, result.statuses, workdir))
            continue
        if outcome is None:
            raise RemoteError(
                f"launch: rank {rank} exited without returning a result from {_name(fn)}",
                rank,
            )
        values.append(outcome[1])
    return values


def _rank_error(
    fn: Callable[..., Any], rank: int, statuses: tuple[int | None, ...], workdir: str
) -> RemoteError:
    """The error that reports the first failing rank: its traceback, or how it died."""
    outcome = _load(result_file(workdir, rank))
    if outcome is not None and outcome[0] == "error":
        _, remote_traceback, summary = outcome
        return RemoteError(
            f"launch: rank {rank} raised {summary}\n\n"
            f"Remote traceback (rank {rank}):\n{remote_traceback}",
            rank,
            remote_traceback,
        )
    status = statuses[rank]
    how = describe_exit(status) if status is not None else "ended"
    if outcome is not None:  # it returned, then failed at exit (the reason is on its stderr)
        return RemoteError(
            f"launch: rank {rank} returned from {_name(fn)} but then {how} at exit (see its "
            "stderr above: a CollectiveMismatchError there means collective messages that "
            "no call received)",
            rank,
        )
    return RemoteError(f"launch: rank {rank} {how} before returning from {_name(fn)}", rank)
