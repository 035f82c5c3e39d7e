"""calibrate's pieces that need no ranks: the cache size from sysfs, the rank count of the
steal fit."""

from __future__ import annotations

from treecast.bench.calibrate import cache_bytes


def _cache(root, entry, size):
    (root / entry).mkdir()
    (root / entry / "size").write_text(f"{size}\n")


def test_the_cache_size_is_the_largest_index_entry_and_other_entries_are_ignored(tmp_path):
    for i, size in enumerate(("32K", "32K", "1024K", "36M")):
        _cache(tmp_path, f"index{i}", size)
    (tmp_path / "uevent").write_text("")  # a file, as sysfs has: not a cache
    (tmp_path / "power").mkdir()  # a directory without a size
    assert cache_bytes(str(tmp_path)) == 36 << 20


def test_the_cache_size_falls_back_to_16_mib(tmp_path):
    assert cache_bytes(str(tmp_path / "none")) == 16 << 20
    assert cache_bytes(str(tmp_path)) == 16 << 20  # no index entry
    _cache(tmp_path, "index0", "lots")
    assert cache_bytes(str(tmp_path)) == 16 << 20


def test_an_unreadable_cache_entry_is_passed_over(tmp_path):
    _cache(tmp_path, "index0", "48K")
    (tmp_path / "index1").mkdir()  # no size
    _cache(tmp_path, "index2", "??")
    _cache(tmp_path, "index3", "2048K")
    assert cache_bytes(str(tmp_path)) == 2 << 20
