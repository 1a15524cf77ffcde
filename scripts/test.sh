#!/usr/bin/env bash
# Runs every test against the real PostgreSQL and Redis (prepared by setup.sh). Each API test
# gets its own database cloned from a migrated template and its own Redis key prefix.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
# The email tests deliver to a real SMTP server: aiosmtpd (Python).
if ! python3 -c 'import aiosmtpd' 2>/dev/null; then
    echo "test: installing aiosmtpd for the email tests"
    python3 -m pip install --quiet aiosmtpd 2>/dev/null \
        || python3 -m pip install --quiet --break-system-packages aiosmtpd 2>/dev/null \
        || { [ "$(id -u)" -eq 0 ] && apt-get install -y -qq python3-aiosmtpd >/dev/null; } \
        || { echo "test: error: install aiosmtpd (pip install aiosmtpd, or apt-get install python3-aiosmtpd)" >&2; exit 1; }
fi
# The MCP tests drive /mcp with the official Python client (PyPI `mcp`; no Debian package).
if ! python3 -c 'import mcp.client.streamable_http' 2>/dev/null; then
    echo "test: installing the MCP Python client for the MCP tests"
    if ! python3 -m pip --version >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
        apt-get install -y -qq python3-pip >/dev/null
    fi
    python3 -m pip install --quiet "mcp>=2.3" 2>/dev/null \
        || python3 -m pip install --quiet --break-system-packages "mcp>=2.3" 2>/dev/null \
        || { echo "test: error: install the MCP client (pip install mcp)" >&2; exit 1; }
fi
# The fuzzing test (tests/api/fuzz.rs) runs schemathesis against the OpenAPI document (PyPI).
if ! python3 -c 'import schemathesis.cli' 2>/dev/null; then
    echo "test: installing schemathesis for the API fuzzing test"
    python3 -m pip install --quiet "schemathesis>=4.3,<5" 2>/dev/null \
        || python3 -m pip install --quiet --break-system-packages "schemathesis>=4.3,<5" 2>/dev/null \
        || { echo "test: error: install schemathesis (pip install schemathesis)" >&2; exit 1; }
fi
# The S3 storage tests run against a real S3-compatible server started by the tests (PyPI moto).
if ! python3 -c 'import moto.server, flask' 2>/dev/null; then
    echo "test: installing moto[server] for the S3 storage tests"
    python3 -m pip install --quiet "moto[server]>=5,<6" 2>/dev/null \
        || python3 -m pip install --quiet --break-system-packages "moto[server]>=5,<6" 2>/dev/null \
        || { echo "test: error: install moto (pip install 'moto[server]')" >&2; exit 1; }
fi
# The Web Push tests send to a real push service fake that decrypts what it gets (npm
# web-push-testing); the billing tests sign webhooks with Stripe's own library (npm stripe).
# Both are installed once beside the build cache.
export VROOLI_NODE_DIR="${VROOLI_NODE_DIR:-$HOME/.cache/vrooli-rs/node}"
if [ ! -f "$VROOLI_NODE_DIR/node_modules/web-push-testing/src/bin/server.js" ] \
    || [ ! -f "$VROOLI_NODE_DIR/node_modules/stripe/package.json" ]; then
    echo "test: installing web-push-testing and stripe (npm) for the Web Push and billing tests"
    if ! command -v npm >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
        apt-get install -y -qq nodejs npm >/dev/null
    fi
    mkdir -p "$VROOLI_NODE_DIR"
    npm install --silent --no-audit --no-fund --prefix "$VROOLI_NODE_DIR" \
        web-push-testing@1.2.2 stripe@23.1.0 \
        || { echo "test: error: install web-push-testing and stripe (npm install web-push-testing stripe)" >&2; exit 1; }
fi
# The module arrows point one way (docs/ARCHITECTURE.md): no cycles between top-level modules.
python3 scripts/module_arrows.py src actors/src
export PATH="$HOME/.cargo/bin:$PATH"
exec cargo test --workspace --locked "$@"
