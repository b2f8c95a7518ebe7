#!/usr/bin/env bash
# Query plans of the ticket service's lists on 1,000,000 tickets (docs/indexes.md).
# Creates (and leaves) the database helpdesk_explain; ~30 s to generate.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=scripts/lib/deps.sh
source scripts/lib/deps.sh
ensure_postgres
PSQL=(psql -q -h 127.0.0.1 -U postgres)
"${PSQL[@]}" -c "DROP DATABASE IF EXISTS helpdesk_explain" -c "CREATE DATABASE helpdesk_explain"
command -v sqlx >/dev/null || cargo install sqlx-cli --no-default-features --features postgres,rustls --locked
export DATABASE_URL=postgres://postgres@127.0.0.1:5432/helpdesk_explain
sqlx migrate run --source shared/kit/migrations >/dev/null
sqlx migrate run --ignore-missing --source services/ticket/migrations >/dev/null
"${PSQL[@]}" helpdesk_explain -f scripts/sql/explain-seed.sql
"${PSQL[@]}" helpdesk_explain -f scripts/sql/explain-lists.sql
"${PSQL[@]}" helpdesk_explain -f scripts/sql/explain-deep.sql
