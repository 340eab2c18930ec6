import secrets
import time
from base64 import b32encode
from urllib.parse import quote, urlencode

from django.conf import settings
from django.db import models
from django.utils.crypto import constant_time_compare
from django_otp.models import Device, TimestampMixin
from django_otp.oath import TOTP

from .. import crypto
from ..base import LockoutThrottlingMixin

TOTP_KEY_BYTES = 20  # 160 bits, as RFC 4226 recommends for SHA1


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
