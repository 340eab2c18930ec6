"""The 2FA app's models: the audit trail here, each method's devices in its own package.

Every model is imported here so that Django finds it when it loads the app.
"""

from django.conf import settings
from django.db import models
from django.utils import timezone

from .recovery.models import RecoveryCode, RecoveryCodeDevice
from .signin_code.models import AdminIssuedCodeDevice
from .totp.models import EncryptedTOTPDevice, new_encrypted_totp_key

__all__ = ["AdminIssuedCodeDevice", "AuditEvent", "EncryptedTOTPDevice", "RecoveryCode", "RecoveryCodeDevice", "new_encrypted_totp_key"]


class AuditEvent(models.Model):
    class Action(models.TextChoices):
        DEVICE_CONFIRMED = "device_confirmed", "2FA enabled"
        DISABLED_BY_SELF = "disabled_by_self", "2FA turned off by the user"
        DISABLED_BY_ADMIN = "disabled_by_admin", "2FA disabled by an admin"
        DISABLED_BY_OPERATOR = "disabled_by_operator", "2FA reset by the operator"
        RECOVERY_CODES_REGENERATED = "recovery_regenerated", "Recovery codes regenerated"
        RECOVERY_CODE_USED = "recovery_used", "Recovery code used to sign in"
        MANDATORY_ON = "mandatory_on", "Mandatory 2FA turned on"
        MANDATORY_OFF = "mandatory_off", "Mandatory 2FA turned off"
        CODE_THROTTLED = "code_throttled", "Code entry locked after failed attempts"
        CODE_REPLAYED = "code_replayed", "Already-used code refused"
        KEY_ADDED = "key_added", "Passkey or security key added"
        KEY_REMOVED = "key_removed", "Passkey or security key removed"
        KEY_REFUSED = "key_refused", "Passkey or security key refused"
        SIGNED_OUT_FOR_SWITCH = "signed_out_switch", "Signed out when someone else signed in"
        SESSIONS_ENDED_BY_ADMIN = "sessions_ended_admin", "Sessions ended by an admin"
        REAUTH_FAILED = "reauth_failed", "Confirm it's you failed"
        # Membership: invitations, password reset, leavers and roles.
        INVITED = "invited", "Member invited"
        INVITATION_RESENT = "invitation_resent", "Invitation resent"
        INVITATION_REVOKED = "invitation_revoked", "Invitation revoked"
        INVITATION_ACCEPTED = "invitation_accepted", "Invitation accepted"
        PASSWORD_RESET_REQUESTED = "password_reset_requested", "Password reset requested"
        PASSWORD_RESET_COMPLETED = "password_reset_completed", "Password reset completed"
        DEACTIVATED = "deactivated", "Account deactivated"
        REACTIVATED = "reactivated", "Account reactivated"
        ROLE_CHANGED = "role_changed", "Role changed"
        MANDATORY_DATE_SET = "mandatory_date", "Mandatory 2FA date changed"
        REMINDERS_SENT = "reminders_sent", "Set-up reminders sent"
        SIGNIN_CODE_ISSUED = "signin_code_issued", "One-time sign-in code issued"
        SIGNIN_CODE_USED = "signin_code_used", "One-time sign-in code used to sign in"
        APP_REPLACED = "app_replaced", "Authenticator app replaced"

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    action = models.CharField(max_length=32, choices=Action.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    target = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Usernames are copied so the record survives a deleted account.
    actor_username = models.CharField(max_length=150, blank=True)
    target_username = models.CharField(max_length=150, blank=True)
    clinic = models.ForeignKey("clinics.Clinic", null=True, blank=True, on_delete=models.SET_NULL)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    detail = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["clinic", "-created_at"], name="audit_clinic_created_idx")]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.get_action_display()} {self.target_username}"
