"""Add user and Deactivate ask "Confirm it's you" first, then run as submitted."""

import time

import pytest
from django.test import Client
from django.urls import reverse

from clinic_auth.twofactor import session as twofa_session
from tests.conftest import Browser, PASSWORD
from users.models import User


@pytest.fixture
def stale_admin_client(clinic_admin) -> Client:
    """A clinic admin (no 2FA, clinic without Mandatory 2FA) whose last proof is older than the window."""
    c = Browser()
    c.force_login(clinic_admin)
    session = c.session
    session[twofa_session.REAUTH_AT_KEY] = int(time.time()) - 24 * 60 * 60
    session.save()
    return c


def test_deactivate_asks_to_confirm_then_runs(stale_admin_client, staff):
    response = stale_admin_client.post(reverse("user_deactivate", args=[staff.pk]))
    confirm = response.url
    assert response.status_code == 302 and confirm.startswith(reverse("reauthenticate") + "?action=")
    staff.refresh_from_db()
    assert staff.is_active
    page = stale_admin_client.get(confirm).content.decode()
    assert "deactivate Sam Staff" in page
    stale_admin_client.post(confirm, {"password": PASSWORD})
    staff.refresh_from_db()
    assert not staff.is_active


def test_add_user_asks_to_confirm_then_runs_the_form_as_submitted(stale_admin_client):
    fields = {"first_name": "Joy", "last_name": "Nurse", "email": "joy@example.com", "username": "", "role": "staff"}
    response = stale_admin_client.post(reverse("user_invite"), fields)
    confirm = response.url
    assert response.status_code == 302 and confirm.startswith(reverse("reauthenticate") + "?action=")
    assert not User.objects.filter(email="joy@example.com").exists()
    stale_admin_client.post(confirm, {"password": "not the password"})
    assert not User.objects.filter(email="joy@example.com").exists()
    stale_admin_client.post(confirm, {"password": PASSWORD})
    assert User.objects.get(email="joy@example.com").first_name == "Joy"
