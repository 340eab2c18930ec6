"""Password-attempt throttling, per account (from one address) and per address.

An attacker can lock an account only from their own address, and only for
LOCKOUT; the same account keeps working from the clinic's computers. A
successful login clears only that account's counter for that address, never
another account's or the address-wide one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

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
    address = ip or "unknown"
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


def record_failure(*, username: str, ip: str | None) -> None:
    now = timezone.now()
    for rule, key in _keys(username, ip):
        _count_failure(rule, key, now)


def _count_failure(rule: Rule, key: str, now: datetime) -> None:
    for _ in range(2):  # a parallel first failure may create the row first
        try:
            with transaction.atomic():
                row = LoginThrottle.objects.select_for_update().filter(key=key).first()
                if row is None:
                    row = LoginThrottle(key=key, failures=0, window_started_at=now)
                if now - row.window_started_at > WINDOW and not (row.locked_until and row.locked_until > now):
                    row.failures, row.window_started_at, row.locked_until = 0, now, None
                row.failures += 1
                if row.failures >= rule.limit:
                    row.locked_until = now + LOCKOUT
                row.save()
                return
        except IntegrityError:
            continue


def record_success(*, username: str, ip: str | None) -> None:
    rule, key = _keys(username, ip)[0]
    LoginThrottle.objects.filter(key=key).delete()
