"""Recovery codes: issued with a user's first method, used once each, made anew on request."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import transaction

from .. import audit, codes, devices
from ..base import RecoveryCodeHasher
from ..models import AuditEvent
from .models import RecoveryCode, RecoveryCodeDevice

RECOVERY_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I
RECOVERY_CODE_LENGTH = 10


def recovery_code_verify(*, user, token: str, ip_address: str | None, completes_sign_in: bool = False) -> RecoveryCodeDevice:
    """Use one of the user's recovery codes (codes.check_code): it works once, is audited, and the
    user is told by e-mail how many are left. Raises CodeInvalid or CodeLocked."""

    def used(device):
        audit.record(AuditEvent.Action.RECOVERY_CODE_USED, actor=user, target=user, ip_address=ip_address)
        audit.notify(user, "recovery/email/code_used", remaining=devices.recovery_codes_left(user))

    return codes.check_code(
        RecoveryCodeDevice, method="recovery", user=user, token=token, ip_address=ip_address,
        completes_sign_in=completes_sign_in, accepted=used,
    )


def recovery_codes_regenerate(*, user, ip_address: str | None) -> list[str]:
    """New recovery codes in place of the old ones (which stop working at once); returns them to show once."""
    with transaction.atomic():
        new_codes = recovery_codes_issue(user=user)
        audit.record(AuditEvent.Action.RECOVERY_CODES_REGENERATED, actor=user, target=user, ip_address=ip_address)
        audit.notify(user, "recovery/email/regenerated")
    return new_codes


def recovery_codes_issue(*, user) -> list[str]:
    """Replace the user's recovery codes; only hashes are stored."""
    RecoveryCodeDevice.objects.filter(user=user).delete()
    device = RecoveryCodeDevice.objects.create(user=user, name="Recovery codes", confirmed=True)
    hasher = RecoveryCodeHasher()
    new_codes = [
        "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(RECOVERY_CODE_LENGTH))
        for _ in range(settings.CLINICAUTH_RECOVERY_CODE_COUNT)
    ]
    RecoveryCode.objects.bulk_create(
        RecoveryCode(device=device, code_hash=hasher.encode(code, hasher.salt())) for code in new_codes
    )
    return [format_recovery_code(code) for code in new_codes]


def format_recovery_code(code: str) -> str:
    half = RECOVERY_CODE_LENGTH // 2
    return f"{code[:half]}-{code[half:]}"
