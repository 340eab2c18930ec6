"""The one place that asks which authenticators a user has.

A primary method is one that can pass the second factor on its own: the
authenticator app today (passkeys and security keys plug in here). Recovery
codes are a fallback and never count as enrolled.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import reduce
from operator import or_

from django.conf import settings
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from .models import EncryptedTOTPDevice, RecoveryCode, RecoveryCodeDevice

PRIMARY_METHODS = (EncryptedTOTPDevice,)


def confirmed_authenticators(user) -> list:
    """Every confirmed primary authenticator of the user, of any method."""
    return [device for model in PRIMARY_METHODS for device in model.objects.filter(user=user, confirmed=True)]


def is_enrolled(user) -> bool:
    """At least one confirmed primary authenticator; recovery codes alone never count."""
    return any(model.objects.filter(user=user, confirmed=True).exists() for model in PRIMARY_METHODS)


def enrolled_q(user_ref: str = "pk") -> Q:
    """`is_enrolled` as a filter/annotation over a user queryset (one subquery per method)."""
    return reduce(
        or_, (Q(Exists(model.objects.filter(user=OuterRef(user_ref), confirmed=True))) for model in PRIMARY_METHODS)
    )


def confirmed_totp_device(user) -> EncryptedTOTPDevice | None:
    return EncryptedTOTPDevice.objects.filter(user=user, confirmed=True).order_by("pk").first()


def recovery_device(user) -> RecoveryCodeDevice | None:
    return RecoveryCodeDevice.objects.filter(user=user, confirmed=True).first()


def recovery_codes_left(user) -> int:
    return RecoveryCode.objects.filter(device__user=user, device__confirmed=True).count()


def setup_is_stale(device: EncryptedTOTPDevice, now: datetime) -> bool:
    return device.created_at is None or now - device.created_at > timedelta(seconds=settings.CLINICAUTH_SETUP_TIMEOUT)


def live_setup_device(*, user, device_id: int | None) -> EncryptedTOTPDevice | None:
    """The unconfirmed authenticator one set-up session started, while it is still live."""
    if not isinstance(device_id, int):
        return None
    device = EncryptedTOTPDevice.objects.filter(pk=device_id, user=user, confirmed=False).first()
    if device is None or setup_is_stale(device, timezone.now()):
        return None
    return device


@dataclass(frozen=True)
class TwoFactorState:
    """Everything a reset would remove, as an admin or operator needs to hear it."""

    enrolled: bool
    setups_in_progress: int
    setup_failures: int
    recovery_codes_left: int

    @property
    def setup_locked(self) -> bool:
        return self.setup_failures >= settings.CLINICAUTH_CODE_LOCKOUT_FAILURES

    @property
    def anything_to_reset(self) -> bool:
        return self.enrolled or self.setups_in_progress > 0 or self.setup_failures > 0 or self.recovery_codes_left > 0

    def describe(self) -> str:
        """One line for the audit log and the operator's terminal."""
        parts = []
        if self.enrolled:
            parts.append("authenticator app")
        if self.setups_in_progress or self.setup_failures:
            text = "set-up in progress"
            if self.setup_locked:
                text += f", locked after {self.setup_failures} wrong codes"
            elif self.setup_failures:
                text += f", {self.setup_failures} wrong codes"
            parts.append(text)
        if self.recovery_codes_left:
            parts.append(f"{self.recovery_codes_left} recovery codes")
        return "; ".join(parts) or "nothing"


def twofa_state(user) -> TwoFactorState:
    now = timezone.now()
    apps = list(EncryptedTOTPDevice.objects.filter(user=user))
    pending = [device for device in apps if not device.confirmed]
    return TwoFactorState(
        enrolled=any(device.confirmed for device in apps)
        or any(model.objects.filter(user=user, confirmed=True).exists() for model in PRIMARY_METHODS if model is not EncryptedTOTPDevice),
        setups_in_progress=sum(1 for device in pending if not setup_is_stale(device, now)),
        # Failures carry over to the next set-up, so a stale set-up's count still matters.
        setup_failures=max((device.throttling_failure_count for device in pending), default=0),
        recovery_codes_left=RecoveryCode.objects.filter(device__user=user).count(),
    )
