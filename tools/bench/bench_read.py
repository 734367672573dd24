#!/usr/bin/python3
"""bench_read.py - the read benchmark: measures, side by side in one run on loopback,

  (a) the machine's limits: iperf3 (1 MiB writes) and raw ZeroMQ (1 MiB messages, zmq_pump)
  (b) cached sequential 1 MiB reads through libshoal (bench_pread seq, depth 1 and 8)
  (c) cached random 64 KiB reads with 16 in flight (bench_pread rand: reads/s, p50, p99)
  (d) epoch 1 (cold) and epoch 2 (warm) through shoalfs, against reading nginx directly

and prints the ratios (b)/iperf3 (target >= 0.65), epoch1/direct (target >= 0.9) and (c)
reads/s (target >= 10k). Nothing here asserts: the numbers are for README-read.md.

Usage: /usr/bin/python3 tools/bench/bench_read.py [--build build] [--files 64] [--file-mb 4]
       [--seconds 5] [--json OUT] [--shoald PATH]
--shoald runs another node binary (an older commit's, for a before/after) against this build's
libshoal and helpers.
"""
import argparse
import http.client
import json
import os
import shutil
import signal
import socket
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


def direct_epoch(port, names):
    """Reads every file from nginx over one keep-alive connection in 1 MiB reads."""
    conn = http.client.HTTPConnection("127.0.0.1", port)
    buf = bytearray(1 << 20)
    total = 0
    start = time.perf_counter()
    for name in names:
        conn.request("GET", f"/data/{name}")
        resp = conn.getresponse()
        while n := resp.readinto(buf):
            total += n
    seconds = time.perf_counter() - start
    conn.close()
    return total, seconds


def shoalfs_epoch(fs, uris):
    buf = bytearray(8 << 20)
    total = 0
    start = time.perf_counter()
    for uri in uris:
        with fs.open(uri, "rb") as f:
            while n := f.readinto(buf):
                total += n
    return total, time.perf_counter() - start


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(REPO, "build"))
    ap.add_argument("--files", type=int, default=64)
    ap.add_argument("--file-mb", type=float, default=4)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--shoald", help="node binary to run (default: BUILD/node/shoald)")
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
        # dataset
        data = os.path.join(tmp, "data")
        os.makedirs(data)
        size = int(args.file_mb * (1 << 20))
        names = [f"f{i:04d}.bin" for i in range(args.files)]
        for name in names:
            with open(os.path.join(data, name), "wb") as f:
                f.write(os.urandom(size))
        total_mb = size * len(names) / 1e6
        print(f"dataset: {len(names)} files x {args.file_mb} MiB = {total_mb:.0f} MB")

        # (a) the machine's limits
        results["iperf3_MBps"] = iperf3(procs, tmp, int(args.seconds))
        print(f"(a) iperf3 loopback, 1 MiB writes:     {results['iperf3_MBps']:8.0f} MB/s")
        results["zmq_MBps"] = run_json([need["zmq_pump"], "3000", str(1 << 20)])["MBps"]
        print(f"(a) raw ZeroMQ, 1 MiB messages:        {results['zmq_MBps']:8.0f} MB/s")

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
                     "--capacity", str(4 * size * len(names) + (1 << 30)),
                     "--listen", f"tcp://127.0.0.1:{sport}", "--gossip",
                     f"tcp://127.0.0.1:{free_port()}", "--mount", origin,
                     "--log-level", "warn"], f"{tmp}/shoald.log")
        wait_port(sport, "shoald")
        seeds = f"127.0.0.1:{sport}"
        uris = [origin + n for n in names]
        fs = shoalfs.ShoalFileSystem(target_protocol="http", seeds=seeds)

        # (d) direct, then epoch 1 (cold cache), then epoch 2
        direct_epoch(nport, names[:2])  # connection and page cache warm-up for nginx
        b, s = direct_epoch(nport, names)
        results["direct_MBps"] = b / 1e6 / s
        b, s = shoalfs_epoch(fs, uris)
        results["epoch1_MBps"] = b / 1e6 / s
        b, s = shoalfs_epoch(fs, uris)
        results["epoch2_MBps"] = b / 1e6 / s
        print(f"(d) direct from nginx (Python, 1 conn): {results['direct_MBps']:8.0f} MB/s")
        print(f"(d) shoalfs epoch 1 (cold cache):       {results['epoch1_MBps']:8.0f} MB/s")
        print(f"(d) shoalfs epoch 2 (cached):           {results['epoch2_MBps']:8.0f} MB/s")

        # (b) cached sequential reads through libshoal
        for depth in (1, 8):
            r = run_json([need["bench_pread"], lib, seeds, "seq", str(depth), str(1 << 20)]
                         + uris)
            results[f"seq_depth{depth}_MBps"] = r["MBps"]
            print(f"(b) libshoal sequential 1 MiB, depth {depth}: {r['MBps']:8.0f} MB/s")

        # (c) cached random 64 KiB reads, 16 in flight
        r = run_json([need["bench_pread"], lib, seeds, "rand", "16", str(args.seconds),
                      "65536"] + uris, timeout=args.seconds + 120)
        results["rand64k"] = r
        print(f"(c) random 64 KiB x 16 threads: {r['reads_per_s']:.0f} reads/s, "
              f"p50 {r['p50_us']:.0f} us, p99 {r['p99_us']:.0f} us")

        # ratios
        results["ratio_seq_to_iperf3"] = results["seq_depth1_MBps"] / results["iperf3_MBps"]
        results["ratio_seq8_to_iperf3"] = results["seq_depth8_MBps"] / results["iperf3_MBps"]
        results["ratio_epoch1_to_direct"] = results["epoch1_MBps"] / results["direct_MBps"]
        print()
        print(f"(b)/iperf3         = {results['ratio_seq_to_iperf3']:.2f} "
              f"(depth 8: {results['ratio_seq8_to_iperf3']:.2f})   target >= 0.65")
        print(f"epoch1/direct      = {results['ratio_epoch1_to_direct']:.2f}   target >= 0.9")
        print(f"(c) reads/s        = {r['reads_per_s']:.0f}   target >= 10000")
        if args.json:
            with open(args.json, "w") as f:
                json.dump(results, f, indent=2)
    finally:
        procs.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
