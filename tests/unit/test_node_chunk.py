"""The node arena's chunk size follows the L2 cache read from sysfs."""

from treecast.engine.node import _l2_bytes, chunk_for_cache


def _cache(tmp_path, entries):
    for i, (level, size) in enumerate(entries):
        d = tmp_path / f"index{i}"
        d.mkdir()
        (d / "level").write_text(f"{level}\n")
        (d / "size").write_text(f"{size}\n")
    return str(tmp_path)


def test_l2_size_is_read_from_sysfs(tmp_path):
    sysfs = _cache(tmp_path, [(1, "48K"), (1, "32K"), (2, "2048K"), (3, "266240K")])
    assert _l2_bytes(sysfs) == 2 << 20


def test_unreadable_or_missing_l2_gives_none(tmp_path):
    assert _l2_bytes(str(tmp_path / "absent")) is None
    assert _l2_bytes(_cache(tmp_path, [(1, "48K"), (3, "8M")])) is None
    (tmp_path / "bad").mkdir()
    assert _l2_bytes(_cache(tmp_path / "bad", [(2, "lots")])) is None


def test_chunk_is_a_quarter_of_l2_within_bounds():
    assert chunk_for_cache(1 << 20) == 256 << 10
    assert chunk_for_cache(2 << 20) == 512 << 10
    assert chunk_for_cache(1280 << 10) == 256 << 10  # rounded down to a power of two
    assert chunk_for_cache(256 << 10) == 128 << 10  # never below 128 KiB
    assert chunk_for_cache(64 << 20) == 1 << 20  # never above 1 MiB
    assert chunk_for_cache(None) == 256 << 10


def test_node_header_carries_sizes_and_the_first_frame_unchanged():
    from treecast.message import frames

    first = frames.dumps({"a": 1})[0]
    head = frames.dumps_node_header(first, [1 << 20, 5])
    got_first, lengths = frames.loads_node_header(head)
    assert lengths == [1 << 20, 5] and bytes(got_first) == bytes(first)
    assert frames.loads_node_header(first) is None  # a pickle stream is not a node header
    assert frames.loads_node_header(frames.dumps(b"x" * 10)[0]) is None
