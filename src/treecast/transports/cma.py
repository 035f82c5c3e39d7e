"""Cross-memory attach (Linux ``process_vm_readv``): copy straight out of another local
process's memory, one copy instead of two through shared memory.

A process must allow it first (:func:`enable`: ``prctl(PR_SET_PTRACER, ANY)``, needed under
Yama's ``ptrace_scope`` 1); containers may forbid the system call altogether, so callers
probe with :func:`read` once and fall back to shared memory when it fails. Measured here,
n = 2: 16 MiB in 0.70 ms and 64 MiB in 3.2 ms against 1.0 and 5.4 ms through the node arena
in the same hour (pinning the pages costs more than the copy below a few MiB: 1 MiB took
70 us against 24 us).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
from typing import Any

import numpy as np

_PR_SET_PTRACER = 0x59616D61
_PR_SET_PTRACER_ANY = ctypes.c_ulong(-1 & 0xFFFFFFFFFFFFFFFF)
_MAX_PIECE = 1 << 30
"""Bytes per system call (the kernel may copy less than asked; the rest is asked again)."""


class _IoVec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


_libc: Any = None


def _lib() -> Any:
    global _libc
    if _libc is None:
        if not sys.platform.startswith("linux"):
            _libc = False
        else:
            # the C library is already loaded: looking it up by name (find_library) runs
            # ldconfig, which costs a rank's start-up tens of milliseconds
            lib = ctypes.CDLL(None, use_errno=True)
            if getattr(lib, "process_vm_readv", None) is None:
                lib = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
            fn = getattr(lib, "process_vm_readv", None)
            if fn is None:
                _libc = False
            else:
                fn.restype = ctypes.c_ssize_t
                fn.argtypes = [
                    ctypes.c_int,
                    ctypes.POINTER(_IoVec),
                    ctypes.c_ulong,
                    ctypes.POINTER(_IoVec),
                    ctypes.c_ulong,
                    ctypes.c_ulong,
                ]
                _libc = lib
    return _libc


def enable() -> bool:
    """Let any process of this user read this one's memory (under Yama); True if the call
    exists on this system."""
    lib = _lib()
    if not lib:
        return False
    lib.prctl(_PR_SET_PTRACER, _PR_SET_PTRACER_ANY, 0, 0, 0)
    return True


_available: bool | None = None


def available() -> bool:
    """True if this system lets this process call ``process_vm_readv`` (probed once, on
    this process's own memory: containers may forbid the call altogether)."""
    global _available
    if _available is None:
        probe = bytearray(b"cma probe")
        got = bytearray(len(probe))
        _available = read(os.getpid(), address(memoryview(probe)), memoryview(got)) and (
            got == probe
        )
    return _available


def address(view: memoryview) -> int:
    """The address of a contiguous buffer's first byte."""
    return int(np.frombuffer(view, dtype=np.uint8).ctypes.data) if view.nbytes else 0


def read(pid: int, remote: int, view: memoryview) -> bool:
    """Copy ``view.nbytes`` bytes at address ``remote`` of process ``pid`` into ``view``;
    False if the system refuses (then nothing can be assumed about ``view``'s contents)."""
    lib = _lib()
    if not lib:
        return False
    local = address(view)
    done, total = 0, view.nbytes
    while done < total:
        n = min(_MAX_PIECE, total - done)
        mine = _IoVec(local + done, n)
        theirs = _IoVec(remote + done, n)
        got = lib.process_vm_readv(pid, ctypes.byref(mine), 1, ctypes.byref(theirs), 1, 0)
        if got <= 0:
            return False
        done += got
    return True
