#!/usr/bin/python3
"""prof_cold.py - the node's CPU on the cold path, per file (issue 10's "CPU per MB of a cold
epoch"): one or three shoald nodes in front of tests/support/origin.py, a cold epoch of --files
small files read once each through shoalfs `cat_file` by --readers forked readers, the store
work after it, then a warm epoch of the same files. For each epoch it prints the nodes' user and
system CPU per file (/proc/PID/stat), and with --callgrind the user-space instructions per file
(every node runs under `valgrind --tool=callgrind`; the counts are zeroed before each epoch and
dumped after it: callgrind.out.<node>.<epoch> in --out, for callgrind_annotate). --perf records
`perf record -e cpu-clock -g` of node 0 during the cold epoch (perf.cold.data in --out).

Usage: /usr/bin/python3 tools/bench/prof_cold.py [--build build] [--nodes 1] [--readers 4]
       [--files 200] [--file-kb 64] [--delay-ms 20] [--callgrind] [--perf]
       [--perf-call-graph fp|dwarf] [--perf-stat] [--strace=OPTIONS] [--out DIR]
       [--node-arg=--flag=value ...]
--perf-stat: software counters of the nodes per epoch (context switches, faults; this VM has
no hardware counters). --strace=-c or --strace=-tt: node 0 under strace -f, cold epoch, with
threads.txt (tid -> thread name) to group the calls by thread.
Counts are repeatable to a few per cent; wall-clock CPU on a shared machine is not.
"""
import argparse
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
ORIGIN = os.path.join(REPO, "tests", "support", "origin.py")
TICKS = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with status {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing came up on 127.0.0.1:{port}")


def cpu(pid):
    """(user, system) seconds of every thread of a live process."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(fields[11]) / TICKS, int(fields[12]) / TICKS


def read_files(seeds, uris, readers):
    """Reads every uri once with `readers` forked processes (reader r: uris r, r + readers...)."""
    pids = []
    for r in range(readers):
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                import shoalfs
                fs = shoalfs.ShoalFileSystem(target_protocol="http", seeds=seeds)
                for uri in uris[r::readers]:
                    fs.cat_file(uri)
            except BaseException as e:  # noqa: BLE001 - reported, then a failing status
                print(f"reader {r}: {e!r}", file=sys.stderr)
                code = 1
            os._exit(code)
        pids.append(pid)
    for pid in pids:
        _, status = os.waitpid(pid, 0)
        if status != 0:
            raise RuntimeError("a reader failed")


def settle(fs, pids, deadline_s=120):
    """Until every node has stored its ranges and the nodes are idle."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        depth = sum(n.get("counters", {}).get("store_queue_depth", 0)
                    for n in fs.stats().get("nodes", []))
        before = sum(sum(cpu(p)) for p in pids)
        time.sleep(0.5)
        if depth == 0 and sum(sum(cpu(p)) for p in pids) - before < 0.02:
            return


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(REPO, "build"))
    ap.add_argument("--nodes", type=int, default=1)
    ap.add_argument("--readers", type=int, default=4)
    ap.add_argument("--files", type=int, default=200)
    ap.add_argument("--file-kb", type=int, default=64)
    ap.add_argument("--delay-ms", type=float, default=20.0)
    ap.add_argument("--callgrind", action="store_true")
    ap.add_argument("--perf", action="store_true")
    ap.add_argument("--perf-stat", action="store_true",
                    help="perf stat (software counters) of the nodes per epoch")
    ap.add_argument("--strace", help="strace -f node 0 during the cold epoch with these "
                    "options (say '-c', or '-tt'): strace.cold.txt in --out")
    ap.add_argument("--perf-call-graph", default="fp", help="fp, or dwarf (slower, deeper)")
    ap.add_argument("--out", default=".")
    ap.add_argument("--node-arg", action="append", default=[])
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    os.environ["SHOAL_LIBRARY"] = os.path.join(build, "client", "libshoal.so")
    sys.path.insert(0, os.path.join(REPO, "client", "python"))
    import shoalfs

    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="shoal-prof-cold-")
    procs = []

    def start(argv, log):
        p = subprocess.Popen(argv, stdout=open(log, "wb"), stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, start_new_session=True)
        procs.append(p)
        return p

    try:
        data = os.path.join(tmp, "data", "d")
        os.makedirs(data)
        for i in range(args.files):
            with open(os.path.join(data, f"f{i:05d}.bin"), "wb") as f:
                f.write(os.urandom(args.file_kb * 1024))
        oport = free_port()
        origin = start([sys.executable, ORIGIN, "--port", str(oport), "--root",
                        os.path.join(tmp, "data"), "--delay-ms", str(args.delay_ms)],
                       os.path.join(tmp, "origin.log"))
        wait_port(oport, origin)
        mount = f"http://127.0.0.1:{oport}/"
        nodes, endpoints, first_gossip = [], [], None
        for k in range(args.nodes):
            port, gossip = free_port(), free_port()
            argv = [os.path.join(build, "node", "shoald"), "--name", f"n{k}", "--data-dir",
                    os.path.join(tmp, f"n{k}"), "--capacity", "4G", "--listen",
                    f"tcp://127.0.0.1:{port}", "--gossip", f"tcp://127.0.0.1:{gossip}",
                    "--mount", mount, "--log-level", "warn"] + args.node_arg
            if first_gossip:
                argv += ["--seeds", first_gossip]
            else:
                first_gossip = f"127.0.0.1:{gossip}"
            if args.callgrind:
                argv = ["valgrind", "--tool=callgrind",
                        f"--callgrind-out-file={tmp}/cg.n{k}.%p"] + argv
            nodes.append(start(argv, os.path.join(tmp, f"n{k}.log")))
            wait_port(port, nodes[-1])
            endpoints.append(f"127.0.0.1:{port}")
        seeds = ",".join(endpoints)
        fs = shoalfs.ShoalFileSystem(target_protocol="http", seeds=seeds,
                                     skip_instance_cache=True)
        deadline = time.monotonic() + 120
        while len([m for m in fs.members().get("members", [])
                   if m.get("state") == "alive"]) < args.nodes:
            if time.monotonic() > deadline:
                raise RuntimeError("the cluster did not converge")
            time.sleep(0.2)
        pids = [p.pid for p in nodes]
        uris = [mount + f"d/f{i:05d}.bin" for i in range(args.files)]
        # untimed: one other file read cold and warm, so first-use costs (threads, handles,
        # connections, RocksDB's first writes) stay out of the epochs
        with open(os.path.join(data, "warm.bin"), "wb") as f:
            f.write(os.urandom(args.file_kb * 1024))
        read_files(seeds, [mount + "d/warm.bin"] * 2, 1)
        settle(fs, pids)
        for epoch in ("cold", "warm"):
            if args.callgrind:
                for p in pids:
                    subprocess.run(["callgrind_control", "-z", str(p)], capture_output=True)
            perf = None
            if args.strace and epoch == "cold":
                perf = subprocess.Popen(["strace"] + args.strace.split() + ["-f", "-o",
                                         os.path.join(out, "strace.cold.txt"), "-p",
                                         str(pids[0])], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
                time.sleep(1.0)
            if args.perf_stat:
                perf = subprocess.Popen(["perf", "stat", "-e",
                                         "task-clock,context-switches,page-faults,cpu-migrations",
                                         "-o", os.path.join(out, f"perfstat.{epoch}.txt"), "-p",
                                         ",".join(str(p) for p in pids)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                time.sleep(0.5)
            if args.perf and epoch == "cold":
                perf = subprocess.Popen(["perf", "record", "-e", "cpu-clock", "--call-graph",
                                         args.perf_call_graph, "-o",
                                         os.path.join(out, "perf.cold.data"), "-p",
                                         str(pids[0])], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
                time.sleep(0.5)
            c0 = [cpu(p) for p in pids]
            t0 = time.monotonic()
            read_files(seeds, uris, args.readers)
            wall = time.monotonic() - t0
            settle(fs, pids)
            c1 = [cpu(p) for p in pids]
            if perf:
                perf.send_signal(signal.SIGINT)
                perf.wait()
            user = sum(b[0] - a[0] for a, b in zip(c0, c1))
            system = sum(b[1] - a[1] for a, b in zip(c0, c1))
            line = (f"{epoch}: {args.files} files x {args.file_kb} KiB, {args.nodes} node(s), "
                    f"{args.readers} readers, {wall:.2f} s; nodes CPU per file: user "
                    f"{1e3 * user / args.files:.3f} ms, system {1e3 * system / args.files:.3f}"
                    f" ms")
            if args.callgrind:
                total = 0
                for k, p in enumerate(pids):
                    dumped = os.path.join(out, f"callgrind.out.n{k}.{epoch}")
                    before = set(glob.glob(f"{tmp}/cg.n{k}.*"))
                    subprocess.run(["callgrind_control", "-d", str(p)], capture_output=True)
                    new = sorted(set(glob.glob(f"{tmp}/cg.n{k}.*")) - before,
                                 key=os.path.getmtime)
                    if not new:
                        continue
                    shutil.copy(new[-1], dumped)
                    for name in open(dumped, errors="replace"):
                        if name.startswith("summary:") or name.startswith("totals:"):
                            total += int(name.split()[1])
                            break
                line += f", {total / args.files / 1e3:.0f} k instructions (user space)"
            print(line, flush=True)
        with open(os.path.join(out, "threads.txt"), "w") as f:
            for k, p in enumerate(pids):
                for tid in sorted(os.listdir(f"/proc/{p}/task")):
                    name = open(f"/proc/{p}/task/{tid}/comm").read().strip()
                    f.write(f"n{k} {tid} {name}\n")
        counts = fs.stats()
        for n in counts.get("nodes", []):
            c = n.get("counters", {})
            print(f"  {n.get('name')}: origin_gets {c.get('origin_gets')} origin_heads "
                  f"{c.get('origin_heads')} cold_reads {c.get('cold_reads')} range buffers mapped "
                  f"{c.get('range_buffers_mapped')} reused {c.get('range_buffers_reused')}")
        fs._client.close()
    finally:
        for p in procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for p in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
