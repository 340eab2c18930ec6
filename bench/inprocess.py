"""Django-side helpers for benchmark steps that run in-process (test Client, ORM)."""

from __future__ import annotations

import os
import sys
import time


def setup_django(settings_module: str = "clinic_auth.settings") -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", settings_module)
    import django

    django.setup()


def migrate() -> None:
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def seed(*, clinics: int, staff: int) -> float:
    """Run seed_bench; returns the seconds it took."""
    from django.core.management import call_command

    started = time.perf_counter()
    call_command("seed_bench", clinics=clinics, staff=staff, stdout=sys.stderr)
    return time.perf_counter() - started


def device_of(user):
    """The user's confirmed authenticator, through the 2FA rules (never a model import)."""
    from clinic_auth.twofactor import devices

    device = devices.confirmed_totp_device(user)
    if device is None:
        raise RuntimeError(f"{user.username} has no confirmed authenticator app")
    return device


def code_for(device, *, offset_steps: int = 0) -> str:
    from tests.conftest import totp_for

    return totp_for(device, offset_steps=offset_steps)


def allow_fresh_code(device) -> None:
    """Forget the last used time step, so the current code is accepted again (benchmark only)."""
    type(device).objects.filter(pk=device.pk).update(last_t=-1, throttling_failure_count=0)
    device.refresh_from_db()


def verified_client(username: str, password: str):
    """A test Client that logged in through the real login and challenge pages."""
    from django.test import Client
    from django.urls import reverse

    from users.models import User

    user = User.objects.get(username=username)
    device = device_of(user)
    allow_fresh_code(device)
    client = Client()
    response = client.post(reverse("login"), {"username": username, "password": password})
    assert response.status_code == 302, f"login failed for {username}: {response.status_code}"
    response = client.post(reverse("two_factor_challenge"), {"code": code_for(device)})
    assert response.status_code == 302, f"code refused for {username}: {response.status_code}"
    response = client.get(reverse("home"))
    assert response.status_code == 200, f"home after login: {response.status_code}"
    return client


def timed_get(client, path: str, *, iterations: int, warmup: int = 3, expect: int = 200) -> dict:
    """Median server time and the query count of every request (they must all be equal)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from bench.common import median_ms

    for _ in range(warmup):
        client.get(path)
    times, counts = [], []
    for _ in range(iterations):
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            response = client.get(path)
            times.append(time.perf_counter() - started)
        if response.status_code != expect:
            raise AssertionError(f"GET {path}: {response.status_code}, expected {expect}")
        counts.append(len(queries))
    return {
        "path": path,
        "median_ms": median_ms(times),
        "queries": counts[0],
        "queries_constant": len(set(counts)) == 1,
        "iterations": iterations,
    }
