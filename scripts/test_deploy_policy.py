"""Tests of scripts/deploy_policy.py: a good Deployment passes, and each way
of breaking it is caught. Run: python3 -m unittest scripts/test_deploy_policy.py
(scripts/check-deploy.sh runs them before it trusts the check)."""

import pathlib
import sys
import unittest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import deploy_policy  # noqa: E402

DRAIN = 21


def good():
    probe = {"grpc": {"port": 50051}}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "ticket", "namespace": "t"},
        "spec": {
            "template": {
                "spec": {
                    "automountServiceAccountToken": False,
                    "terminationGracePeriodSeconds": 35,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 10001,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [
                        {
                            "name": "ticket",
                            "image": "helpdesk",
                            "command": ["ticket", "serve"],
                            "startupProbe": probe,
                            "readinessProbe": probe,
                            "livenessProbe": {"grpc": {"port": 50051, "service": "liveness"}},
                            "lifecycle": {"preStop": {"sleep": {"seconds": 5}}},
                            "resources": {
                                "requests": {"cpu": "100m", "memory": "64Mi"},
                                "limits": {"memory": "256Mi"},
                            },
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "readOnlyRootFilesystem": True,
                                "capabilities": {"drop": ["ALL"]},
                            },
                            "env": [
                                {
                                    "name": "DATABASE_URL",
                                    "valueFrom": {
                                        "secretKeyRef": {"name": "s", "key": "TICKET_DATABASE_URL"}
                                    },
                                }
                            ],
                        }
                    ],
                }
            }
        },
    }


def container(doc):
    return doc["spec"]["template"]["spec"]["containers"][0]


def pod(doc):
    return doc["spec"]["template"]["spec"]


class PolicyTest(unittest.TestCase):
    def assert_fails(self, doc, fragment):
        problems = deploy_policy.check([doc], drain=DRAIN)
        self.assertTrue(
            any(fragment in p for p in problems),
            f"expected a violation mentioning {fragment!r}, got {problems}",
        )

    def test_good_deployment_passes(self):
        self.assertEqual(deploy_policy.check([good()], drain=DRAIN), [])

    def test_each_missing_probe_fails(self):
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            doc = good()
            del container(doc)[probe]
            self.assert_fails(doc, f"no {probe}")

    def test_missing_limits_and_requests_fail(self):
        doc = good()
        del container(doc)["resources"]["limits"]
        self.assert_fails(doc, "no memory limit")
        doc = good()
        del container(doc)["resources"]
        self.assert_fails(doc, "no cpu request")

    def test_security_context_holes_fail(self):
        cases = [
            (lambda d: pod(d)["securityContext"].pop("runAsNonRoot"), "runAsNonRoot"),
            (lambda d: pod(d)["securityContext"].pop("seccompProfile"), "seccompProfile"),
            (
                lambda d: container(d)["securityContext"].update(readOnlyRootFilesystem=False),
                "readOnlyRootFilesystem",
            ),
            (
                lambda d: container(d)["securityContext"].pop("allowPrivilegeEscalation"),
                "allowPrivilegeEscalation",
            ),
            (
                lambda d: container(d)["securityContext"].update(capabilities={"drop": ["NET_RAW"]}),
                "drop ALL",
            ),
            (
                lambda d: container(d)["securityContext"]["capabilities"].update(add=["NET_ADMIN"]),
                "adds capabilities",
            ),
            (lambda d: pod(d).pop("automountServiceAccountToken"), "automountServiceAccountToken"),
        ]
        for breaks, fragment in cases:
            doc = good()
            breaks(doc)
            self.assert_fails(doc, fragment)

    def test_container_setting_overrides_pod(self):
        doc = good()
        container(doc)["securityContext"]["runAsNonRoot"] = False
        self.assert_fails(doc, "runAsNonRoot")

    def test_literal_credential_fails(self):
        doc = good()
        container(doc)["env"] = [{"name": "AMQP_URL", "value": "amqp://guest:guest@mq/"}]
        self.assert_fails(doc, "AMQP_URL is not a secretKeyRef")
        configmap = {"kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"JWT_SECRET": "x"}}
        problems = deploy_policy.check([good(), configmap], drain=DRAIN)
        self.assertTrue(any("JWT_SECRET" in p for p in problems), problems)

    def test_grace_period_must_cover_the_drain(self):
        doc = good()
        pod(doc)["terminationGracePeriodSeconds"] = 26  # 5 s preStop + 21 s drain
        self.assert_fails(doc, "terminationGracePeriodSeconds")

    def test_no_deployment_is_a_failure(self):
        self.assertTrue(deploy_policy.check([], drain=DRAIN))

    def test_drain_is_read_from_the_kit(self):
        self.assertGreaterEqual(deploy_policy.drain_seconds(), 1)

    def test_cli_exits_non_zero_on_a_bad_file(self):
        import subprocess
        import tempfile

        import yaml

        doc = good()
        del container(doc)["livenessProbe"]
        with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
            yaml.safe_dump(doc, f)
            f.flush()
            run = subprocess.run(
                [sys.executable, deploy_policy.__file__, f.name], capture_output=True, text=True
            )
        self.assertEqual(run.returncode, 1, run.stdout + run.stderr)
        self.assertIn("no livenessProbe", run.stdout)


if __name__ == "__main__":
    unittest.main()
