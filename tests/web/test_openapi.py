"""The published contract: every API route has its operation, the document is OpenAPI 3.1 and
its schemas are the ones the handlers decode and encode."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient
from openapi_spec_validator import validate

from onboardd.web import contract, openapi
from tests.conftest import decode


def _routed(client: TestClient[Any, Any]) -> list[tuple[str, str, object]]:
    return [(m, p, h) for m, p, _op, h in openapi.route_operations(client.app)]


async def test_every_published_route_has_an_operation(client: TestClient[Any, Any]) -> None:
    missing = [f"{method.upper()} {path}" for method, path, op, _h
               in openapi.route_operations(client.app) if op is None]
    assert missing == []


async def test_every_operation_is_routed(client: TestClient[Any, Any]) -> None:
    routed = {id(handler) for _m, _p, handler in _routed(client)}
    unrouted = [h.__qualname__ for h in contract.MARKED if id(h) not in routed]
    assert unrouted == []


async def test_the_document_is_valid_openapi_3_1(client: TestClient[Any, Any]) -> None:
    resp = await client.get("/api/openapi.json")
    assert resp.status == 200
    assert resp.content_type == "application/json"
    doc = decode(await resp.read())
    validate(doc)  # raises on anything OpenAPI 3.1 does not allow
    assert doc["openapi"] == "3.1.0"
    schemas = doc["components"]["schemas"]
    for name in ("ErrorBody", "SettingsPatch", "SalonSettings", "SentCampaign",
                 "CustomerExport", "AccessLogPage", "CampaignStats", "Report"):
        assert name in schemas, name
    assert set(doc["components"]["securitySchemes"]) == {
        "adminToken", "customerToken", "twilioSignature", "metricsToken"}


async def test_operations_carry_their_parameters_bodies_answers_and_security(
        client: TestClient[Any, Any]) -> None:
    doc = decode(await (await client.get("/api/openapi.json")).read())
    paths = doc["paths"]
    listing = paths["/api/salons/{salonId}/invitation-campaigns"]["get"]
    params = {p["name"]: p for p in listing["parameters"]}
    assert params["salonId"]["in"] == "path" and params["salonId"]["required"] is True
    assert params["pageSize"]["schema"] == {"type": "integer", "minimum": 1, "maximum": 100,
                                            "default": 20}
    assert set(params["status"]["schema"]["enum"]) == {"draft", "scheduled", "sending",
                                                        "completed", "paused"}
    assert listing["security"] == [{"adminToken": []}]
    for status in ("401", "403", "404", "422", "429"):
        assert listing["responses"][status]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/ErrorBody"}
    assert "Retry-After" in listing["responses"]["429"]["headers"]
    patch = paths["/api/salons/{salonId}/settings"]["patch"]
    assert patch["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/SettingsPatch"}
    assert {"400", "413", "415", "422"} <= set(patch["responses"])
    webhook = paths["/api/webhooks/twilio/status"]["post"]
    assert webhook["security"] == [{"twilioSignature": []}]
    assert "application/x-www-form-urlencoded" in webhook["requestBody"]["content"]
    send = paths["/api/salons/{salonId}/invitation-campaigns/{id}/send"]["post"]
    assert send["requestBody"]["required"] is False
    assert "202" in send["responses"]
    assert paths["/healthz"]["get"]["security"] == []


async def test_query_structs_are_inlined_not_published(client: TestClient[Any, Any]) -> None:
    doc = decode(await (await client.get("/api/openapi.json")).read())
    assert not [name for name in doc["components"]["schemas"] if name.endswith("Query")]


async def test_links_lead_to_operations_that_exist(client: TestClient[Any, Any]) -> None:
    doc = decode(await (await client.get("/api/openapi.json")).read())
    ids = {op["operationId"] for item in doc["paths"].values() for op in item.values()}
    links = [(name, link) for item in doc["paths"].values() for op in item.values()
             for answer in op["responses"].values()
             for name, link in answer.get("links", {}).items()]
    assert len(links) >= 15
    assert [name for name, link in links if link["operationId"] not in ids] == []
    created = doc["paths"]["/api/salons/{salonId}/invitation-campaigns"]["post"]
    assert created["responses"]["201"]["links"]["GetCampaign"]["parameters"] == {
        "salonId": "$request.path.salonId", "id": "$response.body#/id"}


async def test_unknown_query_parameters_are_refused_by_name(
        client: TestClient[Any, Any], salon: str, admin_headers: dict[str, str]) -> None:
    resp = await client.get(f"/api/salons/{salon}/invitation-campaigns",
                            params={"page_size": "5"}, headers=admin_headers)
    assert resp.status == 422
    error = decode(await resp.read())["error"]
    assert error["details"]["field"] == "page_size"
    assert error["details"]["allowed"] == ["page", "pageSize", "status"]
    assert error["message"].startswith("page_size: not a parameter of this operation")
    resp = await client.get(f"/api/salons/{salon}/invitation-campaigns",
                            params={"pageSize": "500"}, headers=admin_headers)
    error = decode(await resp.read())["error"]
    assert (resp.status, error["details"]) == (422, {"field": "pageSize"})
    assert error["message"] == "pageSize: must be a whole number from 1 to 100, got '500'"

    resp = await client.get(f"/api/salons/{salon}/invitation-campaigns?status=draft&status=x",
                            headers=admin_headers)
    error = decode(await resp.read())["error"]
    assert (resp.status, error["details"]) == (422, {"field": "status"})
    assert error["message"] == "status: given more than once; give it once"
