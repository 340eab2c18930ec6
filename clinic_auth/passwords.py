"""Passwords: the hasher's parameters, a bound on checks running at once, and the refusals they raise.

The hasher is Django's Argon2PasswordHasher with other parameters and nothing else. Django's
defaults (100 MiB, 2 passes, 8 lanes on 8 threads) cost 0.29-0.34 s of CPU per check on the 2-core
bench machine; at 8 a.m., when a whole clinic signs in, those checks took every core and page views
queued behind them. OWASP's first recommended Argon2id setting (19 MiB, 2 passes, 1 lane) costs
about 42 ms of one core, an eighth (docs/security.md, "Passwords"). Hashes made with other
parameters still verify, and Django re-hashes them with these at the next correct sign-in
(Argon2PasswordHasher.must_update), so existing accounts move over without a reset.

Each worker process runs at most PASSWORD_CHECKS_AT_ONCE checks at a time; up to
PASSWORD_CHECKS_WAITING more wait, each for at most PASSWORD_CHECK_WAIT_SECONDS. A check beyond
that raises PasswordChecksBusy, which PasswordChecksBusyMiddleware answers at once with 503 and
Retry-After: a flood of password guesses never fills a worker's threads or keeps anyone waiting
20 seconds.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from datetime import datetime

from django.conf import settings
from django.contrib.auth.hashers import Argon2PasswordHasher, make_password
from django.core.signals import setting_changed
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

RETRY_AFTER_SECONDS = 5


class ClinicArgon2PasswordHasher(Argon2PasswordHasher):
    """Argon2id, m = 19 MiB, t = 2, p = 1 (OWASP Password Storage Cheat Sheet); "argon2" hashes as Django's."""

    time_cost = 2
    memory_cost = 19 * 1024  # KiB
    parallelism = 1


class PasswordChecksBusy(Exception):
    """This worker is checking as many passwords as it may, and as many more are waiting."""


class PasswordAttemptsThrottled(Exception):
    """Too many wrong passwords for this account from this address, or from this address; `until`: when it ends."""

    def __init__(self, until: datetime):
        super().__init__(until)
        self.until = until


class PasswordCheckSlots:
    """At most `running` checks at once in this process, `waiting` more queued, each for at most `timeout` s.

    Re-entrant per thread: Django re-hashes an outdated hash inside the check that accepted it.
    """

    def __init__(self, *, running: int, waiting: int, timeout: float):
        self.running_limit, self.waiting_limit, self.timeout = running, waiting, timeout
        self.running = self.waiting = 0
        self.condition = threading.Condition()
        self.depth = threading.local()

    @contextmanager
    def slot(self):
        if getattr(self.depth, "n", 0):
            self.depth.n += 1
            try:
                yield
            finally:
                self.depth.n -= 1
            return
        with self.condition:
            if self.running >= self.running_limit:
                if self.waiting >= self.waiting_limit:
                    raise PasswordChecksBusy()
                self.waiting += 1
                try:
                    if not self.condition.wait_for(lambda: self.running < self.running_limit, self.timeout):
                        raise PasswordChecksBusy()
                finally:
                    self.waiting -= 1
            self.running += 1
        self.depth.n = 1
        try:
            yield
        finally:
            self.depth.n = 0
            with self.condition:
                self.running -= 1
                self.condition.notify()


_slots: PasswordCheckSlots | None = None
_slots_lock = threading.Lock()


def password_check_slot():
    """A context manager around one password check or hash (raises PasswordChecksBusy)."""
    global _slots
    if _slots is None:
        with _slots_lock:
            if _slots is None:
                _slots = PasswordCheckSlots(
                    running=settings.PASSWORD_CHECKS_AT_ONCE,
                    waiting=settings.PASSWORD_CHECKS_WAITING,
                    timeout=settings.PASSWORD_CHECK_WAIT_SECONDS,
                )
    return _slots.slot()


def _forget_slots(*, setting: str, **kwargs) -> None:
    """A changed bound (a test's settings) takes effect at the next check."""
    global _slots
    if setting.startswith("PASSWORD_CHECK"):
        with _slots_lock:
            _slots = None


setting_changed.connect(_forget_slots)


def hash_password(raw_password: str) -> str:
    """make_password, within the bound."""
    with password_check_slot():
        return make_password(raw_password)


class PasswordChecksBusyMiddleware:
    """A password check refused for load is a 503 with Retry-After, answered at once."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, PasswordChecksBusy):
            return None
        response = render(request, "503_busy.html", {"retry_after": RETRY_AFTER_SECONDS}, status=503)
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
