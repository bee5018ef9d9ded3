"""The OpenAPI schema declares what the API can answer (the fuzzer checks answers against it):
the shared error codes on every API and webhook operation, the webhooks' request bodies, and
the content types that are not JSON."""

from __future__ import annotations

from api.main import create_app
from api.settings import Settings

SHARED = {"400", "401", "403", "404", "409", "413", "422", "429"}


def _schema() -> dict:
    return create_app(Settings(_env_file=None, APP_ENV="local")).openapi()


def test_every_api_and_webhook_operation_declares_the_shared_errors():
    paths = _schema()["paths"]
    checked = 0
    for path, item in paths.items():
        if not path.startswith(("/api/v1/", "/webhooks/")):
            continue
        for method, operation in item.items():
            codes = set(operation["responses"])
            assert SHARED <= codes, (method, path, sorted(codes))
            error = operation["responses"]["401"]["content"]["application/json"]["schema"]
            assert error == {"$ref": "#/components/schemas/ErrorBody"}
            checked += 1
    assert checked >= 20


def test_webhook_bodies_and_content_types_are_described():
    schema = _schema()
    rest = schema["paths"]["/webhooks/rest/webhook"]["post"]
    body = rest["requestBody"]["content"]["application/json"]["schema"]
    assert body["required"] == ["sender", "message"]
    assert set(body["properties"]) == {"sender", "message", "metadata"}
    messenger = schema["paths"]["/webhooks/messenger"]["post"]
    body = messenger["requestBody"]["content"]["application/json"]["schema"]
    assert body["required"] == ["object", "entry"]
    event = body["properties"]["entry"]["items"]["properties"]["messaging"]["items"]
    assert {"sender", "message", "postback"} <= set(event["properties"])
    assert [p["name"] for p in messenger["parameters"]] == ["X-Hub-Signature-256"]
    assert "text/plain" in messenger["responses"]["200"]["content"]
    handshake = schema["paths"]["/webhooks/messenger"]["get"]
    assert "text/plain" in handshake["responses"]["200"]["content"]
    plot = schema["paths"]["/api/v1/training/models/{model_id}/plots/{name}"]["get"]
    assert list(plot["responses"]["200"]["content"]) == ["image/png"]
    assert "503" in schema["paths"]["/healthz"]["get"]["responses"]
    activate = schema["paths"]["/api/v1/models/{model_id}/activate"]["post"]
    assert "502" in activate["responses"]
