#!/usr/bin/env bash
# The REST contract, as CI checks it (scripts/test.sh runs it; docs/api.md):
#   1. the checker's own tests (a missing endpoint and a collision must fail);
#   2. the descriptor set with imports is built and published to
#      target/api/helpdesk.binpb (and as buf's JSON image, helpdesk.json);
#   3. every endpoint in docs/original-endpoints.txt has exactly one
#      google.api.http rule, and no two rules collide;
#   4. docs/openapi.json (valid OpenAPI 3.1) and the RPC table in docs/api.md
#      are what the rules generate.
#
#   bash scripts/check-api.sh           check
#   bash scripts/check-api.sh --write   regenerate docs/openapi.json and the table
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=scripts/lib/deps.sh
source scripts/lib/deps.sh
ensure_buf >/dev/null 2>&1 || ensure_buf

OUT="${CARGO_TARGET_DIR:-$ROOT/target}/api"
mkdir -p "$OUT"

python3 -m unittest -q scripts/test_api_contract.py
buf build --as-file-descriptor-set -o "$OUT/helpdesk.binpb"
buf build -o "$OUT/helpdesk.json"
python3 scripts/api_contract.py check "$OUT/helpdesk.json"
python3 scripts/api_contract.py openapi "$OUT/helpdesk.json" "$OUT/openapi.json"
cp docs/api.md "$OUT/api.md"
python3 scripts/api_contract.py table "$OUT/helpdesk.json" "$OUT/api.md"

# The generated description must be valid OpenAPI (validator in the tools venv).
_tools_venv
if ! "$TOOLS_DIR/venv/bin/python" -c 'import openapi_spec_validator' 2>/dev/null; then
    say "pip install openapi-spec-validator (into $TOOLS_DIR/venv)"
    "$TOOLS_DIR/venv/bin/pip" install -q --disable-pip-version-check openapi-spec-validator
fi
"$TOOLS_DIR/venv/bin/python" -c 'import json, sys; from openapi_spec_validator import validate; validate(json.load(open(sys.argv[1])))' "$OUT/openapi.json"

if [ "${1:-}" = --write ]; then
    cp "$OUT/openapi.json" docs/openapi.json
    cp "$OUT/api.md" docs/api.md
    say "wrote docs/openapi.json and the RPC table of docs/api.md"
else
    stale=0
    for f in openapi.json api.md; do
        if ! cmp -s "$OUT/$f" "docs/$f"; then
            diff -u "docs/$f" "$OUT/$f" | head -40 >&2 || true
            stale=1
        fi
    done
    if [ "$stale" -ne 0 ]; then
        warn "generated API docs are stale: run bash scripts/check-api.sh --write and commit docs/"
        exit 1
    fi
fi
say "api: descriptor set in $OUT/helpdesk.binpb; docs/openapi.json and docs/api.md current"
