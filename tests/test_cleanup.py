"""`manage.py cleanup` deletes what piles up, and only that; "Where you're signed in" lists a
browser once its sign-in completed."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from clinic_auth.twofactor.totp.models import EncryptedTOTPDevice
from tests.conftest import PASSWORD, Browser, next_code
from users.models import LoginThrottle, UserSession

pytestmark = pytest.mark.django_db


def cleanup() -> str:
    out = StringIO()
    call_command("cleanup", stdout=out)
    return out.getvalue()


def test_cleanup_deletes_expired_rows_and_keeps_live_ones(staff, settings):
    now = timezone.now()
    old = now - timedelta(hours=2)
    live_session = SessionStore()
    live_session.create()
    Session.objects.create(session_key="x" * 32, session_data="", expire_date=now - timedelta(seconds=1))
    LoginThrottle.objects.create(key="ip:192.0.2.1", failures=3, window_started_at=old)
    LoginThrottle.objects.create(key="ip:192.0.2.2", failures=50, window_started_at=old, locked_until=now + timedelta(minutes=5))
    LoginThrottle.objects.create(key="ip:192.0.2.3", failures=1, window_started_at=now)
    UserSession.objects.create(user=staff, session_key="gone" * 8)
    UserSession.objects.create(user=staff, session_key=live_session.session_key)
    UserSession.objects.create(user=staff, session_key="ended" + "e" * 27, ended_at=now, end_reason="ended_by_admin")
    stale = EncryptedTOTPDevice.objects.create(user=staff, name="a", confirmed=False)
    locked_stale = EncryptedTOTPDevice.objects.create(
        user=staff, name="b", confirmed=False, throttling_failure_count=10, throttling_failure_timestamp=now
    )
    fresh = EncryptedTOTPDevice.objects.create(user=staff, name="c", confirmed=False)
    EncryptedTOTPDevice.objects.filter(pk__in=[stale.pk, locked_stale.pk]).update(created_at=old)

    out = cleanup()

    assert "expired sessions: 1 deleted" in out and "throttle rows: 1 deleted" in out
    assert "signed-in browser rows: 1 deleted" in out and "unfinished 2FA set-ups: 1 deleted" in out
    assert set(Session.objects.values_list("session_key", flat=True)) == {live_session.session_key}
    assert set(LoginThrottle.objects.values_list("key", flat=True)) == {"ip:192.0.2.2", "ip:192.0.2.3"}
    # The ended row stays a while: a returning cookie is told why it was signed out.
    assert set(UserSession.objects.values_list("session_key", flat=True)) == {live_session.session_key, "ended" + "e" * 27}
    # A stale set-up that carries a code lockout stays until the lockout is over.
    assert set(EncryptedTOTPDevice.objects.values_list("pk", flat=True)) == {locked_stale.pk, fresh.pk}
    assert "expired sessions: 0 deleted" in cleanup()  # and running it again finds nothing


def test_a_flood_of_wrong_passwords_leaves_no_rows_behind_the_cleanup(staff, time_machine):
    for n in range(30):
        Browser(REMOTE_ADDR=f"10.7.0.{n}").post(reverse("login"), {"username": f"nobody{n}", "password": "x"})
    assert LoginThrottle.objects.count() == 60
    time_machine.move_to(timezone.now() + timedelta(hours=1, minutes=1), tick=False)
    cleanup()
    assert LoginThrottle.objects.count() == 0


def profile_lists(c) -> str:
    return c.get(reverse("profile")).content.decode()


def test_a_password_step_without_its_code_is_not_listed_as_signed_in(staff, enrol, settings, time_machine):
    device, _ = enrol(staff)
    me = Browser()
    me.post(reverse("login"), {"username": staff.username, "password": PASSWORD})
    me.post(reverse("two_factor_challenge"), {"code": next_code(device)})
    for _ in range(5):  # abandoned at the code step
        Browser().post(reverse("login"), {"username": staff.username, "password": PASSWORD})

    page = profile_lists(me)
    assert page.count('class="session"') == 7  # the set-up browser, this one and the five
    assert page.count("Password entered, code not yet given") == 5

    time_machine.move_to(timezone.now() + timedelta(seconds=settings.CLINICAUTH_PENDING_LOGIN_TIMEOUT + 1), tick=False)
    me.get(reverse("session_keep_alive"))
    page = profile_lists(me)
    assert page.count('class="session"') == 2 and "Password entered" not in page


def test_the_browser_is_listed_once_the_code_is_given(staff, enrol):
    device, _ = enrol(staff)
    c = Browser()
    c.post(reverse("login"), {"username": staff.username, "password": PASSWORD})
    assert UserSession.objects.get(session_key=c.session.session_key).completed_at is None
    c.post(reverse("two_factor_challenge"), {"code": next_code(device)})
    assert UserSession.objects.get(session_key=c.session.session_key).completed_at is not None
    assert "Password entered" not in profile_lists(c)


def test_without_2fa_the_password_completes_the_sign_in(staff):
    c = Browser()
    c.post(reverse("login"), {"username": staff.username, "password": PASSWORD})
    assert UserSession.objects.get(session_key=c.session.session_key).completed_at is not None


def test_cleanup_queues_failed_mail_again_a_limited_number_of_times(settings):
    from mailer import models as mailer_models

    settings.MAILER_EMAIL_MAX_RETRIES = 2
    failed = mailer_models.make_message(subject="Invitation", body="b", from_email="a@example.com", to=["b@example.com"])
    failed.priority = mailer_models.PRIORITY_DEFERRED  # what runmailer does when the mail server refuses
    failed.save()
    assert "failed e-mails: 1 queued again" in cleanup()
    failed.refresh_from_db()
    assert failed.priority == mailer_models.PRIORITY_MEDIUM and failed.retry_count == 1
    for expected_retry_count in (2, 2):  # deferred again twice: the second time it is left alone
        mailer_models.Message.objects.filter(pk=failed.pk).update(priority=mailer_models.PRIORITY_DEFERRED)
        cleanup()
        failed.refresh_from_db()
        assert failed.retry_count == expected_retry_count
    assert failed.priority == mailer_models.PRIORITY_DEFERRED
