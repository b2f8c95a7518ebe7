#!/usr/bin/env bash
# Runs the whole Helpdesk system on this machine.
#
#   bash scripts/up.sh             debug build (fast to build)
#   PROFILE=release bash scripts/up.sh
#
# Makes sure PostgreSQL and RabbitMQ run (installing them if absent), builds
# every binary, creates and migrates each service's database, starts a local
# SMTP sink (mail in .dev/mail), the platform stand-in (its push gateway
# writes .dev/push.jsonl) and every built service in the background, waits until
# each is healthy and seeds demo tickets. Re-running restarts the services.
# Stop them with `bash scripts/down.sh`.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=scripts/lib/deps.sh
source scripts/lib/deps.sh
# shellcheck source=scripts/lib/stack.sh
source scripts/lib/stack.sh

PROFILE=${PROFILE:-debug}
case $PROFILE in
    debug) build_flags=() ;;
    release) build_flags=(--release) ;;
    *)
        echo "PROFILE must be debug or release, not '$PROFILE'" >&2
        exit 2
        ;;
esac
# The same build settings as scripts/test.sh, so the two share one build.
# shellcheck source=scripts/lib/build-env.sh
source scripts/lib/build-env.sh
BIN_DIR="${CARGO_TARGET_DIR:-$ROOT/target}/$PROFILE"

ensure_toolchain
ensure_postgres
ensure_rabbitmq
if ! ensure_buf; then
    warn "buf is unavailable: health is checked by TCP only, and the buf curl examples will not run"
fi

echo "==> cargo build --workspace --bins ${build_flags[*]}" >&2
cargo build --workspace --bins "${build_flags[@]}"

stop_all

started=()
for name in "${STACK_SERVICES[@]}"; do
    if [ "$name" = smtp-sink ]; then
        # Not a binary: the aiosmtpd script, from the tools venv.
        if port_open 127.0.0.1 "$SMTP_SINK_PORT"; then
            warn "port $SMTP_SINK_PORT is taken; the notification service will send its email there"
        elif ensure_aiosmtpd; then
            start_service smtp-sink "$TOOLS_DIR/venv/bin/python" "$ROOT/tests/support/smtp_sink.py" \
                --host "$BIND_HOST" --port "$SMTP_SINK_PORT" --dir "$DEV_DIR/mail"
            wait_healthy smtp-sink
            started+=(smtp-sink)
        else
            warn "no aiosmtpd: emails are retried until an SMTP server listens on $SMTP_SINK_PORT"
        fi
        continue
    fi
    bin="$BIN_DIR/$name"
    if [ ! -x "$bin" ]; then
        continue
    fi
    port=$(service_port "$name")
    if port_open 127.0.0.1 "$port"; then
        echo "port $port (for $name) is taken by another process; stop it first" >&2
        exit 1
    fi
    db=$(service_db "$name")
    if [ -n "$db" ]; then
        create_db "$db"
        echo "==> $name migrate" >&2
        run_with_env "$name" "$bin" migrate
        start_service "$name" "$bin" serve
    else
        start_service "$name" "$bin"
    fi
    wait_healthy "$name"
    started+=("$name")
done

if [ ! -x "$BIN_DIR/ticket" ]; then
    echo "the ticket binary was not built; nothing to seed" >&2
    exit 1
fi
echo "==> ticket seed-demo" >&2
run_with_env ticket "$BIN_DIR/ticket" seed-demo

rel_bin=${BIN_DIR#"$ROOT"/}
cat <<SUMMARY

Helpdesk is up ($PROFILE build). PostgreSQL on $PG_HOST:$PG_PORT, RabbitMQ on $AMQP_HOST:$AMQP_PORT.

SUMMARY
for name in "${started[@]}"; do
    printf '  %-17s %-17s %s\n' "$name" "$BIND_HOST:$(service_port "$name")" "$(service_grpc_names "$name")"
done
cat <<SUMMARY

Health and reflection need no token; everything else needs a JWT.
Mint one (alice, a demo user; sam, a demo staff member):

  TOKEN=\$($rel_bin/mint-token 0a000000-0000-4000-8000-000000000001 user)
  STAFF=\$($rel_bin/mint-token 0b000000-0000-4000-8000-000000000001 staff)

Create a ticket about alice's ride, then list her tickets:

  buf curl --protocol grpc --http2-prior-knowledge -H "authorization: Bearer \$TOKEN" \\
    -d '{"ride_id":"0d000000-0000-4000-8000-000000000001","category_id":"ride_issue","subject":"Driver took a detour","description":"The fare was twice the estimate."}' \\
    http://127.0.0.1:$(service_port ticket)/support.v1.TicketService/CreateTicket
  buf curl --protocol grpc --http2-prior-knowledge -H "authorization: Bearer \$TOKEN" -d '{}' \\
    http://127.0.0.1:$(service_port ticket)/support.v1.TicketService/ListTickets

More in README.md. Logs: .dev/logs/<name>.log. Stop everything: bash scripts/down.sh
SUMMARY
