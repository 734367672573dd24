#!/usr/bin/env bash
# test_cli.sh - the `shoal` command against a real shoald on a free loopback port, over a
# file:// mount of a temp dir: members, stats (table and JSON), ls, stat, cat (whole, ranged,
# binary safe), warmup (a prefix, a file, a missing file listed as failed with exit 1; the files
# of a list, from a file and from stdin, with a missing file and a bad line among them, the
# others read back as page hits with no UFS read), evict, keygen, and bad usage (--jobs 0
# among it) exiting 2. Always stops the node and removes the temp dir.
set -uo pipefail
build="${SHOAL_BUILD_DIR:?SHOAL_BUILD_DIR must point at the build directory}"
shoal="$build/tools/shoal"
shoald="$build/node/shoald"
dir=$(mktemp -d "${TMPDIR:-/tmp}/shoal-cli-XXXXXX")
node_pid=""
failures=0

cleanup() {
    if [ -n "$node_pid" ] && kill -0 "$node_pid" 2>/dev/null; then
        kill -TERM "$node_pid" 2>/dev/null
        for _ in $(seq 50); do kill -0 "$node_pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$node_pid" 2>/dev/null
    fi
    rm -rf "$dir"
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}

# expect STATUS CMD...: runs CMD, keeps its stdout in $dir/out and stderr in $dir/err.
expect() {
    local want=$1
    shift
    "$@" >"$dir/out" 2>"$dir/err"
    local got=$?
    if [ "$got" -ne "$want" ]; then
        fail "'$*' exited $got, expected $want"
        sed 's/^/  stdout: /' "$dir/out" | head -20
        sed 's/^/  stderr: /' "$dir/err" | head -20
    fi
}

contains() { # contains FILE TEXT: FILE has TEXT
    grep -qF -- "$2" "$1" || { fail "$1 lacks '$2'"; sed 's/^/  /' "$1" | head -20; }
}

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$dir/data/sub"
head -c 3000000 /dev/urandom >"$dir/data/big.bin"
printf 'a\0b\nc' >"$dir/data/sub/bin.txt"
: >"$dir/data/empty"
"$shoald" --name cli1 --data-dir "$dir/db" --capacity 128M --listen "tcp://127.0.0.1:$port" \
    --mount "file://$dir/data/" --page-size 64K --range-pages 4 --threads 2 \
    --fetch-threads 4 >"$dir/shoald.log" 2>&1 </dev/null &
node_pid=$!
for _ in $(seq 200); do
    (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.05
done
export SHOAL_SEEDS="127.0.0.1:$port"
root="file://$dir/data"

expect 0 "$shoal" members
contains "$dir/out" "cli1"
contains "$dir/out" "alive"
contains "$dir/out" "tcp://127.0.0.1:$port"
expect 0 "$shoal" members --json
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["members"][0]["name"]=="cli1"' \
    "$dir/out" || fail "members --json is not the expected JSON"

expect 0 "$shoal" ls "$root/"
contains "$dir/out" "$root/big.bin"
contains "$dir/out" "$root/sub/"
expect 0 "$shoal" ls -r "$root/"
contains "$dir/out" "$root/sub/bin.txt"
expect 1 "$shoal" ls "$root/nothing-here"

expect 0 "$shoal" stat "$root/big.bin"
contains "$dir/out" "size:    3000000"
expect 1 "$shoal" stat "$root/missing"
contains "$dir/err" "not found"

expect 0 "$shoal" cat "$root/big.bin"
cmp -s "$dir/out" "$dir/data/big.bin" || fail "cat big.bin differs"
expect 0 "$shoal" cat "$root/sub/bin.txt"
cmp -s "$dir/out" "$dir/data/sub/bin.txt" || fail "cat is not binary safe"
expect 0 "$shoal" cat "$root/big.bin" --offset 65530 --length 300000
cmp -s "$dir/out" <(tail -c +65531 "$dir/data/big.bin" | head -c 300000) || fail "ranged cat differs"
# sizes in shoald's grammar (proto/units.h): 1.5M is 1572864 bytes, 64K 65536
expect 0 "$shoal" cat "$root/big.bin" --offset 64K --length 1.5M
cmp -s "$dir/out" <(tail -c +65537 "$dir/data/big.bin" | head -c 1572864) || fail "cat --length 1.5M differs"
expect 0 "$shoal" cat "$root/big.bin" --offset 1MiB --length 0.5k
cmp -s "$dir/out" <(tail -c +1048577 "$dir/data/big.bin" | head -c 512) || fail "cat --length 0.5k differs"
expect 0 "$shoal" --timeout 2.5s stat "$root/big.bin"
expect 0 "$shoal" --timeout 500ms stat "$root/big.bin"
expect 0 "$shoal" cat "$root/empty"
[ -s "$dir/out" ] && fail "cat of an empty file printed bytes"

expect 0 "$shoal" warmup "$root/" --parallel 2
contains "$dir/out" "warmup: 3 files"
contains "$dir/out" "0 failed"
expect 0 "$shoal" --timeout 5000 warmup "$root/big.bin" --replicas 1
contains "$dir/out" "1 files"
expect 1 "$shoal" warmup "$root/missing.bin"
contains "$dir/out" "failed:"
contains "$dir/out" "$root/missing.bin: not found"

expect 0 "$shoal" stats
contains "$dir/out" "HITS"
contains "$dir/out" "cli1"
expect 0 "$shoal" stats --json
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["nodes"][0]["counters"]; assert "fallback_ufs" in d["client"]' \
    "$dir/out" || fail "stats --json is not the expected JSON"

expect 0 "$shoal" evict "$root/"
contains "$dir/out" "evicted"

# warmup of the files a list names (a file, then stdin), a missing one and a bad line among
# them: both reported (the missing one as "not found", the bad line by its number), exit 1,
# and the others cached: reading them back is all page hits (over ZeroMQ, or located for a
# short-circuit read: the CLI runs on the node's host) and no UFS read.
mkdir -p "$dir/data/list"
for i in 1 2 3; do head -c $((70000 * i)) /dev/urandom >"$dir/data/list/f$i"; done
# counter NAME: the node's counter NAME from `shoal stats --json`
counter() {
    "$shoal" stats --json |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["nodes"][0]["counters"][sys.argv[1]])' "$1"
}
# hits: pages the node served, over ZeroMQ or by short-circuit
hits() { echo $(($(counter page_hits) + $(counter local_pages))); }
# read_back WHAT: cat every listed file, compare, and check that it took no UFS read
read_back() {
    local hits reads
    hits=$(hits)
    reads=$(counter ufs_reads)
    for i in 1 2 3; do
        "$shoal" cat "$root/list/f$i" | cmp -s - "$dir/data/list/f$i" || fail "$1: f$i read back differs"
    done
    [ "$(counter ufs_reads)" = "$reads" ] || fail "$1: reading the warmed files back read the UFS"
    [ "$(hits)" -gt "$hits" ] || fail "$1: reading the warmed files back had no page hits"
}
printf '%s\n' "# files to warm" "" "$root/list/f1" "  $root/list/f2" "$root/list/missing" \
    "not a uri" "$root/list/f3" >"$dir/list.txt"
expect 1 "$shoal" warmup --from "$dir/list.txt" --jobs 3
contains "$dir/out" "warmup: 5 files"
contains "$dir/out" "2 failed"
contains "$dir/out" "$root/list/missing: not found"
contains "$dir/out" "$dir/list.txt:6: not a URI"
grep -qF "$root/list/f1:" "$dir/out" && fail "warmup --from: f1 listed as failed"
read_back "warmup --from FILE"
expect 0 "$shoal" evict "$root/list/"
expect 1 "$shoal" warmup - <"$dir/list.txt"
contains "$dir/out" "warmup: 5 files"
contains "$dir/out" "$root/list/missing: not found"
contains "$dir/out" "stdin:6: not a URI"
read_back "warmup -"
expect 0 "$shoal" evict "$root/list/"
grep -v -e missing -e 'not a uri' "$dir/list.txt" >"$dir/good.txt"
expect 0 "$shoal" warmup --from - -j 1 <"$dir/good.txt"
contains "$dir/out" "warmup: 3 files"
contains "$dir/out" "0 failed"
read_back "warmup --from -"
expect 1 "$shoal" warmup --from "$dir/no-such-list"
contains "$dir/err" "cannot read the list"

expect 0 "$shoal" keygen -o "$dir/key"
[ "$(stat -c %a "$dir/key")" = "600" ] || fail "key file mode is not 0600"
[ "$(tr -d '\n' <"$dir/key" | wc -c)" = "64" ] || fail "key is not 64 hex digits"
expect 1 "$shoal" keygen -o "$dir/key"

# bad usage: exit 2 with a message
expect 2 "$shoal"
expect 2 "$shoal" frobnicate
contains "$dir/err" "unknown command"
expect 2 "$shoal" cat
expect 2 "$shoal" cat "$root/big.bin" --length lots
contains "$dir/err" "'lots' is not a size"
expect 2 "$shoal" cat "$root/big.bin" --length 1.5
contains "$dir/err" "'1.5' is not a size"
expect 2 "$shoal" cat "$root/big.bin" --offset 12Q
contains "$dir/err" "'12Q' is not a size"
expect 2 "$shoal" ls
expect 2 "$shoal" warmup "$root/" --parallel 0
expect 2 "$shoal" warmup "$root/" --jobs 0
contains "$dir/err" "--jobs '0' is not a count from 1 to 1024"
expect 2 "$shoal" warmup "$root/" --jobs lots
contains "$dir/err" "--jobs 'lots' is not a count"
expect 2 "$shoal" warmup "$root/" -j 2000
expect 2 "$shoal" warmup --from "$dir/list.txt" "$root/"
contains "$dir/err" "--from takes the place of a URI"
expect 2 "$shoal" --timeout abc members
contains "$dir/err" "is not a time"
expect 2 "$shoal" --timeout 2h members
expect 2 "$shoal" members --bogus
expect 2 "$shoal" keygen
expect 0 "$shoal" --help
contains "$dir/out" "warmup"
expect 0 "$shoal" cat --help

# the seeds from --seeds win over the environment; a dead cluster is an error for members
dead=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
expect 1 "$shoal" --seeds "127.0.0.1:$dead" --timeout 300 members
contains "$dir/err" "no node"
# ... but a read still works through the under storage
expect 0 "$shoal" --seeds "127.0.0.1:$dead" --timeout 300 cat "$root/sub/bin.txt"
cmp -s "$dir/out" "$dir/data/sub/bin.txt" || fail "fallback cat differs"

if [ "$failures" -ne 0 ]; then
    echo "test_cli: $failures failures; shoald log:"
    tail -20 "$dir/shoald.log"
    exit 1
fi
echo "test_cli: all passed"
