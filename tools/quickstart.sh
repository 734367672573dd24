#!/usr/bin/env bash
# quickstart.sh - the first command: installs dependencies, builds shoal, generates a small
# dataset of random files, serves it from a real HTTP origin (nginx on loopback), starts a local
# cluster of N shoald nodes on loopback (each joins through the gossip endpoints of the ones
# before it; `shoal members` shows them), warms the dataset with `shoal warmup`, reads it twice through the
# Python fsspec filesystem (shoalfs) printing each epoch's throughput and hit ratio, prints
# `shoal stats`, and stops everything on exit.
#
# Settings (environment): SHOAL_QS_NODES [3] nodes, SHOAL_QS_FILES [200] files,
# SHOAL_QS_MB [300] dataset size in MB, SHOAL_QS_KEEP=1 keeps the temp dir.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
exec </dev/null

NODES=${SHOAL_QS_NODES:-3}
FILES=${SHOAL_QS_FILES:-200}
TOTAL_MB=${SHOAL_QS_MB:-300}
PY=/usr/bin/python3 # Debian's python3 has python3-fsspec (install-deps.sh)

step() { printf '\n== %s\n' "$*"; }

step "dependencies"
bash tools/install-deps.sh

step "build (build/)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$(nproc)" 2>&1 | grep -E 'error|warning|Built target (shoald|shoal)$' || true
for bin in build/node/shoald build/tools/shoal build/client/libshoal.so; do
    [ -e "$bin" ] || { echo "quickstart: $bin was not built" >&2; exit 1; }
done
export SHOAL_LIBRARY="$root/build/client/libshoal.so"
export PYTHONPATH="$root/client/python${PYTHONPATH:+:$PYTHONPATH}"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/shoal-quickstart-XXXXXX")
pids=()
cleanup() {
    local status=$?
    for pid in "${pids[@]}"; do
        kill -TERM -- "-$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL -- "-$pid" 2>/dev/null || true
    done
    if [ "${SHOAL_QS_KEEP:-0}" = 1 ]; then echo "kept $tmp"; else rm -rf "$tmp"; fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# free_port: prints a TCP port free on 127.0.0.1 now.
free_port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# wait_port PORT WHAT: polls until PORT accepts connections (deadline 20 s).
wait_port() {
    local deadline=$((SECONDS + 20))
    until $PY -c "import socket,sys; socket.create_connection(('127.0.0.1',$1),0.2)" 2>/dev/null; do
        [ $SECONDS -lt $deadline ] || { echo "quickstart: $2 did not come up" >&2; return 1; }
        sleep 0.1
    done
}
# start LOG CMD...: runs CMD in its own process group, output to LOG.
start() {
    local log=$1; shift
    setsid "$@" >"$log" 2>&1 &
    pids+=($!)
}

step "dataset: $FILES files, ~$TOTAL_MB MB of random bytes, 4 KB .. 8 MB ($tmp/data)"
$PY - "$tmp/data" "$FILES" "$TOTAL_MB" <<'EOF'
import math, os, random, sys
root, count, total_mb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(42)
# log-uniform sizes between 4 KB and 8 MB, scaled to the total
raw = [math.exp(rng.uniform(math.log(4096), math.log(8 << 20))) for _ in range(count)]
scale = total_mb * 1e6 / sum(raw)
sizes = [max(4096, min(8 << 20, int(s * scale))) for s in raw]
os.makedirs(root)
for i, size in enumerate(sizes):
    d = os.path.join(root, f"shard-{i % 8}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"sample-{i:04d}.bin"), "wb") as f:
        f.write(os.urandom(size))
print(f"{len(sizes)} files, {sum(sizes) / 1e6:.0f} MB")
EOF

step "origin: nginx on loopback"
nginx_port=$(free_port)
mkdir -p "$tmp/nginx"
cat >"$tmp/nginx/nginx.conf" <<EOF
user root;
worker_processes 2;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log warn;
events { worker_connections 512; }
http {
  access_log $tmp/nginx/access.log;
  client_body_temp_path $tmp/nginx/body; proxy_temp_path $tmp/nginx/proxy;
  fastcgi_temp_path $tmp/nginx/fastcgi; uwsgi_temp_path $tmp/nginx/uwsgi;
  scgi_temp_path $tmp/nginx/scgi;
  default_type application/octet-stream;
  sendfile on;
  server { listen 127.0.0.1:$nginx_port; root $tmp; }
}
EOF
start "$tmp/nginx/stdout.log" /usr/sbin/nginx -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" \
    -e "$tmp/nginx/error.log" -g 'daemon off;'
wait_port "$nginx_port" nginx
origin="http://127.0.0.1:$nginx_port/data"
echo "serving $origin/"

step "cluster: $NODES shoald node(s)"
seeds=""
gossip_seeds=""
for i in $(seq 1 "$NODES"); do
    port=$(free_port)
    gport=$(free_port)
    args=(--name "node$i" --data-dir "$tmp/node$i" --capacity 2G
          --listen "tcp://127.0.0.1:$port" --gossip "tcp://127.0.0.1:$gport"
          --mount "$origin/" --log-level warn)
    [ -n "$gossip_seeds" ] && args+=(--seeds "$gossip_seeds")
    start "$tmp/node$i.log" build/node/shoald "${args[@]}"
    wait_port "$port" "shoald node$i" || { tail -20 "$tmp/node$i.log" >&2; exit 1; }
    seeds+="${seeds:+,}127.0.0.1:$port"
    gossip_seeds+="${gossip_seeds:+,}127.0.0.1:$gport"
    echo "node$i: data 127.0.0.1:$port, gossip 127.0.0.1:$gport"
done
export SHOAL_SEEDS="$seeds"
step "shoal members"
build/tools/shoal members

step "warm the dataset (shoal warmup)"
(cd "$tmp" && find data -type f | sort) | sed "s|^data|$origin|" >"$tmp/uris.txt"
# HTTP has no listing, so the files are named in a list (`--from`, 32 in flight); a listable
# origin (s3://, file://) takes one `shoal warmup PREFIX`.
time build/tools/shoal warmup --from "$tmp/uris.txt" >"$tmp/warmup.log"
echo "warmed $(wc -l <"$tmp/uris.txt") files"

step "read it twice through shoalfs"
$PY - "$origin" "$tmp/uris.txt" <<'EOF'
import sys, time
import fsspec
import shoalfs  # registers the "shoal" protocol

origin, uri_file = sys.argv[1], sys.argv[2]
uris = [line.strip() for line in open(uri_file) if line.strip()]
fs = fsspec.filesystem("shoal", target_protocol="http")  # seeds from $SHOAL_SEEDS

def counters():
    total = {}
    for node in fs.stats().get("nodes", []):
        for key, value in node.get("counters", {}).items():
            if isinstance(value, (int, float)):
                total[key] = total.get(key, 0) + value
    return total

def hit_ratio(before, after):
    delta = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    # pages served from the cache (over ZeroMQ, or located for a short-circuit reader) and
    # pages the nodes had to fetch
    hits = delta.get("page_hits", 0) + delta.get("local_pages", 0)
    misses = delta.get("page_misses", 0)
    return hits / (hits + misses) if hits + misses else float("nan")

buf = bytearray(8 << 20)
for epoch in (1, 2):
    before = counters()
    start, total = time.perf_counter(), 0
    for uri in uris:
        with fs.open(uri, "rb") as f:
            while n := f.readinto(buf):
                total += n
    seconds = time.perf_counter() - start
    print(f"epoch {epoch}: {total / 1e6:.0f} MB in {seconds:.2f} s = {total / 1e6 / seconds:.0f} MB/s,"
          f" hit ratio {hit_ratio(before, counters()):.3f}")
EOF

step "shoal stats"
build/tools/shoal stats
echo
echo "quickstart: done (everything stops now)"
