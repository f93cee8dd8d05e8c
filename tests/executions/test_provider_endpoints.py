"""Whose key goes where, and where an organization's base URL may point (security issue #14).

- C1: the platform's keys (``PROVIDER_ENV`` and the SDKs' own environment variables) go only
  to the providers' own endpoints or to a platform connection an operator made, never to a
  base URL an organization supplied, whatever its connection rows say.
- H2: an organization's base URL goes through the SSRF guard at every connection (resolve,
  check, connect to the checked address), redirects are not followed, and what its server
  answers reaches the run only as a short, sanitized excerpt.

The servers here are real HTTP servers on 127.0.0.1 speaking each protocol, reached through
the real SDKs; they record every header they were sent, credentials included.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from agents.models import ProviderConnection
from agents.services.connections import provider_connection_create
from bench.fakes import protocols
from bench.fakes.script import conversation, text
from executions.llm.registry import clear_client_cache
from executions.models import Execution
from executions.runtime.loop import run_execution
from executions.services import execution_start
from tests.fakes.http_fakes import Canary, FakeHttpServer, Recorded, Route

pytestmark = pytest.mark.django_db(transaction=True)

PLATFORM_KEY = "sk-platform-canary-5f1e2d3c4b"
ORG_KEY = "sk-org-own-key-77aa88bb"
MODELS = {"openai": "gpt-4o", "anthropic": "claude-haiku-4-5", "groq": "llama-3.3-70b-versatile"}
PATHS = {"openai": "/v1/chat/completions", "anthropic": "/v1/messages", "groq": "/openai/v1/chat/completions"}


def _answer(protocol: str, words: str):
    def handler(recorded: Recorded) -> Route:
        chat = conversation(protocol, recorded.json)
        if protocol == "anthropic":
            return Route(json=protocols.anthropic_message(text(words), chat))
        return Route(json=protocols.openai_completion(text(words), chat))

    return handler


@pytest.fixture
def server() -> Iterator[FakeHttpServer]:
    """An OpenAI, Anthropic and Groq look-alike that records every header it receives."""
    with FakeHttpServer() as fake:
        for provider, path in PATHS.items():
            fake.route("POST", path, handler=_answer("anthropic" if provider == "anthropic" else "openai", "hi"))
        yield fake
    clear_client_cache()


def base_url(server: FakeHttpServer, provider: str, host: str = "127.0.0.1") -> str:
    return f"http://{host}:{server.port}" + ("/v1" if provider == "openai" else "")


def credentials_seen(server: FakeHttpServer) -> list[str]:
    return [
        value
        for request in server.requests
        for name, value in request.headers.items()
        if name in ("authorization", "x-api-key", "api-key")
    ]


@pytest.fixture
def platform_keys(settings, monkeypatch) -> None:
    """The platform's keys, as settings and as the SDKs' own environment variables."""
    settings.PROVIDER_ENV = {provider: {"api_key": PLATFORM_KEY, "base_url": ""} for provider in MODELS}
    for variable in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GROQ_API_KEY"):
        monkeypatch.setenv(variable, PLATFORM_KEY)
    clear_client_cache()


def saved_row(org, provider: str, url: str, key: str = "", **fields) -> ProviderConnection:
    """A connection row written as it is, past the service's checks: rows saved before them."""
    connection = ProviderConnection(organization=org, provider=provider, base_url=url, is_default=True, **fields)
    connection.set_api_key(key)
    connection.save()
    return connection


def run(make_agent, org, provider: str, **model_config) -> Execution:
    agent = make_agent(model_config={"provider": provider, "model": MODELS[provider], **model_config})
    execution, _ = execution_start(agent=agent, organization=org, task="hello")
    run_execution(execution.pk)
    return Execution.objects.get(pk=execution.pk)


# -- C1: the platform's keys ---------------------------------------------------------------


@pytest.mark.parametrize("provider", ["openai", "anthropic", "groq"])
def test_the_platform_key_never_reaches_an_organizations_server(
    org, make_agent, server, platform_keys, settings, provider
):
    settings.AGENTRY_SSRF_ALLOW = [f"127.0.0.1:{server.port}"]
    # A row as the API used to accept it (the service refuses it now): its own URL, no key.
    saved_row(org, provider, base_url(server, provider))

    execution = run(make_agent, org, provider)

    assert all(PLATFORM_KEY not in value for value in credentials_seen(server)), credentials_seen(server)
    assert execution.status == "failed"
    assert "own API key" in execution.error and PLATFORM_KEY not in execution.error
    assert execution.error_details["provider_error"] == "LLMAuthError"


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_an_organizations_own_key_goes_to_its_own_server(
    org, owner_actor, make_agent, server, platform_keys, settings, provider
):
    settings.AGENTRY_SSRF_ALLOW = [f"127.0.0.1:{server.port}"]
    provider_connection_create(
        actor=owner_actor,
        data={"provider": provider, "base_url": base_url(server, provider), "api_key": ORG_KEY, "is_default": True},
    )

    execution = run(make_agent, org, provider)

    assert execution.status == "completed", execution.error
    seen = credentials_seen(server)
    assert seen and all(ORG_KEY in value and PLATFORM_KEY not in value for value in seen), seen


@pytest.mark.parametrize(("provider", "prefix"), [("openai", "OPENAI"), ("anthropic", "ANTHROPIC"), ("groq", "GROQ")])
def test_what_the_sdks_read_from_the_environment_stays_home(
    org, owner_actor, make_agent, server, platform_keys, settings, monkeypatch, provider, prefix
):
    # The SDKs add headers from the environment by themselves (an operator's gateway token,
    # the platform's OpenAI organization): none of it may reach an organization's server.
    monkeypatch.setenv(f"{prefix}_CUSTOM_HEADERS", "X-Gateway-Token: gw-platform-secret-31337")
    monkeypatch.setenv("OPENAI_ORG_ID", "org-platform-0a1b2c3d")
    settings.AGENTRY_SSRF_ALLOW = [f"127.0.0.1:{server.port}"]
    provider_connection_create(
        actor=owner_actor,
        data={"provider": provider, "base_url": base_url(server, provider), "api_key": ORG_KEY, "is_default": True},
    )

    execution = run(make_agent, org, provider)

    assert execution.status == "completed", execution.error
    sent = " ".join(f"{k}: {v}" for request in server.requests for k, v in request.headers.items())
    assert ORG_KEY in sent
    assert "gw-platform-secret-31337" not in sent and "org-platform-0a1b2c3d" not in sent and PLATFORM_KEY not in sent


def test_a_platform_connection_made_by_an_operator_may_carry_the_platform_key(
    org, make_agent, server, platform_keys, settings
):
    # Operators' endpoints are trusted: no key of its own, no allow-list entry, still reached.
    settings.AGENTRY_SSRF_ALLOW = []
    provider_connection_create(
        actor=None,
        data={"provider": "openai", "base_url": base_url(server, "openai"), "is_default": True},
        platform=True,
    )

    execution = run(make_agent, org, "openai")

    assert execution.status == "completed", execution.error
    assert credentials_seen(server) == [f"Bearer {PLATFORM_KEY}"]


def test_the_fallback_after_a_keyless_organization_server_is_tried(org, make_agent, server, platform_keys, settings):
    settings.AGENTRY_SSRF_ALLOW = [f"127.0.0.1:{server.port}"]
    saved_row(org, "openai", base_url(server, "openai"))
    provider_connection_create(
        actor=None,
        data={"provider": "anthropic", "base_url": base_url(server, "anthropic"), "is_default": True},
        platform=True,
    )

    execution = run(make_agent, org, "openai", fallbacks=[{"provider": "anthropic", "model": MODELS["anthropic"]}])

    assert execution.status == "completed", execution.error
    assert [r.path for r in server.requests] == [PATHS["anthropic"]]  # the keyless one was never called


def test_check_provider_connections_never_sends_the_platform_key_to_an_organizations_url(
    org, server, platform_keys, settings
):
    settings.AGENTRY_SSRF_ALLOW = [f"127.0.0.1:{server.port}"]
    saved_row(org, "openai", base_url(server, "openai"), name="legacy", default_model="gpt-4o")

    out = StringIO()
    with pytest.raises(CommandError):
        call_command("check_provider_connections", "--timeout", "3", stdout=out)

    assert all(PLATFORM_KEY not in value for value in credentials_seen(server))
    assert "FAIL" in out.getvalue() and "own API key" in out.getvalue()


# -- H2: where an organization's base URL may point -----------------------------------------


@pytest.fixture
def canary() -> Iterator[Canary]:
    listener = Canary()
    yield listener
    listener.stop()
    clear_client_cache()


@pytest.mark.parametrize("provider", ["openai", "anthropic", "groq"])
def test_an_organizations_base_url_on_a_local_address_is_refused_at_every_call(
    org, make_agent, canary, settings, provider
):
    settings.AGENTRY_SSRF_ALLOW = []
    # Rows saved before the guard existed: every call checks again, not only the save.
    saved_row(org, provider, f"http://2130706433:{canary.port}" + ("/v1" if provider == "openai" else ""), ORG_KEY)

    started = time.monotonic()
    execution = run(make_agent, org, provider)

    assert time.monotonic() - started < 10  # refused, not timed out
    time.sleep(0.2)
    assert canary.connections == 0
    assert execution.status == "failed"
    assert "loopback" in execution.error and execution.error_details["provider_error"] == "LLMConfigurationError"


def test_cloud_metadata_is_refused_without_a_connection_attempt(org, make_agent, settings):
    settings.AGENTRY_SSRF_ALLOW = []
    saved_row(org, "openai", "http://169.254.169.254/latest/v1", ORG_KEY)

    started = time.monotonic()
    execution = run(make_agent, org, "openai")

    assert time.monotonic() - started < 5
    assert execution.status == "failed" and "link-local" in execution.error


def test_the_guard_connects_to_the_address_it_checked(org, make_agent, server, settings, monkeypatch):
    # "llm.rebind.test" exists only for the guard: the check resolves it to 127.0.0.1 (allowed
    # by name); the connection must go to that address, not ask DNS again (which would fail,
    # or, with a rebinding server, answer with another address).
    from config import ssrf

    real_resolve = ssrf.resolve
    monkeypatch.setattr(
        ssrf,
        "resolve",
        lambda host, port: ssrf.resolve("127.0.0.1", port) if host == "llm.rebind.test" else real_resolve(host, port),
    )
    settings.AGENTRY_SSRF_ALLOW = ["llm.rebind.test"]
    saved_row(org, "openai", base_url(server, "openai", host="llm.rebind.test"), ORG_KEY)

    execution = run(make_agent, org, "openai")

    assert execution.status == "completed", execution.error
    assert server.requests[0].headers["host"] == f"llm.rebind.test:{server.port}"


def test_redirects_from_an_organizations_server_are_not_followed(org, make_agent, server, canary, settings):
    settings.AGENTRY_SSRF_ALLOW = [f"127.0.0.1:{server.port}"]
    server.route(
        "POST", PATHS["openai"], status=307, headers={"Location": f"http://127.0.0.1:{canary.port}/v1/chat/completions"}
    )
    saved_row(org, "openai", base_url(server, "openai"), ORG_KEY)

    execution = run(make_agent, org, "openai")

    time.sleep(0.2)
    assert canary.connections == 0
    assert execution.status == "failed" and "307" in execution.error


def test_a_providers_error_page_reaches_the_run_only_as_a_short_plain_excerpt(org, make_agent, server, settings):
    settings.AGENTRY_SSRF_ALLOW = [f"127.0.0.1:{server.port}"]
    page = (
        "<html><head><script>steal()</script></head><body>\n<h1>Internal admin</h1>\n"
        + "<p>db_password=hunter2 " * 400
        + "</body></html>"
    )
    server.route("POST", PATHS["openai"], status=404, text=page)
    saved_row(org, "openai", base_url(server, "openai"), ORG_KEY)

    execution = run(make_agent, org, "openai")

    assert execution.status == "failed"
    assert len(execution.error) <= 300, len(execution.error)
    assert "<" not in execution.error and "\n" not in execution.error and "steal()" not in execution.error
    assert "Internal admin" in execution.error  # the excerpt still says what came back
