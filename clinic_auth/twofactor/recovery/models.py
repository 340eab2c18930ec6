from django.db import models
from django_otp.models import Device, TimestampMixin

from ..base import OneTimeCodeMixin, RecoveryCodeHasher


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


class RecoveryCode(models.Model):
    device = models.ForeignKey(RecoveryCodeDevice, on_delete=models.CASCADE, related_name="codes")
    code_hash = models.CharField(max_length=200)

    def __str__(self) -> str:
        return f"Recovery code #{self.pk}"
