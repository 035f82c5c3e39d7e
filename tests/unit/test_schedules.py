from treecast.algorithms import barrier, bcast
from treecast.algorithms.schedule import Recv, Send


def test_pipelined_chain_forwards_each_segment_as_it_arrives():
    steps = list(bcast.pipelined_chain(1, 3, 0, 600, 256))
    assert steps == [
        Recv(0, 0, 256),
        Send(2, 0, 256),
        Recv(0, 256, 256),
        Send(2, 256, 256),
        Recv(0, 512, 88),
        Send(2, 512, 88),
    ]
    assert list(bcast.pipelined_chain(0, 3, 0, 300, 256)) == [Send(1, 0, 256), Send(1, 256, 44)]
    assert list(bcast.pipelined_chain(2, 3, 0, 300, 256)) == [Recv(1, 0, 256), Recv(1, 256, 44)]


def test_pipelined_binary_interior_rank_feeds_two_children():
    steps = list(bcast.pipelined_binary(1, 5, 0, 100, 64))
    assert steps == [
        Recv(0, 0, 64),
        Send(3, 0, 64),
        Send(4, 0, 64),
        Recv(0, 64, 36),
        Send(3, 64, 36),
        Send(4, 64, 36),
    ]


def test_binomial_and_dissemination_steps():
    assert list(bcast.binomial(0, 4, 0)) == [Send(2), Send(1)]
    assert list(bcast.binomial(3, 4, 0)) == [Recv(2)]
    assert list(barrier.dissemination(1, 5)) == [
        Send(2),
        Recv(0),
        Send(3),
        Recv(4),
        Send(0),
        Recv(2),
    ]


def test_block_schedules_move_whole_subtrees():
    from treecast.algorithms import blocks

    assert list(blocks.binomial_gather(0, 4, 0)) == [Recv(1, blocks=(1,)), Recv(2, blocks=(2, 3))]
    assert list(blocks.binomial_gather(2, 4, 0)) == [Recv(3, blocks=(3,)), Send(0, blocks=(2, 3))]
    assert list(blocks.binomial_scatter(2, 5, 1)) == [Recv(1, blocks=(2,))]
    assert list(blocks.binomial_scatter(3, 5, 1)) == [Recv(1, blocks=(3, 4)), Send(4, blocks=(4,))]
    assert list(blocks.ring_allgather(1, 3)) == [
        Send(2, blocks=(1,)),
        Recv(0, blocks=(0,)),
        Send(2, blocks=(0,)),
        Recv(0, blocks=(2,)),
    ]


def test_bruck_allgather_collects_every_block_in_log_rounds():
    from treecast.algorithms import blocks

    for size in range(1, 18):
        held = {r: {r} for r in range(size)}
        plans = {r: list(blocks.bruck_allgather(r, size)) for r in range(size)}
        rounds = len(plans[0]) // 2
        assert rounds == (size - 1).bit_length()
        for k in range(rounds):
            sends = {r: plans[r][2 * k] for r in range(size)}
            for r in range(size):
                recv = plans[r][2 * k + 1]
                send = sends[recv.peer]
                assert send.peer == r and len(send.blocks) == len(recv.blocks)
                assert set(send.blocks) <= held[recv.peer]
            for r in range(size):
                held[r] |= set(plans[r][2 * k + 1].blocks)
        assert all(held[r] == set(range(size)) for r in range(size))
