#!/usr/bin/env bash
# Runs every test against the real PostgreSQL and Redis (prepared by setup.sh). Each API test
# gets its own database cloned from a migrated template and its own Redis key prefix.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"
exec cargo test --workspace --locked "$@"
