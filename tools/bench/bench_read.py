#!/usr/bin/python3
"""bench_read.py - the read benchmark: measures, side by side in one run,

  (a) the machine's limits: iperf3 (1 MiB writes) and raw ZeroMQ (1 MiB messages, zmq_pump)
      over loopback
  (b) cached sequential 1 MiB reads through libshoal (bench_pread seq, depth 1 and 8),
      interleaved with (a) over --rounds-b short rounds: per-round ratios and their median
  (c) cached random 64 KiB reads with 16 in flight (bench_pread rand: reads/s, p50, p99)
  (d) epochs as a training job reads them: --readers forked reader processes (DataLoader
      workers; default 4, and 1), reader r taking files r, r + readers, ... in order, each
      reading whole files into one buffer: directly from the origin (nginx; http.client, one
      reused keep-alive connection per reader, readinto) vs epoch 1 (cold cache) and epoch 2
      (cached) through ShoalFileSystem.open().readinto. Same files, same order, same reader
      count; each (origin, round, reader count) gets a cold node, so every epoch 1 is cold.
      Also CPU per MB of each side (readers, nginx, node; for epoch 1 also the node's store
      work after the epoch), per-file times and the node's miss latency histogram.
      Two origins:
        remote (deployment-like): nginx in a network namespace of its own, reached over a veth
          pair rate-limited with tc tbf at --origin-rate on both ends; the direct readers and
          the node both read it over that link, as training hosts read S3/Azure/HF. The link
          is checked with iperf3 first.
        loopback: nginx on 127.0.0.1, on the same 2 vCPUs: CPU per byte decides (the
          CPU-bound figure).
      --origin remote (default) runs both, --origin local only the loopback one.

and prints the ratios (b)/iperf3 (target >= 0.65), epoch1/direct (target >= 0.9; the remote
origin's figure is the deployment-like one) and (c) reads/s (target >= 10k). Nothing here
asserts: the numbers are for README-read.md.

Usage: /usr/bin/python3 tools/bench/bench_read.py [--build build] [--files 64] [--file-mb 4]
       [--seconds 5] [--json OUT] [--shoald PATH] [--readers 4] [--rounds 1] [--only-d]
       [--origin remote|local] [--origin-rate 200] [--rounds-b 5] [--b-mb 1024]
--shoald runs another node binary (an older commit's, for a before/after) against this build's
libshoal and helpers. --rounds repeats (d) and reports medians; --only-d skips (a)-(c).
The network namespace, veth pair, qdiscs and every process are removed on any exit (errors,
Ctrl-C, SIGTERM); namespaces left by a run that was SIGKILLed are removed by the next run.
"""
import argparse
import http.client
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
NS_PREFIX = "shoalb"          # network namespaces of this benchmark: shoalb<pid of the run>
ORIGIN_PORT = 8080            # nginx's port inside the namespace (the namespace is ours alone)
IPERF_PORT = 5201             # iperf3's port inside the namespace


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(host, port, what, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not come up on {host}:{port}")


def wait_log(proc, log, text, what, timeout=10):
    """Waits for `text` in a child's log (iperf3 -s: a probe connection would be taken for a
    test client)."""
    deadline = time.monotonic() + timeout
    while text.encode() not in open(log, "rb").read():
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError(f"{what} did not start: " + open(log).read())
        time.sleep(0.05)


class Procs:
    """Children in their own process groups, stopped by stop() or on exit."""

    def __init__(self):
        self.procs = []

    def start(self, argv, log, env=None):
        p = subprocess.Popen(argv, stdout=open(log, "wb"), stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, start_new_session=True, env=env)
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
                p.wait(5)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait()
            if p in self.procs:
                self.procs.remove(p)


def run_json(argv, timeout=120):
    out = subprocess.run(argv, check=True, capture_output=True, timeout=timeout, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------ the origin link


def tbf_params(rate_Bps):
    """tc tbf parameters for a link of `rate_Bps` bytes per second (tbf counts every byte of
    a packet from the IP header on, so TCP payload gets ~1448/1514 of it at MTU 1500).

    burst (the bucket): the bytes that may leave at once. At least two 64 KiB GSO packets
    (veth hands tbf TSO/GSO packets of up to 64 KiB; a packet larger than the bucket would be
    split or dropped), and at least 1 ms of traffic, so the qdisc watchdog's timer granularity
    cannot cap the rate. 1 ms at 200 MB/s = 200 kB: 0.1 % of a 1 s epoch at full rate.
    limit (the queue): burst + 5 ms at the rate. A drop-tail queue shorter than TCP's
    window loses packets and leaves the link idle while TCP recovers; with the veth pair's
    ~50 us base RTT, 5 ms of queue keeps 1-4 flows at full rate (iperf3 checks it) and is a
    queueing delay of the order of a real host's path to a regional object store."""
    burst = max(int(rate_Bps / 1000), 2 * 65536)
    limit = burst + int(rate_Bps * 0.005)
    return burst, limit


def _run(argv, check=True):
    return subprocess.run(argv, capture_output=True, text=True, check=check)


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


class OriginLink:
    """A test host for the origin: network namespace shoalb<pid> with one end of a veth pair
    (10.213.a.b+2/30), the other end here (10.213.a.b+1/30), tbf at `rate_Bps` on the egress
    of both ends. up() raises OSError with the command's message when it cannot be built;
    down() removes everything and may be called any number of times."""

    def __init__(self, rate_Bps):
        pid = os.getpid()
        self.ns = f"{NS_PREFIX}{pid}"
        self.host_if, self.origin_if = f"sbh{pid}", f"sbo{pid}"
        self.rate_Bps = rate_Bps
        self.burst, self.limit = tbf_params(rate_Bps)
        used = _run(["ip", "-o", "-4", "addr", "show"], check=False).stdout
        # one of the 16384 /30s of 10.213.0.0/16, chosen by pid, skipping any in use here
        for step in range(16384):
            base = ((pid + step) % 16384) * 4
            prefix = f"10.213.{base >> 8}."
            self.host_ip, self.origin_ip = f"{prefix}{(base & 255) + 1}", \
                f"{prefix}{(base & 255) + 2}"
            if f" {self.host_ip}/" not in used and f" {self.origin_ip}/" not in used:
                break
        self.created = False

    def exec_argv(self, argv):
        """argv run inside the namespace (ip netns exec execs it: the pid is the program's)."""
        return ["ip", "netns", "exec", self.ns] + argv

    def up(self):
        tbf = ["tbf", "rate", f"{int(self.rate_Bps * 8)}bit", "burst", str(self.burst),
               "limit", str(self.limit)]
        steps = [["ip", "netns", "add", self.ns]]
        self.created = True
        steps += [
            ["ip", "link", "add", self.host_if, "type", "veth", "peer", "name", self.origin_if],
            ["ip", "link", "set", self.origin_if, "netns", self.ns],
            ["ip", "addr", "add", f"{self.host_ip}/30", "dev", self.host_if],
            ["ip", "link", "set", self.host_if, "up"],
            ["ip", "-n", self.ns, "addr", "add", f"{self.origin_ip}/30", "dev", self.origin_if],
            ["ip", "-n", self.ns, "link", "set", self.origin_if, "up"],
            ["ip", "-n", self.ns, "link", "set", "lo", "up"],
            ["tc", "qdisc", "add", "dev", self.host_if, "root"] + tbf,
            ["tc", "-n", self.ns, "qdisc", "add", "dev", self.origin_if, "root"] + tbf,
        ]
        for argv in steps:
            r = _run(argv, check=False)
            if r.returncode != 0:
                raise OSError(f"{' '.join(argv)}: {(r.stderr or r.stdout).strip()}")

    def qdisc_stats(self):
        """(bytes sent, drops) of the origin end's tbf (origin -> host)."""
        out = _run(["tc", "-n", self.ns, "-s", "qdisc", "show", "dev", self.origin_if],
                   check=False).stdout
        m = re.search(r"Sent (\d+) bytes \d+ pkt \(dropped (\d+)", out)
        return (int(m.group(1)), int(m.group(2))) if m else (0, 0)

    def down(self):
        if not self.created:
            return
        remove_namespace(self.ns, self.host_if)
        self.created = False


def remove_namespace(ns, host_if=None):
    """Kills what still runs in namespace `ns` (only this benchmark's processes run there),
    deletes the host end of its veth pair (which deletes both ends and their qdiscs) and the
    namespace."""
    pids = _run(["ip", "netns", "pids", ns], check=False).stdout.split()
    for pid in pids:
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass
    for _ in range(50):
        if not _run(["ip", "netns", "pids", ns], check=False).stdout.split():
            break
        time.sleep(0.05)
    if host_if:
        _run(["ip", "link", "del", host_if], check=False)
    _run(["ip", "netns", "del", ns], check=False)


def remove_stale_namespaces():
    """Removes namespaces shoalb<pid> left by a run of this benchmark that could not clean up
    (SIGKILL) and whose process is gone."""
    out = _run(["ip", "netns", "list"], check=False).stdout
    for line in out.splitlines():
        m = re.match(rf"{NS_PREFIX}(\d+)\b", line.strip())
        if m and int(m.group(1)) != os.getpid() and not _pid_alive(int(m.group(1))):
            print(f"removing namespace {m.group(0)} left by an earlier run", flush=True)
            remove_namespace(m.group(0), f"sbh{m.group(1)}")


# ------------------------------------------------------------------------ iperf3


class Iperf3Server:
    """iperf3 -s (inside the origin's namespace when argv_prefix says so)."""

    def __init__(self, procs, log, host="127.0.0.1", port=None, argv_prefix=()):
        self.host, self.port = host, port or free_port()
        self.proc = procs.start(list(argv_prefix) + ["iperf3", "-s", "--forceflush", "-p",
                                                     str(self.port)], log)
        wait_log(self.proc, log, "Server listening", "iperf3 -s")

    def measure(self, size=None, seconds=None, reverse=False):
        """MB/s received: -n `size` bytes or -t `seconds`, 1 MiB writes; reverse: the server
        sends."""
        argv = ["iperf3", "-c", self.host, "-p", str(self.port), "-l", "1M", "-J"]
        argv += ["-n", str(size)] if size else ["-t", str(seconds)]
        if reverse:
            argv.append("-R")
        out = subprocess.run(argv, check=True, capture_output=True, text=True, timeout=120)
        return json.loads(out.stdout)["end"]["sum_received"]["bits_per_second"] / 8 / 1e6


# ------------------------------------------------------------------------ (d) readers


def _reader_direct(origin, paths, buf, times):
    """One reader of a direct epoch: whole-file GETs over one reused keep-alive connection,
    each body read with readinto straight into `buf` (as large as a file)."""
    conn = http.client.HTTPConnection(*origin)
    view = memoryview(buf)
    total = 0
    for path in paths:
        t0 = time.perf_counter()
        conn.request("GET", path)
        resp = conn.getresponse()
        n = 0
        while k := resp.readinto(view[n:]):
            n += k
        total += n
        times.append((0.0, time.perf_counter() - t0))
    conn.close()
    return total


def _reader_shoalfs(fs, uris, buf, times):
    """One reader of a shoalfs epoch: open (STAT), one readinto of the whole file into
    `buf`."""
    total = 0
    for uri in uris:
        t0 = time.perf_counter()
        with fs.open(uri, "rb") as f:
            t1 = time.perf_counter()
            while n := f.readinto(buf):
                total += n
        times.append((t1 - t0, time.perf_counter() - t1))
    return total


DIRECT, SHOALFS = "direct", "shoalfs"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _proc_cpu(pid):
    """(user + system seconds of every thread, parent pid) of a live process."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS, int(fields[1])


def cpu_seconds(node_pid, nginx_pid):
    """CPU seconds used so far by: reader processes (waited-for children of this process:
    epoch() joins them), nginx's workers, and the node (all its threads, its store's
    included)."""
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
    files in order, reports (bytes, start, end, error, per-file times) on the shared clock."""
    try:
        buf = bytearray(max(file_size, 1))
        times = []
        barrier.wait()
        start = time.perf_counter()
        if kind == DIRECT:
            total = _reader_direct(target, items, buf, times)
        else:
            total = _reader_shoalfs(target, items, buf, times)
        results.put((total, start, time.perf_counter(), None, times))
    except BaseException as e:  # noqa: BLE001 - reported to the parent, which raises
        results.put((0, 0.0, 0.0, repr(e), []))


def epoch(kind, target, items, file_size, readers):
    """Reads every item once with `readers` forked processes; reader r takes items r,
    r + readers, ... in order (what a DataLoader with `readers` workers does with a map-style
    dataset). Returns (bytes, seconds from the first reader's start to the last one's end,
    per-file (open seconds, read seconds))."""
    import multiprocessing
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(readers)
    results = ctx.Queue()
    procs = [ctx.Process(target=_reader_main, args=(kind, target, items[r::readers], file_size,
                                                    barrier, results), daemon=True)
             for r in range(readers)]
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
    times = [t for g in got for t in g[4]]
    return total, max(g[2] for g in got) - min(g[1] for g in got), times


def node_numbers(fs):
    """The node's counters and histograms (name -> list of (upper bound us, count))."""
    node = fs.stats()["nodes"][0]
    hists = {}
    for name, h in node.get("latency", {}).items():
        hists[name] = list(zip(h["bounds"], h["counts"]))
    return node.get("counters", {}), hists


def hist_delta_summary(before, after, name):
    """(count, p50 us, p90 us) of what histogram `name` gained between two snapshots; the
    percentiles are the upper bounds of their log2 buckets (so within a factor of 2)."""
    b = dict(before.get(name, []))
    delta = [(bound, count - b.get(bound, 0)) for bound, count in after.get(name, [])]
    total = sum(c for _, c in delta)
    if not total:
        return 0, 0, 0
    out = []
    for q in (0.5, 0.9):
        seen = 0
        for bound, c in delta:
            seen += c
            if seen >= q * total:
                out.append(bound)
                break
    return total, out[0], out[1]


# ------------------------------------------------------------------------ sections


def start_nginx(procs, tmp, root, listen, argv_prefix=()):
    nd = os.path.join(tmp, f"nginx-{listen.replace(':', '-')}")
    os.makedirs(nd)
    with open(os.path.join(nd, "nginx.conf"), "w") as f:
        f.write(f"user root; worker_processes 2; pid {nd}/nginx.pid;\n"
                f"error_log {nd}/error.log warn; events {{ worker_connections 512; }}\n"
                f"http {{ access_log {nd}/access.log; sendfile on;\n"
                f"  client_body_temp_path {nd}/b; proxy_temp_path {nd}/p;\n"
                f"  fastcgi_temp_path {nd}/f; uwsgi_temp_path {nd}/u; scgi_temp_path {nd}/s;\n"
                f"  default_type application/octet-stream;\n"
                f"  server {{ listen {listen}; root {root}; }} }}\n")
    return procs.start(list(argv_prefix) + ["/usr/sbin/nginx", "-p", nd, "-c",
                                            f"{nd}/nginx.conf", "-e", f"{nd}/error.log", "-g",
                                            "daemon off;"], f"{nd}/stdout.log")


def start_node(procs, need, tmp, name, mount, capacity):
    sport = free_port()
    node = procs.start([need["shoald"], "--name", name, "--data-dir", f"{tmp}/{name}",
                        "--capacity", str(capacity), "--listen", f"tcp://127.0.0.1:{sport}",
                        "--gossip", f"tcp://127.0.0.1:{free_port()}", "--mount", mount,
                        "--log-level", "warn"], f"{tmp}/{name}.log")
    wait_port("127.0.0.1", sport, "shoald")
    return node, f"127.0.0.1:{sport}"


def run_d(label, origin, mount, nginx_pid, node_pid, fs, sets, reader_counts, rounds, size,
          link=None):
    """(d) for one origin: per round and reader count, direct, then epoch 1 (cold cache), then
    epoch 2, same files in the same order, each reader a forked process reading whole files
    into one buffer; rounds interleave the three so that drift of the machine hits all of
    them. Returns {readers: [row per round]}."""
    names0 = sets[(0, reader_counts[0])]
    epoch(DIRECT, origin, ["/" + n for n in names0[:2]], size, 1)  # warm-up (page cache, TCP)
    rows = {r: [] for r in reader_counts}
    for k in range(rounds):
        for readers in reader_counts:
            paths = ["/" + n for n in sets[(k, readers)]]
            set_uris = [mount + n for n in sets[(k, readers)]]
            row = {}
            for key, kind, target, items in (("direct", DIRECT, origin, paths),
                                             ("epoch1", SHOALFS, fs, set_uris),
                                             ("epoch2", SHOALFS, fs, set_uris)):
                c0 = cpu_seconds(node_pid, nginx_pid)
                n0 = node_numbers(fs)
                q0 = link.qdisc_stats() if link else None
                b, s, times = epoch(kind, target, items, size, readers)
                c1 = cpu_seconds(node_pid, nginx_pid)
                n1 = node_numbers(fs)
                row[f"{key}_MBps"] = b / 1e6 / s
                row[f"{key}_seconds"] = s
                row[f"{key}_open_ms_p50"] = 1e3 * statistics.median(t[0] for t in times)
                row[f"{key}_read_ms_p50"] = 1e3 * statistics.median(t[1] for t in times)
                row[f"{key}_file_ms_p50"] = 1e3 * statistics.median(t[0] + t[1] for t in times)
                if link:
                    q1 = link.qdisc_stats()
                    row[f"{key}_link_MB"] = (q1[0] - q0[0]) / 1e6
                    row[f"{key}_link_drops"] = q1[1] - q0[1]
                for who in c0:
                    row[f"{key}_cpu_ms_per_MB_{who}"] = 1e3 * (c1[who] - c0[who]) / (b / 1e6)
                if kind == SHOALFS:
                    for h in ("read_miss_latency_us", "read_hit_latency_us", "stat_latency_us"):
                        cnt, p50, p90 = hist_delta_summary(n0[1], n1[1], h)
                        row[f"{key}_{h}"] = {"count": cnt, "p50_le": p50, "p90_le": p90}
                    for c in ("ufs_reads", "ufs_requests", "meta_misses", "page_misses"):
                        row[f"{key}_{c}"] = n1[0].get(c, 0) - n0[0].get(c, 0)
                if key == "epoch1":  # the pages stored after the epoch are its work too
                    settle_node(fs, node_pid)
                    c2 = cpu_seconds(node_pid, nginx_pid)
                    row["epoch1_cpu_ms_per_MB_node_after"] = \
                        1e3 * (c2["node"] - c1["node"]) / (b / 1e6)
            for key in ("direct", "epoch1", "epoch2"):
                row[f"{key}_cpu_ms_per_MB"] = sum(
                    v for x, v in row.items() if x.startswith(f"{key}_cpu_ms_per_MB_"))
            row["ratio_cpu_direct_to_epoch1"] = \
                row["direct_cpu_ms_per_MB"] / row["epoch1_cpu_ms_per_MB"]
            row["ratio_epoch1_to_direct"] = row["epoch1_MBps"] / row["direct_MBps"]
            row["ratio_epoch2_to_direct"] = row["epoch2_MBps"] / row["direct_MBps"]
            rows[readers].append(row)
            print_d_row(label, k, readers, row)
    return rows


def print_d_row(label, k, readers, row):
    print(f"(d) {label} round {k} readers={readers}: direct {row['direct_MBps']:6.0f} MB/s, "
          f"shoalfs epoch 1 (cold) {row['epoch1_MBps']:6.0f} MB/s, epoch 2 (cached) "
          f"{row['epoch2_MBps']:6.0f} MB/s; epoch1/direct {row['ratio_epoch1_to_direct']:.2f}, "
          f"epoch2/direct {row['ratio_epoch2_to_direct']:.2f}", flush=True)
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
    miss, stat = row["epoch1_read_miss_latency_us"], row["epoch1_stat_latency_us"]
    print(f"    per file, median ms: direct GET {row['direct_file_ms_p50']:.1f}; epoch 1 open "
          f"(STAT) {row['epoch1_open_ms_p50']:.2f} + readinto {row['epoch1_read_ms_p50']:.1f}; "
          f"epoch 2 open {row['epoch2_open_ms_p50']:.2f} + readinto "
          f"{row['epoch2_read_ms_p50']:.1f}. Node, epoch 1: {miss['count']} misses "
          f"(read_miss_latency_us p50 <= {miss['p50_le'] / 1e3:.1f} ms, p90 <= "
          f"{miss['p90_le'] / 1e3:.1f} ms), {stat['count']} STATs (p50 <= "
          f"{stat['p50_le'] / 1e3:.2f} ms), {row['epoch1_ufs_reads']} UFS reads", flush=True)
    if "direct_link_MB" in row:
        print(f"    origin link (origin -> host): direct {row['direct_link_MB']:.0f} MB, "
              f"epoch 1 {row['epoch1_link_MB']:.0f} MB, epoch 2 {row['epoch2_link_MB']:.0f} MB "
              f"(tbf drops {row['direct_link_drops']}/{row['epoch1_link_drops']}/"
              f"{row['epoch2_link_drops']})", flush=True)


def summarize_d(label, rows, rounds):
    out = {}
    for readers, rs in rows.items():
        med = {key: statistics.median(row[key] for row in rs)
               for key in rs[0] if isinstance(rs[0][key], (int, float))}
        out[f"readers{readers}"] = dict(med, rounds=rs)
        if rounds > 1:
            ratios = sorted(row["ratio_epoch1_to_direct"] for row in rs)
            print(f"(d) {label} readers={readers}, median of {rounds}: direct "
                  f"{med['direct_MBps']:6.0f} MB/s, epoch 1 {med['epoch1_MBps']:6.0f} MB/s, "
                  f"epoch 2 {med['epoch2_MBps']:6.0f} MB/s; epoch1/direct "
                  f"{med['ratio_epoch1_to_direct']:.2f} (range {ratios[0]:.2f}-"
                  f"{ratios[-1]:.2f}); direct/epoch1 CPU per MB "
                  f"{med['ratio_cpu_direct_to_epoch1']:.2f}", flush=True)
    return out


def limits_and_cached(procs, tmp, need, lib, seeds, uris, size, args, results):
    """(a) and (b) interleaved over --rounds-b rounds of ~--b-mb MB each: iperf3 loopback,
    raw ZeroMQ, libshoal sequential depth 1 and depth 8 (the cached files, repeated to reach
    the volume); then (c)."""
    server = Iperf3Server(procs, os.path.join(tmp, "iperf3-lo.log"))
    volume = args.b_mb * 1000 * 1000
    reps = max(1, round(volume / (size * len(uris))))
    seq_uris = uris * reps
    rounds = []
    for k in range(args.rounds_b):
        r = {"iperf3_MBps": server.measure(size=volume),
             "zmq_MBps": run_json([need["zmq_pump"], str(max(1, volume >> 20)),
                                   str(1 << 20)])["MBps"]}
        for depth in (1, 8):
            r[f"seq_depth{depth}_MBps"] = run_json(
                [need["bench_pread"], lib, seeds, "seq", str(depth), str(1 << 20)] + seq_uris,
                timeout=300)["MBps"]
        r["ratio_seq_to_iperf3"] = r["seq_depth1_MBps"] / r["iperf3_MBps"]
        r["ratio_seq8_to_iperf3"] = r["seq_depth8_MBps"] / r["iperf3_MBps"]
        r["ratio_seq_to_zmq"] = r["seq_depth1_MBps"] / r["zmq_MBps"]
        rounds.append(r)
        print(f"(a)+(b) round {k}: iperf3 {r['iperf3_MBps']:5.0f}, ZeroMQ {r['zmq_MBps']:5.0f}, "
              f"libshoal seq depth 1 {r['seq_depth1_MBps']:5.0f}, depth 8 "
              f"{r['seq_depth8_MBps']:5.0f} MB/s; (b)/iperf3 {r['ratio_seq_to_iperf3']:.2f} "
              f"(depth 8 {r['ratio_seq8_to_iperf3']:.2f}), (b)/ZeroMQ "
              f"{r['ratio_seq_to_zmq']:.2f}", flush=True)
    procs.stop([server.proc])
    for key in rounds[0]:
        results[key] = statistics.median(r[key] for r in rounds)
    results["rounds_b"] = rounds
    print(f"(a) median of {args.rounds_b}: iperf3 loopback {results['iperf3_MBps']:.0f} MB/s, "
          f"raw ZeroMQ {results['zmq_MBps']:.0f} MB/s ({volume / 1e6:.0f} MB each)")
    print(f"(b) median of {args.rounds_b}: libshoal sequential 1 MiB depth 1 "
          f"{results['seq_depth1_MBps']:.0f} MB/s, depth 8 {results['seq_depth8_MBps']:.0f} "
          f"MB/s; (b)/iperf3 per round "
          + " ".join(f"{r['ratio_seq_to_iperf3']:.2f}" for r in rounds)
          + f", median {results['ratio_seq_to_iperf3']:.2f}", flush=True)
    r = run_json([need["bench_pread"], lib, seeds, "rand", "16", str(args.seconds), "65536"]
                 + uris, timeout=args.seconds + 120)
    results["rand64k"] = r
    print(f"(c) random 64 KiB x 16 threads: {r['reads_per_s']:.0f} reads/s, "
          f"p50 {r['p50_us']:.0f} us, p99 {r['p99_us']:.0f} us", flush=True)


def remote_section(procs, tmp, data, need, shoalfs, args, sets, reader_counts, size,
                   capacity, cleanup):
    """(d) with the origin behind a rate-limited link. Returns the summary, or None when the
    namespace cannot be built."""
    link = OriginLink(args.origin_rate * 1e6)
    cleanup.append(link.down)
    try:
        link.up()
    except OSError as e:
        link.down()
        print(f"(d) remote origin: cannot build the test host ({e}); it needs root (ip netns, "
              f"veth, tc). Running the loopback origin only.", flush=True)
        return None
    mine = []
    try:
        server = Iperf3Server(procs, os.path.join(tmp, "iperf3-ns.log"), host=link.origin_ip,
                              port=IPERF_PORT, argv_prefix=link.exec_argv([]))
        mine.append(server.proc)
        link_MBps = server.measure(seconds=3, reverse=True)
        procs.stop([server.proc])
        print(f"origin link: {link_MBps:.0f} MB/s (tbf {args.origin_rate:g} MB/s, burst "
              f"{link.burst} B, limit {link.limit} B; namespace {link.ns}, "
              f"{link.host_ip} -> {link.origin_ip})", flush=True)
        nginx = start_nginx(procs, tmp, data, f"{link.origin_ip}:{ORIGIN_PORT}",
                            link.exec_argv([]))
        mine.append(nginx)
        wait_port(link.origin_ip, ORIGIN_PORT, "nginx (in the namespace)")
        mount = f"http://{link.origin_ip}:{ORIGIN_PORT}/"
        node, seeds = start_node(procs, need, tmp, "node-remote", mount, capacity)
        mine.append(node)
        fs = shoalfs.ShoalFileSystem(target_protocol="http", seeds=seeds)
        rows = run_d("remote", (link.origin_ip, ORIGIN_PORT), mount, nginx.pid, node.pid, fs,
                     sets, reader_counts, args.rounds, size, link)
        out = summarize_d("remote", rows, args.rounds)
        out.update(link_MBps=link_MBps, rate_MBps=args.origin_rate, burst=link.burst,
                   limit=link.limit)
        return out
    finally:
        procs.stop(mine)
        link.down()


def local_section(procs, tmp, data, need, shoalfs, args, sets, reader_counts, size, capacity,
                  lib, results):
    """(d) with the origin on loopback (CPU-bound), then (a)-(c) on the same node (its cache
    holds every file by then)."""
    port = free_port()
    nginx = start_nginx(procs, tmp, data, f"127.0.0.1:{port}")
    wait_port("127.0.0.1", port, "nginx")
    mount = f"http://127.0.0.1:{port}/"
    node, seeds = start_node(procs, need, tmp, "node-local", mount, capacity)
    fs = shoalfs.ShoalFileSystem(target_protocol="http", seeds=seeds)
    out = None
    if not args.skip_loopback_d:
        rows = run_d("loopback", ("127.0.0.1", port), mount, nginx.pid, node.pid, fs, sets,
                     reader_counts, args.rounds, size)
        out = summarize_d("loopback", rows, args.rounds)
    if not args.only_d:
        uris = [mount + n for n in sets[(0, args.readers)]]
        if args.skip_loopback_d:  # fill the cache first
            epoch(SHOALFS, fs, uris, size, 1)
        limits_and_cached(procs, tmp, need, lib, seeds, uris, size, args, results)
    procs.stop([node, nginx])
    return out


def print_summary(args, results, reader_counts):
    print()
    if not args.only_d:
        rb = results["rounds_b"]
        print(f"(b)/iperf3         = {results['ratio_seq_to_iperf3']:.2f} median of {len(rb)} "
              f"(range {min(r['ratio_seq_to_iperf3'] for r in rb):.2f}-"
              f"{max(r['ratio_seq_to_iperf3'] for r in rb):.2f}; depth 8: "
              f"{results['ratio_seq8_to_iperf3']:.2f}; (b)/ZeroMQ "
              f"{results['ratio_seq_to_zmq']:.2f})   target >= 0.65")

    def ratios(d):
        s = f"{d[f'readers{args.readers}']['ratio_epoch1_to_direct']:.2f} (readers={args.readers}"
        if args.readers != 1:
            s += f"; readers=1: {d['readers1']['ratio_epoch1_to_direct']:.2f}"
        return s + ")"

    remote = results.get("remote")
    if remote:
        print(f"epoch1/direct, remote origin ({remote['rate_MBps']:g} MB/s link, measured "
              f"{remote['link_MBps']:.0f}; deployment-like) = {ratios(remote)}   target >= 0.9")
    local = results.get("loopback")
    if local:
        m = local[f"readers{args.readers}"]
        print(f"epoch1/direct, loopback origin (CPU-bound: 2 vCPUs shared by nginx, node and "
              f"readers) = {ratios(local)}; CPU ms per MB direct "
              f"{m['direct_cpu_ms_per_MB']:.2f}, epoch 1 {m['epoch1_cpu_ms_per_MB']:.2f} "
              f"(node {m['epoch1_cpu_ms_per_MB_node'] + m['epoch1_cpu_ms_per_MB_node_after']:.2f})"
              + ("" if remote else "   target >= 0.9"))
    if not args.only_d:
        print(f"(c) reads/s        = {results['rand64k']['reads_per_s']:.0f}   "
              f"target >= 10000")


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(REPO, "build"))
    ap.add_argument("--files", type=int, default=64)
    ap.add_argument("--file-mb", type=float, default=4)
    ap.add_argument("--seconds", type=float, default=5, help="(c) duration (default 5)")
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--shoald", help="node binary to run (default: BUILD/node/shoald)")
    ap.add_argument("--readers", type=int, default=4,
                    help="concurrent reader processes in (d) (default 4; readers=1 is also run)")
    ap.add_argument("--rounds", type=int, default=1,
                    help="(d) rounds, each on fresh files; medians are reported (default 1)")
    ap.add_argument("--only-d", action="store_true", help="run (d) only, skip (a), (b), (c)")
    ap.add_argument("--origin", choices=("remote", "local"), default="remote",
                    help="remote (default): (d) with the origin behind a rate-limited link in "
                         "a network namespace, and again on loopback; local: loopback only")
    ap.add_argument("--origin-rate", type=float, default=200,
                    help="the remote origin's link, MB/s (10^6 bytes), both directions "
                         "(default 200)")
    ap.add_argument("--skip-loopback-d", action="store_true",
                    help="with --origin remote, skip the loopback-origin (d)")
    ap.add_argument("--rounds-b", type=int, default=5,
                    help="rounds of (a)+(b), interleaved; medians are reported (default 5)")
    ap.add_argument("--b-mb", type=int, default=1024,
                    help="MB moved by each measurement of a (a)+(b) round (default 1024)")
    args = ap.parse_args()
    if args.origin == "local":
        args.skip_loopback_d = False

    build = os.path.abspath(args.build)
    lib = os.path.join(build, "client", "libshoal.so")
    shoald = os.path.abspath(args.shoald) if args.shoald else os.path.join(build, "node", "shoald")
    need = {"shoald": shoald, "libshoal": lib,
            "zmq_pump": os.path.join(build, "tools", "bench", "zmq_pump"),
            "bench_pread": os.path.join(build, "tools", "bench", "bench_pread")}
    missing = [f"{k} ({v})" for k, v in need.items() if not os.path.exists(v)]
    for tool in ("iperf3", "/usr/sbin/nginx") + (("ip", "tc") if args.origin == "remote"
                                                 else ()):
        if not shutil.which(tool):
            missing.append(tool)
    if missing:
        sys.exit("bench_read: missing " + ", ".join(missing) + " (build with cmake first, "
                 "and run tools/install-deps.sh)")
    os.environ["SHOAL_LIBRARY"] = lib
    sys.path.insert(0, os.path.join(REPO, "client", "python"))
    import shoalfs

    # SIGTERM and SIGHUP unwind like Ctrl-C, so that the finally below cleans up
    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGHUP, _raise_interrupt)
    if args.origin == "remote":
        remove_stale_namespaces()

    tmp = tempfile.mkdtemp(prefix="shoal-bench-")
    procs = Procs()
    cleanup = []
    results = {"files": args.files, "file_mb": args.file_mb}
    try:
        # dataset: one set of files per (round, reader count), read by each origin's own
        # node, so each epoch 1 is cold
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
        total_mb = size * args.files / 1e6
        print(f"dataset: {args.files} files x {args.file_mb} MiB = {total_mb:.0f} MB "
              f"per (round, reader count): rounds {args.rounds}, readers {reader_counts}",
              flush=True)
        capacity = 2 * size * args.files * len(sets) + (1 << 30)

        if args.origin == "remote":
            remote = remote_section(procs, tmp, data, need, shoalfs, args, sets, reader_counts,
                                    size, capacity, cleanup)
            if remote:
                results["remote"] = remote
            else:
                args.skip_loopback_d = False
        if not (args.origin == "remote" and args.skip_loopback_d and args.only_d):
            local = local_section(procs, tmp, data, need, shoalfs, args, sets, reader_counts,
                                  size, capacity, lib, results)
            if local:
                results["loopback"] = local
        print_summary(args, results, reader_counts)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(results, f, indent=2)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)  # a second Ctrl-C must not stop the cleanup
        procs.stop()
        for down in cleanup:
            down()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
