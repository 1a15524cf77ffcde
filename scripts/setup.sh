#!/usr/bin/env bash
# Makes this machine ready to build, run and test vrooli-rs:
#   - a Rust toolchain and a C compiler (for crates that build C code);
#   - PostgreSQL installed and running, with the role and database of config.toml's default
#     database.url (postgres://vrooli:vrooli@127.0.0.1:5432/vrooli; the role may create the
#     per-test databases);
#   - Redis installed and running on 127.0.0.1:6379.
# Missing packages are installed with apt when this runs as root on Debian/Ubuntu; otherwise it
# says what to install. Safe to run again: it only does what is missing.
set -euo pipefail

DB_USER=vrooli
DB_PASSWORD=vrooli
DB_NAME=vrooli
PG_HOST=127.0.0.1
PG_PORT=5432
REDIS_PORT=6379

say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }
is_root() { [ "$(id -u)" -eq 0 ]; }

APT_UPDATED=0
apt_install() {
    if is_root && command -v apt-get >/dev/null 2>&1; then
        if [ "$APT_UPDATED" -eq 0 ]; then
            say "apt-get update"
            apt-get update -qq
            APT_UPDATED=1
        fi
        say "installing $*"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
    else
        die "missing $*; install it (on Debian: sudo apt-get install $*) and run this again"
    fi
}

# --- toolchain -------------------------------------------------------------------------------
command -v cc >/dev/null 2>&1 || apt_install build-essential
command -v curl >/dev/null 2>&1 || apt_install curl ca-certificates
# `ss` (a test reads a listener's accept backlog with it) and `kill` (fault tests SIGSTOP Redis).
command -v ss >/dev/null 2>&1 || apt_install iproute2
[ -x /bin/kill ] || [ -x /usr/bin/kill ] || apt_install procps
# HAProxy: the load balancer of scripts/cluster.sh and of the balancer tests (deploy/haproxy.cfg).
command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || apt_install haproxy
if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi
if ! command -v cargo >/dev/null 2>&1; then
    # Debian's own cargo is too old for this project (it needs Rust 1.95); use rustup.
    say "installing the Rust toolchain with rustup"
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal \
        || die "could not install Rust; install it from https://rustup.rs and run this again"
    export PATH="$HOME/.cargo/bin:$PATH"
fi

# --- PostgreSQL ------------------------------------------------------------------------------
pg_ready() { pg_isready -q -h "$PG_HOST" -p "$PG_PORT" 2>/dev/null; }

if ! command -v pg_isready >/dev/null 2>&1 || ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    if ! command -v pg_isready >/dev/null 2>&1 || ! pg_ready; then
        apt_install postgresql postgresql-client
    fi
fi
if ! pg_ready; then
    if command -v pg_ctlcluster >/dev/null 2>&1 && ls /etc/postgresql >/dev/null 2>&1; then
        version=$(ls /etc/postgresql | sort -V | tail -n 1)
        say "starting PostgreSQL $version"
        if is_root; then
            pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
        else
            sudo -n pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>/dev/null || true
        fi
    fi
    for _ in $(seq 1 30); do pg_ready && break; sleep 1; done
    pg_ready || die "PostgreSQL is not answering on $PG_HOST:$PG_PORT; start it and run this again"
fi

# Runs SQL as the PostgreSQL superuser: over the local socket as the postgres OS user when we
# are root (Debian's default peer authentication), else over TCP as user postgres.
psql_admin() {
    if is_root && id postgres >/dev/null 2>&1; then
        su postgres -s /bin/sh -c "psql -v ON_ERROR_STOP=1 -qAtX -d postgres" 
    else
        psql -v ON_ERROR_STOP=1 -qAtX -h "$PG_HOST" -p "$PG_PORT" -U postgres -d postgres
    fi
}

psql_admin <<SQL || die "could not create the $DB_USER role and $DB_NAME database"
DO \$\$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$DB_USER') THEN
        CREATE ROLE $DB_USER LOGIN CREATEDB PASSWORD '$DB_PASSWORD';
    ELSE
        ALTER ROLE $DB_USER LOGIN CREATEDB;
    END IF;
END
\$\$;
SELECT 'CREATE DATABASE $DB_NAME OWNER $DB_USER'
WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = '$DB_NAME')
\gexec
SQL
say "PostgreSQL ready: database $DB_NAME, role $DB_USER"

# --- Redis -----------------------------------------------------------------------------------
redis_ready() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; }

command -v redis-server >/dev/null 2>&1 || apt_install redis-server
command -v redis-cli >/dev/null 2>&1 || apt_install redis-tools
if ! redis_ready; then
    say "starting Redis on 127.0.0.1:$REDIS_PORT"
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$REDIS_PORT" --save "" --appendonly no >/dev/null
    for _ in $(seq 1 30); do redis_ready && break; sleep 1; done
    redis_ready || die "Redis is not answering on 127.0.0.1:$REDIS_PORT"
fi
say "Redis ready on 127.0.0.1:$REDIS_PORT"
