#!/usr/bin/python3
"""bench_link.py - remote hits over a capped link (issue 11): a warm read through shoalfs from
another network namespace, against iperf3 over the same link, side by side in one run.

Two network namespaces joined by a veth pair (10.78.0.1 "server", 10.78.0.2 "reader"), each
end's egress capped with `tc qdisc ... tbf rate RATE` (default 10gbit; --rates takes a list,
e.g. 10gbit,2gbit). In the server namespace: nginx on its loopback serving the dataset (the
origin) and one shoald listening on 10.78.0.1 (--insecure, --metadata-ttl 3600) with a
--host-id of its own: a path-named AF_UNIX socket is reachable across network namespaces
(it is a file), so what makes this node remote to the reader, as another host would be, is
the host id in the view (the client short-circuits only members with its own host id) and an
unset SHOAL_LOCAL. In the reader namespace: a Python reader that reads the --mb MiB file
(64) through shoalfs `readinto` into a preallocated bytearray, warm (two untimed passes
first; the node's ufs_reads must not move during the timed ones), --reps times per round.
The baseline is `iperf3 -R -l 1M` (server to reader, the direction of the data) for --secs
seconds. Rounds (--rounds, 3) alternate which goes first; MB/s are medians, the ratio is the
median of the per-round ratios. `sc %` is the share of the reader's bytes that went
short-circuit (client counters): it must be 0 here, and the run fails otherwise.

Needs root (namespaces, tc), iproute2, iperf3 and nginx (tools/install-deps.sh); without root
it prints why and exits 0. The namespaces (and with them the veth pair) and every process are
removed on any exit: errors, Ctrl-C, SIGTERM.

Usage: sudo /usr/bin/python3 tools/bench/bench_link.py [--build build] [--rates 10gbit]
       [--mb 64] [--rounds 3] [--reps 10] [--secs 3] [--json OUT]
"""
import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
MIB = 1 << 20
SERVER_IP, READER_IP = "10.78.0.1", "10.78.0.2"
SHOAL_PORT, NGINX_PORT, IPERF_PORT = 7370, 7380, 7390


def run(argv, check=True, **kw):
    return subprocess.run(argv, check=check, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, **kw)


class Link:
    """Two namespaces and a veth pair; close() deletes them (idempotent)."""

    def __init__(self):
        tag = str(os.getpid())
        self.server, self.reader = f"sblink-s{tag}", f"sblink-r{tag}"
        self.dev_s, self.dev_r = f"sbl{tag}s"[:15], f"sbl{tag}r"[:15]
        self.made = []

    def open(self):
        for ns in (self.server, self.reader):
            run(["ip", "netns", "add", ns])
            self.made.append(ns)
            run(["ip", "-n", ns, "link", "set", "lo", "up"])
        run(["ip", "link", "add", self.dev_s, "netns", self.server, "type", "veth", "peer",
             "name", self.dev_r, "netns", self.reader])
        for ns, dev, ip in ((self.server, self.dev_s, SERVER_IP),
                            (self.reader, self.dev_r, READER_IP)):
            run(["ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", dev])
            run(["ip", "-n", ns, "link", "set", dev, "up"])

    def cap(self, rate):
        """tbf on both ends' egress; burst: 1 ms at the rate (at least 256 KiB)."""
        bits = parse_rate(rate)
        burst = max(256 << 10, bits // 8 // 1000)
        for ns, dev in ((self.server, self.dev_s), (self.reader, self.dev_r)):
            run(["tc", "-n", ns, "qdisc", "replace", "dev", dev, "root", "tbf", "rate", rate,
                 "burst", str(burst), "latency", "20ms"])

    def exec(self, ns):
        return ["ip", "netns", "exec", ns]

    def close(self):
        for ns in reversed(self.made):
            run(["ip", "netns", "del", ns], check=False)
        self.made = []


def parse_rate(rate):
    units = {"kbit": 10**3, "mbit": 10**6, "gbit": 10**9, "bit": 1}
    for suffix, mult in units.items():
        if rate.lower().endswith(suffix):
            return int(float(rate[: -len(suffix)]) * mult)
    raise ValueError(f"bad rate {rate!r} (e.g. 10gbit, 500mbit)")


class Procs:
    """Children in their own process groups, stopped on exit."""

    def __init__(self):
        self.procs = []

    def start(self, argv, log):
        p = subprocess.Popen(argv, stdout=open(log, "wb"), stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, start_new_session=True)
        self.procs.append(p)
        return p

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        self.procs = []


def wait_port(link, ns, host, port, what, proc, timeout=20):
    probe = ("import socket,sys\ntry:\n socket.create_connection((sys.argv[1], int(sys.argv[2])),"
             " timeout=0.3).close()\nexcept OSError:\n sys.exit(1)\n")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with status {proc.returncode}")
        if run(link.exec(ns) + [sys.executable, "-c", probe, host, str(port)],
               check=False).returncode == 0:
            return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not come up on {host}:{port}")


def start_nginx(link, procs, tmp, root):
    nd = os.path.join(tmp, "nginx")
    os.makedirs(nd)
    with open(os.path.join(nd, "nginx.conf"), "w") as f:
        f.write(f"user root; worker_processes 2; pid {nd}/nginx.pid;\n"
                f"error_log {nd}/error.log warn; events {{ worker_connections 512; }}\n"
                f"http {{ access_log off; sendfile on;\n"
                f"  client_body_temp_path {nd}/b; proxy_temp_path {nd}/p;\n"
                f"  fastcgi_temp_path {nd}/f; uwsgi_temp_path {nd}/u; scgi_temp_path {nd}/s;\n"
                f"  default_type application/octet-stream;\n"
                f"  server {{ listen 127.0.0.1:{NGINX_PORT}; root {root}; }} }}\n")
    p = procs.start(link.exec(link.server) +
                    ["/usr/sbin/nginx", "-p", nd, "-c", f"{nd}/nginx.conf", "-e",
                     f"{nd}/error.log", "-g", "daemon off;"], f"{nd}/stdout.log")
    wait_port(link, link.server, "127.0.0.1", NGINX_PORT, "nginx", p)


def start_shoald(link, procs, tmp, shoald):
    data = os.path.join(tmp, "node")
    argv = link.exec(link.server) + [
        shoald, "--name", "remote", "--host-id", "shoal-bench-link-remote-host",
        "--data-dir", data, "--capacity", "1G", "--listen", f"tcp://{SERVER_IP}:{SHOAL_PORT}",
        "--gossip", f"{SERVER_IP}:{SHOAL_PORT + 1}", "--insecure", "--metadata-ttl", "3600",
        "--mount", f"http://127.0.0.1:{NGINX_PORT}/"]
    p = procs.start(argv, os.path.join(tmp, "shoald.log"))
    wait_port(link, link.reader, SERVER_IP, SHOAL_PORT, "shoald", p)


def iperf(link, procs, tmp, secs):
    """MB/s of one `iperf3 -R -l 1M` run, server namespace to reader namespace."""
    server = procs.start(link.exec(link.server) +
                         ["iperf3", "-s", "-1", "-B", SERVER_IP, "-p", str(IPERF_PORT)],
                         os.path.join(tmp, "iperf3-server.log"))
    deadline = time.monotonic() + 10
    while True:
        out = run(link.exec(link.reader) +
                  ["iperf3", "-c", SERVER_IP, "-p", str(IPERF_PORT), "-R", "-l", "1M", "-t",
                   str(secs), "-J"], check=False)
        if out.returncode == 0:
            break
        if time.monotonic() > deadline or server.poll() is not None:
            raise RuntimeError(f"iperf3 failed: {out.stdout[-500:]}")
        time.sleep(0.1)
    server.wait(10)
    result = json.loads(out.stdout)
    return result["end"]["sum_received"]["bits_per_second"] / 8 / 1e6


def reader_main(args):
    """In the reader namespace: warm passes, then --reps timed readinto; one JSON line out."""
    sys.path.insert(0, os.path.join(REPO, "client", "python"))
    os.environ.pop("SHOAL_LOCAL", None)
    os.environ.pop("SHOAL_SHORT_CIRCUIT", None)
    import shoalfs
    from shoalfs import _lib
    import ctypes
    fs = shoalfs.ShoalFileSystem(target_protocol="http", seeds=f"{SERVER_IP}:{SHOAL_PORT}",
                                 skip_instance_cache=True)
    url = f"http://127.0.0.1:{NGINX_PORT}/big.bin"
    size = args.mb * MIB
    buf = bytearray(size)

    def counters():
        fn = fs._lib.shoal_client_counters_json
        fn.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p)]
        fn.restype = ctypes.c_int
        ptr = ctypes.c_void_p()
        if fn(fs._client.handle, ctypes.byref(ptr)) != 0:
            raise RuntimeError("shoal_client_counters_json failed")
        return _lib.take_json(fs._lib, ptr)

    def ufs_reads():
        stats = fs.stats() if hasattr(fs, "stats") else None
        if not stats:
            return None
        return sum(n.get("counters", {}).get("ufs_reads", 0) for n in stats.get("nodes", []))

    def once():
        with fs.open(url, "rb") as f:
            got = f.readinto(buf)
        if got != size:
            raise RuntimeError(f"read {got} of {size} bytes")

    for _ in range(2):
        once()
    before = counters()
    ufs_before = ufs_reads()
    times = []
    for _ in range(args.reps):
        t0 = time.perf_counter()
        once()
        times.append(time.perf_counter() - t0)
    after = counters()
    ufs_after = ufs_reads()
    moved = {k: after.get(k, 0) - before.get(k, 0)
             for k in ("bytes_short_circuit", "bytes_zmq", "bytes_ufs")}
    print(json.dumps({"mbps": [size / t / 1e6 for t in times], "counters": moved,
                      "ufs_reads": None if ufs_before is None else ufs_after - ufs_before}))


def shoal_round(link, args):
    out = run(link.exec(link.reader) +
              [sys.executable, os.path.abspath(__file__), "--reader", "--mb", str(args.mb),
               "--reps", str(args.reps)], check=False)
    if out.returncode != 0:
        raise RuntimeError(f"the reader failed:\n{out.stdout[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(REPO, "build"))
    ap.add_argument("--rates", default="10gbit", help="tbf rates, comma separated (10gbit)")
    ap.add_argument("--mb", type=int, default=64, help="file size, MiB (64)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--reps", type=int, default=10, help="timed reads per round (10)")
    ap.add_argument("--secs", type=int, default=3, help="iperf3 seconds per round (3)")
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--reader", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.reader:
        return reader_main(args)

    if os.geteuid() != 0:
        print("bench_link: skipped: needs root (network namespaces, tc); "
              "run it as: sudo /usr/bin/python3 tools/bench/bench_link.py")
        return 0
    missing = [t for t in ("ip", "tc", "iperf3") if shutil.which(t) is None]
    if not os.path.exists("/usr/sbin/nginx"):
        missing.append("nginx")
    if missing:
        print(f"bench_link: skipped: missing {', '.join(missing)} (tools/install-deps.sh)")
        return 0
    build = os.path.abspath(args.build)
    shoald = os.path.join(build, "node", "shoald")
    libshoal = os.path.join(build, "client", "libshoal.so")
    for path in (shoald, libshoal):
        if not os.path.exists(path):
            sys.exit(f"bench_link: missing {path} (build with cmake first)")
    os.environ["SHOAL_LIBRARY"] = libshoal
    rates = [r.strip() for r in args.rates.split(",") if r.strip()]
    for r in rates:
        parse_rate(r)

    link, procs = Link(), Procs()
    tmp = tempfile.mkdtemp(prefix="bench_link.")

    def on_signal(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    rows = []
    try:
        root = os.path.join(tmp, "data")
        os.makedirs(root)
        with open(os.path.join(root, "big.bin"), "wb") as f:
            for _ in range(args.mb):
                f.write(os.urandom(MIB))
        link.open()
        start_nginx(link, procs, tmp, root)
        start_shoald(link, procs, tmp, shoald)
        for rate in rates:
            link.cap(rate)
            shoal_mbps, iperf_mbps, ratios, sc, zmq, ufs = [], [], [], 0, 0, 0
            for rnd in range(args.rounds):
                if rnd % 2 == 0:
                    ip = iperf(link, procs, tmp, args.secs)
                    res = shoal_round(link, args)
                else:
                    res = shoal_round(link, args)
                    ip = iperf(link, procs, tmp, args.secs)
                sh = statistics.median(res["mbps"])
                shoal_mbps.append(sh)
                iperf_mbps.append(ip)
                ratios.append(sh / ip)
                sc += res["counters"]["bytes_short_circuit"]
                zmq += res["counters"]["bytes_zmq"]
                ufs += res["counters"]["bytes_ufs"]
                if res["ufs_reads"]:
                    raise RuntimeError(f"the node read the origin {res['ufs_reads']} times "
                                       "during timed reads: not warm")
            total = sc + zmq + ufs
            rows.append({"rate": rate, "shoal_mbps": statistics.median(shoal_mbps),
                         "iperf3_mbps": statistics.median(iperf_mbps),
                         "ratio": statistics.median(ratios),
                         "sc_pct": 100.0 * sc / total if total else 0.0,
                         "ufs_pct": 100.0 * ufs / total if total else 0.0,
                         "rounds": {"shoal": shoal_mbps, "iperf3": iperf_mbps}})
    except KeyboardInterrupt:
        print("bench_link: interrupted", file=sys.stderr)
        return 130
    finally:
        procs.stop()
        link.close()
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"warm {args.mb} MiB readinto through shoalfs, reader and node in two network "
          f"namespaces over a veth with tbf; medians of {args.rounds} rounds")
    print(f"{'rate':>8} {'shoal MB/s':>11} {'iperf3 MB/s':>12} {'ratio':>6} {'sc %':>5} "
          f"{'ufs %':>6}")
    for r in rows:
        print(f"{r['rate']:>8} {r['shoal_mbps']:>11.0f} {r['iperf3_mbps']:>12.0f} "
              f"{r['ratio']:>6.2f} {r['sc_pct']:>5.1f} {r['ufs_pct']:>6.1f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "rows": rows}, f, indent=1)
    bad = [r["rate"] for r in rows if r["sc_pct"] > 0 or r["ufs_pct"] > 0]
    if bad:
        print(f"bench_link: bytes went short-circuit or to the UFS at {', '.join(bad)}: the "
              "reader was not remote", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
