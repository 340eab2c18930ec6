"""Walk every URL pattern (the Django admin too) as a user held at a 2FA gate.

Nothing may answer with content: only a redirect towards the gate's page (set-up or
the code challenge), or 405 for a POST-only view that is exempt (logout).
"""

import re

import pytest
from django.apps import apps
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve, reverse
from django.utils import timezone
from mailer import models as mailer_models

from clinic_auth.twofactor import policy
from clinic_auth.twofactor.models import AuditEvent
from clinics.models import Clinic
from tests.conftest import next_code
from tests.softkey import SoftKey
from tests.test_passkeys import add_key
from users.models import User

SETUP = reverse("two_factor_setup")
CHALLENGE = reverse("two_factor_challenge")
CONVERTER = re.compile(r"<(?:(?P<type>\w+):)?(?P<name>\w+)>")
# Patterns an earlier one answers first: our redirect stands in front of the admin's own login form.
SHADOWED = {"admin:login"}
ALTERNATION = re.compile(r"\(\?P<(?P<name>\w+)>(?P<body>[^)]*)\)")


def all_patterns(patterns=None, prefix="", namespace=None):
    """(route text, namespaced name, pattern) for every endpoint, resolvers flattened."""
    for entry in get_resolver().url_patterns if patterns is None else patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            yield from all_patterns(entry.url_patterns, route, entry.namespace or namespace)
        else:
            assert isinstance(entry, URLPattern)
            name = f"{namespace}:{entry.name}" if namespace and entry.name else entry.name
            yield route, name, entry


def admin_model(route: str):
    match = re.match(r"admin/(\w+)/(\w+)/", route)
    if match:
        try:
            return apps.get_model(match.group(1), match.group(2))
        except LookupError:
            return None
    return None


def concrete_paths(route: str, ids: dict) -> list[str]:
    """Real paths for a route, with real ids of existing rows for its arguments."""

    def value(match) -> str:
        kind, name = match.group("type"), match.group("name")
        if name == "content_type_id":
            return str(ids["user_content_type"])
        if name == "clinic_pk":
            return str(ids["clinic"])
        if name == "pk":
            if route.startswith("profile/keys/"):
                return str(ids["key"])
            return str(ids["member"])
        model = admin_model(route)
        if model is not None:
            return str(model._default_manager.order_by("pk").values_list("pk", flat=True)[0])
        assert kind in (None, "int", "str", "path"), route
        return str(ids["member"])

    routes = [route]
    regex_group = ALTERNATION.search(route)
    if regex_group:  # a regex pattern: one path per alternative, ".*" becomes some unknown page
        body = regex_group.group("body")
        alternatives = ["no-such-page/"] if body == ".*" else body.split("|")
        routes = [route[: regex_group.start()] + alt + route[regex_group.end() :] for alt in alternatives]
    return ["/" + CONVERTER.sub(value, r).replace("^", "").replace("$", "") for r in routes]


def walk_targets(ids: dict) -> list[tuple[str, str | None, URLPattern]]:
    """(path, the view name it resolves to, the pattern it was made from)."""
    targets = []
    for route, name, pattern in all_patterns():
        for path in concrete_paths(route, ids):
            match = resolve(path)  # every path is real: none is a 404 in disguise
            if match.func != pattern.callback:
                assert name in SHADOWED, (path, route, match.view_name)
            targets.append((path, match.view_name if match.url_name else name, pattern))
    return targets


@pytest.fixture
def world(clinic, user_factory, enrol):
    """Rows for every admin model, so each <id> in the URLconf points at something real."""
    member = user_factory(first_name="Other", last_name="Member")
    member_client = Client()
    enrol(member, http_client=member_client)  # a device, recovery codes and an audit event
    key = add_key(member_client, SoftKey())  # and a passkey
    assert key.status_code == 200, key.content
    Group.objects.create(name="Front desk")
    # The mail queue's admin pages (django-mailer): a queued message, its log entry, a bounced address.
    queued = mailer_models.make_message(
        subject="Hello", body="Body", from_email="a@example.com", to=["b@example.com"], priority=mailer_models.PRIORITY_MEDIUM
    )
    queued.save()
    mailer_models.MessageLog.objects.log(queued, mailer_models.RESULT_SUCCESS)
    mailer_models.DontSendEntry.objects.create(to_address="bounced@example.com", when_added=timezone.now())
    return {
        "key": key.json()["id"],
        "clinic": clinic.pk,
        "member": member.pk,
        "user_content_type": ContentType.objects.get_for_model(User).pk,
    }


@pytest.fixture
def operator_admin(user_factory):
    """Clinic admin and Django superuser: if a gate leaked, every page would answer with content."""
    return user_factory(username="walker", role=User.Role.CLINIC_ADMIN, is_staff=True, is_superuser=True)


def snapshot():
    return {
        "users": list(User.objects.order_by("pk").values_list("pk", "password", "is_active", "twofa_stamp")),
        "clinics": list(Clinic.objects.values_list("pk", "name", "mandatory_2fa")),
        "groups": Group.objects.count(),
        # A refused passkey is audited by design (the walk posts junk to the challenge's endpoint).
        "audit": AuditEvent.objects.exclude(action=AuditEvent.Action.KEY_REFUSED).count(),
    }


def walk(client: Client, ids: dict, gate_page: str) -> int:
    """Request every path with GET, GET-and-follow, POST and a JSON GET; returns how many paths."""
    targets = walk_targets(ids)
    exempt = {"login", "root", "logout", "sign_in_as_someone_else", gate_page}
    leaves = {"logout", "sign_in_as_someone_else"}  # POST-only ways out, exempt so the user can leave
    gate = {SETUP: policy.Gate.SETUP, CHALLENGE: policy.Gate.CHALLENGE}[gate_page]
    # The passkey endpoints this gate's page needs: they answer its script, never with a page.
    passkey_endpoints = {name for name in policy.EXEMPT_VIEW_NAMES[gate] if name.startswith("otp_webauthn:")}
    assert passkey_endpoints
    for path, name, _ in targets:
        if path == gate_page:
            continue
        if name in passkey_endpoints:
            response = client.get(path)
            if name == policy.PASSKEY_SCRIPT:
                assert response.status_code == 200 and response["Content-Type"].startswith("text/javascript"), path
                continue
            assert response.status_code == 405, path
            refused_before = AuditEvent.objects.filter(action=AuditEvent.Action.KEY_REFUSED).count()
            response = client.post(path, {"code": "123456"})
            assert response["Content-Type"] == "application/json", (path, response.status_code)
            if name.endswith("-complete"):
                assert response.status_code in (400, 403, 422), (path, response.status_code)
                if gate is policy.Gate.CHALLENGE:
                    assert AuditEvent.objects.filter(action=AuditEvent.Action.KEY_REFUSED).count() == refused_before + 1
            continue
        response = client.get(path)
        if name in leaves:
            assert response.status_code == 405, path
        elif name in ("login", "root"):  # says who is signed in, offers to continue or to switch
            assert response.status_code == 200, path
            assert "You are signed in as" in response.content.decode(), path
        elif name == "reauthenticate" and gate is policy.Gate.SETUP:
            # Open at the set-up gate (a set-up left open too long asks for the password); with
            # nothing parked it sends the user on, and on is the gate.
            assert response.status_code == 302 and response.content == b"", path
            assert client.get(path, follow=True).request["PATH_INFO"] == gate_page, path
        else:
            assert response.status_code == 302, (path, response.status_code)
            assert response.content == b"", path
            assert response.url.startswith(f"{gate_page}?next="), (path, response.url)
            followed = client.get(path, follow=True)
            assert followed.status_code == 200, path
            assert followed.request["PATH_INFO"] == gate_page, (path, followed.redirect_chain)
            assert len(followed.redirect_chain) <= 2, (path, followed.redirect_chain)

        if name in ("login", "root"):  # junk credentials: the form refuses them, nobody is switched
            response = client.post(path, {"mandatory_2fa": "", "name": "x", "code": "123456"})
            assert response.status_code == 200 and "Log in" in response.content.decode(), path
        elif name == "reauthenticate" and gate is policy.Gate.SETUP:
            response = client.post(path, {"code": "123456"})
            assert response.status_code == 302 and response.url == reverse("home"), path
        elif name not in leaves:  # leaving is allowed, and would end the walk
            response = client.post(path, {"mandatory_2fa": "", "name": "x", "code": "123456"})
            assert response.status_code == 302, (path, response.status_code)
            assert response.url == gate_page, (path, response.url)

        if name not in exempt and path != gate_page and not (name == "reauthenticate" and gate is policy.Gate.SETUP):
            response = client.get(path, HTTP_ACCEPT="application/json")
            assert response.status_code == 403, path
            assert response.json()["redirect"] == gate_page, path
    return len(targets)


@pytest.mark.django_db
def test_walk_covers_every_pattern_including_the_admin(world):
    targets = walk_targets(world)
    names = {name for _, name, _ in targets}
    routes = {route for route, _, _ in all_patterns()}
    assert len({id(pattern) for _, _, pattern in targets}) == len(list(all_patterns()))
    assert {"admin:index", "admin:users_user_change", "admin:clinics_clinic_change", "admin:app_list"} <= names
    assert {"clinic_settings", "clinic_edit", "clinic_audit_log", "user_disable_2fa", "logout"} <= names
    assert len(routes) >= 60


@pytest.mark.django_db
def test_unenrolled_member_of_a_mandatory_clinic_reaches_nothing_but_setup(client, clinic, operator_admin, world):
    clinic.mandatory_2fa = True
    clinic.save()
    client.force_login(operator_admin)
    before = snapshot()
    walked = walk(client, world, SETUP)
    assert walked >= 60
    assert snapshot() == before  # none of the POSTs changed anything
    assert client.get(SETUP).status_code == 200


@pytest.mark.django_db
def test_user_who_passed_the_password_but_not_the_code_reaches_nothing_but_the_challenge(
    client, operator_admin, world, enrol, login
):
    device, _ = enrol(operator_admin)
    client.logout()
    assert login(operator_admin).status_code == 302
    before = snapshot()
    walked = walk(client, world, CHALLENGE)
    assert walked >= 60
    assert snapshot() == before
    # The walk's one wrong code (its POST to the challenge is skipped) left the account usable.
    response = client.post(CHALLENGE, {"code": next_code(device)})
    assert response.status_code == 302
    assert client.get(reverse("admin:index")).status_code == 200


@pytest.mark.django_db
def test_control_the_same_walk_as_a_verified_user_does_see_content(client, operator_admin, world, enrol):
    """Proves the walk would notice a leak: past the gate, most of these paths answer 200."""
    enrol(operator_admin)
    ok = [path for path, name, _ in walk_targets(world) if client.get(path).status_code == 200]
    assert len(ok) >= 40, ok
    assert "/admin/" in ok and f"/clinics/{world['clinic']}/settings/" in ok
