"""The session engine's key rotation, and what the code step costs in SQL."""

import pytest
from django.contrib.sessions.models import Session
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from clinic_auth.sessions import SessionStore
from tests.conftest import next_code


@pytest.mark.django_db
def test_cycle_key_renames_the_row_and_keeps_the_data():
    session = SessionStore()
    session["clinic"] = "Demo Clinic"
    session.save()
    old_key = session.session_key

    session.cycle_key()
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
def test_cycle_key_of_a_session_whose_row_is_gone_starts_a_new_row():
    session = SessionStore()
    session["clinic"] = "Demo Clinic"
    session.save()
    Session.objects.all().delete()  # e.g. cleared by clearsessions meanwhile
    old_key = session.session_key
    session.cycle_key()
    assert session.session_key != old_key
    assert SessionStore(session_key=session.session_key).load() == {"clinic": "Demo Clinic"}


@pytest.mark.django_db
def test_the_code_step_costs_eight_statements(client, staff, enrol, login):
    """Load session and user, lock and update the device, rename the session and its entry in the
    user's list of browsers, stamp last_login, write the session (README, Benchmark)."""
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
        if not q["sql"].startswith(("SAVEPOINT", "RELEASE SAVEPOINT"))
    ]
    assert statements == [
        'SELECT "django_session"."session_key",',
        'SELECT "users_user"."id",',
        'SELECT "twofactor_encryptedtotpdevice"."id",',
        'UPDATE "twofactor_encryptedtotpdevice"',
        'UPDATE "django_session"',
        'UPDATE "users_usersession"',
        'UPDATE "users_user"',
        'UPDATE "django_session"',
    ]
    device_select = next(q["sql"] for q in queries.captured_queries if "twofactor_encryptedtotpdevice" in q["sql"])
    assert "FOR UPDATE" in device_select or connection.vendor == "sqlite"  # SQLite: BEGIN IMMEDIATE
    assert client.get(reverse("home")).status_code == 200
