# shellcheck shell=bash
# The local stack's services, shared by scripts/up.sh and scripts/down.sh:
# which binaries, on which ports, with which databases and environment, and
# how to start and stop them. Processes run in the background; logs go to
# .dev/logs/<name>.log and pids to .dev/pids/<name>.pid.
#
# Expects ROOT (the repository root) to be set and scripts/lib/deps.sh sourced.

DEV_DIR="$ROOT/.dev"
LOG_DIR="$DEV_DIR/logs"
PID_DIR="$DEV_DIR/pids"
# Where local services listen; 0.0.0.0 exposes them beyond this machine.
BIND_HOST=${BIND_HOST:-127.0.0.1}

# Start order. A service whose binary is not built yet is skipped. smtp-sink
# is tests/support/smtp_sink.py (aiosmtpd): every email is a file in .dev/mail.
STACK_SERVICES=(smtp-sink platform-standin ticket assignment notification scheduler)
SMTP_SINK_PORT=2525
PUSH_GATEWAY_PORT=50061

service_port() {
    case $1 in
        smtp-sink) echo "$SMTP_SINK_PORT" ;;
        platform-standin) echo 50060 ;;
        ticket) echo 50051 ;;
        assignment) echo 50052 ;;
        notification) echo 50053 ;;
        scheduler) echo 50054 ;;
        *) return 1 ;;
    esac
}

# The service's own database; empty for the stand-in, which has none.
service_db() {
    case $1 in
        platform-standin | smtp-sink) echo "" ;;
        *) echo "helpdesk_$1" ;;
    esac
}

service_grpc_names() {
    case $1 in
        platform-standin) echo "platform.accounts.v1.AccountsService, platform.rides.v1.RidesService" ;;
        ticket) echo "support.v1.TicketService, support.v1.AttachmentService, support.v1.CategoryService, support.v1.TicketJobsService, support.v1.OperationsService" ;;
        assignment) echo "support.v1.AssignmentService" ;;
        notification) echo "support.v1.NotificationService" ;;
        scheduler) echo "support.v1.SchedulerService" ;;
        smtp-sink) echo "SMTP; each email a file in .dev/mail/" ;;
        *) echo "" ;;
    esac
}

# Prints NAME=VALUE lines: the environment a service runs (and migrates) with.
# Variables already set in the caller's environment (JWT_SECRET, RUST_LOG,
# OTEL_EXPORTER_OTLP_ENDPOINT, ...) are inherited as they are.
service_env() {
    local name=$1 db
    db=$(service_db "$name")
    echo "LISTEN_ADDR=$BIND_HOST:$(service_port "$name")"
    # A local stack: accept the public development JWT secret unless a real
    # one is set (services refuse to start on it otherwise).
    echo "HELPDESK_DEV=${HELPDESK_DEV:-true}"
    echo "RUST_LOG=${RUST_LOG:-info}"
    # Text logs are easier to read in .dev/logs; production keeps JSON.
    echo "LOG_FORMAT=${LOG_FORMAT:-text}"
    if [ -n "$db" ]; then
        echo "DATABASE_URL=postgres://$PG_SUPERUSER@$PG_HOST:$PG_PORT/$db"
        # Prometheus metrics beside the gRPC port (docs/operations.md "Metrics").
        echo "METRICS_ADDR=$BIND_HOST:$(($(service_port "$name") + 1000))"
    fi
    local standin ticket
    standin="http://127.0.0.1:$(service_port platform-standin)"
    ticket="http://127.0.0.1:$(service_port ticket)"
    case $name in
        smtp-sink) ;;
        platform-standin)
            # Its push gateway stand-in: every push is a JSON line here.
            echo "PUSH_LISTEN_ADDR=$BIND_HOST:$PUSH_GATEWAY_PORT"
            echo "PUSH_LOG_FILE=$DEV_DIR/push.jsonl"
            ;;
        notification)
            echo "ACCOUNTS_ADDR=$standin"
            echo "SMTP_HOST=127.0.0.1"
            echo "SMTP_PORT=$SMTP_SINK_PORT"
            echo "PUSH_GATEWAY_URL=http://127.0.0.1:$PUSH_GATEWAY_PORT/v1/push"
            ;;
        ticket)
            echo "ACCOUNTS_ADDR=$standin"
            echo "RIDES_ADDR=$standin"
            # Where `ticket seed-demo` sends its CreateTicket calls.
            echo "SEED_TARGET=$ticket"
            # Attachment bytes, one file per attachment (docs/attachments.md).
            echo "ATTACHMENTS_STORE=$DEV_DIR/attachments"
            ;;
        assignment)
            echo "ACCOUNTS_ADDR=$standin"
            echo "TICKET_ADDR=$ticket"
            ;;
        scheduler)
            echo "TICKET_ADDR=$ticket"
            ;;
    esac
}

# run_with_env NAME CMD...: runs CMD in the foreground with NAME's environment.
run_with_env() {
    local name=$1
    shift
    local -a vars
    mapfile -t vars < <(service_env "$name")
    env "${vars[@]}" "$@"
}

# The file name NAME's process runs (its binary, or the sink's script).
service_proc_name() {
    case $1 in
        smtp-sink) echo smtp_sink.py ;;
        *) echo "$1" ;;
    esac
}

# The pid recorded for NAME, if that process still runs NAME's binary (a
# stale pid file may name a pid the system has since given to another process).
service_pid() {
    local name file="$PID_DIR/$1.pid" pid arg
    name=$(service_proc_name "$1")
    [ -f "$file" ] || return 1
    pid=$(<"$file")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    [ -r "/proc/$pid/cmdline" ] || return 1
    # Any argument, not just argv[0]: for a moment after the start the
    # process is still `env ... nohup <binary>` on its way to exec.
    while IFS= read -r -d '' arg; do
        if [ "${arg##*/}" = "$name" ]; then
            echo "$pid"
            return 0
        fi
    done <"/proc/$pid/cmdline"
    return 1
}

# stop_service NAME: SIGTERM (graceful drain), then SIGKILL after 20 s.
stop_service() {
    local name=$1 pid
    if pid=$(service_pid "$name"); then
        printf '[stack] stopping %s (pid %s)\n' "$name" "$pid" >&2
        kill -TERM "$pid" 2>/dev/null || true
        local deadline=$((SECONDS + 20))
        while kill -0 "$pid" 2>/dev/null; do
            if [ "$SECONDS" -ge "$deadline" ]; then
                printf '[stack] %s did not stop in 20 s; killing it\n' "$name" >&2
                kill -KILL "$pid" 2>/dev/null || true
                break
            fi
            sleep 0.2
        done
    fi
    rm -f "$PID_DIR/$name.pid"
}

stop_all() {
    local i
    for ((i = ${#STACK_SERVICES[@]} - 1; i >= 0; i--)); do
        stop_service "${STACK_SERVICES[i]}"
    done
}

# start_service NAME CMD...: starts CMD in the background with NAME's environment.
start_service() {
    local name=$1
    shift
    mkdir -p "$LOG_DIR" "$PID_DIR"
    local log="$LOG_DIR/$name.log"
    printf '\n==== %s: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >>"$log"
    local -a vars
    mapfile -t vars < <(service_env "$name")
    # A plain command (env and nohup exec in turn), so $! is the service's own pid.
    env "${vars[@]}" nohup "$@" </dev/null >>"$log" 2>&1 &
    echo $! >"$PID_DIR/$name.pid"
    printf '[stack] started %s (pid %s), log %s\n' "$name" "$!" "${log#"$ROOT"/}" >&2
}

# grpc_serving PORT: true when the server's health check says SERVING (needs
# buf; health and reflection are open, so no token).
grpc_serving() {
    local port=$1
    timeout 5 buf curl --protocol grpc --http2-prior-knowledge -d '{}' \
        "http://127.0.0.1:$port/grpc.health.v1.Health/Check" 2>/dev/null | grep -q SERVING
}

# wait_healthy NAME: waits until NAME's port answers (and, with buf, until its
# health check says SERVING). Fails early if the process exits.
wait_healthy() {
    local name=$1 port pid
    port=$(service_port "$name")
    local deadline=$((SECONDS + ${STACK_WAIT_SECS:-60}))
    while :; do
        # The raw pid: just after the fork it is not yet the service's binary.
        pid=$(<"$PID_DIR/$name.pid")
        if ! kill -0 "$pid" 2>/dev/null; then
            printf '[stack] %s exited; the end of %s:\n' "$name" "${LOG_DIR#"$ROOT"/}/$name.log" >&2
            tail -n 30 "$LOG_DIR/$name.log" >&2 || true
            return 1
        fi
        port_open 127.0.0.1 "$port" && break
        if [ "$SECONDS" -ge "$deadline" ]; then
            printf '[stack] %s is not listening on %s after %s s\n' "$name" "$port" "${STACK_WAIT_SECS:-60}" >&2
            return 1
        fi
        sleep 0.2
    done
    if have buf && [ "$name" != smtp-sink ]; then
        local tries=0
        until grpc_serving "$port"; do
            tries=$((tries + 1))
            if [ "$tries" -ge 20 ]; then
                printf '[stack] WARNING: %s listens on %s but its health check does not say SERVING\n' "$name" "$port" >&2
                return 0
            fi
            sleep 0.5
        done
        printf '[stack] %s: SERVING on %s\n' "$name" "$port" >&2
    else
        printf '[stack] %s: listening on %s\n' "$name" "$port" >&2
    fi
}
