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

from clinic_auth.http import throttle_address

from .login_throttle import Rule, _row_for_update

WINDOW = timedelta(hours=1)
ADDRESS = Rule("reset-ip", 10)  # requests from one address per hour, whatever they name
# E-mails one account (or one unknown name) may be sent per hour from one address; and in all, from
# every address, a higher cap: a stranger elsewhere cannot spend the member's own three.
ACCOUNT_FROM_ADDRESS = Rule("reset-acct-ip", 3)
ACCOUNT = Rule("reset-acct", 10)


def account_key(*, user_pk: int | None, identifier: str) -> str:
    # An unknown name is counted too, so a matching and a non-matching request do the same work.
    return f"{user_pk}" if user_pk is not None else f"?{identifier.casefold()[:150]}"


def allow_request(*, account_keys: list[str], ip: str | None) -> bool:
    """Count one request against the address and each account from that address; when both are
    within their limits, count it against each account's total too. True when every count is
    within its limit. (A refused request does not spend the account's total.)"""
    now = timezone.now()
    address = throttle_address(ip)
    here = [(ADDRESS, f"{ADDRESS.prefix}:{address}")]
    here += [(ACCOUNT_FROM_ADDRESS, f"{ACCOUNT_FROM_ADDRESS.prefix}:{account}|{address}") for account in account_keys]
    in_all = [(ACCOUNT, f"{ACCOUNT.prefix}:{account}") for account in account_keys]
    with transaction.atomic():
        # One lock order for every request (these, then the totals), so two never deadlock.
        return _count(here, now) and _count(in_all, now)


def _count(keys: list[tuple[Rule, str]], now) -> bool:
    allowed = True
    for rule, key in sorted(keys, key=lambda pair: pair[1]):
        row = _row_for_update(key, now)
        if now - row.window_started_at > WINDOW:
            row.failures, row.window_started_at = 0, now
        row.failures += 1
        row.save(update_fields=["failures", "window_started_at"])
        allowed = allowed and row.failures <= rule.limit
    return allowed
