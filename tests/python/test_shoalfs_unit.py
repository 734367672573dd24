"""test_shoalfs_unit.py - shoalfs alone, over an in-process fake of libshoal's C API.

Checks the Python side without any node: path forms, error mapping, cat_file/cat_ranges
slicing, the file object's seek/read/readinto and read-ahead, version pinning, read-only
errors. The end-to-end suite (test_e2e.py) checks the same against real processes.
"""
import ctypes
import errno
import io
import os
import random
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "client", "python"))

import fsspec  # noqa: E402
import shoalfs  # noqa: E402
from shoalfs import _lib  # noqa: E402


class FakeLib:
    """libshoal's functions in Python: files live in a dict {uri: (bytes, version)}."""

    def __init__(self):
        self.files = {}
        self.preads = []  # (uri, offset, length) of every read
        self.stats = 0  # shoal_stat calls
        self.last = b""
        self._listings = {}
        self._keep = []

    def _set(self, code, msg):
        self.last = msg.encode()
        return code

    def shoal_client_new(self, opts):
        return 1

    def shoal_client_destroy(self, p):
        pass

    def shoal_strerror(self, code):
        return {-1: b"not found", -2: b"access denied", -4: b"timed out", -8: b"stale",
                -11: b"is a directory"}.get(code, b"error")

    def shoal_last_error(self):
        return self.last

    def _dirs(self):
        dirs = set()
        for uri in self.files:
            scheme, rest = uri.split(b"://", 1)
            parts = rest.split(b"/")
            for i in range(1, len(parts)):
                dirs.add(scheme + b"://" + b"/".join(parts[:i]))
        return dirs

    def shoal_stat(self, client, uri, st_ref):
        self.stats += 1
        st = st_ref._obj
        if uri.startswith(b"file:///etc"):
            return self._set(-2, "outside every mount")
        if uri in self.files:
            data, version = self.files[uri]
            st.size, st.mtime, st.is_dir, st.version = len(data), 1700000000, False, version
            return 0
        if uri.rstrip(b"/") in self._dirs():
            st.size, st.mtime, st.is_dir, st.version = 0, 0, True, b""
            return 0
        return self._set(-1, f"{uri.decode()}: no such file")

    def shoal_list(self, client, uri, recursive, out_ref):
        prefix = uri.rstrip(b"/") + b"/"
        entries = {}
        for u, (data, version) in self.files.items():
            if not u.startswith(prefix):
                continue
            rest = u[len(prefix):]
            if recursive or b"/" not in rest:
                entries[u] = (len(data), False, version)
            else:
                entries[prefix + rest.split(b"/")[0]] = (0, True, b"")
        key = len(self._listings) + 1
        self._listings[key] = sorted(entries.items())
        out_ref._obj.value = key
        return 0

    def shoal_listing_count(self, listing):
        return len(self._listings[listing.value])

    def shoal_listing_uri(self, listing, i):
        return self._listings[listing.value][i][0]

    def shoal_listing_stat(self, listing, i):
        size, is_dir, version = self._listings[listing.value][i][1]
        st = _lib.Stat(size, 0, is_dir, version)
        self._keep.append(st)
        return ctypes.pointer(st)

    def shoal_listing_destroy(self, ref):
        self._listings.pop(ref._obj.value, None)

    def shoal_pread(self, client, uri, buf, length, offset):
        return self.shoal_pread_stat(client, uri, None, buf, length, offset, None)

    def shoal_pread_stat(self, client, uri, version, buf, length, offset, st_ref):
        if uri.startswith(b"file:///etc"):
            return self._set(-2, "outside every mount")
        if uri not in self.files:
            if uri.rstrip(b"/") in self._dirs():
                return self._set(-11, f"{uri.decode()}: is a directory")
            return self._set(-1, "gone")
        data, current = self.files[uri]
        if version and version != current:
            return self._set(-8, f"{uri.decode()}: changed under the reader")
        self.preads.append((uri, offset, length))
        # Copied from the stored bytes in place (no slice), so tracemalloc sees only what
        # shoalfs allocates.
        n = max(0, min(length, len(data) - offset))
        if n:
            ctypes.memmove(buf, ctypes.cast(ctypes.c_char_p(data), ctypes.c_void_p).value + offset,
                           n)
        if st_ref is not None:
            st = st_ref._obj
            st.size, st.mtime, st.is_dir, st.version = len(self.files[uri][0]), 1700000000, \
                False, current
        return n

    def shoal_pread_many(self, client, reads, count):
        first = 0
        for i in range(count):
            r = reads[i]
            r.result = self.shoal_pread(client, r.uri, r.buf, r.length, r.offset)
            if r.result < 0 and not first:
                first = r.result
        return first

    def _json(self, ptr_ref, text):
        buf = ctypes.create_string_buffer(text.encode())
        self._keep.append(buf)
        ptr_ref._obj.value = ctypes.addressof(buf)
        return 0

    def shoal_stats(self, client, ptr_ref):
        return self._json(ptr_ref, '{"nodes": [], "client": {"reads": 1}}')

    def shoal_members(self, client, ptr_ref):
        return self._json(ptr_ref, '{"view_version": 3, "members": []}')

    def shoal_free(self, ptr):
        pass


@pytest.fixture
def fake(monkeypatch):
    lib = FakeLib()
    monkeypatch.setattr(_lib, "_lib", lib)
    rng = random.Random(7)
    lib.files[b"s3://bucket/a/x.bin"] = (rng.randbytes(10_000_000), b"v1")
    lib.files[b"s3://bucket/a/y.bin"] = (rng.randbytes(1000), b"v1")
    lib.files[b"s3://bucket/a/sub/z.bin"] = (rng.randbytes(5), b"v1")
    lib.files[b"s3://bucket/empty"] = (b"", b"v1")
    lib.files[b"file:///data/f.bin"] = (rng.randbytes(100), b"100-1")
    return lib


@pytest.fixture
def fs(fake):
    return fsspec.filesystem("shoal", target_protocol="s3", seeds="127.0.0.1:1",
                             block_size=1 << 20, skip_instance_cache=True)


def test_paths_with_and_without_scheme(fs, fake):
    data = fake.files[b"s3://bucket/a/y.bin"][0]
    for p in ("s3://bucket/a/y.bin", "bucket/a/y.bin", "shoal://bucket/a/y.bin"):
        assert fs.cat_file(p) == data
        assert fs.info(p)["name"] == "bucket/a/y.bin"
    with pytest.raises(ValueError):
        fs.info("gs://bucket/a/y.bin")


def test_file_target(fake):
    fs = shoalfs.ShoalFileSystem(target_protocol="file", seeds="x:1", skip_instance_cache=True)
    data = fake.files[b"file:///data/f.bin"][0]
    assert fs.cat_file("/data/f.bin") == data
    assert fs.cat_file("file:///data/f.bin") == data
    assert fs.ls("/data", detail=False) == ["/data/f.bin"]
    with pytest.raises(PermissionError):
        fs.cat_file("/etc/passwd")


def test_listing(fs):
    assert fs.ls("bucket/a", detail=False) == ["bucket/a/sub", "bucket/a/x.bin", "bucket/a/y.bin"]
    entries = fs.ls("s3://bucket/a", detail=True)
    assert [e["type"] for e in entries] == ["directory", "file", "file"]
    assert entries[1]["size"] == 10_000_000
    assert fs.find("bucket/a") == ["bucket/a/sub/z.bin", "bucket/a/x.bin", "bucket/a/y.bin"]
    assert fs.glob("bucket/a/*.bin") == ["bucket/a/x.bin", "bucket/a/y.bin"]
    assert fs.glob("s3://bucket/**/z.bin") == ["bucket/a/sub/z.bin"]
    assert fs.isdir("bucket/a") and not fs.isfile("bucket/a")
    assert fs.isfile("bucket/a/x.bin") and fs.exists("bucket/a/x.bin")
    assert not fs.exists("bucket/nope")
    assert fs.size("bucket/a/y.bin") == 1000
    assert fs.ls("bucket/a/y.bin", detail=False) == ["bucket/a/y.bin"]
    with pytest.raises(FileNotFoundError):
        fs.ls("bucket/nope")


def test_cat_file_ranges(fs, fake):
    data = fake.files[b"s3://bucket/a/x.bin"][0]
    p = "bucket/a/x.bin"
    for start, end in [(None, None), (0, 10), (5, None), (-100, None), (-100, -10), (10, -5),
                       (None, 7), (9_999_990, 20_000_000), (20_000_000, None), (50, 10)]:
        assert fs.cat_file(p, start, end) == data[start:end], (start, end)
    assert fs.cat_file("bucket/empty") == b""
    with pytest.raises(IsADirectoryError):
        fs.cat_file("bucket/a")


def test_cat_ranges_one_batch(fs, fake):
    data = fake.files[b"s3://bucket/a/x.bin"][0]
    starts = [0, 100, 65535, -10, 9_999_000]
    ends = [10, 200, 65537 + 300000, None, 10_000_000]
    out = fs.cat_ranges(["bucket/a/x.bin"] * 5 + ["bucket/nope"], starts + [0], ends + [1])
    assert out[:5] == [data[s:e] for s, e in zip(starts, ends)]
    assert isinstance(out[5], FileNotFoundError)
    with pytest.raises(FileNotFoundError):
        fs.cat_ranges(["bucket/nope"], [0], [1], on_error="raise")


def test_open_random_access(fs, fake):
    data = fake.files[b"s3://bucket/a/x.bin"][0]
    rng = random.Random(3)
    with fs.open("bucket/a/x.bin", "rb") as f:
        assert f.size == len(data) and f.seekable() and f.readable() and not f.writable()
        for _ in range(200):
            off = rng.randrange(len(data) + 10)
            n = rng.choice([0, 1, 100, 65536, 300000, 2_000_000])
            whence = rng.choice([0, 1, 2])
            target = {0: off, 1: off - f.tell(), 2: off - len(data)}[whence]
            f.seek(target, whence)
            assert f.tell() == off
            assert f.read(n) == data[off:off + n]
            assert f.tell() == min(off + n, max(off, len(data)))


def test_sequential_reads_use_read_ahead(fs, fake):
    data = fake.files[b"s3://bucket/a/x.bin"][0]
    with fs.open("bucket/a/x.bin") as f:
        chunks = []
        while True:
            chunk = f.read(8192)
            if not chunk:
                break
            chunks.append(chunk)
    assert b"".join(chunks) == data
    # 8 KiB reads were served from 1 MiB blocks, not one request each
    assert len(fake.preads) < 20, len(fake.preads)
    assert max(length for _, _, length in fake.preads) == 1 << 20


def test_readinto_goes_to_callers_buffer(fs, fake):
    data = fake.files[b"s3://bucket/a/x.bin"][0]
    buf = bytearray(3_000_000)
    with fs.open("bucket/a/x.bin") as f:
        f.seek(1000)
        assert f.readinto(buf) == len(buf)
        assert bytes(buf) == data[1000:1000 + len(buf)]
        view = memoryview(buf)[10:20]
        f.seek(5)
        assert f.readinto(view) == 10
        assert buf[10:20] == data[5:15]
        f.seek(len(data) - 3)
        assert f.readinto(buf) == 3
        with pytest.raises(TypeError):
            f.readinto(b"readonly")
    # the 3 MB read went straight to the buffer as one pread (not blocks + copies)
    assert (b"s3://bucket/a/x.bin", 1000, 3_000_000) in fake.preads


def test_whole_file_reads_are_one_pread(fs, fake):
    """A whole-file read is one shoal_pread of the whole file (libshoal then has every range of
    it in flight at once), whatever the block size: read(), readinto() with a buffer at least as
    large as the file (what a DataLoader worker does), and cat_file."""
    uri = b"s3://bucket/a/x.bin"
    data = fake.files[uri][0]
    with fs.open("bucket/a/x.bin") as f:
        assert f.read() == data
    # no stat at open: a read of unknown length reads a block, whose reply names the size,
    # then all the rest at once with the version it named
    assert fake.preads == [(uri, 0, 1 << 20), (uri, 1 << 20, len(data) - (1 << 20))]
    fake.preads.clear()
    buf = bytearray(len(data) + 4096)
    with fs.open("bucket/a/x.bin") as f:
        assert f.readinto(buf) == len(data)
        assert f.readinto(buf) == 0
    assert bytes(buf[:len(data)]) == data
    # the size unknown (no stat at open), the one read asks for the buffer; it ends at the end
    assert fake.preads == [(uri, 0, len(buf))]
    fake.preads.clear()
    fs._sizes.clear()  # as a fresh filesystem: nothing read or listed yet
    assert fs.cat_file("bucket/a/x.bin") == data
    assert fake.preads == [(uri, 0, 1 << 20), (uri, 1 << 20, len(data) - (1 << 20))]
    fake.preads.clear()
    # the size is known now: one read of exactly the file
    assert fs.cat_file("bucket/a/x.bin") == data
    with fs.open("bucket/a/x.bin") as f:
        f.seek(10)
        assert f.read() == data[10:]
    assert fake.preads == [(uri, 0, len(data)), (uri, 10, len(data) - 10)]
    fake.preads.clear()
    small = b"s3://bucket/a/y.bin"
    assert fs.cat_file("bucket/a/y.bin") == fake.files[small][0]  # a small file: one read
    with fs.open("bucket/a/y.bin") as f:
        assert f.read() == fake.files[small][0]
    assert fake.preads == [(small, 0, 1 << 20), (small, 0, 1000)]


def test_sizes_seen_make_first_reads_exact(fs, fake):
    """A read of unknown length asks for the size last seen (listing, info, a read): one exact
    read with no block-sized object. Only a guess: a file that grew since is read on with the
    version the reply names, one that shrank comes back short."""
    uri = b"s3://bucket/a/y.bin"
    data = fake.files[uri][0]
    assert fs.find("bucket/a") == ["bucket/a/sub/z.bin", "bucket/a/x.bin", "bucket/a/y.bin"]
    out, peak = _peak(lambda: fs.cat_file("bucket/a/y.bin"))
    assert out == data and peak < 64 << 10, peak  # no 1 MiB first block made
    assert fake.preads == [(uri, 0, 1000)]
    fake.preads.clear()
    grown = data + b"more bytes"
    fake.files[uri] = (grown, b"v2")
    assert fs.cat_file("bucket/a/y.bin") == grown
    assert fake.preads == [(uri, 0, 1000), (uri, 1000, 10)]
    fake.preads.clear()
    with fs.open("bucket/a/y.bin") as f:  # learnt from that reply: exact again
        assert f.read() == grown
    assert fake.preads == [(uri, 0, 1010)]
    fake.files[uri] = (grown[:7], b"v3")
    assert fs.cat_file("bucket/a/y.bin") == grown[:7]
    fs.invalidate_cache()
    fake.preads.clear()
    assert fs.cat_file("bucket/a/y.bin") == grown[:7]
    assert fake.preads == [(uri, 0, 1 << 20)]  # forgotten: a block again
    assert fs.info("bucket/a/x.bin")["size"] == 10_000_000
    fake.preads.clear()
    with fs.open("bucket/a/x.bin") as f:
        assert f.read() == fake.files[b"s3://bucket/a/x.bin"][0]
    assert fake.preads == [(b"s3://bucket/a/x.bin", 0, 10_000_000)]


def test_numpy_readinto(fs, fake):
    np = pytest.importorskip("numpy")
    data = fake.files[b"s3://bucket/a/x.bin"][0]
    arr = np.empty(1 << 20, dtype=np.uint8)
    with fs.open("bucket/a/x.bin") as f:
        assert f.readinto(arr) == arr.nbytes
    assert arr.tobytes() == data[:1 << 20]


def test_version_pinned(fs, fake):
    uri = b"s3://bucket/a/x.bin"
    old = fake.files[uri][0]
    f = fs.open("bucket/a/x.bin")
    assert f.read(100) == old[:100]
    fake.files[uri] = (bytes(len(old)), b"v2")  # changed at the origin
    with pytest.raises(OSError, match="changed"):
        f.seek(5_000_000)
        f.read(100)
    f.close()
    with pytest.raises(ValueError):
        f.read(1)


def test_text_mode(fs, fake):
    fake.files[b"s3://bucket/t.txt"] = (b"line one\nline two\n", b"v1")
    with fs.open("bucket/t.txt", "r") as f:
        assert f.readlines() == ["line one\n", "line two\n"]


def test_writes_are_refused(fs):
    for call in (lambda: fs.open("bucket/new", "wb"), lambda: fs.pipe("bucket/new", b"x"),
                 lambda: fs.rm("bucket/a/y.bin"), lambda: fs.mkdir("bucket/d"),
                 lambda: fs.put("/etc/hostname", "bucket/h"), lambda: fs.touch("bucket/t"),
                 lambda: fs.mv("bucket/a/y.bin", "bucket/b"),
                 lambda: fs.open("bucket/a/y.bin", "ab")):
        with pytest.raises(PermissionError, match="shoal is a read-only cache"):
            call()
    with fs.open("bucket/a/y.bin") as f:
        with pytest.raises(PermissionError, match="read-only"):
            f.write(b"x")


def test_error_mapping(fake):
    cases = {_lib.SHOAL_ENOENT: FileNotFoundError, _lib.SHOAL_EACCES: PermissionError,
             _lib.SHOAL_ETIMEDOUT: TimeoutError, _lib.SHOAL_EISDIR: IsADirectoryError,
             _lib.SHOAL_EIO: OSError, _lib.SHOAL_EROFS: PermissionError}
    fake.last = b"GET http://x/y: HTTP 500"
    for code, cls in cases.items():
        e = _lib.error(code, "s3://b/k")
        assert isinstance(e, cls)
        assert "s3://b/k" in str(e) and "HTTP 500" in str(e)
    assert _lib.error(_lib.SHOAL_EIO).code == _lib.SHOAL_EIO


def test_stats_and_members(fs):
    assert fs.stats()["client"]["reads"] == 1
    assert fs.members()["view_version"] == 3


def test_missing_library_names_all_places(monkeypatch, tmp_path):
    monkeypatch.setattr(_lib, "_lib", None)
    monkeypatch.setenv("SHOAL_LIBRARY", str(tmp_path / "nope.so"))
    monkeypatch.setattr(_lib.ctypes.util, "find_library", lambda name: None)
    with pytest.raises(OSError) as info:
        _lib.load()
    text = str(info.value)
    assert "SHOAL_LIBRARY" in text and "next to the package" in text and "system" in text


def test_library_found_first_skips_the_system_search(monkeypatch, tmp_path):
    """SHOAL_LIBRARY found: find_library (ldconfig and gcc runs, tens of ms) is never called."""
    class Fn:
        pass

    class Lib:
        def __getattr__(self, name):
            return Fn()

    path = tmp_path / "libshoal.so"
    path.write_bytes(b"")
    monkeypatch.setattr(_lib, "_lib", None)
    monkeypatch.setenv("SHOAL_LIBRARY", str(path))
    monkeypatch.setattr(_lib.ctypes, "CDLL", lambda p: Lib())

    def no_search(name):
        raise AssertionError("searched the system library path")

    monkeypatch.setattr(_lib.ctypes.util, "find_library", no_search)
    assert isinstance(_lib.load(), Lib)


def test_seeds_required(fake, monkeypatch):
    monkeypatch.delenv("SHOAL_SEEDS", raising=False)
    with pytest.raises(ValueError, match="seeds"):
        shoalfs.ShoalFileSystem(target_protocol="s3", skip_instance_cache=True)


def test_pickle_roundtrip(fs):
    import pickle
    fs2 = pickle.loads(pickle.dumps(fs))
    assert fs2.target_protocol == "s3" and fs2.seeds == fs.seeds


def test_io_wrappers(fs, fake):
    data = fake.files[b"s3://bucket/a/x.bin"][0]
    with fs.open("bucket/a/x.bin") as f:
        reader = io.BufferedReader(f, buffer_size=65536)
        assert reader.read(10) == data[:10]
        assert reader.peek(1)[:1] == data[10:11]


# ------------------------------------------------------------------ zero-copy reads (issue 11)
# Every read path fills the object it returns in place: one copy (here from the fake's stored
# bytes, in libshoal from the reply frame or the page) into a bytes object made at its final
# size, shrunk in place when short; readinto fills the caller's buffer with no copy at all.
# tracemalloc sees every Python allocation (libshoal's own buffers are C malloc, not traced),
# so the peak of a read is what shoalfs allocated for it: an intermediate buffer, a slice or a
# join of the result would add its size.

BIG = 32 << 20
MIB = 1 << 20


@pytest.fixture
def big(fake):
    """A 32 MiB file (plus a tail that is not a whole block) and a filesystem with the default
    4 MiB block."""
    uri = b"s3://bucket/big.bin"
    data = random.Random(11).randbytes(BIG + 12345)
    fake.files[uri] = (data, b"v1")
    fs = shoalfs.ShoalFileSystem(target_protocol="s3", seeds="127.0.0.1:1",
                                 skip_instance_cache=True)
    return fs, uri, data


def _peak(fn):
    """(result of fn(), bytes allocated at the peak of the call above what was live before)."""
    import tracemalloc
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        out = fn()
        return out, tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()


def _sole(obj, holders=1):
    """Checks that `obj` is a real bytes object with exactly `holders` references besides this
    call's (no reference leaked or lost by the raw-reference handling): getrefcount also counts
    this function's parameter and its own argument. Called as a statement of its own, since
    pytest's assertion rewriting keeps references to the values inside an assert."""
    refs = sys.getrefcount(obj) - 2
    kind = type(obj)
    if kind is not bytes or refs != holders:
        raise AssertionError(f"a {kind.__name__} with {refs} references, not bytes with "
                             f"{holders}")


def test_cat_file_fills_the_result_in_place(big, fake):
    fs, uri, data = big
    size = len(data)
    out, peak = _peak(lambda: fs.cat_file("bucket/big.bin"))
    _sole(out)
    assert out == data
    # the first 4 MiB block (which learns the size) grows into the whole file: no second object
    assert peak < 1.5 * size and peak < size + MIB, peak
    assert fake.preads == [(uri, 0, 4 * MIB), (uri, 4 * MIB, size - 4 * MIB)]
    # a span past the end: made at the asked size, shrunk in place (not sliced)
    out, peak = _peak(lambda: fs.cat_file("bucket/big.bin", 0, 2 * size))
    _sole(out)
    assert out == data
    assert peak < 2 * size + MIB, peak
    out, peak = _peak(lambda: fs.cat_file("bucket/big.bin", -(8 * MIB), None))
    assert out == data[-(8 * MIB):] and peak < 9 * MIB, peak


def test_file_reads_fill_the_result_in_place(big, fake):
    fs, uri, data = big
    size = len(data)
    with fs.open("bucket/big.bin") as f:
        out, peak = _peak(f.read)  # unknown size: a block, grown in place to the whole file
        _sole(out)
        assert out == data
        assert peak < size + MIB, peak
    fake.preads.clear()

    def loop(f, n):
        chunks = 0
        while True:
            b = f.read(n)
            if not b:
                return chunks
            assert b == data[chunks * n:chunks * n + len(b)]
            chunks += 1

    with fs.open("bucket/big.bin") as f:
        chunks, peak = _peak(lambda: loop(f, 4 * MIB))
    assert chunks == 9
    # 4 MiB reads bypass the read-ahead block: one pread each, straight into its result,
    # nothing read ahead, so at most one 4 MiB object (plus the chunk being compared) is live
    assert fake.preads == [(uri, i * 4 * MIB, min(4 * MIB, size - i * 4 * MIB))
                           for i in range(9)]
    assert peak < 2 * 4 * MIB + MIB, peak
    fake.preads.clear()
    # small sequential reads: the first two are read straight (no block yet), then 4 MiB blocks
    # are read ahead and served from
    with fs.open("bucket/big.bin") as f:
        for i in range(400):
            assert f.read(65536) == data[i * 65536:(i + 1) * 65536]
    assert fake.preads[:3] == [(uri, 0, 65536), (uri, 65536, 65536),
                               (uri, 2 * 65536, 4 * MIB)]
    assert [length for _, _, length in fake.preads[2:]] == \
        [min(4 * MIB, size - offset) for _, offset, _ in fake.preads[2:]]


def test_large_read_after_small_ones_takes_the_block_then_goes_straight(big, fake):
    fs, uri, data = big
    with fs.open("bucket/big.bin") as f:
        assert f.read(100) == data[:100]
        assert f.read(100) == data[100:200]  # straight; read-ahead of [200, 200 + 4 MiB)
        fake.preads.clear()
        assert f.read(10 * MIB) == data[200:200 + 10 * MIB]
        # served from the block read ahead, the rest straight; no new read-ahead
        assert fake.preads == [(uri, 200, 4 * MIB), (uri, 200 + 4 * MIB, 6 * MIB)]
        assert f.read(5 * MIB) == data[200 + 10 * MIB:200 + 15 * MIB]
        assert fake.preads[-1] == (uri, 200 + 10 * MIB, 5 * MIB)


def test_readinto_copies_nothing(big, fake):
    fs, _, data = big
    size = len(data)
    buf = bytearray(size)
    with fs.open("bucket/big.bin") as f:
        got, peak = _peak(lambda: f.readinto(buf))
    assert got == size and buf == data
    assert peak < 64 << 10, peak
    view = memoryview(buf)
    with fs.open("bucket/big.bin") as f:
        f.seek(size)
        f.seek(0)

        def loop():
            n = 0
            while n < size:
                n += f.readinto(view[n:n + 4 * MIB])
            return n

        got, peak = _peak(loop)
    assert got == size and buf == data
    assert peak < 64 << 10, peak


def test_readinto_memoryview_slices_and_numpy(fs, fake):
    np = pytest.importorskip("numpy")
    data = fake.files[b"s3://bucket/a/x.bin"][0]
    buf = bytearray(b"\xee" * 300_000)
    with fs.open("bucket/a/x.bin") as f:
        for off, a, b in [(0, 0, 1), (65535, 10, 65547), (1 << 20, 7, 200_007),
                          (len(data) - 5, 100, 200)]:
            f.seek(off)
            want = data[off:off + (b - a)]
            assert f.readinto(memoryview(buf)[a:b]) == len(want)
            assert buf[a:a + len(want)] == want
            assert buf[:a] == b"\xee" * a  # nothing written outside the slice
            assert buf[a + len(want):] == b"\xee" * (len(buf) - a - len(want))
            buf[:] = b"\xee" * len(buf)
        # numpy: 2-D uint8, a float64 array (bytes in its memory), a contiguous slice
        f.seek(12345)
        arr = np.zeros((64, 1024), dtype=np.uint8)
        assert f.readinto(arr) == arr.nbytes
        assert arr.tobytes() == data[12345:12345 + arr.nbytes]
        f.seek(3)
        arr = np.zeros(1000, dtype=np.float64)
        assert f.readinto(arr) == 8000 and arr.tobytes() == data[3:8003]
        arr = np.zeros(1000, dtype=np.uint8)
        f.seek(len(data) - 100)
        assert f.readinto(arr[500:]) == 100
        assert arr[500:600].tobytes() == data[-100:] and not arr[:500].any()
        with pytest.raises(TypeError):
            f.readinto(np.zeros(100, dtype=np.uint8)[::2])  # not contiguous
        ro = np.zeros(10, dtype=np.uint8)
        ro.flags.writeable = False
        with pytest.raises(TypeError):
            f.readinto(ro)


def test_short_reads_at_eof(fs, fake):
    uri = b"s3://bucket/a/x.bin"
    data = fake.files[uri][0]
    size = len(data)
    cases = [(fs.cat_file("bucket/a/x.bin", size - 10, size + 100), data[-10:]),
             (fs.cat_file("bucket/a/x.bin", size + 5, size + 10), b""),
             (fs.read_block("bucket/a/x.bin", size - 7, 1000), data[-7:]),
             (fs.cat_file("bucket/a/y.bin"), fake.files[b"s3://bucket/a/y.bin"][0])]
    for out, want in cases:
        if want:
            _sole(out, holders=2)  # `out` and its tuple in `cases`
        assert out == want
    ranges = fs.cat_ranges(["bucket/a/x.bin"] * 3, [size - 3, 0, size], [size + 50, 5, size + 9])
    assert ranges == [data[-3:], data[:5], b""]
    assert all(type(r) is bytes for r in ranges)
    _sole(ranges[0])  # the list's
    with fs.open("bucket/a/x.bin") as f:
        f.seek(size - 10)
        out = f.read(100)
        _sole(out)
        assert out == data[-10:]
        assert f.read(100) == b""
    with fs.open("bucket/a/x.bin") as f:  # size unknown: the first read learns it
        f.seek(size - 4)
        out = f.read(1000)
        _sole(out)
        assert out == data[-4:]


def test_cat_ranges_land_in_their_results(big, fake):
    fs, uri, data = big
    starts = [i * 4 * MIB for i in range(8)] + [len(data) - 100]
    ends = [s + 4 * MIB for s in starts[:8]] + [len(data) + 4 * MIB]
    out, peak = _peak(lambda: fs.cat_ranges(["bucket/big.bin"] * 9, starts, ends))
    assert out == [data[s:e] for s, e in zip(starts, ends)]
    for o in out:
        _sole(o, holders=2)  # the list's and `o`
    # 32 MiB asked for plus 4 MiB past the end (shrunk in place): nothing else
    assert peak < 36 * MIB + MIB, peak
    assert sorted(fake.preads) == sorted((uri, s, e - s) for s, e in zip(starts, ends))


def test_read_block_is_one_read_without_stat(big, fake):
    fs, uri, data = big
    fake.stats = 0
    out, peak = _peak(lambda: fs.read_block("bucket/big.bin", 5 * MIB + 3, 9 * MIB))
    _sole(out)
    assert out == data[5 * MIB + 3:14 * MIB + 3]
    assert fake.preads == [(uri, 5 * MIB + 3, 9 * MIB)] and fake.stats == 0
    assert peak < 10 * MIB, peak
    assert fs.read_block("bucket/big.bin", len(data) - 5, None) == data[-5:]
    fake.files[b"s3://bucket/lines"] = (b"aa\nbbb\ncccc\ndd", b"v1")
    assert fs.read_block("bucket/lines", 1, 4, delimiter=b"\n") == b"bbb\n"
    assert fs.read_block("bucket/lines", 0, 2, delimiter=b"\n") == b"aa\n"
    with pytest.raises(ValueError):
        fs.read_block("bucket/big.bin", -1, 5)


def test_failed_reads_release_their_results(big, fake):
    fs, _, data = big
    import tracemalloc

    def failing():
        for _ in range(20):
            with pytest.raises(FileNotFoundError):
                fs.cat_file("bucket/nope")  # a 4 MiB result made, then the read fails
            with pytest.raises(FileNotFoundError):
                fs.cat_file("bucket/nope", 0, 8 * MIB)
            out = fs.cat_ranges(["bucket/nope", "bucket/big.bin"], [0, 0], [MIB, 10])
            assert isinstance(out[0], FileNotFoundError) and out[1] == data[:10]

    tracemalloc.start()
    try:
        failing()  # warm caches (exception classes, tracebacks)
        before = tracemalloc.get_traced_memory()[0]
        failing()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < MIB, grown  # 60 results of 1-8 MiB made and dropped: none kept
