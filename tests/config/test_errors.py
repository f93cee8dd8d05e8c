"""Every failure class answers in the error shape of DESIGN.md §11, with a precise code."""

from __future__ import annotations

import pytest
from django.db import OperationalError
from django.test import override_settings
from django.urls import path
from rest_framework.decorators import api_view, permission_classes
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from accounts.models import ApiToken
from config.api.errors import ERROR_CODES, ApiError
from tests.conftest import assert_error


@api_view(["GET"])
@permission_classes([AllowAny])
def boom(request):
    raise RuntimeError("secret internals must not leak")


@api_view(["GET"])
@permission_classes([AllowAny])
def database_down(request):
    raise OperationalError("connection refused")


@api_view(["POST"])
@permission_classes([AllowAny])
def echo(request):
    return Response({"received": request.data})


urlpatterns = [
    path("api/v1/test/boom/", boom),
    path("api/v1/test/db-down/", database_down),
    path("api/v1/test/echo/", echo),
]


def test_reference_codes_have_their_statuses():
    expected = {
        "AgentNotFound": 404,
        "InvalidAgentConfig": 400,
        "AgentCreationFailed": 500,
        "VersionConflict": 409,
        "DuplicateAgentName": 409,
        "ExecutionFailed": 500,
        "ExecutionTimeout": 504,
        "InvalidInput": 400,
        "ResourceExhausted": 429,
        "ChainExecutionFailed": 500,
        "InsufficientPermissions": 403,
        "AgentAccessDenied": 403,
        "OrganizationLimitExceeded": 403,
        "VisibilityViolation": 404,
    }
    assert {code: ERROR_CODES[code][0] for code in expected} == expected
    with pytest.raises(ValueError):
        ApiError(code="NoSuchCode")


def test_unknown_api_path_is_404_in_shape(client):
    error = assert_error(client.get("/api/v1/does-not-exist/"), 404, "NotFound")
    assert "/api/v1/does-not-exist/" in error["message"]


def test_method_not_allowed(client, db):
    assert_error(client.delete("/api/v1/health/"), 405, "MethodNotAllowed")


def test_wrong_content_type_and_malformed_json(alice, client_for):
    api = client_for(alice)
    assert_error(api.post("/api/v1/tokens/", "name=x", content_type="text/plain"), 415, "UnsupportedMediaType")
    assert_error(api.post("/api/v1/tokens/", "{not json", content_type="application/json"), 400, "MalformedRequest")
    assert_error(api.post("/api/v1/tokens/", "NaN", content_type="application/json"), 400, "MalformedRequest")
    # Wrong JSON type for the body as a whole, and for a field.
    assert_error(api.post("/api/v1/tokens/", {"scopes": "agents:read"}, format="json"), 400, "InvalidInput")
    assert ApiToken.objects.filter(user=alice).count() == 1  # only the client's own token


@override_settings(ROOT_URLCONF="tests.config.test_errors", API_MAX_BODY_BYTES=1024)
def test_oversized_body_is_413_before_parsing(client, db):
    big = '{"x": "' + "a" * 2000 + '"}'
    error = assert_error(
        client.post("/api/v1/test/echo/", big, content_type="application/json"), 413, "PayloadTooLarge"
    )
    assert error["details"]["limit_bytes"] == 1024
    small = client.post("/api/v1/test/echo/", '{"x": 1}', content_type="application/json")
    assert small.status_code == 200 and small.json() == {"received": {"x": 1}}


def test_nul_in_the_path_or_a_query_parameter_is_400_in_shape(alice, make_agent, client_for):
    # These reached a query and PostgreSQL refused the NUL: 500s.
    agent = make_agent()
    api = client_for(alice)
    for url, field in (
        ("/api/v1/tools/%00/", "path"),
        (f"/api/v1/agents/{agent.pk}/versions/compare/?from=%00&to=1.0.0", "from"),
        (f"/api/v1/agents/{agent.pk}/versions/compare/?from=1.0.0&to=1.0.0%00", "to"),
        ("/api/v1/agents/?search=abc%00", "search"),
    ):
        error = assert_error(api.get(url), 400, "InvalidInput")
        assert list(error["details"]["validation_errors"]) == [field], (url, error)


def test_parser_never_reads_past_the_limit(settings):
    # Bodies whose length is not declared up front are still cut off at the limit.
    from io import BytesIO

    from config.api.parsers import LimitedJSONParser, PayloadTooLarge

    settings.API_MAX_BODY_BYTES = 100
    with pytest.raises(PayloadTooLarge):
        LimitedJSONParser().parse(BytesIO(b'{"x": "' + b"a" * 500 + b'"}'))
    assert LimitedJSONParser().parse(BytesIO(b'{"x": 1}')) == {"x": 1}


@override_settings(ROOT_URLCONF="tests.config.test_errors")
def test_unhandled_exception_is_500_without_internals(db):
    from django.test import Client

    client = Client(raise_request_exception=False)
    error = assert_error(client.get("/api/v1/test/boom/"), 500, "InternalError")
    assert "secret internals" not in error["message"]


@override_settings(ROOT_URLCONF="tests.config.test_errors")
def test_database_outage_is_503(db):
    from django.test import Client

    response = Client(raise_request_exception=False).get("/api/v1/test/db-down/")
    assert_error(response, 503, "ServiceUnavailable")
    assert response["Retry-After"] == "5"


def test_throttling_is_429_with_retry_after(alice, client_for, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"token": "3/min"}}
    api = client_for(alice)
    from rest_framework.settings import api_settings

    api_settings.reload()
    try:
        from accounts.throttling import TokenRateThrottle

        TokenRateThrottle.THROTTLE_RATES = api_settings.DEFAULT_THROTTLE_RATES
        codes = [api.get("/api/v1/tokens/").status_code for _ in range(3)]
        assert codes == [200, 200, 200]
        response = api.get("/api/v1/tokens/")
        error = assert_error(response, 429, "RateLimitExceeded")
        assert int(response["Retry-After"]) >= 1
        assert error["details"]["retry_after_seconds"] >= 1
    finally:
        settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"token": "1200/min"}}
        api_settings.reload()
        TokenRateThrottle.THROTTLE_RATES = api_settings.DEFAULT_THROTTLE_RATES


def test_request_id_is_echoed_or_made(client, db):
    response = client.get("/api/v1/nope/", HTTP_X_REQUEST_ID="req-123.abc")
    assert response["X-Request-ID"] == "req-123.abc"
    assert response.json()["error"]["request_id"] == "req-123.abc"
    # A malformed id is replaced rather than echoed (it goes into logs).
    response = client.get("/api/v1/nope/", HTTP_X_REQUEST_ID="bad id\nwith newline")
    assert response["X-Request-ID"] != "bad id\nwith newline" and len(response["X-Request-ID"]) == 32


def test_bad_pagination_parameters(alice, client_for):
    api = client_for(alice)
    for query in ("limit=abc", "limit=-1", "offset=-5", "limit=0"):
        assert_error(api.get(f"/api/v1/tokens/?{query}"), 400, "InvalidInput")
    body = api.get("/api/v1/tokens/?limit=1000").json()
    assert body["limit"] == 500 and body["offset"] == 0 and body["total"] == 1
