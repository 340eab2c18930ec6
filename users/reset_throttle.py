"""How many password-reset e-mails an address may ask for, and an account may receive.

Counted in the LoginThrottle table under their own key prefixes, so every app
server process sees the same counts, with the row lock that the password
throttle uses. A refused request gets the same answer as any other; it only
sends nothing.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from .login_throttle import Rule, _row_for_update

WINDOW = timedelta(hours=1)
ADDRESS = Rule("reset-ip", 10)  # requests from one address per hour, whatever they name
ACCOUNT = Rule("reset-acct", 3)  # e-mails one account (or one unknown name) may be sent per hour


def account_key(*, user_pk: int | None, identifier: str) -> str:
    # An unknown name is counted too, so a matching and a non-matching request do the same work.
    return f"{ACCOUNT.prefix}:{user_pk}" if user_pk is not None else f"{ACCOUNT.prefix}:?{identifier.casefold()[:150]}"


def allow_request(*, account_keys: list[str], ip: str | None) -> bool:
    """Count one request against the address and each account; True when all are within limits."""
    now = timezone.now()
    keys = [(ADDRESS, f"{ADDRESS.prefix}:{ip or 'unknown'}")] + [(ACCOUNT, key) for key in account_keys]
    allowed = True
    with transaction.atomic():
        for rule, key in sorted(keys, key=lambda pair: pair[1]):  # one lock order, no deadlocks
            row = _row_for_update(key, now)
            if now - row.window_started_at > WINDOW:
                row.failures, row.window_started_at = 0, now
            row.failures += 1
            row.save(update_fields=["failures", "window_started_at"])
            allowed = allowed and row.failures <= rule.limit
    return allowed
