#!/usr/bin/env python3
"""origin.py - an HTTP/1.1 file server that behaves like a remote object store, for tests and
benchmarks of the cold path: a per-request delay (time to first byte), a per-connection
bandwidth cap, and counts of the requests it answered, by kind.

Usage: origin.py --port PORT --root DIR [--delay-ms 20] [--rate-mbps 0] [--ready FILE]

Serves files under DIR with HEAD and GET (one Range "bytes=A-B", "bytes=A-" or "bytes=-N"),
ETag (quoted, "<size>-<mtime_ns>" in hex, so a replaced file gets a new one), Last-Modified,
Content-Range, and the preconditions If-Match and If-None-Match (412 / 304). A missing file is
404 with a small body. Every answer waits --delay-ms before its headers; bodies are sent in
64 KiB pieces paced to --rate-mbps megabytes per second per connection (0: no cap).

Control (never delayed, never counted):
  GET /_counts        JSON {"HEAD": n, "GET": n, "HEAD_404": n, "GET_404": n, "HEAD_412": n,
                      "GET_412": n, "HEAD_304": n, "GET_304": n, "bytes": n,
                      "by_path": {"/path": {"HEAD": n, "GET": n}}} (a 416 counts as GET)
  POST /_reset        zeroes the counts
A test that wants to know a request was answered reads /_counts after its own call returned:
counts are updated before the reply's first byte leaves.
"""
import argparse
import email.utils
import json
import os
import re
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ARGS = None
LOCK = threading.Lock()
COUNTS = {}


def reset():
    with LOCK:
        COUNTS.clear()
        # every top-level kind exists from the start, before "by_path", so a reader may stop
        # at "by_path" (tests/support/testproc.c does)
        COUNTS.update({"HEAD": 0, "GET": 0, "HEAD_404": 0, "GET_404": 0, "HEAD_412": 0,
                       "GET_412": 0, "HEAD_304": 0, "GET_304": 0, "bytes": 0, "by_path": {}})


def count(kind, path, nbytes=0):
    with LOCK:
        COUNTS[kind] = COUNTS.get(kind, 0) + 1
        COUNTS["bytes"] += nbytes
        per = COUNTS["by_path"].setdefault(path, {})
        per[kind] = per.get(kind, 0) + 1


def etag_of(st):
    return '"%x-%x"' % (st.st_size, st.st_mtime_ns)


def etag_matches(header, etag):
    if header is None:
        return None
    items = [h.strip() for h in header.split(",")]
    return "*" in items or etag in items or ("W/" + etag) in items


RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, headers, body=b""):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def do_POST(self):
        if self.path == "/_reset":
            reset()
            self.reply(200, [], b"ok\n")
        else:
            self.reply(404, [], b"no such control\n")

    def do_HEAD(self):
        self.serve()

    def do_GET(self):
        if self.path == "/_counts":
            with LOCK:
                body = json.dumps(COUNTS).encode()
            self.reply(200, [("Content-Type", "application/json")], body)
            return
        self.serve()

    def serve(self):
        method = self.command
        path = urllib.parse.unquote(self.path.split("?", 1)[0])  # "%20" names "a b"
        if ARGS.delay_ms > 0:
            time.sleep(ARGS.delay_ms / 1000.0)
        rel = os.path.normpath(path.lstrip("/"))
        if rel.startswith("..") or os.path.isabs(rel):
            self.reply(403, [], b"forbidden\n")
            return
        full = os.path.join(ARGS.root, rel)
        try:
            f = open(full, "rb")
            st = os.fstat(f.fileno())
            if not os.path.isfile(full):
                raise FileNotFoundError
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            count(method + "_404", path)
            self.reply(404, [], b"not found\n")
            return
        with f:
            etag = etag_of(st)
            common = [("ETag", etag), ("Accept-Ranges", "bytes"),
                      ("Last-Modified", email.utils.formatdate(st.st_mtime, usegmt=True))]
            if etag_matches(self.headers.get("If-Match"), etag) is False:
                count(method + "_412", path)
                self.reply(412, common, b"precondition failed\n")
                return
            if etag_matches(self.headers.get("If-None-Match"), etag):
                count(method + "_304", path)
                self.reply(304, common)
                return
            size = st.st_size
            start, end, status = 0, size, 200
            rng = self.headers.get("Range")
            if rng:
                m = RANGE_RE.match(rng.strip())
                if not m or (m.group(1) == "" and m.group(2) == ""):
                    self.reply(416, common + [("Content-Range", "bytes */%d" % size)])
                    return
                if m.group(1) == "":
                    start, end = max(0, size - int(m.group(2))), size
                else:
                    start = int(m.group(1))
                    end = min(size, int(m.group(2)) + 1) if m.group(2) else size
                if start >= size:
                    count(method, path)
                    self.reply(416, common + [("Content-Range", "bytes */%d" % size)])
                    return
                status = 206
                common.append(("Content-Range", "bytes %d-%d/%d" % (start, end - 1, size)))
            length = end - start
            count(method, path, length if method == "GET" else 0)
            self.send_response(status)
            for name, value in common:
                self.send_header(name, value)
            self.send_header("Content-Length", str(length))
            self.end_headers()
            if method == "HEAD":
                return
            f.seek(start)
            self.send_body(f, length)

    def send_body(self, f, length):
        piece = 64 * 1024
        rate = ARGS.rate_mbps * 1e6
        began = time.monotonic()
        sent = 0
        while sent < length:
            data = f.read(min(piece, length - sent))
            if not data:
                break  # the file was cut while we sent it: the client sees a short body
            self.wfile.write(data)
            sent += len(data)
            if rate > 0:
                due = began + sent / rate
                wait = due - time.monotonic()
                if wait > 0:
                    time.sleep(wait)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256


def main():
    global ARGS
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--root", required=True)
    ap.add_argument("--delay-ms", type=float, default=20.0)
    ap.add_argument("--rate-mbps", type=float, default=0.0)
    ap.add_argument("--ready", help="write this file once listening")
    ARGS = ap.parse_args()
    reset()
    server = Server(("127.0.0.1", ARGS.port), Handler)
    if ARGS.ready:
        with open(ARGS.ready, "w") as out:
            out.write("%d\n" % os.getpid())
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
