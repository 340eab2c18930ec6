"""Checking a typed code: what every code method's verify shares, and how a refusal is said in types.

A code method (the authenticator app, a recovery code, an admin-issued sign-in code) is a
CodeMethod: the shape of its codes and its own verify service. Each verify runs check_code,
the pattern of django_otp.verify_token: the device row is found and locked by one query and stays
locked for the whole check, so two parallel requests never both pass the throttle or both use one
code. The method adds what is its own: how a refusal is explained (a replayed app code), and what
an accepted code records (the audit event and e-mail of a recovery code used).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, HttpResponse

from . import audit, devices, services
from .models import AuditEvent


class CodeRefused(Exception):
    """A code was not accepted."""


class CodeInvalid(CodeRefused):
    """The code did not match (or the user has no authenticator of that kind)."""

    def __init__(self, method: str = "totp"):
        super().__init__(method)
        self.method = method  # which method's code it looked like: each is explained in its own words


class CodeReplayed(CodeRefused):
    """A real code that was already used once."""


class CodeLocked(CodeRefused):
    """Code entry is locked; `until` is None for the lock only a reset clears."""

    def __init__(self, until: datetime | None, failures: int | None = None):
        super().__init__(until)
        self.until = until
        self.failures = failures  # consecutive wrong codes so far, when known


@dataclass(frozen=True)
class CodeMethod:
    """One way to pass the second factor with a typed code.

    `pattern` is the shape of its codes once spaces and dashes are gone (compared in upper case when
    `upper`); `verify(*, user, token, ip_address, completes_sign_in)` is its service, returning the
    device that accepted the code or raising CodeRefused; `after_sign_in(request, device)` is what
    the sign-in page does next for it (a message, another page), or None to go on as usual.
    """

    name: str
    pattern: re.Pattern
    verify: Callable
    upper: bool = False
    after_sign_in: Callable[[HttpRequest, object], HttpResponse | None] | None = None

    def token_from(self, typed: str) -> str | None:
        """The normalised token when `typed` (spaces and dashes removed) is one of this method's codes."""
        candidate = typed.upper() if self.upper else typed
        return candidate if self.pattern.fullmatch(candidate) else None


def lockout_reason(device) -> CodeLocked | None:
    allowed, info = device.verify_is_allowed()
    info = info or {}
    return None if allowed else CodeLocked(info.get("locked_until"), info.get("failure_count"))


def record_if_now_locked(device, *, user, ip_address: str | None) -> None:
    """Audit the failure that locks code entry (once, not on every later refusal)."""
    if device.throttling_failure_count == settings.CLINICAUTH_CODE_LOCKOUT_FAILURES:
        audit.record(
            AuditEvent.Action.CODE_THROTTLED,
            actor=user,
            target=user,
            ip_address=ip_address,
            detail=f"{device.throttling_failure_count} consecutive failed codes",
        )


def check_code(
    model,
    *,
    method: str,
    user,
    token: str,
    ip_address: str | None,
    completes_sign_in: bool,
    refusal_for: Callable | None = None,
    accepted: Callable | None = None,
):
    """Check `token` against the user's confirmed device of `model`; returns the device that accepted it.

    `refusal_for(device, token)` explains a wrong code (default: CodeInvalid); `accepted(device)`
    records what the method records for a used code, in the same transaction. With
    `completes_sign_in` an accepted code also stamps last_login in that transaction (one commit,
    not two). Raises CodeInvalid, CodeReplayed or CodeLocked; a refused code stamps nothing, and
    its failure count is kept.
    """
    refusal: CodeRefused | None = None
    with transaction.atomic():
        # With last_login written in this transaction, the user's row is locked too, before the
        # device's, in the order every other 2FA change takes them, or the two could deadlock.
        device = devices.confirmed_device_for_update(model, user, lock_user=completes_sign_in)
        if device is None:
            raise CodeInvalid(method)
        refusal = lockout_reason(device)
        if refusal is None and not device.verify_token(token):
            refusal = refusal_for(device, token) if refusal_for else None
            if refusal is None:
                record_if_now_locked(device, user=user, ip_address=ip_address)
                refusal = CodeInvalid(method)
        if refusal is None:
            if accepted:
                accepted(device)
            if completes_sign_in:
                services.user_record_sign_in(user=user)
    # Raised after the block so the failure count written inside it is kept.
    if refusal is not None:
        raise refusal
    return device
