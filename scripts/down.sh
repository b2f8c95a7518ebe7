#!/usr/bin/env bash
# Stops the services scripts/up.sh started (SIGTERM, so they drain in-flight
# calls; SIGKILL after 20 s). PostgreSQL and RabbitMQ keep running: other
# things on this machine may use them.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=scripts/lib/deps.sh
source scripts/lib/deps.sh
# shellcheck source=scripts/lib/stack.sh
source scripts/lib/stack.sh

stop_all
echo "Helpdesk services stopped (logs kept in .dev/logs)." >&2
