from __future__ import annotations

import os
import subprocess
import sys

import pytest

from config.env import EnvError, env_bool, env_int, env_list, env_str
from tests.processes import ROOT


def test_env_helpers_parse_and_reject(monkeypatch, tmp_path):
    monkeypatch.setenv("X_BOOL", "yes")
    monkeypatch.setenv("X_INT", "42")
    monkeypatch.setenv("X_LIST", "a, b,,c")
    assert env_bool("X_BOOL") is True and env_int("X_INT", 0) == 42 and env_list("X_LIST") == ["a", "b", "c"]
    monkeypatch.setenv("X_BOOL", "maybe")
    monkeypatch.setenv("X_INT", "4x")
    with pytest.raises(EnvError, match="X_BOOL"):
        env_bool("X_BOOL")
    with pytest.raises(EnvError, match="X_INT"):
        env_int("X_INT", 0)
    secret = tmp_path / "secret"
    secret.write_text("from-a-file\n")
    monkeypatch.setenv("X_SECRET", "from-env")
    monkeypatch.setenv("X_SECRET_FILE", str(secret))
    assert env_str("X_SECRET") == "from-a-file"


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    full_env.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=120
    )


def test_production_settings_pass_check_deploy():
    result = _manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DJANGO_SETTINGS_MODULE="config.settings.production",
        SECRET_KEY="k" * 20 + "a-long-random-production-secret-value-0123456789",
        FIELD_ENCRYPTION_KEY="x" * 44,
        ALLOWED_HOSTS="agents.example.com",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_to_start_without_secrets():
    result = _manage("check", DJANGO_SETTINGS_MODULE="config.settings.production", SECRET_KEY="")
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_invalid_environment_fails_with_the_variable_name():
    result = _manage("check", DJANGO_SETTINGS_MODULE="config.settings.dev", DEBUG="perhaps")
    assert result.returncode != 0
    assert "DEBUG must be a boolean" in result.stderr


def test_the_connection_pool_is_sized_from_the_environment():
    script = "from django.conf import settings; print(settings.DATABASES['default']['OPTIONS'].get('pool'))"
    pooled = _manage("shell", "-c", script, DJANGO_SETTINGS_MODULE="config.settings.dev", DB_POOL_MAX_SIZE="7",
                     DB_POOL_TIMEOUT="30")  # fmt: skip
    assert pooled.returncode == 0, pooled.stderr
    assert pooled.stdout.strip().splitlines()[-1] == "{'min_size': 1, 'max_size': 7, 'timeout': 30}"
    plain = _manage("shell", "-c", script, DJANGO_SETTINGS_MODULE="config.settings.dev", DB_POOL_MAX_SIZE="0")
    assert plain.stdout.strip().splitlines()[-1] == "None"


def test_the_web_process_pools_its_connections_and_never_keeps_one_per_thread():
    """Under ASGI each request runs in a thread of its own: a persistent connection per
    thread is one left open per request (security issue #14, H5). Workers keep theirs."""
    show = "from django.conf import settings; d = settings.DATABASES['default']; print(d['OPTIONS'].get('pool'), d['CONN_MAX_AGE'])"
    web = "import config.asgi; " + show
    env = dict.fromkeys(("DB_POOL_MAX_SIZE", "DB_POOL_TIMEOUT", "DB_CONN_MAX_AGE"))

    def run(code: str, **extra: str) -> str:
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_") and k not in env}
        full_env.update(DJANGO_SETTINGS_MODULE="config.settings.dev", **extra)
        result = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, result.stderr
        return result.stdout.strip().splitlines()[-1]

    assert run(web) == "{'min_size': 1, 'max_size': 20, 'timeout': 30} 0"
    assert run(web, DB_POOL_MAX_SIZE="5") == "{'min_size': 1, 'max_size': 5, 'timeout': 30} 0"
    assert run(web, DB_POOL_MAX_SIZE="0") == "None 0"  # no pool: a connection per request
    worker = "import django; django.setup(); " + show
    assert run(worker) == "None 60"
