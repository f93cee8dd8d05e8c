"""The API kit (config.api.inputs, AccessRules): one rule for unknown fields, one for bodies
that are not a JSON object, and one 405 check, the same in every app."""

from __future__ import annotations

import pytest
from rest_framework import serializers
from rest_framework.test import APIClient

from approvals.api.serializers import RiskRuleSerializer
from approvals.models import RiskRule
from config.api.inputs import StrictSerializer
from tests.agents.conftest import body as agent_body
from tests.conftest import assert_error
from tools.models import Tool


class _Limits(StrictSerializer):
    steps = serializers.IntegerField()


class _Body(StrictSerializer):
    name = serializers.CharField(max_length=5)
    limits = _Limits(required=False)


def _errors(data: dict) -> dict:
    payload = _Body(data=data)
    assert not payload.is_valid()
    return payload.errors


def test_unknown_fields_are_refused_at_every_level():
    assert _errors({"name": "ok", "nmae": "typo"}) == {"nmae": ["Unknown field."]}
    assert _errors({"name": "ok", "limits": {"steps": 1, "stpes": 2}}) == {"limits": {"stpes": ["Unknown field."]}}


def test_unknown_fields_are_reported_with_the_other_errors():
    errors = _errors({"name": "far too long", "nmae": "typo", "limits": {"steps": "x"}})
    assert set(errors) == {"name", "nmae", "limits"}
    assert errors["nmae"] == ["Unknown field."]
    assert set(errors["limits"]) == {"steps"}


def test_a_valid_body_passes_and_read_only_fields_count_as_known():
    payload = _Body(data={"name": "ok", "limits": {"steps": 3}})
    assert payload.is_valid(), payload.errors
    assert payload.validated_data == {"name": "ok", "limits": {"steps": 3}}
    # A model serializer: sending back the id a GET returned is not an unknown field.
    rule = RiskRuleSerializer(data={"id": "x", "pattern": "email_*", "risk_level": "high"})
    assert rule.is_valid(), rule.errors
    refused = RiskRuleSerializer(data={"pattern": "email_*", "risk_level": "high", "levle": "x"})
    assert not refused.is_valid() and refused.errors == {"levle": ["Unknown field."]}


@pytest.mark.django_db
def test_every_app_refuses_unknown_fields_the_same_way(alice, client_for):
    client = client_for(alice)
    cases = [
        # tools (HTTP tool), approvals (risk rule), billing (token), agents (nested in model_config)
        ("/api/v1/tools/", {"name": "bad name!", "description": "d", "parameters_schema": {}, "url": "https://x.example", "extra_field": 1}, {"extra_field"}),
        ("/api/v1/approval-rules/", {"pattern": "email_send", "risk_level": "high", "extra_field": 1}, {"extra_field"}),
        ("/api/v1/tokens/", {"scopes": ["nonsense"], "extra_field": 1}, {"extra_field", "scopes.0"}),
        ("/api/v1/agents/", agent_body(name="", model_config={"provider": "openai", "modle": "x"}), {"name", "model_config.modle"}),
    ]  # fmt: skip
    for url, data, fields in cases:
        error = assert_error(client.post(url, data, format="json"), 400, "InvalidInput")
        assert fields <= set(error["details"]["validation_errors"]), (url, error)
    assert not Tool.objects.filter(organization__isnull=False).exists()
    assert not RiskRule.objects.exists()


@pytest.mark.django_db
def test_a_body_that_is_not_an_object_is_refused_alike(alice, client_for):
    client = client_for(alice)
    for url in ["/api/v1/tools/", "/api/v1/approval-rules/", "/api/v1/agents/", "/api/v1/webhooks/"]:
        error = assert_error(client.post(url, ["a", "list"], format="json"), 400, "InvalidInput")
        assert error["message"] == "The body must be a JSON object.", (url, error)


@pytest.mark.django_db
def test_a_method_no_view_offers_is_405_before_the_access_rules(alice, vic, client_for):
    # vic (viewer) may not write anything: a 405 must still win over the 403 in each app.
    for user in (alice, vic):
        client = client_for(user)
        for url in ["/api/v1/tools/", "/api/v1/approvals/", "/api/v1/tool-calls/", "/api/v1/agents/"]:
            assert_error(client.put(url, {}, format="json"), 405, "MethodNotAllowed")
    # Without credentials too: the method is wrong whoever asks.
    assert_error(APIClient().put("/api/v1/tools/", {}, format="json"), 405, "MethodNotAllowed")
    # A token that is no token is refused first, in every app alike (authentication runs
    # before the access rules; the tools' own check used to answer 405 here).
    forged = APIClient()
    forged.credentials(HTTP_AUTHORIZATION="Bearer agt_not-a-real-token")
    for url in ["/api/v1/tools/", "/api/v1/approvals/", "/api/v1/agents/"]:
        assert_error(forged.put(url, {}, format="json"), 401, "InvalidToken")
