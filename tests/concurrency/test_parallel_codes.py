"""Throttling and one-time codes hold under real parallel requests.

gunicorn runs 4 worker processes against PostgreSQL (see conftest.py); each
test logs in several independent sessions through /accounts/login/, then
releases their submissions at the same instant from threads. The counts
are printed (run with -s) and also checked in the database.
"""

from __future__ import annotations

import math
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.concurrency.harness import WORKERS, Browser, Response
from users import login_throttle
from users.forms import LoginForm

pytestmark = pytest.mark.concurrency

CHALLENGE = "/accounts/two-factor/"
REPLAYED = "already been used"
INCORRECT_PASSWORD = str(LoginForm.error_messages["invalid_login"])  # a gettext_lazy string
PASSWORD_THROTTLED = str(LoginForm.error_messages["throttled"]).split("{")[0]


def report(title: str, **counts) -> None:
    line = ", ".join(f"{key}={value}" for key, value in counts.items())
    print(f"\n[concurrency] {title}: {line}", file=sys.stderr, flush=True)


def in_parallel(jobs) -> tuple[list[Response], float]:
    """Run callables at the same instant (one thread each); returns results and the wall time."""
    barrier = threading.Barrier(len(jobs))

    def run(job):
        barrier.wait()
        return job()

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        results = list(pool.map(run, jobs))
    return results, time.monotonic() - started


def sessions_at_challenge(deployment, username: str, count: int, *, recovery: bool = False) -> list[tuple[Browser, str]]:
    """`count` separate sessions of the user, past the password, each with its challenge form's CSRF token."""
    path = CHALLENGE + ("?method=recovery" if recovery else "")

    def one(_):
        browser = deployment.logged_in(username)
        return browser, browser.csrf(path)

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        return list(pool.map(one, range(count)))


def submit(browser: Browser, token: str, code: str, *, recovery: bool = False):
    fields = {"code": code, "next": "/home/"}
    if recovery:
        fields["method"] = "recovery"
    return lambda: browser.post_form(CHALLENGE + ("?method=recovery" if recovery else ""), fields, csrf=token)


def accepted(response: Response) -> bool:
    return response.status == 302 and response.location.endswith("/home/")


def refused(response: Response) -> bool:
    return response.status == 200 and "Two-Factor Authentication" in response.text


def throttle_allows(seconds: float, factor: int = 1) -> int:
    """Evaluations django-otp's throttle lets through in a window: the n-th needs factor*(2^(n-1)-1) s."""
    return 1 + int(math.floor(math.log2(seconds / factor + 1)))


def wait_out_throttle(deployment, username: str, kind: str) -> None:
    """Move the device's last failure back past django-otp's delay (2^(n-1) s after the n-th), as if
    that long had passed: the server runs in its own processes, beyond the test's clock."""
    deployment.shell(
        f"""
        from datetime import timedelta
        user = User.objects.get(username={username!r})
        device = devices.confirmed_totp_device(user) if {kind!r} == "totp" else devices.recovery_device(user)
        if device.throttling_failure_count:
            delay = timedelta(seconds=2 ** (device.throttling_failure_count - 1) + 1)
            type(device).objects.filter(pk=device.pk).update(throttling_failure_timestamp=device.throttling_failure_timestamp - delay)
        print(json.dumps(device.throttling_failure_count))
        """
    )


def unused_code(deployment, username: str) -> str:
    """A code the device accepts now: in its window (now + drift ± 1 step) and later than last_t."""
    state = deployment.shell(
        f"""
        device = devices.confirmed_totp_device(User.objects.get(username={username!r}))
        print(json.dumps({{"drift": device.drift, "last_t": device.last_t}}))
        """
    )
    now_t = int(time.time()) // 30
    for step in range(now_t + state["drift"] - 1, now_t + state["drift"] + 2):
        if step > state["last_t"]:
            return deployment.code(username, offset_steps=step - now_t)
    raise AssertionError(f"no unused code in the window: {state}")


def test_forty_parallel_wrong_guesses_get_no_more_evaluations_than_the_throttle_allows(deployment):
    username = "guesser"
    valid = {deployment.code(username, offset_steps=step) for step in range(-3, 4)}
    wrong = next(code for code in ("000000", "111111", "222222", "333333") if code not in valid)
    sessions = sessions_at_challenge(deployment, username, 40)

    responses, seconds = in_parallel([submit(browser, token, wrong) for browser, token in sessions])

    state = deployment.shell(
        """
        from clinic_auth.twofactor.models import AuditEvent
        device = devices.confirmed_totp_device(User.objects.get(username="guesser"))
        print(json.dumps({"failures": device.throttling_failure_count, "last_t": device.last_t}))
        """
    )
    evaluated = deployment.failed_evaluations(username, "totp")
    allowed = throttle_allows(seconds)
    statuses = sorted({r.status for r in responses})
    report(
        "40 parallel wrong codes",
        requests=len(responses),
        refused=sum(refused(r) for r in responses),
        accepted=sum(accepted(r) for r in responses),
        evaluated=evaluated,
        device_failure_count=state["failures"],
        throttle_allows=allowed,
        window_seconds=round(seconds, 2),
        statuses=statuses,
    )
    assert statuses == [200]
    assert all(refused(r) for r in responses)
    # The throttle lets through 1 evaluation, then one more after 1 s, after 2 s more, ...
    assert 1 <= evaluated <= allowed
    assert evaluated <= 3
    # ... and each evaluated wrong code is counted, none lost to a parallel write.
    assert state["failures"] == evaluated


def test_the_same_valid_code_from_two_sessions_at_once_is_accepted_exactly_once(deployment):
    username = "twin"
    code = unused_code(deployment, username)
    (first, first_token), (second, second_token) = sessions_at_challenge(deployment, username, 2)

    responses, seconds = in_parallel([submit(first, first_token, code), submit(second, second_token, code)])

    replays = deployment.shell(
        """
        from clinic_auth.twofactor.models import AuditEvent
        print(json.dumps(AuditEvent.objects.filter(action=AuditEvent.Action.CODE_REPLAYED, target_username="twin").count()))
        """
    )
    report(
        "2 parallel identical valid TOTP codes",
        accepted=sum(accepted(r) for r in responses),
        refused=sum(refused(r) for r in responses),
        replay_audit_events=replays,
        window_seconds=round(seconds, 2),
    )
    assert sorted(accepted(r) for r in responses) == [False, True]
    loser_browser, loser = (second, responses[1]) if accepted(responses[0]) else (first, responses[0])
    assert refused(loser)
    assert REPLAYED in loser.text
    assert replays == 1
    # The losing session is still held at the challenge; the winner reaches its pages.
    assert loser_browser.request("/home/").location.startswith(CHALLENGE)
    winner = first if loser_browser is second else second
    assert winner.request("/home/").status == 200

    # Later, from a new session, the used code is refused as a replay (not merely throttled).
    wait_out_throttle(deployment, username, "totp")
    (third, token), = sessions_at_challenge(deployment, username, 1)
    again = submit(third, token, code)()
    report("used TOTP code resubmitted later", accepted=int(accepted(again)), replay_message=int(REPLAYED in again.text))
    assert refused(again) and REPLAYED in again.text


def test_one_recovery_code_from_five_sessions_at_once_works_exactly_once(deployment):
    username = "recoverer"
    code = deployment.recovery_codes[username][0]
    sessions = sessions_at_challenge(deployment, username, 5, recovery=True)

    responses, seconds = in_parallel([submit(browser, token, code, recovery=True) for browser, token in sessions])

    left = deployment.shell(
        """
        print(json.dumps(devices.recovery_codes_left(User.objects.get(username="recoverer"))))
        """
    )
    evaluated = deployment.failed_evaluations(username, "recovery")
    report(
        "5 parallel submissions of one recovery code",
        accepted=sum(accepted(r) for r in responses),
        refused=sum(refused(r) for r in responses),
        codes_left_in_db=left,
        failed_evaluations=evaluated,
        window_seconds=round(seconds, 2),
    )
    assert sum(accepted(r) for r in responses) == 1
    assert sum(refused(r) for r in responses) == 4
    assert left == 9
    assert evaluated <= throttle_allows(seconds)  # the losers were throttled, not all evaluated

    # The used code never works again, even once the throttle has let go.
    wait_out_throttle(deployment, username, "recovery")
    (browser, token), = sessions_at_challenge(deployment, username, 1, recovery=True)
    again = submit(browser, token, code, recovery=True)()
    report("used recovery code resubmitted later", accepted=int(accepted(again)))
    assert refused(again)
    # ... while an unused one still does, so the refusal above was about the used code.
    wait_out_throttle(deployment, username, "recovery")
    token = browser.csrf(CHALLENGE + "?method=recovery")
    fresh = submit(browser, token, deployment.recovery_codes[username][1], recovery=True)()
    assert accepted(fresh)


def test_parallel_wrong_passwords_lock_the_account_across_worker_processes(deployment):
    """Point 2: the password throttle lives in the database, so it holds across gunicorn workers."""
    username = "pwtarget"
    limit = login_throttle.ACCOUNT_FROM_ADDRESS.limit
    attempts = limit + 10
    browsers = [deployment.browser() for _ in range(attempts)]
    tokens = [browser.csrf("/accounts/login/") for browser in browsers]

    def wrong(browser, token):
        fields = {"username": username, "password": "wrong password 123"}
        return lambda: browser.post_form("/accounts/login/", fields, csrf=token)

    responses, seconds = in_parallel([wrong(b, t) for b, t in zip(browsers, tokens)])

    evaluated = sum(INCORRECT_PASSWORD in r.text for r in responses)
    locked_out = sum(PASSWORD_THROTTLED in r.text for r in responses)
    correct = deployment.browser().log_in(username)
    report(
        f"{attempts} parallel wrong passwords (limit {limit})",
        evaluated=evaluated,
        refused_as_throttled=locked_out,
        correct_password_afterwards_status=correct.status,
        window_seconds=round(seconds, 2),
    )
    assert {r.status for r in responses} == {200}
    assert evaluated + locked_out == attempts
    # Every attempt is counted before its password is checked, so exactly the limit get checked.
    assert evaluated == limit
    assert correct.status == 200 and PASSWORD_THROTTLED in correct.text
