"""test_cold_e2e.py - issue 10's request counts through shoalfs, end to end: shoald nodes (1 and
3, gossip-joined) in front of tests/support/origin.py (HTTP, no delay, requests counted by kind
at /_counts) and of the same folder over file://.

Shows, on 1 node and on 3: a cold small file read with `cat_file` or `open().read()` costs
exactly 1 origin GET and 0 HEADs; its warm repeat costs 0; `find(detail=True)` fills the
client's stat cache, so `info`/`isfile` of every listed file sends no request to any node (and
so none to the origin); an open file whose origin file is replaced fails its next uncached read
with the "changed under the reader" OSError; `cat_file` of a file replaced after its range 0 was
cached returns the new file whole (every byte checked).
"""
import ctypes
import http.client
import json
import os
import random
import sys

import pytest

from conftest import PAGE_SIZE, RANGE_PAGES, REPO, SHOALD, Proc, free_port, need_binaries, \
    port_open, wait_for

RANGE = PAGE_SIZE * RANGE_PAGES
ORIGIN = os.path.join(REPO, "tests", "support", "origin.py")
SMALL = 8  # small files per test (each under one range)


class Origin:
    """tests/support/origin.py on a free port, no delay."""

    def __init__(self, root, log):
        self.port = free_port()
        self.proc = Proc([sys.executable, ORIGIN, "--port", str(self.port), "--root", root,
                          "--delay-ms", "0"], log)
        wait_for(lambda: port_open(self.port) or not self.proc.alive(), 20, "origin.py")
        if not self.proc.alive():
            raise RuntimeError("origin.py exited: " + self.proc.tail())

    def _control(self, method, path):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, path)
            return conn.getresponse().read()
        finally:
            conn.close()

    def reset(self):
        self._control("POST", "/_reset")

    def counts(self):
        return json.loads(self._control("GET", "/_counts"))


class Cluster:
    """n shoald nodes mounting the origin (http) and its folder (file://), joined by gossip."""

    def __init__(self, workdir, n, mounts):
        need_binaries()
        self.nodes = []
        first_gossip = None
        try:
            for k in range(n):
                port, gossip = free_port(), free_port()
                name = f"cold{n}-n{k}"
                d = os.path.join(workdir, name)
                os.makedirs(d, exist_ok=True)
                argv = [SHOALD, "--name", name, "--data-dir", os.path.join(d, "data"),
                        "--capacity", str(256 << 20), "--listen", f"tcp://127.0.0.1:{port}",
                        "--gossip", f"tcp://127.0.0.1:{gossip}", "--metadata-ttl", "60",
                        "--threads", "4", "--page-size", str(PAGE_SIZE),
                        "--range-pages", str(RANGE_PAGES)]
                for m in mounts:
                    argv += ["--mount", m]
                if first_gossip:
                    argv += ["--seeds", first_gossip]
                else:
                    first_gossip = f"127.0.0.1:{gossip}"
                proc = Proc(argv, os.path.join(d, "shoald.log"))
                self.nodes.append((proc, port))
                wait_for(lambda: port_open(port) or not proc.alive(), 20, f"shoald {name}")
                if not proc.alive():
                    raise RuntimeError(f"shoald {name} exited: {proc.tail()}")
            self.seeds = ",".join(f"127.0.0.1:{p}" for _, p in self.nodes)
        except Exception:
            self.stop()
            raise

    def wait_converged(self, shoalfs):
        n = len(self.nodes)
        for _, port in self.nodes:
            fs = shoalfs.ShoalFileSystem(target_protocol="http", seeds=f"127.0.0.1:{port}",
                                         skip_instance_cache=True)

            def alive():
                try:
                    view = fs.members()
                except OSError:
                    return False
                return sum(m.get("state") == "alive" for m in view.get("members", [])) >= n

            wait_for(alive, 30, f"{n} alive members seen by node :{port}")
            fs._client.close()

    def stop(self):
        for proc, _ in self.nodes:
            proc.stop()


@pytest.fixture(scope="module")
def origin(workdir):
    root = os.path.join(workdir, "cold-origin")
    os.makedirs(root, exist_ok=True)
    o = Origin(root, os.path.join(workdir, "cold-origin.log"))
    try:
        yield o, root
    finally:
        o.proc.stop()


@pytest.fixture(scope="module", params=[1, 3], ids=["1node", "3nodes"])
def cluster(request, workdir, origin, shoalfs_mod):
    o, root = origin
    c = Cluster(workdir, request.param, [f"http://127.0.0.1:{o.port}/", f"file://{root}/"])
    try:
        c.wait_converged(shoalfs_mod)
        yield c
    finally:
        c.stop()


def write_files(root, folder, count, seed, min_size=1, max_size=RANGE):
    """`count` files of random sizes in [min_size, max_size] under root/folder; {rel: bytes}."""
    rng = random.Random(seed)
    os.makedirs(os.path.join(root, folder), exist_ok=True)
    out = {}
    for i in range(count):
        rel = f"{folder}/f{i:03d}.bin"
        data = rng.randbytes(rng.randint(min_size, max_size))
        with open(os.path.join(root, rel), "wb") as f:
            f.write(data)
        out[rel] = data
    return out


def replace_file(path, data):
    """Publishes new content under `path` (new mtime, so origin.py gives it a new ETag)."""
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    st = os.stat(path)
    os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_007))
    os.replace(tmp, path)


def http_fs(shoalfs, o, cluster):
    fs = shoalfs.ShoalFileSystem(target_protocol="http", seeds=cluster.seeds,
                                 skip_instance_cache=True)
    return fs, f"127.0.0.1:{o.port}"


def client_counters(fs):
    """This client's own counters (shoal_client_counters_json), asking no node."""
    lib = fs._lib
    fn = lib.shoal_client_counters_json
    fn.restype = ctypes.c_int
    fn.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p)]
    ptr = ctypes.c_void_p()
    assert fn(fs._client.handle, ctypes.byref(ptr)) == 0
    from shoalfs import _lib
    return _lib.take_json(lib, ptr)


def origin_delta(o, path):
    c = o.counts()
    per = c["by_path"].get("/" + path, {})
    return per.get("GET", 0), per.get("HEAD", 0)


def settle(fs):
    """Waits until every node has stored what it fetched (a reply goes out before its pages
    are written, so a repeat read right after could still miss them)."""
    def idle():
        nodes = fs.stats().get("nodes", [])
        return nodes and all(n.get("counters", {}).get("store_queue_depth", 0) == 0
                             for n in nodes)
    wait_for(idle, 30, "the nodes' store queues to drain")


def check_cold_then_warm(fs, o, files, read):
    """Each file read cold costs exactly 1 GET and 0 HEAD at the origin, its repeat 0."""
    o.reset()
    for rel, data in sorted(files.items()):
        assert read(rel) == data, rel
        assert origin_delta(o, rel) == (1, 0), (rel, o.counts()["by_path"].get("/" + rel))
    c = o.counts()
    assert (c["GET"], c["HEAD"]) == (len(files), 0), c
    settle(fs)
    o.reset()
    for rel, data in sorted(files.items()):
        assert read(rel) == data, rel
    c = o.counts()
    assert (c["GET"], c["HEAD"], c["GET_304"], c["HEAD_304"]) == (0, 0, 0, 0), \
        {k: v for k, v in c["by_path"].items() if v}


def test_cold_cat_file_one_get(shoalfs_mod, origin, cluster):
    o, root = origin
    n = len(cluster.nodes)
    files = write_files(root, f"cat{n}", SMALL, seed=10 + n)
    fs, base = http_fs(shoalfs_mod, o, cluster)
    check_cold_then_warm(fs, o, files, lambda rel: fs.cat_file(f"{base}/{rel}"))


def test_cold_open_read_one_get(shoalfs_mod, origin, cluster):
    o, root = origin
    n = len(cluster.nodes)
    files = write_files(root, f"open{n}", SMALL, seed=20 + n)
    fs, base = http_fs(shoalfs_mod, o, cluster)

    def read(rel):
        with fs.open(f"{base}/{rel}", "rb") as f:
            return f.read()

    check_cold_then_warm(fs, o, files, read)


def test_info_after_find_asks_nobody(shoalfs_mod, origin, cluster):
    """Ray's path: find(detail=True), then info/isfile/size of every listed file. Plain HTTP
    cannot list, so the listing goes through the file:// mount of the same folder."""
    o, root = origin
    n = len(cluster.nodes)
    files = write_files(root, f"ray{n}", SMALL, seed=30 + n)
    fs = shoalfs_mod.ShoalFileSystem(target_protocol="file", seeds=cluster.seeds,
                                     skip_instance_cache=True, metadata_ttl_ms=60000)
    listed = fs.find(f"{root}/ray{n}", detail=True)
    assert sorted(listed) == sorted(f"{root}/{rel}" for rel in files)
    o.reset()
    before = client_counters(fs)
    for name, entry in listed.items():
        info = fs.info(name)
        assert info["size"] == len(files[name[len(root) + 1:]]) == entry["size"]
        assert info["type"] == "file" and info.get("version") == entry.get("version")
        assert fs.isfile(name)
        assert fs.size(name) == entry["size"]
    after = client_counters(fs)
    assert after["requests"] == before["requests"], (before, after)
    assert after["stat_cache_misses"] == before["stat_cache_misses"], (before, after)
    assert after["stat_cache_hits"] - before["stat_cache_hits"] >= 3 * len(files)
    c = o.counts()
    assert (c["GET"], c["HEAD"]) == (0, 0), c
    # and the reads that follow are correct
    for name in sorted(listed):
        assert fs.cat_file(name) == files[name[len(root) + 1:]]


def test_info_of_unlisted_file_is_its_read(shoalfs_mod, origin, cluster):
    """Ray's path over plain HTTP (no listing): info, isfile, open and read of each file. info
    of a file the client holds no stat for reads its first byte (shoal_stat_read): one GET, no
    HEAD, and the read that follows costs the origin nothing (range 0 is cached by then)."""
    o, root = origin
    n = len(cluster.nodes)
    files = write_files(root, f"unlisted{n}", SMALL, seed=50 + n)
    fs, base = http_fs(shoalfs_mod, o, cluster)
    o.reset()
    before = client_counters(fs)
    for rel, data in sorted(files.items()):
        info = fs.info(f"{base}/{rel}")
        assert info["type"] == "file" and info["size"] == len(data), (rel, info)
        assert fs.isfile(f"{base}/{rel}")
        with fs.open(f"{base}/{rel}", "rb") as f:
            assert f.read() == data, rel
        assert origin_delta(o, rel) == (1, 0), (rel, o.counts()["by_path"].get("/" + rel))
    c = o.counts()
    assert (c["GET"], c["HEAD"]) == (len(files), 0), c
    after = client_counters(fs)
    assert after["stats_by_read"] - before["stats_by_read"] == len(files), (before, after)
    # a directory is still a directory (its READ finds no object: a STAT says what it is), and a
    # missing file is still missing
    fs_file = shoalfs_mod.ShoalFileSystem(target_protocol="file", seeds=cluster.seeds,
                                          skip_instance_cache=True)
    assert fs_file.info(f"{root}/unlisted{n}")["type"] == "directory"
    assert fs_file.isdir(f"{root}/unlisted{n}")
    with pytest.raises(FileNotFoundError):
        fs.info(f"{base}/unlisted{n}/no-such-file.bin")


def test_open_file_replaced_raises_changed_under_reader(shoalfs_mod, origin, cluster):
    o, root = origin
    n = len(cluster.nodes)
    rel = f"pinned{n}.bin"
    rng = random.Random(40 + n)
    size = 3 * RANGE + 123
    old, new = rng.randbytes(size), rng.randbytes(size)
    path = os.path.join(root, rel)
    with open(path, "wb") as f:
        f.write(old)
    fs, base = http_fs(shoalfs_mod, o, cluster)
    with fs.open(f"{base}/{rel}", "rb") as f:
        assert f.read(1000) == old[:1000]  # pins the version, caches range 0 only
        replace_file(path, new)
        f.seek(2 * RANGE + 5)  # a range no node holds yet: asked of the origin, If-Match
        with pytest.raises(OSError, match="changed under the reader"):
            f.read(1000)
    # a new open sees the new file, whole
    with fs.open(f"{base}/{rel}", "rb") as f:
        assert f.read() == new


def test_cat_file_of_replaced_file_is_new_whole(shoalfs_mod, origin, cluster):
    o, root = origin
    n = len(cluster.nodes)
    rel = f"replaced{n}.bin"
    rng = random.Random(50 + n)
    size = 3 * RANGE + 77
    old, new = rng.randbytes(size), rng.randbytes(size)
    path = os.path.join(root, rel)
    with open(path, "wb") as f:
        f.write(old)
    fs, base = http_fs(shoalfs_mod, o, cluster)
    assert fs.cat_file(f"{base}/{rel}", 0, 10) == old[:10]  # range 0 of the old one cached
    replace_file(path, new)
    got = fs.cat_file(f"{base}/{rel}")
    assert len(got) == size
    assert got == new, "cat_file mixed old and new bytes or returned the old file"
