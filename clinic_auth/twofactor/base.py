"""What every code method's device shares: django-otp's throttle with this app's lockouts, and
one-time codes kept only as hashes."""

from datetime import timedelta

from django.conf import settings
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.utils import timezone
from django_otp.models import Device, ThrottlingMixin, VerifyNotAllowed


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


class RecoveryCodeHasher(PBKDF2PasswordHasher):
    """PBKDF2 for one-time codes (recovery codes, admin-issued sign-in codes), like passwords but cheaper.

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
