#!/usr/bin/python3
"""bench_cluster.py - the cluster benchmark, side by side in one run on this machine:

  (a) cached whole-file reads through libshoal from a cluster of 3 nodes vs from 1 node
      (same files, same client settings, same thread count): MB/s of each and the ratio;
  (b) failover: reader threads run against the 3-node cluster, the owner of the most ranges is
      killed with SIGKILL, and the time until reads run at full speed again is measured (the
      first 100 ms window after the kill whose throughput is >= 90% of the median window before
      it, and that every later window stays above 50% of; the longest single read is printed
      too).

Nothing here asserts; the numbers are for node/README.md. On a small machine all nodes share
the same cores, so (a) shows the cost of routing, not a scale-out gain.

Usage: /usr/bin/python3 tools/bench/bench_cluster.py [--build build] [--files 16] [--file-mb 4]
       [--threads 4] [--seconds 3] [--timeout-ms 1000]
"""
import argparse
import ctypes
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


class Options(ctypes.Structure):
    _fields_ = [("seeds", ctypes.c_char_p), ("timeout_ms", ctypes.c_int),
                ("metadata_ttl_ms", ctypes.c_int), ("no_ufs_fallback", ctypes.c_bool),
                ("cluster_key", ctypes.c_char_p)]


class Lib:
    def __init__(self, path):
        self.lib = ctypes.CDLL(path)
        self.lib.shoal_client_new.restype = ctypes.c_void_p
        self.lib.shoal_client_new.argtypes = [ctypes.POINTER(Options)]
        self.lib.shoal_pread.restype = ctypes.c_int64
        self.lib.shoal_pread.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p,
                                         ctypes.c_size_t, ctypes.c_uint64]
        self.lib.shoal_client_destroy.argtypes = [ctypes.POINTER(ctypes.c_void_p)]
        self.lib.shoal_last_error.restype = ctypes.c_char_p

    def client(self, seeds, timeout_ms):
        opts = Options(seeds.encode(), timeout_ms, 60000, True, None)
        c = self.lib.shoal_client_new(ctypes.byref(opts))
        if not c:
            raise RuntimeError(self.lib.shoal_last_error().decode())
        return ctypes.c_void_p(c)

    def destroy(self, client):
        self.lib.shoal_client_destroy(ctypes.byref(client))


class Node:
    def __init__(self, build, tmp, name, mount, seeds=None):
        self.port, self.gossip = free_port(), free_port()
        self.endpoint = f"127.0.0.1:{self.port}"
        argv = [os.path.join(build, "node", "shoald"), "--name", name,
                "--data-dir", os.path.join(tmp, name), "--capacity", "2G",
                "--listen", self.endpoint, "--gossip", f"127.0.0.1:{self.gossip}",
                "--mount", mount, "--threads", "2", "--fetch-threads", "4",
                "--probe-interval", "200ms", "--probe-timeout", "100ms", "--log-level", "warn"]
        if seeds:
            argv += ["--seeds", seeds]
        self.proc = subprocess.Popen(argv, stdout=open(os.path.join(tmp, name + ".log"), "wb"),
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        wait_port(self.port)

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def read_loop(lib, seeds, uris, size, seconds, threads, timeout_ms, log=None, stop=None):
    """Whole-file reads by `threads` threads for `seconds` (or until `stop` is set). Returns
    bytes read; appends (end time, bytes, duration) per read to `log` when given."""
    total = [0]
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def run(k):
        client = lib.client(seeds, timeout_ms)
        buf = ctypes.create_string_buffer(size)
        i = k
        while time.monotonic() < deadline and not (stop and stop.is_set()):
            uri = uris[i % len(uris)]
            i += 1
            t0 = time.monotonic()
            got = lib.lib.shoal_pread(client, uri, buf, size, 0)
            t1 = time.monotonic()
            if got != size:
                print(f"read failed: {got}", file=sys.stderr)
                continue
            with lock:
                total[0] += got
                if log is not None:
                    log.append((t1, got, t1 - t0))
        lib.destroy(client)

    ts = [threading.Thread(target=run, args=(k,)) for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return total[0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(REPO, "build"))
    ap.add_argument("--files", type=int, default=16)
    ap.add_argument("--file-mb", type=int, default=4)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=3)
    ap.add_argument("--timeout-ms", type=int, default=1000)
    args = ap.parse_args()
    lib = Lib(os.path.join(args.build, "client", "libshoal.so"))
    tmp = tempfile.mkdtemp(prefix="shoal-bench-cluster-")
    nodes = []
    try:
        data = os.path.join(tmp, "data")
        os.makedirs(data)
        size = args.file_mb << 20
        for i in range(args.files):
            with open(os.path.join(data, f"f{i}.bin"), "wb") as f:
                f.write(os.urandom(size))
        uris = [f"file://{data}/f{i}.bin".encode() for i in range(args.files)]
        mount = f"file://{data}/"

        # (a) one node
        single = Node(args.build, tmp, "single", mount)
        nodes.append(single)
        warm = lib.client(single.endpoint, args.timeout_ms)
        buf = ctypes.create_string_buffer(size)
        for u in uris:
            lib.lib.shoal_pread(warm, u, buf, size, 0)
        lib.destroy(warm)
        one = read_loop(lib, single.endpoint, uris, size, args.seconds, args.threads,
                        args.timeout_ms)
        single.stop()
        nodes.remove(single)

        # (a) three nodes
        first = Node(args.build, tmp, "n1", mount)
        nodes.append(first)
        for k in (2, 3):
            nodes.append(Node(args.build, tmp, f"n{k}", mount, seeds=f"127.0.0.1:{first.gossip}"))
        seeds = ",".join(n.endpoint for n in nodes)
        time.sleep(1.0)  # let every node see every other alive (probe 200 ms)
        warm = lib.client(seeds, args.timeout_ms)
        for u in uris:
            lib.lib.shoal_pread(warm, u, buf, size, 0)
        lib.destroy(warm)
        three = read_loop(lib, seeds, uris, size, args.seconds, args.threads, args.timeout_ms)
        mb1 = one / 1e6 / args.seconds
        mb3 = three / 1e6 / args.seconds
        print(f"cached whole-file reads, {args.threads} threads, {args.file_mb} MiB files:")
        print(f"  1 node : {mb1:8.0f} MB/s")
        print(f"  3 nodes: {mb3:8.0f} MB/s   ratio 3/1 = {mb3 / mb1:.2f}")

        # (b) kill -9 of an owner under load
        log = []
        stop = threading.Event()
        reader = threading.Thread(target=read_loop, args=(
            lib, seeds, uris, size, 60, args.threads, args.timeout_ms, log, stop))
        reader.start()
        time.sleep(2.0)
        victim = nodes[1]
        killed = time.monotonic()
        victim.proc.kill()
        victim.proc.wait()
        time.sleep(max(4.0, 3 * args.timeout_ms / 1000))
        stop.set()
        reader.join()
        window = 0.1
        before = [e for e in log if killed - 1.5 <= e[0] < killed]
        buckets = {}
        for t, n, _ in log:
            buckets[int((t - killed) // window)] = buckets.get(int((t - killed) // window), 0) + n
        pre = [buckets.get(b, 0) for b in range(int(-1.5 / window), 0)]
        full = statistics.median(pre) if pre else 0
        last = max(buckets) if buckets else 0
        recovered = None
        for b in range(0, last + 1):
            if buckets.get(b, 0) >= 0.9 * full and all(
                    buckets.get(c, 0) >= 0.5 * full for c in range(b, last)):
                recovered = b * window
                break
        slowest = max((d for t, _, d in log if t >= killed), default=0)
        print(f"kill -9 of a node under {args.threads} reader threads "
              f"(client timeout {args.timeout_ms} ms, {len(before)} reads in the 1.5 s before):")
        if recovered is None:
            print("  reads did not return to full speed within the run")
        else:
            print(f"  back to full speed {recovered * 1000:.0f} ms after the kill "
                  f"(100 ms windows, >= 90% of the median before)")
        print(f"  slowest read after the kill: {slowest * 1000:.0f} ms; "
              f"reads after the kill: {sum(1 for e in log if e[0] >= killed)}")
    finally:
        for n in nodes:
            n.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
