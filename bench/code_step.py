"""Server time of the code step, against the full login it is part of.

In-process with the test Client (no network), following the login's redirect
to the code page as a browser does, a fresh valid code every
iteration (the device's last used step is reset between logins, benchmark
only). Timed separately: the password POST (the configured hasher, Argon2)
and the code POST. Also times one password verification with Argon2 and with
Django's PBKDF2, to show why Argon2 is the first hasher.
"""

from __future__ import annotations

import argparse
import os
import re
import time

from bench import common, inprocess

USERNAME = "bench-c002-u000004"


def hasher_times(password: str, *, iterations: int) -> dict:
    from django.contrib.auth.hashers import Argon2PasswordHasher, PBKDF2PasswordHasher

    from clinic_auth.passwords import ClinicArgon2PasswordHasher

    result = {}
    # ClinicAuth's Argon2 parameters, Django's default ones (the peers'), and PBKDF2.
    for name, hasher in (("argon2 (ClinicAuth)", ClinicArgon2PasswordHasher()), ("argon2 (Django's defaults)", Argon2PasswordHasher()),
                         ("pbkdf2_sha256", PBKDF2PasswordHasher())):
        encoded = hasher.encode(password, hasher.salt())
        times = []
        for _ in range(iterations):
            started = time.perf_counter()
            assert hasher.verify(password, encoded)
            times.append(time.perf_counter() - started)
        params = {"algorithm": hasher.algorithm}
        if isinstance(hasher, Argon2PasswordHasher):
            params.update(time_cost=hasher.time_cost, memory_cost_kib=hasher.memory_cost, parallelism=hasher.parallelism)
        else:
            params.update(iterations=hasher.iterations)
        result[name] = {**params, "verify_median_ms": common.median_ms(times)}
    return result


def commits_in(statements: list[str]) -> int:
    """How many commits the statements cost: each COMMIT, and each write outside BEGIN ... COMMIT
    (autocommit: a transaction, and a WAL flush, of its own)."""
    commits, in_transaction = 0, False
    for sql in statements:
        verb = sql.split(None, 1)[0].upper()
        if verb == "BEGIN":
            in_transaction = True
        elif verb in ("COMMIT", "ROLLBACK"):
            in_transaction = False
            commits += verb == "COMMIT"
        elif not in_transaction and (verb in ("INSERT", "UPDATE", "DELETE") or (verb == "WITH" and re.search(r"\bUPDATE\b", sql, re.IGNORECASE))):
            commits += 1
    return commits


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--hasher-iterations", type=int, default=5, help="Checks per hasher in the Argon2/PBKDF2 comparison.")
    args = parser.parse_args()

    inprocess.setup_django()
    from django.conf import settings
    from django.contrib.auth.hashers import get_hasher
    from django.test import Client
    from django.urls import reverse

    from users.models import User

    inprocess.migrate()
    inprocess.seed(clinics=2, staff=100)
    user = User.objects.get(username=USERNAME)
    device = inprocess.device_of(user)
    login_url, challenge_url = reverse("login"), reverse("two_factor_challenge")

    password_times, code_times = [], []
    for i in range(args.iterations + 2):  # the first two warm up
        inprocess.allow_fresh_code(device)
        client = Client()
        started = time.perf_counter()
        response = client.post(login_url, {"username": USERNAME, "password": common.PASSWORD})
        password_done = time.perf_counter()
        assert response.status_code == 302, response.status_code
        # The browser follows the redirects to the code page (untimed), then the user types the code.
        assert client.get(response.url, follow=True).redirect_chain[-1][0].startswith(challenge_url)
        code = inprocess.code_for(device)  # computed outside the timed span
        code_started = time.perf_counter()
        response = client.post(challenge_url, {"code": code})
        code_done = time.perf_counter()
        assert response.status_code == 302 and response.url == reverse("home"), (response.status_code, response.get("Location"))
        if i >= 2:
            password_times.append(password_done - started)
            code_times.append(code_done - code_started)

    # What the code step does in SQL (one more login, counted, not timed).
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    inprocess.allow_fresh_code(device)
    client = Client()
    client.get(client.post(login_url, {"username": USERNAME, "password": common.PASSWORD}).url, follow=True)
    code = inprocess.code_for(device)
    with CaptureQueriesContext(connection) as queries:
        assert client.post(challenge_url, {"code": code}).status_code == 302
    statements = [q["sql"].split(None, 1)[0].upper() for q in queries.captured_queries]
    commits = commits_in([q["sql"] for q in queries.captured_queries])

    # The verification alone (totp_verify: device lookup, locked verify_token, save),
    # without the session rotation and the rest of the request.
    from clinic_auth.twofactor.totp.services import totp_verify

    check_times = []
    for _ in range(args.iterations):
        inprocess.allow_fresh_code(device)
        code = inprocess.code_for(device)
        started = time.perf_counter()
        assert totp_verify(user=user, token=code, ip_address="127.0.0.1") is not None
        check_times.append(time.perf_counter() - started)

    passkey_times, passkey_statements = passkey_step(user, args.iterations, login_url, challenge_url)

    code_ms = common.median_ms(code_times)
    password_ms = common.median_ms(password_times)
    hasher = get_hasher()
    common.write_json(
        args.out,
        {
            "iterations": args.iterations,
            "code_step_median_ms": code_ms,
            "code_step_p95_ms": round(common.percentile(code_times, 95) * 1000, 2),
            "load_average_1min_after": round(os.getloadavg()[0], 2),
            "check_code_median_ms": common.median_ms(check_times),
            "code_step_sql_statements": len(statements),
            "code_step_commits": commits,
            "passkey_step_median_ms": common.median_ms(passkey_times),
            "passkey_step_sql_statements": passkey_statements,
            "password_step_median_ms": password_ms,
            "full_login_median_ms": round(code_ms + password_ms, 2),
            "code_step_share_of_login": common.ratio(code_ms, code_ms + password_ms),
            "password_hasher": settings.PASSWORD_HASHERS[0],
            "hasher_algorithm": hasher.algorithm,
            "hashers": hasher_times(common.PASSWORD, iterations=args.hasher_iterations),
        },
    )


def passkey_step(user, iterations: int, login_url: str, challenge_url: str) -> tuple[list[float], int]:
    """Server time of the assertion POST that signs in with a passkey, beside the code step.

    The key is a software authenticator (tests/softkey.py) added through the real endpoints; each
    login asks for a fresh challenge (untimed) and signs it outside the timed span.
    """
    import json

    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse

    from tests.softkey import SoftKey

    begin_reg, complete_reg = reverse("otp_webauthn:credential-registration-begin"), reverse(
        "otp_webauthn:credential-registration-complete"
    )
    begin_auth, complete_auth = reverse("otp_webauthn:credential-authentication-begin"), reverse(
        "otp_webauthn:credential-authentication-complete"
    )

    def post_json(client, url, data=None):
        return client.post(url, data=json.dumps(data or {}), content_type="application/json")

    key = SoftKey()
    client = Client()
    client.force_login(user)
    from django_otp import DEVICE_ID_SESSION_KEY

    from clinic_auth.twofactor import session as twofa_session

    session = client.session
    session[DEVICE_ID_SESSION_KEY] = inprocess.device_of(user).persistent_id
    # Adding a key is a sensitive action: prove the factor "just now", as a real sign-in does.
    session[twofa_session.REAUTH_AT_KEY] = int(time.time())
    session.save()
    options = post_json(client, begin_reg).json()
    assert post_json(client, complete_reg, key.register(options)).status_code == 200

    times, statements = [], 0
    for i in range(iterations + 3):  # the first two warm up; the last one is counted, not timed
        client = Client()
        response = client.post(login_url, {"username": user.username, "password": common.PASSWORD})
        assert client.get(response.url, follow=True).redirect_chain[-1][0].startswith(challenge_url)
        assertion = key.assertion(post_json(client, begin_auth).json())
        body = json.dumps(assertion)
        if i == iterations + 2:
            with CaptureQueriesContext(connection) as queries:
                assert client.post(complete_auth, data=body, content_type="application/json").status_code == 200
            statements = len(queries.captured_queries)
            break
        started = time.perf_counter()
        response = client.post(complete_auth, data=body, content_type="application/json")
        elapsed = time.perf_counter() - started
        assert response.status_code == 200, response.content
        if i >= 2:
            times.append(elapsed)
    return times, statements


if __name__ == "__main__":
    main()
