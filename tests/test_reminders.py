"""The button "Remind members who have not set up 2FA" sends at most once per 24 h per clinic."""

from datetime import date, datetime, timedelta
from datetime import timezone as dt_timezone
from unittest import mock

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from clinic_auth.twofactor import services
from clinic_auth.twofactor.models import AuditEvent
from clinics.models import Clinic
from users.models import User

REMIND = reverse("user_remind")
BUTTON = "Remind members who have not set up 2FA"
T0 = datetime(2026, 11, 29, 9, 0, tzinfo=dt_timezone.utc)


def at(moment):
    return mock.patch("django.utils.timezone.now", return_value=moment)


@pytest.fixture(autouse=True)
def long_sessions(settings):
    # The clock moves a day forward here; the session must outlive it (its age is not under test).
    settings.SESSION_COOKIE_AGE = 7 * 24 * 3600


@pytest.fixture
def admin_client(clinic_admin, enrol):
    c = Client(REMOTE_ADDR="203.0.113.9")
    enrol(clinic_admin, http_client=c)
    return c


@pytest.fixture
def members(user_factory, enrol, clinic_factory):
    waiting = [user_factory(username=f"waiting{n}") for n in range(3)]
    enrol(user_factory(username="ready"), http_client=Client())
    user_factory(username="gone", is_active=False)
    user_factory(username="elsewhere", clinic=clinic_factory(name="Elsewhere"))
    return waiting


@pytest.mark.django_db
def test_one_email_per_member_not_set_up_with_the_date_and_how(admin_client, clinic, members,
                                                              django_capture_on_commit_callbacks):
    Clinic.objects.filter(pk=clinic.pk).update(mandatory_2fa=True, mandatory_from=date(2026, 12, 5))
    mail.outbox.clear()
    with at(T0), django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(REMIND, follow=True)
    assert "Reminders sent to 3 members who have not set up 2FA." in response.content.decode()
    assert sorted(m.to[0] for m in mail.outbox) == sorted(u.email for u in members)
    body = mail.outbox[0].body
    assert "requires two-factor authentication from 5 Dec 2026" in body
    assert "Enable Two-Factor Authentication" in body and "Enable 2FA" in body
    event = AuditEvent.objects.get(action=AuditEvent.Action.REMINDERS_SENT)
    assert (event.detail, event.actor_username, event.clinic, event.ip_address) == (
        "3 members reminded", "admin", clinic, "203.0.113.9")


@pytest.mark.django_db
def test_at_most_once_per_24_hours_and_the_button_says_when(admin_client, clinic, members,
                                                            django_capture_on_commit_callbacks):
    with at(T0):
        admin_client.post(REMIND)
    mail.outbox.clear()
    with at(T0 + timedelta(hours=23, minutes=59)):
        with django_capture_on_commit_callbacks(execute=True):
            refused = admin_client.post(REMIND, follow=True)
        html = refused.content.decode()
        assert "You can send them again after 30 Nov, 09:00 UTC." in html
        page = admin_client.get(reverse("user_list")).content.decode()
    assert mail.outbox == []
    assert f'disabled aria-describedby="remind-when">{BUTTON}</button>' in page
    assert "You can send them again after 30 Nov, 09:00 UTC." in page
    assert AuditEvent.objects.filter(action=AuditEvent.Action.REMINDERS_SENT).count() == 1
    with at(T0 + timedelta(hours=24)), django_capture_on_commit_callbacks(execute=True):
        admin_client.post(REMIND)
    assert len(mail.outbox) == 3
    assert AuditEvent.objects.filter(action=AuditEvent.Action.REMINDERS_SENT).count() == 2


@pytest.mark.django_db
def test_the_limit_is_per_clinic_and_held_by_the_database(clinic, clinic_admin, clinic_factory, user_factory, members):
    """The timestamp is claimed by a conditional UPDATE: a second call with a stale clinic object is refused too."""
    other = clinic_factory(name="Other")
    stale = Clinic.objects.get(pk=clinic.pk)
    with at(T0):
        assert services.clinic_remind_unenrolled(clinic=clinic, actor=clinic_admin) == 4  # the admin too
        with pytest.raises(services.RemindersTooSoon) as too_soon:
            services.clinic_remind_unenrolled(clinic=stale, actor=clinic_admin)
        assert too_soon.value.next_at == T0 + timedelta(hours=24)
        user_factory(clinic=other)
        assert services.clinic_remind_unenrolled(clinic=other, actor=None) == 1


@pytest.mark.django_db
def test_staff_cannot_send_reminders_and_get_is_refused(client, staff, admin_client):
    client.force_login(staff)
    assert client.post(REMIND).status_code == 403
    assert admin_client.get(REMIND).status_code == 405
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.REMINDERS_SENT).exists()


@pytest.mark.django_db
def test_no_button_when_everyone_is_set_up(admin_client, clinic):
    assert User.objects.filter(clinic=clinic).count() == 1
    assert BUTTON not in admin_client.get(reverse("user_list")).content.decode()
