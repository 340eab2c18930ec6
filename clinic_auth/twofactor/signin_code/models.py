from django.conf import settings
from django.db import models
from django.utils import timezone
from django_otp.models import Device, TimestampMixin

from ..base import OneTimeCodeMixin, RecoveryCodeHasher


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
