"""The session engine: Django's database sessions, the browser list following each key rotation, and
what the code step costs in SQL."""

import pytest
from django.contrib.sessions.backends.base import UpdateError
from django.contrib.sessions.models import Session
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from users.sessions import SessionStore
from tests.conftest import next_code


def saved_session() -> SessionStore:
    """A session with one value, saved: a row in django_session under its first key."""
    session = SessionStore()
    session["clinic"] = "Demo Clinic"
    session.save()
    return session


@pytest.mark.django_db
def test_cycle_key_replaces_the_row_and_keeps_the_data():
    session = saved_session()
    old_key = session.session_key

    session.cycle_key()
    assert not Session.objects.filter(session_key=old_key).exists()  # dead at once, as in Django
    session.save()

    assert session.session_key != old_key
    assert not Session.objects.filter(session_key=old_key).exists()
    assert SessionStore(session_key=old_key).load() == {}
    assert SessionStore(session_key=session.session_key).load() == {"clinic": "Demo Clinic"}
    assert Session.objects.count() == 1


@pytest.mark.django_db
def test_cycle_key_of_a_session_never_saved_creates_it():
    session = SessionStore()
    session["clinic"] = "Demo Clinic"
    session.cycle_key()
    assert Session.objects.filter(session_key=session.session_key).exists()
    assert SessionStore(session_key=session.session_key).load() == {"clinic": "Demo Clinic"}


@pytest.mark.django_db
def test_a_browser_ended_while_its_key_rotates_is_not_brought_back(staff):
    from django.utils import timezone

    from users.models import UserSession

    session = saved_session()
    UserSession.objects.create(user=staff, session_key=session.session_key, ended_at=timezone.now())
    Session.objects.all().delete()  # signed out elsewhere, or ended from the browser list, meanwhile
    session.cycle_key()
    with pytest.raises(UpdateError):
        session.save()  # what SessionMiddleware does with a modified session
    assert Session.objects.count() == 0
    assert SessionStore(session_key=session.session_key).load() == {}


@pytest.mark.django_db
def test_a_second_rotation_in_one_request_keeps_the_data_and_one_row():
    session = saved_session()
    first_key = session.session_key
    session.cycle_key()
    session["verified"] = True
    session.cycle_key()
    session.save()
    assert SessionStore(session_key=first_key).load() == {}
    assert SessionStore(session_key=session.session_key).load() == {"clinic": "Demo Clinic", "verified": True}
    assert Session.objects.count() == 1


@pytest.mark.django_db
def test_the_browser_list_entry_follows_the_key_only_while_the_session_lives(staff):
    from django.utils import timezone

    from users.models import UserSession

    session = saved_session()
    entry = UserSession.objects.create(user=staff, session_key=session.session_key)
    session.cycle_key()
    session.save()
    entry.refresh_from_db()
    assert entry.session_key == session.session_key

    Session.objects.all().delete()  # ended meanwhile: nothing is renamed, the entry keeps its key
    UserSession.objects.filter(pk=entry.pk).update(ended_at=timezone.now())
    kept = entry.session_key
    session.cycle_key()
    with pytest.raises(UpdateError):
        session.save()
    entry.refresh_from_db()
    assert entry.session_key == kept
    assert not Session.objects.exists()


@pytest.mark.django_db
def test_load_reads_a_live_row_and_nothing_from_an_expired_or_unknown_key():
    from datetime import timedelta

    from django.utils import timezone

    session = saved_session()
    assert SessionStore(session_key=session.session_key).load() == {"clinic": "Demo Clinic"}
    unknown = SessionStore(session_key="x" * 32)
    assert unknown.load() == {} and unknown.session_key is None
    Session.objects.update(expire_date=timezone.now() - timedelta(seconds=1))
    expired = SessionStore(session_key=session.session_key)
    assert expired.load() == {} and expired.session_key is None


@pytest.mark.django_db
def test_a_flush_after_a_rotation_deletes_the_row():
    session = saved_session()
    session.cycle_key()
    session.flush()
    assert Session.objects.count() == 0


@pytest.mark.django_db
def test_saving_a_session_deleted_meanwhile_is_refused_as_django_does():
    session = saved_session()
    Session.objects.all().delete()  # signed out from another browser
    session["more"] = 1
    with pytest.raises(UpdateError):
        session.save()


@pytest.mark.django_db
def test_the_code_step_statements(client, staff, enrol, login):
    """Load session and user; in one transaction lock the user's and the device's rows in one
    statement (the user first, as every 2FA change locks them), update the device and stamp
    last_login; then rotate the session key with its browser-list entry (Django's cycle_key: a new
    row, the old one deleted), mark the entry completed, and save the session's data."""
    device, _ = enrol(staff)
    client.logout()
    login(staff)
    client.get(reverse("two_factor_challenge"))  # the page the user types the code into
    code = next_code(device)
    with CaptureQueriesContext(connection) as queries:
        response = client.post(reverse("two_factor_challenge"), {"code": code})
    assert response.status_code == 302
    statements = [
        " ".join(q["sql"].split()[:2])
        for q in queries.captured_queries
        if not q["sql"].startswith(("SAVEPOINT", "RELEASE SAVEPOINT", "BEGIN"))
    ]
    assert statements[:5] == [
        'SELECT "session_data"',
        'SELECT "users_user"."id",',
        'SELECT "twofactor_encryptedtotpdevice"."id",',  # with the user's row, both locked
        'UPDATE "twofactor_encryptedtotpdevice"',
        'UPDATE "users_user"',
    ]
    assert statements[5:] == [
        'SELECT 1',  # Django's cycle_key: is the new key free? Then the new row, then the old one goes
        'INSERT INTO',
        'DELETE FROM',
        'UPDATE "users_usersession"',  # the browser-list entry follows the new key
        'UPDATE "users_usersession"',  # ... and is listed as signed in: the sign-in completed
        'UPDATE "django_session"',  # the session's data, saved at the end of the request
    ], "\n".join(statements)
    device_select = next(q["sql"] for q in queries.captured_queries if "twofactor_encryptedtotpdevice" in q["sql"])
    if connection.vendor == "postgresql":  # SQLite: BEGIN IMMEDIATE
        assert device_select.endswith('FOR UPDATE OF "users_user", "twofactor_encryptedtotpdevice"')  # user first
    assert client.get(reverse("home")).status_code == 200


@pytest.mark.django_db
def test_a_browser_ended_while_its_code_is_checked_stays_signed_out(client, staff, enrol, login, clinic_admin, monkeypatch):
    from clinic_auth.twofactor import session as twofactor_session
    from users import services as user_services
    from users.models import UserSession

    device, _ = enrol(staff)
    client.logout()
    login(staff)
    mark_verified = twofactor_session.mark_verified

    def admin_ends_every_browser_then_mark_verified(request, device, **kwargs):
        # The code was accepted; before the session is rotated, an admin signs the member out everywhere.
        user_services.user_sessions_end(user=staff, actor=clinic_admin, reason=UserSession.EndReason.ENDED_BY_ADMIN)
        return mark_verified(request, device, **kwargs)

    monkeypatch.setattr(twofactor_session, "mark_verified", admin_ends_every_browser_then_mark_verified)
    response = client.post(reverse("two_factor_challenge"), {"code": next_code(device)})

    assert response.status_code == 400  # SessionInterrupted: the session was deleted during the request
    assert not Session.objects.exists()
    assert not UserSession.objects.filter(user=staff, ended_at=None).exists()
    assert client.get(reverse("home")).url.startswith(reverse("login"))
