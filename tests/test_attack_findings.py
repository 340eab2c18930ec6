"""What the attack review found, each reproduced at the HTTP level.

(Item 1's "exactly one of two parallel set-ups wins" runs against gunicorn in
tests/concurrency/test_parallel_setup.py; item 7, the shipped gunicorn.conf.py,
in tests/test_production_serving.py.)
"""

from __future__ import annotations

import re
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from clinic_auth.twofactor import devices
from clinic_auth.twofactor import session as twofa_session
from clinic_auth.twofactor.models import AuditEvent, EncryptedTOTPDevice, RecoveryCode
from clinic_auth.twofactor.totp import services as totp_services
from tests.conftest import Browser, PASSWORD, next_code, setup_device, totp_for
from users.models import User

SETUP = reverse("two_factor_setup")
CHALLENGE = reverse("two_factor_challenge")
CODES = reverse("two_factor_recovery_codes")
HARD_LOCKED = "ask your clinic administrator to reset your two-factor authentication"


def manual_key(response) -> str:
    return re.search(r'id="manual-key">([A-Z2-7 ]+)<', response.content.decode()).group(1).replace(" ", "")


def signed_in(user: User) -> Client:
    """A browser that has passed the password step only."""
    c = Client()
    response = c.post(reverse("login"), {"username": user.username, "password": PASSWORD})
    assert response.status_code == 302
    return c


def wrong_code_for(device) -> str:
    valid = {totp_for(device, offset_steps=s) for s in (-1, 0, 1)}
    return next(c for c in ("000000", "999999", "123123", "424242") if c not in valid)


@pytest.fixture
def mandatory(clinic):
    clinic.mandatory_2fa = True
    clinic.save()
    return clinic


# --- 1. a set-up secret belongs to one session and expires ----------------------


@pytest.mark.django_db
def test_each_set_up_session_gets_its_own_secret(mandatory, staff):
    attacker, real_user = signed_in(staff), signed_in(staff)
    attackers_key = manual_key(attacker.get(SETUP))
    users_key = manual_key(real_user.get(SETUP))
    assert attackers_key != users_key
    # Reloading keeps each session's own secret, so a user can scan at leisure.
    assert manual_key(attacker.get(SETUP)) == attackers_key
    assert manual_key(real_user.get(SETUP)) == users_key


@pytest.mark.django_db
def test_a_planted_secret_never_becomes_the_users_authenticator(mandatory, staff):
    attacker, real_user = signed_in(staff), signed_in(staff)
    attacker.get(SETUP)
    planted = setup_device(attacker)
    real_user.get(SETUP)

    # The user cannot be made to confirm the attacker's secret: its codes fail in their session.
    refused = real_user.post(SETUP, {"code": totp_for(planted)})
    assert refused.status_code == 200
    assert "That code did not match" in refused.content.decode()
    assert not devices.is_enrolled(staff)

    # The user enrols with their own secret; the attacker's set-up dies with it.
    assert real_user.post(SETUP, {"code": totp_for(setup_device(real_user))}).status_code == 302
    assert not EncryptedTOTPDevice.objects.filter(pk=planted.pk).exists()
    assert EncryptedTOTPDevice.objects.filter(user=staff).count() == 1

    # The attacker's codes open nothing, neither on their old set-up page nor at the challenge.
    late = attacker.post(SETUP, {"code": totp_for(planted)}, follow=True)
    assert late.redirect_chain[-1][0].startswith(CHALLENGE)
    assert "set up for your account in another window" in late.content.decode()
    assert not devices.is_enrolled(staff) or devices.confirmed_totp_device(staff).bin_key != planted.bin_key
    assert attacker.post(CHALLENGE, {"code": totp_for(planted)}).status_code == 200
    assert attacker.get(reverse("home")).url.startswith(CHALLENGE)


@pytest.mark.django_db
def test_confirming_from_a_session_whose_set_up_was_replaced_says_start_again(staff):
    first, second = Browser(), Browser()
    first.force_login(staff)
    second.force_login(staff)
    first.get(SETUP)
    second.get(SETUP)
    mine = setup_device(first)
    assert second.post(SETUP, {"code": totp_for(setup_device(second))}).status_code == 302

    response = first.post(SETUP, {"code": totp_for(mine)}, follow=True)

    assert "set up for your account in another window" in response.content.decode()
    assert devices.confirmed_totp_device(staff).bin_key != mine.bin_key


@pytest.mark.django_db
@pytest.mark.parametrize("verified_user", [False, True], ids=["forced set-up", "from My Profile"])
def test_a_set_up_secret_expires(client, mandatory, clinic, staff, settings, verified_user):
    if not verified_user:
        client = signed_in(staff)
    else:
        clinic.mandatory_2fa = False
        clinic.save()
        client.force_login(staff)
    old_key = manual_key(client.get(SETUP))
    old = setup_device(client)
    EncryptedTOTPDevice.objects.filter(pk=old.pk).update(
        created_at=timezone.now() - timedelta(seconds=settings.CLINICAUTH_SETUP_TIMEOUT + 1)
    )

    response = client.post(SETUP, {"code": totp_for(old)}, follow=True)

    assert not devices.is_enrolled(staff)
    assert "Your set-up expired" in response.content.decode()
    assert manual_key(response) != old_key
    # The fresh secret works.
    assert client.post(SETUP, {"code": totp_for(setup_device(client))}).status_code == 302
    assert devices.is_enrolled(staff)


@pytest.mark.django_db
def test_a_session_cannot_confirm_a_set_up_id_it_was_never_given(staff, user_factory):
    other = user_factory()
    other_client = Browser()
    other_client.force_login(other)
    other_client.get(SETUP)
    foreign = setup_device(other_client)
    mine = Browser()
    mine.force_login(staff)
    mine.get(SETUP)
    session = mine.session
    session[twofa_session.SETUP_KEY] = foreign.pk
    session.save()

    mine.post(SETUP, {"code": totp_for(foreign)})

    foreign.refresh_from_db()
    assert not foreign.confirmed and not devices.is_enrolled(staff) and not devices.is_enrolled(other)


@pytest.mark.django_db
def test_open_set_up_pages_are_capped_per_user(staff):
    clients = []
    for _ in range(totp_services.MAX_LIVE_SETUPS_PER_USER + 3):
        c = Browser()
        c.force_login(staff)
        c.get(SETUP)
        clients.append(c)
    assert EncryptedTOTPDevice.objects.filter(user=staff, confirmed=False).count() == totp_services.MAX_LIVE_SETUPS_PER_USER
    # The newest set-up still works.
    assert clients[-1].post(SETUP, {"code": totp_for(setup_device(clients[-1]))}).status_code == 302


# --- 2. a set-up lockout can be cleared ---------------------------------------------


def lock_set_up(c: Client, settings) -> EncryptedTOTPDevice:
    """50 wrong codes at set-up: the lock only a reset clears (no 15-minute pauses in between here)."""
    settings.CLINICAUTH_CODE_LOCKOUT_SECONDS = 0
    c.get(SETUP)
    device = setup_device(c)
    wrong = wrong_code_for(device)
    for _ in range(settings.CLINICAUTH_CODE_HARD_LOCK_FAILURES):
        c.post(SETUP, {"code": wrong})
    response = c.post(SETUP, {"code": totp_for(device)})
    assert HARD_LOCKED in response.content.decode()
    return device


@pytest.fixture
def admin_client(clinic_admin, enrol) -> Client:
    c = Client()
    enrol(clinic_admin, http_client=c)
    return c


@pytest.mark.django_db
def test_set_up_lockout_holds_for_the_account_not_the_browser(mandatory, staff, settings):
    lock_set_up(signed_in(staff), settings)
    fresh_browser = signed_in(staff)
    fresh_browser.get(SETUP)
    response = fresh_browser.post(SETUP, {"code": totp_for(setup_device(fresh_browser))})
    assert HARD_LOCKED in response.content.decode()
    assert not devices.is_enrolled(staff)


@pytest.mark.django_db
def test_admin_sees_and_clears_a_locked_set_up(mandatory, staff, admin_client, settings):
    stuck = signed_in(staff)
    lock_set_up(stuck, settings)

    page = admin_client.get(reverse("user_detail", args=[staff.pk])).content.decode()
    assert "set-up in progress, locked after 50 wrong codes" in page
    assert re.search(r"<button[^>]*>Disable Two-Factor Authentication</button>", page)
    confirm = admin_client.get(reverse("user_disable_2fa", args=[staff.pk]))
    assert confirm.status_code == 200 and "locked after 50 wrong codes" in confirm.content.decode()

    done = admin_client.post(reverse("user_disable_2fa", args=[staff.pk]), follow=True)

    assert "is now disabled for" in done.content.decode()
    assert not EncryptedTOTPDevice.objects.filter(user=staff).exists()
    event = AuditEvent.objects.get(action=AuditEvent.Action.DISABLED_BY_ADMIN)
    assert event.detail == "set-up in progress, locked after 50 wrong codes"
    # The member starts again and gets in.
    again = signed_in(staff)
    again.get(SETUP)
    assert again.post(SETUP, {"code": totp_for(setup_device(again))}).status_code == 302
    assert again.get(reverse("home")).status_code == 200


@pytest.mark.django_db
def test_nothing_to_reset_is_still_said_plainly(staff, admin_client):
    page = admin_client.get(reverse("user_detail", args=[staff.pk])).content.decode()
    assert "has not set up two-factor authentication, so there is nothing to disable" in page
    assert "Disable Two-Factor Authentication" not in page


@pytest.mark.django_db
def test_reset_2fa_reports_the_locked_set_up_it_removed(mandatory, staff, settings):
    lock_set_up(signed_in(staff), settings)
    out = StringIO()
    call_command("reset_2fa", "staff", stdout=out)
    assert "removed: set-up in progress, locked after 50 wrong codes" in out.getvalue()
    assert not EncryptedTOTPDevice.objects.filter(user=staff).exists()


@pytest.mark.django_db
def test_reset_2fa_takes_several_usernames_and_still_resets_the_known_ones(staff, user_factory, enrol):
    other = user_factory(username="other")
    enrol(staff, http_client=Client())
    enrol(other, http_client=Client())
    out = StringIO()
    with pytest.raises(CommandError, match="No user called 'ghost'"):
        call_command("reset_2fa", "staff", "ghost", "other", stdout=out)
    lines = out.getvalue().splitlines()
    assert [line.split(" (")[0] for line in lines] == [
        "Two-factor authentication reset for staff",
        "Two-factor authentication reset for other",
    ]
    assert not devices.is_enrolled(staff) and not devices.is_enrolled(other)


@pytest.mark.django_db
def test_django_admin_action_resets_a_locked_set_up(mandatory, staff, settings, user_factory, enrol):
    lock_set_up(signed_in(staff), settings)
    operator = user_factory(username="root", is_staff=True, is_superuser=True, clinic=None)
    operator_client = Client()
    enrol(operator, http_client=operator_client)
    response = operator_client.post(
        reverse("admin:users_user_changelist"),
        {"action": "reset_two_factor", "_selected_action": [staff.pk]},
        follow=True,
    )
    assert "staff: removed set-up in progress, locked after 50 wrong codes" in response.content.decode().lower()
    assert not EncryptedTOTPDevice.objects.filter(user=staff).exists()
    assert AuditEvent.objects.get(action=AuditEvent.Action.DISABLED_BY_OPERATOR).actor == operator


# --- 3. any `next` ends in a safe redirect ---------------------------------------------


def assert_safe_redirect_or_page(response):
    assert response.status_code in (200, 302), response.status_code
    if response.status_code == 302:
        location = response["Location"]
        assert location.startswith("/") and not location.startswith(("//", "/\\")), location


ODD_NEXT = ["foo", "home", "profile", "users:list", "élève", "x" * 10_000, "\x00", "/\x00/", "\\\\evil.example", " /home/"]


@pytest.mark.django_db
@pytest.mark.parametrize("next_url", ODD_NEXT)
def test_a_valid_code_with_any_next_signs_in_and_redirects_safely(staff, enrol, next_url):
    device, _ = enrol(staff, http_client=Client())
    c = signed_in(staff)
    assert_safe_redirect_or_page(c.get(CHALLENGE, {"next": next_url}))
    response = c.post(CHALLENGE, {"code": next_code(device), "next": next_url})
    assert response.status_code == 302 and response["Location"] == reverse("home")
    assert c.get(reverse("home")).status_code == 200


@pytest.mark.django_db
@hypothesis_settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(next_url=st.one_of(st.text(max_size=300), st.sampled_from(ODD_NEXT)))
@example(next_url="foo")
def test_next_is_fuzzed_on_every_view_that_reads_it(staff, user_factory, next_url):
    anonymous = Client()
    assert_safe_redirect_or_page(anonymous.get(reverse("login"), {"next": next_url}))
    assert_safe_redirect_or_page(anonymous.get("/admin/login/", {"next": next_url}))
    assert_safe_redirect_or_page(
        anonymous.post(reverse("login") + "?" + "next=x", {"username": staff.username, "password": PASSWORD, "next": next_url})
    )
    no_2fa = Browser()
    no_2fa.force_login(staff)
    assert_safe_redirect_or_page(no_2fa.get(reverse("login"), {"next": next_url}))
    assert_safe_redirect_or_page(no_2fa.get(CHALLENGE, {"next": next_url}))
    assert_safe_redirect_or_page(no_2fa.get(SETUP, {"next": next_url}))
    assert_safe_redirect_or_page(no_2fa.post(SETUP, {"code": "000000", "next": next_url}))


@pytest.mark.django_db
def test_a_valid_set_up_code_with_a_word_for_next_continues_home(staff):
    c = Browser()
    c.force_login(staff)
    c.get(SETUP, {"next": "foo"})
    response = c.post(SETUP, {"code": totp_for(setup_device(c)), "next": "foo"}, follow=True)
    assert '<a class="button primary" href="/home/">Continue</a>' in response.content.decode()


# --- 4. nothing personal is cached ------------------------------------------------------


@pytest.mark.django_db
def test_every_signed_in_page_says_no_store(clinic, clinic_admin, admin_client, staff):
    pages = [
        reverse("home"),
        reverse("profile"),
        reverse("password_change"),
        reverse("user_list"),
        reverse("user_detail", args=[staff.pk]),
        reverse("user_disable_2fa", args=[clinic_admin.pk]),
        reverse("clinic_settings", args=[clinic.pk]),
        reverse("clinic_edit", args=[clinic.pk]),
        reverse("clinic_audit_log", args=[clinic.pk]),
        CODES,
    ]
    for page in pages:
        response = admin_client.get(page, follow=True)
        assert response.status_code == 200, page
        assert "no-store" in response["Cache-Control"], page
    # A 404 for a signed-in user too.
    assert "no-store" in admin_client.get("/no-such-page/")["Cache-Control"]


@pytest.mark.django_db
def test_static_files_keep_their_own_caching(client):
    response = client.get("/static/css/app.css")
    assert response.status_code == 200
    assert "no-store" not in response.get("Cache-Control", "")


# --- 5. /admin/ for someone who is not an operator -------------------------------------


@pytest.mark.django_db
def test_admin_site_is_a_clear_403_for_a_signed_in_clinic_member(clinic_admin, admin_client):
    response = admin_client.get("/admin/", follow=True)
    assert response.status_code == 403
    assert len(response.redirect_chain) <= 1
    assert "for system operators only" in response.content.decode()
    assert '<a href="/home/">' in response.content.decode()


@pytest.mark.django_db
def test_admin_site_sends_an_anonymous_visitor_to_log_in_once(client):
    response = client.get("/admin/", follow=True)
    assert response.status_code == 200
    final_url = response.redirect_chain[-1][0]
    assert final_url == "/accounts/login/?next=%2Fadmin%2F"
    assert all("next=%2Faccounts" not in url and "next=/accounts" not in url for url, _ in response.redirect_chain)


# --- 6. the lockouts do not depend on the delay factor ----------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("factor", [0, 1])
def test_ten_wrong_codes_lock_code_entry_whatever_the_delay_factor(staff, enrol, settings, factor):
    device, _ = enrol(staff, http_client=Client())
    settings.OTP_TOTP_THROTTLE_FACTOR = factor
    c = signed_in(staff)
    wrong = wrong_code_for(device)
    for _ in range(settings.CLINICAUTH_CODE_LOCKOUT_FAILURES):
        EncryptedTOTPDevice.objects.filter(pk=device.pk).update(throttling_failure_timestamp=timezone.now() - timedelta(hours=1))
        c.post(CHALLENGE, {"code": wrong})
    response = c.post(CHALLENGE, {"code": next_code(device)})
    assert "Code entry is locked for 15 minutes" in response.content.decode()
    assert c.get(reverse("home")).url.startswith(CHALLENGE)


@pytest.mark.django_db
def test_fifty_wrong_codes_hard_lock_with_no_delay_factor(staff, enrol, settings):
    device, _ = enrol(staff, http_client=Client())
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    settings.CLINICAUTH_CODE_LOCKOUT_SECONDS = 0
    c = signed_in(staff)
    wrong = wrong_code_for(device)
    for _ in range(settings.CLINICAUTH_CODE_HARD_LOCK_FAILURES):
        c.post(CHALLENGE, {"code": wrong})
    device.refresh_from_db()
    assert device.throttling_failure_count == 50
    response = c.post(CHALLENGE, {"code": next_code(device)})
    assert HARD_LOCKED in response.content.decode()
    assert c.get(reverse("home")).url.startswith(CHALLENGE)


# --- 8. recovery codes are shown exactly once --------------------------------------------


def code_hashes(user) -> set[str]:
    return set(RecoveryCode.objects.filter(device__user=user).values_list("code_hash", flat=True))


SHOWN_CODE = re.compile(r"<li><code>([A-Z0-9]{5}-[A-Z0-9]{5})</code></li>")


@pytest.mark.django_db
def test_reloading_new_recovery_codes_never_replaces_them(client, staff, enrol):
    enrol(staff)
    response = client.post(CODES)
    assert response.status_code == 302 and response.url == CODES
    shown = client.get(CODES)
    codes = SHOWN_CODE.findall(shown.content.decode())
    assert len(codes) == 10
    hashes = code_hashes(staff)

    reload = client.get(CODES)

    assert SHOWN_CODE.findall(reload.content.decode()) == []
    assert "already shown once" in reload.content.decode()
    assert re.search(r"<button[^>]*>Generate new recovery codes</button>", reload.content.decode())
    assert code_hashes(staff) == hashes


@pytest.mark.django_db
def test_reloading_the_codes_shown_after_enabling_never_replaces_them(client, staff):
    client.force_login(staff)
    client.get(SETUP)
    response = client.post(SETUP, {"code": totp_for(setup_device(client))})
    assert response.status_code == 302 and response.url == CODES
    assert len(SHOWN_CODE.findall(client.get(CODES).content.decode())) == 10
    hashes = code_hashes(staff)
    assert SHOWN_CODE.findall(client.get(CODES).content.decode()) == []
    assert code_hashes(staff) == hashes


@pytest.mark.django_db
def test_codes_waiting_to_be_shown_are_not_stored_in_clear_in_the_session(client, staff, enrol):
    enrol(staff)
    client.post(CODES)
    stored = str(client.session[twofa_session.SHOW_CODES_KEY])
    codes = SHOWN_CODE.findall(client.get(CODES).content.decode())
    assert codes and not any(code in stored or code.replace("-", "") in stored for code in codes)


# --- 9. last_login means "last signed in" ----------------------------------------------------


@pytest.mark.django_db
def test_last_login_is_set_by_the_second_factor_not_the_password(staff, enrol):
    device, _ = enrol(staff, http_client=Client())
    User.objects.filter(pk=staff.pk).update(last_login=None)
    c = signed_in(staff)
    assert User.objects.get(pk=staff.pk).last_login is None
    before = timezone.now()
    c.post(CHALLENGE, {"code": next_code(device)})
    assert User.objects.get(pk=staff.pk).last_login >= before


@pytest.mark.django_db
def test_last_login_is_set_at_the_password_when_no_second_factor_applies(staff):
    before = timezone.now()
    signed_in(staff)
    assert User.objects.get(pk=staff.pk).last_login >= before


@pytest.mark.django_db
def test_last_login_waits_for_a_forced_set_up_to_finish(mandatory, staff):
    c = signed_in(staff)
    c.get(SETUP)
    assert User.objects.get(pk=staff.pk).last_login is None
    c.post(SETUP, {"code": totp_for(setup_device(c))})
    assert User.objects.get(pk=staff.pk).last_login is not None


@pytest.mark.django_db
def test_last_login_is_shown_with_its_time_zone(staff, admin_client):
    signed_in(staff)
    page = admin_client.get(reverse("user_detail", args=[staff.pk])).content.decode()
    assert re.search(r"<dt>Last login</dt><dd>\d{1,2} \w{3} \d{4}, \d\d:\d\d UTC</dd>", page)
