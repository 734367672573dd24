"""test_zerocopy.py - shoalfs read paths against a real shoald (issue 11, zero-copy Python).

Every read path (cat_file, cat_ranges, read_block, read(n), read(), readinto) returns exactly
the file's bytes for spans on and across page (64 KiB here) and range (4 pages) boundaries and
short at the end of the file; readinto fills memoryview slices and numpy arrays in place and
writes nothing outside them. tracemalloc (which sees every Python allocation, not libshoal's C
buffers) shows the results are filled in place: a read's peak is the size of what it returns,
never that plus an intermediate buffer, slice or join, and readinto's peak is a few KiB.

One node of its own (file:// mount of a folder of this module), so no other suite's files
change.
"""
import os
import random
import sys
import tracemalloc

import pytest

from conftest import PAGE_SIZE, RANGE_PAGES, Node

RANGE = PAGE_SIZE * RANGE_PAGES
MIB = 1 << 20
SMALL_SIZE = 3 * RANGE + 777  # a tail that is neither a page nor a range
BIG_SIZE = 32 * MIB + 4321


@pytest.fixture(scope="module")
def files(workdir):
    root = os.path.join(workdir, "zerocopy")
    os.makedirs(root, exist_ok=True)
    rng = random.Random(99)
    out = {}
    for name, size in (("small.bin", SMALL_SIZE), ("big.bin", BIG_SIZE)):
        data = rng.randbytes(size)
        with open(os.path.join(root, name), "wb") as f:
            f.write(data)
        out[name] = data
    return root, out


@pytest.fixture(scope="module")
def zc_node(workdir, files):
    n = Node(workdir, "zerocopy", [f"file://{files[0]}/"])
    try:
        yield n
    finally:
        n.stop()


@pytest.fixture(scope="module")
def zc_fs(shoalfs_mod, zc_node, files):
    """A filesystem with the default 4 MiB block; both files warmed into the node."""
    fs = shoalfs_mod.ShoalFileSystem(target_protocol="file", seeds=zc_node.seeds,
                                     skip_instance_cache=True)
    root, data = files
    for name in data:
        assert fs.cat_file(f"{root}/{name}") == data[name]
    return fs


def spans(size):
    """(start, end) on and across page and range edges, lengths 1 .. more than a range."""
    out = {(0, size), (0, 1), (size - 1, size)}
    for edge in list(range(PAGE_SIZE, size, PAGE_SIZE)) + [size]:
        for a in (-PAGE_SIZE - 1, -1, 0, 1):
            for n in (1, 2, PAGE_SIZE - 1, PAGE_SIZE, PAGE_SIZE + 1, RANGE + 3):
                s = edge + a
                if 0 <= s < size:
                    out.add((s, min(size, s + n)))
    return sorted(out)


def _sole(obj, holders=1):
    """Checks `obj` is bytes with exactly `holders` references besides this call's (its
    parameter and getrefcount's argument): the raw reference of the result was handed over,
    not leaked. A statement of its own: pytest's assert rewriting holds references."""
    refs = sys.getrefcount(obj) - 2
    if type(obj) is not bytes or refs != holders:
        raise AssertionError(f"a {type(obj).__name__} with {refs} references")


def _peak(fn):
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        out = fn()
        return out, tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("block_size", [None, 100_000])
def test_every_read_path_exact_over_page_boundaries(shoalfs_mod, zc_node, files, block_size):
    np = pytest.importorskip("numpy")
    root, data = files
    want = data["small.bin"]
    path = f"{root}/small.bin"
    fs = shoalfs_mod.ShoalFileSystem(target_protocol="file", seeds=zc_node.seeds,
                                     skip_instance_cache=True, block_size=block_size)
    todo = spans(len(want))
    got = fs.cat_ranges([path] * len(todo), [s for s, _ in todo], [e for _, e in todo])
    for (s, e), b in zip(todo, got):
        assert type(b) is bytes and b == want[s:e], (s, e)
    buf = bytearray(len(want) + 200)
    arr = np.zeros(len(want) + 200, dtype=np.uint8)
    with fs.open(path) as f:
        for s, e in todo:
            assert fs.cat_file(path, s, e) == want[s:e], (s, e)
            assert fs.read_block(path, s, e - s) == want[s:e], (s, e)
            f.seek(s)
            assert f.read(e - s) == want[s:e], (s, e)
            # a memoryview slice 100 bytes into a buffer of 0xee: nothing written outside it
            buf[:] = b"\xee" * len(buf)
            f.seek(s)
            assert f.readinto(memoryview(buf)[100:100 + e - s]) == e - s
            assert buf[100:100 + e - s] == want[s:e], (s, e)
            assert buf[:100] == b"\xee" * 100
            assert buf[100 + e - s:] == b"\xee" * (len(buf) - 100 - (e - s))
            arr[:] = 0xee
            f.seek(s)
            assert f.readinto(arr[7:7 + e - s]) == e - s
            assert arr[7:7 + e - s].tobytes() == want[s:e], (s, e)
            assert (arr[:7] == 0xee).all() and (arr[7 + e - s:] == 0xee).all()
    # sequential reads of every size, through the read-ahead blocks and around them
    for n in (1000, PAGE_SIZE - 1, PAGE_SIZE + 1, RANGE + 5):
        with fs.open(path) as f:
            chunks = []
            while True:
                b = f.read(n)
                if not b:
                    break
                chunks.append(b)
        assert b"".join(chunks) == want, n
        with fs.open(path) as f:
            view = memoryview(bytearray(len(want)))
            pos = 0
            while pos < len(want):
                pos += f.readinto(view[pos:pos + n])
            assert view.tobytes() == want, n
    with fs.open(path) as f:
        assert f.read() == want
    with fs.open(path) as f:  # size unknown at open: read() learns it, then the rest
        f.seek(PAGE_SIZE + 1)
        assert f.read() == want[PAGE_SIZE + 1:]


def test_short_reads_at_end_of_file(zc_fs, files):
    root, data = files
    want = data["small.bin"]
    size = len(want)
    path = f"{root}/small.bin"
    out = zc_fs.cat_file(path, size - 10, size + 5 * PAGE_SIZE)
    _sole(out)
    assert out == want[-10:]
    assert zc_fs.cat_file(path, size, size + 10) == b""
    out = zc_fs.read_block(path, size - PAGE_SIZE - 1, 3 * PAGE_SIZE)
    _sole(out)
    assert out == want[-PAGE_SIZE - 1:]
    got = zc_fs.cat_ranges([path] * 3, [size - 3, 0, size - RANGE], [size + 1, 2, size + RANGE])
    assert got == [want[-3:], want[:2], want[-RANGE:]]
    _sole(got[2])  # the list's
    with zc_fs.open(path) as f:  # size unknown: the first read learns it
        f.seek(size - 20)
        out = f.read(10 * PAGE_SIZE)
        _sole(out)
        assert out == want[-20:]
        assert f.read(10) == b""
    buf = bytearray(b"\xee" * (2 * PAGE_SIZE))
    with zc_fs.open(path) as f:
        f.seek(size - 30)
        assert f.readinto(buf) == 30
        assert buf[:30] == want[-30:] and buf[30:] == b"\xee" * (len(buf) - 30)
        assert f.readinto(buf) == 0


def test_results_are_filled_in_place(zc_fs, files):
    """The peak Python memory of each read of a warm 32 MiB file is the result alone."""
    np = pytest.importorskip("numpy")
    root, data = files
    want = data["big.bin"]
    size = len(want)
    path = f"{root}/big.bin"
    for known in (False, True):
        # size unknown: a first block grown in place; known (from the read before): one read
        if not known:
            zc_fs._sizes.clear()
        out, peak = _peak(lambda: zc_fs.cat_file(path))
        _sole(out)
        assert out == want
        # brief's bound, and the tighter one: no second object of the first block's size
        assert peak < 1.5 * size and peak < size + MIB, (known, peak)
    out, peak = _peak(lambda: zc_fs.cat_file(path, 0, size + 8 * MIB))  # short: shrunk in place
    _sole(out)
    assert out == want and peak < size + 8 * MIB + MIB, peak
    for known in (False, True):
        if not known:
            zc_fs._sizes.clear()
        with zc_fs.open(path) as f:
            out, peak = _peak(f.read)
        _sole(out)
        assert out == want and peak < size + MIB, (known, peak)
    del out

    def loop(f, n):
        count = 0
        while True:
            b = f.read(n)
            if not b:
                return count
            count += len(b)

    with zc_fs.open(path) as f:
        count, peak = _peak(lambda: loop(f, 4 * MIB))
    assert count == size
    # one 4 MiB result at a time (two while the next is made): no read-ahead block beside it
    assert peak < 2 * 4 * MIB + MIB, peak
    buf = bytearray(size)
    with zc_fs.open(path) as f:
        got, peak = _peak(lambda: f.readinto(buf))
    assert got == size and buf == want and peak < 64 << 10, peak
    arr = np.zeros(size, dtype=np.uint8)
    view = memoryview(arr)
    with zc_fs.open(path) as f:
        def chunks():
            n = 0
            while n < size:
                n += f.readinto(view[n:n + 4 * MIB])
            return n
        got, peak = _peak(chunks)
    assert got == size and arr.tobytes() == want and peak < 64 << 10, peak
    starts = list(range(0, size, 4 * MIB))
    ends = [s + 4 * MIB for s in starts]
    out, peak = _peak(lambda: zc_fs.cat_ranges([path] * len(starts), starts, ends))
    assert out == [want[s:e] for s, e in zip(starts, ends)]
    assert peak < len(starts) * 4 * MIB + MIB, peak
    out, peak = _peak(lambda: zc_fs.read_block(path, 3 * MIB + 1, 16 * MIB))
    _sole(out)
    assert out == want[3 * MIB + 1:19 * MIB + 1] and peak < 17 * MIB, peak
