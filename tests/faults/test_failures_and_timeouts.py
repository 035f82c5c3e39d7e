"""Never a silent hang: dead peers and timeouts become clear errors on every rank."""

import os
import subprocess
import sys
import textwrap
import time

import pytest

import treecast
from treecast.testing import run_ranks

pytestmark = pytest.mark.timeout(120)


def _timeouts():
    comm = treecast.world()
    if comm.rank == 0:
        with pytest.raises(treecast.TimeoutError) as info:
            comm.barrier(timeout=2.0)
        return str(info.value)
    time.sleep(0.3)  # rank 0 is now blocked in the barrier
    with pytest.raises(treecast.TimeoutError) as info:
        comm.recv(source=0, tag=3, timeout=1.0)
    time.sleep(1.2)  # stay alive past rank 0's timeout (a finished rank is reported sooner)
    return str(info.value)


def test_timeout_raises_a_hang_report_naming_every_rank():
    report0, report1 = run_ranks(_timeouts, 2)
    assert "rank 0: barrier #1 on world did not complete within 2 s" in report0
    assert "rank 0: in barrier #1 on world" in report0
    assert "ranks that have not arrived at this collective: 1" in report0
    assert "rank 1: recv from rank 0 (tag 3) on world did not complete within 1 s" in report1
    assert "rank 0: in barrier #1 on world" in report1
    assert "rank 1: in recv from rank 0 (tag 3)" in report1


def _env_timeout():
    comm = treecast.world()
    if comm.rank == 1:
        time.sleep(1.5)  # alive, but never sends
        return "idle"
    start = time.monotonic()
    with pytest.raises(treecast.TimeoutError, match=r"within 0\.5 s"):
        comm.recv(source=1)
    return time.monotonic() - start


def test_default_timeout_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("TREECAST_TIMEOUT", "0.5")
    waited, idle = run_ranks(_env_timeout, 2)
    assert 0.5 <= waited < 2.0 and idle == "idle"


def _wait_on_finished_ranks():
    comm = treecast.world()
    if comm.rank != 0:
        return "finished"
    start = time.monotonic()
    with pytest.raises(treecast.ProcessFailedError, match="has finished"):
        comm.recv(source=1)  # nobody will ever send: the others have returned
    # a root that only receives (one that sends would leave its messages to the finished
    # ranks, which they report at exit as a mismatch)
    with pytest.raises(treecast.ProcessFailedError, match="gather"):
        comm.gather(0, root=0)
    return time.monotonic() - start


def test_waiting_on_ranks_that_have_all_finished_raises_instead_of_hanging():
    got = run_ranks(_wait_on_finished_ranks, 3)
    assert got[1:] == ["finished", "finished"] and got[0] < 5.0


def _synchronous_send_to_a_finished_rank():
    import numpy as np

    comm = treecast.world()
    if comm.rank != 0:
        return "finished"
    req = comm.Issend(np.zeros(4, np.uint8), dest=1, tag=3)  # rank 1 never receives it
    with pytest.raises(treecast.ProcessFailedError, match="every other rank has finished"):
        req.Wait()
    return len(comm._t._sync_pending)  # nothing kept for an acknowledgement that cannot come


def test_a_synchronous_send_to_a_finished_rank_raises_and_is_forgotten():
    assert run_ranks(_synchronous_send_to_a_finished_rank, 2) == [0, "finished"]


def _wait_on_one_finished_rank():
    import numpy as np

    comm = treecast.world()
    if comm.rank == 2:
        return "finished"
    start = time.monotonic()
    if comm.rank == 0:  # more than its ring holds: a finished rank still takes it (and
        req = comm.Isend(np.ones(1 << 21), dest=2)  # warns at exit that nothing received it)
        comm.send("sending", dest=1)  # rank 2 now has part of it: it lingers for the rest
        req.Wait()
    else:
        assert comm.recv(source=0) == "sending"
        with pytest.raises(treecast.ProcessFailedError, match="rank 2 has finished"):
            comm.recv(source=2)
    # the two live ranks still talk to each other
    got = comm.sendrecv(comm.rank, dest=1 - comm.rank, source=1 - comm.rank)
    return got, time.monotonic() - start


def test_waiting_on_one_finished_rank_raises_while_others_run(capfd):
    got = run_ranks(_wait_on_one_finished_rank, 3)
    assert got[2] == "finished"
    assert got[0][0] == 1 and got[1][0] == 0 and max(got[0][1], got[1][1]) < 10.0
    err = capfd.readouterr().err
    assert "UnreceivedMessageWarning: rank 2 exits with 1 message(s) that no receive took" in err
    assert "point-to-point message (tag 0) on world from world rank 0 (16777216 bytes)" in err


SURVIVORS = """
import sys, time
import treecast
comm = treecast.world()
if comm.rank == 2:
    sys.exit(3)
time.sleep(1.0)  # rank 2 is surely gone (and marked dead) by now
other = 1 - comm.rank
for i in range(10):  # ping-pong between the live ranks; rank 0 sleeps while it waits
    if comm.rank == 0:
        comm.send(i, dest=other)
        assert comm.recv(source=other) == i
    else:
        got = comm.recv(source=other)
        time.sleep(0.05)
        comm.send(got, dest=other)
try:
    comm.recv(source=2)
except treecast.ProcessFailedError as exc:
    print(comm.rank, "told:", exc, flush=True)
"""


def test_with_keep_going_live_ranks_still_talk_after_one_died(tmp_path):
    script = tmp_path / "survivors.py"
    script.write_text(SURVIVORS)
    proc = subprocess.run(
        [
            *(sys.executable, "-m", "treecast", "run", "-n", "3", "--keep-going"),
            *("--timeout", "60", sys.executable, str(script)),
        ],
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert proc.returncode == 3, proc.stderr
    told = sorted(line for line in proc.stdout.splitlines() if "told:" in line)
    # rank 2 closed its transport on the way out, so "finished" may come before "died"
    assert len(told) == 2, proc.stdout
    assert all("recv from rank 2" in line and "cannot complete" in line for line in told)


def _messages_sent_before_finishing_still_arrive():
    comm = treecast.world()
    if comm.rank == 1:
        comm.send("last words", dest=0)
        return None
    time.sleep(0.5)  # rank 1 has sent and finished
    return comm.recv(source=1)


def test_a_finished_rank_s_messages_are_still_received():
    assert run_ranks(_messages_sent_before_finishing_still_arrive, 2)[0] == "last words"


def test_bad_timeout_variable_is_rejected(monkeypatch):
    from treecast.transports.base import default_timeout_from_env

    monkeypatch.setenv("TREECAST_TIMEOUT", "soon")
    with pytest.raises(ValueError, match=r"TREECAST_TIMEOUT=.soon."):
        default_timeout_from_env()


def test_survivors_of_a_dead_rank_raise_process_failed_error_quickly():
    program = textwrap.dedent(
        """
        import os, time, treecast
        comm = treecast.world()
        if comm.rank == 2:
            time.sleep(0.3)
            os._exit(3)
        start = time.monotonic()
        try:
            if comm.rank == 0:
                comm.recv(source=2)
            else:
                comm.bcast(None, root=2)
        except treecast.ProcessFailedError as exc:
            print(f"rank {comm.rank} caught after {time.monotonic() - start:.2f}s: {exc}", flush=True)
        """
    )
    proc = subprocess.run(
        [sys.executable, "-m", "treecast", "run", "--keep-going", "-n", "3", "-c", program],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "TREECAST_TIMEOUT": "30"},
    )
    assert proc.returncode == 3
    assert "rank 2 exited with code 3" in proc.stderr
    lines = sorted(line for line in proc.stdout.splitlines() if "caught" in line)
    assert len(lines) == 2, proc.stdout
    assert "rank(s) 2 died" in lines[0] and "(in recv from rank 2" in lines[0]
    assert "(in bcast #1 on world root 2)" in lines[1]
    for line in lines:
        assert float(line.split("after ")[1].split("s:")[0]) < 2.0


def _different_collectives():
    comm = treecast.world()
    if comm.rank == 0:
        comm.bcast("data", root=0)  # a root only sends: it cannot notice
        return "sent"
    with pytest.raises(treecast.CollectiveMismatchError) as info:
        comm.barrier(timeout=10)
    return str(info.value)


def test_different_collectives_raise_on_the_receiving_rank_and_the_root_at_exit(capfd):
    sent, message = run_ranks(_different_collectives, 2, keep_going=True)
    assert sent == "sent"
    assert "barrier #1 on world: rank 0 sent a message of bcast with root 0" in message
    assert "this rank is in barrier" in message
    # the root only sent, so only its exit check can tell it; it then exits with status 1
    err = capfd.readouterr().err
    assert "rank 0: CollectiveMismatchError at exit" in err
    assert "barrier #1 on world from world rank 1 (0 bytes)" in err
    assert "rank 0 exited with code 1" in err


def _debug_roots_and_sizes():
    import numpy as np

    comm = treecast.world()
    out = []
    with pytest.raises(treecast.CollectiveMismatchError) as info:
        comm.bcast("x", root=comm.rank)  # every rank thinks it is the root
    out.append(str(info.value))
    with pytest.raises(treecast.CollectiveMismatchError) as info:
        comm.Bcast(np.zeros(4 + comm.rank), root=0)
    out.append(str(info.value))
    with pytest.raises(treecast.CollectiveMismatchError) as info:
        comm.Bcast(np.zeros(4, dtype=np.float64 if comm.rank else np.int64), root=0)
    out.append(str(info.value))
    comm.barrier()  # still usable afterwards
    return out


def test_debug_mode_catches_different_roots_and_sizes_on_every_rank(monkeypatch):
    monkeypatch.setenv("TREECAST_DEBUG", "1")
    for rank, (roots, sizes, dtypes) in enumerate(run_ranks(_debug_roots_and_sizes, 2)):
        other = 1 - rank
        assert f"rank {other} called bcast with root {other}" in roots
        assert f"this rank called bcast with root {rank}" in roots
        assert "different sizes in bytes (rank 0: 32, rank 1: 40)" in sizes
        assert "different dtypes (rank 0: int64, rank 1: float64)" in dtypes


ACK_AFTER_COMPUTE = """
import time
import numpy as np
import treecast
comm = treecast.world()
n = treecast.world()._t._out[1 - comm.rank].cap - 40  # fills the ring 1 -> 0
if comm.rank == 0:
    req = comm.Issend(np.zeros(4, np.uint8), dest=1, tag=2)
    time.sleep(2.0)  # computing, not in treecast: rank 1's acknowledgement waits behind data
    comm.Recv(np.zeros(n, np.uint8), source=1, tag=1)
    req.Wait(timeout=20)
    print("completed", flush=True)
else:
    comm.Send(np.ones(n, np.uint8), dest=0, tag=1)
    comm.Recv(np.zeros(4, np.uint8), source=0, tag=2)
"""


def test_an_acknowledgement_queued_at_exit_waits_for_a_busy_reader(tmp_path):
    script = tmp_path / "ack.py"
    script.write_text(ACK_AFTER_COMPUTE)
    env = {**os.environ, "TREECAST_FLUSH_SECONDS": "0.3"}  # data would be dropped by then
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "treecast",
            "run",
            "-n",
            "2",
            "--timeout",
            "50",
            sys.executable,
            str(script),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "completed"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("form", ["recv", "Recv", "sendrecv", "Sendrecv"])
def test_a_receive_retried_after_a_timeout_gets_the_message(form):
    """A blocking receive that timed out is withdrawn: the retry, not the abandoned
    receive, takes the message that comes later (before, the retry waited forever)."""
    import threading

    import numpy as np

    from treecast.comm import Comm
    from treecast.transports.inproc import InprocWorld

    world = InprocWorld(2)
    out: dict[str, object] = {}

    def receive(c, timeout):
        if form == "recv":
            return c.recv(source=1, tag=5, timeout=timeout)
        if form == "sendrecv":
            return c.sendrecv(None, dest=1, sendtag=9, source=1, recvtag=5, timeout=timeout)
        buf = np.zeros(3, np.int64)
        if form == "Recv":
            c.Recv(buf, source=1, tag=5, timeout=timeout)
        else:
            c.Sendrecv(
                np.zeros(1), dest=1, sendtag=9, recvbuf=buf, source=1, recvtag=5, timeout=timeout
            )
        return buf.tolist()

    def rank0():
        c = Comm(world[0], range(2), 0, "world")
        try:
            receive(c, 0.2)
        except treecast.TimeoutError:
            out["timed out"] = True
        c.send("go", dest=1)
        out["got"] = receive(c, 10)

    def rank1():
        c = Comm(world[1], range(2), 0, "world")
        c.recv(source=0, tag=0)
        late = [1, 2, 3]
        if form in ("recv", "sendrecv"):
            c.send(late, dest=0, tag=5)
        else:
            c.Send(np.array(late, np.int64), dest=0, tag=5)

    threads = [threading.Thread(target=f, daemon=True) for f in (rank0, rank1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert out == {"timed out": True, "got": [1, 2, 3]}
