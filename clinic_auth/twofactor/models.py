from django.conf import settings
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.db import models
from django.utils import timezone
from django_otp.models import Device, ThrottlingMixin, TimestampMixin


class RecoveryCodeHasher(PBKDF2PasswordHasher):
    """PBKDF2 for recovery codes, like passwords but cheaper per code.

    A recovery code carries 50 random bits (unlike a password), and a wrong
    guess must be checked against every unused code, so the work factor is
    lower than for passwords while still making a dumped table costly to
    brute-force.
    """

    algorithm = "pbkdf2_sha256_recovery"
    iterations = 30_000


class RecoveryCodeDevice(TimestampMixin, ThrottlingMixin, Device):
    """Single-use recovery codes, stored only as hashes.

    django-otp's StaticDevice keeps tokens in plain text; this keeps one
    PBKDF2 hash per code and deletes a code once it has been used.
    """

    class Meta(Device.Meta):
        verbose_name = "recovery code set"

    def get_throttle_factor(self) -> int:
        return settings.CLINICAUTH_RECOVERY_THROTTLE_FACTOR

    def verify_token(self, token) -> bool:
        allowed, _ = self.verify_is_allowed()
        if not allowed:
            return False
        hasher = RecoveryCodeHasher()
        match = None
        # Check every unused code so the time taken does not reveal which matched.
        for code in self.codes.all():
            if hasher.verify(str(token), code.code_hash) and match is None:
                match = code
        if match is None:
            self.throttle_increment(commit=True)
            return False
        match.delete()
        self.throttle_reset(commit=False)
        self.set_last_used_timestamp(commit=False)
        self.save()
        return True

    def remaining(self) -> int:
        return self.codes.count()


class RecoveryCode(models.Model):
    device = models.ForeignKey(RecoveryCodeDevice, on_delete=models.CASCADE, related_name="codes")
    code_hash = models.CharField(max_length=200)

    def __str__(self) -> str:
        return f"Recovery code #{self.pk}"


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
