"""asyncio pipeline: every rank is a stage; items flow rank 0 -> 1 -> ... -> n-1.

treecast run -n 4 python examples/asyncio_pipeline.py

Each stage receives the next item while it still works on the previous one and sends it
on (two tasks joined by an ``asyncio.Queue``), and a heartbeat task keeps ticking while
the stage waits: ``comm.aio``'s calls never block the event loop. At the end the stages
agree on a checksum with ``await comm.aio.allreduce(...)``.
"""

import asyncio

import numpy as np

import treecast

ITEMS, LENGTH = 50, 1 << 16  # 50 arrays of 512 KiB
comm = treecast.world()
rank, size = comm.rank, comm.size


async def produce(inbox: asyncio.Queue) -> None:
    """Rank 0: make the items."""
    for i in range(ITEMS):
        await inbox.put(np.full(LENGTH, float(i)))
    await inbox.put(None)


async def receive(inbox: asyncio.Queue) -> None:
    """Every other rank: take the items from the previous stage, until its None."""
    while True:
        item = await comm.aio.recv(source=rank - 1)
        await inbox.put(item)
        if item is None:
            return


async def work_and_send(inbox: asyncio.Queue) -> float:
    """This stage's work (x -> 2x + 1), then on to the next stage; the last one sums."""
    total = 0.0
    while (item := await inbox.get()) is not None:
        item = item * 2 + 1
        if rank + 1 < size:
            await comm.aio.send(item, dest=rank + 1)
        else:
            total += float(item.sum())
    if rank + 1 < size:
        await comm.aio.send(None, dest=rank + 1)
    return total


async def heartbeat(beats: list[int]) -> None:
    while True:
        beats[0] += 1
        await asyncio.sleep(0.001)


async def main() -> None:
    beats = [0]
    ticking = asyncio.create_task(heartbeat(beats))
    inbox: asyncio.Queue = asyncio.Queue(maxsize=4)
    feed = produce(inbox) if rank == 0 else receive(inbox)
    _, total = await asyncio.gather(feed, work_and_send(inbox))
    ticking.cancel()
    checksum = await comm.aio.allreduce(total)  # only the last stage's total is not 0
    every_beat = await comm.aio.gather(beats[0], root=0)
    if rank == 0:
        scale = 2.0**size
        expected = LENGTH * sum(i * scale + scale - 1 for i in range(ITEMS))
        assert checksum == expected, (checksum, expected)
        print(f"{ITEMS} items through {size} stages: checksum {checksum:.0f} (as expected)")
        print(f"heartbeats per rank while the pipeline ran: {every_beat}")


asyncio.run(main())
