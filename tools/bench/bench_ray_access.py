#!/usr/bin/python3
"""bench_ray_access.py - Ray-style access through shoalfs (issue 10, "Ray's path counts too"):
what `info` of a file should cost when nobody listed it, measured over a slow origin.

Ray Data lists a folder (find(detail=True)), then for every file calls info/isfile, opens it
and reads it. Over plain HTTP there is no listing, so `info` of an unlisted file must ask: today
a STAT, which the node answers with a HEAD at the origin; the alternative is a range-0 READ
(its reply carries the size and version, as a STAT's does) whose bytes are kept for the read
that follows. This measures both, for small files read whole (images) and for Parquet-like
files read from their footer (the last --footer-kb, then --middle-kb from the middle), against
reading the origin directly, one reader, each file's info + isfile + open + reads timed as one.

The origin is tests/support/origin.py (delay --delay-ms, default 20 ms, rate cap --rate-mbps per
connection, counts at /_counts) on a free loopback port; every shoal case runs on a fresh
single shoald (fresh data directory, default page size 1 MiB x 4 pages a range) and a fresh
client. Cases:

  direct GET     http.client, one keep-alive connection, only the GETs (a reader that knows the
                 size): the floor;
  direct HEAD+GET  the same with a HEAD first (what fsspec's HTTP and S3 filesystems do for
                 info before a read);
  (a) info=STAT  shoalfs as it is: info is shoal_stat (a HEAD at the node), then open + reads;
  (b) info=READ0 info is a shoal_pread_stat of the first --keep-kb bytes at offset 0, whose
                 reply gives the size and version; when that was the whole file the read that
                 follows uses those bytes (kept), else it opens and reads as usual (range 0
                 is warm at the node by then);
  (b') READ0, not kept  the same with the bytes dropped: the read that follows asks the node
                 again (one node round trip, no origin request);
  listed         info answered by the client's stat cache, as after find(detail=True): emulated
                 (origin.py cannot list) by an untimed info of every file first, with the origin
                 counts reset after it, so the timed part is what follows a listing.

Prints per-file latency p50/p99 and origin requests and bytes per file, by case. Nothing
asserts. Usage: /usr/bin/python3 tools/bench/bench_ray_access.py [--build build]
[--small 200] [--small-kb 64] [--parquet 8] [--parquet-mb 8] [--footer-kb 64]
[--middle-kb 1024] [--middle-at 0.5] [--keep-kb 256] [--delay-ms 20] [--rate-mbps 0] [--json OUT]
"""
import argparse
import http.client
import json
import os
import shutil
import signal
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
from bench_cold import Cluster, Origin, Procs, pct  # noqa: E402  (sibling benchmark's helpers)


def plan_small(size):
    """Reads of a small file: the whole of it."""
    return [(0, size)]


def plan_parquet(size, footer, middle, at):
    """Reads of a Parquet-like file: its footer, then a column chunk at fraction `at`."""
    mid = int(size * at)
    return [(size - footer, footer), (mid, min(middle, size - mid))]


# ------------------------------------------------------------------------ the cases


def run_direct(port, paths, plans, head):
    conn = http.client.HTTPConnection("127.0.0.1", port)
    conn.connect()
    times, total = [], 0
    for path, plan in zip(paths, plans):
        t0 = time.perf_counter()
        if head:
            conn.request("HEAD", path)
            r = conn.getresponse()
            r.read()
            int(r.getheader("Content-Length"))
        for off, length in plan:
            conn.request("GET", path, headers={"Range": f"bytes={off}-{off + length - 1}"})
            r = conn.getresponse()
            total += len(r.read())
        times.append(time.perf_counter() - t0)
    conn.close()
    return times, total


def info_read0(fs, path, keep):
    """`info` as a range-0 READ: (info dict, the bytes read, whether they are the whole file)."""
    from shoalfs import core
    name = fs._name(path)
    uri = fs._uri(name)
    data, address = core._new_bytes(keep)
    got, st = fs._pread_into(uri, address, keep, 0)
    data = data if got == keep else data[:got]
    return fs._info_from_stat(name, st), data, int(st.size) <= keep


def run_shoal(fs, names, plans, mode, keep):
    times, total = [], 0
    for name, plan in zip(names, plans):
        t0 = time.perf_counter()
        kept = None
        if mode in ("read0", "read0-drop"):
            info, data, whole = info_read0(fs, name, keep)
            if mode == "read0" and whole:
                kept = data
        else:
            info = fs.info(name)
        assert info["type"] == "file" and fs.isfile(name)  # Ray asks both
        if kept is not None:  # the kept bytes are the file: the reads need no request
            for off, length in plan:
                total += len(kept[off:off + length])
        else:
            with fs.open(name, "rb") as f:
                for off, length in plan:
                    f.seek(off)
                    total += len(f.read(length))
        times.append(time.perf_counter() - t0)
    return times, total


# ------------------------------------------------------------------------ main


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(REPO, "build"))
    ap.add_argument("--small", type=int, default=200)
    ap.add_argument("--small-kb", type=float, default=64)
    ap.add_argument("--parquet", type=int, default=8)
    ap.add_argument("--parquet-mb", type=float, default=8)
    ap.add_argument("--footer-kb", type=int, default=64)
    ap.add_argument("--middle-kb", type=int, default=1024)
    ap.add_argument("--middle-at", type=float, default=0.5,
                    help="where the middle read starts, a fraction of the size [0.5]")
    ap.add_argument("--keep-kb", type=int, default=256)
    ap.add_argument("--delay-ms", type=float, default=20.0)
    ap.add_argument("--rate-mbps", type=float, default=0.0)
    ap.add_argument("--json")
    args = ap.parse_args()

    build = os.path.abspath(args.build)
    need = {"shoald": os.path.join(build, "node", "shoald"),
            "libshoal": os.path.join(build, "client", "libshoal.so")}
    missing = [f"{k} ({v})" for k, v in need.items() if not os.path.exists(v)]
    if missing:
        sys.exit("bench_ray_access: missing " + ", ".join(missing) + " (build first)")
    os.environ["SHOAL_LIBRARY"] = need["libshoal"]
    sys.path.insert(0, os.path.join(REPO, "client", "python"))
    import shoalfs

    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGHUP, _raise_interrupt)
    tmp = tempfile.mkdtemp(prefix="shoal-bench-ray-")
    procs = Procs()
    rows = []
    try:
        data = os.path.join(tmp, "data")
        sets = {}
        for kind, count, size in (("small", args.small, int(args.small_kb * 1024)),
                                  ("parquet", args.parquet, int(args.parquet_mb * 1 << 20))):
            os.makedirs(os.path.join(data, kind))
            names = [f"{kind}/f{i:05d}.bin" for i in range(count)]
            for n in names:
                with open(os.path.join(data, n), "wb") as f:
                    f.write(os.urandom(size))
            plans = [plan_small(size) if kind == "small" else
                     plan_parquet(size, args.footer_kb << 10, args.middle_kb << 10,
                                  args.middle_at)] * count
            sets[kind] = (names, plans, size)
        origin = Origin(procs, tmp, data, args.delay_ms, args.rate_mbps)
        host = f"127.0.0.1:{origin.port}"
        print(f"origin.py :{origin.port}, delay {args.delay_ms:g} ms, rate cap "
              f"{args.rate_mbps:g} MB/s; small {args.small} x {args.small_kb:g} KiB; parquet "
              f"{args.parquet} x {args.parquet_mb:g} MiB (footer {args.footer_kb} KiB, middle "
              f"{args.middle_kb} KiB at {args.middle_at:g}); keep {args.keep_kb} KiB; 1 node, 1 reader; load "
              f"{os.getloadavg()[0]:.1f}", flush=True)
        cases = [("direct GET", "direct", False), ("direct HEAD+GET", "direct", True),
                 ("(a) info=STAT", "stat", None), ("(b) info=READ0 kept", "read0", None),
                 ("(b') READ0 not kept", "read0-drop", None), ("listed (find first)",
                                                               "listed", None)]
        print(f"{'files':8} {'case':22} {'p50 ms':>8} {'p99 ms':>8} {'GET/f':>6} "
              f"{'HEAD/f':>6} {'KB/f':>8} {'x direct':>9}")
        for kind, (names, plans, size) in sets.items():
            base_p50 = None
            expect = sum(length for plan in plans for _, length in plan)
            for k, (label, mode, head) in enumerate(cases):
                cluster, fs = None, None
                if mode == "direct":
                    origin.reset()
                    times, total = run_direct(origin.port, ["/" + n for n in names], plans, head)
                else:
                    cluster = Cluster(procs, need, tmp, f"{kind}{k}", 1, origin.mount,
                                      capacity=1 << 30)
                    fs = shoalfs.ShoalFileSystem(target_protocol="http", seeds=cluster.seeds,
                                                 skip_instance_cache=True,
                                                 metadata_ttl_ms=600000)
                    fs.members()
                    paths = [f"{host}/{n}" for n in names]
                    if mode == "listed":
                        for p in paths:
                            fs.info(p)
                    origin.reset()
                    times, total = run_shoal(fs, paths, plans,
                                             "stat" if mode == "listed" else mode,
                                             args.keep_kb << 10)
                counts = origin.counts()
                if fs is not None:
                    fs._client.close()
                if cluster is not None:
                    cluster.stop()
                if total != expect:
                    raise RuntimeError(f"{kind} {label}: read {total} bytes, expected {expect}")
                n = len(names)
                p50, p99 = pct(times, 0.5) * 1e3, pct(times, 0.99) * 1e3
                if base_p50 is None:
                    base_p50 = p50
                row = {"files": kind, "case": label, "p50_ms": p50, "p99_ms": p99,
                       "get_per_file": counts["GET"] / n, "head_per_file": counts["HEAD"] / n,
                       "origin_kb_per_file": counts["bytes"] / n / 1024,
                       "vs_direct_get": p50 / base_p50}
                rows.append(row)
                print(f"{kind:8} {label:22} {p50:8.2f} {p99:8.2f} {row['get_per_file']:6.2f} "
                      f"{row['head_per_file']:6.2f} {row['origin_kb_per_file']:8.0f} "
                      f"{row['vs_direct_get']:8.2f}x", flush=True)
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"args": vars(args), "rows": rows}, f, indent=1)
    finally:
        procs.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
