"""The gate rules (policy, the session adapter, the services), called directly (no middleware, no HTTP)."""

import pytest
from django_otp import DEVICE_ID_SESSION_KEY
from django.contrib.auth.models import AnonymousUser
from django.contrib.sessions.backends.db import SessionStore
from django.test import RequestFactory

from clinic_auth.twofactor import devices, policy, services
from clinic_auth.twofactor import session as twofa_session
from clinic_auth.twofactor.models import AuditEvent
from clinic_auth.twofactor.policy import Gate
from clinic_auth.twofactor.totp import services as totp_services
from clinic_auth.twofactor.recovery import services as recovery_services
from clinics.models import Clinic
from tests.conftest import setup_device, totp_for
from users.models import User


def make_request(user, session=None):
    request = RequestFactory().get("/home/")
    request.user = user
    request.session = session if session is not None else SessionStore()
    return request


def fresh(user: User) -> User:
    """The user as AuthenticationMiddleware would load it on the next request."""
    return User.objects.get(pk=user.pk)


@pytest.fixture
def mandatory(clinic):
    clinic.mandatory_2fa = True
    clinic.save()
    return clinic


# --- request_gate: the decision ---------------------------------------------


def test_anonymous_is_open():
    assert twofa_session.request_gate(make_request(AnonymousUser())) is Gate.OPEN


@pytest.mark.django_db
def test_no_device_and_not_required_is_open(staff):
    assert twofa_session.request_gate(make_request(staff)) is Gate.OPEN


@pytest.mark.django_db
def test_no_device_in_a_mandatory_clinic_is_setup(mandatory, staff):
    assert twofa_session.request_gate(make_request(staff)) is Gate.SETUP


@pytest.mark.django_db
def test_user_without_a_clinic_is_not_held_by_any_clinic_policy(mandatory, user_factory):
    assert twofa_session.request_gate(make_request(user_factory(clinic=None))) is Gate.OPEN


@pytest.mark.django_db
def test_a_pending_unconfirmed_device_does_not_count(mandatory, staff):
    totp_services.totp_setup_begin(user=staff)
    assert not devices.is_enrolled(staff)
    assert twofa_session.request_gate(make_request(staff)) is Gate.SETUP


@pytest.mark.django_db
def test_recovery_codes_alone_do_not_count_as_enrolled(mandatory, staff):
    recovery_services.recovery_codes_issue(user=staff)
    assert not devices.is_enrolled(staff)
    assert twofa_session.request_gate(make_request(staff)) is Gate.SETUP


@pytest.mark.django_db
@pytest.mark.parametrize("mandatory_2fa", [False, True])
def test_enrolled_without_the_code_is_challenge_and_with_it_verified(clinic, staff, enrol, mandatory_2fa):
    clinic.mandatory_2fa = mandatory_2fa
    clinic.save()
    device, _ = enrol(staff)
    staff = fresh(staff)
    assert twofa_session.request_gate(make_request(staff)) is Gate.CHALLENGE
    session = SessionStore()
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id  # django-otp's record of the device that verified
    assert twofa_session.request_gate(make_request(staff, session)) is Gate.VERIFIED


@pytest.mark.django_db
def test_start_login_forgets_a_previous_verification(staff, enrol):
    device, _ = enrol(staff)
    request = make_request(fresh(staff))
    request.session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    assert twofa_session.request_gate(request) is Gate.VERIFIED
    twofa_session.start_login(request)
    assert twofa_session.request_gate(request) is Gate.CHALLENGE


# --- request_gate: the session cache -----------------------------------------


@pytest.mark.django_db
def test_the_cached_gate_costs_no_query(mandatory, staff, django_assert_num_queries):
    request = make_request(staff)
    # Is this user enrolled? Whether the clinic requires it comes from the clinic loaded with the user.
    with django_assert_num_queries(1):
        assert twofa_session.request_gate(request) is Gate.SETUP
    assert request.session[twofa_session.STATE_KEY] == {"stamp": policy.gate_stamp(staff), "gate": "setup"}
    with django_assert_num_queries(0):
        assert twofa_session.request_gate(request) is Gate.SETUP


@pytest.mark.django_db
def test_a_stamp_change_makes_the_gate_be_decided_again(clinic, staff, django_assert_num_queries):
    request = make_request(staff)
    assert twofa_session.request_gate(request) is Gate.OPEN
    clinic.mandatory_2fa = True
    clinic.save()
    # The flag alone, changed behind flows' back, is not seen: the stamp is what counts ...
    assert twofa_session.request_gate(make_request(fresh(staff), request.session)) is Gate.OPEN
    # ... which is why every change goes through flows and bumps it.
    services.twofa_stamp_bump(user=staff)
    next_request = make_request(fresh(staff), request.session)
    with django_assert_num_queries(2):
        assert twofa_session.request_gate(next_request) is Gate.SETUP


@pytest.mark.django_db
def test_moving_a_user_to_a_mandatory_clinic_is_seen_on_the_next_request(clinic, staff, clinic_factory):
    request = make_request(staff)
    assert twofa_session.request_gate(request) is Gate.OPEN
    strict = clinic_factory(mandatory_2fa=True)
    User.objects.filter(pk=staff.pk).update(clinic=strict)  # e.g. an operator in the Django admin
    assert twofa_session.request_gate(make_request(fresh(staff), request.session)) is Gate.SETUP


@pytest.mark.django_db
def test_granting_admin_site_access_is_seen_on_the_next_request(staff):
    request = make_request(staff)
    assert twofa_session.request_gate(request) is Gate.OPEN
    User.objects.filter(pk=staff.pk).update(is_staff=True)
    assert twofa_session.request_gate(make_request(fresh(staff), request.session)) is Gate.SETUP


@pytest.mark.django_db
def test_setting_mandatory_bumps_every_member_of_that_clinic_only(
    clinic, clinic_admin, staff, clinic_factory, user_factory
):
    outsider = user_factory(clinic=clinic_factory())
    stamps = {user.pk: user.twofa_stamp for user in (clinic_admin, staff, outsider)}
    request = make_request(clinic_admin)
    assert services.clinic_set_mandatory(clinic=clinic, mandatory=True, actor=request.user) is True
    assert Clinic.objects.get(pk=clinic.pk).mandatory_2fa is True
    assert fresh(clinic_admin).twofa_stamp == stamps[clinic_admin.pk] + 1
    assert fresh(staff).twofa_stamp == stamps[staff.pk] + 1
    assert fresh(outsider).twofa_stamp == stamps[outsider.pk]
    # The acting admin's own request object sees the new stamp at once.
    assert request.user.twofa_stamp == stamps[clinic_admin.pk] + 1


@pytest.mark.django_db
def test_confirming_a_device_bumps_the_stamp_and_verifies_the_session(mandatory, staff, client):
    client.force_login(staff)
    client.get("/accounts/two-factor/setup/")
    before = fresh(staff).twofa_stamp
    client.post("/accounts/two-factor/setup/", {"code": totp_for(setup_device(client))})
    after = fresh(staff).twofa_stamp
    assert after == before + 1
    assert client.session[twofa_session.STATE_KEY] == {"stamp": policy.gate_stamp(fresh(staff)), "gate": "verified"}


@pytest.mark.django_db
def test_disabling_bumps_the_stamp(mandatory, staff, clinic_admin, enrol):
    enrol(staff)
    before = fresh(staff).twofa_stamp
    services.twofa_reset(user=staff, actor=clinic_admin, action=AuditEvent.Action.DISABLED_BY_ADMIN)
    assert fresh(staff).twofa_stamp == before + 1


# --- view_name_for_path and is_exempt ----------------------------------------


@pytest.mark.parametrize(
    "path, name",
    [
        ("/", "root"),
        ("/accounts/login/", "login"),
        ("/accounts/logout/", "logout"),
        ("/accounts/two-factor/", "two_factor_challenge"),
        ("/accounts/two-factor/setup/", "two_factor_setup"),
        ("/admin/", "admin:index"),
        ("/clinics/3/settings/", "clinic_settings"),
        # Tricks that start like an exempt path resolve to nothing (or to what they really are).
        ("/accounts/logout/../admin/", None),
        ("/static/../admin/", None),
        ("/accounts/logout/admin/", None),
        ("/accounts/logoutx/", None),
        ("/accounts/login", None),
        ("/static/css/app.css", None),
        ("/accounts/two-factor/setup/../../../home/", None),
    ],
)
def test_view_name_for_path(path, name):
    assert policy.view_name_for_path(path) == name


@pytest.mark.parametrize(
    "gate, exempt",
    [
        (Gate.SETUP, {"login", "root", "logout", "two_factor_setup"}),
        (Gate.CHALLENGE, {"login", "root", "logout", "two_factor_challenge"}),
    ],
)
def test_is_exempt_names_exactly_the_views_a_blocked_gate_may_reach(gate, exempt):
    candidates = {
        "login", "root", "logout", "two_factor_setup", "two_factor_challenge", "two_factor_recovery_codes",
        "two_factor_disable_own", "home", "profile", "password_change", "clinic_settings", "clinic_edit",
        "clinic_audit_log", "user_list", "user_detail", "user_disable_2fa", "admin:index", "admin:login",
        "admin:logout", None, "", "logout/../admin",
    }
    assert {name for name in candidates if policy.is_exempt(gate, name)} == exempt


@pytest.mark.parametrize("gate", [Gate.OPEN, Gate.VERIFIED])
def test_allowed_gates_need_no_exemptions(gate):
    assert gate in policy.ALLOWED_GATES
    assert not policy.is_exempt(gate, "logout")


def test_each_blocked_gate_sends_to_a_page_it_exempts():
    for gate, view_name in policy.GATE_VIEW_NAME.items():
        assert gate not in policy.ALLOWED_GATES
        assert policy.is_exempt(gate, view_name)
