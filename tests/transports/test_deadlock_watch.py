"""The deadlock detector's rules on an in-process board (no processes, short settle time)."""

import threading
import time

import pytest

from treecast.errors import InvalidArgumentError
from treecast.transports.deadlock import GONE, NEW, RUNNING, WORDS, Watch, settle_from_env

SETTLE = 0.05


def _board(n, states=None):
    words = [0] * (WORDS * n)
    states = states if states is not None else [RUNNING] * n
    watches = [Watch(words, i, states.__getitem__, SETTLE) for i in range(n)]
    return words, states, watches


def _look_until(watches, seconds, *, skip=()):
    """Every watch but ``skip`` looks at the board until one finds a deadlock; return the
    index of the first that did, or None."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for i, w in enumerate(watches):
            if i in skip:
                continue
            w.beat()  # as a blocked wait does at each pause, before it looks
            if w.deadlocked():
                return i
        time.sleep(SETTLE / 10)
    return None


def test_every_rank_blocked_and_still_is_a_deadlock_that_every_rank_then_sees():
    _, _, watches = _board(3)
    for i, w in enumerate(watches):
        w.block((i + 1) % 3, timed=False)
    first = _look_until(watches, 2.0)
    assert first is not None
    assert all(w.condemned() for w in watches)  # the verdict reached every blocked rank
    assert watches[1].peer_of(1) == 2


def test_a_rank_not_blocked_or_not_started_or_waiting_with_a_timeout_prevents_it():
    _, states, watches = _board(3)
    watches[0].block(1, timed=False)
    watches[1].block(2, timed=False)  # rank 2 computes
    assert _look_until(watches[:2], 0.4) is None
    watches[2].block(0, timed=True)  # a timed wait ends by itself
    assert _look_until(watches, 0.4) is None
    watches[2].unblock(timed=True)
    states[2] = NEW  # not yet started
    assert _look_until(watches[:2], 0.4) is None
    states[2] = GONE  # finished: the two others are on their own
    assert _look_until(watches[:2], 2.0) is not None


def test_bytes_moving_or_a_rank_that_does_not_poll_prevent_it():
    _, _, watches = _board(2)
    for w in watches:
        w.block(None, timed=False)
    end = time.monotonic() + 0.4
    while time.monotonic() < end:  # rank 1 keeps moving bytes
        watches[1].moved()
        assert not watches[0].deadlocked()
        time.sleep(SETTLE / 10)
    # rank 1 stops polling (descheduled): its beat stands still, so nothing is declared
    assert _look_until(watches, 0.4, skip=(1,)) is None
    assert _look_until(watches, 2.0) is not None


def test_a_thread_outside_treecast_makes_its_rank_count_as_running():
    _, _, watches = _board(2)
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        for w in watches:
            w.block(None, timed=False)
        assert _look_until(watches, 0.4) is None
    finally:
        stop.set()
        other.join()
    assert _look_until(watches, 2.0) is not None


def test_a_verdict_for_an_earlier_wait_does_not_condemn_a_later_one():
    _, _, watches = _board(2)
    for w in watches:
        w.block(None, timed=False)
    assert _look_until(watches, 2.0) is not None
    for w in watches:
        w.unblock(timed=False)
        w.block(None, timed=False)
        assert not w.condemned()


def test_the_settle_time_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv("TREECAST_DEADLOCK_SECONDS", raising=False)
    assert settle_from_env() == 0.5
    monkeypatch.setenv("TREECAST_DEADLOCK_SECONDS", "0")
    assert settle_from_env() == 0.0
    monkeypatch.setenv("TREECAST_DEADLOCK_SECONDS", "-1")
    with pytest.raises(InvalidArgumentError, match="TREECAST_DEADLOCK_SECONDS='-1'"):
        settle_from_env()
