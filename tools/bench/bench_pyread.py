#!/usr/bin/python3
"""bench_pyread.py - warm reads through shoalfs against a local copy, one node, one reader.

One shoald (file:// mount, defaults: 1 MiB pages) in front of a --file-mb (default 64 MiB)
file of random bytes, warmed into the node (the node's data files and the local copy are in
the OS page cache). Then --rounds rounds; each round runs every kind once, the order rotating:

  local read()      open(copy, "rb").read(): a fresh bytes object each time
  local readinto    readinto a preallocated bytearray of the file's size
  local read(4M)    read(4 MiB) loop over an open copy
  cat_file          fs.cat_file(path): a fresh bytes object each time
  read(4M)          fs.open(path).read(4 MiB) loop
  read()            fs.open(path).read()
  readinto          fs.open(path).readinto(a preallocated bytearray of the file's size)
  readinto(4M)      readinto of a 4 MiB memoryview slice loop
  cat_ranges        fs.cat_ranges of the file as 16 ranges
  read_block        fs.read_block of the file as 16 blocks

and prints the median GiB/s of each kind and the median per-round ratio against the local
kind it compares with (readinto and readinto(4M) against local readinto, read(4M) against
local read(4M), the rest against local read()). Each round also times 200 reads of a warm
64 KiB file, fs.cat_file against a local open().read() (median microseconds per read).
Nothing asserts: the numbers are for client/python/README.md.

Usage: /usr/bin/python3 tools/bench/bench_pyread.py [--build build] [--pkg client/python]
       [--file-mb 64] [--rounds 9] [--json OUT]
--pkg runs another copy of the shoalfs package (an older commit's, for a before/after) against
this build's libshoal and shoald. The node, its data directory and the files are removed on
any exit.
"""
import argparse
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
CHUNK = 4 << 20
SMALL = 64 << 10
SMALL_READS = 200


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("shoald exited")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"shoald did not come up on port {port}")


def kinds(fs, path, local, size):
    whole = bytearray(size)
    view = memoryview(whole)
    starts = list(range(0, size, max(1, size // 16)))
    ends = starts[1:] + [size]

    def local_read():
        with open(local, "rb", buffering=0) as f:
            return len(f.read())

    def local_readinto():
        with open(local, "rb", buffering=0) as f:
            return f.readinto(whole)

    def local_read4():
        n = 0
        with open(local, "rb", buffering=0) as f:
            while True:
                b = f.read(CHUNK)
                if not b:
                    return n
                n += len(b)

    def cat_file():
        return len(fs.cat_file(path))

    def read4():
        n = 0
        with fs.open(path, "rb") as f:
            while True:
                b = f.read(CHUNK)
                if not b:
                    return n
                n += len(b)

    def read_all():
        with fs.open(path, "rb") as f:
            return len(f.read())

    def readinto():
        with fs.open(path, "rb") as f:
            return f.readinto(whole)

    def readinto4():
        n = 0
        with fs.open(path, "rb") as f:
            while n < size:
                got = f.readinto(view[n:n + CHUNK])
                if not got:
                    break
                n += got
        return n

    def cat_ranges():
        return sum(len(b) for b in fs.cat_ranges([path] * len(starts), starts, ends))

    def read_block():
        return sum(len(fs.read_block(path, s, e - s)) for s, e in zip(starts, ends))

    return {"local read()": local_read, "local readinto": local_readinto,
            "local read(4M)": local_read4, "cat_file": cat_file, "read(4M)": read4,
            "read()": read_all, "readinto": readinto, "readinto(4M)": readinto4,
            "cat_ranges": cat_ranges, "read_block": read_block}


BASELINE = {"readinto": "local readinto", "readinto(4M)": "local readinto",
            "read(4M)": "local read(4M)"}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(REPO, "build"))
    ap.add_argument("--pkg", default=os.path.join(REPO, "client", "python"),
                    help="folder holding the shoalfs package to measure")
    ap.add_argument("--file-mb", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()

    os.environ["SHOAL_LIBRARY"] = os.path.join(args.build, "client", "libshoal.so")
    sys.path.insert(0, os.path.abspath(args.pkg))
    import shoalfs

    tmp = tempfile.mkdtemp(prefix="shoal-pyread-")
    proc = None

    def on_term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    try:
        root = os.path.join(tmp, "data")
        os.makedirs(root)
        size = args.file_mb << 20
        path = os.path.join(root, "f.bin")
        local = os.path.join(tmp, "copy.bin")
        blob = os.urandom(size)
        for p in (path, local):
            with open(p, "wb") as f:
                f.write(blob)
        small, small_copy = os.path.join(root, "small.bin"), os.path.join(tmp, "small.bin")
        for p in (small, small_copy):
            with open(p, "wb") as f:
                f.write(blob[:SMALL])
        del blob
        port = free_port()
        log = open(os.path.join(tmp, "shoald.log"), "wb")
        proc = subprocess.Popen(
            [os.path.join(args.build, "node", "shoald"), "--name", "bench",
             "--data-dir", os.path.join(tmp, "node"), "--capacity", str(4 * size + (256 << 20)),
             "--listen", f"tcp://127.0.0.1:{port}", "--gossip", f"tcp://127.0.0.1:{free_port()}",
             "--mount", f"file://{root}/"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)
        wait_port(port, proc)
        fs = shoalfs.ShoalFileSystem(target_protocol="file", seeds=f"127.0.0.1:{port}",
                                     skip_instance_cache=True)
        fs.load(path)
        fs.load(small)
        table = kinds(fs, path, local, size)

        def small_local():
            for _ in range(SMALL_READS):
                with open(small_copy, "rb") as f:
                    f.read()

        def small_shoal():
            for _ in range(SMALL_READS):
                fs.cat_file(small)

        small_kinds = {"local open().read() 64K": small_local, "cat_file 64K": small_shoal}
        for fn in small_kinds.values():
            fn()
        for fn in table.values():  # warm: node pages, local copy, allocator, connections
            for _ in range(2):
                got = fn()
                if got != size:
                    raise RuntimeError(f"{fn.__name__} read {got} bytes of {size}")
        names = list(table)
        times = {n: [] for n in names + list(small_kinds)}
        for r in range(args.rounds):
            order = names[r % len(names):] + names[:r % len(names)]
            for n in order:
                t0 = time.perf_counter()
                table[n]()
                times[n].append(time.perf_counter() - t0)
            for n, fn in (small_kinds.items() if r % 2 else reversed(small_kinds.items())):
                t0 = time.perf_counter()
                fn()
                times[n].append((time.perf_counter() - t0) / SMALL_READS)
        gib = size / (1 << 30)
        results = {"file_mb": args.file_mb, "rounds": args.rounds, "pkg": args.pkg,
                   "kinds": {}}
        print(f"{args.file_mb} MiB warm file, 1 node, 1 reader, {args.rounds} rounds "
              f"(median GiB/s; ratio: median per-round against the local kind named)")
        for n in names:
            rate = statistics.median(gib / t for t in times[n])
            row = {"gib_s": round(rate, 3)}
            line = f"  {n:<16} {rate:6.2f} GiB/s"
            if not n.startswith("local"):
                base = BASELINE.get(n, "local read()")
                ratio = statistics.median(b / t for t, b in zip(times[n], times[base]))
                row["ratio"], row["against"] = round(ratio, 3), base
                line += f"   {ratio:5.2f}x {base}"
            results["kinds"][n] = row
            print(line)
        base = "local open().read() 64K"
        for n in small_kinds:
            us = statistics.median(times[n]) * 1e6
            row = {"us": round(us, 1)}
            line = f"  {n:<24} {us:7.1f} us"
            if n != base:
                ratio = statistics.median(t / b for t, b in zip(times[n], times[base]))
                row["ratio"], row["against"] = round(ratio, 2), base
                line += f"   {ratio:5.2f}x the time of {base}"
            results["kinds"][n] = row
            print(line)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(results, f, indent=1)
    finally:
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
