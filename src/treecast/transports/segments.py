"""POSIX shared-memory segments owned by a job.

Every segment of a job is named ``/treecast-<job>-<what>``, where ``<job>`` is an
unguessable token made by the launcher, and created with mode 0600. The launcher calls
:func:`unlink_job_segments` when the job ends (also after ranks were SIGKILLed), so that
nothing is left in ``/dev/shm``; if the launcher itself is killed, its reaper process
(:mod:`treecast.launcher.reaper`) removes them. We do not use :mod:`multiprocessing.shared_memory`: its
resource tracker (Python < 3.13) unlinks segments that other processes still use.
"""

from __future__ import annotations

import mmap
import os
import secrets

try:  # CPython's own binding of shm_open/shm_unlink (Linux, macOS).
    from _posixshmem import shm_open as _shm_open
    from _posixshmem import shm_unlink as _shm_unlink
except ImportError:  # pragma: no cover - exotic platforms
    _shm_open = None
    _shm_unlink = None

PREFIX = "treecast-"
SHM_DIR = "/dev/shm"


def new_job_token() -> str:
    """Return a fresh unguessable job token (64 random bits, hex)."""
    return secrets.token_hex(8)


def segment_name(job: str, what: str) -> str:
    """Return the POSIX name (leading slash) of segment ``what`` of job ``job``."""
    return f"/{PREFIX}{job}-{what}"


def create_segment_fd(name: str, nbytes: int) -> int:
    """Create segment ``name`` (mode 0600, must not exist) of ``nbytes`` (at least 1);
    return an open read-write descriptor of it, which the caller closes.

    Raises:
        FileExistsError: a segment of that name exists.
        OSError: the system refused (for example /dev/shm is full); nothing is left named.
    """
    flags = os.O_CREAT | os.O_EXCL | os.O_RDWR
    fd = _shm_open(name, flags, 0o600) if _shm_open else os.open(SHM_DIR + name, flags, 0o600)
    try:
        os.ftruncate(fd, max(nbytes, 1))
    except BaseException:
        os.close(fd)
        unlink_segment(name)
        raise
    return fd


def open_segment_fd(name: str, writable: bool = True) -> int:
    """An open descriptor (read-write, or read-only) of the existing segment ``name``,
    which the caller closes.

    Raises:
        FileNotFoundError: no segment of that name.
    """
    flags = os.O_RDWR if writable else os.O_RDONLY
    return _shm_open(name, flags, 0o600) if _shm_open else os.open(SHM_DIR + name, flags)


def create_segment(name: str, nbytes: int) -> mmap.mmap:
    """Create segment ``name`` (mode 0600, must not exist) of ``nbytes`` and map it.

    Raises:
        FileExistsError: a segment of that name exists.
        OSError: the system refused (for example /dev/shm is full); nothing is left named.
    """
    fd = create_segment_fd(name, nbytes)
    try:
        return mmap.mmap(fd, max(nbytes, 1))
    except BaseException:
        unlink_segment(name)
        raise
    finally:
        os.close(fd)


def attach_segment(name: str) -> mmap.mmap:
    """Map the existing segment ``name`` read-write.

    Raises:
        FileNotFoundError: no segment of that name.
    """
    fd = open_segment_fd(name)
    try:
        return mmap.mmap(fd, os.fstat(fd).st_size)
    finally:
        os.close(fd)


def unlink_segment(name: str) -> bool:
    """Unlink segment ``name``; return False if it did not exist."""
    try:
        if _shm_unlink is not None:
            _shm_unlink(name)
        else:  # pragma: no cover
            os.unlink(SHM_DIR + name)
    except FileNotFoundError:
        return False
    return True


def job_stem(job: str) -> str:
    """The start of the name (in :data:`SHM_DIR`, no slash) of every segment of ``job``."""
    return f"{PREFIX}{job}-"


def job_segments(job: str) -> list[str]:
    """Return the names (leading slash) of every segment of ``job`` present in /dev/shm."""
    try:
        entries = os.listdir(SHM_DIR)
    except FileNotFoundError:  # pragma: no cover - no /dev/shm (not Linux)
        return []
    stem = job_stem(job)
    return sorted("/" + e for e in entries if e.startswith(stem))


def unlink_job_segments(job: str) -> list[str]:
    """Unlink every segment of ``job``; return the names removed."""
    return [name for name in job_segments(job) if unlink_segment(name)]
