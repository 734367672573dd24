#!/usr/bin/env python3
"""badhttp.py - a small HTTP/1.1 file server for tests that misbehaves on request.

Usage: badhttp.py PORT ROOT ACCESS_LOG

Serves files under ROOT with Range, ETag ("size-mtime_ns" in hex) and Last-Modified, like a
plain static server. A URL prefix picks a misbehaviour for the file named after it:
  /flaky/N/ID/PATH  the first N requests for this exact URL get 503, then PATH is served
  /busy/N/ID/PATH   the same with 429 Too Many Requests and Retry-After: 0
  /stall/PATH       waits 5 s before answering (timeouts)
  /norange/PATH     ignores Range: always 200 with the whole file
  /die/PATH         sends full headers, then half the body, then drops the connection
  /long/PATH        a 206 whose body is 10 bytes longer than the range asked for
  /noetag/PATH      no ETag header (version falls back to size and Last-Modified)
  /nohead/PATH      HEAD gets 405 (stat must fall back to a ranged GET)
  /dieonce/N/ID/PATH  the first N GETs for this exact URL die like /die/, then PATH is served
  /dieflip/ID/PATH  the first GET dies like /die/; later ones serve every byte inverted (the
                    object "changed" under the same headers)
  /pause/TOKEN/PATH sends full headers and the first half of the body, then waits until the
                    file ROOT/.go-TOKEN exists (at most 60 s), then sends the rest
Every request is logged to ACCESS_LOG as "METHOD URI STATUS range=RANGE" before the reply is
sent, so a test can count attempts as soon as it has its answer.
"""
import email.utils
import os
import re
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROOT = ""
LOG = None
LOG_LOCK = threading.Lock()
COUNTS = {}


def log(method, uri, status, rng):
    with LOG_LOCK:
        LOG.write(f"{method} {uri} {status} range={rng or '-'}\n")
        LOG.flush()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def simple(self, status, body=b""):
        log(self.command, self.path, status, self.headers.get("Range"))
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_HEAD(self):
        self.handle_any()

    def do_GET(self):
        self.handle_any()

    def handle_any(self):
        path = self.path.split("?", 1)[0]
        mode = ""
        m = re.match(r"^/(flaky|busy)/(\d+)/([^/]+)(/.*)$", path)
        if m:
            with LOG_LOCK:
                seen = COUNTS.get(self.path, 0)
                COUNTS[self.path] = seen + 1
            if seen < int(m.group(2)):
                if m.group(1) == "busy":
                    log(self.command, self.path, 429, self.headers.get("Range"))
                    self.send_response(429)
                    self.send_header("Retry-After", "0")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                return self.simple(503, b"busy\n")
            path = m.group(4)
        elif re.match(r"^/(dieonce/\d+|dieflip)/[^/]+/", path) and self.command == "GET":
            m = re.match(r"^/(dieonce/(\d+)|dieflip)/([^/]+)(/.*)$", path)
            with LOG_LOCK:
                seen = COUNTS.get(self.path, 0)
                COUNTS[self.path] = seen + 1
            limit = int(m.group(2)) if m.group(2) else 1
            mode = "die" if seen < limit else ("flip" if m.group(1) == "dieflip" else "")
            path = m.group(4)
        elif re.match(r"^/pause/[A-Za-z0-9_-]+/", path):
            m = re.match(r"^/pause/([A-Za-z0-9_-]+)(/.*)$", path)
            mode, token, path = "pause", m.group(1), m.group(2)
        elif path.startswith("/stall/"):
            log(self.command, self.path, 0, self.headers.get("Range"))
            time.sleep(5)
            return self.simple(503, b"late\n")
        else:
            m = re.match(r"^/(norange|die|long|noetag|nohead)(/.*)$", path)
            if m:
                mode, path = m.group(1), m.group(2)
        if mode == "nohead" and self.command == "HEAD":
            return self.simple(405)
        fs_path = os.path.join(ROOT, path.lstrip("/"))
        if not os.path.isfile(fs_path):
            return self.simple(404, b"not found\n")
        st = os.stat(fs_path)
        size = st.st_size
        rng = self.headers.get("Range")
        status, first, last = 200, 0, size - 1
        if rng and mode != "norange":
            r = re.match(r"^bytes=(\d+)-(\d*)$", rng)
            if not r:
                return self.simple(400, b"bad range\n")
            first = int(r.group(1))
            last = min(int(r.group(2)) if r.group(2) else size - 1, size - 1)
            if first >= size:
                log(self.command, self.path, 416, rng)
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = 206
        with open(fs_path, "rb") as f:
            f.seek(first)
            body = f.read(max(0, last - first + 1))
        if mode == "long":
            body += b"X" * 10
        if mode == "flip":
            body = bytes(b ^ 0xFF for b in body)
        log(self.command, self.path, status, rng)
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        if status == 206:
            self.send_header("Content-Range", f"bytes {first}-{last}/{size}")
        self.send_header("Accept-Ranges", "bytes")
        if mode != "noetag":
            self.send_header("ETag", f'"{size:x}-{st.st_mtime_ns:x}"')
        self.send_header("Last-Modified", email.utils.formatdate(st.st_mtime, usegmt=True))
        self.end_headers()
        if self.command == "HEAD":
            return
        if mode == "die":
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        if mode == "pause":
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            go = os.path.join(ROOT, ".go-" + token)
            deadline = time.monotonic() + 60
            while not os.path.exists(go) and time.monotonic() < deadline:
                time.sleep(0.01)
            self.wfile.write(body[len(body) // 2 :])
            return
        self.wfile.write(body)


def main():
    global ROOT, LOG
    port, ROOT, log_path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    LOG = open(log_path, "a", encoding="utf-8")
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
