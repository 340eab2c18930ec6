"""One stack of the peers part, in-process (DJANGO_SETTINGS_MODULE names the site, DATABASE_URL its database).

Migrates, creates a user with a confirmed TOTP authenticator through the stack's own models/API,
times the code step of >= 30 logins (the POST that submits a valid code after the password step,
with django.test.Client, a fresh code each: the stack's record of used codes is reset between
logins, benchmark only), counts the queries of a verified GET /protected/, and hands back a
verified session key for wrk.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import warnings

warnings.filterwarnings("ignore", message="No directory at")

USERNAME = "peer-bench-user"


class ClinicAuth:
    login_path = "/accounts/login/"

    def __init__(self):
        from bench import inprocess
        from users.models import User

        inprocess.seed(clinics=2, staff=100)
        self.user = User.objects.get(username="bench-c002-u000010")
        self.username = self.user.username
        self.device = inprocess.device_of(self.user)

    def fresh_code(self):
        from bench import inprocess

        inprocess.allow_fresh_code(self.device)
        return lambda: inprocess.code_for(self.device)

    def password_step(self, client, password):
        from django.urls import reverse

        response = client.post(reverse("login"), {"username": self.username, "password": password})
        assert response.status_code == 302, response.status_code
        chain = client.get(response.url, follow=True).redirect_chain  # to the code page, as a browser
        assert chain[-1][0].startswith(reverse("two_factor_challenge")), chain

    def code_step(self, client, code):
        from django.urls import reverse

        return client.post(reverse("two_factor_challenge"), {"code": code})


class TwoFactorAuth:
    login_path = "/account/login/"

    def __init__(self):
        from django.contrib.auth import get_user_model
        from django_otp.plugins.otp_totp.models import TOTPDevice

        from bench.common import PASSWORD

        User = get_user_model()
        User.objects.filter(username=USERNAME).delete()
        self.user = User.objects.create_user(USERNAME, password=PASSWORD)
        self.username = USERNAME
        self.device = TOTPDevice.objects.create(user=self.user, name="default", confirmed=True)

    def fresh_code(self):
        from django_otp.oath import totp

        type(self.device).objects.filter(pk=self.device.pk).update(last_t=-1, throttling_failure_count=0)
        self.device.refresh_from_db()
        d = self.device
        return lambda: f"{totp(d.bin_key, d.step, d.t0, d.digits, d.drift):0{d.digits}d}"

    def password_step(self, client, password):
        client.get(self.login_path)
        response = client.post(
            self.login_path,
            {"login_view-current_step": "auth", "auth-username": self.username, "auth-password": password},
        )
        assert response.status_code == 200 and b"token-otp_token" in response.content, response.status_code

    def code_step(self, client, code):
        return client.post(self.login_path, {"login_view-current_step": "token", "token-otp_token": code})


class Allauth:
    login_path = "/accounts/login/"

    def __init__(self):
        from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
        from django.contrib.auth import get_user_model

        from bench.common import PASSWORD

        User = get_user_model()
        User.objects.filter(username=USERNAME).delete()
        self.user = User.objects.create_user(USERNAME, password=PASSWORD)
        self.username = USERNAME
        self.secret = generate_totp_secret()
        TOTP.activate(self.user, self.secret)

    def fresh_code(self):
        from allauth.mfa import app_settings
        from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value
        from django.core.cache import cache

        cache.clear()  # allauth keeps used codes (and its rate limits) in the cache
        return lambda: format_hotp_value(hotp_value(self.secret, int(time.time()) // app_settings.TOTP_PERIOD))

    def password_step(self, client, password):
        response = client.post(self.login_path, {"login": self.username, "password": password})
        assert response.status_code == 302 and "/2fa/authenticate" in response.url, (response.status_code, response.get("Location"))
        assert client.get(response.url).status_code == 200

    def code_step(self, client, code):
        return client.post("/accounts/2fa/authenticate/", {"code": code})


class Bare:
    """Plain Django: no second factor; only the verified page's baseline."""

    def __init__(self):
        from django.contrib.auth import get_user_model

        from bench.common import PASSWORD

        User = get_user_model()
        User.objects.filter(username=USERNAME).delete()
        self.user = User.objects.create_user(USERNAME, password=PASSWORD)
        self.username = USERNAME


STACKS = {"clinicauth": ClinicAuth, "two_factor": TwoFactorAuth, "allauth": Allauth, "bare": Bare}


def logged_in_client(stack, password):
    from django.test import Client

    client = Client()
    if isinstance(stack, Bare):
        assert client.login(username=stack.username, password=password)
        return client, None
    code = stack.fresh_code()
    stack.password_step(client, password)
    if time.time() % 30 > 29.5:  # allauth accepts the current time step only: no code at a step's very end
        time.sleep(30 - time.time() % 30 + 0.05)
    code = code()
    started = time.perf_counter()
    response = stack.code_step(client, code)
    elapsed = time.perf_counter() - started
    assert response.status_code == 302, (type(stack).__name__, response.status_code, response.content[:300])
    return client, elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--stack", choices=list(STACKS), required=True)
    parser.add_argument("--logins", type=int, default=30)
    parser.add_argument("--migrate-only", action="store_true", help="Only create the tables (run in parallel, untimed).")
    args = parser.parse_args()

    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from bench.common import PASSWORD, percentile, write_json

    call_command("migrate", verbosity=0, interactive=False)
    if args.migrate_only:
        write_json(args.out, {"stack": args.stack, "migrated": True})
        return
    stack = STACKS[args.stack]()
    times = []
    client = None
    if not isinstance(stack, Bare):
        for i in range(args.logins + 2):  # the first two warm up
            client, elapsed = logged_in_client(stack, PASSWORD)
            if i >= 2:
                times.append(elapsed)
    else:
        client, _ = logged_in_client(stack, PASSWORD)
    # The session of the last login, verified, for the queries and for wrk.
    assert client.get("/protected/").status_code == 200
    counts = []
    for _ in range(10):
        with CaptureQueriesContext(connection) as captured:
            response = client.get("/protected/")
        assert response.status_code == 200, response.status_code
        counts.append(len(captured))
    result = {
        "stack": args.stack,
        "settings": os.environ["DJANGO_SETTINGS_MODULE"],
        "session_cookie_name": settings.SESSION_COOKIE_NAME,
        "session_key": client.cookies[settings.SESSION_COOKIE_NAME].value,
        "queries_per_request": max(counts),
        "queries_constant": len(set(counts)) == 1,
        "statements": [q["sql"][:80] for q in captured.captured_queries],
        "page_bytes": len(response.content),
    }
    if times:
        result.update(
            logins=len(times),
            code_step_median_ms=round(statistics.median(times) * 1000, 2),
            code_step_p95_ms=round(percentile(times, 95) * 1000, 2),
        )
    write_json(args.out, result)


if __name__ == "__main__":
    main()
