#!/usr/bin/env bash
# Runs the whole test suite: formatting, protobuf lint, clippy, then every
# test in the workspace with cargo-nextest (one build; see docs/build.md).
#
#   bash scripts/test.sh                  everything
#   bash scripts/test.sh -E 'test(auth)'  extra arguments go to `cargo nextest run`
#
# Installs or starts what it needs when absent (PostgreSQL, RabbitMQ,
# cargo-nextest, buf), so it works from a fresh clone; `.ci/run` calls it.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=scripts/lib/deps.sh
source scripts/lib/deps.sh

# CI-friendly defaults; each can be overridden from the environment.
: "${SQLX_OFFLINE:=true}"            # queries are checked against .sqlx/, no live DB needed to build
: "${CARGO_INCREMENTAL:=0}"          # clean builds: faster, half the disk
: "${CARGO_PROFILE_DEV_DEBUG:=0}"    # no debug info in test builds
: "${CARGO_TERM_COLOR:=never}"       # plain logs
export SQLX_OFFLINE CARGO_INCREMENTAL CARGO_PROFILE_DEV_DEBUG CARGO_TERM_COLOR

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
        ensure_nextest && ensure_buf
}

step "dependencies" dependencies
step "cargo fmt" cargo fmt --all --check
step "buf lint" buf lint
step "clippy" cargo clippy --workspace --all-targets -- -D warnings
# The end-to-end suite (tests/e2e) runs the real binaries from target/.
step "binaries" cargo build --workspace --bins
step "nextest" cargo nextest run --workspace --no-fail-fast "$@"
summary
