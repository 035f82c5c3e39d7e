"""The transport conformance suite inside one MPI job: ``conformance_job.py PLACEMENT``.

Every rank runs each check; a check's ranks run its body on the world transport, the others
wait, and every rank gets every result (over mpi4py's own COMM_WORLD). ``die()`` marks the
rank dead in its node segment, as a crashed process would read to its node's peers, and
unwinds the body; the rank is marked alive again once every rank has its results.
"""

from __future__ import annotations

import sys
from typing import Any, NoReturn

from mpi4py import MPI

from treecast.runtime.world import world_transport
from treecast.transports import conformance as c
from treecast.transports.shm_layout import STATE_ATTACHED

t: Any = world_transport()
t.default_timeout = 60.0


class _Died(BaseException):
    pass


def make_ranks(n: int, body: c.Body) -> list[Any]:
    result, error, died = None, None, False
    if t.rank < n:

        def die() -> NoReturn:
            t.mark_self_dead()
            raise _Died

        try:
            result = body(t, die)
        except _Died:
            died = True
        except Exception as exc:
            error = f"rank {t.rank}: {type(exc).__name__}: {exc}"
    outcomes = MPI.COMM_WORLD.allgather((result, error))
    if died:
        t._state[t._slot] = STATE_ATTACHED
    # each check starts from fresh matching state, as it would in a job of its own: a
    # receive that raised (a dead peer) stays posted and would take the next check's message
    t._posted.clear()
    t._unexpected.clear()
    MPI.COMM_WORLD.Barrier()
    errors = [e for _, e in outcomes if e]
    if errors:
        raise AssertionError(errors[0])
    return [r for r, _ in outcomes[:n]]


placement = sys.argv[1]
checks = [check for check in c.CHECKS if check is not c.check_close]
if placement == "interleaved":
    # ranks 0 and 1 are on different nodes; a rank of another node that dies ends the MPI
    # job (MPI_Abort, the launcher), which no check inside the job can observe
    checks.remove(c.check_peer_death)
for check in [*checks, c.check_close]:  # close last: rank 1's transport stays closed
    check(make_ranks)
    MPI.COMM_WORLD.Barrier()
print(f"rank {t.rank}: conformance ok ({placement}, {len(checks) + 1} checks)", flush=True)
