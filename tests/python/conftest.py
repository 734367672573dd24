"""conftest.py - fixtures of the shoalfs end-to-end suite: real processes on loopback.

Every server (nginx, moto_server, shoald) runs in its own process group on a free port chosen
at run time, is waited for by polling with a deadline, and is killed (the whole group) on
teardown, even when a test fails. Binaries come from $SHOAL_BUILD_DIR (default <repo>/build);
the library from $SHOAL_LIBRARY (default <build>/client/libshoal.so).
"""
import hashlib
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("SHOAL_BUILD_DIR") or os.path.join(REPO, "build")
LIBRARY = os.environ.get("SHOAL_LIBRARY") or os.path.join(BUILD, "client", "libshoal.so")
SHOALD = os.path.join(BUILD, "node", "shoald")
NGINX = os.environ.get("SHOAL_NGINX") or "/usr/sbin/nginx"
PAGE_SIZE = 65536
RANGE_PAGES = 4
BUCKET = "shoal-test"

sys.path.insert(0, os.path.join(REPO, "client", "python"))
os.environ["SHOAL_LIBRARY"] = LIBRARY

# S3 settings for the node, the client's UFS fallback and boto3 (moto accepts any key).
S3_ENV = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
          "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1"}


# --------------------------------------------------------------------------------- helpers

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(condition, timeout, what):
    """Polls `condition` until it returns a true value (returned) or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def sha(data):
    return hashlib.sha256(data).hexdigest()


class Proc:
    """A child process in its own process group, output in a log file."""

    def __init__(self, argv, log_path, env=None, cwd=None):
        self.argv = argv
        self.log_path = log_path
        self._log = open(log_path, "ab")
        self.popen = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, env=env, cwd=cwd,
                                      start_new_session=True)

    @property
    def pid(self):
        return self.popen.pid

    def alive(self):
        return self.popen.poll() is None

    def kill(self, sig=signal.SIGKILL):
        if self.alive():
            try:
                os.killpg(self.popen.pid, sig)
            except ProcessLookupError:
                pass

    def stop(self, timeout=5):
        """SIGTERM, then SIGKILL at the deadline; always reaps."""
        if self.alive():
            self.kill(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill(signal.SIGKILL)
                self.popen.wait(5)
        else:
            self.popen.wait()
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)  # leftovers of the group
        except (ProcessLookupError, PermissionError):
            pass
        self._log.close()

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def tail(self, lines=40):
        return "\n".join(self.log_text().splitlines()[-lines:])


def count_lines(path, needle=None):
    try:
        with open(path, "rb") as f:
            return sum(1 for line in f if needle is None or needle.encode() in line)
    except FileNotFoundError:
        return 0


# --------------------------------------------------------------------------------- dataset

def make_dataset(root, seed=1234):
    """Files whose sizes sit on and around page (64 KiB) and range (256 KiB) boundaries, a few
    MB in all, in nested folders. Returns {relative path: bytes}."""
    rng = random.Random(seed)
    sizes = {"empty.bin": 0, "one.bin": 1, "page-1.bin": PAGE_SIZE - 1, "page.bin": PAGE_SIZE,
             "page+1.bin": PAGE_SIZE + 1, "range.bin": PAGE_SIZE * RANGE_PAGES,
             "range+1.bin": PAGE_SIZE * RANGE_PAGES + 1, "big.bin": 3 * 1024 * 1024 + 12345,
             "sub/a.bin": 70000, "sub/b.bin": 300000, "sub/deep/c.bin": 5000,
             "sub/deep/d.txt": 1000}
    files = {}
    for rel, size in sizes.items():
        data = rng.randbytes(size)
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        files[rel] = data
    return files


@pytest.fixture(scope="session")
def workdir():
    d = tempfile.mkdtemp(prefix="shoal-pytest-")
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def dataset(workdir):
    root = os.path.join(workdir, "data")
    os.makedirs(root)
    files = make_dataset(root)
    # A file outside every mount, for the traversal tests.
    with open(os.path.join(workdir, "secret.txt"), "wb") as f:
        f.write(b"top secret\n")
    return root, files


# --------------------------------------------------------------------------------- servers

@pytest.fixture(scope="session")
def nginx(workdir, dataset):
    """nginx serving the workdir (dataset under /data/) on a free port."""
    if not os.access(NGINX, os.X_OK):
        pytest.skip(f"nginx not found at {NGINX}")
    d = os.path.join(workdir, "nginx")
    os.makedirs(d)
    port = free_port()
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""
user root;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 256; }}
http {{
  log_format shoal '$request_method $request_uri $status range=$http_range';
  access_log {d}/access.log shoal;
  client_body_temp_path {d}/body; proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi; uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
  default_type application/octet-stream;
  server {{
    listen 127.0.0.1:{port};
    root {workdir};
  }}
}}
""")
    proc = Proc([NGINX, "-p", d, "-c", conf, "-e", f"{d}/error.log", "-g", "daemon off;"],
                os.path.join(d, "stdout.log"))
    try:
        wait_for(lambda: port_open(port) or not proc.alive(), 10, "nginx")
        if not proc.alive():
            raise RuntimeError("nginx died: " + proc.tail())
        yield {"port": port, "url": f"http://127.0.0.1:{port}", "access_log": f"{d}/access.log"}
    finally:
        proc.stop()


def nginx_marker(nginx, tag):
    """Requests a marker URL and waits until nginx logged it: every request that completed
    before is logged by then, so a count taken afterwards is settled."""
    url = f"{nginx['url']}/marker-{tag}"
    try:
        urllib.request.urlopen(url, timeout=5).read()
    except Exception:
        pass  # 404 is expected
    wait_for(lambda: count_lines(nginx["access_log"], f"/marker-{tag}"), 5, "nginx marker")


@pytest.fixture(scope="session")
def moto(workdir, dataset):
    """moto_server (S3) with the dataset uploaded to s3://shoal-test/; skipped when absent."""
    exe = shutil.which("moto_server")
    if not exe:
        pytest.skip("moto_server not on PATH (it comes with the machine image's python3): "
                    "S3 cases skipped")
    d = os.path.join(workdir, "moto")
    os.makedirs(d)
    port = free_port()
    proc = Proc([exe, "-H", "127.0.0.1", "-p", str(port)], os.path.join(d, "moto.log"))
    try:
        wait_for(lambda: port_open(port) or not proc.alive(), 30, "moto_server")
        if not proc.alive():
            raise RuntimeError("moto_server died: " + proc.tail())
        endpoint = f"http://127.0.0.1:{port}"
        upload = (
            "import boto3, os, sys\n"
            "root, bucket, endpoint = sys.argv[1:4]\n"
            "s3 = boto3.client('s3', endpoint_url=endpoint)\n"
            "s3.create_bucket(Bucket=bucket)\n"
            "for dirpath, _, names in os.walk(root):\n"
            "    for n in names:\n"
            "        p = os.path.join(dirpath, n)\n"
            "        s3.upload_file(p, bucket, os.path.relpath(p, root))\n")
        # boto3 lives on the PATH python3 (not /usr/bin/python3, which runs the tests).
        subprocess.run([shutil.which("python3", path=os.path.dirname(exe)) or "python3", "-c",
                        upload, dataset[0], BUCKET, endpoint],
                       env={**os.environ, **S3_ENV}, check=True, timeout=120,
                       stdout=subprocess.DEVNULL)
        env = {**S3_ENV, "AWS_ENDPOINT_URL_S3": endpoint, "AWS_ENDPOINT_URL": endpoint}
        os.environ.update(env)  # for the client's own UFS fallback
        yield {"port": port, "endpoint": endpoint, "log": proc.log_path, "env": env,
               "python": shutil.which("python3", path=os.path.dirname(exe)) or "python3"}
    finally:
        proc.stop()


def moto_put(moto, key, data_path):
    """Uploads a local file to s3://BUCKET/key with the PATH python3's boto3."""
    code = ("import boto3, sys\n"
            "boto3.client('s3', endpoint_url=sys.argv[1]).upload_file(sys.argv[2], sys.argv[3],"
            " sys.argv[4])\n")
    subprocess.run([moto["python"], "-c", code, moto["endpoint"], data_path, BUCKET, key],
                   env={**os.environ, **S3_ENV}, check=True, timeout=60)


def moto_requests(moto):
    """Object requests moto logged so far (werkzeug request lines for the test bucket)."""
    needles = (f'"GET /{BUCKET}/', f'"HEAD /{BUCKET}/')
    with open(moto["log"], "rb") as f:
        return sum(1 for line in f
                   if any(n.encode() in line for n in needles) and b"marker" not in line)


def moto_marker(moto, tag):
    try:
        urllib.request.urlopen(f"{moto['endpoint']}/{BUCKET}/marker-{tag}", timeout=5).read()
    except Exception:
        pass
    wait_for(lambda: count_lines(moto["log"], f"marker-{tag}"), 5, "moto marker")


def need_binaries():
    missing = [p for p in (LIBRARY, SHOALD) if not os.path.exists(p)]
    if missing:
        pytest.skip("not built yet: " + ", ".join(missing) + " (libshoal from the client "
                    "branch, shoald from the node branch)")


class Node:
    """One shoald on loopback."""

    def __init__(self, workdir, name, mounts, ttl=60, env=None):
        need_binaries()
        self.name = name
        self.dir = os.path.join(workdir, f"node-{name}")
        os.makedirs(self.dir, exist_ok=True)
        self.port = free_port()
        self.gossip_port = free_port()
        argv = [SHOALD, "--name", name, "--data-dir", os.path.join(self.dir, "data"),
                "--capacity", str(256 << 20), "--listen", f"tcp://127.0.0.1:{self.port}",
                "--gossip", f"tcp://127.0.0.1:{self.gossip_port}",
                "--metadata-ttl", str(ttl), "--threads", "4", "--page-size", str(PAGE_SIZE),
                "--range-pages", str(RANGE_PAGES)]
        for m in mounts:
            argv += ["--mount", m]
        self.proc = Proc(argv, os.path.join(self.dir, "shoald.log"),
                         env={**os.environ, **(env or {})})
        try:
            wait_for(lambda: port_open(self.port) or not self.proc.alive(), 20, f"shoald {name}")
            if not self.proc.alive():
                raise RuntimeError(f"shoald {name} exited: {self.proc.tail()}")
        except Exception:
            self.proc.stop()
            raise

    @property
    def seeds(self):
        return f"127.0.0.1:{self.port}"

    def stop(self):
        self.proc.stop()


@pytest.fixture(scope="session")
def origins(workdir, dataset, nginx, request):
    """The mounts every node serves: the dataset over file:// and http://, and s3:// when
    moto_server is available."""
    root = dataset[0]
    out = {"file": f"file://{root}/", "http": f"{nginx['url']}/data/", "env": {}}
    try:
        m = request.getfixturevalue("moto")
        out["s3"] = f"s3://{BUCKET}/"
        out["env"] = m["env"]
    except pytest.skip.Exception:
        pass
    return out


@pytest.fixture(scope="session")
def node(workdir, origins):
    """The shared node: long metadata TTL, so repeated reads never go to the origin."""
    mounts = [origins[k] for k in ("file", "http", "s3") if k in origins]
    n = Node(workdir, "main", mounts, ttl=60, env=origins["env"])
    try:
        yield n
    finally:
        n.stop()


@pytest.fixture(scope="session")
def shoalfs_mod():
    need_binaries()
    import shoalfs
    return shoalfs
