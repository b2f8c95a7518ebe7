#!/usr/bin/env bash
# Regenerates the sqlx offline query data in .sqlx/ (commit it). Builds use it
# with SQLX_OFFLINE=true, so they need no live database (docs/build.md).
#
#   bash scripts/sqlx-prepare.sh           rewrite .sqlx/
#   bash scripts/sqlx-prepare.sh --check   fail if .sqlx/ is out of date
#
# Applies the kit's migrations, then every service's, to one scratch database
# (helpdesk_sqlx_prepare), and asks `cargo sqlx prepare` to check every query
# of every crate and target against it.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=scripts/lib/deps.sh
source scripts/lib/deps.sh

DB=helpdesk_sqlx_prepare
URL="postgres://$PG_SUPERUSER@$PG_HOST:$PG_PORT/$DB"

ensure_toolchain
ensure_postgres
if ! have sqlx || ! cargo sqlx --version >/dev/null 2>&1; then
    say "cargo install sqlx-cli --no-default-features --features postgres,rustls --locked (about 1.5 min on 2 cores)"
    cargo install sqlx-cli --no-default-features --features postgres,rustls --locked
fi

say "recreating database $DB"
pg_psql -d postgres -c "drop database if exists \"$DB\" with (force)"
pg_psql -d postgres -c "create database \"$DB\""

# The kit's tables first (versions 1..999), then each service's (timestamps).
# --ignore-missing: each source knows only its own versions.
migration_dirs=(shared/kit/migrations)
for dir in services/*/migrations; do
    [ -d "$dir" ] && migration_dirs+=("$dir")
done
for dir in "${migration_dirs[@]}"; do
    say "sqlx migrate run --source $dir"
    sqlx migrate run --ignore-missing --source "$dir" --database-url "$URL"
done

# Online mode for this one run: the macros read the scratch database.
unset SQLX_OFFLINE
DATABASE_URL="$URL" cargo sqlx prepare --workspace "$@" -- --all-targets
say "done: .sqlx/ matches the migrations and queries (commit it)"
