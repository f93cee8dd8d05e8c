"""Provider connections: encrypted write-only keys, resolution order, model lists, per-minute limits."""

from __future__ import annotations

import pytest

from agents.models import ProviderConnection
from agents.services.connections import provider_connection_create
from bench.fakes.script import text
from config.api.errors import ApiError
from executions.models import Execution
from executions.runtime.loop import run_execution
from executions.services import execution_start
from tests.conftest import assert_error

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def make_agent(owner_actor):
    """A published agent of ``org`` (tests/agents/conftest.py has a make_agent of another shape)."""
    from agents.services.agents import agent_create
    from agents.services.versions import agent_publish

    def make(**fields):
        data = {"name": fields.pop("name", "Runner"), "system_prompt": "You test connections.", **fields}
        agent = agent_create(actor=owner_actor, data=data)
        agent_publish(actor=owner_actor, agent=agent)
        agent.refresh_from_db()
        return agent

    return make


SECRET = "sk-org-secret-value-9876"


def test_keys_are_write_only_and_encrypted(org, adam, vic, oscar, client_for):
    api = client_for(adam)
    response = api.post(
        "/api/v1/provider-connections/",
        {"provider": "openai", "name": "Main", "api_key": SECRET, "is_default": True, "requests_per_minute": 100},
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert SECRET not in response.content.decode() and body["key_last4"] == "9876" and body["has_key"]
    row = ProviderConnection.objects.get(pk=body["id"])
    assert SECRET not in row.api_key_encrypted and row.api_key == SECRET
    listed = api.get("/api/v1/provider-connections/").content.decode()
    assert SECRET not in listed and body["id"] in listed
    # Rotating the key: the new one is stored, still never shown.
    patched = api.patch(f"/api/v1/provider-connections/{body['id']}/", {"api_key": "sk-new-key-1111"}, format="json")
    assert patched.json()["key_last4"] == "1111" and "sk-new-key-1111" not in patched.content.decode()
    # Viewers cannot see connections; another organization cannot even find it.
    assert_error(client_for(vic).get("/api/v1/provider-connections/"), 403, "InsufficientPermissions")
    assert_error(client_for(oscar).get(f"/api/v1/provider-connections/{body['id']}/"), 404, "NotFound")
    assert_error(client_for(oscar).delete(f"/api/v1/provider-connections/{body['id']}/"), 404, "NotFound")


def test_bad_connection_input(org, adam, client_for):
    api = client_for(adam)
    url = "/api/v1/provider-connections/"
    for body, field in (
        ({"provider": "mystery"}, "provider"),
        ({"provider": "openai", "base_url": "ftp://x"}, "base_url"),
        ({"provider": "openai_compatible"}, "base_url"),
        ({"provider": "openai", "requests_per_minute": -1}, "requests_per_minute"),
        ({"provider": "openai", "available_models": "gpt"}, "available_models"),
        ({"provider": "openai", "colour": "red"}, "colour"),
    ):
        error = assert_error(api.post(url, body, format="json"), 400, "InvalidInput")
        assert field in error["details"]["validation_errors"], (body, error)
    assert ProviderConnection.objects.count() == 0


PUBLIC_URL = "https://93.184.216.34/v1"  # an address literal: no DNS needed to judge it


@pytest.mark.parametrize("provider", ["openai", "anthropic", "groq"])
def test_an_organizations_own_base_url_needs_its_own_key(org, adam, client_for, provider):
    api = client_for(adam)
    url = "/api/v1/provider-connections/"
    body = {"provider": provider, "base_url": PUBLIC_URL, "is_default": True}
    error = assert_error(api.post(url, body, format="json"), 400, "InvalidInput")
    assert "own API key" in error["details"]["validation_errors"]["api_key"][0]
    assert_error(api.post(url, {**body, "api_key": ""}, format="json"), 400, "InvalidInput")
    assert ProviderConnection.objects.count() == 0

    # A keyless connection (the platform's key at the provider's own endpoint) may not move
    # to a URL of its own without a key, and a connection with its own URL keeps its key.
    keyless = api.post(url, {"provider": provider}, format="json").json()
    error = assert_error(
        api.patch(f"{url}{keyless['id']}/", {"base_url": PUBLIC_URL}, format="json"), 400, "InvalidInput"
    )
    assert "api_key" in error["details"]["validation_errors"]
    own = api.post(url, {**body, "api_key": "sk-own-1234"}, format="json")
    assert own.status_code == 201, own.content
    assert_error(api.patch(f"{url}{own.json()['id']}/", {"api_key": ""}, format="json"), 400, "InvalidInput")
    assert ProviderConnection.objects.get(pk=own.json()["id"]).api_key == "sk-own-1234"
    moved = api.patch(f"{url}{keyless['id']}/", {"base_url": PUBLIC_URL, "api_key": "sk-x-5678"}, format="json")
    assert moved.status_code == 200, moved.content


def test_keyless_base_urls_stay_possible_where_no_platform_key_can_follow(org, owner_actor):
    # An OpenAI-compatible server never gets a platform key; operators' connections are trusted.
    provider_connection_create(actor=owner_actor, data={"provider": "openai_compatible", "base_url": PUBLIC_URL})
    provider_connection_create(actor=None, data={"provider": "openai", "base_url": "http://10.0.0.7/v1"}, platform=True)
    assert ProviderConnection.objects.count() == 2


@pytest.mark.parametrize(
    "base_url",
    [
        "http://127.0.0.1:8080/v1",
        "http://localhost:11434/v1",
        "http://169.254.169.254/latest/v1",
        "http://2130706433/v1",
        "http://0x7f000001/v1",
        "http://127.1/v1",
        "http://10.0.0.5/v1",
        "http://192.168.1.20/v1",
        "http://[::1]/v1",
        "http://[::ffff:127.0.0.1]/v1",
        "http://[::127.0.0.1]/v1",
        "http://metadata.google.internal/v1",
        "http://user:pw@93.184.216.34/v1",
    ],
)
def test_an_organizations_base_url_on_a_private_address_is_refused_at_save(org, adam, client_for, base_url):
    api = client_for(adam)
    url = "/api/v1/provider-connections/"
    body = {"provider": "openai_compatible", "base_url": base_url, "api_key": "sk-own-1234"}
    error = assert_error(api.post(url, body, format="json"), 400, "InvalidInput")
    assert "refused" in error["details"]["validation_errors"]["base_url"][0].lower(), error
    created = api.post(url, {**body, "base_url": PUBLIC_URL}, format="json").json()
    patched = api.patch(f"{url}{created['id']}/", {"base_url": base_url}, format="json")
    assert_error(patched, 400, "InvalidInput")
    assert ProviderConnection.objects.get().base_url == PUBLIC_URL


def test_the_allow_list_lets_an_organization_reach_an_internal_server(org, owner_actor, settings):
    settings.AGENTRY_SSRF_ALLOW = ["10.1.2.3:8443"]
    provider_connection_create(
        actor=owner_actor, data={"provider": "openai_compatible", "base_url": "https://10.1.2.3:8443/v1"}
    )
    with pytest.raises(ApiError):
        provider_connection_create(
            actor=owner_actor, data={"provider": "openai_compatible", "base_url": "https://10.1.2.3:9000/v1"}
        )


def test_platform_connections_are_read_only_to_organizations(org, adam, client_for):
    platform = provider_connection_create(actor=None, data={"provider": "groq", "api_key": "gsk-x"}, platform=True)
    api = client_for(adam)
    listed = api.get("/api/v1/provider-connections/").json()["results"]
    assert [c["is_platform"] for c in listed if c["id"] == str(platform.pk)] == [True]
    assert_error(
        api.patch(f"/api/v1/provider-connections/{platform.pk}/", {"name": "mine"}, format="json"), 404, "NotFound"
    )


def test_one_default_per_provider(org, owner_actor):
    first = provider_connection_create(actor=owner_actor, data={"provider": "openai", "is_default": True})
    second = provider_connection_create(actor=owner_actor, data={"provider": "openai", "is_default": True})
    first.refresh_from_db()
    assert not first.is_default and second.is_default


def test_runs_use_the_organizations_connection(org, owner_actor, make_agent, settings, fake_llm):
    # The environment points nowhere; only the organization's connection reaches the server.
    settings.PROVIDER_ENV = {"openai": {"api_key": "sk-env", "base_url": "http://127.0.0.1:9/v1"}}
    settings.AGENTRY_SSRF_ALLOW = [fake_llm.allow_entry]  # an organization's URL passes the SSRF guard
    provider_connection_create(
        actor=owner_actor,
        data={"provider": "openai", "api_key": SECRET, "base_url": fake_llm.openai_base_url, "is_default": True},
    )
    agent = make_agent()
    fake_llm.script(text("via the connection"))
    execution, _ = execution_start(agent=agent, organization=org, task="hi")
    run_execution(execution.pk)
    execution.refresh_from_db()
    assert execution.status == "completed", execution.error
    assert fake_llm.chat_requests[0].has_auth


def test_an_agent_may_name_a_connection_of_its_organization_only(org, other_org, owner_actor, make_agent):
    from accounts.access import Actor
    from agents.services.agents import agent_create
    from config.api.errors import ApiError

    mine = provider_connection_create(actor=owner_actor, data={"provider": "openai", "api_key": "k"})
    theirs = provider_connection_create(
        actor=Actor(organization=other_org, user=None), data={"provider": "openai", "api_key": "k"}
    )
    agent = make_agent(model_config={"provider": "openai", "model": "gpt-4o", "connection_id": str(mine.pk)})
    assert agent.current_version.config["model_config"]["connection_id"] == str(mine.pk)
    with pytest.raises(ApiError) as excinfo:
        agent_create(
            actor=owner_actor,
            data={
                "name": "Thief",
                "model_config": {"provider": "openai", "model": "gpt-4o", "connection_id": str(theirs.pk)},
            },
        )
    assert "model_config.connection_id" in excinfo.value.details["validation_errors"]


def test_available_models_extend_the_catalog(org, owner_actor):
    from agents.selectors import agent_warnings
    from agents.services.agents import agent_create

    data = {"name": "New model", "model_config": {"provider": "groq", "model": "brand-new-70b"}}
    # Not in the catalog: accepted, with a warning (issue 19) ...
    agent = agent_create(actor=owner_actor, data=dict(data))
    assert any("'brand-new-70b' is not in Agentry's groq catalog" in w for w in agent_warnings(agent))
    # ... which a connection serving it takes away.
    provider_connection_create(actor=owner_actor, data={"provider": "groq", "available_models": ["brand-new-70b"]})
    assert not any("brand-new-70b" in w for w in agent_warnings(agent))


def test_a_connection_at_its_request_limit_yields_to_the_fallback(
    org, owner_actor, make_agent, providers_at_fake, settings
):
    from django.core.cache import cache

    cache.clear()
    settings.AGENTRY_SSRF_ALLOW = [providers_at_fake.allow_entry]
    provider_connection_create(
        actor=owner_actor,
        data={"provider": "openai", "base_url": providers_at_fake.openai_base_url, "api_key": "sk-x",
              "is_default": True, "requests_per_minute": 1},
    )  # fmt: skip
    agent = make_agent(
        model_config={
            "provider": "openai",
            "model": "gpt-4o",
            "fallbacks": [{"provider": "anthropic", "model": "claude-haiku-4-5"}],
        },
        limits={"max_runs_per_hour": 100},
    )
    providers_at_fake.script(text("first"), text("second"))
    providers = []
    for task in ("one", "two"):
        execution, _ = execution_start(agent=agent, organization=org, task=task)
        run_execution(execution.pk)
        providers.append(Execution.objects.get(pk=execution.pk).steps.get(step_type="think").provider)
    assert providers == ["openai", "anthropic"]


def test_admin_never_shows_the_key(org, owner_actor, client, django_user_model):
    connection = provider_connection_create(actor=owner_actor, data={"provider": "openai", "api_key": SECRET})
    root = django_user_model.objects.create_superuser("root", "r@example.test", "pw")
    client.force_login(root)
    for url in ("/admin/agents/providerconnection/", f"/admin/agents/providerconnection/{connection.pk}/change/"):
        page = client.get(url).content.decode()
        assert SECRET not in page and connection.api_key_encrypted not in page and "9876" in page


def test_the_admin_holds_organization_admins_to_the_same_rules(org, adam):
    from django.test import Client

    from tests.admin_forms import page_data

    adam.is_staff = True
    adam.save(update_fields=["is_staff"])
    client = Client()
    client.force_login(adam)
    add = "/admin/agents/providerconnection/add/"
    for fields, field in (
        ({"base_url": "http://169.254.169.254/v1", "api_key": "sk-own-1234"}, "base_url"),
        ({"base_url": PUBLIC_URL}, "api_key"),
    ):
        data = page_data(client, add, organization=str(org.pk), provider="openai", name="Mine", **fields)
        response = client.post(add, data)
        assert response.status_code == 200 and field in response.context["adminform"].form.errors, fields
    assert not ProviderConnection.objects.exists()


def test_the_openai_organization_id_reaches_openai_as_its_header(org, owner_actor, make_agent, settings, fake_llm):
    settings.PROVIDER_ENV = {"openai": {"api_key": "sk-env", "base_url": "http://127.0.0.1:9/v1"}}
    settings.AGENTRY_SSRF_ALLOW = [fake_llm.allow_entry]
    connection = provider_connection_create(
        actor=owner_actor,
        data={
            "provider": "openai", "api_key": SECRET, "base_url": fake_llm.openai_base_url, "is_default": True,
            "openai_organization": "org-Acme123",
        },
    )  # fmt: skip
    agent = make_agent()
    fake_llm.script(text("one"), text("two"), text("three"))
    for _ in range(2):
        execution, _ = execution_start(agent=agent, organization=org, task="hi")
        run_execution(execution.pk)
    assert [r.headers.get("openai-organization") for r in fake_llm.chat_requests] == ["org-Acme123"] * 2
    # Another id (or none) is another SDK client: the cached one never sends a stale header.
    from agents.services.connections import provider_connection_update

    provider_connection_update(actor=owner_actor, connection=connection, data={"openai_organization": ""})
    execution, _ = execution_start(agent=agent, organization=org, task="hi")
    run_execution(execution.pk)
    assert "openai-organization" not in fake_llm.chat_requests[-1].headers


@pytest.mark.parametrize(
    ("data", "why"),
    [
        ({"provider": "anthropic", "openai_organization": "org-Acme123"}, "Only OpenAI"),
        ({"provider": "groq", "openai_organization": "org-Acme123"}, "Only OpenAI"),
        ({"provider": "openai", "openai_organization": "Acme\r\nX-Evil: 1"}, "organization id"),
        ({"provider": "openai", "openai_organization": 42}, "organization id"),
    ],
)
def test_an_organization_id_is_refused_off_openai_or_malformed(org, adam, client_for, data, why):
    error = assert_error(
        client_for(adam).post("/api/v1/provider-connections/", data, format="json"), 400, "InvalidInput"
    )
    assert why in error["details"]["validation_errors"]["openai_organization"][0]
    assert not ProviderConnection.objects.filter(organization=org).exists()


def test_the_organization_id_is_shown_and_changed_through_the_api(org, adam, client_for):
    api = client_for(adam)
    created = api.post(
        "/api/v1/provider-connections/", {"provider": "openai", "openai_organization": "org-One"}, format="json"
    )
    assert created.status_code == 201, created.content
    assert created.json()["openai_organization"] == "org-One"
    url = f"/api/v1/provider-connections/{created.json()['id']}/"
    assert api.patch(url, {"openai_organization": "org-Two"}, format="json").json()["openai_organization"] == "org-Two"
