"""Secrets at rest (config/crypto.py): Fernet with rotation, never stored or shown in clear."""

from __future__ import annotations

import json

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from django.db import connection

from config.crypto import DecryptionError, decrypt, encrypt, mask, reencrypt


def test_round_trip_and_every_token_differs(settings):
    settings.FIELD_ENCRYPTION_KEY = Fernet.generate_key().decode()
    first, second = encrypt("sk-secret-1234"), encrypt("sk-secret-1234")
    assert first != second and "sk-secret" not in first
    assert decrypt(first) == decrypt(second) == "sk-secret-1234"


def test_rotation_first_key_encrypts_all_keys_decrypt(settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEY = old
    token = encrypt("value")
    settings.FIELD_ENCRYPTION_KEY = f"{new},{old}"
    assert decrypt(token) == "value"
    rotated = reencrypt(token)
    settings.FIELD_ENCRYPTION_KEY = new
    assert decrypt(rotated) == "value"
    with pytest.raises(DecryptionError):
        decrypt(token)  # the old key is gone


def test_without_a_key_one_is_derived_from_the_secret_key(settings):
    settings.FIELD_ENCRYPTION_KEY = ""
    token = encrypt("dev value")
    assert decrypt(token) == "dev value"
    settings.SECRET_KEY = "another-secret-key-entirely-0123456789"
    with pytest.raises(DecryptionError):
        decrypt(token)


def test_a_malformed_key_is_a_configuration_error_without_echoing_it(settings):
    settings.FIELD_ENCRYPTION_KEY = "not-a-fernet-key"
    with pytest.raises(ImproperlyConfigured) as excinfo:
        encrypt("x")
    assert "not-a-fernet-key" not in str(excinfo.value)


def test_mask_shows_the_last_four_only():
    assert mask("sk-abcdef123456") == "…3456"
    assert mask("abc") == "…"
    assert mask("") == ""


def test_encrypted_fields_are_ciphertext_in_the_database(org, synced_tools):
    from tools.models import ModuleEndpoint, Tool

    endpoint = ModuleEndpoint.objects.create(
        organization=org, module="crm", base_url="https://crm.example.test", secret="Bearer crm-secret-9876"
    )
    tool = Tool.objects.create(
        organization=org, name="hook", display_name="Hook", description="d", category="custom",
        handler_type="http", handler_config={"url": "https://example.test"},
        secret_headers=json.dumps({"X-Token": "tok-secret-5555"}),
    )  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute("SELECT secret FROM tools_moduleendpoint WHERE id = %s", [endpoint.pk])
        raw_secret = cursor.fetchone()[0]
        cursor.execute("SELECT secret_headers FROM tools_tool WHERE id = %s", [tool.pk])
        raw_headers = cursor.fetchone()[0]
    assert "crm-secret" not in raw_secret and raw_secret.startswith("gAAAA")
    assert "tok-secret" not in raw_headers
    endpoint.refresh_from_db()
    tool.refresh_from_db()
    assert endpoint.secret == "Bearer crm-secret-9876"
    assert json.loads(tool.secret_headers) == {"X-Token": "tok-secret-5555"}
