"""Who must use 2FA, and what a session at each gate may reach.

Plain rules over a user: no session, no writes. The user's clinic is reached
through the user model's own relation, so this app imports neither `users`
nor `clinics` (they import it).
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from django.urls import Resolver404, resolve
from django.utils import timezone


class Gate(StrEnum):
    """What an authenticated session may do right now."""

    OPEN = "open"  # no authenticator and none required
    VERIFIED = "verified"  # passed the second factor
    CHALLENGE = "challenge"  # has an authenticator, has not passed it yet
    SETUP = "setup"  # 2FA is required and the user has no authenticator


ALLOWED_GATES = frozenset({Gate.OPEN, Gate.VERIFIED})

# Views reachable from each blocked gate, by URL name (never by path prefix). The passkey
# endpoints answer JSON to the page's script; without its i18n catalogue the buttons do nothing.
PASSKEY_SCRIPT = "otp_webauthn:js-i18n-catalog"
EXEMPT_VIEW_NAMES = {
    Gate.CHALLENGE: frozenset(
        {
            "login",
            "root",
            "logout",
            "two_factor_challenge",
            "sign_in_as_someone_else",
            "otp_webauthn:credential-authentication-begin",
            "otp_webauthn:credential-authentication-complete",
            PASSKEY_SCRIPT,
        }
    ),
    Gate.SETUP: frozenset(
        {
            "login",
            "root",
            "logout",
            "two_factor_setup",
            "sign_in_as_someone_else",
            "reauthenticate",  # a set-up left open longer than REAUTH_WINDOW asks for the password again
            "otp_webauthn:credential-registration-begin",
            "otp_webauthn:credential-registration-complete",
            PASSKEY_SCRIPT,
        }
    ),
}
GATE_VIEW_NAME = {Gate.CHALLENGE: "two_factor_challenge", Gate.SETUP: "two_factor_setup"}


@dataclass(frozen=True)
class Enforcement:
    """A clinic's Mandatory 2FA as of one moment."""

    mandatory: bool
    starts_on: date | None  # None: from the moment the flag is on
    time_zone: str

    def local_date(self, now: datetime | None = None) -> date:
        return timezone.localtime(now or timezone.now(), zoneinfo.ZoneInfo(self.time_zone)).date()

    def required_now(self, now: datetime | None = None) -> bool:
        """Before the date (the clinic's own local date), the clinic does not require it yet."""
        return self.mandatory and (self.starts_on is None or self.local_date(now) >= self.starts_on)

    def pending(self, now: datetime | None = None) -> bool:
        """Mandatory 2FA is on but its date has not come: the grace period."""
        return self.mandatory and not self.required_now(now)

    def starts_at(self) -> datetime | None:
        """The moment the date begins in the clinic's time zone (when the grace period ends)."""
        if self.starts_on is None:
            return None
        return datetime.combine(self.starts_on, datetime.min.time(), tzinfo=zoneinfo.ZoneInfo(self.time_zone))

    def days_left(self, now: datetime | None = None) -> int:
        return (self.starts_on - self.local_date(now)).days if self.starts_on else 0


def enforcement_of(clinic) -> Enforcement:
    return Enforcement(mandatory=clinic.mandatory_2fa, starts_on=clinic.mandatory_from, time_zone=clinic.time_zone)


def clinic_enforcement(user, *, fresh: bool = False) -> Enforcement | None:
    """The user's clinic's Mandatory 2FA (at most one query), or None without a clinic."""
    if user.clinic_id is None:
        return None
    field = user._meta.get_field("clinic")
    if field.is_cached(user) and not fresh:  # loaded with the user for this request (users.backends): no query
        return enforcement_of(user.clinic)
    clinic_model = field.related_model
    row = clinic_model.objects.filter(pk=user.clinic_id).values("mandatory_2fa", "mandatory_from", "time_zone").first()
    if row is None:
        return None
    return Enforcement(mandatory=row["mandatory_2fa"], starts_on=row["mandatory_from"], time_zone=row["time_zone"])


def clinic_requires_2fa(user, *, fresh: bool = False) -> bool:
    """Required by the clinic now: the flag is on and its date (if any) has come (fresh: read now,
    inside the caller's transaction, not as loaded with the request's user)."""
    enforcement = clinic_enforcement(user, fresh=fresh)
    return enforcement is not None and enforcement.required_now()


def two_factor_required(user, *, fresh: bool = False) -> bool:
    """Required by the clinic's policy, and always for Django admin (operator) accounts."""
    return user.is_staff or user.is_superuser or clinic_requires_2fa(user, fresh=fresh)


def requirement(user) -> tuple[bool, Enforcement | None]:
    """(required now, the clinic's pending enforcement during its grace period, else None); one query at most."""
    if user.is_staff or user.is_superuser:
        return True, None
    enforcement = clinic_enforcement(user)
    if enforcement is None:
        return False, None
    if enforcement.required_now():
        return True, None
    return False, enforcement if enforcement.pending() else None


def can_disable_own_2fa(user) -> bool:
    return not two_factor_required(user)


def gate_for(*, enrolled: bool, verified: bool, required: bool) -> Gate:
    if enrolled:
        return Gate.VERIFIED if verified else Gate.CHALLENGE
    return Gate.SETUP if required else Gate.OPEN


def gate_stamp(user) -> str:
    """Everything on the user row the gate depends on.

    twofa_stamp covers authenticators and the clinic flag; the rest catches an
    operator moving the user to another clinic or granting admin-site access.
    """
    return f"{user.twofa_stamp}:{user.clinic_id}:{int(user.is_staff)}:{int(user.is_superuser)}"


def view_name_for_path(path: str) -> str | None:
    try:
        return resolve(path).view_name
    except Resolver404:
        return None


def is_exempt(gate: Gate, view_name: str | None) -> bool:
    return view_name is not None and view_name in EXEMPT_VIEW_NAMES.get(gate, ())
