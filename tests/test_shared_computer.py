"""Shared computers at the HTTP level: Confirm it's you, switching user, signed-in browsers, the idle warning."""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils.http import urlencode
from django_otp_webauthn.models import WebAuthnCredential

from clinic_auth.twofactor import devices
from clinic_auth.twofactor import session as twofa_session
from clinic_auth.twofactor.models import AuditEvent, RecoveryCode
from clinics.models import Clinic
from tests.conftest import PASSWORD, next_code, proved_just_now
from tests.softkey import SoftKey
from tests.test_passkeys import AUTH_BEGIN, AUTH_COMPLETE, REG_BEGIN, add_key, post_json
from users.models import User, UserSession

CONFIRM = reverse("reauthenticate")
CODES = reverse("two_factor_recovery_codes")
Action = AuditEvent.Action


def code_hashes(user) -> set[str]:
    return set(RecoveryCode.objects.filter(device__user=user).values_list("code_hash", flat=True))


def later(clock, seconds: float) -> None:
    """Move the clock (time-machine's fixture) forward and stop it there: the re-auth window, the
    session's timeouts and the codes all read it."""
    clock.move_to(datetime.now(dt_timezone.utc) + timedelta(seconds=seconds), tick=False)


def asked_to_confirm(response) -> str:
    """The "Confirm it's you" page a parked action was sent to (its id is in the address)."""
    assert response.status_code == 302 and response.url.startswith(CONFIRM + "?action="), response
    return response.url


def password_login(client: Client, user: User, password: str = PASSWORD):
    return client.post(reverse("login"), {"username": user.username, "password": password})


@pytest.fixture
def enrolled(staff, enrol):
    c = Client()
    device, codes = enrol(staff, http_client=c)
    return c, device


@pytest.fixture
def admin_client(clinic_admin, enrol) -> Client:
    c = Client()
    enrol(clinic_admin, http_client=c)
    return c


# --- 1. Confirm it's you -------------------------------------------------------------------------


@pytest.mark.django_db
def test_within_the_window_a_sensitive_action_runs_at_once(enrolled, staff):
    client, _ = enrolled
    response = client.post(CODES)
    assert response.status_code == 302 and response.url == CODES


@pytest.mark.django_db
def test_after_the_window_the_action_waits_for_a_code_then_runs_as_submitted(enrolled, staff, settings, time_machine):
    client, device = enrolled
    before = code_hashes(staff)
    later(time_machine, settings.CLINICAUTH_REAUTH_WINDOW + 1)

    confirm = asked_to_confirm(client.post(CODES))
    assert code_hashes(staff) == before  # nothing happened yet
    page = client.get(confirm).content.decode()
    assert "<h1 id=\"reauth-heading\">Confirm it's you</h1>" in page.replace("&#x27;", "'")
    assert "To <strong>generate new recovery codes</strong>" in page
    assert '<label for="id_code">Verification Code</label>' in page

    done = client.post(confirm, {"code": next_code(device)})

    assert done.status_code == 302 and done.url == CODES  # the original action's own answer
    assert code_hashes(staff) != before
    assert len(re.findall(r"<li><code>", client.get(CODES).content.decode())) == 10
    # Passing it refreshes the window: the next sensitive action runs directly.
    assert client.post(CODES).url == CODES


@pytest.mark.django_db
def test_a_wrong_code_is_refused_audited_and_throttled_like_at_sign_in(enrolled, staff, settings, time_machine):
    client, device = enrolled
    later(time_machine, settings.CLINICAUTH_REAUTH_WINDOW + 1)
    confirm = asked_to_confirm(client.post(CODES))
    before = code_hashes(staff)
    wrong = next(c for c in ("000000", "999999") if c != next_code(device))
    page = client.post(confirm, {"code": wrong}).content.decode()
    assert "That code is not valid" in page
    assert AuditEvent.objects.get(action=Action.REAUTH_FAILED).detail == "generate new recovery codes"
    for _ in range(settings.CLINICAUTH_CODE_LOCKOUT_FAILURES - 1):
        client.post(confirm, {"code": wrong})
    locked = client.post(confirm, {"code": next_code(device)}).content.decode()
    assert "Code entry is locked for 15 minutes" in locked
    assert code_hashes(staff) == before


@pytest.mark.django_db
def test_turning_mandatory_off_keeps_every_field_the_admin_typed(clinic, clinic_admin, admin_client, settings, time_machine):
    Clinic.objects.filter(pk=clinic.pk).update(mandatory_2fa=True)
    device = devices.confirmed_totp_device(clinic_admin)
    later(time_machine, settings.CLINICAUTH_REAUTH_WINDOW + 1)
    edit = reverse("clinic_edit", args=[clinic.pk])
    confirm = asked_to_confirm(admin_client.post(edit, {"name": "Renamed Clinic", "address": "1 High St", "phone": "0123"}))
    assert Clinic.objects.get(pk=clinic.pk).mandatory_2fa is True
    assert "turn Mandatory 2FA off for your clinic" in admin_client.get(confirm).content.decode()

    done = admin_client.post(confirm, {"code": next_code(device)}, follow=True)

    saved = Clinic.objects.get(pk=clinic.pk)
    assert (saved.name, saved.address, saved.phone, saved.mandatory_2fa) == ("Renamed Clinic", "1 High St", "0123", False)
    assert "Clinic settings saved." in done.content.decode()
    assert AuditEvent.objects.filter(action=Action.MANDATORY_OFF).count() == 1


@pytest.mark.django_db
def test_turning_mandatory_on_needs_no_confirmation(clinic, clinic_admin, admin_client, settings, time_machine):
    later(time_machine, settings.CLINICAUTH_REAUTH_WINDOW + 1)
    edit = reverse("clinic_edit", args=[clinic.pk])
    response = admin_client.post(edit, {"name": clinic.name, "mandatory_2fa": "on"})
    assert response.status_code == 302 and not response.url.startswith(CONFIRM)
    assert Clinic.objects.get(pk=clinic.pk).mandatory_2fa is True


@pytest.mark.django_db
def test_disabling_a_members_2fa_names_the_member(clinic_admin, admin_client, user_factory, enrol, settings, time_machine):
    member = user_factory(first_name="Joy", last_name="Nurse")
    enrol(member, http_client=Client())
    later(time_machine, settings.CLINICAUTH_REAUTH_WINDOW + 1)
    confirm = asked_to_confirm(admin_client.post(reverse("user_disable_2fa", args=[member.pk])))
    assert "disable two-factor authentication for Joy Nurse" in admin_client.get(confirm).content.decode()
    assert devices.is_enrolled(member)
    admin_client.post(confirm, {"code": next_code(devices.confirmed_totp_device(clinic_admin))})
    assert not devices.is_enrolled(member)


@pytest.mark.django_db
def test_json_requests_get_a_403_that_says_where_to_confirm(enrolled, settings, time_machine):
    client, _ = enrolled
    later(time_machine, settings.CLINICAUTH_REAUTH_WINDOW + 1)
    response = client.post(CODES, HTTP_ACCEPT="application/json")
    assert response.status_code == 403
    assert response.json() == {"error": "reauthentication_required", "redirect": CONFIRM}


@pytest.mark.django_db
def test_an_account_without_2fa_confirms_with_its_password(staff, settings, time_machine):
    client = Client()
    password_login(client, staff)
    later(time_machine, settings.CLINICAUTH_REAUTH_WINDOW + 1)
    confirm = asked_to_confirm(client.post(reverse("passkey_add")))
    page = client.get(confirm).content.decode()
    assert "with your password" in page and 'type="password"' in page
    wrong = client.post(confirm, {"password": "not it"}).content.decode()
    assert "That password is not right." in wrong
    assert AuditEvent.objects.filter(action=Action.REAUTH_FAILED).count() == 1
    right = client.post(confirm, {"password": PASSWORD})
    assert right.status_code == 302 and right.url == reverse("profile") + "#add-key"


@pytest.mark.django_db
def test_password_confirmation_is_throttled_like_sign_in(staff, settings, time_machine):
    client = Client()
    password_login(client, staff)
    later(time_machine, settings.CLINICAUTH_REAUTH_WINDOW + 1)
    confirm = asked_to_confirm(client.post(reverse("passkey_add")))
    for _ in range(10):
        client.post(confirm, {"password": "wrong password"})
    throttled = client.post(confirm, {"password": PASSWORD}).content.decode()
    assert "Too many failed sign-in attempts" in throttled


@pytest.mark.django_db
def test_a_key_only_account_confirms_with_its_passkey(staff, clinic, settings, time_machine):
    Clinic.objects.filter(pk=clinic.pk).update(mandatory_2fa=True)
    key = SoftKey()
    client = Client()
    password_login(client, staff)
    add_key(client, key)  # the forced set-up, with a key alone
    add_key(client, SoftKey())  # and a second key, within the window
    second = WebAuthnCredential.objects.filter(user=staff).order_by("-pk").first()
    later(time_machine, settings.CLINICAUTH_REAUTH_WINDOW + 1)

    confirm = asked_to_confirm(client.post(reverse("passkey_remove", args=[second.pk])))
    page = client.get(confirm).content.decode()
    assert "Use your passkey or security key" in page
    begin = post_json(client, AUTH_BEGIN)
    assert begin.status_code == 200
    # The page's script sends its `next` (the confirmation's own address) with the key's answer.
    done = post_json(client, f"{AUTH_COMPLETE}?{urlencode({'next': confirm})}", key.assertion(begin.json()))
    assert done.json()["redirect_url"] == confirm
    assert "Continue" in client.get(confirm).content.decode()
    client.post(confirm, {"continue": "1"})
    assert not WebAuthnCredential.objects.filter(pk=second.pk).exists()


@pytest.mark.django_db
def test_a_signed_in_session_cannot_run_the_sign_in_ceremony_without_a_pending_action(staff, clinic):
    client = Client()
    password_login(client, staff)
    add_key(client, SoftKey())
    assert post_json(client, AUTH_BEGIN).json()["code"] == "not_at_this_step"


@pytest.mark.django_db
def test_adding_a_key_to_an_enrolled_account_asks_first(enrolled, settings, time_machine):
    client, _ = enrolled
    later(time_machine, settings.CLINICAUTH_REAUTH_WINDOW + 1)
    response = post_json(client, REG_BEGIN)
    assert response.status_code == 403 and response.json()["error"] == "reauthentication_required"
    profile = client.get(reverse("profile")).content.decode()
    assert f'<form method="post" action="{reverse("passkey_add")}">' in profile


@pytest.mark.django_db
def test_the_confirm_page_with_nothing_waiting_goes_home(enrolled):
    client, _ = enrolled
    response = client.get(CONFIRM, follow=True)
    assert response.redirect_chain[-1][0] == reverse("home")
    assert "There is nothing waiting to be confirmed." in response.content.decode()


# --- 2. switching user -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_sign_in_as_someone_else_signs_the_first_person_out_on_the_record(staff, clinic_admin):
    client = Client()
    password_login(client, staff)
    response = client.post(reverse("sign_in_as_someone_else"), follow=True)
    assert response.redirect_chain[-1][0] == reverse("login")
    html = response.content.decode()
    assert "Sam Staff has been signed out of this browser." in html and 'name="username"' in html
    assert "_auth_user_id" not in client.session
    event = AuditEvent.objects.get(action=Action.SIGNED_OUT_FOR_SWITCH)
    assert event.target == staff
    assert UserSession.objects.get(user=staff).end_reason == UserSession.EndReason.SWITCHED_USER


@pytest.mark.django_db
@pytest.mark.parametrize("first_has_2fa", [False, True])
@pytest.mark.parametrize("second_has_2fa", [False, True])
def test_logging_in_as_another_user_on_a_signed_in_browser_switches(
    staff, clinic_admin, enrol, first_has_2fa, second_has_2fa
):
    second_device = enrol(clinic_admin, http_client=Client())[0] if second_has_2fa else None
    client = Client()
    if first_has_2fa:
        enrol(staff, http_client=client)
    else:
        password_login(client, staff)
    assert client.get(reverse("home")).status_code == 200

    response = password_login(client, clinic_admin)

    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(clinic_admin.pk)
    assert AuditEvent.objects.filter(action=Action.SIGNED_OUT_FOR_SWITCH, target=staff).count() == 1
    home = client.get(reverse("home"), follow=True)
    if second_has_2fa:  # the second person still needs their own code
        assert home.redirect_chain[-1][0].startswith(reverse("two_factor_challenge"))
        assert "Sam Staff has been signed out of this browser." in home.content.decode()
        assert client.post(reverse("two_factor_challenge"), {"code": next_code(second_device)}).status_code == 302
    assert client.get(reverse("home")).context["user"] == clinic_admin


@pytest.mark.django_db
def test_logging_in_again_as_the_same_person_is_not_a_switch(staff):
    client = Client()
    password_login(client, staff)
    password_login(client, staff)
    assert not AuditEvent.objects.filter(action=Action.SIGNED_OUT_FOR_SWITCH).exists()


# --- 3. signed-in browsers ----------------------------------------------------------------------------


def listed(client: Client) -> list[tuple[str, bool]]:
    """(browser on system, is this browser) for each entry of "Where you're signed in"."""
    html = client.get(reverse("profile")).content.decode()
    section = html.split('id="sessions-heading"', 1)[1]
    entries = re.findall(r'<li class="session">\s*<strong>([^<]+)</strong>( <span class="status status-on">This browser</span>)?', section)
    return [(name, bool(current)) for name, current in entries]


CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"


@pytest.mark.django_db
def test_the_list_shows_each_browser_with_its_details_and_this_one_first(staff):
    desk = Client(HTTP_USER_AGENT=CHROME, REMOTE_ADDR="10.0.0.7")
    phone = Client(HTTP_USER_AGENT=IPHONE, REMOTE_ADDR="10.0.0.8")
    password_login(desk, staff)
    password_login(phone, staff)
    assert listed(desk) == [("Chrome 124 on Windows 10", True), ("Mobile Safari 17 on iOS 17", False)]
    assert listed(phone) == [("Mobile Safari 17 on iOS 17", True), ("Chrome 124 on Windows 10", False)]
    html = desk.get(reverse("profile")).content.decode()
    assert "IP address 10.0.0.8" in html and "IP address 10.0.0.7" in html


@pytest.mark.django_db
def test_the_list_stays_exact_through_rotation_logout_expiry_password_change_and_reset(staff, enrol, monkeypatch, settings):
    first, second, third = Client(), Client(), Client()
    device, _ = enrol(staff, http_client=first)  # set-up rotates the key: still one entry
    for c in (second, third):
        password_login(c, staff)
        c.post(reverse("two_factor_challenge"), {"code": next_code(device)})  # rotates again
    assert len(listed(first)) == 3
    assert UserSession.objects.filter(user=staff, ended_at=None).count() == 3

    third.post(reverse("logout"))
    assert len(listed(first)) == 2

    session = second.session
    session[twofa_session.LAST_SEEN_KEY] = int(time.time()) - settings.SESSION_IDLE_TIMEOUT - 1
    session.save()
    assert len(listed(first)) == 1  # the idle one is gone, before it even comes back

    again = Client()
    password_login(again, staff)
    again.post(reverse("two_factor_challenge"), {"code": next_code(device)})
    assert len(listed(first)) == 2
    proved_just_now(first)
    first.post(
        reverse("password_change"),
        {"old_password": PASSWORD, "new_password1": "a new long passphrase 42", "new_password2": "a new long passphrase 42"},
    )
    assert len(listed(first)) == 1 and listed(first)[0][1]

    from clinic_auth.twofactor import services

    services.twofa_reset(user=staff, actor=None, action=Action.DISABLED_BY_OPERATOR)
    assert selectors_list(staff) == []


def selectors_list(user):
    from users import selectors

    return selectors.signed_in_sessions(user)


@pytest.mark.django_db
def test_signing_out_another_browser_takes_effect_on_its_next_request(staff):
    desk, phone = Client(), Client()
    password_login(desk, staff)
    password_login(phone, staff)
    other = UserSession.objects.exclude(session_key=desk.session.session_key).get(user=staff)
    desk.post(reverse("sessions_end_own"), {"session": other.pk})
    assert phone.get(reverse("home")).url.startswith(reverse("login"))
    assert desk.get(reverse("home")).status_code == 200
    assert len(listed(desk)) == 1


@pytest.mark.django_db
def test_sign_out_everywhere_else_keeps_this_browser(staff):
    clients = [Client() for _ in range(3)]
    for c in clients:
        password_login(c, staff)
    response = clients[0].post(reverse("sessions_end_own"), {"session": "others"}, follow=True)
    assert "Signed out of 2 other browsers." in response.content.decode()
    assert clients[0].get(reverse("home")).status_code == 200
    assert all(c.get(reverse("home")).status_code == 302 for c in clients[1:])


@pytest.mark.django_db
def test_nobody_ends_someone_elses_browser_from_their_own_page(staff, user_factory):
    other = user_factory()
    mine, theirs = Client(), Client()
    password_login(mine, staff)
    password_login(theirs, other)
    foreign = UserSession.objects.get(user=other)
    response = mine.post(reverse("sessions_end_own"), {"session": foreign.pk}, follow=True)
    assert "That browser is no longer signed in." in response.content.decode()
    assert theirs.get(reverse("home")).status_code == 200


@pytest.mark.django_db
def test_an_admin_signs_a_member_out_everywhere_audited_and_emailed(
    clinic_admin, admin_client, user_factory, django_capture_on_commit_callbacks
):
    member = user_factory(first_name="Joy", last_name="Nurse")
    phones = [Client(), Client()]
    for c in phones:
        password_login(c, member)
    page = admin_client.get(reverse("user_detail", args=[member.pk])).content.decode()
    assert "Where Joy Nurse is signed in" in page and page.count('<li class="session">') == 2
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(reverse("sessions_end_member", args=[member.pk]), {"session": "all"}, follow=True)
    assert "Joy Nurse has been signed out of 2 browsers." in response.content.decode()
    assert all(c.get(reverse("home")).status_code == 302 for c in phones)
    event = AuditEvent.objects.get(action=Action.SESSIONS_ENDED_BY_ADMIN)
    assert (event.actor, event.target, event.detail) == (clinic_admin, member, "2 sessions")
    (message,) = mail.outbox
    assert message.to == [member.email] and "Dana Admin" in message.body


@pytest.mark.django_db
def test_an_admin_of_another_clinic_gets_404(user_factory, clinic_factory, enrol):
    member = user_factory()
    outsider = user_factory(clinic=clinic_factory(), role=User.Role.CLINIC_ADMIN, username="outsider")
    c = Client()
    enrol(outsider, http_client=c)
    assert c.post(reverse("sessions_end_member", args=[member.pk]), {"session": "all"}).status_code == 404


# --- 4. the idle warning --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_signed_in_pages_carry_the_warning_anonymous_ones_do_not(staff, client, settings):
    assert 'id="idle-warning"' not in client.get(reverse("login")).content.decode()
    password_login(client, staff)
    html = client.get(reverse("home")).content.decode()
    match = re.search(r'data-expires-in="(\d+)" data-ends-by="idle" data-warn-before="(\d+)"', html)
    assert match and settings.SESSION_IDLE_TIMEOUT - 5 <= int(match.group(1)) <= settings.SESSION_IDLE_TIMEOUT
    assert int(match.group(2)) == 120
    assert 'role="alertdialog"' in html and "Stay signed in" in html and "Sign out now" in html
    assert "<script>" not in html  # the CSP allows no inline script


@pytest.mark.django_db
def test_stay_signed_in_counts_as_activity_and_asking_does_not(staff, client, settings):
    password_login(client, staff)
    client.get(reverse("home"))
    session = client.session
    session[twofa_session.LAST_SEEN_KEY] = int(time.time()) - 300
    session.save()
    keep_alive = reverse("session_keep_alive")
    asked = client.get(keep_alive).json()["expires_in"]
    assert settings.SESSION_IDLE_TIMEOUT - 302 <= asked <= settings.SESSION_IDLE_TIMEOUT - 299
    assert client.session[twofa_session.LAST_SEEN_KEY] <= int(time.time()) - 299  # not touched
    assert client.post(keep_alive).json() == {"expires_in": settings.SESSION_IDLE_TIMEOUT, "ends_by": "idle"}
    assert client.session[twofa_session.LAST_SEEN_KEY] >= int(time.time()) - 1


@pytest.mark.django_db
def test_near_the_absolute_timeout_the_warning_counts_down_to_it(staff, client, settings):
    """Activity cannot move the sign-in's absolute limit: when it comes before the idle one, the
    page and the keep-alive report it, and the warning says so."""
    password_login(client, staff)
    session = client.session
    session[twofa_session.LOGIN_AT_KEY] = int(time.time()) - settings.SESSION_ABSOLUTE_TIMEOUT + 100
    session.save()
    html = client.get(reverse("home")).content.decode()
    match = re.search(r'data-expires-in="(\d+)" data-ends-by="absolute"', html)
    assert match and 95 <= int(match.group(1)) <= 100
    assert "Every sign-in ends after 12 hours" in html
    keep_alive = reverse("session_keep_alive")
    answer = client.post(keep_alive).json()
    assert answer["ends_by"] == "absolute" and 95 <= answer["expires_in"] <= 100


@pytest.mark.django_db
def test_without_a_keep_alive_the_idle_logout_happens_as_before(staff, client, settings):
    password_login(client, staff)
    session = client.session
    session[twofa_session.LAST_SEEN_KEY] = int(time.time()) - settings.SESSION_IDLE_TIMEOUT - 1
    session.save()
    assert client.post(reverse("session_keep_alive")).status_code == 302
    assert client.get(reverse("home")).url.startswith(reverse("login"))


@pytest.mark.django_db
def test_the_parked_action_waits_longer_than_a_short_window(enrolled, staff, settings, time_machine):
    settings.CLINICAUTH_REAUTH_WINDOW = 2
    client, device = enrolled
    before = code_hashes(staff)
    later(time_machine, 3)
    confirm = asked_to_confirm(client.post(CODES))
    later(time_machine, 3 + 120)  # two minutes to find the phone and type the code
    assert client.post(confirm, {"code": next_code(device)}).url == CODES
    assert code_hashes(staff) != before
    later(time_machine, 3 + 120 + twofa_session.PENDING_ACTION_LIFETIME + 1)
    confirm = asked_to_confirm(client.post(CODES))
    later(time_machine, 3 + 2 * (120 + twofa_session.PENDING_ACTION_LIFETIME))
    assert "There is nothing waiting to be confirmed." in client.get(confirm, follow=True).content.decode()
