#!/usr/bin/env python3
"""The deployment policy: fails on any Deployment that could run unsafely.

    python3 scripts/deploy_policy.py RENDERED.yaml...   (kubectl kustomize output)

Schemas say a manifest is well formed; this says it is what docs/deploy.md
promises. Every container of every Deployment must have startup, readiness
and liveness probes, CPU and memory requests and a memory limit, and run
non-root with a read-only root filesystem, no privilege escalation, every
capability dropped and the RuntimeDefault seccomp profile; its pod must not
mount a service-account token. Secrets (database and broker URLs, JWT
secret, SMTP and push credentials) must come from Secret references, never a
literal or a ConfigMap. A Deployment of ours (it runs `<binary> serve`) must
give the stop more time than the preStop sleep plus the kit's drain
(SHUTDOWN_GRACE and CLOSE_LINGER in shared/kit/src/server.rs).

Prints one line per violation and exits 1 if there is any.
"""

import pathlib
import re
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
SERVER_RS = ROOT / "shared/kit/src/server.rs"

PROBES = ("startupProbe", "readinessProbe", "livenessProbe")
# Variables whose values are credentials (docs/operations.md).
SECRET_VARS = {
    "DATABASE_URL",
    "AMQP_URL",
    "JWT_SECRET",
    "SMTP_USERNAME",
    "SMTP_PASSWORD",
    "PUSH_GATEWAY_KEY",
}
OUR_BINARIES = {"ticket", "assignment", "notification", "scheduler"}


def drain_seconds(server_rs=SERVER_RS):
    """SHUTDOWN_GRACE + CLOSE_LINGER, read from the kit, so the two never drift."""
    text = server_rs.read_text()
    total = 0
    for name in ("SHUTDOWN_GRACE", "CLOSE_LINGER"):
        m = re.search(name + r": Duration = Duration::from_secs\((\d+)\)", text)
        if not m:
            raise SystemExit(f"{server_rs}: cannot find {name}")
        total += int(m.group(1))
    return total


def _effective(container, pod, key):
    """A container's security setting, else its pod's."""
    value = (container.get("securityContext") or {}).get(key)
    if value is None:
        value = (pod.get("securityContext") or {}).get(key)
    return value


def check_container(where, container, pod):
    problems = []
    for probe in PROBES:
        if not container.get(probe):
            problems.append(f"{where}: no {probe}")
    resources = container.get("resources") or {}
    requests = resources.get("requests") or {}
    limits = resources.get("limits") or {}
    for key in ("cpu", "memory"):
        if key not in requests:
            problems.append(f"{where}: no {key} request")
    if "memory" not in limits:
        problems.append(f"{where}: no memory limit")

    sc = container.get("securityContext") or {}
    if _effective(container, pod, "runAsNonRoot") is not True:
        problems.append(f"{where}: runAsNonRoot is not true")
    if _effective(container, pod, "runAsUser") == 0:
        problems.append(f"{where}: runs as uid 0")
    if sc.get("readOnlyRootFilesystem") is not True:
        problems.append(f"{where}: readOnlyRootFilesystem is not true")
    if sc.get("allowPrivilegeEscalation") is not False:
        problems.append(f"{where}: allowPrivilegeEscalation is not false")
    if sc.get("privileged"):
        problems.append(f"{where}: privileged")
    caps = sc.get("capabilities") or {}
    if "ALL" not in (caps.get("drop") or []):
        problems.append(f"{where}: capabilities do not drop ALL")
    if caps.get("add"):
        problems.append(f"{where}: adds capabilities {caps['add']}")
    seccomp = _effective(container, pod, "seccompProfile") or {}
    if seccomp.get("type") not in ("RuntimeDefault", "Localhost"):
        problems.append(f"{where}: seccompProfile is not RuntimeDefault")

    for env in container.get("env") or []:
        if env.get("name") in SECRET_VARS:
            ref = (env.get("valueFrom") or {}).get("secretKeyRef")
            if not ref:
                problems.append(f"{where}: {env['name']} is not a secretKeyRef")
    return problems


def _serve_binary(container):
    command = list(container.get("command") or []) + list(container.get("args") or [])
    if len(command) >= 2 and command[0] in OUR_BINARIES and command[1] == "serve":
        return command[0]
    return None


def _prestop_sleep(container):
    sleep = ((container.get("lifecycle") or {}).get("preStop") or {}).get("sleep") or {}
    return int(sleep.get("seconds") or 0)


def check_deployment(doc, drain):
    meta = doc.get("metadata") or {}
    name = f"Deployment/{meta.get('namespace', '-')}/{meta.get('name')}"
    pod = ((doc.get("spec") or {}).get("template") or {}).get("spec") or {}
    problems = []
    if pod.get("automountServiceAccountToken") is not False:
        problems.append(f"{name}: automountServiceAccountToken is not false")
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(flag):
            problems.append(f"{name}: {flag}")
    containers = pod.get("containers") or []
    if not containers:
        problems.append(f"{name}: no containers")
    for container in containers:
        problems += check_container(f"{name} container {container.get('name')}", container, pod)
        if _serve_binary(container):
            grace = pod.get("terminationGracePeriodSeconds", 30)
            needed = _prestop_sleep(container) + drain
            if grace <= needed:
                problems.append(
                    f"{name}: terminationGracePeriodSeconds {grace} does not exceed "
                    f"preStop + drain ({needed} s)"
                )
    for container in pod.get("initContainers") or []:
        where = f"{name} init container {container.get('name')}"
        # Init containers run to completion: probes do not apply.
        problems += [
            p for p in check_container(where, container, pod) if not p.endswith(PROBES)
        ]
    return problems


def check_configmap(doc):
    meta = doc.get("metadata") or {}
    name = f"ConfigMap/{meta.get('namespace', '-')}/{meta.get('name')}"
    return [
        f"{name}: holds {key}, a credential (use a Secret)"
        for key in (doc.get("data") or {})
        if key in SECRET_VARS or key.endswith(tuple("_" + v for v in SECRET_VARS))
    ]


def check(docs, drain=None):
    """Every violation in `docs` (parsed manifests), as lines."""
    drain = drain_seconds() if drain is None else drain
    problems = []
    deployments = 0
    for doc in docs:
        if not doc:
            continue
        if doc.get("kind") == "Deployment":
            deployments += 1
            problems += check_deployment(doc, drain)
        elif doc.get("kind") == "ConfigMap":
            problems += check_configmap(doc)
    if deployments == 0:
        problems.append("no Deployment found: nothing was checked")
    return problems


def main(paths):
    if not paths:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    problems = []
    for path in paths:
        with open(path) as f:
            problems += [f"{path}: {p}" for p in check(list(yaml.safe_load_all(f)))]
    for p in problems:
        print(p)
    if problems:
        print(f"{len(problems)} policy violation(s)", file=sys.stderr)
        return 1
    print(f"policy: {', '.join(paths)} ok", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
