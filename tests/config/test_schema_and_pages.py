"""OpenAPI schema, offline docs, admin scoping, login page, and the repository's shape."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
import yaml
from openapi_spec_validator import validate

from accounts.models import Organization
from tests.processes import ROOT


def test_openapi_schema_validates(client, db):
    response = client.get("/api/schema/?format=json")
    assert response.status_code == 200
    schema = response.json()
    validate(schema)
    assert "/api/v1/health/" in schema["paths"] and "/api/v1/tokens/" in schema["paths"]
    assert schema["components"]["securitySchemes"] == {
        "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "agt_…"}
    }  # one way in, listed once
    assert schema["security"] == [{"bearerAuth": []}]
    names = {tag["name"] for tag in schema["tags"]}
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            assert operation["summary"] and len(operation["tags"]) == 1 and operation["tags"][0] in names, (
                path,
                method,
            )
            assert "v1" not in operation["tags"]
            errors = {status for status in operation["responses"] if status.startswith("4")}
            assert "429" in errors, (path, method)
            if path not in ("/api/v1/health/", "/api/v1/hooks/{agent_id}/"):
                assert {"401", "403"} <= errors and "security" not in operation, (path, method)
            if "{" in path:
                assert "404" in errors, (path, method)
            for status in errors:
                ref = operation["responses"][status]["content"]["application/json"]["schema"]["$ref"]
                assert ref == "#/components/schemas/Error"
    execute = schema["paths"]["/api/v1/agents/{agent_id}/execute/"]["post"]
    assert execute["tags"] == ["Executions"] and "`InvalidInput`" in execute["responses"]["400"]["description"]
    assert schema["paths"]["/api/v1/health/"]["get"]["security"] == []


@pytest.mark.parametrize("path", ["/api/docs/", "/api/redoc/"])
def test_docs_work_without_internet(client, db, path):
    response = client.get(path)
    assert response.status_code == 200
    html = response.content.decode()
    assert "drf_spectacular_sidecar" in html or "/api/redoc/dist/" in html
    external = re.findall(r"""(?:src|href)=["'](https?://[^"']+)""", html)
    assert external == [], external
    if path == "/api/docs/":
        asset = re.search(r"""src=["'](/static/drf_spectacular_sidecar/[^"']+\.js)""", html).group(1)
        assert client.get(asset).status_code == 200  # served by WhiteNoise from the sidecar package
    else:
        # Redoc: the sidecar's bundle with its one CDN address (the side menu's logo) made local.
        asset = re.search(r"""src=["'](/api/redoc/dist/bundles/redoc\.standalone\.js)""", html).group(1)
        bundle = client.get(asset).content
        assert b"cdn.redoc.ly" not in bundle and b"/static/console/redoc-logo-mini.svg" in bundle
        assert client.get("/static/console/redoc-logo-mini.svg").status_code == 200


def test_login_page_renders_with_the_base_template(client, db):
    response = client.get("/accounts/login/")
    assert response.status_code == 200
    assert b"Log in" in response.content and b"csrfmiddlewaretoken" in response.content


def test_superuser_sees_every_organization_in_admin(client, org, other_org, django_user_model):
    root = django_user_model.objects.create_superuser("root", "root@example.test", "pw")
    client.force_login(root)
    page = client.get("/admin/accounts/organization/").content.decode()
    assert "Acme" in page and "Globex" in page


def test_organization_admin_sees_only_its_own(client, org, other_org, alice, oscar):
    alice.is_staff = True
    alice.save()
    client.force_login(alice)
    page = client.get("/admin/accounts/organization/")
    assert page.status_code == 200
    assert "Acme" in page.content.decode() and "Globex" not in page.content.decode()
    assert client.get(f"/admin/accounts/organization/{other_org.id}/change/").status_code in (302, 404)
    members = client.get("/admin/accounts/membership/").content.decode()
    assert "alice@acme.test" in members and "oscar@globex.test" not in members


def test_admin_never_shows_token_hashes(client, org, alice, client_for):
    from accounts.models import ApiToken

    client_for(alice)
    token = ApiToken.objects.get(user=alice)
    root = type(alice).objects.create_superuser("root", "root@example.test", "pw")
    client.force_login(root)
    for url in ("/admin/accounts/apitoken/", f"/admin/accounts/apitoken/{token.id}/change/"):
        page = client.get(url).content.decode()
        assert token.prefix in page and token.token_hash not in page


def test_viewer_without_staff_cannot_enter_admin(client, vic):
    client.force_login(vic)
    assert client.get("/admin/accounts/organization/").status_code == 302


def test_repository_has_the_shape_of_the_design_card():
    for name in ("manage.py", "pyproject.toml", "Makefile", "README.md", "docker-compose.yml", ".ci/run"):
        assert (ROOT / name).is_file(), name
    for app in ("accounts", "agents", "executions", "memory", "tools", "approvals", "billing"):
        for part in ("__init__.py", "apps.py", "migrations", "api"):
            assert (ROOT / app / part).exists(), f"{app}/{part}"
    for folder in ("config", "templates", "tests"):
        assert (ROOT / folder).is_dir()


def test_docker_compose_describes_the_stack():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) >= {"postgres", "redis", "web", "worker", "beat"}
    assert "pgvector" in services["postgres"]["image"]
    for name in ("web", "worker", "beat"):
        env = services[name]["environment"]
        assert {"DATABASE_URL", "REDIS_URL", "SECRET_KEY", "FIELD_ENCRYPTION_KEY"} <= set(env)
    assert "beat" in services["beat"]["command"] and "DatabaseScheduler" in " ".join(services["beat"]["command"])
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        result = subprocess.run(
            [docker, "compose", "config", "-q"],
            cwd=ROOT,
            capture_output=True,
            env={"SECRET_KEY": "x", "FIELD_ENCRYPTION_KEY": "y", "PATH": "/usr/bin:/bin"},
        )
        assert result.returncode == 0, result.stderr


def test_organization_slugs_are_unique(db):
    Organization.objects.create(name="A", slug="same")
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        Organization.objects.create(name="B", slug="same")
