"""What moved below the MPI facade still behaves as mpi4py's: predefined communicators,
info objects, error handlers and the ``PROC_NULL`` message (one process, world of 1)."""

from __future__ import annotations

import pickle

import pytest

from treecast import MPI, errhandler, info
from treecast.errors import CommunicatorClosedError

pytestmark = pytest.mark.timeout(60)


def test_predefined_communicators_unpickle_as_this_process_s_own() -> None:
    for comm in (MPI.COMM_WORLD, MPI.COMM_SELF, MPI.COMM_NULL):
        assert pickle.loads(pickle.dumps(comm)) is comm
    dup = MPI.COMM_WORLD.Dup()
    with pytest.raises(ValueError, match="cannot pickle communicator"):
        pickle.dumps(dup)
    dup.Free()


@pytest.mark.parametrize("name", ["COMM_WORLD", "COMM_SELF"])
def test_predefined_communicators_cannot_be_freed(name: str) -> None:
    with pytest.raises(CommunicatorClosedError, match="cannot free"):
        getattr(MPI, name).Free()
    assert getattr(MPI, name)


def test_the_facade_re_exports_info_and_error_handlers() -> None:
    assert MPI.Info is info.Info and MPI.INFO_NULL is info.INFO_NULL
    assert MPI.Errhandler is errhandler.Errhandler
    assert MPI.COMM_WORLD.Get_errhandler() is MPI.ERRORS_RETURN
    got = MPI.COMM_SELF.Dup_with_info(MPI.Info.Create({"k": "v"})).Get_info()
    assert isinstance(got, MPI.Info) and got.Get("k") == "v"
    assert pickle.loads(pickle.dumps(MPI.INFO_NULL)) is MPI.INFO_NULL


def test_the_no_proc_message_receives_at_once_with_a_proc_null_status() -> None:
    request = MPI.MESSAGE_NO_PROC.irecv()
    assert request  # active until completed, as mpi4py's
    status = MPI.Status()
    assert request.wait(status) is None
    assert (status.source, status.tag, status.Get_count()) == (MPI.PROC_NULL, MPI.ANY_TAG, 0)
    assert not request
    assert MPI.Request.waitall([MPI.MESSAGE_NO_PROC.irecv()]) == [None]


def test_translate_ranks_to_the_world_group_by_default() -> None:
    group = MPI.COMM_SELF.Get_group()
    assert group.Translate_ranks() == [MPI.COMM_WORLD.rank]
    assert group.Translate_ranks([MPI.PROC_NULL]) == [MPI.PROC_NULL]
