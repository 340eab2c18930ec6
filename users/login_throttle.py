"""Password-attempt throttling, per account (from one address) and per address.

An attacker can lock an account only from their own address, and only for
LOCKOUT; the same account keeps working from the clinic's computers. A
successful login clears only that account's counter for that address, never
another account's or the address-wide one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from clinic_auth.http import throttle_address

from .models import LoginThrottle

WINDOW = timedelta(minutes=15)
LOCKOUT = timedelta(minutes=15)


@dataclass(frozen=True)
class Rule:
    prefix: str
    limit: int


ACCOUNT_FROM_ADDRESS = Rule("acct-ip", 10)
ADDRESS = Rule("ip", 50)


def _keys(username: str, ip: str | None) -> list[tuple[Rule, str]]:
    account = (username or "").strip().casefold()[:150]
    address = throttle_address(ip)
    return [
        (ACCOUNT_FROM_ADDRESS, f"{ACCOUNT_FROM_ADDRESS.prefix}:{account}|{address}"),
        (ADDRESS, f"{ADDRESS.prefix}:{address}"),
    ]


def locked_until(*, username: str, ip: str | None) -> datetime | None:
    keys = [key for _, key in _keys(username, ip)]
    now = timezone.now()
    until = (
        LoginThrottle.objects.filter(key__in=keys, locked_until__gt=now)
        .order_by("-locked_until")
        .values_list("locked_until", flat=True)
        .first()
    )
    return until


def begin_attempt(*, username: str, ip: str | None) -> datetime | None:
    """Count a password attempt before the password is checked.

    Counting afterwards would let parallel guesses all read the same count and
    all be evaluated. Here each attempt takes the rows' locks, and once an
    attempt reaches the limit the rest are refused. Returns when the lock ends
    if this attempt is refused, else None; finish with record_success on a
    correct password (a wrong one simply stays counted).
    """
    with transaction.atomic():
        return _reserve(username, ip, timezone.now())


def _reserve(username: str, ip: str | None, now: datetime) -> datetime | None:
    rules_and_rows = [(rule, _row_for_update(key, now)) for rule, key in _keys(username, ip)]
    until = max(
        (row.locked_until for _, row in rules_and_rows if row.locked_until and row.locked_until > now),
        default=None,
    )
    if until is not None:
        return until
    for rule, row in rules_and_rows:
        if now - row.window_started_at > WINDOW:
            row.failures, row.window_started_at, row.locked_until = 0, now, None
        row.failures += 1
        if row.failures >= rule.limit:
            row.locked_until = now + LOCKOUT
        row.save()
    return None


def _row_for_update(key: str, now: datetime) -> LoginThrottle:
    existing = LoginThrottle.objects.select_for_update().filter(key=key).first()
    if existing is not None:
        return existing
    # get_or_create survives a parallel first attempt creating the row (savepoint, then get again).
    row, _ = LoginThrottle.objects.select_for_update().get_or_create(
        key=key, defaults={"failures": 0, "window_started_at": now}
    )
    return row


def record_success(*, username: str, ip: str | None) -> None:
    """Clear this account's count from this address; give back the address-wide slot."""
    (_, account_key), (address_rule, address_key) = _keys(username, ip)
    with transaction.atomic():
        # Reset rather than delete: a parallel first attempt whose INSERT just lost the race
        # re-reads the row inside get_or_create, and a deleted row there is an IntegrityError (500).
        LoginThrottle.objects.filter(key=account_key).update(
            failures=0, window_started_at=timezone.now(), locked_until=None
        )
        row = LoginThrottle.objects.select_for_update().filter(key=address_key).first()
        if row is not None and row.failures > 0:
            row.failures -= 1
            if row.failures < address_rule.limit:
                row.locked_until = None
            row.save(update_fields=["failures", "locked_until"])
