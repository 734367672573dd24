#!/usr/bin/python3
"""bench_read.py - the read benchmark: measures, side by side in one run on loopback,

  (a) the machine's limits: iperf3 (1 MiB writes) and raw ZeroMQ (1 MiB messages, zmq_pump)
  (b) cached sequential 1 MiB reads through libshoal (bench_pread seq, depth 1 and 8)
  (c) cached random 64 KiB reads with 16 in flight (bench_pread rand: reads/s, p50, p99)
  (d) epochs as a training job reads them: --readers forked reader processes (DataLoader
      workers; default 4, and 1), reader r taking files r, r + readers, ... in order, each
      reading whole files into one buffer: directly from nginx (http.client, one reused
      keep-alive connection per reader, readinto) vs epoch 1 (cold cache) and epoch 2 (cached)
      through ShoalFileSystem.open().readinto. Same files, same order, same reader count; each
      (round, reader count) gets fresh files, so every epoch 1 is cold. Also CPU per MB of
      each side (readers, nginx, node; for epoch 1 also the node's store work after the epoch),
      which is steadier than MB/s on a shared machine.

and prints the ratios (b)/iperf3 (target >= 0.65), epoch1/direct (target >= 0.9) and (c)
reads/s (target >= 10k). Nothing here asserts: the numbers are for README-read.md.

Usage: /usr/bin/python3 tools/bench/bench_read.py [--build build] [--files 64] [--file-mb 4]
       [--seconds 5] [--json OUT] [--shoald PATH] [--readers 4] [--rounds 1] [--only-d]
--shoald runs another node binary (an older commit's, for a before/after) against this build's
libshoal and helpers. --rounds repeats (d) and reports medians; --only-d skips (a)-(c).
"""
import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, what, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not come up on port {port}")


class Procs:
    """Children in their own process groups, all stopped on exit."""

    def __init__(self):
        self.procs = []

    def start(self, argv, log, env=None):
        p = subprocess.Popen(argv, stdout=open(log, "wb"), stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, start_new_session=True, env=env)
        self.procs.append(p)
        return p

    def stop_all(self):
        for p in self.procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()


def run_json(argv, timeout=120):
    out = subprocess.run(argv, check=True, capture_output=True, timeout=timeout, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def iperf3(procs, tmp, seconds):
    port = free_port()
    log = os.path.join(tmp, "iperf3-s.log")
    server = procs.start(["iperf3", "-s", "--forceflush", "-p", str(port)], log)
    # Not probed with a connection: iperf3 would take the probe for a test client.
    deadline = time.monotonic() + 10
    while b"Server listening" not in open(log, "rb").read():
        if time.monotonic() > deadline or server.poll() is not None:
            raise RuntimeError("iperf3 -s did not start: " + open(log).read())
        time.sleep(0.05)
    out = subprocess.run(["iperf3", "-c", "127.0.0.1", "-p", str(port), "-l", "1M", "-t",
                          str(seconds), "-J"], check=True, capture_output=True, text=True,
                         timeout=seconds + 30)
    return json.loads(out.stdout)["end"]["sum_received"]["bits_per_second"] / 8 / 1e6


def _reader_direct(port, paths, buf):
    """One reader of a direct epoch: whole-file GETs over one reused keep-alive connection,
    each body read with readinto straight into `buf` (as large as a file)."""
    conn = http.client.HTTPConnection("127.0.0.1", port)
    view = memoryview(buf)
    total = 0
    for path in paths:
        conn.request("GET", path)
        resp = conn.getresponse()
        n = 0
        while k := resp.readinto(view[n:]):
            n += k
        total += n
    conn.close()
    return total


def _reader_shoalfs(fs, uris, buf):
    """One reader of a shoalfs epoch: open, one readinto of the whole file into `buf`."""
    total = 0
    for uri in uris:
        with fs.open(uri, "rb") as f:
            while n := f.readinto(buf):
                total += n
    return total


DIRECT, SHOALFS = "direct", "shoalfs"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _proc_cpu(pid):
    """(user + system seconds of every thread, parent pid) of a live process."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS, int(fields[1])


def cpu_seconds(node_pid, nginx_pid):
    """CPU seconds used so far by: reader processes (waited-for children of this process:
    epoch() joins them), nginx's workers, and the node (all its threads, RocksDB's included)."""
    import resource
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    nginx = 0.0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                seconds, parent = _proc_cpu(int(entry))
            except (OSError, ValueError, IndexError):
                continue
            if parent == nginx_pid:
                nginx += seconds
    return {"readers": usage.ru_utime + usage.ru_stime, "nginx": nginx,
            "node": _proc_cpu(node_pid)[0]}


def settle_node(fs, node_pid, deadline_s=30):
    """Waits until the node has stored every fetched range (store_queue_depth 0) and is idle
    (under 10 ms of CPU in 250 ms), so the store work an epoch left behind can be counted."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        node = fs.stats()["nodes"][0]
        before = _proc_cpu(node_pid)[0]
        time.sleep(0.25)
        if node.get("counters", {}).get("store_queue_depth", 0) == 0 and \
                _proc_cpu(node_pid)[0] - before < 0.010:
            return


def _reader_main(kind, target, items, file_size, barrier, results):
    """A reader process (forked, like a DataLoader worker): waits for the others, reads its
    files in order, reports (bytes, start, end) on the shared monotonic clock."""
    try:
        buf = bytearray(max(file_size, 1))
        barrier.wait()
        start = time.perf_counter()
        if kind == DIRECT:
            total = _reader_direct(target, items, buf)
        else:
            total = _reader_shoalfs(target, items, buf)
        results.put((total, start, time.perf_counter(), None))
    except BaseException as e:  # noqa: BLE001 - reported to the parent, which raises
        results.put((0, 0.0, 0.0, repr(e)))


def epoch(kind, target, items, file_size, readers):
    """Reads every item once with `readers` forked processes; reader r takes items r,
    r + readers, ... in order (what a DataLoader with `readers` workers does with a map-style
    dataset). Returns (bytes, seconds) from the first reader's start to the last one's end."""
    import multiprocessing
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(readers)
    results = ctx.Queue()
    procs = [ctx.Process(target=_reader_main, args=(kind, target, items[r::readers], file_size,
                                                    barrier, results)) for r in range(readers)]
    for p in procs:
        p.start()
    got = [results.get(timeout=600) for _ in procs]
    for p in procs:
        p.join()
    errors = [g[3] for g in got if g[3]]
    if errors:
        raise RuntimeError(f"{kind} epoch: a reader failed: {errors[0]}")
    total = sum(g[0] for g in got)
    if total != file_size * len(items):
        raise RuntimeError(f"{kind} epoch: read {total} bytes, expected {file_size * len(items)}")
    return total, max(g[2] for g in got) - min(g[1] for g in got)


def limits(procs, tmp, seconds, need, results):
    """(a): iperf3 and raw ZeroMQ over loopback."""
    results["iperf3_MBps"] = iperf3(procs, tmp, int(seconds))
    print(f"(a) iperf3 loopback, 1 MiB writes:     {results['iperf3_MBps']:8.0f} MB/s")
    results["zmq_MBps"] = run_json([need["zmq_pump"], "3000", str(1 << 20)])["MBps"]
    print(f"(a) raw ZeroMQ, 1 MiB messages:        {results['zmq_MBps']:8.0f} MB/s")


def cached(need, lib, seeds, uris, seconds, results):
    """(b) cached sequential reads through libshoal, (c) cached random 64 KiB reads."""
    for depth in (1, 8):
        r = run_json([need["bench_pread"], lib, seeds, "seq", str(depth), str(1 << 20)] + uris)
        results[f"seq_depth{depth}_MBps"] = r["MBps"]
        print(f"(b) libshoal sequential 1 MiB, depth {depth}: {r['MBps']:8.0f} MB/s")
    r = run_json([need["bench_pread"], lib, seeds, "rand", "16", str(seconds), "65536"] + uris,
                 timeout=seconds + 120)
    results["rand64k"] = r
    print(f"(c) random 64 KiB x 16 threads: {r['reads_per_s']:.0f} reads/s, "
          f"p50 {r['p50_us']:.0f} us, p99 {r['p99_us']:.0f} us")
    results["ratio_seq_to_iperf3"] = results["seq_depth1_MBps"] / results["iperf3_MBps"]
    results["ratio_seq8_to_iperf3"] = results["seq_depth8_MBps"] / results["iperf3_MBps"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(REPO, "build"))
    ap.add_argument("--files", type=int, default=64)
    ap.add_argument("--file-mb", type=float, default=4)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--shoald", help="node binary to run (default: BUILD/node/shoald)")
    ap.add_argument("--readers", type=int, default=4,
                    help="concurrent reader processes in (d) (default 4; readers=1 is also run)")
    ap.add_argument("--rounds", type=int, default=1,
                    help="(d) rounds, each on fresh files; medians are reported (default 1)")
    ap.add_argument("--only-d", action="store_true", help="run (d) only, skip (a), (b), (c)")
    args = ap.parse_args()

    build = os.path.abspath(args.build)
    lib = os.path.join(build, "client", "libshoal.so")
    shoald = os.path.abspath(args.shoald) if args.shoald else os.path.join(build, "node", "shoald")
    need = {"shoald": shoald, "libshoal": lib,
            "zmq_pump": os.path.join(build, "tools", "bench", "zmq_pump"),
            "bench_pread": os.path.join(build, "tools", "bench", "bench_pread")}
    missing = [f"{k} ({v})" for k, v in need.items() if not os.path.exists(v)]
    for tool in ("iperf3", "/usr/sbin/nginx"):
        if not shutil.which(tool):
            missing.append(tool)
    if missing:
        sys.exit("bench_read: missing " + ", ".join(missing) + " (build with cmake first, "
                 "and run tools/install-deps.sh)")
    os.environ["SHOAL_LIBRARY"] = lib
    sys.path.insert(0, os.path.join(REPO, "client", "python"))
    import shoalfs

    tmp = tempfile.mkdtemp(prefix="shoal-bench-")
    procs = Procs()
    results = {"files": args.files, "file_mb": args.file_mb}
    try:
        # dataset: one set of files per reader count in (d), so each epoch 1 is cold
        data = os.path.join(tmp, "data")
        os.makedirs(data)
        size = int(args.file_mb * (1 << 20))
        reader_counts = [args.readers] + ([1] if args.readers != 1 else [])
        sets = {(k, r): [f"k{k}-r{r}-f{i:04d}.bin" for i in range(args.files)]
                for k in range(args.rounds) for r in reader_counts}
        for names in sets.values():
            for name in names:
                with open(os.path.join(data, name), "wb") as f:
                    f.write(os.urandom(size))
        names = sets[(0, args.readers)]
        total_mb = size * len(names) / 1e6
        print(f"dataset: {len(names)} files x {args.file_mb} MiB = {total_mb:.0f} MB "
              f"per (round, reader count): rounds {args.rounds}, readers {reader_counts}")

        if not args.only_d:
            limits(procs, tmp, args.seconds, need, results)

        # origin and node
        nport = free_port()
        nd = os.path.join(tmp, "nginx")
        os.makedirs(nd)
        with open(os.path.join(nd, "nginx.conf"), "w") as f:
            f.write(f"user root; worker_processes 2; pid {nd}/nginx.pid;\n"
                    f"error_log {nd}/error.log warn; events {{ worker_connections 512; }}\n"
                    f"http {{ access_log {nd}/access.log; sendfile on;\n"
                    f"  client_body_temp_path {nd}/b; proxy_temp_path {nd}/p;\n"
                    f"  fastcgi_temp_path {nd}/f; uwsgi_temp_path {nd}/u; scgi_temp_path {nd}/s;\n"
                    f"  default_type application/octet-stream;\n"
                    f"  server {{ listen 127.0.0.1:{nport}; root {tmp}; }} }}\n")
        procs.start(["/usr/sbin/nginx", "-p", nd, "-c", f"{nd}/nginx.conf", "-e",
                     f"{nd}/error.log", "-g", "daemon off;"], f"{nd}/stdout.log")
        wait_port(nport, "nginx")
        origin = f"http://127.0.0.1:{nport}/data/"
        sport = free_port()
        procs.start([need["shoald"], "--name", "bench", "--data-dir", f"{tmp}/node",
                     "--capacity", str(2 * size * args.files * len(sets) + (1 << 30)),
                     "--listen", f"tcp://127.0.0.1:{sport}", "--gossip",
                     f"tcp://127.0.0.1:{free_port()}", "--mount", origin,
                     "--log-level", "warn"], f"{tmp}/shoald.log")
        wait_port(sport, "shoald")
        nginx_pid, node_pid = procs.procs[-2].pid, procs.procs[-1].pid
        seeds = f"127.0.0.1:{sport}"
        uris = [origin + n for n in names]
        fs = shoalfs.ShoalFileSystem(target_protocol="http", seeds=seeds)

        # (d) per reader count: direct, then epoch 1 (cold cache), then epoch 2, same files in
        # the same order, each reader a forked process reading whole files into one buffer;
        # rounds interleave the three so that drift of the machine hits all of them
        epoch(DIRECT, nport, [f"/data/{n}" for n in names[:2]], size, 1)  # warm-up
        rows = {r: [] for r in reader_counts}
        for k in range(args.rounds):
            for readers in reader_counts:
                paths = [f"/data/{n}" for n in sets[(k, readers)]]
                set_uris = [origin + n for n in sets[(k, readers)]]
                row = {}
                for key, kind, target, items in (("direct", DIRECT, nport, paths),
                                                 ("epoch1", SHOALFS, fs, set_uris),
                                                 ("epoch2", SHOALFS, fs, set_uris)):
                    c0 = cpu_seconds(node_pid, nginx_pid)
                    b, s = epoch(kind, target, items, size, readers)
                    c1 = cpu_seconds(node_pid, nginx_pid)
                    row[f"{key}_MBps"] = b / 1e6 / s
                    for who in c0:
                        row[f"{key}_cpu_ms_per_MB_{who}"] = 1e3 * (c1[who] - c0[who]) / (b / 1e6)
                    if key == "epoch1":  # the pages stored after the epoch are its work too
                        settle_node(fs, node_pid)
                        c2 = cpu_seconds(node_pid, nginx_pid)
                        row["epoch1_cpu_ms_per_MB_node_after"] = \
                            1e3 * (c2["node"] - c1["node"]) / (b / 1e6)
                for key in ("direct", "epoch1", "epoch2"):
                    row[f"{key}_cpu_ms_per_MB"] = sum(
                        v for k, v in row.items() if k.startswith(f"{key}_cpu_ms_per_MB_"))
                row["ratio_cpu_direct_to_epoch1"] = \
                    row["direct_cpu_ms_per_MB"] / row["epoch1_cpu_ms_per_MB"]
                row["ratio_epoch1_to_direct"] = row["epoch1_MBps"] / row["direct_MBps"]
                row["ratio_epoch2_to_direct"] = row["epoch2_MBps"] / row["direct_MBps"]
                rows[readers].append(row)
                print(f"(d) round {k} readers={readers}: direct from nginx "
                      f"{row['direct_MBps']:6.0f} MB/s, shoalfs epoch 1 (cold) "
                      f"{row['epoch1_MBps']:6.0f} MB/s, epoch 2 (cached) "
                      f"{row['epoch2_MBps']:6.0f} MB/s; epoch1/direct "
                      f"{row['ratio_epoch1_to_direct']:.2f}, epoch2/direct "
                      f"{row['ratio_epoch2_to_direct']:.2f}", flush=True)
                print(f"    CPU ms per MB: direct {row['direct_cpu_ms_per_MB']:.2f} (readers "
                      f"{row['direct_cpu_ms_per_MB_readers']:.2f}, nginx "
                      f"{row['direct_cpu_ms_per_MB_nginx']:.2f}); epoch 1 "
                      f"{row['epoch1_cpu_ms_per_MB']:.2f} (readers "
                      f"{row['epoch1_cpu_ms_per_MB_readers']:.2f}, nginx "
                      f"{row['epoch1_cpu_ms_per_MB_nginx']:.2f}, node "
                      f"{row['epoch1_cpu_ms_per_MB_node']:.2f} + "
                      f"{row['epoch1_cpu_ms_per_MB_node_after']:.2f} after the epoch); epoch 2 "
                      f"{row['epoch2_cpu_ms_per_MB']:.2f}; direct/epoch1 CPU "
                      f"{row['ratio_cpu_direct_to_epoch1']:.2f}", flush=True)
        for readers in reader_counts:
            med = {key: statistics.median(row[key] for row in rows[readers])
                   for key in rows[readers][0]}
            results[f"readers{readers}"] = dict(med, rounds=rows[readers])
            if args.rounds > 1:
                ratios = sorted(row["ratio_epoch1_to_direct"] for row in rows[readers])
                print(f"(d) readers={readers}, median of {args.rounds}: direct "
                      f"{med['direct_MBps']:6.0f} MB/s, epoch 1 {med['epoch1_MBps']:6.0f} MB/s, "
                      f"epoch 2 {med['epoch2_MBps']:6.0f} MB/s; epoch1/direct "
                      f"{med['ratio_epoch1_to_direct']:.2f} (range {ratios[0]:.2f}-"
                      f"{ratios[-1]:.2f}); direct/epoch1 CPU per MB "
                      f"{med['ratio_cpu_direct_to_epoch1']:.2f}")

        if not args.only_d:
            cached(need, lib, seeds, uris, args.seconds, results)
        main_row = results[f"readers{args.readers}"]
        results["ratio_epoch1_to_direct"] = main_row["ratio_epoch1_to_direct"]
        print()
        if not args.only_d:
            print(f"(b)/iperf3         = {results['ratio_seq_to_iperf3']:.2f} "
                  f"(depth 8: {results['ratio_seq8_to_iperf3']:.2f})   target >= 0.65")
        print(f"epoch1/direct      = {results['ratio_epoch1_to_direct']:.2f} "
              f"(readers={args.readers}"
              + (f"; readers=1: {results['readers1']['ratio_epoch1_to_direct']:.2f}"
                 if args.readers != 1 else "") + ")   target >= 0.9")
        if not args.only_d:
            print(f"(c) reads/s        = {results['rand64k']['reads_per_s']:.0f}   "
                  f"target >= 10000")
        if args.json:
            with open(args.json, "w") as f:
                json.dump(results, f, indent=2)
    finally:
        procs.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
