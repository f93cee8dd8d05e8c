"""AgentCreationFailed (DESIGN §11, 500): an agent that cannot be created for a reason other
than its input gets the reference's code, and nothing is half-written."""

from __future__ import annotations

import pytest
from django.db import connection

from accounts.models import ActivityLog
from agents.models import Agent, AgentGoal, AgentTemplate
from executions.models import PlatformEvent
from tests.agents.conftest import body
from tests.conftest import assert_error

pytestmark = pytest.mark.django_db


@pytest.fixture
def goals_cannot_be_written():
    """The database refuses the agent's goals (as a full disk or a broken replica would):
    a real error from PostgreSQL, rolled back with the test's transaction."""
    table = AgentGoal._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE FUNCTION reqs_refuse() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'disk full (test)'; END $$"
        )
        cursor.execute(
            f"CREATE TRIGGER reqs_refuse BEFORE INSERT ON {table} FOR EACH ROW EXECUTE FUNCTION reqs_refuse()"
        )


def test_a_write_the_database_refuses_is_agent_creation_failed(org, alice, client_for, goals_cannot_be_written):
    response = client_for(alice).post("/api/v1/agents/", body(), format="json")
    error = assert_error(response, 500, "AgentCreationFailed")
    assert error["details"]["reason"].endswith("while writing the agent.")
    assert "disk full" not in response.content.decode()  # the cause goes to the log, not the caller
    assert not Agent.objects.filter(organization=org).exists()
    assert not ActivityLog.objects.filter(organization=org, action="agent.created").exists()
    assert not PlatformEvent.objects.filter(organization=org).exists()


def test_bad_input_is_still_a_400_not_a_creation_failure(org, alice, client_for, goals_cannot_be_written):
    response = client_for(alice).post("/api/v1/agents/", body(personality={"tone": "grumpy"}), format="json")
    assert_error(response, 400, "InvalidAgentConfig")


def test_a_builtin_template_missing_from_the_platform_is_agent_creation_failed(org, alice, client_for):
    AgentTemplate.objects.filter(key="security-guardian").delete()
    response = client_for(alice).post("/api/v1/agents/from-template/", {"template": "security-guardian"}, format="json")
    error = assert_error(response, 500, "AgentCreationFailed")
    assert error["details"]["template"] == "security-guardian"
    assert not Agent.objects.filter(organization=org).exists()
    # A key the platform never had is the caller's mistake.
    unknown = client_for(alice).post("/api/v1/agents/from-template/", {"template": "no-such"}, format="json")
    assert_error(unknown, 400, "InvalidInput")
