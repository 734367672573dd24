"""test_e2e.py - shoalfs against real processes: shoald in front of a file:// tree, an nginx
http:// origin and a moto S3 origin, all on loopback.

Shows: every byte read equals the origin's (whole files, random ranges, ranges across page and
range boundaries); a second read makes no request to the origin; a changed object gives old
bytes until the metadata TTL and new bytes after, never a mix; paths outside the mounts and
traversal attempts are refused; threads and forked children read correct bytes; reads go on
when the node is SIGKILLed mid-read; writes are refused; Ray-style scheme-less paths work.
"""
import concurrent.futures
import hashlib
import multiprocessing
import os
import random
import time

import pytest

from conftest import (BUCKET, PAGE_SIZE, RANGE_PAGES, Node, count_lines, moto_marker, moto_put,
                      moto_requests, nginx_marker, sha, wait_for)

RANGE = PAGE_SIZE * RANGE_PAGES
KINDS = ["file", "http", "s3"]


def make_fs(shoalfs, kind, node, **kw):
    return shoalfs.ShoalFileSystem(target_protocol=kind, seeds=node.seeds,
                                   skip_instance_cache=True, **kw)


def base_of(kind, dataset, nginx):
    """Scheme-less prefix of the dataset for a kind of origin (what Ray would pass)."""
    if kind == "file":
        return dataset[0]
    if kind == "http":
        return f"127.0.0.1:{nginx['port']}/data"
    return BUCKET


@pytest.fixture(params=KINDS)
def kind(request, origins):
    if request.param not in origins:
        pytest.skip(f"no {request.param} origin (moto_server missing)")
    return request.param


def boundary_ranges(size):
    """(start, end) pairs on and across page and range boundaries inside a file of `size`."""
    out = [(0, size), (0, 1), (max(0, size - 1), size)]
    for edge in range(PAGE_SIZE, size + 1, PAGE_SIZE):
        for a, b in ((-1, 1), (-1, 0), (0, 1), (-100, 100), (-PAGE_SIZE + 5, 7)):
            s, e = max(0, edge + a), min(size, edge + b)
            if s < e:
                out.append((s, e))
    for edge in range(RANGE, size + 1, RANGE):
        out.append((max(0, edge - RANGE // 2 - 3), min(size, edge + RANGE + 11)))
    return out


def test_bytes_equal_origin(shoalfs_mod, node, dataset, nginx, kind):
    fs = make_fs(shoalfs_mod, kind, node)
    base = base_of(kind, dataset, nginx)
    files = dataset[1]
    rng = random.Random(11)
    for rel, data in sorted(files.items()):
        path = f"{base}/{rel}"
        assert sha(fs.cat_file(path)) == sha(data), path
        assert fs.size(path) == len(data)
        ranges = boundary_ranges(len(data))
        ranges += [tuple(sorted((rng.randrange(len(data) + 1), rng.randrange(len(data) + 1))))
                   for _ in range(10)] if data else []
        for s, e in ranges:
            assert fs.cat_file(path, s, e) == data[s:e], (path, s, e)
        got = fs.cat_ranges([path] * len(ranges), [s for s, _ in ranges], [e for _, e in ranges])
        assert got == [data[s:e] for s, e in ranges], path
    # through open(): random seeks, small sequential reads, and readinto
    data = files["big.bin"]
    with fs.open(f"{base}/big.bin", "rb") as f:
        for _ in range(30):
            off = rng.randrange(len(data))
            f.seek(off)
            n = rng.choice([1, 4096, PAGE_SIZE + 3, RANGE + 5])
            assert f.read(n) == data[off:off + n]
        f.seek(0)
        h = hashlib.sha256()
        while chunk := f.read(10000):
            h.update(chunk)
        assert h.hexdigest() == sha(data)
        buf = bytearray(RANGE * 3 + 17)
        f.seek(PAGE_SIZE - 9)
        assert f.readinto(buf) == len(buf)
        assert buf == data[PAGE_SIZE - 9:PAGE_SIZE - 9 + len(buf)]


def test_scheme_and_stripped_paths(shoalfs_mod, node, dataset, nginx, kind):
    fs = make_fs(shoalfs_mod, kind, node)
    base = base_of(kind, dataset, nginx)
    full = {"file": "file://", "http": "http://", "s3": "s3://"}[kind] + base
    data = dataset[1]["sub/a.bin"]
    assert fs.cat_file(f"{full}/sub/a.bin") == data
    assert fs.cat_file(f"{base}/sub/a.bin") == data
    assert fs.cat_file(f"shoal://{base}/sub/a.bin") == data
    if kind == "http":
        return  # plain HTTP has no listing
    # names come back scheme-less and read back as they are (what Ray does)
    names = fs.find(f"{full}/sub")
    assert names == sorted(f"{base}/{r}" for r in dataset[1] if r.startswith("sub/"))
    assert [fs.cat_file(n) for n in names] == [dataset[1][n[len(base) + 1:]] for n in names]


def test_listing(shoalfs_mod, node, dataset, nginx, kind):
    if kind == "http":
        pytest.skip("plain HTTP has no listing")
    fs = make_fs(shoalfs_mod, kind, node)
    base = base_of(kind, dataset, nginx)
    files = dataset[1]
    # info of a directory nobody listed: its first-byte READ finds no object (on S3 a GET 404),
    # and the STAT after it must still find the prefix (the node's negative cache says "no
    # object", not "nothing there")
    fresh = make_fs(shoalfs_mod, kind, node)
    assert fresh.info(f"{base}/sub/deep")["type"] == "directory"
    assert fresh.info(f"{base}/sub/deep")["type"] == "directory"
    top = sorted({f"{base}/{r.split('/')[0]}" for r in files})
    assert fs.ls(base, detail=False) == top
    detail = {e["name"]: e for e in fs.ls(base)}
    assert detail[f"{base}/sub"]["type"] == "directory"
    assert detail[f"{base}/big.bin"]["size"] == len(files["big.bin"])
    assert fs.find(base) == sorted(f"{base}/{r}" for r in files)
    assert fs.glob(f"{base}/sub/*.bin") == [f"{base}/sub/a.bin", f"{base}/sub/b.bin"]
    assert fs.glob(f"{base}/**/*.txt") == [f"{base}/sub/deep/d.txt"]
    assert fs.isdir(f"{base}/sub") and not fs.isfile(f"{base}/sub")
    assert fs.isfile(f"{base}/one.bin") and fs.exists(f"{base}/one.bin")
    assert not fs.exists(f"{base}/no-such-file")
    with pytest.raises(FileNotFoundError):
        fs.info(f"{base}/no-such-file")
    with pytest.raises(FileNotFoundError):
        fs.cat_file(f"{base}/no-such-file")


def origin_requests(kind, nginx, moto_info, tag):
    if kind == "http":
        nginx_marker(nginx, tag)
        return count_lines(nginx["access_log"], " /data/")
    moto_marker(moto_info, tag)
    return moto_requests(moto_info)


@pytest.mark.parametrize("kind_", ["http", "s3"])
def test_second_read_makes_no_origin_request(shoalfs_mod, node, dataset, nginx, origins, request,
                                             kind_):
    if kind_ not in origins:
        pytest.skip("no s3 origin (moto_server missing)")
    moto_info = request.getfixturevalue("moto") if kind_ == "s3" else None
    fs = make_fs(shoalfs_mod, kind_, node)
    base = base_of(kind_, dataset, nginx)
    files = dataset[1]

    def read_all():
        for rel, data in sorted(files.items()):
            assert sha(fs.cat_file(f"{base}/{rel}")) == sha(data)
        with fs.open(f"{base}/big.bin") as f:
            f.seek(PAGE_SIZE * 5 + 1)
            assert f.read(RANGE) == files["big.bin"][PAGE_SIZE * 5 + 1:][:RANGE]

    read_all()
    before = origin_requests(kind_, nginx, moto_info, f"{kind_}-before")
    assert before > 0
    read_all()
    after = origin_requests(kind_, nginx, moto_info, f"{kind_}-after")
    assert after == before, f"{after - before} new requests to the {kind_} origin"


@pytest.fixture(scope="module")
def ttl_node(workdir, origins, nginx):
    """A node with --metadata-ttl 1 over a folder whose file the tests change."""
    d = os.path.join(workdir, "changing")
    os.makedirs(d, exist_ok=True)
    mounts = [f"file://{d}/", f"{nginx['url']}/changing/"]
    if "s3" in origins:
        mounts.append(f"s3://{BUCKET}/changing/")
    n = Node(workdir, "ttl", mounts, ttl=1, env=origins["env"])
    try:
        yield n, d
    finally:
        n.stop()


def test_changed_object_old_until_ttl_then_new(shoalfs_mod, ttl_node, nginx, kind, request):
    node_, d = ttl_node
    rng = random.Random(5)
    size = RANGE * 2 + 1000
    old, new = rng.randbytes(size), rng.randbytes(size)
    rel = f"{kind}.bin"
    local = os.path.join(d, rel)

    def publish(data, mtime):
        tmp = local + ".tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        os.utime(tmp, (mtime, mtime))  # same size: the version differs by mtime/ETag only
        os.replace(tmp, local)
        if kind == "s3":
            moto_put(request.getfixturevalue("moto"), f"changing/{rel}", local)

    publish(old, time.time() - 100)
    fs = make_fs(shoalfs_mod, kind, node_, metadata_ttl_ms=200)
    path = {"file": f"{d}/{rel}", "http": f"127.0.0.1:{nginx['port']}/changing/{rel}",
            "s3": f"{BUCKET}/changing/{rel}"}[kind]
    cached_at = time.monotonic()  # the node caches the metadata no earlier than this
    assert fs.cat_file(path) == old
    pinned = fs.open(path)
    assert pinned.read(PAGE_SIZE) == old[:PAGE_SIZE]

    publish(new, time.time())
    changed_at = time.monotonic()
    # Cached metadata and pages: still the old version, while the node's 1 s TTL runs. The s3
    # upload (boto3 in another interpreter) can itself outlast the TTL on a loaded machine; only
    # a read that surely falls inside the TTL can be held to the old version.
    if time.monotonic() < cached_at + 0.8:
        assert fs.cat_file(path) == old
    seen_new = None
    deadline = changed_at + 15
    while time.monotonic() < deadline:
        data = fs.cat_file(path)
        assert data in (old, new), "a read mixed two versions"
        if data == new:
            seen_new = time.monotonic() - changed_at
            break
        time.sleep(0.05)
    assert seen_new is not None, "the new version never showed after the 1 s TTL"
    for _ in range(3):
        assert fs.cat_file(path) == new
    # The file opened before the change serves the version it saw at open, or says it changed.
    try:
        rest = pinned.read()
        assert rest == old[PAGE_SIZE:]
    except OSError as e:
        assert "changed" in str(e)
    pinned.close()


def test_outside_mounts_and_traversal_refused(shoalfs_mod, node, dataset, nginx, origins):
    workdir = os.path.dirname(dataset[0])
    secret = b"top secret\n"
    cases = []
    fs_file = make_fs(shoalfs_mod, "file", node)
    cases += [(fs_file, "/etc/passwd", True), (fs_file, f"{workdir}/secret.txt", True),
              (fs_file, f"{dataset[0]}/../secret.txt", False),
              (fs_file, f"{dataset[0]}/sub/../../secret.txt", False),
              (fs_file, f"{dataset[0]}/%2e%2e/secret.txt", False)]
    fs_http = make_fs(shoalfs_mod, "http", node)
    hbase = f"127.0.0.1:{nginx['port']}"
    cases += [(fs_http, f"{hbase}/secret.txt", True),
              (fs_http, f"{hbase}/data/../secret.txt", False),
              (fs_http, f"{hbase}/data/%2e%2e/secret.txt", False),
              (fs_http, f"{hbase}/data/%2E%2E%2Fsecret.txt", False),
              (fs_http, f"{hbase}/data/..%2fsecret.txt", False),
              (fs_http, "127.0.0.1:1/data/big.bin", True)]
    if "s3" in origins:
        fs_s3 = make_fs(shoalfs_mod, "s3", node)
        cases += [(fs_s3, "other-bucket/x", True), (fs_s3, f"{BUCKET}/../other/x", False)]
    for fs, path, strictly_permission in cases:
        for call in (fs.cat_file, fs.info):
            try:
                out = call(path)
            except PermissionError:
                continue
            except FileNotFoundError:
                assert not strictly_permission, f"{path}: expected PermissionError"
                continue
            pytest.fail(f"{path} was served: {out!r}"[:200])
        assert fs.exists(path) is False or secret not in fs.cat_file(path)


def _child_read(args):
    """Runs in a forked worker: reads with the filesystem the parent made before forking."""
    path, start, end = args
    return hashlib.sha256(_FORK_FS.cat_file(path, start, end)).hexdigest(), os.getpid()


_FORK_FS = None


def test_threads_and_forked_children(shoalfs_mod, node, dataset, nginx, kind):
    global _FORK_FS
    fs = make_fs(shoalfs_mod, kind, node)
    base = base_of(kind, dataset, nginx)
    files = {f"{base}/{r}": d for r, d in dataset[1].items() if d}
    rng = random.Random(9)
    jobs = []
    for _ in range(200):
        path = rng.choice(sorted(files))
        size = len(files[path])
        s = rng.randrange(size)
        jobs.append((path, s, min(size, s + rng.choice([1, 5000, PAGE_SIZE + 1, RANGE * 2]))))

    def check(job):
        path, s, e = job
        return fs.cat_file(path, s, e) == files[path][s:e]

    fs.cat_file(f"{base}/one.bin")  # the parent has a live client before forking
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        assert all(pool.map(check, jobs))

    _FORK_FS = fs
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(4) as pool:
        results = pool.map(_child_read, jobs[:80], chunksize=5)
    assert [h for h, _ in results] == [sha(files[p][s:e]) for p, s, e in jobs[:80]]
    assert len({pid for _, pid in results}) > 1
    assert fs.cat_file(f"{base}/sub/a.bin") == dataset[1]["sub/a.bin"]  # parent still fine


def test_node_killed_mid_read_falls_back(shoalfs_mod, workdir, origins, dataset, nginx, kind):
    mounts = [origins[k] for k in ("file", "http", "s3") if k in origins]
    victim = Node(workdir, f"victim-{kind}", mounts, ttl=60, env=origins["env"])
    try:
        fs = make_fs(shoalfs_mod, kind, victim, timeout_ms=1000)
        base = base_of(kind, dataset, nginx)
        data = dataset[1]["big.bin"]
        with fs.open(f"{base}/big.bin") as f:
            first = f.read(RANGE + 7)
            victim.proc.kill()
            victim.proc.popen.wait(5)
            rest = f.read()
        assert first + rest == data
        assert fs.cat_file(f"{base}/sub/b.bin") == dataset[1]["sub/b.bin"]
        assert fs.cat_file(f"{base}/page+1.bin", 10, -10) == dataset[1]["page+1.bin"][10:-10]
    finally:
        victim.stop()


def test_writes_are_read_only(shoalfs_mod, node, dataset):
    fs = make_fs(shoalfs_mod, "file", node)
    path = f"{dataset[0]}/new.bin"
    for call in (lambda: fs.open(path, "wb"), lambda: fs.pipe(path, b"x"),
                 lambda: fs.rm(f"{dataset[0]}/one.bin"), lambda: fs.mkdir(f"{dataset[0]}/d"),
                 lambda: fs.put(__file__, path)):
        with pytest.raises(PermissionError, match="shoal is a read-only cache"):
            call()
    assert not os.path.exists(path)


def test_fsspec_registration_stats_members(shoalfs_mod, node, dataset):
    import fsspec
    fs = fsspec.filesystem("shoal", target_protocol="file", seeds=node.seeds)
    assert isinstance(fs, shoalfs_mod.ShoalFileSystem)
    with fsspec.open(f"shoal://{dataset[0]}/one.bin", target_protocol="file",
                     seeds=node.seeds) as f:
        assert f.read() == dataset[1]["one.bin"]
    members = fs.members()
    assert any(m.get("name") == "main" for m in members["members"]), members
    stats = fs.stats()
    assert isinstance(stats["nodes"], list) and stats["nodes"], stats
