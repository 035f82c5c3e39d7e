"""Start the ranks of a job, forward their output, watch them, and clean up after them.

:func:`run_job` is the whole life of a job::

    start the transport's job  ->  start ranks 0..n-1  ->  supervise  ->  shut down
                                                           |                |
      read pipes (selectors), forward whole lines  <-------+                +-> end live ranks
      reap exits: a failed rank is marked dead (job.mark_dead),                 close pipes
        and the first failure ends the others after a grace                    job.unlink()
      timeout / SIGINT / SIGTERM -> end the job

The transport's half of the job (:class:`~treecast.transports.base.TransportJob`, chosen by
``TREECAST_TRANSPORT``; for ``shm`` the world segment) owns whatever the ranks share: the
launcher never sees its layout.

When a rank fails, the others are not ended at once: marked dead, the failed rank makes
their blocking calls raise ``ProcessFailedError``, and they get a grace period (``grace``,
2 s) to run their handlers (``except``/``finally``: save a checkpoint, close a file) and
exit. Ranks still running after it are ended. Ending ranks is always SIGTERM first, then
SIGKILL after ``kill_after`` seconds, sent by pid to the processes this launcher started
and to nothing else.

A rank's traceback reaches the launcher's stderr as one block (see
:class:`~.output.LineForwarder`); a survivor's traceback that ends in the
``ProcessFailedError`` caused by the first failure is shown as one line.

The job's shared-memory segments are unlinked however the job ends, including when ranks
were SIGKILLed; if the launcher itself is killed, its reaper (:mod:`.reaper`, started
first) unlinks them.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import selectors
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import IO, Any

from ..runtime.env import ENV_JOB, ENV_LAUNCHER_PID, ENV_RANK, ENV_SIZE
from ..tracing.job import UNTRACED, JobTrace, requested
from ..transports import registry
from ..transports.segments import new_job_token
from . import reaper as _reaper
from .lifeline import die_with_parent
from .output import STDERR, STDOUT, LineForwarder, Sink

GRACE_SECONDS = 2.0
"""Time the other ranks get to handle a rank's failure and exit before they are ended."""
KILL_AFTER_SECONDS = 1.0
"""Time between SIGTERM and SIGKILL when the launcher ends ranks."""
POLL_SECONDS = 0.05
"""Longest wait between two checks of the ranks' exit status."""
EXIT_TIMEOUT = 124
"""Exit status of a job ended by ``--timeout`` (as coreutils' ``timeout``)."""

_READ_BYTES = 1 << 16
_DRAIN_READS = 64  # bound on reads from an exited rank's pipe that a child of it keeps filling
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_Handler = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None
# the last line of a traceback that ends in ProcessFailedError (module path optional)
_PROCESS_FAILED = re.compile(rb"(?:[\w.]+\.)?ProcessFailedError: (.*)")


@dataclass(frozen=True)
class JobResult:
    """How a job ended.

    Attributes:
        returncode: the launcher's exit status: 0 if every rank exited 0; else 128+s after
            the launcher got signal s, 124 after the timeout, 127/126 if a rank could not be
            started, or else the first failing rank's :func:`exit_status`.
        statuses: each rank's raw status as :class:`subprocess.Popen` reports it (exit code,
            or ``-s`` when killed by signal s); None for a rank that was never started.
        failed_rank: the first rank that failed on its own (not one the launcher ended).
        start_error: why a rank could not be started (the ranks started before it were
            ended), or None.
        timed_out: the job was ended by its timeout.
        signal: the signal that made the launcher end the job, if any.
        job: the job token (names of the job's segments).
    """

    returncode: int
    statuses: tuple[int | None, ...]
    failed_rank: int | None
    start_error: OSError | None
    timed_out: bool
    signal: int | None
    job: str


def exit_status(status: int) -> int:
    """Shell-style exit status of a :class:`subprocess.Popen` return code (signal s -> 128+s)."""
    return status if status >= 0 else 128 - status


def describe_exit(status: int) -> str:
    """Words for a rank's end: ``exited with code 3`` or ``was killed by signal SIGKILL``."""
    if status >= 0:
        return f"exited with code {status}"
    try:
        name = signal.Signals(-status).name
    except ValueError:
        name = str(-status)
    return f"was killed by signal {name}"


def _ranks(count: int) -> str:
    return f"{count} rank" if count == 1 else f"{count} ranks"


def run_job(
    command: Sequence[str],
    nprocs: int,
    *,
    sink: Sink,
    tag_output: bool = False,
    timeout: float | None = None,
    ring_bytes: int | None = None,
    keep_going: bool = False,
    stdin_to_rank0: bool = True,
    env: Mapping[str, str] | None = None,
    handle_signals: bool = False,
    die_with_launcher: bool = False,
    grace: float = GRACE_SECONDS,
    kill_after: float = KILL_AFTER_SECONDS,
    trace: str | None = None,
) -> JobResult:
    """Run ``command`` as ranks ``0..nprocs-1`` of one job and wait until the job ends.

    Each rank gets the launcher's environment plus ``env``, the ``TREECAST_*`` variables of
    :mod:`treecast.runtime.env` and ``PYTHONUNBUFFERED=1``. Rank 0 reads the launcher's stdin
    (if ``stdin_to_rank0``), the others read /dev/null. Output goes to ``sink`` in whole
    lines. The launcher's notes (``treecast: rank 2 exited with code 3``) go to its stderr.

    Args:
        command: argv of every rank (see :func:`~treecast.launcher.program.resolve_command`).
        nprocs: number of ranks.
        sink: receives the ranks' output and the launcher's notes.
        tag_output: prefix each line with ``[rank] ``.
        timeout: end the job after this many seconds (None: no limit).
        ring_bytes: ring capacity per pair of ranks in the world segment (None: default).
        keep_going: when a rank fails, let the others run on instead of ending them after
            the grace.
        stdin_to_rank0: give rank 0 the launcher's stdin rather than /dev/null.
        env: extra environment variables for every rank.
        handle_signals: end the job cleanly on SIGINT, SIGTERM and SIGHUP (main thread only;
            signals ignored when the launcher started stay ignored). Without it, an exception
            such as KeyboardInterrupt still ends every rank before it propagates.
        die_with_launcher: have the kernel SIGKILL the ranks if the launcher dies (Linux;
            set between fork and exec, so only safe in a single-threaded launcher).
        grace: seconds the other ranks get, after a rank failed, to handle its death (their
            calls with it raise ``ProcessFailedError``) and exit before they are ended.
        kill_after: seconds between SIGTERM and SIGKILL when ending ranks.
        trace: write the job's timeline to this trace file (:mod:`treecast.tracing`; "":
            none); None: ``TREECAST_TRACE`` of ``env`` or of the launcher's environment.
            The ranks write their own files; they are merged when the job has ended, also
            when ranks failed (the note names those that left none).

    Returns:
        How the job ended; the ranks have all exited and the job's segments are gone.

    Raises:
        ValueError: ``nprocs`` < 1, ``timeout`` <= 0, ``grace`` or ``kill_after`` < 0,
            ``ring_bytes`` too small, or the trace file cannot be written; or
            ``TREECAST_TRANSPORT`` (in ``env`` or the launcher's environment) names no
            transport that a launcher can start (an ``InvalidArgumentError``).
        OSError: the transport's shared state could not be created (nothing was started).
    """
    if nprocs < 1:
        raise ValueError(f"the number of ranks must be >= 1, got {nprocs}")
    if timeout is not None and not timeout > 0:
        raise ValueError(f"timeout must be > 0 seconds, got {timeout}")
    for name, value in (("grace", grace), ("kill_after", kill_after)):
        if not value >= 0:
            raise ValueError(f"{name} must be >= 0 seconds, got {value}")
    out = requested(trace, env or {}, os.environ)
    tracer = JobTrace(out) if out else None
    try:
        job = _Job(
            list(command),
            nprocs,
            sink=sink,
            tag_output=tag_output,
            keep_going=keep_going,
            stdin_to_rank0=stdin_to_rank0,
            env={**(env or {}), **(tracer.rank_env() if tracer else UNTRACED)},
            die_with_launcher=die_with_launcher,
            grace=grace,
            kill_after=kill_after,
        )
        result = job.run(timeout=timeout, ring_bytes=ring_bytes, handle_signals=handle_signals)
    except BaseException:
        if tracer is not None:
            tracer.discard()
        raise
    if tracer is not None:
        ended = {
            r: describe_exit(s) if s is not None else "was never started"
            for r, s in enumerate(result.statuses)
        }
        job._note(tracer.finish(nprocs, ended))
    return result


class _Pipe:
    """One rank's stdout or stderr pipe and the forwarder of its lines."""

    __slots__ = ("file", "forwarder", "other")

    def __init__(self, file: IO[bytes], forwarder: LineForwarder) -> None:
        self.file = file
        self.forwarder = forwarder
        self.other: _Pipe | None = None  # the rank's other stream


class _Job:
    """State of one running job; see :func:`run_job`."""

    def __init__(
        self,
        command: list[str],
        nprocs: int,
        *,
        sink: Sink,
        tag_output: bool,
        keep_going: bool,
        stdin_to_rank0: bool,
        env: dict[str, str],
        die_with_launcher: bool,
        grace: float,
        kill_after: float,
    ) -> None:
        self.command = command
        self.nprocs = nprocs
        self.sink = sink
        self.tag_output = tag_output
        self.keep_going = keep_going
        self.stdin_to_rank0 = stdin_to_rank0
        self.env = env
        self.die_with_launcher = die_with_launcher
        self.grace = grace
        self.kill_after = kill_after
        self.job = new_job_token()
        self.transport_name = (
            env.get(registry.ENV_TRANSPORT) or os.environ.get(registry.ENV_TRANSPORT, "")
        ).strip() or registry.DEFAULT
        # the transport's half of the job: the launcher knows nothing of its layout
        self.transport = registry.make_job(self.transport_name, self.job)
        self.transport_env: dict[str, str] = {}
        self.procs: dict[int, subprocess.Popen[bytes]] = {}
        self.reaper: subprocess.Popen[bytes] | None = None
        self.pipes: dict[int, list[_Pipe]] = {}
        self.statuses: list[int | None] = [None] * nprocs
        self.selector = selectors.DefaultSelector()
        self.received: list[int] = []  # signals delivered to the launcher, in order
        self.handled = 0  # how many of self.received were acted upon
        self.stopping = False  # the launcher is ending the ranks; later exits are not failures
        self.term_at: float | None = None  # the grace after a failure ends then
        self.kill_at: float | None = None
        self.collapsed: set[int] = set()  # ranks whose ProcessFailedError was one line
        self.failed_rank: int | None = None
        self.start_error: OSError | None = None
        self.timed_out = False
        self.signal: int | None = None

    def run(
        self, *, timeout: float | None, ring_bytes: int | None, handle_signals: bool
    ) -> JobResult:
        """Start the transport's job and the ranks, supervise them and clean up; see run_job."""
        with self._deferred_signals(handle_signals):
            try:
                self._start_reaper()
                self.transport_env = self.transport.start(self.nprocs, ring_bytes)
                try:
                    self._start_ranks()
                except OSError as exc:
                    self.start_error = exc
                    self._note(f"cannot start rank {len(self.procs)}: {exc}")
                    self._terminate(others=True)
                deadline = None if timeout is None else time.monotonic() + timeout
                self._supervise(deadline, timeout)
            finally:
                self._shutdown()
        return JobResult(
            returncode=self._returncode(),
            statuses=tuple(self.statuses),
            failed_rank=self.failed_rank,
            start_error=self.start_error,
            timed_out=self.timed_out,
            signal=self.signal,
            job=self.job,
        )

    def _returncode(self) -> int:
        if self.signal is not None:
            return 128 + self.signal
        if self.start_error is not None:
            return {FileNotFoundError: 127, PermissionError: 126}.get(type(self.start_error), 1)
        if self.timed_out:
            return EXIT_TIMEOUT
        if self.failed_rank is not None:
            status = self.statuses[self.failed_rank]
            assert status is not None
            return exit_status(status)
        return 0

    @contextlib.contextmanager
    def _deferred_signals(self, enabled: bool) -> Iterator[None]:
        """While the job runs, turn SIGINT/SIGTERM/SIGHUP into requests to end it."""
        previous: dict[signal.Signals, _Handler] = {}
        if enabled and threading.current_thread() is threading.main_thread():
            for sig in _STOP_SIGNALS:
                if signal.getsignal(sig) != signal.SIG_IGN:
                    previous[sig] = signal.signal(sig, self._on_signal)
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler if handler is not None else signal.SIG_DFL)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.received.append(signum)

    def _note(self, text: str) -> None:
        self.sink.write(STDERR, f"treecast: {text}\n".encode())

    def _start_ranks(self) -> None:
        base = dict(os.environ)
        base.update(self.env)
        base.update(
            {
                ENV_SIZE: str(self.nprocs),
                ENV_JOB: self.job,
                **self.transport_env,
                registry.ENV_TRANSPORT: self.transport_name,
                ENV_LAUNCHER_PID: str(os.getpid()),
                "PYTHONUNBUFFERED": "1",
            }
        )
        preexec = (
            functools.partial(die_with_parent, os.getpid()) if self.die_with_launcher else None
        )
        for rank in range(self.nprocs):
            if self.received:  # asked to stop while starting: start no more
                return
            use_stdin = rank == 0 and self.stdin_to_rank0
            proc = subprocess.Popen(
                self.command,
                stdin=None if use_stdin else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env={**base, ENV_RANK: str(rank)},
                bufsize=0,
                preexec_fn=preexec,
            )
            self.procs[rank] = proc
            self._tell_reaper(str(proc.pid))
            prefix = f"[{rank}] ".encode() if self.tag_output else b""
            self.pipes[rank] = []
            rewrite = functools.partial(self._rewrite_block, rank)
            for file, stream in ((proc.stdout, STDOUT), (proc.stderr, STDERR)):
                assert file is not None
                forwarder = LineForwarder(self.sink, stream, prefix, rewrite)
                pipe = _Pipe(file, forwarder)
                self.selector.register(file, selectors.EVENT_READ, pipe)
                self.pipes[rank].append(pipe)
            out, err = self.pipes[rank]
            out.other, err.other = err, out

    def _start_reaper(self) -> None:
        """Start the process that unlinks the job's segments if this one is killed (see
        :mod:`.reaper`). Without it (it could not start) the job still runs; only a killed
        launcher would then leave its segments behind."""
        sweep = self.transport.reaper_args()
        if not sys.executable or sweep is None:
            return
        with contextlib.suppress(OSError):
            self.reaper = subprocess.Popen(
                [sys.executable, "-I", "-S", _reaper.__file__, *sweep],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                bufsize=0,
                start_new_session=True,
            )

    def _tell_reaper(self, line: str) -> None:
        """Tell the reaper ``PID`` (a rank started: it waits for the ranks before its last
        sweep), ``-PID`` (that rank has been reaped: its pid may name another process
        soon) or ``done`` (this launcher cleaned up: sweep once and exit)."""
        if self.reaper is not None and self.reaper.stdin is not None:
            with contextlib.suppress(OSError):  # the reaper was killed: carry on without it
                self.reaper.stdin.write(f"{line}\n".encode())

    def _stop_reaper(self) -> None:
        """After this launcher cleaned up: let the reaper find nothing and exit."""
        reaper = self.reaper
        if reaper is None:
            return
        self._tell_reaper("done")
        self.reaper = None
        if reaper.stdin is not None:
            with contextlib.suppress(OSError):
                reaper.stdin.close()
        try:
            reaper.wait(5.0)
        except subprocess.TimeoutExpired:  # pragma: no cover - a stuck reaper
            reaper.kill()
            reaper.wait()

    def _live(self) -> list[subprocess.Popen[bytes]]:
        return [p for r, p in self.procs.items() if self.statuses[r] is None]

    def _supervise(self, deadline: float | None, timeout: float | None) -> None:
        """Forward output and react to exits, signals and the timeout until every rank ended."""
        while True:
            now = time.monotonic()
            wait = POLL_SECONDS
            for limit in (deadline, self.term_at, self.kill_at):
                if limit is not None:
                    wait = min(wait, max(0.0, limit - now))
            for key, _ in self.selector.select(wait):
                self._read(key.data)
            for key in list(self.selector.get_map().values()):
                key.data.forwarder.forward_idle()
            if self.handled < len(self.received):  # before reaping: Ctrl-C also hits the ranks
                self._on_stop_request()
            self._reap()
            now = time.monotonic()
            if deadline is not None and now >= deadline and not self.stopping:
                if self.term_at is not None:  # a rank failed first: that is the story
                    self._terminate(
                        others=True,
                        why=f"the job's timeout of {timeout:g} s ran out during the grace "
                        f"after rank {self.failed_rank} failed",
                    )
                else:
                    self.timed_out = True
                    self._note(f"timeout: the job ran longer than {timeout:g} s")
                    self._terminate(others=False)
            if self.term_at is not None and now >= self.term_at and not self.stopping:
                self._terminate(
                    others=True,
                    why=f"still running {self.grace:g} s after rank {self.failed_rank} failed",
                )
            if self.kill_at is not None and now >= self.kill_at:
                self._kill_live()
            if not self._live():
                return

    def _on_stop_request(self) -> None:
        """Act on newly received signals: the first ends the job, a repeat kills at once."""
        first = self.handled == 0
        signum = self.received[-1]
        self.handled = len(self.received)
        if first:
            self.signal = signum
            self._note(f"received {signal.Signals(signum).name}")
            self._terminate(others=False)
        else:
            self._kill_live()

    def _read(self, pipe: _Pipe) -> None:
        """Read what one pipe holds now; at EOF, forward the last line and close the pipe.
        A traceback held on the rank's other stream goes first (their order is kept as far
        as two pipes can tell: what the rank wrote to both between two reads may cross)."""
        chunk = os.read(pipe.file.fileno(), _READ_BYTES)
        if chunk:
            self._feed(pipe, chunk)
        else:
            self._close(pipe)

    @staticmethod
    def _feed(pipe: _Pipe, chunk: bytes) -> None:
        if pipe.other is not None:  # a traceback held on the other stream was written first
            pipe.other.forwarder.forward_held()
        pipe.forwarder.feed(chunk)

    def _close(self, pipe: _Pipe) -> None:
        self.selector.unregister(pipe.file)
        pipe.file.close()
        pipe.forwarder.close()

    def _drain(self, pipes: list[_Pipe]) -> None:
        """Forward all that an exited rank left in its pipes, without waiting for more."""
        for pipe in pipes:
            if pipe.file.closed:
                continue
            os.set_blocking(pipe.file.fileno(), False)
            for _ in range(_DRAIN_READS):
                try:
                    chunk = os.read(pipe.file.fileno(), _READ_BYTES)
                except BlockingIOError:  # a child of the rank holds the pipe open
                    break
                if not chunk:
                    self._close(pipe)
                    break
                self._feed(pipe, chunk)

    def _reap(self) -> None:
        """Record ranks that exited; the first failure ends the others unless keep_going."""
        for rank, proc in self.procs.items():
            if self.statuses[rank] is not None:
                continue
            status = proc.poll()
            if status is None:
                continue
            self.statuses[rank] = status
            self._tell_reaper(f"-{proc.pid}")
            self._drain(self.pipes[rank])  # so the rank's last words precede our note
            if status == 0:  # also for a rank that ended without finalising
                self.transport.mark_exited(rank)
                continue
            self.transport.mark_dead(rank)  # peers waiting on it raise instead of hanging
            if self.stopping:
                continue
            if rank not in self.collapsed or status != 1:
                self._note(f"rank {rank} {describe_exit(status)}")
            if self.failed_rank is None:
                self.failed_rank = rank
                if not self.keep_going:
                    self._give_grace()

    def _give_grace(self) -> None:
        """After the first failure: the others' calls with the failed rank raise (it is
        marked dead); they have ``grace`` seconds to handle it and exit, then are ended."""
        if self.grace <= 0:
            self._terminate(others=True)
        else:
            self.term_at = time.monotonic() + self.grace

    def _rewrite_block(self, rank: int, block: bytes) -> bytes | None:
        """One line for a traceback of ``rank`` that ends in a ``ProcessFailedError`` after
        another rank failed (the root cause, already shown); None for any other block."""
        if self.failed_rank is None or self.failed_rank == rank:
            return None
        lines = [line for line in block.splitlines() if line.strip()]
        # only a plain traceback: its first line, frames (indented), the error's line; a
        # chained one (the survivor's own error first) or one with other output in between
        # is shown as it is
        match = _PROCESS_FAILED.fullmatch(lines[-1]) if len(lines) >= 2 else None
        if match is None or not all(line[:1].isspace() for line in lines[1:-1]):
            return None
        message = match.group(1).removeprefix(f"rank {rank}: ".encode())
        self.collapsed.add(rank)
        return b"treecast: rank %d: ProcessFailedError: %s\n" % (rank, message)

    def _terminate(self, *, others: bool, why: str = "") -> None:
        """Start ending the job: SIGTERM to every live rank now, SIGKILL after kill_after.

        Args:
            others: the job ends because of a rank (say "the other N ranks"), not from outside.
            why: words for the note, in parentheses.
        """
        self.stopping = True
        self.term_at = None
        live = self._live()
        if live:
            if others:
                which = "other rank" if len(live) == 1 else f"other {_ranks(len(live))}"
            else:
                which = f"{_ranks(len(live))} still running"
            self._note(f"terminating the {which}" + (f" ({why})" if why else ""))
        for proc in live:
            proc.terminate()
        self.kill_at = time.monotonic() + self.kill_after

    def _kill_live(self) -> None:
        for proc in self._live():
            proc.kill()
        self.kill_at = None

    def _shutdown(self) -> None:
        """End what still runs (after an exception), close the pipes, unlink the segments."""
        try:
            live = self._live()
            for proc in live:
                proc.terminate()
            end = time.monotonic() + self.kill_after
            for proc in live:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(max(0.0, end - time.monotonic()))
        finally:
            try:
                for proc in self._live():
                    proc.kill()
                for rank, proc in self.procs.items():
                    self.statuses[rank] = proc.wait()
                self._close_all()
            finally:  # whatever failed above (a sink that raises), leave nothing behind
                try:
                    self.transport.unlink()
                finally:
                    self._stop_reaper()

    def _close_all(self) -> None:
        """Close every rank's pipes, then the selector; a forwarder whose sink raises
        (a closed stdout) does not keep the other pipes open: the first error is raised
        once all are closed."""
        error: BaseException | None = None
        for key in list(self.selector.get_map().values()):
            try:
                self._close(key.data)
            except Exception as exc:  # re-raised below
                error = error or exc
        self.selector.close()
        if error is not None:
            raise error
