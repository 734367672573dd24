#!/usr/bin/python3
"""bench_cold.py - the cold-path benchmark (issue 10): reading a slow origin directly against
reading it through shoal, epoch 1 (cold cache) and epoch 2 (warm), side by side in one run.

The origin is tests/support/origin.py (HTTP/1.1, a per-request delay, default 20 ms, an
optional per-connection rate cap, request counts by kind at /_counts) serving a generated
dataset from a temporary directory on a free loopback port. For each cluster size (--nodes,
default 1 and 3 shoald nodes on loopback, `--mount http://127.0.0.1:PORT/`) and each reader
count (--readers, default 1, 4 and 16 forked reader processes, reader r reading files r,
r + readers, ... whole and in order, like DataLoader workers):

  DIRECT     each reader reads the origin itself: http.client, one keep-alive connection per
             reader, one plain GET per file (what fsspec's HTTPFileSystem.cat_file costs);
  SHOAL COLD a fresh cluster (fresh data directories), epoch 1 through shoalfs `cat_file`
             (stat + one pread: the whole file in one call);
  SHOAL WARM the same cluster, epoch 2, `cat_file` again (new reader processes, so their
             client's stat cache is empty, as with DataLoader workers that are not persistent).

Per side: per-file latency p50/p99, epoch wall time and MB/s, origin requests per file by kind
(/_counts, reset before each epoch), and CPU ms per MB of the readers (getrusage in each reader
around its timed part), the nodes (/proc/PID/stat, every thread; for the cold epoch also the store
work they finish after it) and the origin (/proc/PID/stat), each separately.

Then `shoal warmup` of --warmup-files small files (default 2000; the issue's figure is 10000)
into a fresh cluster of max(--nodes) nodes, against a parallel direct download of the same
files with the same concurrency K (a thread pool of K keep-alive connections). K is warmup's
default --parallel, read from `shoal warmup --help`. Today's `shoal warmup` takes a file or a
prefix it can list, and plain HTTP cannot list, so by default this runs warmup's own worker
loop (K threads sharing one client, one shoal_load per file: tools/shoal_cli.c s_warm_worker)
through shoalfs.load; --warmup-cli ARGS runs the `shoal` binary instead, ARGS being the
command after `shoal --seeds S`, with {list} replaced by a file of URIs (one per line) and
{prefix} by the dataset's URI prefix, e.g. --warmup-cli 'warmup --from {list}'.

Finally one table of ratios against DIRECT measured in the same run, with the issue's targets
and "target met" / "missed" per line. The warm small-file line also gives the absolute p50 and
its ratio to a local open().read() of the same files measured in the run. Nothing asserts.

Usage: /usr/bin/python3 tools/bench/bench_cold.py [--build build] [--nodes 1,3]
       [--readers 1,4,16] [--files 120] [--file-kb 64] [--large] [--delay-ms 20]
       [--rate-mbps 0] [--warmup-files 2000] [--warmup-cli ARGS] [--quick] [--json OUT]
--large: 8 files of 8 MiB (unless --files / --file-kb say otherwise). --quick: a smoke run
(24 files, readers 1,4, 200 warmup files; under a minute). Every process it starts is stopped
and the temporary directory removed on any exit (errors, Ctrl-C, SIGTERM).
"""
import argparse
import http.client
import json
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
ORIGIN = os.path.join(REPO, "tests", "support", "origin.py")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
DIRECT, COLD, WARM = "direct", "cold", "warm"
TODAY_WARM_US = 272.0  # issue 10: a warm 64 KiB file through one node on main b5b2fbe


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, what, proc=None, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with status {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not come up on 127.0.0.1:{port}")


class Procs:
    """Children in their own process groups, stopped by stop() or on exit."""

    def __init__(self):
        self.procs = []

    def start(self, argv, log):
        p = subprocess.Popen(argv, stdout=open(log, "wb"), stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, start_new_session=True)
        self.procs.append(p)
        return p

    def stop(self, procs=None):
        procs = list(self.procs if procs is None else procs)
        for p in procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait()
            if p in self.procs:
                self.procs.remove(p)


def proc_cpu(pid):
    """User + system seconds of every thread of a live process."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def own_cpu():
    """CPU seconds of this process, every thread (a reader measures its timed part with it:
    its setup, imports and client creation, is left out)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def pct(values, q):
    """The q-quantile (0..1) of values, nearest rank."""
    s = sorted(values)
    if not s:
        return 0.0
    return s[min(len(s) - 1, max(0, int(round(q * len(s) + 0.5)) - 1))]


# ------------------------------------------------------------------------ the origin


class Origin:
    def __init__(self, procs, tmp, root, delay_ms, rate_mbps):
        self.port = free_port()
        ready = os.path.join(tmp, "origin.ready")
        self.proc = procs.start([sys.executable, ORIGIN, "--port", str(self.port), "--root", root,
                                 "--delay-ms", str(delay_ms), "--rate-mbps", str(rate_mbps),
                                 "--ready", ready], os.path.join(tmp, "origin.log"))
        wait_port(self.port, "origin.py", self.proc)
        self.mount = f"http://127.0.0.1:{self.port}/"

    def _control(self, method, path):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        conn.request(method, path)
        body = conn.getresponse().read()
        conn.close()
        return body

    def reset(self):
        self._control("POST", "/_reset")

    def counts(self):
        return json.loads(self._control("GET", "/_counts"))

    def cpu(self):
        return proc_cpu(self.proc.pid)


# ------------------------------------------------------------------------ the cluster


class Cluster:
    """n shoald nodes on loopback, fresh data directories, joined through the first one's
    gossip endpoint; ready when every node's view has n alive members. extra_args: more shoald
    flags for every node (bench_local.py: --threads)."""

    def __init__(self, procs, need, tmp, tag, n, mount, capacity, extra_args=()):
        self.procs, self.nodes, self.endpoints = procs, [], []
        first_gossip = None
        for k in range(n):
            port, gossip = free_port(), free_port()
            name = f"{tag}-n{k}"
            argv = [need["shoald"], "--name", name, "--data-dir", os.path.join(tmp, name),
                    "--capacity", str(capacity), "--listen", f"tcp://127.0.0.1:{port}",
                    "--gossip", f"tcp://127.0.0.1:{gossip}", "--mount", mount,
                    "--log-level", "warn"] + list(extra_args)
            if first_gossip:
                argv += ["--seeds", first_gossip]
            else:
                first_gossip = f"127.0.0.1:{gossip}"
            proc = procs.start(argv, os.path.join(tmp, name + ".log"))
            self.nodes.append(proc)
            wait_port(port, f"shoald {name}", proc)
            self.endpoints.append(f"127.0.0.1:{port}")
        self.seeds = ",".join(self.endpoints)
        self._wait_converged(n)

    def _wait_converged(self, n, timeout=30):
        import shoalfs
        deadline = time.monotonic() + timeout
        pending = list(self.endpoints)
        while pending:
            fs = shoalfs.ShoalFileSystem(target_protocol="http", seeds=pending[0],
                                         skip_instance_cache=True)
            try:
                view = fs.members()
                alive = [m for m in view.get("members", []) if m.get("state") == "alive"]
                if len(alive) >= n:
                    pending.pop(0)
                    continue
            except OSError:
                pass
            finally:
                fs._client.close()
            if time.monotonic() > deadline:
                raise RuntimeError(f"cluster of {n}: {pending[0]} does not see {n} alive members")
            time.sleep(0.1)

    def cpu(self):
        return sum(proc_cpu(p.pid) for p in self.nodes)

    def settle(self, fs, deadline_s=30):
        """Waits until every node has stored its fetched ranges (store_queue_depth 0) and the
        nodes are idle (under 10 ms of CPU together in 250 ms)."""
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            depth = sum(node.get("counters", {}).get("store_queue_depth", 0)
                        for node in fs.stats().get("nodes", []))
            before = self.cpu()
            time.sleep(0.25)
            if depth == 0 and self.cpu() - before < 0.010:
                return

    def stop(self):
        self.procs.stop(self.nodes)


# ------------------------------------------------------------------------ epochs


def _reader_direct(port, paths, times):
    conn = http.client.HTTPConnection("127.0.0.1", port)
    conn.connect()
    yield
    total = 0
    for path in paths:
        t0 = time.perf_counter()
        conn.request("GET", path)
        resp = conn.getresponse()
        data = resp.read()
        if resp.status != 200:
            raise RuntimeError(f"GET {path}: {resp.status}")
        times.append(time.perf_counter() - t0)
        total += len(data)
    conn.close()
    yield total


def _reader_shoal(seeds, uris, times):
    import shoalfs
    fs = shoalfs.ShoalFileSystem(target_protocol="http", seeds=seeds)
    fs.members()  # this process's client state and view, outside the timed part
    yield
    total = 0
    for uri in uris:
        t0 = time.perf_counter()
        data = fs.cat_file(uri)
        times.append(time.perf_counter() - t0)
        total += len(data)
    yield total


def _reader_main(kind, target, items, barrier, results):
    """A forked reader (a DataLoader worker): sets up, waits for the others, reads its files
    in order, reports (bytes, start, end, error, per-file seconds) on the shared clock."""
    try:
        times = []
        gen = (_reader_direct if kind == DIRECT else _reader_shoal)(target, items, times)
        next(gen)
        barrier.wait()
        cpu0 = own_cpu()
        start = time.perf_counter()
        total = next(gen)
        end = time.perf_counter()
        results.put((total, start, end, None, times, own_cpu() - cpu0))
    except BaseException as e:  # noqa: BLE001 - reported to the parent, which raises
        results.put((0, 0.0, 0.0, repr(e), [], 0.0))


def epoch(kind, target, items, readers, expect_bytes):
    """Every item once with `readers` forked processes, reader r taking items r, r + readers,
    ... in order. Returns (bytes, wall seconds first start -> last end, per-file seconds,
    CPU seconds of the readers' timed parts)."""
    import multiprocessing
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(readers)
    results = ctx.Queue()
    procs = [ctx.Process(target=_reader_main, args=(kind, target, items[r::readers], barrier,
                                                    results), daemon=True)
             for r in range(readers)]
    for p in procs:
        p.start()
    got = [results.get(timeout=900) for _ in procs]
    for p in procs:
        p.join()
    errors = [g[3] for g in got if g[3]]
    if errors:
        raise RuntimeError(f"{kind} epoch: a reader failed: {errors[0]}")
    total = sum(g[0] for g in got)
    if total != expect_bytes:
        raise RuntimeError(f"{kind} epoch: read {total} bytes, expected {expect_bytes}")
    return (total, max(g[2] for g in got) - min(g[1] for g in got),
            [t for g in got for t in g[4]], sum(g[5] for g in got))


def measured_epoch(kind, target, items, readers, expect_bytes, origin, cluster, fs=None):
    """One epoch with its origin counts and CPU split; for the cold epoch the nodes' store
    work after it counts too (fs: a client of the cluster, for its stats)."""
    origin.reset()
    c0 = (0.0, cluster.cpu() if cluster else 0.0, origin.cpu())
    b, seconds, times, readers_cpu = epoch(kind, target, items, readers, expect_bytes)
    c1 = (readers_cpu, cluster.cpu() if cluster else 0.0, origin.cpu())
    counts = origin.counts()
    node_after = 0.0
    if kind == COLD:
        cluster.settle(fs)
        node_after = cluster.cpu() - c1[1]
    mb = b / 1e6
    n = len(items)
    row = {
        "files": n, "bytes": b, "seconds": seconds, "MBps": mb / seconds,
        "file_ms_p50": 1e3 * pct(times, 0.50), "file_ms_p99": 1e3 * pct(times, 0.99),
        "file_ms_mean": 1e3 * statistics.mean(times),
        "origin_GET_per_file": counts.get("GET", 0) / n,
        "origin_HEAD_per_file": counts.get("HEAD", 0) / n,
        "origin_other_per_file": sum(v for k, v in counts.items()
                                     if k not in ("GET", "HEAD", "bytes", "by_path")
                                     and isinstance(v, int)) / n,
        "origin_MB": counts.get("bytes", 0) / 1e6,
        "cpu_ms_per_MB_readers": 1e3 * (c1[0] - c0[0]) / mb,
        "cpu_ms_per_MB_nodes": 1e3 * (c1[1] - c0[1] + node_after) / mb,
        "cpu_ms_per_MB_nodes_after": 1e3 * node_after / mb,
        "cpu_ms_per_MB_origin": 1e3 * (c1[2] - c0[2]) / mb,
    }
    row["cpu_ms_per_MB_host"] = row["cpu_ms_per_MB_readers"] + row["cpu_ms_per_MB_nodes"]
    row["cpu_ms_per_MB_all"] = row["cpu_ms_per_MB_host"] + row["cpu_ms_per_MB_origin"]
    return row


def local_latency(root, names, rounds=3):
    """p50/p99 microseconds of open().read() of the dataset's files (page cache warm)."""
    for name in names:
        with open(os.path.join(root, name), "rb") as f:
            f.read()
    times = []
    for _ in range(rounds):
        for name in names:
            t0 = time.perf_counter()
            with open(os.path.join(root, name), "rb") as f:
                f.read()
            times.append(time.perf_counter() - t0)
    return 1e6 * pct(times, 0.5), 1e6 * pct(times, 0.99)


# ------------------------------------------------------------------------ warmup


def warmup_parallel(need):
    """K: `shoal warmup`'s default --parallel, from its help text."""
    out = subprocess.run([need["shoal"], "warmup", "--help"], capture_output=True, text=True,
                         timeout=30)
    text = out.stdout + out.stderr
    m = re.search(r"files at once \(default (\d+)\)", text) or \
        re.search(r"--parallel[^\n]*default (\d+)", text)
    if not m:
        raise RuntimeError("cannot find warmup's default --parallel in `shoal warmup --help`:\n"
                           + text)
    return int(m.groups()[-1]), text


def direct_download(port, paths, k):
    """A thread pool of k keep-alive connections downloading every path once. Returns
    (seconds, bytes, per-file seconds)."""
    import threading
    local = threading.local()

    def get(path):
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = http.client.HTTPConnection("127.0.0.1", port)
        t0 = time.perf_counter()
        conn.request("GET", path)
        resp = conn.getresponse()
        data = resp.read()
        if resp.status != 200:
            raise RuntimeError(f"GET {path}: {resp.status}")
        return len(data), time.perf_counter() - t0

    t0 = time.perf_counter()
    with ThreadPoolExecutor(k) as pool:
        got = list(pool.map(get, paths))
    return time.perf_counter() - t0, sum(g[0] for g in got), [g[1] for g in got]


def shoal_warmup(need, fs, seeds, uris, k, cli_args, tmp, prefix):
    """Today's warmup loop (k threads, one shared client, shoal_load per file), or the CLI
    with cli_args. Returns (seconds, how)."""
    if cli_args:
        listing = os.path.join(tmp, "warmup-list.txt")
        with open(listing, "w") as f:
            f.write("".join(u + "\n" for u in uris))
        argv = [need["shoal"], "--seeds", seeds] + \
            cli_args.replace("{list}", listing).replace("{prefix}", prefix).split()
        t0 = time.perf_counter()
        out = subprocess.run(argv, capture_output=True, text=True, timeout=3600)
        seconds = time.perf_counter() - t0
        if out.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)}: status {out.returncode}: "
                               + (out.stdout + out.stderr)[-2000:])
        return seconds, "shoal " + " ".join(argv[3:])
    t0 = time.perf_counter()
    with ThreadPoolExecutor(k) as pool:
        list(pool.map(fs.load, uris))
    return time.perf_counter() - t0, f"shoal_load per file, {k} threads, one client"


# ------------------------------------------------------------------------ report


def verdict(ok):
    return "target met" if ok else "missed"


def print_table(rows):
    print()
    print("nodes readers side    p50 ms  p99 ms  epoch s    MB/s  GET/f HEAD/f other/f  "
          "CPU ms/MB: readers  nodes (after)  origin  host")
    for (nodes, readers), sides in rows.items():
        for side in (DIRECT, COLD, WARM):
            r = sides[side]
            after = f"({r['cpu_ms_per_MB_nodes_after']:.2f})" if side == COLD else ""
            print(f"{nodes:5d} {readers:7d} {side:6s} {r['file_ms_p50']:7.2f} "
                  f"{r['file_ms_p99']:7.2f} {r['seconds']:8.2f} {r['MBps']:7.1f} "
                  f"{r['origin_GET_per_file']:6.2f} {r['origin_HEAD_per_file']:6.2f} "
                  f"{r['origin_other_per_file']:7.2f}  {r['cpu_ms_per_MB_readers']:18.2f} "
                  f"{r['cpu_ms_per_MB_nodes']:6.2f} {after:7s} {r['cpu_ms_per_MB_origin']:7.2f} "
                  f"{r['cpu_ms_per_MB_host']:5.2f}")


def summary(args, rows, results):
    lines = []
    nodes_max = max(args.nodes)

    def at(n, r):
        return rows.get((n, r))

    lat_n = 3 if 3 in args.nodes else nodes_max
    if at(lat_n, 1):
        s = at(lat_n, 1)
        ratio = s[COLD]["file_ms_p50"] / s[DIRECT]["file_ms_p50"]
        lines.append((f"cold/direct per-file latency p50, 1 reader, {lat_n} nodes: "
                      f"{s[COLD]['file_ms_p50']:.1f} / {s[DIRECT]['file_ms_p50']:.1f} ms = "
                      f"{ratio:.2f} (p99 {s[COLD]['file_ms_p99'] / s[DIRECT]['file_ms_p99']:.2f})",
                      "<= 1.1", ratio <= 1.1))
    for n in args.nodes:
        if n == lat_n or not at(n, 1):
            continue
        s = at(n, 1)
        ratio = s[COLD]["file_ms_p50"] / s[DIRECT]["file_ms_p50"]
        lines.append((f"cold/direct per-file latency p50, 1 reader, {n} node(s): {ratio:.2f}",
                      "(info)", None))
    for n in args.nodes:
        for r in args.readers:
            if r == 1 or not at(n, r):
                continue
            s = at(n, r)
            ratio = s[COLD]["MBps"] / s[DIRECT]["MBps"]
            lines.append((f"cold/direct epoch throughput, {r} readers, {n} node(s): "
                          f"{s[COLD]['MBps']:.1f} / {s[DIRECT]['MBps']:.1f} MB/s = {ratio:.2f}",
                          ">= 0.95", ratio >= 0.95))
    n1 = 1 if 1 in args.nodes else min(args.nodes)
    if at(n1, 1):
        warm_us = 1e3 * at(n1, 1)[WARM]["file_ms_p50"]
        local_us = results["local_read_us_p50"]
        kib = args.file_kb
        lines.append((f"warm {kib:g} KiB file latency p50, 1 reader, {n1} node: {warm_us:.0f} us "
                      f"= {warm_us / TODAY_WARM_US:.2f} x 272 us; {warm_us / local_us:.1f} x a "
                      f"local open().read() ({local_us:.0f} us)",
                      "<= 136 us (0.5 x 272)",
                      warm_us <= 0.5 * TODAY_WARM_US if kib == 64 else None))
    w = results.get("warmup")
    if w:
        lines.append((f"warmup/direct, {w['files']} files, K={w['K']}, {w['nodes']} node(s): "
                      f"{w['shoal_files_per_s']:.0f} / {w['direct_files_per_s']:.0f} files/s = "
                      f"{w['ratio']:.2f}", ">= 0.9", w["ratio"] >= 0.9))
    for n in args.nodes:
        for r in args.readers:
            if not at(n, r):
                continue
            s = at(n, r)
            ratio = s[COLD]["cpu_ms_per_MB_host"] / s[DIRECT]["cpu_ms_per_MB_host"]
            ratio_all = s[COLD]["cpu_ms_per_MB_all"] / s[DIRECT]["cpu_ms_per_MB_all"]
            lines.append((f"CPU per MB cold/direct, {r} reader(s), {n} node(s): readers+nodes "
                          f"{s[COLD]['cpu_ms_per_MB_host']:.2f} / readers "
                          f"{s[DIRECT]['cpu_ms_per_MB_host']:.2f} ms = {ratio:.2f} (with the "
                          f"origin: {ratio_all:.2f})", "<= 2", ratio <= 2))
    print()
    print("ratios against DIRECT, same run:")
    for text, target, ok in lines:
        tail = f"   target {target}: {verdict(ok)}" if ok is not None else ""
        print(f"  {text}{tail}")
    results["summary"] = [{"line": t, "target": g, "met": ok} for t, g, ok in lines]


# ------------------------------------------------------------------------ main


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def int_list(text):
    return [int(x) for x in text.split(",") if x.strip()]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(REPO, "build"))
    ap.add_argument("--nodes", type=int_list, default=None, help="cluster sizes (default 1,3)")
    ap.add_argument("--readers", type=int_list, default=None,
                    help="reader process counts (default 1,4,16)")
    ap.add_argument("--files", type=int, default=None, help="files (default 120; --large 8)")
    ap.add_argument("--file-kb", type=float, default=None,
                    help="file size, KiB (default 64; --large 8192)")
    ap.add_argument("--large", action="store_true", help="a few larger files: 8 x 8 MiB")
    ap.add_argument("--delay-ms", type=float, default=20.0, help="origin delay per request")
    ap.add_argument("--rate-mbps", type=float, default=0.0,
                    help="origin bandwidth cap per connection, MB/s (0: none)")
    ap.add_argument("--warmup-files", type=int, default=None,
                    help="files for the warmup comparison (default 2000; 0 skips it)")
    ap.add_argument("--warmup-kb", type=float, default=64.0, help="their size, KiB (default 64)")
    ap.add_argument("--warmup-cli", default=None,
                    help="run the shoal binary for the warmup: the arguments after --seeds, "
                         "{list} = a file of URIs, {prefix} = the dataset's URI prefix")
    ap.add_argument("--quick", action="store_true", help="smoke run, under a minute")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    if args.quick:
        args.nodes = args.nodes or [1, 3]
        args.readers = args.readers or [1, 4]
        args.files = args.files or 24
        args.warmup_files = 200 if args.warmup_files is None else args.warmup_files
    args.nodes = args.nodes or [1, 3]
    args.readers = args.readers or [1, 4, 16]
    args.files = args.files or (8 if args.large else 120)
    args.file_kb = args.file_kb or (8192 if args.large else 64)
    args.warmup_files = 2000 if args.warmup_files is None else args.warmup_files

    build = os.path.abspath(args.build)
    need = {"shoald": os.path.join(build, "node", "shoald"),
            "libshoal": os.path.join(build, "client", "libshoal.so"),
            "shoal": os.path.join(build, "tools", "shoal"), "origin.py": ORIGIN}
    missing = [f"{k} ({v})" for k, v in need.items() if not os.path.exists(v)]
    if missing:
        sys.exit("bench_cold: missing " + ", ".join(missing) + " (build with cmake first)")
    os.environ["SHOAL_LIBRARY"] = need["libshoal"]
    sys.path.insert(0, os.path.join(REPO, "client", "python"))
    import shoalfs

    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGHUP, _raise_interrupt)
    tmp = tempfile.mkdtemp(prefix="shoal-bench-cold-")
    procs = Procs()
    clusters = []
    results = {"args": {k: v for k, v in vars(args).items()}, "rows": []}
    try:
        data = os.path.join(tmp, "data")
        os.makedirs(os.path.join(data, "d"))
        size = int(args.file_kb * 1024)
        names = [f"d/f{i:05d}.bin" for i in range(args.files)]
        for name in names:
            with open(os.path.join(data, name), "wb") as f:
                f.write(os.urandom(size))
        wsize = int(args.warmup_kb * 1024)
        wnames = [f"w/w{i:05d}.bin" for i in range(args.warmup_files)]
        if wnames:
            os.makedirs(os.path.join(data, "w"))
        for name in wnames:
            with open(os.path.join(data, name), "wb") as f:
                f.write(os.urandom(wsize))
        total = size * len(names)
        origin = Origin(procs, tmp, data, args.delay_ms, args.rate_mbps)
        print(f"dataset: {args.files} files x {args.file_kb:g} KiB = {total / 1e6:.1f} MB; "
              f"origin.py on :{origin.port}, delay {args.delay_ms:g} ms, rate cap "
              f"{args.rate_mbps:g} MB/s per connection; nodes {args.nodes}, readers "
              f"{args.readers}; shoal sides read with shoalfs cat_file; host CPUs "
              f"{os.cpu_count()}, load {os.getloadavg()[0]:.1f}", flush=True)
        capacity = max(1 << 30, 4 * (total + wsize * len(wnames)))
        paths = ["/" + n for n in names]
        uris = [origin.mount + n for n in names]

        # untimed: the origin's page cache and its code paths, one direct pass
        epoch(DIRECT, origin.port, paths[: min(8, len(paths))], 1, size * min(8, len(paths)))
        local_p50, local_p99 = local_latency(data, names)
        results["local_read_us_p50"], results["local_read_us_p99"] = local_p50, local_p99
        print(f"local open().read() of the same files: p50 {local_p50:.0f} us, p99 "
              f"{local_p99:.0f} us", flush=True)

        rows = {}
        for n in args.nodes:
            for readers in args.readers:
                cluster = Cluster(procs, need, tmp, f"c{n}r{readers}", n, origin.mount, capacity)
                clusters.append(cluster)
                fs = shoalfs.ShoalFileSystem(target_protocol="http", seeds=cluster.seeds,
                                             skip_instance_cache=True)
                sides = {
                    DIRECT: measured_epoch(DIRECT, origin.port, paths, readers, total, origin,
                                           None),
                    COLD: measured_epoch(COLD, cluster.seeds, uris, readers, total, origin,
                                         cluster, fs),
                    WARM: measured_epoch(WARM, cluster.seeds, uris, readers, total, origin,
                                         cluster, fs),
                }
                fs._client.close()
                cluster.stop()
                clusters.remove(cluster)
                rows[(n, readers)] = sides
                for side, r in sides.items():
                    results["rows"].append(dict(r, nodes=n, readers=readers, side=side))
                d, c, w = sides[DIRECT], sides[COLD], sides[WARM]
                print(f"nodes={n} readers={readers}: p50 ms direct {d['file_ms_p50']:.2f}, cold "
                      f"{c['file_ms_p50']:.2f}, warm {w['file_ms_p50']:.3f}; MB/s direct "
                      f"{d['MBps']:.1f}, cold {c['MBps']:.1f}, warm {w['MBps']:.1f}; origin "
                      f"per cold file {c['origin_GET_per_file']:.2f} GET + "
                      f"{c['origin_HEAD_per_file']:.2f} HEAD", flush=True)

        if wnames:
            k, _ = warmup_parallel(need)
            n = max(args.nodes)
            wpaths = ["/" + x for x in wnames]
            wuris = [origin.mount + x for x in wnames]
            print(f"warmup: {len(wnames)} files x {args.warmup_kb:g} KiB, K = {k} (shoal "
                  f"warmup's default --parallel, tools/shoal_cli.c), {n} node(s)", flush=True)
            origin.reset()
            dsec, dbytes, dtimes = direct_download(origin.port, wpaths, k)
            dcounts = origin.counts()
            if dbytes != wsize * len(wnames):
                raise RuntimeError(f"direct download: {dbytes} bytes")
            cluster = Cluster(procs, need, tmp, "warmup", n, origin.mount, capacity)
            clusters.append(cluster)
            fs = shoalfs.ShoalFileSystem(target_protocol="http", seeds=cluster.seeds,
                                         skip_instance_cache=True)
            origin.reset()
            ssec, how = shoal_warmup(need, fs, cluster.seeds, wuris, k, args.warmup_cli, tmp,
                                     origin.mount + "w/")
            scounts = origin.counts()
            fs._client.close()
            cluster.stop()
            clusters.remove(cluster)
            nf = len(wnames)
            results["warmup"] = {
                "files": nf, "K": k, "nodes": n, "how": how,
                "direct_seconds": dsec, "shoal_seconds": ssec,
                "direct_files_per_s": nf / dsec, "shoal_files_per_s": nf / ssec,
                "ratio": dsec / ssec,
                "direct_file_ms_p50": 1e3 * pct(dtimes, 0.5),
                "shoal_origin_GET_per_file": scounts.get("GET", 0) / nf,
                "shoal_origin_HEAD_per_file": scounts.get("HEAD", 0) / nf,
                "direct_origin_GET_per_file": dcounts.get("GET", 0) / nf,
            }
            print(f"warmup ({how}): {ssec:.1f} s, direct download with {k} connections "
                  f"{dsec:.1f} s; origin per file during warmup "
                  f"{results['warmup']['shoal_origin_GET_per_file']:.2f} GET + "
                  f"{results['warmup']['shoal_origin_HEAD_per_file']:.2f} HEAD", flush=True)

        print_table(rows)
        summary(args, rows, results)
        results["load_end"] = os.getloadavg()[0]
        if args.json:
            with open(args.json, "w") as f:
                json.dump(results, f, indent=2)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)  # a second Ctrl-C must not stop the cleanup
        procs.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
