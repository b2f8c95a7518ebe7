"""Tests of scripts/api_contract.py on small hand-made images: a missing
original endpoint and colliding rules fail the check; a literal beside a
variable does not; additional bindings count. Run:
python3 -m unittest scripts/test_api_contract.py (scripts/check-api.sh does)."""

import pathlib
import sys
import unittest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import api_contract  # noqa: E402


def method(name, rule):
    return {
        "name": name,
        "inputType": f".t.v1.{name}Request",
        "outputType": ".t.v1.Thing",
        "options": {"[google.api.http]": rule} if rule else {},
    }


def image(*methods):
    messages = [{"name": "Thing", "field": [{"name": "id", "jsonName": "id", "type": "TYPE_STRING"}]}]
    for m in methods:
        messages.append(
            {
                "name": m["name"] + "Request",
                "field": [
                    {"name": "id", "jsonName": "id", "type": "TYPE_STRING"},
                    {"name": "page_size", "jsonName": "pageSize", "type": "TYPE_INT32"},
                ],
            }
        )
    return {
        "file": [
            {
                "name": "t/v1/t.proto",
                "package": "t.v1",
                "messageType": messages,
                "service": [{"name": "ThingService", "method": list(methods)}],
            }
        ]
    }


ORIGINAL = [("GET", "/api/things/{id}/"), ("POST", "/api/things/")]


class ContractTest(unittest.TestCase):
    def test_every_endpoint_served_once_passes(self):
        good = image(
            method("GetThing", {"get": "/api/things/{id}/"}),
            method("CreateThing", {"post": "/api/things/", "body": "*"}),
        )
        self.assertEqual(api_contract.check(good, ORIGINAL), [])

    def test_a_missing_endpoint_fails(self):
        missing = image(method("GetThing", {"get": "/api/things/{id}/"}))
        problems = api_contract.check(missing, ORIGINAL)
        self.assertEqual(problems, ["no rule serves the original endpoint POST /api/things/"])

    def test_wrong_verb_does_not_serve(self):
        wrong = image(
            method("GetThing", {"get": "/api/things/{id}/"}),
            method("CreateThing", {"put": "/api/things/", "body": "*"}),
        )
        self.assertTrue(api_contract.check(wrong, ORIGINAL))

    def test_colliding_rules_fail_whatever_the_variable_names(self):
        clash = image(
            method("GetThing", {"get": "/api/things/{id}/"}),
            method("CreateThing", {"post": "/api/things/", "body": "*"}),
            method("FindThing", {"get": "/api/things/{name}/"}),
        )
        problems = api_contract.check(clash, ORIGINAL)
        self.assertEqual(len(problems), 1, problems)
        self.assertIn("collision: GET", problems[0])
        self.assertIn("t.v1.ThingService/FindThing", problems[0])

    def test_an_additional_binding_serves_and_can_collide(self):
        bound = image(
            method(
                "GetThing",
                {
                    "get": "/api/things/{id}/",
                    "additionalBindings": [{"post": "/api/things/", "body": "*"}],
                },
            )
        )
        self.assertEqual(api_contract.check(bound, ORIGINAL), [])
        clash = image(
            method(
                "GetThing",
                {"get": "/api/things/{id}/", "additionalBindings": [{"get": "/api/things/{x}/"}]},
            ),
            method("CreateThing", {"post": "/api/things/", "body": "*"}),
        )
        self.assertTrue(any("collision" in p for p in api_contract.check(clash, ORIGINAL)))

    def test_a_literal_beside_a_variable_is_not_a_collision(self):
        stats = image(
            method("GetThing", {"get": "/api/things/{id}/"}),
            method("CreateThing", {"post": "/api/things/", "body": "*"}),
            method("GetStats", {"get": "/api/things/stats/"}),
        )
        self.assertEqual(api_contract.check(stats, ORIGINAL + [("GET", "/api/things/stats/")]), [])

    def test_openapi_has_each_rule_with_path_and_query_parameters(self):
        spec = api_contract.openapi(
            image(
                method("GetThing", {"get": "/api/things/{id}/"}),
                method("CreateThing", {"post": "/api/things/", "body": "*"}),
            )
        )
        get = spec["paths"]["/api/things/{id}/"]["get"]
        self.assertEqual([p["name"] for p in get["parameters"]], ["id", "pageSize"])
        post = spec["paths"]["/api/things/"]["post"]
        body = post["requestBody"]["content"]["application/json"]["schema"]
        self.assertIn("pageSize", body["properties"])
        self.assertIn("t.v1.Thing", spec["components"]["schemas"])

    def test_an_rpc_without_errors_listed_fails(self):
        def documented(comments):
            img = image(method("GetThing", None), method("CreateThing", None))
            file = img["file"][0]
            file["name"] = "support/v1/t.proto"
            file["sourceCodeInfo"] = {
                "location": [
                    {"path": [6, 0, 2, m], "leadingComments": text}
                    for m, text in enumerate(comments)
                ]
            }
            return img

        both = documented([" Gets one.\n\n Errors: NOT_FOUND (no such thing).\n", " Errors: none.\n"])
        self.assertEqual(api_contract.undocumented(both), [])
        one = documented([" Gets one.\n", " Errors: none.\n"])
        problems = api_contract.undocumented(one)
        self.assertEqual(len(problems), 1, problems)
        self.assertIn("t.v1.ThingService/GetThing", problems[0])
        row = next(r for r in api_contract.table(both).splitlines() if "GetThing" in r)
        self.assertTrue(row.endswith("| Gets one. | NOT_FOUND (no such thing). |"), row)

    def test_the_endpoint_list_parses(self):
        endpoints = api_contract.read_endpoints()
        self.assertIn(("POST", "/api/support/tickets/"), endpoints)


if __name__ == "__main__":
    unittest.main()
