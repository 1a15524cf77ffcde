#!/usr/bin/env bash
# Starts N vrooli nodes (default 3) and HAProxy in front of them on this machine.
#
#   ./scripts/cluster.sh [N]
#
# The balancer listens on CLUSTER_PORT (default 5329); node i on CLUSTER_BASE_PORT + i (default
# 5331, 5332, …) with worker id i. Every VROOLI__* variable of the caller reaches every node.
# HAProxy is installed with apt when missing (by setup.sh, with PostgreSQL and Redis).
# Ctrl-C or SIGTERM stops everything it started (nodes first, with SIGTERM, so they drain).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-3}
PORT=${CLUSTER_PORT:-5329}
BASE=${CLUSTER_BASE_PORT:-5331}
[[ "$N" =~ ^[1-9][0-9]*$ ]] || { echo "cluster: N must be a positive number, got '$N'" >&2; exit 2; }

# Refuse at once, before building, when something already listens where the cluster would
# (most often ./scripts/run.sh on 5329): otherwise a node or the balancer fails much later.
taken() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for p in "$PORT" $(seq "$BASE" $((BASE + N - 1))); do
    if taken "$p"; then
        echo "cluster: port $p is already in use (is ./scripts/run.sh or another cluster running?);" \
            "stop it, or choose other ports with CLUSTER_PORT / CLUSTER_BASE_PORT" >&2
        exit 1
    fi
done

# setup.sh also installs HAProxy with apt when it is missing.
./scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"
# VROOLI_BIN: a binary already built (the tests use theirs), else the release build.
if [ -n "${VROOLI_BIN:-}" ]; then
    BIN=$VROOLI_BIN
else
    cargo build --release --bin vrooli
    BIN="${CARGO_TARGET_DIR:-target}/release/vrooli"
fi

dir=$(mktemp -d)
pids=()
stop() {
    trap - EXIT INT TERM
    # Nodes first (they drain: 503 on /healthcheck, sockets closed with 1012), the balancer last.
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill -TERM "${pids[$i]}" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$dir"
}
trap stop EXIT INT TERM

{
    cat deploy/haproxy.cfg
    for ((i = 0; i < N; i++)); do
        echo "    server node$i 127.0.0.1:$((BASE + i)) check"
    done
} > "$dir/haproxy.cfg"

healthy() { curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$1/healthcheck" | grep -q 200; }

# A node whose worker id is held waits node.lease_wait_secs for it by default (a restart after a
# crash); here a held id means something else runs (./scripts/run.sh holds 0): stop at once.
export VROOLI__NODE__LEASE_WAIT_SECS=${VROOLI__NODE__LEASE_WAIT_SECS:-0}
for ((i = 0; i < N; i++)); do
    VROOLI__NODE__WORKER_ID=$i VROOLI__SERVER__PORT=$((BASE + i)) VROOLI__SERVER__BEHIND_PROXY=true \
        "$BIN" serve &
    pids+=($!)
    if [ "$i" -eq 0 ]; then
        # The first node migrates and seeds; the others start once it serves. A node that
        # exits (its worker id held by ./scripts/run.sh, say: it names it) stops the cluster at
        # once instead of after the wait.
        for _ in $(seq 600); do
            healthy "$BASE" && break
            kill -0 "${pids[0]}" 2>/dev/null || break
            sleep 0.1
        done
        healthy "$BASE" || {
            echo "cluster: node 0 (worker id 0, port $BASE) did not start; its log above says why" \
                "(e.g. node.worker_id 0 held by ./scripts/run.sh)" >&2
            exit 1
        }
    fi
done
# The other nodes: each serves or has said why it stopped.
for ((i = 1; i < N; i++)); do
    for _ in $(seq 600); do
        healthy $((BASE + i)) && break
        kill -0 "${pids[$i]}" 2>/dev/null || break
        sleep 0.1
    done
    healthy $((BASE + i)) || {
        echo "cluster: node $i (worker id $i, port $((BASE + i))) did not start; its log above says why" >&2
        exit 1
    }
done

HAPROXY=$(command -v haproxy || echo /usr/sbin/haproxy)
CLUSTER_BIND="127.0.0.1:$PORT" "$HAPROXY" -db -f "$dir/haproxy.cfg" &
balancer=$!
pids=("$balancer" "${pids[@]}")
echo "cluster: $N nodes on ports $BASE..$((BASE + N - 1)) behind http://127.0.0.1:$PORT (Ctrl-C stops)"
# Runs until Ctrl-C / SIGTERM or the balancer ends. A node that dies (or is killed to try the
# cluster out) leaves the others serving; restart one by hand with the same variables:
#   VROOLI__NODE__WORKER_ID=i VROOLI__SERVER__PORT=$((BASE + i)) VROOLI__SERVER__BEHIND_PROXY=true $BIN serve
wait "$balancer"
