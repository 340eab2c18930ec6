"""A forgotten password, built on Django's reset views and default_token_generator.

The reset never verifies the second factor: the user logs in afterwards with the
new password and their code, as at any login. No enumeration, throttled, audited.
"""

import html
import re
import time
from datetime import datetime, timedelta, timezone

import pytest
from django_otp import DEVICE_ID_SESSION_KEY
import time_machine
from django.core import mail
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from mailer.models import Message as QueuedMessage

from clinic_auth.twofactor import devices
from clinic_auth.twofactor.models import AuditEvent
from tests.conftest import Browser, PASSWORD, next_code
from users import reset_throttle
from users.models import LoginThrottle, User

NEW_PASSWORD = "plum orchard lantern 42"
LINK = re.compile(r"http://testserver(/accounts/password-reset/[^/\s]+/[^/\s]+/)")
SAME_ANSWER = "If an account matches, we've sent a link"


@pytest.fixture
def member(user_factory) -> User:
    return user_factory(username="nurse.joy", email="joy@example.com", first_name="Joy", last_name="Nurse")


@pytest.fixture
def enrolled(member, enrol, django_capture_on_commit_callbacks):
    device, _ = enrol(member, http_client=Client())
    mail.outbox.clear()
    return device


def ask(c: Client, identifier: str, capture, **extra):
    with capture(execute=True):
        return c.post(reverse("password_reset"), {"email": identifier}, **extra)


def link_in(message) -> str:
    match = LINK.search(message.body)
    assert match, message.body
    return match.group(1)


def requested_link(c, identifier, capture) -> str:
    ask(c, identifier, capture)
    (message,) = [m for m in mail.outbox if "set a new password" in m.subject]
    mail.outbox.clear()
    return link_in(message)


def set_new_password(c: Client, path: str, capture, password: str = NEW_PASSWORD):
    """Open the e-mailed link (Django moves the token into the session), then submit the form."""
    opened = c.get(path)
    assert opened.status_code == 302, opened.status_code
    with capture(execute=True):
        return opened, c.post(opened.url, {"new_password1": password, "new_password2": password})


def test_login_page_links_to_forgot_password(client):
    body = client.get(reverse("login")).content.decode()
    assert f'<a href="{reverse("password_reset")}">Forgot your password?</a>' in body
    page = client.get(reverse("password_reset")).content.decode()
    assert '<label for="id_email">Username or email</label>' in page


@pytest.mark.parametrize("identifier", ["nurse.joy", "NURSE.JOY", "joy@example.com", "Joy@Example.com"])
def test_username_or_email_gets_a_link(client, member, identifier, django_capture_on_commit_callbacks):
    response = ask(client, identifier, django_capture_on_commit_callbacks)
    assert response.url == reverse("password_reset_done")
    (message,) = mail.outbox
    assert message.to == ["joy@example.com"]
    path = link_in(message)
    assert path.startswith(f"/accounts/password-reset/{urlsafe_base64_encode(force_bytes(member.pk))}/")
    event = AuditEvent.objects.get(action=AuditEvent.Action.PASSWORD_RESET_REQUESTED)
    assert event.target == member and event.ip_address == "127.0.0.1"


@pytest.mark.parametrize("identifier", ["nobody", "nobody@example.com", "nurse.joy", "inactive", "invitee"])
def test_same_answer_whatever_the_input(client, member, user_factory, identifier, django_capture_on_commit_callbacks):
    user_factory(username="inactive", is_active=False)
    invitee = user_factory(username="invitee")
    invitee.set_unusable_password()
    invitee.save()
    response = ask(client, identifier, django_capture_on_commit_callbacks)
    assert response.status_code == 302 and response.url == reverse("password_reset_done")
    assert SAME_ANSWER in html.unescape(client.get(response.url).content.decode())
    assert len(mail.outbox) == (1 if identifier == "nurse.joy" else 0)


def test_same_work_for_a_match_and_no_match(member, django_capture_on_commit_callbacks):
    """The same statements reach the database whether or not an account matches (apart from the audit row)."""

    def statements(identifier, address):
        c = Client(REMOTE_ADDR=address)  # a fresh address each, so both create their throttle rows
        c.get(reverse("password_reset"))
        with CaptureQueriesContext(connection) as queries:
            ask(c, identifier, django_capture_on_commit_callbacks)
        return [
            re.sub(r"\d+", "N", " ".join(q["sql"].split(" ")[:3]))
            for q in queries.captured_queries
            if "audit" not in q["sql"]
        ]

    matched, unmatched = statements("nurse.joy", "10.1.1.1"), statements("nobody-here", "10.1.1.2")
    assert len(matched) >= 6
    assert matched == unmatched, (matched, unmatched)


def test_the_answer_never_waits_on_the_mail_server(member, settings, django_capture_on_commit_callbacks):
    """A 1-s relay: both answers come at once (no padding sleep), the mail waits in the queue, and
    the queue's sender (`manage.py runmailer`'s work, one pass here) delivers it."""
    settings.EMAIL_BACKEND = "mailer.backend.DbBackend"
    settings.MAILER_EMAIL_BACKEND = "tests.slow_mail.SlowRelayBackend"
    timings = {}
    for identifier in ("nurse.joy", "nobody-here"):
        started = time.monotonic()
        ask(Client(), identifier, django_capture_on_commit_callbacks)
        timings[identifier] = time.monotonic() - started
    assert all(t < 0.5 for t in timings.values()), timings
    assert abs(timings["nurse.joy"] - timings["nobody-here"]) < 0.2, timings
    assert mail.outbox == [] and QueuedMessage.objects.count() == 1

    call_command("send_mail", verbosity=0)

    (message,) = mail.outbox
    assert message.to == ["joy@example.com"] and LINK.search(message.body)
    assert QueuedMessage.objects.count() == 0


def test_reset_never_verifies_the_second_factor(client, member, enrolled, django_capture_on_commit_callbacks):
    path = requested_link(client, "nurse.joy", django_capture_on_commit_callbacks)
    _, response = set_new_password(client, path, django_capture_on_commit_callbacks)
    assert response.status_code == 302 and response.url == reverse("login")
    assert "_auth_user_id" not in client.session and DEVICE_ID_SESSION_KEY not in client.session
    assert client.get(reverse("home")).url.startswith(reverse("login"))
    # Then an ordinary login: the new password leads to the code challenge, not past it.
    response = client.post(reverse("login"), {"username": "nurse.joy", "password": NEW_PASSWORD})
    assert response.status_code == 302
    assert client.get(reverse("home")).url.startswith(reverse("two_factor_challenge"))
    assert client.post(reverse("two_factor_challenge"), {"code": next_code(enrolled)}).status_code == 302
    assert client.get(reverse("home")).status_code == 200
    assert not Client().login(username="nurse.joy", password=PASSWORD)


def test_reset_ends_every_other_session_and_emails_and_audits(
    client, member, enrolled, django_capture_on_commit_callbacks
):
    other = Browser()
    other.force_login(member)
    assert other.get(reverse("profile")).status_code in (200, 302)
    session_page = other.get(reverse("home"))
    assert session_page.status_code == 302 and "two-factor" in session_page.url  # signed in, at the challenge
    path = requested_link(client, "joy@example.com", django_capture_on_commit_callbacks)
    set_new_password(client, path, django_capture_on_commit_callbacks)
    response = other.get(reverse("home"))
    assert response.url.startswith(reverse("login"))  # ended: back to the login page
    (message,) = mail.outbox
    assert message.to == ["joy@example.com"] and "password was changed" in message.subject
    event = AuditEvent.objects.get(action=AuditEvent.Action.PASSWORD_RESET_COMPLETED)
    assert event.target == member
    assert devices.is_enrolled(member)  # the reset leaves 2FA as it was


def test_link_works_once(client, member, django_capture_on_commit_callbacks):
    path = requested_link(client, "nurse.joy", django_capture_on_commit_callbacks)
    set_new_password(client, path, django_capture_on_commit_callbacks)
    again = Client().get(path)
    assert again.status_code == 200 and "This reset link no longer works" in again.content.decode()


def test_link_dies_after_a_later_login(client, member, enrolled, django_capture_on_commit_callbacks):
    path = requested_link(client, "nurse.joy", django_capture_on_commit_callbacks)
    assert Client().get(path).status_code == 302  # still good
    with time_machine.travel(timedelta(seconds=2)):  # last_login is compared to the second
        browser = Client()
        browser.post(reverse("login"), {"username": "nurse.joy", "password": PASSWORD})
        assert browser.post(reverse("two_factor_challenge"), {"code": next_code(enrolled)}).status_code == 302
    member.refresh_from_db()
    assert member.last_login is not None
    response = Client().get(path)
    assert response.status_code == 200 and "This reset link no longer works" in response.content.decode()


def test_link_dies_after_a_later_password_change(client, member, django_capture_on_commit_callbacks):
    path = requested_link(client, "nurse.joy", django_capture_on_commit_callbacks)
    member.set_password("a different passphrase 9")
    member.save()
    assert "This reset link no longer works" in Client().get(path).content.decode()


def test_link_expires_after_one_hour(client, member, django_capture_on_commit_callbacks):
    issued = datetime.now(timezone.utc)
    with time_machine.travel(issued, tick=False):
        path = requested_link(client, "nurse.joy", django_capture_on_commit_callbacks)
    with time_machine.travel(issued + timedelta(minutes=59), tick=False):
        assert Client().get(path).status_code == 302
    with time_machine.travel(issued + timedelta(minutes=60, seconds=2), tick=False):
        response = Client().get(path)
        assert response.status_code == 200 and "This reset link no longer works" in response.content.decode()


def test_form_left_open_past_the_hour_is_refused(client, member, django_capture_on_commit_callbacks):
    issued = datetime.now(timezone.utc)
    with time_machine.travel(issued, tick=False):
        path = requested_link(client, "nurse.joy", django_capture_on_commit_callbacks)
        opened = client.get(path)
    with time_machine.travel(issued + timedelta(hours=2), tick=False):
        response = client.post(opened.url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert "This reset link no longer works" in response.content.decode()
    member.refresh_from_db()
    assert member.check_password(PASSWORD)


def test_tampered_link_changes_nothing(client, member, django_capture_on_commit_callbacks):
    path = requested_link(client, "nurse.joy", django_capture_on_commit_callbacks)
    uid, token = path.strip("/").split("/")[-2:]
    for bad in (f"{uid}/{token[:-1]}x", f"{urlsafe_base64_encode(b'999999')}/{token}", f"@@/{token}"):
        response = Client().get(f"/accounts/password-reset/{bad}/")
        assert response.status_code == 200 and "This reset link no longer works" in response.content.decode()
    member.refresh_from_db()
    assert member.check_password(PASSWORD)


def test_weak_password_shows_the_rules_and_keeps_the_old_one(client, member, django_capture_on_commit_callbacks):
    path = requested_link(client, "nurse.joy", django_capture_on_commit_callbacks)
    opened = client.get(path)
    page = client.get(opened.url).content.decode()
    assert "at least 10 characters" in page and "<h1>Set a new password</h1>" in page
    response = client.post(opened.url, {"new_password1": "123", "new_password2": "123"})
    assert response.status_code == 200 and response.context["form"].errors
    member.refresh_from_db()
    assert member.check_password(PASSWORD)


def test_deactivated_member_gets_no_link_and_an_old_link_dies_even_after_reactivation(
    client, member, clinic_admin, django_capture_on_commit_callbacks
):
    from users import membership

    path = requested_link(client, "nurse.joy", django_capture_on_commit_callbacks)
    membership.member_deactivate(member=member, actor=clinic_admin, ip=None)
    assert "This reset link no longer works" in Client().get(path).content.decode()
    ask(client, "nurse.joy", django_capture_on_commit_callbacks)
    assert not [m for m in mail.outbox if "set a new password" in m.subject]
    membership.member_reactivate(member=member, actor=clinic_admin, ip=None)
    assert "This reset link no longer works" in Client().get(path).content.decode()
    mail.outbox.clear()
    # A link asked for after the reactivation (a few seconds later: tokens count whole seconds) works.
    later = datetime.now(timezone.utc) + timedelta(seconds=3)
    with time_machine.travel(later, tick=False):
        fresh = requested_link(Client(), "nurse.joy", django_capture_on_commit_callbacks)
        assert Client().get(fresh).status_code == 302


def test_throttled_per_account(member, django_capture_on_commit_callbacks):
    for n in range(reset_throttle.ACCOUNT.limit + 2):
        ask(Client(REMOTE_ADDR=f"10.0.0.{n + 1}"), "nurse.joy" if n % 2 else "joy@example.com", django_capture_on_commit_callbacks)
    assert len(mail.outbox) == reset_throttle.ACCOUNT.limit


def test_throttled_per_address(user_factory, django_capture_on_commit_callbacks):
    users = [user_factory() for _ in range(reset_throttle.ADDRESS.limit + 2)]
    c = Client(REMOTE_ADDR="10.9.9.9")
    answers = {ask(c, user.username, django_capture_on_commit_callbacks).url for user in users}
    assert answers == {reverse("password_reset_done")}  # the same answer throttled or not
    assert len(mail.outbox) == reset_throttle.ADDRESS.limit
    ask(Client(REMOTE_ADDR="10.9.9.10"), users[-1].username, django_capture_on_commit_callbacks)
    assert len(mail.outbox) == reset_throttle.ADDRESS.limit + 1  # another address is unaffected


def test_throttle_window_passes(member, django_capture_on_commit_callbacks):
    from django.utils import timezone

    for _ in range(reset_throttle.ACCOUNT_FROM_ADDRESS.limit + 1):
        ask(Client(), "nurse.joy", django_capture_on_commit_callbacks)
    assert len(mail.outbox) == reset_throttle.ACCOUNT_FROM_ADDRESS.limit
    later = timezone.now() + reset_throttle.WINDOW + timedelta(seconds=1)
    with time_machine.travel(later):
        ask(Client(), "nurse.joy", django_capture_on_commit_callbacks)
    assert len(mail.outbox) == reset_throttle.ACCOUNT_FROM_ADDRESS.limit + 1
    assert LoginThrottle.objects.filter(key=f"reset-acct:{member.pk}").exists()
    assert LoginThrottle.objects.filter(key=f"reset-acct-ip:{member.pk}|127.0.0.1").exists()


def test_a_stranger_elsewhere_cannot_spend_the_members_own_reset_emails(member, django_capture_on_commit_callbacks):
    """Per account and address, with a higher per-account cap: a stranger asking from two other
    addresses uses up their own counts, and the member at the clinic still gets a link."""
    for address in ("198.51.100.7", "198.51.100.8"):
        for _ in range(reset_throttle.ACCOUNT_FROM_ADDRESS.limit + 2):
            ask(Client(REMOTE_ADDR=address), "nurse.joy", django_capture_on_commit_callbacks)
    assert len(mail.outbox) == 2 * reset_throttle.ACCOUNT_FROM_ADDRESS.limit
    mail.outbox.clear()
    ask(Client(REMOTE_ADDR="10.1.2.3"), "nurse.joy", django_capture_on_commit_callbacks)
    assert len(mail.outbox) == 1


def test_unknown_names_are_counted_too(db, django_capture_on_commit_callbacks):
    ask(Client(), "Nobody@Example.com", django_capture_on_commit_callbacks)
    assert LoginThrottle.objects.get(key="reset-acct:?nobody@example.com").failures == 1


def test_reset_pages_need_no_login_and_a_gated_session_is_held_at_its_gate(client, member, enrolled, login):
    assert Client().get(reverse("password_reset")).status_code == 200
    login(member)
    response = client.get(reverse("password_reset"))
    assert response.status_code == 302 and response.url.startswith(reverse("two_factor_challenge"))


def test_a_refused_new_password_is_said_under_it_and_the_rules_read_plainly(client, staff):
    from users.forms import ChangePasswordForm, NewPasswordForm

    for form in (
        NewPasswordForm(staff, data={"new_password1": "short", "new_password2": "short"}),
        ChangePasswordForm(staff, data={"old_password": "x", "new_password1": "short", "new_password2": "short"}),
    ):
        assert not form.is_valid()
        assert any("too short" in error for error in form.errors["new_password1"])
        assert "new_password2" not in form.errors
    mismatch = NewPasswordForm(staff, data={"new_password1": "plum orchard lantern 42", "new_password2": "plum orchard 42"})
    assert not mismatch.is_valid() and "new_password2" in mismatch.errors and "new_password1" not in mismatch.errors


@pytest.mark.parametrize("with_2fa", [True, False])
def test_after_a_reset_the_code_is_mentioned_only_to_those_who_have_2fa(
    client, member, enrol, with_2fa, django_capture_on_commit_callbacks
):
    if with_2fa:
        enrol(member, http_client=Client())
        mail.outbox.clear()
    path = requested_link(client, "nurse.joy", django_capture_on_commit_callbacks)
    opened = client.get(path)
    form_page = client.get(opened.url).content.decode()
    _, done = set_new_password(client, path, django_capture_on_commit_callbacks)
    after = client.get(done.url).content.decode()
    assert ("and your verification code" in form_page) is with_2fa
    assert ("Log in with your new password and your verification code." in after) is with_2fa
    assert "Your password has been changed. Log in with your new password" in after
