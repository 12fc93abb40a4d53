"""openapi.yaml is a valid OpenAPI 3.1 document that covers docs/behaviour.md's error table,
endpoints and control plane."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

CONTRACT_PATH = Path(__file__).parents[2] / "openapi.yaml"
CONTRACT_URI = "urn:dapi-mock:openapi"

BINANCE_OPERATIONS = [
    ("post", "/dapi/v1/leverage"),
    ("get", "/dapi/v1/ping"),
    ("get", "/dapi/v1/time"),
    ("get", "/dapi/v1/exchangeInfo"),
    ("get", "/dapi/v2/leverageBracket"),
    ("get", "/dapi/v1/leverageBracket"),
    ("get", "/dapi/v1/positionRisk"),
    ("post", "/dapi/v1/marginType"),
    ("post", "/dapi/v1/positionSide/dual"),
    ("get", "/dapi/v1/positionSide/dual"),
    ("get", "/dapi/v1/account"),
    ("get", "/dapi/v1/balance"),
    ("get", "/api/v3/ping"),
    ("get", "/api/v3/time"),
    ("get", "/sapi/v1/capital/config/getall"),
    ("get", "/sapi/v1/margin/allPairs"),
]
OTHER_OPERATIONS = [
    ("get", "/openapi.yaml"),
    ("get", "/__admin/"),
    ("get", "/__admin/health"),
    ("post", "/__admin/reset"),
    ("get", "/__admin/clock"),
    ("post", "/__admin/clock"),
    ("get", "/__admin/accounts"),
    ("post", "/__admin/accounts"),
    ("delete", "/__admin/accounts/{api_key}"),
    ("post", "/__admin/positions"),
    ("post", "/__admin/position_mode"),
    ("post", "/__admin/margin_type"),
    ("post", "/__admin/balances"),
    ("get", "/__admin/state"),
    ("get", "/__admin/requests"),
    ("delete", "/__admin/requests"),
    ("get", "/__admin/faults"),
    ("post", "/__admin/faults"),
    ("delete", "/__admin/faults"),
    ("delete", "/__admin/faults/{id}"),
]

# docs/behaviour.md#error-table, one (HTTP status, code) pair per row; -1101 answers 413 or 400.
ERROR_TABLE_ROWS = [
    (404, -5000),
    (405, -5000),
    (413, -1101),
    (400, -1101),
    (400, -1100),
    (401, -2014),
    (401, -2015),
    (400, -1102),
    (400, -1130),
    (400, -1021),
    (400, -1022),
    (400, -1104),
    (400, -1121),
    (400, -4028),
    (400, -4201),
    (400, -4200),
    (400, -4194),
    (400, -4202),
    (400, -2027),
    (400, -4150),
    (429, -1003),
    (418, -1003),
    (500, -1000),
]


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(CONTRACT_PATH.read_text(encoding="utf-8"))
    return loaded


def lookup(spec: dict[str, Any], pointer: str) -> Any:
    node: Any = spec
    for part in pointer.removeprefix("#/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def follow(spec: dict[str, Any], node: Any, pointer: str) -> tuple[Any, str]:
    """Follow $ref chains; return the target and its JSON pointer."""
    while isinstance(node, dict) and "$ref" in node:
        pointer = node["$ref"]
        node = lookup(spec, pointer)
    return node, pointer


def escape(segment: str) -> str:
    return segment.replace("~", "~0").replace("/", "~1")


def response_of(spec: dict[str, Any], method: str, path: str, status: int | str) -> Any:
    responses = spec["paths"][path][method]["responses"]
    node, _ = follow(spec, responses[str(status)], "")
    return node


def declared_codes(spec: dict[str, Any], schema: Any) -> set[int]:
    """Codes an error schema allows via enum/const on `code`, through allOf and $ref."""
    schema, _ = follow(spec, schema, "")
    codes: set[int] = set()
    code = schema.get("properties", {}).get("code", {})
    codes.update(code.get("enum", []))
    if "const" in code:
        codes.add(code["const"])
    for part in schema.get("allOf", []):
        codes |= declared_codes(spec, part)
    return codes


def example_values(spec: dict[str, Any], media: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    if "example" in media:
        yield "example", media["example"]
    for name, example in media.get("examples", {}).items():
        example, _ = follow(spec, example, "")
        yield name, example["value"]


def test_spec_is_valid_openapi_31(spec: dict[str, Any]) -> None:
    assert spec["openapi"].startswith("3.1")
    validate(spec)


@pytest.mark.parametrize(("method", "path"), BINANCE_OPERATIONS + OTHER_OPERATIONS)
def test_every_route_is_described(spec: dict[str, Any], method: str, path: str) -> None:
    operation = spec["paths"][path][method]
    assert operation["operationId"]
    assert "200" in operation["responses"]


@pytest.mark.parametrize(("status", "code"), ERROR_TABLE_ROWS)
def test_leverage_lists_every_spec_error_under_its_status(
    spec: dict[str, Any], status: int, code: int
) -> None:
    response = response_of(spec, "post", "/dapi/v1/leverage", status)
    media = response["content"]["application/json"]
    allowed = declared_codes(spec, media["schema"]) or {
        value["code"] for _, value in example_values(spec, media)
    }
    assert code in allowed
    assert str(code) in response["description"]


# docs/behaviour.md#error-table: the codes only the position-configuration routes answer.
@pytest.mark.parametrize(
    ("method", "path", "code"),
    [
        ("post", "/dapi/v1/marginType", -1130),
        ("post", "/dapi/v1/marginType", -1121),
        ("post", "/dapi/v1/marginType", -4046),
        ("post", "/dapi/v1/marginType", -4048),
        ("post", "/dapi/v1/positionSide/dual", -1130),
        ("post", "/dapi/v1/positionSide/dual", -4059),
        ("post", "/dapi/v1/positionSide/dual", -4068),
    ],
)
def test_position_configuration_routes_list_their_errors(
    spec: dict[str, Any], method: str, path: str, code: int
) -> None:
    response = response_of(spec, method, path, 400)
    assert code in declared_codes(spec, response["content"]["application/json"]["schema"])
    assert str(code) in response["description"]


def test_no_400_answers_1000(spec: dict[str, Any]) -> None:
    for method, path in BINANCE_OPERATIONS:
        media = response_of(spec, method, path, 400)["content"]["application/json"]
        assert -1000 not in declared_codes(spec, media["schema"])


@pytest.mark.parametrize(("method", "path"), BINANCE_OPERATIONS)
def test_binance_responses_carry_the_weight_header(
    spec: dict[str, Any], method: str, path: str
) -> None:
    for status, response in spec["paths"][path][method]["responses"].items():
        response, _ = follow(spec, response, "")
        headers = response.get("headers", {})
        assert "X-MBX-USED-WEIGHT-1M" in headers, status
        if status in ("429", "418"):
            assert "Retry-After" in headers


def iter_examples(spec: dict[str, Any]) -> Iterator[tuple[str, str, Any]]:
    """(where, schema pointer, value) for every example attached to a schema in paths."""
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            base = f"#/paths/{escape(path)}/{method}"
            for index, parameter in enumerate(operation.get("parameters", [])):
                parameter, pointer = follow(spec, parameter, f"{base}/parameters/{index}")
                if "example" in parameter:
                    yield (
                        f"{method} {path} {parameter['name']}",
                        f"{pointer}/schema",
                        parameter["example"],
                    )
            bodies = []
            if "requestBody" in operation:
                bodies.append(
                    ("request", follow(spec, operation["requestBody"], f"{base}/requestBody"))
                )
            for status, response in operation["responses"].items():
                bodies.append((status, follow(spec, response, f"{base}/responses/{status}")))
            for label, (body, pointer) in bodies:
                for media_type, media in body.get("content", {}).items():
                    schema_pointer = f"{pointer}/content/{escape(media_type)}/schema"
                    for name, value in example_values(spec, media):
                        yield f"{method} {path} {label} {name}", schema_pointer, value


def test_every_example_matches_its_schema(spec: dict[str, Any]) -> None:
    registry = Registry().with_resource(
        CONTRACT_URI, Resource(contents=spec, specification=DRAFT202012)
    )
    checked = 0
    for where, pointer, value in iter_examples(spec):
        validator = Draft202012Validator({"$ref": f"{CONTRACT_URI}{pointer}"}, registry=registry)
        errors = [error.message for error in validator.iter_errors(value)]
        assert not errors, f"{where}: {errors}"
        checked += 1
    assert checked > 40
