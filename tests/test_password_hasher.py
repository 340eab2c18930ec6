"""Passwords: Django's Argon2 hasher at OWASP's parameters, old hashes upgraded at sign-in, and a
per-worker bound on checks beyond which the answer is an immediate 503."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.contrib.auth.hashers import Argon2PasswordHasher, check_password, identify_hasher
from django.test import Client
from django.urls import reverse

from clinic_auth import passwords
from clinic_auth.passwords import ClinicArgon2PasswordHasher, PasswordChecksBusy, PasswordCheckSlots
from tests.conftest import PASSWORD
from users.models import User

SHIPPED_HASHERS = ["clinic_auth.passwords.ClinicArgon2PasswordHasher", "django.contrib.auth.hashers.PBKDF2PasswordHasher"]


def test_the_shipped_hasher_is_djangos_argon2id_at_owasps_parameters():
    from clinic_auth import settings as shipped

    assert shipped.PASSWORD_HASHERS == SHIPPED_HASHERS
    hasher = ClinicArgon2PasswordHasher()
    assert isinstance(hasher, Argon2PasswordHasher) and hasher.algorithm == "argon2"
    encoded = hasher.encode("a clinic password", hasher.salt())
    assert encoded.startswith("argon2$argon2id$v=19$m=19456,t=2,p=1$")  # OWASP: 19 MiB, 2 passes, 1 lane
    assert Argon2PasswordHasher().verify("a clinic password", encoded)  # the same kind of hash as Django's
    assert not hasher.verify("another password", encoded)
    # Only parameters differ: every method is Django's own.
    assert {name for name in vars(ClinicArgon2PasswordHasher) if not name.startswith("__")} == {
        "time_cost", "memory_cost", "parallelism"
    }


@pytest.mark.django_db
def test_a_hash_with_djangos_default_parameters_is_upgraded_at_the_next_sign_in(settings, staff):
    settings.PASSWORD_HASHERS = SHIPPED_HASHERS
    djangos = Argon2PasswordHasher()
    staff.password = djangos.encode(PASSWORD, djangos.salt())
    staff.save(update_fields=["password"])
    assert identify_hasher(staff.password).decode(staff.password)["memory_cost"] == 102400
    response = Client().post(reverse("login"), {"username": staff.username, "password": PASSWORD})
    assert response.status_code == 302
    staff.refresh_from_db()
    assert staff.password.startswith("argon2$argon2id$v=19$m=19456,t=2,p=1$")
    assert check_password(PASSWORD, staff.password)


def test_checks_beyond_the_bound_are_refused_at_once_and_a_slot_is_given_back():
    slots = PasswordCheckSlots(running=1, waiting=1, timeout=5)
    holding, release = threading.Event(), threading.Event()

    def hold():
        with slots.slot():
            holding.set()
            release.wait(5)

    def wait_then_check():
        with slots.slot():
            return "checked"

    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(hold)
        holding.wait(5)
        waiter = pool.submit(wait_then_check)  # waits for the running check
        while slots.waiting == 0:
            pass
        with pytest.raises(PasswordChecksBusy):  # one running, one waiting: a third is refused at once
            with slots.slot():
                pass
        release.set()
        first.result(5)
        assert waiter.result(5) == "checked"  # the waiting check got the slot once the first ended
    assert slots.running == 0 and slots.waiting == 0


def test_a_wait_longer_than_the_timeout_is_refused():
    slots = PasswordCheckSlots(running=1, waiting=5, timeout=0.05)
    with slots.slot():
        with ThreadPoolExecutor(1) as pool:
            future = pool.submit(lambda: slots.slot().__enter__())
            with pytest.raises(PasswordChecksBusy):  # it waited its 0.05 s for the slot held here
                future.result(5)
    assert slots.running == 0 and slots.waiting == 0


def test_a_slot_is_reentrant_for_djangos_upgrade_inside_a_check():
    slots = PasswordCheckSlots(running=1, waiting=0, timeout=0)
    with slots.slot():
        with slots.slot():  # set_password inside check_password's setter, on the same thread
            assert slots.running == 1
    assert slots.running == 0


@pytest.mark.django_db
def test_a_sign_in_when_the_worker_is_busy_is_a_503_with_retry_after(settings, staff, monkeypatch):
    settings.PASSWORD_CHECKS_AT_ONCE = 1
    settings.PASSWORD_CHECKS_WAITING = 0
    started, release = threading.Event(), threading.Event()
    real_check = User.check_password

    def slow_check(self, raw):
        with passwords.password_check_slot():
            started.set()
            release.wait(5)
        return real_check(self, raw)

    with ThreadPoolExecutor(1) as pool:
        monkeypatch.setattr(User, "check_password", slow_check)
        pool.submit(lambda: User(username="x").check_password("x"))
        assert started.wait(5)
        monkeypatch.setattr(User, "check_password", real_check)
        response = Client().post(reverse("login"), {"username": staff.username, "password": PASSWORD})
        release.set()
    assert response.status_code == 503
    assert response["Retry-After"] == str(passwords.RETRY_AFTER_SECONDS)
    assert "Busy: try again in a moment" in response.content.decode()
    # Once the worker is free the same sign-in goes through.
    assert Client().post(reverse("login"), {"username": staff.username, "password": PASSWORD}).status_code == 302
