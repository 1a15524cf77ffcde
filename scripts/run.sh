#!/usr/bin/env bash
# Runs one vrooli node: prepares PostgreSQL and Redis, builds the release binary, then
# `vrooli serve`, which migrates, seeds and serves on port 5329 until SIGTERM/SIGINT.
# Extra arguments go to `vrooli serve` (e.g. --port 5330); VROOLI__* variables override config.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"
exec cargo run --release --bin vrooli -- serve "$@"
