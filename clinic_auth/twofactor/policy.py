"""Who must use 2FA, and what a session at each gate may reach.

Plain rules over a user: no session, no writes. The user's clinic is reached
through the user model's own relation, so this app imports neither `users`
nor `clinics` (they import it).
"""

from __future__ import annotations

from enum import StrEnum

from django.urls import Resolver404, resolve


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
            "otp_webauthn:credential-registration-begin",
            "otp_webauthn:credential-registration-complete",
            PASSKEY_SCRIPT,
        }
    ),
}
GATE_VIEW_NAME = {Gate.CHALLENGE: "two_factor_challenge", Gate.SETUP: "two_factor_setup"}


def clinic_requires_2fa(user) -> bool:
    if user.clinic_id is None:
        return False
    clinic_model = user._meta.get_field("clinic").related_model
    return clinic_model.objects.filter(pk=user.clinic_id, mandatory_2fa=True).exists()


def two_factor_required(user) -> bool:
    """Required by the clinic's policy, and always for Django admin (operator) accounts."""
    return user.is_staff or user.is_superuser or clinic_requires_2fa(user)


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
