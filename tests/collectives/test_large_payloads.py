"""Payloads above 2 GiB (32-bit length limits, as in MPI's int counts, must not apply)."""

import numpy as np
import pytest

import treecast
from treecast.testing import run_ranks

pytestmark = pytest.mark.timeout(300)

BIG = (1 << 31) + 4096 + 3  # just over 2 GiB, and not a multiple of any chunk size


def _available_bytes() -> int:
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


def _big_transfers():
    comm = treecast.world()
    r = comm.rank
    data = None
    if r == 0:
        data = np.empty(BIG, np.uint8)
        data[:] = 7
        data[-3:] = (1, 2, 3)
    obj = comm.bcast({"payload": data, "tag": "big"} if r == 0 else None, root=0)
    arr = obj["payload"]
    ok_obj = arr.nbytes == BIG and arr[0] == 7 and tuple(arr[-3:]) == (1, 2, 3)
    del obj, arr
    buf = data if r == 0 else np.zeros(BIG, np.uint8)
    comm.Bcast(buf, root=0)
    ok_buf = (
        buf[12345] == 7 and tuple(buf[-3:]) == (1, 2, 3) and int(buf[: 1 << 20].sum()) == 7 << 20
    )
    return bool(ok_obj and ok_buf)


@pytest.mark.skipif(_available_bytes() < 12 << 30, reason="needs about 12 GiB of free memory")
def test_payloads_above_2_gib_in_bcast_and_Bcast():
    assert run_ranks(_big_transfers, 2, timeout=280) == [True, True]
