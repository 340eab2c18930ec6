"""Password guesses and floods: Change password counts in the login throttle, forgot-password
answers at once and sends mail off the request path, reset e-mails are counted per account and
address, IPv6 clients count by /64."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.conftest import PASSWORD, Browser
from users import login_throttle
from users.models import LoginThrottle, User

CHANGE = reverse("password_change")
NEW = "plum orchard lantern 42"


def change(c, old, new=NEW):
    return c.post(CHANGE, {"old_password": old, "new_password1": new, "new_password2": new})


@pytest.mark.django_db
def test_change_password_old_password_guesses_lock_like_the_login(staff):
    c = Browser(REMOTE_ADDR="203.0.113.9")
    c.force_login(staff)
    for _ in range(login_throttle.ACCOUNT_FROM_ADDRESS.limit):
        page = change(c, "not the password").content.decode()
        assert "Your old password was entered incorrectly" in page
    locked = change(c, PASSWORD).content.decode()
    assert "Too many failed sign-in attempts" in locked
    staff.refresh_from_db()
    assert staff.check_password(PASSWORD)  # the right one, after the guesses, changed nothing
    # The same lock as the login's, from that address.
    login = Browser(REMOTE_ADDR="203.0.113.9").post(reverse("login"), {"username": staff.username, "password": PASSWORD})
    assert login.status_code == 200 and "Too many failed sign-in attempts" in login.content.decode()


@pytest.mark.django_db
def test_change_password_guesses_count_per_address_across_accounts(user_factory, settings):
    users = [user_factory(username=f"guess{n}") for n in range(6)]
    ip = "198.51.100.4"
    attempts = 0
    for user in users:
        c = Browser(REMOTE_ADDR=ip)
        c.force_login(user)
        for _ in range(login_throttle.ACCOUNT_FROM_ADDRESS.limit - 1):
            change(c, "wrong")
            attempts += 1
            if attempts >= login_throttle.ADDRESS.limit:
                break
    assert LoginThrottle.objects.get(key=f"ip:{ip}").locked_until is not None


@pytest.mark.django_db
def test_the_right_old_password_changes_it(staff):
    c = Browser()
    c.force_login(staff)
    assert change(c, PASSWORD).status_code == 302
    staff.refresh_from_db()
    assert staff.check_password(NEW)


@pytest.mark.django_db
def test_ipv6_clients_count_by_their_64(staff):
    for n in range(1, login_throttle.ACCOUNT_FROM_ADDRESS.limit + 1):
        Browser(REMOTE_ADDR=f"2001:db8:1:2::{n:x}").post(reverse("login"), {"username": staff.username, "password": "wrong"})
    assert LoginThrottle.objects.get(key="ip:2001:db8:1:2::/64").failures == login_throttle.ACCOUNT_FROM_ADDRESS.limit
    same_64 = Browser(REMOTE_ADDR="2001:db8:1:2:ffff::9")
    refused = same_64.post(reverse("login"), {"username": staff.username, "password": PASSWORD})
    assert "Too many failed sign-in attempts" in refused.content.decode()
    other_64 = Browser(REMOTE_ADDR="2001:db8:1:3::1")
    assert other_64.post(reverse("login"), {"username": staff.username, "password": PASSWORD}).status_code == 302


@pytest.mark.django_db
def test_an_address_over_its_limit_is_answered_before_any_password_is_hashed(staff, monkeypatch):
    ip = "192.0.2.44"
    for _ in range(login_throttle.ACCOUNT_FROM_ADDRESS.limit):
        Browser(REMOTE_ADDR=ip).post(reverse("login"), {"username": staff.username, "password": "wrong"})
    hashed = []
    real_check = User.check_password
    monkeypatch.setattr(User, "check_password", lambda self, raw: hashed.append(raw) or real_check(self, raw))
    response = Browser(REMOTE_ADDR=ip).post(reverse("login"), {"username": staff.username, "password": PASSWORD})
    assert "Too many failed sign-in attempts" in response.content.decode()
    assert hashed == []
