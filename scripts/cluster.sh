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

# setup.sh also installs HAProxy with apt when it is missing.
./scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --release --bin vrooli
BIN="${CARGO_TARGET_DIR:-target}/release/vrooli"

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

for ((i = 0; i < N; i++)); do
    VROOLI__NODE__WORKER_ID=$i VROOLI__SERVER__PORT=$((BASE + i)) VROOLI__SERVER__BEHIND_PROXY=true \
        "$BIN" serve &
    pids+=($!)
    if [ "$i" -eq 0 ]; then
        # The first node migrates and seeds; the others start once it serves.
        for _ in $(seq 600); do healthy "$BASE" && break; sleep 0.1; done
        healthy "$BASE" || { echo "cluster: node 0 did not become healthy" >&2; exit 1; }
    fi
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
