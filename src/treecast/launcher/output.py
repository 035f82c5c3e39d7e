"""Forward the ranks' output to the launcher's own streams, one whole line at a time.

Each rank's stdout and stderr arrive through a pipe in chunks of any size. A
:class:`LineForwarder` per (rank, stream) keeps the last incomplete line and hands only
complete lines to a :class:`Sink`, so that a line on the terminal never mixes two ranks.
The sink decides where lines go: :class:`FdSink` writes bytes to fd 1 and fd 2 (``treecast
run``); :class:`TextSink` writes text to whatever ``sys.stdout``/``sys.stderr`` are at the
time (``treecast.launch`` in a notebook, or under pytest's capture).
"""

from __future__ import annotations

import os
import select
import sys
import time
from collections.abc import Callable
from typing import Protocol

STDOUT = 1
"""Stream id of standard output (the fd number)."""
STDERR = 2
"""Stream id of standard error (the fd number)."""

MAX_LINE_BYTES = 1 << 20
"""A line longer than this is forwarded in pieces rather than held in memory without bound;
a held traceback longer than this is forwarded as it stands."""

TRACEBACK_START = b"Traceback (most recent call last):"
"""The line that starts a Python traceback: from it on, a stream's lines are held as a block."""
BLOCK_QUIET_SECONDS = 0.2
"""A held block is forwarded once its stream has been silent this long (a traceback is
written at once; its program then exits or goes on with other output)."""
BLOCK_MAX_SECONDS = 2.0
"""A held block is forwarded at the latest this long after it started."""

Rewrite = Callable[[bytes], "bytes | None"]
"""Turns a held block (whole lines, without prefixes) into what is forwarded instead, or
returns None to forward the block as it is."""


class Sink(Protocol):
    """Where the launcher writes complete lines: ``write(stream, data)``, stream STDOUT/STDERR."""

    def write(self, stream: int, data: bytes) -> None:
        """Write ``data`` (one or more complete lines) to ``stream``."""


class FdSink:
    """Writes bytes straight to file descriptors 1 and 2, bypassing Python's buffers.

    If a reader goes away (``treecast run ... | head``) the stream's further output is
    dropped; the job itself goes on, and the exit status still reports the ranks.
    """

    def __init__(self) -> None:
        self._closed: set[int] = set()

    def write(self, stream: int, data: bytes) -> None:
        """Write all of ``data`` to fd ``stream``."""
        if stream in self._closed:
            return
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(stream, view) :]
            except BlockingIOError:  # someone made our stdout non-blocking; wait for room
                select.select([], [stream], [])
            except OSError:
                self._closed.add(stream)
                return


class TextSink:
    """Writes decoded text to the current ``sys.stdout``/``sys.stderr`` and flushes.

    The streams are looked up on every write, so replacements made after the job started
    (Jupyter's kernel streams, pytest's capsys) receive the output.
    """

    def write(self, stream: int, data: bytes) -> None:
        """Decode ``data`` as UTF-8 (bad bytes replaced) and write it to ``stream``."""
        target = sys.stdout if stream == STDOUT else sys.stderr
        if target is None:  # pythonw, or a closed stream
            return
        target.write(data.decode("utf-8", errors="replace"))
        target.flush()


class LineForwarder:
    """Assembles the chunks of one rank's stream into lines and forwards whole lines.

    From a line that starts a traceback (:data:`TRACEBACK_START`) on, lines are held and
    forwarded later as one block: when the stream has been quiet for
    :data:`BLOCK_QUIET_SECONDS` (:meth:`forward_idle`), when the block is
    :data:`BLOCK_MAX_SECONDS` old or :data:`MAX_LINE_BYTES` long, or at :meth:`close`.

    Args:
        sink: where complete lines go.
        stream: STDOUT or STDERR.
        prefix: bytes put in front of every line (``b"[3] "`` with ``--tag-output``), or b"".
        rewrite: called with each held block when it is forwarded; what it returns (unless
            None) is forwarded instead, without the prefix (the launcher's own note, say).
    """

    def __init__(
        self, sink: Sink, stream: int, prefix: bytes = b"", rewrite: Rewrite | None = None
    ) -> None:
        self._sink = sink
        self._stream = stream
        self._prefix = prefix
        self._rewrite = rewrite
        self._pending = bytearray()
        self._held = bytearray()
        self._held_at = 0.0  # when the held block started
        self._heard_at = 0.0  # when it last grew

    def feed(self, chunk: bytes) -> None:
        """Add ``chunk``; forward every line it completes (or hold it, in a traceback)."""
        self._pending += chunk
        end = self._pending.rfind(b"\n") + 1
        if end == 0 and len(self._pending) > MAX_LINE_BYTES:
            end = len(self._pending)
        if end:
            self._lines(bytes(self._pending[:end]))
            del self._pending[:end]

    @property
    def holding(self) -> bool:
        """A block is held back."""
        return bool(self._held)

    def forward_idle(self, now: float | None = None) -> None:
        """Forward the held block if its stream has gone quiet or it is old enough."""
        if not self._held:
            return
        now = time.monotonic() if now is None else now
        if now - self._heard_at >= BLOCK_QUIET_SECONDS or now - self._held_at >= BLOCK_MAX_SECONDS:
            self.forward_held()

    def forward_held(self) -> None:
        """Forward the held block now, rewritten if a rewrite was given."""
        if not self._held:
            return
        block = bytes(self._held)
        self._held.clear()
        instead = self._rewrite(block) if self._rewrite is not None else None
        if instead is None:
            self._emit(block)
        else:
            self._sink.write(self._stream, instead)

    def close(self) -> None:
        """Forward the last line even if it lacks a newline (one is added so lines stay
        whole), and what is held."""
        if self._pending:
            self._lines(bytes(self._pending) + b"\n")
            self._pending.clear()
        self.forward_held()

    def _lines(self, lines: bytes) -> None:
        if not self._held:
            start = lines.find(TRACEBACK_START)
            while start > 0 and lines[start - 1 : start] != b"\n":  # not at a line's start
                start = lines.find(TRACEBACK_START, start + 1)
            if start < 0:
                self._emit(lines)
                return
            if start:
                self._emit(lines[:start])
                lines = lines[start:]
            self._held_at = time.monotonic()
        self._held += lines
        self._heard_at = time.monotonic()
        if len(self._held) > MAX_LINE_BYTES:
            self.forward_held()

    def _emit(self, lines: bytes) -> None:
        if self._prefix:
            parts = lines.split(b"\n")
            tail = parts.pop()  # empty unless a forced flush of an over-long line
            lines = b"".join(self._prefix + p + b"\n" for p in parts)
            if tail:
                lines += self._prefix + tail
        self._sink.write(self._stream, lines)
