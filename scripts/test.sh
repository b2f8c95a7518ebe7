#!/usr/bin/env bash
# Runs the whole test suite: formatting, protobuf lint, clippy, then every
# test in the workspace with cargo-nextest (one build; see docs/build.md).
#
#   bash scripts/test.sh                  everything
#   bash scripts/test.sh -E 'test(auth)'  extra arguments go to `cargo nextest run`
#
# Installs or starts what it needs when absent (PostgreSQL, RabbitMQ,
# cargo-nextest, buf, kubectl, kubernetes-validate), so it works from a
# fresh clone; `.ci/run` calls it.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=scripts/lib/deps.sh
source scripts/lib/deps.sh

# The same build settings as scripts/up.sh, so the two share one build.
# shellcheck source=scripts/lib/build-env.sh
source scripts/lib/build-env.sh
: "${CARGO_TERM_COLOR:=never}" # plain logs
export CARGO_TERM_COLOR

# Clippy expands every sqlx query online against this scratch database and
# writes what it learns to SQLX_CHECK_DIR; the "sqlx data" step compares that
# with the committed .sqlx/ (so CI needs no sqlx-cli).
SQLX_CHECK_DB=helpdesk_sqlx_check
SQLX_CHECK_URL="postgres://$PG_SUPERUSER@$PG_HOST:$PG_PORT/$SQLX_CHECK_DB"
SQLX_CHECK_DIR="${CARGO_TARGET_DIR:-$ROOT/target}/sqlx-check"

TIMINGS=()
SUITE_START=$SECONDS

# step NAME CMD...: runs CMD, prints how long it took, stops the suite if it failed.
step() {
    local name=$1
    shift
    local start=$SECONDS rc=0
    printf '\n==> %s: %s\n' "$name" "$*"
    "$@" || rc=$?
    local result=ok line
    [ "$rc" -eq 0 ] || result=FAILED
    line=$(printf '%-6s %5ds  %s' "$result" "$((SECONDS - start))" "$name")
    TIMINGS+=("$line")
    printf '==> %s\n' "$line"
    if [ "$rc" -ne 0 ]; then
        summary
        exit "$rc"
    fi
}

summary() {
    printf '\n==> summary (%ds in all)\n' "$((SECONDS - SUITE_START))"
    printf '    %s\n' "${TIMINGS[@]}"
}

# Everything the suite needs, installed or started only when absent.
dependencies() {
    ensure_toolchain && ensure_lint_tools && ensure_postgres && ensure_rabbitmq &&
        ensure_nextest && ensure_buf && ensure_aiosmtpd && ensure_moto
}

# A scratch database with the kit's migrations, then every service's (the same
# schema scripts/sqlx-prepare.sh builds), applied with psql: no sqlx-cli needed.
sqlx_check_db() {
    pg_psql -d postgres -c "drop database if exists \"$SQLX_CHECK_DB\" with (force)" &&
        pg_psql -d postgres -c "create database \"$SQLX_CHECK_DB\"" || return 1
    local f
    for f in shared/kit/migrations/*.sql services/*/migrations/*.sql; do
        [ -f "$f" ] || continue
        pg_psql -d "$SQLX_CHECK_DB" -f "$f" >/dev/null || return 1
    done
    rm -rf "$SQLX_CHECK_DIR" && mkdir -p "$SQLX_CHECK_DIR"
}

# Clippy, with the sqlx macros online: they describe each query against the
# scratch database and write its data to SQLX_CHECK_DIR.
clippy_online() {
    env SQLX_OFFLINE=false DATABASE_URL="$SQLX_CHECK_URL" SQLX_OFFLINE_DIR="$SQLX_CHECK_DIR" \
        cargo clippy --workspace --all-targets -- -D warnings
}

# Every query clippy expanded must have the same data in .sqlx/. Clippy expands
# every query in a fresh clone (CI); locally, crates clippy found up to date
# are not re-expanded, and their queries are not checked.
sqlx_data_current() {
    local f name bad=0 n=0
    for f in "$SQLX_CHECK_DIR"/query-*.json; do
        [ -f "$f" ] || continue
        n=$((n + 1))
        name=${f##*/}
        if [ ! -f ".sqlx/$name" ]; then
            printf 'missing from .sqlx/: %s\n' "$name" >&2
            bad=1
        elif ! cmp -s "$f" ".sqlx/$name"; then
            printf 'out of date in .sqlx/: %s\n' "$name" >&2
            diff -u ".sqlx/$name" "$f" >&2 || true
            bad=1
        fi
    done
    if [ "$bad" -ne 0 ]; then
        printf '.sqlx/ does not match the queries and migrations: run bash scripts/sqlx-prepare.sh and commit .sqlx/\n' >&2
        return 1
    fi
    if [ "$n" -eq 0 ]; then
        printf 'clippy re-expanded no query (its crates were up to date): nothing checked\n' >&2
    else
        printf '%d queries checked against .sqlx/ (%d files there)\n' "$n" "$(find .sqlx -name 'query-*.json' | wc -l)" >&2
    fi
}

# buf breaking against the previous commit: in CI, HEAD is main's tip, so
# HEAD~1 is main before this change (a merge's first parent). Another base:
# BUF_BREAKING_AGAINST=<ref> (e.g. main on a branch). Nothing to compare on
# the first commit, or before the protos had a buf.yaml.
buf_breaking() {
    local against=${BUF_BREAKING_AGAINST:-HEAD~1} sha
    if ! sha=$(git rev-parse --verify -q "$against^{commit}"); then
        if [ -n "${BUF_BREAKING_AGAINST:-}" ]; then
            printf 'buf breaking: BUF_BREAKING_AGAINST=%s names no commit\n' "$against" >&2
            return 1
        elif [ "$(git rev-parse --is-shallow-repository 2>/dev/null)" = true ]; then
            printf 'buf breaking: %s is not in this shallow clone; run `git fetch --unshallow` to compare\n' "$against" >&2
        else
            printf 'buf breaking: no %s (the first commit): nothing to compare against\n' "$against" >&2
        fi
        return 0
    fi
    if ! git cat-file -e "$sha:buf.yaml" 2>/dev/null; then
        printf 'buf breaking: %s has no buf.yaml: nothing to compare against\n' "$against" >&2
        return 0
    fi
    printf 'buf breaking: against %s (%s)\n' "$against" "$(git log -1 --format='%h %s' "$sha")" >&2
    buf breaking --against ".git#ref=$sha"
}

step "dependencies" dependencies
step "cargo fmt" cargo fmt --all --check
step "buf lint" buf lint
step "buf breaking" buf_breaking
# The REST contract: original endpoints served, no collision, OpenAPI current (docs/api.md).
step "api contract" bash scripts/check-api.sh
# Kubernetes manifests: render, schema-validate, policy (docs/deploy.md).
step "deploy manifests" bash scripts/check-deploy.sh
step "sqlx db" sqlx_check_db
step "clippy" clippy_online
step "sqlx data" sqlx_data_current
# The end-to-end suite (tests/e2e) runs the real binaries from target/.
step "binaries" cargo build --workspace --bins
step "nextest" cargo nextest run --workspace --no-fail-fast "$@"
# The performance harness on the debug binaries above: a tiny data set, every
# hot path for about a second; fails unless every call succeeded, asserts no
# timing (docs/performance.md).
step "bench smoke" "${CARGO_TARGET_DIR:-$ROOT/target}/debug/bench" paths --smoke
summary
