"""Broadcast demo: rank 0's data reaches every rank, and each rank says how.

treecast run -n 4 python examples/bcast_demo.py [SIZE]

Broadcasts a small object, a NumPy array of SIZE bytes (default 64M) inside an object, and
the same array as a buffer. For each it prints the algorithm treecast chose (asked with
``comm.algorithm_for``, the same selection the call makes): a tree, whose parent and
children each rank prints, or the node-level path through shared memory. Then every rank's
best time of 5 runs next to one memcpy of the array.
"""

import os
import sys
import time

import numpy as np

import treecast
from treecast.topology import Tree
from treecast.units import format_size, parse_size

comm = treecast.world()
rank, size = comm.rank, comm.size
nbytes = parse_size(sys.argv[1]) if len(sys.argv) > 1 else 64 << 20
payload = np.arange(nbytes // 8, dtype=np.float64)
label = format_size(payload.nbytes)
reps = 5

# 1. A Python object, as in the MPI recipe: data = comm.bcast(data, root=0)
data = {"step": 1, "params": {"lr": 0.01, "layers": [64, 32]}} if rank == 0 else None
data = comm.bcast(data, root=0)
assert data["params"]["layers"] == [64, 32]

# 2. What each broadcast runs: the route the selection gives, as the call itself asks it.
calls = {
    "A": ("bcast of a small object", comm.algorithm_for("bcast")),
    "B": (f"bcast of a {label} array", comm.algorithm_for("bcast", payload.nbytes)),
    "C": (f"Bcast of a {label} buffer", comm.algorithm_for("Bcast", payload.nbytes)),
}


def tree_of(stage):
    """The stage's tree from root 0 (each rank's one parent and its children), else None."""
    if stage.algorithm.node_level or stage.size != size or size == 1:
        return None
    peers = [stage.peers(r, 0) for r in range(size)]
    if any(len(sources) > 1 for sources, _ in peers):
        return None
    parents = tuple(sources[0] if sources else None for sources, _ in peers)
    return Tree(size, 0, parents, tuple(tuple(targets) for _, targets in peers))


trees = {}  # algorithm name -> (its tree, the broadcasts that use it)
for key, (_, route) in calls.items():
    for stage in route.stages:
        tree = tree_of(stage)
        if tree is not None:
            trees.setdefault(stage.algorithm.name, (tree, []))[1].append(key)


def pattern(algorithm):
    return algorithm.summary.rsplit(": ", 1)[0]  # its summary, less the cost model


def describe(stage):
    """The stage in words: the algorithm, what it carries, how it moves the bytes."""
    if tree_of(stage) is not None:
        how = "a tree, drawn below"
    elif stage.algorithm.node_level:
        how = "the node-level path, below"
    else:
        how = pattern(stage.algorithm)
    return f"{stage.algorithm.name} ({stage.carries}): {how}"


if rank == 0:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    ranks = f"{size} rank{'s' if size > 1 else ''}"
    print(f"treecast {treecast.__version__}: {ranks} on {cores} cores, root 0\n")
    print("What each broadcast runs (comm.algorithm_for: the call's own selection):")
    for key, (what, route) in calls.items():
        for i, stage in enumerate(route.stages):
            start = f"{key}  {what:<24}  " if i == 0 else " " * 29 + "then "
            print(f"  {start}{describe(stage)}")
    node_level = {
        s.algorithm for _, r in calls.values() for s in r.stages if s.algorithm.node_level
    }
    for algorithm in sorted(node_level, key=lambda a: a.name):
        print(f"\n{algorithm.name}, the node-level path: {pattern(algorithm)}")
    for name, (tree, users) in trees.items():
        print(f"\n{name} tree from root 0 ({', '.join(dict.fromkeys(users))}):")
        print(tree.render())
    print()

# 3. Timings: best of `reps` runs of each, and one memcpy of the array for scale.


def timed(fn):
    comm.barrier()
    best = float("inf")
    for _ in range(reps):
        comm.barrier()
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def fmt(seconds):
    return f"{seconds * 1e6:.1f} us" if seconds < 1e-3 else f"{seconds * 1e3:.1f} ms"


small = timed(lambda: comm.bcast("hello" if rank == 0 else None, root=0))
obj = timed(lambda: comm.bcast(payload if rank == 0 else None, root=0))
buf = payload.copy() if rank == 0 else np.empty_like(payload)
Bcast = timed(lambda: comm.Bcast(buf, root=0))
assert np.array_equal(buf, payload)
dst = np.empty_like(payload)
memcpy = timed(lambda: np.copyto(dst, payload))

shown = next(iter(trees.items()), None)  # each rank's place in the first tree
place = head = ""
if shown is not None:
    name, (tree, _) = shown
    parent, children = tree.parents[rank], list(tree.children[rank])
    place = f"{'-' if parent is None else parent:>6}  {children or '-'!s:<10}"
    head = f"{'parent':>6}  {'children':<10}"
cells = "".join(f"{fmt(t):>11}" for t in (small, obj, Bcast, memcpy))
line = f"{rank:>4}  {place}{cells}"
if rank == 0:
    print(f"rank  {head}{'A':>11}{'B':>11}{'C':>11}{'memcpy':>11}")
    print(line)
    for r in range(1, size):
        print(comm.recv(source=r, tag=99))
    where = f"; parent and children in the {shown[0]} tree" if shown is not None else ""
    print(f"\nall {ranks} received rank 0's data (best of {reps} runs each{where})")
else:
    comm.send(line, 0, tag=99)
