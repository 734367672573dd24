#!/usr/bin/python3
"""bench_local.py - warm reads on one host (issue 11): shoalfs against a local copy and against
fsspec's own caches, the same data and the same reads side by side in one run.

Sides (every one reads warm data; an untimed pass through each fills its cache first, and its
bytes are checked against the local copy):

  local        the dataset's own files (the directory nginx serves), in the page cache:
               open(path, "rb", buffering=0).readinto / open().read(4 MiB) / open().read();
  simplecache  fsspec `simplecache` over `http` (HTTPFileSystem, aiohttp) against nginx on
               loopback: whole files copied into a local cache directory on first access;
  blockcache   fsspec `blockcache` over the same origin: a sparse local file per remote file,
               5 MiB blocks; once every block is there, an open is a plain local open;
  shoal Nn sc  shoalfs (ShoalFileSystem, target_protocol "http") against N shoald nodes on
               loopback (--mount the same origin, --metadata-ttl 3600 so no stat is
               revalidated mid-run, as fsspec's caches never do by default), short-circuit
               on (SHOAL_SHORT_CIRCUIT unset) or off (SHOAL_SHORT_CIRCUIT=0, set in the
               reader before its client is made); N = 1 and 3. With a shoald that has no
               short-circuit, "on" reads like "off". Where shoald has --local-socket, sc-on
               readers also get SHOAL_LOCAL naming their cluster's nodes' default sockets
               (<data-dir>/shoal.sock), unless --no-shoal-local leaves that to the view;
  shoal 1n tK  one node started with --threads K (hit workers), for the hit-worker curve
               (only where `shoald --help` lists --threads; otherwise the table says n/a).

Workloads, each run by R forked reader processes (DataLoader workers; a barrier starts them
together, the wall time is first start to last end, setup such as imports, clients and
buffers is outside it):

  seq readinto   one 64 MiB file read whole with readinto into a preallocated bytearray,
                 --seq-reps times (3) per reader and run, as are the next two;
  seq read(4M)   the same file with a read(4 MiB) loop (1 reader);
  seq cat_file   the same file with cat_file (local: open().read()) (1 reader);
  epoch          120 files of 64 KiB, reader r taking files r, r + R, ... whole with cat_file
                 (local: open().read()), --epoch-reps epochs (10) back to back per run;
                 MB/s, per-file p50;
  file 64K p50   the epoch's per-file latency p50 at 1 reader;
  random 64K     --random-reads seek + read(64 KiB) per reader at 64 KiB-aligned offsets of
                 the 64 MiB file (seeded), one open file per reader; reads/s, p50.

Rounds (--rounds, default 5): every cell (workload, readers) runs each side once per round,
the side that goes first rotating; a value is the median of the rounds, a ratio the median of
the per-round ratios (shared machines are noisy; runs next to each other see the same noise).
The table gives ratios against the local copy, simplecache and blockcache of the same run
and, for shoal sides, the issue's targets with met/missed; `origin` counts the nginx
requests during the timed runs (0 means the side really read warm data); `sc %` the share of
the shoal readers' bytes that their client counters (shoal_client_counters_json:
bytes_short_circuit over it + bytes_zmq + bytes_ufs) say went short-circuit ("-": a libshoal
without those counters). --plot writes a PNG.

Usage: /usr/bin/python3 tools/bench/bench_local.py [--build build] [--quick] [--plot PNG]
       [--json OUT] [--rounds 5] [--readers 1,4,16] [--nodes 1,3] [--hit-workers 1,2,4]
       [--big-mb 64] [--files 120] [--file-kb 64] [--random-reads 256] [--seq-reps 3]
       [--epoch-reps 10] [--no-shoal-local]
       or: ... --from-json OUT [--plot PNG]: the table (and the plot) of a saved --json run
--quick: a smoke run (16 MiB, 24 files, readers 1,4, 1 round, hit workers 1,4). Every process
it starts is stopped and the temporary directory removed on any exit (errors, Ctrl-C, SIGTERM).
"""
import argparse
import hashlib
import json
import os
import queue
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_cold  # noqa: E402 - Procs, Cluster, free_port, wait_port, pct
from bench_cold import Cluster, Procs, free_port, pct, wait_port  # noqa: E402

REPO = bench_cold.REPO
MIB = 1 << 20
BIG = "big/seq.bin"
SEQ_READINTO, SEQ_READ4M, SEQ_CAT = "seq readinto", "seq read(4M)", "seq cat_file"
EPOCH, FILE_P50, RANDOM = "epoch", "file 64K p50", "random 64K"
UNITS = {SEQ_READINTO: "GiB/s", SEQ_READ4M: "GiB/s", SEQ_CAT: "GiB/s", EPOCH: "MB/s",
         FILE_P50: "us", RANDOM: "reads/s"}
LOCAL, SIMPLE, BLOCK = "local", "simplecache", "blockcache"
# client counters naming the path each byte took (client/README.md, "Counters")
PATH_COUNTERS = ("bytes_short_circuit", "bytes_zmq", "bytes_ufs")
# Every node: stats cached for the whole run. fsspec's caches never revalidate by default
# (no check_files, no expiry_time); with shoald's default of 60 s, a run that passes the
# minute makes one HEAD per file to nginx in the middle of a timed cell.
NODE_ARGS = ["--metadata-ttl", "3600"]


# ------------------------------------------------------------------------ the origin


class Nginx:
    """nginx on a free loopback port serving root; requests() counts its access log lines."""

    def __init__(self, procs, tmp, root):
        self.port = free_port()
        nd = os.path.join(tmp, "nginx")
        os.makedirs(nd)
        self.log = os.path.join(nd, "access.log")
        user = "user root; " if os.geteuid() == 0 else ""
        with open(os.path.join(nd, "nginx.conf"), "w") as f:
            f.write(f"{user}worker_processes 2; pid {nd}/nginx.pid;\n"
                    f"error_log {nd}/error.log warn; events {{ worker_connections 512; }}\n"
                    f"http {{ access_log {self.log}; sendfile on;\n"
                    f"  client_body_temp_path {nd}/b; proxy_temp_path {nd}/p;\n"
                    f"  fastcgi_temp_path {nd}/f; uwsgi_temp_path {nd}/u; scgi_temp_path {nd}/s;\n"
                    f"  default_type application/octet-stream;\n"
                    f"  server {{ listen 127.0.0.1:{self.port}; root {root}; }} }}\n")
        self.proc = procs.start(["/usr/sbin/nginx", "-p", nd, "-c", f"{nd}/nginx.conf", "-e",
                                 f"{nd}/error.log", "-g", "daemon off;"], f"{nd}/stdout.log")
        wait_port(self.port, "nginx", self.proc)
        self.base = f"http://127.0.0.1:{self.port}/"

    def requests(self):
        try:
            with open(self.log, "rb") as f:
                return f.read().count(b"\n")
        except FileNotFoundError:
            return 0


# ------------------------------------------------------------------------ sides


def side_label(side):
    return side["name"]


class LocalReader:
    def __init__(self, side):
        self.root = side["root"]

    def open_raw(self, rel):
        return open(os.path.join(self.root, rel), "rb", buffering=0)

    def open(self, rel):
        return open(os.path.join(self.root, rel), "rb")

    def cat(self, rel):
        with open(os.path.join(self.root, rel), "rb") as f:
            return f.read()


class FsReader:
    """fsspec simplecache/blockcache over http, or shoalfs: open and cat_file by URL."""

    def __init__(self, side):
        self.base = side["base"]
        if side["kind"] == "fsspec":
            import fsspec
            self.fs = fsspec.filesystem(side["proto"], target_protocol="http",
                                        cache_storage=side["cache"], skip_instance_cache=True)
        else:
            os.environ.pop("SHOAL_LOCAL", None)
            if side["sc"]:
                os.environ.pop("SHOAL_SHORT_CIRCUIT", None)
                if side.get("shoal_local"):
                    os.environ["SHOAL_LOCAL"] = side["shoal_local"]
            else:
                os.environ["SHOAL_SHORT_CIRCUIT"] = "0"
            import shoalfs
            self.fs = shoalfs.ShoalFileSystem(target_protocol="http", seeds=side["seeds"],
                                              skip_instance_cache=True)
            self.fs.members()  # this process's client and view, outside the timed part

    def open_raw(self, rel):
        return self.fs.open(self.base + rel, "rb")

    def counters(self):
        """shoalfs: this reader's client counters (shoal_client_counters_json), or None."""
        if not hasattr(self.fs, "_client"):
            return None
        import ctypes
        from shoalfs import _lib
        fn = getattr(self.fs._lib, "shoal_client_counters_json", None)
        if fn is None:
            return None
        fn.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p)]
        fn.restype = ctypes.c_int
        ptr = ctypes.c_void_p()
        if fn(self.fs._client.handle, ctypes.byref(ptr)) != 0:
            return None
        return _lib.take_json(self.fs._lib, ptr)

    open = open_raw

    def cat(self, rel):
        return self.fs.cat_file(self.base + rel)


def make_reader(side):
    return LocalReader(side) if side["kind"] == "local" else FsReader(side)


# ------------------------------------------------------------------------ workloads


def job_for(workload, rd, rank, readers, spec):
    """Setup (untimed) for one reader; returns a function that runs the timed part and
    returns (bytes, per-operation seconds, digests or None)."""
    big_size = spec["big_size"]
    if workload in (SEQ_READINTO, "warm"):
        buf = bytearray(big_size)
        for i in range(0, big_size, 4096):  # fault the pages in before the clock starts
            buf[i] = 1
        view = memoryview(buf)

    def readinto_once():
        with rd.open_raw(BIG) as f:
            n = 0
            while n < big_size:
                k = f.readinto(view[n:])
                if not k:
                    break
                n += k
        return n

    def read4m_once():
        n = 0
        with rd.open(BIG) as f:
            while True:
                chunk = f.read(4 * MIB)
                if not chunk:
                    break
                n += len(chunk)
        return n

    def repeated(once, reps):
        def run():
            n, times = 0, []
            for _ in range(reps):
                t0 = time.perf_counter()
                n += once()
                times.append(time.perf_counter() - t0)
            return n, times, None
        return run

    seq_reps = spec["seq_reps"]
    seq_readinto = repeated(readinto_once, seq_reps)
    seq_read4m = repeated(read4m_once, seq_reps)
    seq_cat = repeated(lambda: len(rd.cat(BIG)), seq_reps)

    def epoch():
        n, times = 0, []
        for _ in range(spec["epoch_reps"]):
            for rel in spec["names"][rank::readers]:
                t0 = time.perf_counter()
                n += len(rd.cat(rel))
                times.append(time.perf_counter() - t0)
        return n, times, None

    if workload == RANDOM:
        rng = random.Random(11000 + rank)
        slots = big_size // (64 * 1024)
        offsets = [rng.randrange(slots) * 64 * 1024 for _ in range(spec["random_reads"])]
        rf = rd.open(BIG)
        rf.read(1)  # the first read of a shoal file is its stat: outside the clock

        def rand():
            n, times = 0, []
            for off in offsets:
                t0 = time.perf_counter()
                rf.seek(off)
                n += len(rf.read(64 * 1024))
                times.append(time.perf_counter() - t0)
            rf.close()
            return n, times, None
        return rand

    def warm():
        # untimed fill of the side's cache; digests checked against the local copy
        digests = {}
        n = readinto_once()
        digests[BIG] = hashlib.blake2b(view[:n]).hexdigest()
        for rel in spec["names"]:
            digests[rel] = hashlib.blake2b(rd.cat(rel)).hexdigest()
        return n, [], digests

    return {SEQ_READINTO: seq_readinto, SEQ_READ4M: seq_read4m, SEQ_CAT: seq_cat,
            EPOCH: epoch, "warm": warm}[workload]


def _child(side, workload, rank, readers, spec, barrier, results):
    try:
        rd = make_reader(side)
        job = job_for(workload, rd, rank, readers, spec)
        barrier.wait()
        start = time.perf_counter()
        n, times, digests = job()
        end = time.perf_counter()
        counters = rd.counters() if hasattr(rd, "counters") else None
        results.put((n, start, end, times, digests, None, counters))
    except BaseException as e:  # noqa: BLE001 - reported to the parent, which raises
        barrier.abort()  # the others stop waiting for this one
        results.put((0, 0.0, 0.0, [], None, f"{type(e).__name__}: {e}", None))


def expected_bytes(workload, readers, spec):
    if workload in (SEQ_READINTO, SEQ_READ4M, SEQ_CAT):
        return readers * spec["big_size"] * spec["seq_reps"]
    if workload == EPOCH:
        return len(spec["names"]) * spec["file_size"] * spec["epoch_reps"]
    if workload == RANDOM:
        return readers * spec["random_reads"] * 64 * 1024
    return None


def run_cell(side, workload, readers, spec, nginx):
    """One timed run: `readers` forked readers. Returns the cell's numbers."""
    import multiprocessing
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(readers)
    results = ctx.Queue()
    req0 = nginx.requests()
    procs = [ctx.Process(target=_child, args=(side, workload, r, readers, spec, barrier,
                                              results), daemon=True) for r in range(readers)]
    for p in procs:
        p.start()
    what = f"{side_label(side)}, {workload}, {readers} reader(s)"
    got = []
    deadline = time.monotonic() + 600
    while len(got) < len(procs):
        try:
            got.append(results.get(timeout=1))
        except queue.Empty:
            dead = [p.exitcode for p in procs if p.exitcode not in (None, 0)]
            if dead:
                raise RuntimeError(f"{what}: a reader died (exit code {dead[0]})") from None
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what}: no answer in 600 s") from None
            continue
        if got[-1][5]:
            raise RuntimeError(f"{what}: {got[-1][5]}")
    for p in procs:
        p.join()
    total = sum(g[0] for g in got)
    want = expected_bytes(workload, readers, spec)
    if want is not None and total != want:
        raise RuntimeError(f"{side_label(side)}, {workload}: read {total} bytes, expected {want}")
    seconds = max(g[2] for g in got) - min(g[1] for g in got)
    times = [t for g in got for t in g[3]]
    if workload in (SEQ_READINTO, SEQ_READ4M, SEQ_CAT):
        value = total / (1 << 30) / seconds
    elif workload == EPOCH:
        value = total / 1e6 / seconds
    elif workload == RANDOM:
        value = len(times) / seconds
    else:
        value = 0.0
    paths = {}
    for g in got:
        for key in PATH_COUNTERS:
            if g[6] is not None and key in g[6]:
                paths[key] = paths.get(key, 0) + int(g[6][key])
    return {"value": value, "seconds": seconds, "bytes": total, "paths": paths,
            "p50_us": 1e6 * pct(times, 0.5) if times else 0.0,
            "p99_us": 1e6 * pct(times, 0.99) if times else 0.0,
            "origin_requests": nginx.requests() - req0, "digests": got[0][4]}


# ------------------------------------------------------------------------ targets


def targets_for(workload, readers, side, ratios, max_readers, cores):
    """(text, ok) per issue target that applies to this shoal row."""
    if side["kind"] != "shoal":
        return []
    out = []
    loc = ratios.get(LOCAL)
    if workload == SEQ_READINTO and readers == 1 and loc is not None:
        out.append((">=0.8 x local", loc >= 0.8))
    if workload in (SEQ_READ4M, SEQ_CAT) and readers == 1 and loc is not None:
        out.append((">=0.7 x local", loc >= 0.7))
    if workload == FILE_P50 and loc is not None:
        out.append(("time <=2 x local", loc <= 2.0))
    if workload == EPOCH:
        if ratios.get(SIMPLE) is not None:
            out.append((">=0.8 x simple", ratios[SIMPLE] >= 0.8))
        if ratios.get(BLOCK) is not None:
            out.append((">=1.0 x block", ratios[BLOCK] >= 1.0))
    if workload == SEQ_READINTO and readers == 16 and loc is not None:
        out.append((f">=0.8 x local (many-core; {cores} cores here)", loc >= 0.8))
    return out


def fmt_targets(tg):
    return "; ".join(f"{t}: {'met' if ok else 'missed'}" for t, ok in tg)


# ------------------------------------------------------------------------ main


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def int_list(text):
    return [int(x) for x in text.split(",") if x.strip()]


def node_help(shoald):
    out = subprocess.run([shoald, "--help"], capture_output=True, text=True, timeout=30)
    return out.stdout + out.stderr


def build_cells(args, sides, hit_sides):
    """(workload, readers, [sides]) in run order."""
    cells = []
    for r in args.readers:
        cells.append((SEQ_READINTO, r, sides + hit_sides))
    cells.append((SEQ_READ4M, 1, sides))
    cells.append((SEQ_CAT, 1, sides))
    for r in args.readers:
        cells.append((EPOCH, r, sides + hit_sides))
    for r in args.readers:
        cells.append((RANDOM, r, sides + hit_sides))
    return cells


def sc_share(path_counts):
    """Short-circuit bytes / all bytes the clients counted, or None without the counters."""
    total = {k: 0 for k in PATH_COUNTERS}
    seen = False
    for paths in path_counts:
        for k, v in paths.items():
            total[k] += v
            seen = seen or k == "bytes_short_circuit"
    moved = sum(total.values())
    return total["bytes_short_circuit"] / moved if seen and moved else None


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(REPO, "build"))
    ap.add_argument("--quick", action="store_true", help="smoke run, about a minute")
    ap.add_argument("--plot", help="write a PNG plot here (matplotlib)")
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--rounds", type=int, default=None, help="rounds per cell (default 5)")
    ap.add_argument("--readers", type=int_list, default=None, help="default 1,4,16")
    ap.add_argument("--nodes", type=int_list, default=None, help="cluster sizes (default 1,3)")
    ap.add_argument("--hit-workers", type=int_list, default=None,
                    help="shoald --threads values for the 1-node curve (default 1,2,4)")
    ap.add_argument("--big-mb", type=int, default=None, help="sequential file, MiB (64)")
    ap.add_argument("--files", type=int, default=None, help="epoch files (120)")
    ap.add_argument("--file-kb", type=int, default=64, help="epoch file size, KiB (64)")
    ap.add_argument("--random-reads", type=int, default=None, help="per reader (256)")
    ap.add_argument("--seq-reps", type=int, default=3,
                    help="sequential reads of the file per reader and run (3)")
    ap.add_argument("--epoch-reps", type=int, default=10,
                    help="epochs per run, back to back (10)")
    ap.add_argument("--no-shoal-local", action="store_true",
                    help="do not set SHOAL_LOCAL for sc-on readers (leave it to the view)")
    ap.add_argument("--from-json", help="print the table (and --plot) of an earlier --json run")
    args = ap.parse_args()
    if args.from_json:
        with open(args.from_json) as f:
            saved = json.load(f)
        print_table(saved["rows"])
        if args.plot:
            plot(saved["rows"], argparse.Namespace(**saved["args"]), args.plot,
                 saved["hit_workers_option"])
        return
    q = args.quick
    args.rounds = args.rounds or (1 if q else 5)
    args.readers = args.readers or ([1, 4] if q else [1, 4, 16])
    args.nodes = args.nodes or [1, 3]
    args.hit_workers = args.hit_workers or ([1, 4] if q else [1, 2, 4])
    args.big_mb = args.big_mb or (16 if q else 64)
    args.files = args.files or (24 if q else 120)
    args.random_reads = args.random_reads or (64 if q else 256)
    if 1 not in args.readers:
        args.readers = [1] + args.readers

    build = os.path.abspath(args.build)
    need = {"shoald": os.path.join(build, "node", "shoald"),
            "libshoal": os.path.join(build, "client", "libshoal.so")}
    missing = [f"{k} ({v})" for k, v in need.items() if not os.path.exists(v)]
    if missing:
        sys.exit("bench_local: missing " + ", ".join(missing) + " (build with cmake first)")
    os.environ["SHOAL_LIBRARY"] = need["libshoal"]
    os.environ.pop("SHOAL_SHORT_CIRCUIT", None)
    os.environ.pop("SHOAL_LOCAL", None)
    sys.path.insert(0, os.path.join(REPO, "client", "python"))
    try:
        import aiohttp  # noqa: F401 - fsspec's http needs both
        import requests  # noqa: F401
        import fsspec  # noqa: F401
    except ImportError as e:
        sys.exit(f"bench_local: {e} (tools/install-deps.sh installs python3-aiohttp and "
                 "python3-requests)")
    import shoalfs

    help_text = node_help(need["shoald"])
    has_threads = "--threads" in help_text
    m = re.search(r"--threads N\s.*?\[([^\]]*)\]", help_text)
    threads_default = m.group(1) if m else "?"
    has_local_socket = "--local-socket" in help_text
    if not has_threads:
        args.hit_workers = []

    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGHUP, _raise_interrupt)
    tmp = tempfile.mkdtemp(prefix="shoal-bench-local-")
    procs = Procs()
    t_start = time.monotonic()
    results = {"args": dict(vars(args)), "cells": []}
    try:
        data = os.path.join(tmp, "data")
        os.makedirs(os.path.join(data, "big"))
        os.makedirs(os.path.join(data, "small"))
        big_size = args.big_mb * MIB
        file_size = args.file_kb * 1024
        with open(os.path.join(data, BIG), "wb") as f:
            for _ in range(args.big_mb):
                f.write(os.urandom(MIB))
        names = [f"small/f{i:05d}.bin" for i in range(args.files)]
        for name in names:
            with open(os.path.join(data, name), "wb") as f:
                f.write(os.urandom(file_size))
        spec = {"big_size": big_size, "file_size": file_size, "names": names,
                "random_reads": args.random_reads, "seq_reps": args.seq_reps,
                "epoch_reps": args.epoch_reps}
        local_digests = {rel: hashlib.blake2b(open(os.path.join(data, rel), "rb").read())
                         .hexdigest() for rel in [BIG] + names}
        nginx = Nginx(procs, tmp, data)
        capacity = max(1 << 30, 4 * (big_size + file_size * len(names)))

        sides = [{"name": LOCAL, "kind": "local", "root": data},
                 {"name": SIMPLE, "kind": "fsspec", "proto": "simplecache", "base": nginx.base,
                  "cache": os.path.join(tmp, "simplecache")},
                 {"name": BLOCK, "kind": "fsspec", "proto": "blockcache", "base": nginx.base,
                  "cache": os.path.join(tmp, "blockcache")}]
        hit_sides = []
        clusters = {}

        def shoal_local(tag, n):
            # SHOAL_LOCAL for sc-on readers: the nodes' default sockets, <data-dir>/shoal.sock
            # (Cluster names node k "{tag}-n{k}", data dir tmp/name); None without the option
            if not has_local_socket or args.no_shoal_local:
                return None
            return ",".join(os.path.join(tmp, f"{tag}-n{k}", "shoal.sock") for k in range(n))
        for n in args.nodes:
            c = Cluster(procs, need, tmp, f"n{n}", n, nginx.base, capacity,
                        extra_args=NODE_ARGS)
            clusters[f"{n}n"] = c
            for sc in (False, True):
                sides.append({"name": f"shoal {n}n sc {'on' if sc else 'off'}", "kind": "shoal",
                              "sc": sc, "seeds": c.seeds, "base": nginx.base, "nodes": n,
                              "shoal_local": shoal_local(f"n{n}", n)})
        for t in args.hit_workers:  # every K explicit: the default moved (4, then the cores)
            c = Cluster(procs, need, tmp, f"t{t}", 1, nginx.base, capacity,
                        extra_args=NODE_ARGS + ["--threads", str(t)])
            clusters[f"t{t}"] = c
            for sc in (False, True):
                hit_sides.append({"name": f"shoal 1n t{t} sc {'on' if sc else 'off'}",
                                  "kind": "shoal", "sc": sc, "seeds": c.seeds,
                                  "base": nginx.base, "nodes": 1, "threads": t,
                                  "shoal_local": shoal_local(f"t{t}", 1)})
        print(f"dataset: {args.big_mb} MiB file + {args.files} files x {args.file_kb} KiB; "
              f"nginx on :{nginx.port}; clusters {args.nodes} node(s); readers {args.readers}; "
              f"rounds {args.rounds}; host CPUs {os.cpu_count()}, load "
              f"{os.getloadavg()[0]:.1f}", flush=True)
        if has_local_socket:
            socks = [p for side in sides + hit_sides if side.get("shoal_local")
                     for p in side["shoal_local"].split(",")]
            there = sum(os.path.exists(p) for p in set(socks))
            how = (f"sc-on readers get SHOAL_LOCAL = their cluster's default sockets "
                   f"(<data-dir>/shoal.sock; {there} of {len(set(socks))} exist)"
                   if socks else "SHOAL_LOCAL not set (--no-shoal-local): the view names them")
            print(f"short-circuit: shoald has --local-socket; {how}")
        else:
            print("short-circuit: shoald --help has no --local-socket: sc on reads like sc off "
                  "(the bench only sets SHOAL_SHORT_CIRCUIT=0 for off)")
        print("hit workers: " + (f"shoald --threads {args.hit_workers} (1 node each; shoald's "
                                 f"default: {threads_default})"
                                 if has_threads else "n/a: shoald --help lists no hit-worker "
                                 "option"), flush=True)

        # untimed: fill every side's cache, check its bytes
        for side in sides + hit_sides:
            cell = run_cell(side, "warm", 1, spec, nginx)
            bad = [rel for rel, d in cell["digests"].items() if local_digests[rel] != d]
            if bad:
                raise RuntimeError(f"{side_label(side)}: wrong bytes for {bad[:3]}")
        for c in clusters.values():
            fs = shoalfs.ShoalFileSystem(target_protocol="http", seeds=c.seeds,
                                         skip_instance_cache=True)
            c.settle(fs)
            fs._client.close()
        print(f"warm: every side filled and checked ({time.monotonic() - t_start:.0f} s)",
              flush=True)

        rows = []  # (workload, readers, side, value, p50, ratios, origin requests)
        for workload, readers, cell_sides in build_cells(args, sides, hit_sides):
            per_round = []
            for rnd in range(args.rounds):
                k = rnd % len(cell_sides)
                order = cell_sides[k:] + cell_sides[:k]
                per_round.append({side_label(s): run_cell(s, workload, readers, spec, nginx)
                                  for s in order})
            derived = [(workload, "value")]
            if workload == EPOCH and readers == 1:
                derived.append((FILE_P50, "p50_us"))
            for wl, key in derived:
                for side in cell_sides:
                    name = side_label(side)
                    vals = [rd[name][key] for rd in per_round]
                    ratios = {}
                    for base in (LOCAL, SIMPLE, BLOCK):
                        ratios[base] = median([rd[name][key] / rd[base][key]
                                               for rd in per_round if rd[base][key] > 0])
                    rows.append({"workload": wl, "readers": readers, "side": name,
                                 "kind": side["kind"], "threads": side.get("threads"),
                                 "sc": side.get("sc"), "nodes": side.get("nodes"),
                                 "value": median(vals), "p50_us": median(
                                     [rd[name]["p50_us"] for rd in per_round]),
                                 "ratios": ratios,
                                 "origin_requests": sum(rd[name]["origin_requests"]
                                                        for rd in per_round),
                                 "sc_share": sc_share(rd[name]["paths"] for rd in per_round),
                                 "targets": targets_for(wl, readers, side, ratios,
                                                        max(args.readers), os.cpu_count())})
            print(f"  {workload}, {readers} reader(s): " + ", ".join(
                f"{side_label(s)} {median([rd[side_label(s)]['value'] for rd in per_round]):.3g}"
                for s in cell_sides) + f" {UNITS[workload]} ({time.monotonic() - t_start:.0f} s)",
                flush=True)

        print_table(rows)
        if not has_threads:
            print("hit workers: n/a (shoald --help lists no hit-worker option)")
        results["rows"] = rows
        results["short_circuit_in_node"] = has_local_socket
        results["hit_workers_option"] = has_threads
        results["seconds"] = time.monotonic() - t_start
        results["load_end"] = os.getloadavg()[0]
        print(f"\nrun took {results['seconds']:.0f} s; load at the end "
              f"{results['load_end']:.1f}")
        if args.json:
            with open(args.json, "w") as f:
                json.dump(results, f, indent=2)
        if args.plot:
            plot(rows, args, args.plot, has_threads)
            print(f"plot: {args.plot}")
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)  # a second Ctrl-C must not stop the cleanup
        procs.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def print_table(rows):
    print()
    print("ratios: this side / that side, same run (median of per-round ratios); for "
          f"'{FILE_P50}' a time ratio (lower is better)")
    print(f"{'workload':13s} {'readers':>7s} {'side':20s} {'value':>9s} {'unit':7s} "
          f"{'p50 us':>8s} {'x local':>7s} {'x simple':>8s} {'x block':>7s} {'origin':>6s} "
          f"{'sc %':>5s}  issue target")
    for r in rows:
        rt = r["ratios"]

        def f(x):
            return f"{x:.2f}" if x is not None else "-"
        share = "-" if r.get("sc_share") is None else f"{100 * r['sc_share']:.0f}"
        print(f"{r['workload']:13s} {r['readers']:7d} {r['side']:20s} {r['value']:9.3g} "
              f"{UNITS[r['workload']]:7s} {r['p50_us']:8.0f} {f(rt.get(LOCAL)):>7s} "
              f"{f(rt.get(SIMPLE)):>8s} {f(rt.get(BLOCK)):>7s} {r['origin_requests']:6d} "
              f"{share:>5s}  {fmt_targets(r['targets'])}")


def plot(rows, args, path, has_threads):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import ticker

    def _log_label(v, _pos):
        # plain numbers on a log axis, at 1, 2 and 5 times a power of ten only
        lead = f"{v:.0e}"[0]
        return f"{v:g}" if lead in "125" else ""

    main_sides = []
    for r in rows:
        if r["threads"] is None and r["side"] not in main_sides:
            main_sides.append(r["side"])

    def get(wl, side, readers, key="value"):
        for r in rows:
            if r["workload"] == wl and r["side"] == side and r["readers"] == readers:
                return r[key]
        return None

    fig, axes = plt.subplots(2, 3, figsize=(17, 9.5))
    ax = axes[0][0]
    kinds = [SEQ_READINTO, SEQ_READ4M, SEQ_CAT]
    width = 0.8 / len(kinds)
    for i, wl in enumerate(kinds):
        vals = [get(wl, s, 1) or 0 for s in main_sides]
        ax.bar([x + i * width for x in range(len(main_sides))], vals, width, label=wl)
    ax.set_xticks([x + width for x in range(len(main_sides))])
    ax.set_xticklabels(main_sides, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("throughput (GiB/s)")
    ax.set_title(f"sequential {args.big_mb} MiB, 1 reader")
    ax.legend(fontsize=8)

    ax = axes[0][1]
    vals = [get(FILE_P50, s, 1) or 0 for s in main_sides]
    ax.bar(range(len(main_sides)), vals, color="tab:purple")
    ax.set_xticks(range(len(main_sides)))
    ax.set_xticklabels(main_sides, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("per-file latency p50 (us)")
    ax.set_title(f"warm {args.file_kb} KiB file, 1 reader")

    for ax, wl, ylabel, title in (
            (axes[0][2], SEQ_READINTO, "aggregate throughput (GiB/s, log)",
             f"readinto of the {args.big_mb} MiB file, every reader"),
            (axes[1][0], EPOCH, "epoch throughput (MB/s, log)",
             f"epoch of {args.files} x {args.file_kb} KiB files"),
            (axes[1][1], RANDOM, "random 64 KiB reads (reads/s, log)",
             "random 64 KiB reads")):
        for s in main_sides:
            xs = [r for r in args.readers if get(wl, s, r) is not None]
            ax.plot(xs, [get(wl, s, r) for r in xs], marker="o", label=s)
        ax.set_xscale("log", base=2)
        ax.set_xticks(args.readers)
        ax.set_xticklabels([str(r) for r in args.readers])
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(ticker.FuncFormatter(_log_label))
        ax.yaxis.set_minor_formatter(ticker.FuncFormatter(_log_label))
        ax.set_xlabel("reader processes (count)")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.legend(fontsize=7)

    ax = axes[1][2]
    if has_threads and args.hit_workers:
        readers = max(args.readers)
        for wl, style in ((SEQ_READINTO, "-"), (EPOCH, "--"), (RANDOM, ":")):
            for sc in (False, True):
                xs, ys = [], []
                for t in args.hit_workers:
                    ratio = get(wl, f"shoal 1n t{t} sc {'on' if sc else 'off'}", readers,
                                "ratios")
                    if ratio is None and t == 4:  # a run before t4 had a cluster of its own
                        ratio = get(wl, f"shoal 1n sc {'on' if sc else 'off'}", readers,
                                    "ratios")
                    if ratio and ratio.get(LOCAL) is not None:
                        xs.append(t)
                        ys.append(ratio[LOCAL])
                if xs:
                    ax.plot(xs, ys, style, marker="o", label=f"{wl}, sc {'on' if sc else 'off'}")
        ax.set_xscale("log", base=2)
        ax.set_xticks(args.hit_workers)
        ax.set_xticklabels([str(t) for t in args.hit_workers])
        ax.set_xlabel("hit workers (shoald --threads, count)")
        ax.set_ylabel("throughput / local copy, same run (ratio)")
        ax.set_title(f"1 node, {readers} readers: hit workers")
        ax.legend(fontsize=7)
    else:
        ax.text(0.5, 0.5, "hit workers: n/a (no shoald option)", ha="center")
        ax.set_axis_off()
    fig.suptitle(f"bench_local.py: warm reads, one host ({os.cpu_count()} CPUs); "
                 f"medians of {args.rounds} round(s)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)


if __name__ == "__main__":
    main()
