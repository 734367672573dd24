#!/usr/bin/env bash
# test_cluster_netns.sh - three shoald nodes on "real hosts": each in its own network namespace
# with its own address (10.77.0.11-13/24, only inside namespaces this test creates), joined by
# veth pairs to a bridge in a dedicated bridge namespace; a client in a fourth namespace
# (10.77.0.100). Cutting one node off (its bridge port down) makes the others mark it dead
# while reads from the client go on with correct bytes; bringing it back makes it alive again
# everywhere. Needs root and `ip netns`; skips (exit 77, which ctest reports as skipped)
# otherwise. Every namespace and link is deleted on exit, also on failure.
set -uo pipefail
build=${SHOAL_BUILD_DIR:?set SHOAL_BUILD_DIR}
shoald=$build/node/shoald
shoal=$build/tools/shoal
tag=shoal$$
br_ns=$tag-br
client_ns=$tag-cl
nodes=3
pids=()
tmp=$(mktemp -d "${TMPDIR:-/tmp}/shoal-netns-XXXXXX")

skip() { echo "test_cluster_netns: SKIP: $*"; rm -rf "$tmp"; exit 77; }
[ "$(id -u)" = 0 ] || skip "needs root (network namespaces)"
ip netns add "$tag-probe" 2>/dev/null || skip "ip netns add failed (no CAP_SYS_ADMIN or no netns support)"
ip netns del "$tag-probe"

cleanup() {
    local status=$?
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null; done
    for pid in "${pids[@]}"; do
        for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null
    done
    for ns in "$client_ns" $(for i in $(seq $nodes); do echo "$tag-n$i"; done) "$br_ns"; do
        ip netns del "$ns" 2>/dev/null
    done
    if [ $status -ne 0 ] && [ $status -ne 77 ]; then
        for log in "$tmp"/*.log; do echo "== $log"; tail -30 "$log"; done
    fi
    rm -rf "$tmp"
    exit $status
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() { echo "test_cluster_netns: FAIL: $*"; exit 1; }

# --- network: bridge namespace with br0; one veth per node/client namespace ---
ip netns add "$br_ns" || fail "netns add"
ip -n "$br_ns" link add br0 type bridge || fail "bridge"
ip -n "$br_ns" link set br0 up
ip -n "$br_ns" link set lo up
# attach NS ADDRESS PORT-NAME: veth pair, inside end eth0 with ADDRESS, outer end on br0
attach() {
    local ns=$1 address=$2 port=$3
    ip netns add "$ns" || fail "netns add $ns"
    ip -n "$ns" link set lo up
    ip -n "$ns" link add eth0 type veth peer name "$port" netns "$br_ns" || fail "veth $port"
    ip -n "$ns" addr add "$address/24" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$br_ns" link set "$port" master br0
    ip -n "$br_ns" link set "$port" up
}
for i in $(seq $nodes); do attach "$tag-n$i" "10.77.0.1$i" "p$i"; done
attach "$client_ns" 10.77.0.100 pc

# --- data: a file:// origin every namespace sees (same file system) ---
mkdir -p "$tmp/data"
python3 - "$tmp/data" <<'EOF'
import os, random, sys
rng = random.Random(5)
for i in range(6):
    with open(os.path.join(sys.argv[1], f"f{i}.bin"), "wb") as f:
        f.write(bytes(rng.getrandbits(8) for _ in range(300000 + 7 * i)))
EOF

start_node() {
    local i=$1 seeds=()
    [ "$i" -gt 1 ] && seeds=(--seeds 10.77.0.11:7071)
    ip netns exec "$tag-n$i" "$shoald" --name "n$i" --data-dir "$tmp/db$i" --capacity 256M \
        --listen "10.77.0.1$i:7070" --gossip "10.77.0.1$i:7071" --insecure \
        --mount "file://$tmp/data/" --page-size 64K --range-pages 4 --threads 2 \
        --fetch-threads 4 --probe-interval 200ms --probe-timeout 100ms --dead-forget 120s \
        --log-level info "${seeds[@]}" >>"$tmp/n$i.log" 2>&1 &
    pids+=($!)
}
for i in $(seq $nodes); do start_node "$i"; done
seeds_all=10.77.0.11:7070,10.77.0.12:7070,10.77.0.13:7070

# state SEEN_BY SUBJECT: state of node SUBJECT in node SEEN_BY's view ("" if none)
state() {
    ip netns exec "$client_ns" "$shoal" --seeds "10.77.0.1$1:7070" --timeout 500 members --json \
        2>/dev/null | python3 -c '
import json, sys
want = "tcp://10.77.0.1" + sys.argv[1] + ":7070"
try:
    doc = json.load(sys.stdin)
except Exception:
    sys.exit(0)
for m in doc.get("members", []):
    if m.get("data") == want:
        print(m["state"])' "$2"
}
# wait_state SUBJECT STATE SECONDS [SKIP]: until every node but SKIP sees SUBJECT in STATE
wait_state() {
    local subject=$1 want=$2 seconds=$3 skip=${4:-0} deadline=$((SECONDS + $3))
    while :; do
        local ok=1
        for i in $(seq $nodes); do
            [ "$i" = "$skip" ] && continue
            [ "$(state "$i" "$subject")" = "$want" ] || { ok=0; break; }
        done
        [ $ok = 1 ] && return 0
        [ $SECONDS -lt $deadline ] || return 1
        sleep 0.2
    done
}
start=$SECONDS
for i in $(seq $nodes); do wait_state "$i" alive 20 || fail "node $i not alive everywhere"; done
echo "cluster of $nodes formed in $((SECONDS - start)) s"

# reader CHECKS: reads every file CHECKS times through the cluster from the client namespace
reads_ok=0
reads_bad=0
read_all() {
    for f in "$tmp"/data/f*.bin; do
        if ip netns exec "$client_ns" "$shoal" --seeds "$seeds_all" --timeout 1000 \
            cat "file://$f" 2>>"$tmp/client.log" | cmp -s - "$f"; then
            reads_ok=$((reads_ok + 1))
        else
            reads_bad=$((reads_bad + 1))
            echo "bad read of $f" >>"$tmp/client.log"
        fi
    done
}
read_all
[ $reads_bad = 0 ] || fail "$reads_bad reads failed before the cut"

echo "cutting node 3 off (its bridge port down)"
ip -n "$br_ns" link set p3 down
cut=$SECONDS
# reads go on while the others find out, and after
while ! wait_state 3 dead 0 3; do
    read_all
    [ $((SECONDS - cut)) -lt 20 ] || fail "node 3 was not marked dead by the others in 20 s"
done
echo "node 3 marked dead by the others after $((SECONDS - cut)) s"
read_all
[ $reads_bad = 0 ] || fail "$reads_bad of $((reads_ok + reads_bad)) reads failed during the cut"

echo "bringing node 3 back"
ip -n "$br_ns" link set p3 up
back=$SECONDS
wait_state 3 alive 30 || fail "node 3 did not come back alive in 30 s"
echo "node 3 alive again everywhere after $((SECONDS - back)) s"
for i in 1 2; do wait_state "$i" alive 10 || fail "node $i not alive in every view after the heal"; done
read_all
[ $reads_bad = 0 ] || fail "$reads_bad reads failed"
echo "test_cluster_netns: PASS ($reads_ok reads, all bytes right, $((SECONDS - start)) s)"
