"""The doors' tests run against real processes: uvicorn serving config.asgi and a Celery worker,
both on the test database, the worker's OpenAI SDK aimed at the fake LLM server. Started once
per module (starting them is most of a test's time); every test makes its own rows."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from django.conf import settings

from accounts.services import api_token_create
from tests.fakes.fixtures import worker_env_for
from tests.processes import asgi_server, celery_worker
from tests.tools.fixtures import *  # noqa: F403


@dataclass
class Doors:
    url: str


@pytest.fixture(scope="module")
def doors(django_db_setup, fake_llm_server) -> Iterator[Doors]:
    from redis import Redis

    # Messages left by in-process tests (whose rows are gone) would only slow the worker down.
    Redis.from_url(settings.CELERY_BROKER_URL).delete("io", "default")
    env = worker_env_for(fake_llm_server, MEMORY_EXTRACTION_ENABLED="0")
    with asgi_server(env) as url, celery_worker(queues="default,io", concurrency=2, extra_env=env):
        yield Doors(url=url)


@pytest.fixture
def token_for(db):
    """token_for(user, scopes=None) -> a raw API token of the user's first organization."""

    def make(user, scopes: list[str] | None = None) -> str:
        _, raw = api_token_create(user=user, organization=user.memberships.first().organization, scopes=scopes)
        return raw

    return make
