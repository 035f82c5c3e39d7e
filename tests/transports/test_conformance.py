"""The transport conformance suite against every transport: in-process and shared memory."""

import pytest

from treecast.testing import CHECKS, check_transport, inproc_ranks, shm_ranks

pytestmark = pytest.mark.timeout(180)

RUNNERS = {"inproc": inproc_ranks, "shm": shm_ranks}


@pytest.mark.parametrize("check", CHECKS, ids=[c.__name__ for c in CHECKS])
@pytest.mark.parametrize("transport", sorted(RUNNERS))
def test_transport_conforms(transport, check):
    check(RUNNERS[transport])


def test_check_transport_runs_every_check():
    check_transport(inproc_ranks)
