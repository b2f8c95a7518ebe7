#!/usr/bin/env python3
"""The REST face of our protos, read from the descriptor set (buf's JSON image).

    python3 scripts/api_contract.py check   IMAGE.json   every original endpoint
                                                          (docs/original-endpoints.txt)
                                                          has exactly one rule, no
                                                          two rules collide, and every
                                                          RPC of ours lists its errors
    python3 scripts/api_contract.py openapi IMAGE.json OUT.json
                                                          the OpenAPI 3.1 description
                                                          of every google.api.http rule
    python3 scripts/api_contract.py table IMAGE.json DOC.md
                                                          rewrites DOC.md's RPC table
                                                          (between its rpc-table markers)

IMAGE.json is `buf build -o IMAGE.json` (a FileDescriptorSet with imports and
comments, as JSON): no protobuf library is needed to read the annotations.
scripts/check-api.sh runs both in CI and fails when docs/openapi.json is stale.

Two rules collide when a request could match both: the same verb and the same
path once every variable is read as "one segment" ({id} and {name} alike). A
literal segment beside a variable (/tickets/stats/ and /tickets/{id}/) is not
a collision: gateways try literals first (google.api.http, Envoy's transcoder).

Every RPC of ours (proto/support/) ends its comment with an `Errors:`
paragraph: the gRPC codes it answers beyond the ones every RPC may (see
docs/api.md "Errors"), each with when. The table shows it in its own column.
"""

import json
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
ENDPOINTS = ROOT / "docs/original-endpoints.txt"
HTTP = "[google.api.http]"
OURS = "support/"
ERRORS = re.compile(r"^\s*Errors:\s*", re.MULTILINE)
VERBS = ("get", "put", "post", "delete", "patch")


# ------------------------------------------------------------------ rules


def rules(image):
    """Every HTTP rule: dicts with verb, path, body, response_body, rpc, file, service, method."""
    found = []
    for file in image.get("file", []):
        package = file.get("package", "")
        for service in file.get("service", []):
            for method in service.get("method", []):
                rule = (method.get("options") or {}).get(HTTP)
                if not rule:
                    continue
                for binding in [rule] + list(rule.get("additionalBindings", [])):
                    verb = next((v for v in VERBS if v in binding), None)
                    if verb is None and "custom" in binding:
                        verb = binding["custom"]["kind"].lower()
                        path = binding["custom"]["path"]
                    else:
                        path = binding.get(verb)
                    if verb is None or not path:
                        continue
                    found.append(
                        {
                            "verb": verb.upper(),
                            "path": path,
                            "body": binding.get("body", ""),
                            "response_body": binding.get("responseBody", ""),
                            "rpc": f"{package}.{service['name']}/{method['name']}",
                            "file": file,
                            "service": service,
                            "method": method,
                        }
                    )
    return found


def shape(path):
    """The path with every variable as `*` ({id}, {ticket.id}, {name=*}); `**` kept."""

    def var(m):
        pattern = m.group(2)
        return "**" if pattern and "**" in pattern else "*"

    return re.sub(r"\{([^}=]+)(?:=([^}]*))?\}", var, path)


def read_endpoints(path=ENDPOINTS):
    """(VERB, PATH) pairs from the endpoint list, in order."""
    endpoints = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 2 or parts[0].lower() not in VERBS:
            raise SystemExit(f"{path}:{number}: expected 'VERB /path/', got {line!r}")
        endpoints.append((parts[0].upper(), parts[1]))
    return endpoints


def check(image, endpoints):
    """Every problem with the rules of `image` against `endpoints`, as lines."""
    all_rules = rules(image)
    by_shape = {}
    for rule in all_rules:
        by_shape.setdefault((rule["verb"], shape(rule["path"])), []).append(rule)
    problems = []
    for (verb, _), group in sorted(by_shape.items()):
        if len(group) > 1:
            which = ", ".join(f"{r['rpc']} ({r['path']})" for r in group)
            problems.append(f"collision: {verb} matches {len(group)} rules: {which}")
    for verb, path in endpoints:
        if (verb, shape(path)) not in by_shape:
            problems.append(f"no rule serves the original endpoint {verb} {path}")
    if not all_rules:
        problems.append("no google.api.http rule found: is this the right image?")
    return problems


def split_errors(comment):
    """(what the RPC does, its errors) from its comment; errors None when undocumented."""
    parts = ERRORS.split(comment or "", maxsplit=1)
    what = " ".join(parts[0].split())
    errors = " ".join(parts[1].split()) if len(parts) == 2 else None
    return what, errors or None


def our_methods(image):
    """(file, service, method) of every RPC in our protos, in file order."""
    for file in sorted(image.get("file", []), key=lambda f: f["name"]):
        if not file["name"].startswith(OURS):
            continue
        for service in file.get("service", []):
            for method in service.get("method", []):
                yield file, service, method


def undocumented(image):
    """A problem line for each RPC of ours whose comment lists no errors."""
    types = Types(image)
    return [
        f"no errors documented: {file['package']}.{service['name']}/{method['name']} "
        "(end its comment with an `Errors:` paragraph)"
        for file, service, method in our_methods(image)
        if split_errors(types.comments.get(id(method)))[1] is None
    ]


# ---------------------------------------------------------------- OpenAPI

SCALARS = {
    "TYPE_DOUBLE": {"type": "number", "format": "double"},
    "TYPE_FLOAT": {"type": "number", "format": "float"},
    "TYPE_INT64": {"type": "string", "format": "int64"},
    "TYPE_UINT64": {"type": "string", "format": "uint64"},
    "TYPE_SINT64": {"type": "string", "format": "int64"},
    "TYPE_FIXED64": {"type": "string", "format": "uint64"},
    "TYPE_SFIXED64": {"type": "string", "format": "int64"},
    "TYPE_INT32": {"type": "integer", "format": "int32"},
    "TYPE_SINT32": {"type": "integer", "format": "int32"},
    "TYPE_SFIXED32": {"type": "integer", "format": "int32"},
    "TYPE_UINT32": {"type": "integer", "format": "uint32"},
    "TYPE_FIXED32": {"type": "integer", "format": "uint32"},
    "TYPE_BOOL": {"type": "boolean"},
    "TYPE_STRING": {"type": "string"},
    "TYPE_BYTES": {"type": "string", "format": "byte"},
}
# Well-known types in their proto3 JSON form.
WELL_KNOWN = {
    ".google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    ".google.protobuf.Duration": {"type": "string", "example": "1.5s"},
    ".google.protobuf.FieldMask": {"type": "string", "example": "status,priority"},
    ".google.protobuf.Empty": {"type": "object"},
    ".google.protobuf.Struct": {"type": "object"},
    ".google.protobuf.Value": {},
    ".google.protobuf.Any": {"type": "object", "properties": {"@type": {"type": "string"}}},
    ".google.protobuf.StringValue": {"type": ["string", "null"]},
    ".google.protobuf.BoolValue": {"type": ["boolean", "null"]},
    ".google.protobuf.Int32Value": {"type": ["integer", "null"]},
    ".google.protobuf.UInt32Value": {"type": ["integer", "null"]},
    ".google.protobuf.Int64Value": {"type": ["string", "null"]},
    ".google.protobuf.UInt64Value": {"type": ["string", "null"]},
    ".google.protobuf.DoubleValue": {"type": ["number", "null"]},
    ".google.protobuf.FloatValue": {"type": ["number", "null"]},
}


class Types:
    """Messages and enums of the image by full name (with the leading dot), with comments."""

    def __init__(self, image):
        self.messages, self.enums, self.comments = {}, {}, {}
        for file in image.get("file", []):
            comments = {
                tuple(loc.get("path", [])): loc.get("leadingComments", "").strip()
                for loc in (file.get("sourceCodeInfo") or {}).get("location", [])
                if loc.get("leadingComments")
            }
            prefix = "." + file["package"] if file.get("package") else ""
            for i, message in enumerate(file.get("messageType", [])):
                self._message(prefix, message, (4, i), comments)
            for i, enum in enumerate(file.get("enumType", [])):
                self.enums[f"{prefix}.{enum['name']}"] = enum
            for s, service in enumerate(file.get("service", [])):
                for m, method in enumerate(service.get("method", [])):
                    text = comments.get((6, s, 2, m))
                    if text:
                        self.comments[id(method)] = text

    def _message(self, prefix, message, path, comments):
        name = f"{prefix}.{message['name']}"
        self.messages[name] = message
        for f, field in enumerate(message.get("field", [])):
            text = comments.get(path + (2, f))
            if text:
                self.comments[id(field)] = text
        for i, nested in enumerate(message.get("nestedType", [])):
            self._message(name, nested, path + (3, i), comments)
        for enum in message.get("enumType", []):
            self.enums[f"{name}.{enum['name']}"] = enum


def schema_name(full):
    return full.lstrip(".")


def field_schema(field, types, needed):
    kind = field.get("type")
    if kind == "TYPE_MESSAGE":
        type_name = field["typeName"]
        message = types.messages.get(type_name)
        if message and (message.get("options") or {}).get("mapEntry"):
            value = next(f for f in message["field"] if f["name"] == "value")
            return {"type": "object", "additionalProperties": field_schema(value, types, needed)}
        if type_name in WELL_KNOWN:
            schema = dict(WELL_KNOWN[type_name])
        else:
            needed.add(type_name)
            schema = {"$ref": f"#/components/schemas/{schema_name(type_name)}"}
    elif kind == "TYPE_ENUM":
        enum = types.enums.get(field["typeName"], {})
        schema = {"type": "string", "enum": [v["name"] for v in enum.get("value", [])]}
    else:
        schema = dict(SCALARS.get(kind, {}))
    if field.get("label") == "LABEL_REPEATED":
        schema = {"type": "array", "items": schema}
    text = types.comments.get(id(field))
    if text and "$ref" not in schema:
        schema["description"] = text
    return schema


def message_schema(name, types, needed, skip=()):
    message = types.messages[name]
    properties = {}
    for field in message.get("field", []):
        if field["name"] in skip:
            continue
        properties[field.get("jsonName", field["name"])] = field_schema(field, types, needed)
    return {"type": "object", "properties": properties}


def operation(rule, types, needed, operation_ids):
    method = rule["method"]
    request = method["inputType"]
    path_vars = re.findall(r"\{([^}=]+)", rule["path"])
    top_level = {v.split(".")[0] for v in path_vars}
    base = rule["rpc"].split(".")[-1].replace("/", "_")
    op_id = base
    n = 2
    while op_id in operation_ids:
        op_id = f"{base}_{n}"
        n += 1
    operation_ids.add(op_id)
    op = {
        "operationId": op_id,
        "tags": [rule["service"]["name"]],
        "summary": (types.comments.get(id(method)) or rule["rpc"]).split("\n")[0],
        "description": f"gRPC `{rule['rpc']}`."
        + (f"\n\n{types.comments[id(method)]}" if id(method) in types.comments else ""),
        "parameters": [
            {"name": v, "in": "path", "required": True, "schema": {"type": "string"}}
            for v in path_vars
        ],
    }
    # Fields neither in the path nor in the body are query parameters.
    if rule["body"] != "*":
        for field in types.messages[request].get("field", []):
            if field["name"] in top_level or field["name"] == rule["body"]:
                continue
            schema = field_schema(field, types, needed)
            if "$ref" in schema:
                continue  # messages are not query parameters (beyond our APIs' use)
            op["parameters"].append(
                {"name": field.get("jsonName", field["name"]), "in": "query", "schema": schema}
            )
    if rule["body"] == "*":
        op["requestBody"] = {
            "required": True,
            "content": {
                "application/json": {"schema": message_schema(request, types, needed, top_level)}
            },
        }
    elif rule["body"]:
        body_field = next(f for f in types.messages[request]["field"] if f["name"] == rule["body"])
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": field_schema(body_field, types, needed)}},
        }
    if not op["parameters"]:
        del op["parameters"]
    response = method["outputType"]
    if response in WELL_KNOWN:
        response_schema = WELL_KNOWN[response]
    else:
        needed.add(response)
        response_schema = {"$ref": f"#/components/schemas/{schema_name(response)}"}
    if method.get("serverStreaming"):
        op["description"] += "\n\nServer streaming: a sequence of these messages."
    op["responses"] = {
        "200": {"description": "OK", "content": {"application/json": {"schema": response_schema}}},
        "default": {
            "description": "An error: the gRPC status in JSON (code, message, and details "
            "such as google.rpc.BadRequest field violations for INVALID_ARGUMENT).",
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/google.rpc.Status"}}
            },
        },
    }
    return op


def openapi(image):
    types = Types(image)
    needed = set()
    paths = {}
    operation_ids = set()
    for rule in sorted(rules(image), key=lambda r: (r["path"], r["verb"])):
        paths.setdefault(rule["path"], {})[rule["verb"].lower()] = operation(
            rule, types, needed, operation_ids
        )
    schemas = {
        "google.rpc.Status": {
            "type": "object",
            "properties": {
                "code": {"type": "integer", "format": "int32"},
                "message": {"type": "string"},
                "details": {"type": "array", "items": WELL_KNOWN[".google.protobuf.Any"]},
            },
        }
    }
    done = set()
    while needed - done:
        name = sorted(needed - done)[0]
        done.add(name)
        schemas[schema_name(name)] = message_schema(name, types, needed)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Helpdesk support API (REST face of the gRPC services)",
            "version": "v1",
            "description": "Generated from the google.api.http rules in proto/ by "
            "scripts/api_contract.py; do not edit. Field names are the proto3 JSON "
            "names. Every call needs `Authorization: Bearer <JWT>`.",
        },
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
            "schemas": dict(sorted(schemas.items())),
        },
    }


BEGIN = "<!-- rpc-table:begin (scripts/check-api.sh --write) -->"
END = "<!-- rpc-table:end -->"


def table(image):
    """A Markdown table of every RPC: its REST rules, what its comment says, its errors."""
    types = Types(image)
    by_rpc = {}
    for rule in rules(image):
        by_rpc.setdefault(rule["rpc"], []).append(f"`{rule['verb']} {rule['path']}`")
    lines = [
        "| RPC | REST | what it does, and who may call it where the proto says | errors |",
        "|---|---|---|---|",
    ]
    for file, service, method in our_methods(image):
        rpc = f"{file['package']}.{service['name']}/{method['name']}"
        rest = "<br>".join(by_rpc.get(rpc, [])) or "none (gRPC only)"
        what, errors = split_errors(types.comments.get(id(method)))
        if method.get("serverStreaming"):
            what = ("Server stream. " + what).strip()
        cells = [f"`{service['name']}/{method['name']}`", rest, what, errors or ""]
        lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def rewrite_table(image, path):
    text = path.read_text()
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{path}: no {BEGIN} ... {END} markers")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    path.write_text(f"{head}{BEGIN}\n{table(image)}{END}{tail}")


def main(argv):
    if len(argv) >= 2 and argv[0] == "check":
        image = json.loads(pathlib.Path(argv[1]).read_text())
        endpoints = read_endpoints()
        problems = check(image, endpoints) + undocumented(image)
        for p in problems:
            print(p)
        if problems:
            return 1
        print(
            f"api contract: {len(endpoints)} original endpoints served, "
            f"{len(rules(image))} rules, no collision, every RPC's errors listed",
            file=sys.stderr,
        )
        return 0
    if len(argv) == 3 and argv[0] == "openapi":
        image = json.loads(pathlib.Path(argv[1]).read_text())
        text = json.dumps(openapi(image), indent=2, sort_keys=False) + "\n"
        pathlib.Path(argv[2]).write_text(text)
        return 0
    if len(argv) == 3 and argv[0] == "table":
        rewrite_table(json.loads(pathlib.Path(argv[1]).read_text()), pathlib.Path(argv[2]))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
