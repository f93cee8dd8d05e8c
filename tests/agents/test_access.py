"""Who may do what: every endpoint and every role, another organization's ids, visibility,
per-user grants, token scopes, and the role → permission mapping as data."""

from __future__ import annotations

import pytest

from agents import services
from agents.access import agent_rights, visible_agents_q
from agents.models import Agent
from tests.agents.conftest import actor_of, body
from tests.conftest import assert_error
from tests.factories import MembershipFactory, UserFactory

# (method, path under the agent, body or None, expected status per role)
# owner alice and admin adam manage everything; member mia reads/executes others' agents
# and manages her own; viewer vic only reads; gina, a viewer with write and execute grants on
# this one agent, edits it but neither deletes it nor shares it.
OTHERS_AGENT_MATRIX = [
    ("get", "", None, {"alice": 200, "adam": 200, "mia": 200, "vic": 200, "gina": 200}),
    ("patch", "", {"description": "x"}, {"alice": 200, "adam": 200, "mia": 403, "vic": 403, "gina": 200}),
    ("post", "publish/", {"version": "2.0.0"}, {"alice": 201, "adam": 201, "mia": 403, "vic": 403, "gina": 201}),
    ("post", "deprecate/", {}, {"alice": 200, "adam": 200, "mia": 403, "vic": 403, "gina": 200}),
    ("post", "archive/", {}, {"alice": 200, "adam": 200, "mia": 403, "vic": 403, "gina": 200}),
    ("post", "activate/", {}, {"alice": 200, "adam": 200, "mia": 403, "vic": 403, "gina": 200}),
    ("post", "deactivate/", {}, {"alice": 200, "adam": 200, "mia": 403, "vic": 403, "gina": 200}),
    ("get", "versions/", None, {"alice": 200, "adam": 200, "mia": 200, "vic": 200, "gina": 200}),
    ("get", "versions/1.0.0/", None, {"alice": 200, "adam": 200, "mia": 200, "vic": 200, "gina": 200}),
    # Rights before state: who may not write gets 403; who may, learns a version is immutable.
    ("patch", "versions/1.0.0/", {}, {"alice": 409, "adam": 409, "mia": 403, "vic": 403, "gina": 409}),
    ("post", "rollback/", {"version": "1.0.0"}, {"alice": 200, "adam": 200, "mia": 403, "vic": 403, "gina": 200}),
    (
        "get",
        "versions/compare/?from=1.0.0&to=draft",
        None,
        {"alice": 200, "adam": 200, "mia": 200, "vic": 200, "gina": 200},
    ),
    ("get", "metrics/", None, {"alice": 200, "adam": 200, "mia": 200, "vic": 200, "gina": 200}),
    ("get", "permissions/", None, {"alice": 200, "adam": 200, "mia": 403, "vic": 403, "gina": 403}),
    (
        "post",
        "permissions/",
        {"user": "vic@acme.test", "permission": "read"},
        {"alice": 201, "adam": 201, "mia": 403, "vic": 403, "gina": 403},
    ),
    ("delete", "", None, {"alice": 204, "adam": 204, "mia": 403, "vic": 403, "gina": 403}),
]


def _call(client, method, url, data):
    if data is None:
        return getattr(client, method)(url)
    return getattr(client, method)(url, data, format="json")


@pytest.fixture
def gina(org):
    user = UserFactory(username="gina@acme.test")
    MembershipFactory(user=user, organization=org, role="viewer")
    return user


@pytest.fixture
def people(alice, adam, mia, vic, oscar, gina):
    return {"alice": alice, "adam": adam, "mia": mia, "vic": vic, "oscar": oscar, "gina": gina}


@pytest.fixture
def target(alice, gina, published):
    """alice's published agent, with an unpublished change in its draft, shared with gina."""
    for grant in ("write", "execute"):
        services.agent_grant(actor=actor_of(alice), agent=published, user=gina.pk, permission=grant)
    return services.agent_update(actor=actor_of(alice), agent=published, data={"instructions": "Be brief."})


@pytest.mark.parametrize(("method", "suffix", "data", "expected"), OTHERS_AGENT_MATRIX)
@pytest.mark.parametrize("role", ["alice", "adam", "mia", "vic", "gina"])
def test_authorization_matrix_on_the_owners_agent(method, suffix, data, expected, role, people, target, client_for):
    response = _call(client_for(people[role]), method, f"/api/v1/agents/{target.pk}/{suffix}", data)
    status = expected[role]
    assert response.status_code == status, (role, method, suffix, response.content[:300])
    if status == 403:
        assert_error(response, 403, "InsufficientPermissions")


@pytest.mark.parametrize(("method", "suffix", "data", "expected"), OTHERS_AGENT_MATRIX)
def test_another_organizations_admin_gets_404_everywhere(method, suffix, data, expected, oscar, target, client_for):
    before = Agent.objects.filter(pk=target.pk).values().get()
    response = _call(client_for(oscar), method, f"/api/v1/agents/{target.pk}/{suffix}", data)
    assert_error(response, 404, "AgentNotFound")
    assert target.name not in response.content.decode()
    assert Agent.objects.filter(pk=target.pk).values().get() == before


@pytest.mark.parametrize(
    ("method", "suffix", "data"),
    [
        ("patch", "", {"description": "mine"}),
        ("post", "publish/", {}),
        ("get", "permissions/", None),
        ("delete", "", None),
    ],
)
def test_a_member_manages_her_own_agents(method, suffix, data, mia, make_agent, client_for):
    agent = make_agent(mia, name="Mia's")
    response = _call(client_for(mia), method, f"/api/v1/agents/{agent.pk}/{suffix}", data)
    assert response.status_code in (200, 201, 204), response.content[:300]


@pytest.mark.parametrize(
    ("user", "status"), [("alice", 201), ("adam", 201), ("mia", 201), ("vic", 403), ("oscar", 201)]
)
def test_who_may_create(user, status, people, client_for, org, other_org):
    response = client_for(people[user]).post("/api/v1/agents/", body(), format="json")
    assert response.status_code == status, response.content[:300]
    if status == 201:
        expected_org = other_org if user == "oscar" else org
        assert Agent.objects.get(pk=response.json()["id"]).organization == expected_org


def test_lists_hold_no_foreign_rows(alice, oscar, make_agent, client_for):
    mine = make_agent(alice, name="Ours")
    theirs = make_agent(oscar, name="Theirs", visibility="public")
    ids = {row["id"] for row in client_for(alice).get("/api/v1/agents/").json()["results"]}
    assert ids == {str(mine.pk)}
    ids = {row["id"] for row in client_for(oscar).get("/api/v1/agents/?search=Ours").json()["results"]}
    assert ids == set()
    assert str(theirs.pk) not in {r["id"] for r in client_for(alice).get("/api/v1/agents/?limit=500").json()["results"]}


def test_private_and_team_visibility(alice, adam, mia, vic, org, make_agent, client_for):
    other_member = UserFactory(username="max@acme.test")
    MembershipFactory(user=other_member, organization=org, role="member")
    private = make_agent(mia, name="Secret", visibility="private")
    team = make_agent(mia, name="Builders only", visibility="team")

    def sees(user, agent) -> bool:
        status = client_for(user).get(f"/api/v1/agents/{agent.pk}/").status_code
        listed = str(agent.pk) in {r["id"] for r in client_for(user).get("/api/v1/agents/").json()["results"]}
        assert (status == 200) == listed  # list and detail agree
        return status == 200

    assert [sees(u, private) for u in (mia, alice, adam, other_member, vic)] == [True, True, True, False, False]
    assert [sees(u, team) for u in (mia, alice, adam, other_member, vic)] == [True, True, True, True, False]
    assert_error(client_for(vic).get(f"/api/v1/agents/{private.pk}/"), 404, "AgentNotFound")


def test_object_grants_widen_access_for_one_agent(mia, vic, make_agent, client_for):
    private = make_agent(mia, name="Shared", visibility="private")
    other = make_agent(mia, name="Not shared", visibility="private")
    url = f"/api/v1/agents/{private.pk}/"
    assert client_for(vic).get(url).status_code == 404
    grant = client_for(mia).post(f"{url}permissions/", {"user": "vic@acme.test", "permission": "read"}, format="json")
    assert grant.status_code == 201, grant.content
    assert grant.json()["results"][0] | {"granted_at": None} == {
        "user_id": vic.pk, "username": "vic@acme.test", "permission": "read", "granted_by": "mia@acme.test",
        "granted_at": None,
    }  # fmt: skip
    response = client_for(vic).get(url)
    assert response.status_code == 200 and response.json()["access"] == ["read"]
    assert_error(
        client_for(vic).patch(url, {"description": "viewer edit"}, format="json"), 403, "InsufficientPermissions"
    )
    assert client_for(vic).get(f"/api/v1/agents/{other.pk}/").status_code == 404
    client_for(mia).post(f"{url}permissions/", {"user": str(vic.pk), "permission": "write"}, format="json")
    assert client_for(vic).patch(url, {"description": "viewer edit"}, format="json").status_code == 200
    # A write grant is not the right to share it further or delete it.
    assert_error(client_for(vic).get(f"{url}permissions/"), 403, "InsufficientPermissions")
    assert_error(client_for(vic).delete(url), 403, "InsufficientPermissions")
    # Revoke everything: back to 404.
    assert client_for(mia).delete(f"{url}permissions/?user=vic@acme.test").status_code == 204
    assert client_for(vic).get(url).status_code == 404


def test_admin_grant_gives_every_right(mia, vic, make_agent, client_for):
    agent = make_agent(mia, visibility="private")
    client_for(mia).post(
        f"/api/v1/agents/{agent.pk}/permissions/", {"user": "vic@acme.test", "permission": "admin"}, format="json"
    )
    assert client_for(vic).get(f"/api/v1/agents/{agent.pk}/").json()["access"] == [
        "admin", "delete", "execute", "read", "write",
    ]  # fmt: skip
    assert client_for(vic).get(f"/api/v1/agents/{agent.pk}/permissions/").status_code == 200


def test_grants_only_to_members_of_the_organization(alice, vic, oscar, published, client_for):
    url = f"/api/v1/agents/{published.pk}/permissions/"
    for user in ("oscar@globex.test", str(oscar.pk), "nobody@nowhere.test"):
        error = assert_error(
            client_for(alice).post(url, {"user": user, "permission": "read"}, format="json"), 400, "InvalidInput"
        )
        assert error["details"]["validation_errors"] == {"user": ["No member of this organization matches."]}
    assert_error(
        client_for(alice).post(url, {"user": "vic@acme.test", "permission": "own"}, format="json"), 400, "InvalidInput"
    )
    assert_error(client_for(alice).delete(f"{url}?user=vic@acme.test&permission=read"), 404, "NotFound")


def test_token_scopes_are_enforced(alice, published, client_for):
    reader = client_for(alice, scopes=["agents:read"])
    assert reader.get(f"/api/v1/agents/{published.pk}/").status_code == 200
    assert_error(
        reader.patch(f"/api/v1/agents/{published.pk}/", {"description": "x"}, format="json"), 403, "AgentAccessDenied"
    )
    assert_error(reader.post("/api/v1/agents/", body(), format="json"), 403, "AgentAccessDenied")
    executor = client_for(alice, scopes=["agents:execute"])
    assert_error(executor.get("/api/v1/agents/"), 403, "AgentAccessDenied")


def test_rights_and_queryset_agree(alice, adam, mia, vic, org, make_agent):
    agents = [
        make_agent(user, name=f"{user.username}-{visibility}", visibility=visibility)
        for user in (alice, mia)
        for visibility in ("private", "team", "organization", "public")
    ]
    for user in (alice, adam, mia, vic):
        actor = actor_of(user)
        visible = set(Agent.objects.filter(visible_agents_q(actor)).values_list("pk", flat=True))
        assert visible == {a.pk for a in agents if agent_rights(actor, a)}, user


# --- the role → permission mapping is data -----------------------------------------------


def test_owner_changes_what_a_role_may_do(alice, vic, client_for):
    assert_error(client_for(vic).post("/api/v1/agents/", body(), format="json"), 403, "InsufficientPermissions")
    roles = client_for(alice).get("/api/v1/organization/roles/").json()
    viewer = roles["roles"]["viewer"]
    response = client_for(alice).put(
        "/api/v1/organization/roles/", {"viewer": [*viewer, "agents.add_agent"]}, format="json"
    )
    assert response.status_code == 200, response.content
    assert "agents.add_agent" in response.json()["roles"]["viewer"] and response.json()["customized"] == ["viewer"]
    assert client_for(vic).post("/api/v1/agents/", body(), format="json").status_code == 201
    # Back to the defaults.
    client_for(alice).put("/api/v1/organization/roles/", {}, format="json")
    assert_error(
        client_for(vic).post("/api/v1/agents/", body(name="Second"), format="json"), 403, "InsufficientPermissions"
    )


def test_removing_view_from_a_role_hides_agents_except_grants(alice, mia, vic, make_agent, client_for):
    shared = make_agent(alice, name="Shared")
    make_agent(alice, name="Hidden")
    services.agent_grant(actor=actor_of(alice), agent=shared, user=vic.pk, permission="read")
    client_for(alice).put("/api/v1/organization/roles/", {"viewer": []}, format="json")
    names = [r["name"] for r in client_for(vic).get("/api/v1/agents/").json()["results"]]
    assert names == ["Shared"]


@pytest.mark.parametrize(
    ("payload", "field"),
    [({"owner": []}, "owner"), ({"member": ["agents.fly"]}, "member"), ({"viewer": "all"}, "viewer")],
)
def test_role_mapping_is_validated(payload, field, alice, client_for):
    error = assert_error(
        client_for(alice).put("/api/v1/organization/roles/", payload, format="json"), 400, "InvalidInput"
    )
    assert field in error["details"]["validation_errors"]


def test_only_owners_change_roles(adam, alice, client_for, org):
    assert_error(
        client_for(adam).put("/api/v1/organization/roles/", {"viewer": []}, format="json"),
        403,
        "InsufficientPermissions",
    )
    org.refresh_from_db()
    assert org.role_permissions == {}
    assert client_for(adam).get("/api/v1/organization/roles/").status_code == 200


def test_grants_are_django_guardian_object_permissions(mia, vic, make_agent):
    from guardian.shortcuts import get_objects_for_user, get_perms

    agent = make_agent(mia, visibility="private")
    services.agent_grant(actor=actor_of(mia), agent=agent, user="vic@acme.test", permission="execute")
    services.agent_grant(actor=actor_of(mia), agent=agent, user="vic@acme.test", permission="write")
    vic = type(vic).objects.get(pk=vic.pk)  # fresh: Django caches permissions per user object
    assert vic.has_perm("agents.execute_agent", agent) and vic.has_perm("agents.change_agent", agent)
    assert not vic.has_perm("agents.admin_agent", agent)
    assert sorted(get_perms(vic, agent)) == ["change_agent", "execute_agent"]
    assert list(get_objects_for_user(vic, "agents.execute_agent")) == [agent]
    services.agent_revoke(actor=actor_of(mia), agent=agent, user=vic.pk, permission="write")
    vic = type(vic).objects.get(pk=vic.pk)
    assert get_perms(vic, agent) == ["execute_agent"]


@pytest.mark.parametrize("user", ["\u00b2", "1\u00b2"])
def test_a_grantee_written_with_digits_that_are_not_ascii_is_no_member_not_a_crash(mia, make_agent, client_for, user):
    """str.isdigit() says yes to "\u00b2", which int() refuses: it was a 500."""
    agent = make_agent(mia, visibility="private")
    response = client_for(mia).post(
        f"/api/v1/agents/{agent.pk}/permissions/", {"user": user, "permission": "read"}, format="json"
    )
    error = assert_error(response, 400, "InvalidInput")
    assert list(error["details"]["validation_errors"]) == ["user"]
