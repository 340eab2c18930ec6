import secrets
import time
from base64 import b32encode
from datetime import timedelta
from urllib.parse import quote, urlencode

from django.conf import settings
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.db import models
from django.utils import timezone
from django.utils.crypto import constant_time_compare
from django_otp.models import Device, ThrottlingMixin, TimestampMixin, VerifyNotAllowed
from django_otp.oath import TOTP

from . import crypto

TOTP_KEY_BYTES = 20  # 160 bits, as RFC 4226 recommends for SHA1


class LockoutThrottlingMixin(ThrottlingMixin):
    """django-otp's exponential delay, plus a lock after repeated failures.

    After CLINICAUTH_CODE_LOCKOUT_FAILURES wrong codes in a row, code entry is
    locked for CLINICAUTH_CODE_LOCKOUT_SECONDS; from CLINICAUTH_CODE_HARD_LOCK_FAILURES
    on it stays locked until 2FA is reset, so NIST's ceiling of 100 consecutive
    failures is never reached.
    """

    class Meta:
        abstract = True

    # What a check writes: only these columns, not the whole row (the key, name and the rest stay as they are).
    THROTTLE_FIELDS = ["throttling_failure_count", "throttling_failure_timestamp"]

    def record_failure(self) -> None:
        """One more wrong code (the row is locked by the caller)."""
        self.throttle_increment(commit=False)
        self.save(update_fields=self.THROTTLE_FIELDS)

    def record_success(self, *changed: str) -> None:
        """A code was accepted: clear the failures, note the use, and write only what changed."""
        self.throttle_reset(commit=False)
        self.set_last_used_timestamp(commit=False)
        self.save(update_fields=[*changed, *self.THROTTLE_FIELDS, "last_used_at"])

    def verify_is_allowed(self):
        count = self.throttling_failure_count
        # The lockouts hold whatever the delay factor: OTP_THROTTLE_FACTOR=0 only removes the delays.
        if count >= settings.CLINICAUTH_CODE_LOCKOUT_FAILURES:
            if count >= settings.CLINICAUTH_CODE_HARD_LOCK_FAILURES:
                return False, {"reason": VerifyNotAllowed.N_FAILED_ATTEMPTS, "failure_count": count, "locked_until": None}
            locked_until = self.throttling_failure_timestamp + timedelta(
                seconds=settings.CLINICAUTH_CODE_LOCKOUT_SECONDS
            )
            if timezone.now() < locked_until:
                return False, {"reason": VerifyNotAllowed.N_FAILED_ATTEMPTS, "failure_count": count, "locked_until": locked_until}
            return Device.verify_is_allowed(self)
        return super().verify_is_allowed()


def new_encrypted_totp_key() -> str:
    return crypto.encrypt(secrets.token_bytes(TOTP_KEY_BYTES))


class EncryptedTOTPDevice(TimestampMixin, LockoutThrottlingMixin, Device):
    """A TOTP authenticator whose secret is encrypted at rest.

    Same parameters as django-otp's TOTPDevice (SHA1, 6 digits, 30 s, ±1
    step, last_t against replay); the token maths is django_otp.oath.TOTP.
    """

    encrypted_key = models.TextField(default=new_encrypted_totp_key, editable=False)
    step = models.PositiveSmallIntegerField(default=30)
    t0 = models.BigIntegerField(default=0)
    digits = models.PositiveSmallIntegerField(default=6)
    tolerance = models.PositiveSmallIntegerField(default=1)
    drift = models.SmallIntegerField(default=0)
    last_t = models.BigIntegerField(
        default=-1, help_text="Time step of the last accepted code; only later steps are accepted."
    )

    class Meta(Device.Meta):
        verbose_name = "authenticator app"

    @property
    def bin_key(self) -> bytes:
        return crypto.decrypt(self.encrypted_key)

    def get_throttle_factor(self) -> int:
        return settings.OTP_TOTP_THROTTLE_FACTOR

    def verify_token(self, token) -> bool:
        allowed, _ = self.verify_is_allowed()
        if not allowed:
            return False
        token = str(token)
        matched_offset = None
        if token.isascii() and token.isdigit() and len(token) == self.digits:
            totp = TOTP(self.bin_key, self.step, self.t0, self.digits, self.drift)
            totp.time = time.time()
            # Compare against every candidate step, in constant time, with no early exit.
            for offset in range(-self.tolerance, self.tolerance + 1):
                totp.drift = self.drift + offset
                expected = str(totp.token()).zfill(self.digits)
                if constant_time_compare(expected, token) and totp.t() > self.last_t and matched_offset is None:
                    matched_offset = offset
        if matched_offset is None:
            self.record_failure()
            return False
        totp.drift = self.drift + matched_offset
        self.last_t = totp.t()
        self.drift = totp.drift
        self.record_success("last_t", "drift")
        return True

    def code_was_used(self, token: str) -> bool:
        """True when the token is a real code of a step at or before last_t (a replay)."""
        if self.last_t < 0 or not (token.isascii() and token.isdigit()):
            return False
        totp = TOTP(self.bin_key, self.step, self.t0, self.digits, self.drift)
        totp.time = time.time()
        for offset in range(-self.tolerance, self.tolerance + 1):
            totp.drift = self.drift + offset
            if totp.t() <= self.last_t and constant_time_compare(str(totp.token()).zfill(self.digits), token):
                return True
        return False

    @property
    def issuer(self) -> str:
        """Issuer shown in authenticator apps: the product plus the clinic."""
        clinic = self.user.clinic
        product = settings.CLINICAUTH_PRODUCT_NAME
        return f"{product} ({clinic.name})" if clinic else product

    @property
    def manual_entry_key(self) -> str:
        """The base32 secret in groups of four, as authenticator apps expect it typed."""
        secret = b32encode(self.bin_key).decode().rstrip("=")
        return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))

    @property
    def config_url(self) -> str:
        """The otpauth:// key URI that Google Authenticator, Microsoft Authenticator and Authy accept."""
        issuer = self.issuer.replace(":", "")
        label = f"{issuer}:{self.user.get_username()}"
        params = urlencode(
            {
                "secret": b32encode(self.bin_key).decode().rstrip("="),
                "algorithm": "SHA1",
                "digits": self.digits,
                "period": self.step,
            }
        )
        return f"otpauth://totp/{quote(label, safe=':')}?{params}&issuer={quote(issuer)}"


class RecoveryCodeHasher(PBKDF2PasswordHasher):
    """PBKDF2 for recovery codes, like passwords but cheaper per code.

    A recovery code carries 50 random bits (unlike a password), and a wrong
    guess must be checked against every unused code, so the work factor is
    lower than for passwords while still making a dumped table costly to
    brute-force.
    """

    algorithm = "pbkdf2_sha256_recovery"
    iterations = 30_000


class OneTimeCodeMixin(LockoutThrottlingMixin):
    """A code stored only as a hash that works once: the throttle and bookkeeping around use_code."""

    class Meta:
        abstract = True

    def get_throttle_factor(self) -> int:
        return settings.CLINICAUTH_RECOVERY_THROTTLE_FACTOR

    # Fields of the device row that use_code changes (saved with the throttle fields).
    USE_CODE_FIELDS: list[str] = []

    def use_code(self, token: str) -> bool:
        """Check the token and mark what it matched as used; False when it matched nothing usable."""
        raise NotImplementedError

    def verify_token(self, token) -> bool:
        allowed, _ = self.verify_is_allowed()
        if not allowed:
            return False
        if not self.use_code(str(token)):
            self.record_failure()
            return False
        self.record_success(*self.USE_CODE_FIELDS)
        return True


class RecoveryCodeDevice(TimestampMixin, OneTimeCodeMixin, Device):
    """Single-use recovery codes, stored only as hashes.

    django-otp's StaticDevice keeps tokens in plain text; this keeps one
    PBKDF2 hash per code and deletes a code once it has been used.
    """

    class Meta(Device.Meta):
        verbose_name = "recovery code set"

    def use_code(self, token: str) -> bool:
        hasher = RecoveryCodeHasher()
        match = None
        # Check every unused code so the time taken does not reveal which matched.
        for code in self.codes.all():
            if hasher.verify(token, code.code_hash) and match is None:
                match = code
        if match is None:
            return False
        match.delete()
        return True

    def remaining(self) -> int:
        return self.codes.count()


class AdminIssuedCodeDevice(TimestampMixin, OneTimeCodeMixin, Device):
    """A one-time sign-in code a clinic admin issued for a member who lost their phone.

    At most one per user (issuing replaces it); 8 digits, stored only as a hash,
    valid until expires_at and used at most once (used_at). Never a primary
    method: it lets the member in once so they can set up a new authenticator.
    """

    code_hash = models.CharField(max_length=200)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    issued_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    USE_CODE_FIELDS = ["used_at"]

    class Meta(Device.Meta):
        verbose_name = "admin-issued sign-in code"

    def use_code(self, token: str) -> bool:
        # The hash is checked even for a used or expired code, so timing tells nothing.
        matches = RecoveryCodeHasher().verify(token, self.code_hash)
        if not (matches and self.used_at is None and timezone.now() < self.expires_at):
            return False
        self.used_at = timezone.now()
        return True


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
        KEY_ADDED = "key_added", "Passkey or security key added"
        KEY_REMOVED = "key_removed", "Passkey or security key removed"
        KEY_REFUSED = "key_refused", "Passkey or security key refused"
        SIGNED_OUT_FOR_SWITCH = "signed_out_switch", "Signed out when someone else signed in"
        SESSIONS_ENDED_BY_ADMIN = "sessions_ended_admin", "Sessions ended by an admin"
        REAUTH_FAILED = "reauth_failed", "Confirm it's you failed"
        # Membership (issue 17): invitations, password reset, leavers and roles.
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
