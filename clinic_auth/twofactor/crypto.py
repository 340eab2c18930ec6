"""Encryption at rest for TOTP secrets (Fernet, with rotation through MultiFernet).

The keys come from the environment (TOTP_ENCRYPTION_KEYS), never from the
database, so a database dump alone yields no working codes. The first key
encrypts; every listed key decrypts, which is what makes rotation possible.
"""

from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


@lru_cache(maxsize=4)
def _cipher(keys: tuple[str, ...]) -> MultiFernet:
    try:
        return MultiFernet([Fernet(key) for key in keys])
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured("TOTP_ENCRYPTION_KEYS must be comma-separated Fernet keys.") from exc


def cipher() -> MultiFernet:
    return _cipher(tuple(settings.CLINICAUTH_TOTP_ENCRYPTION_KEYS))


def encrypt(secret: bytes) -> str:
    return cipher().encrypt(secret).decode()


def decrypt(token: str) -> bytes:
    try:
        return cipher().decrypt(token.encode())
    except InvalidToken as exc:
        raise ImproperlyConfigured(
            "A TOTP secret could not be decrypted: TOTP_ENCRYPTION_KEYS lacks the key it was encrypted with."
        ) from exc


def rotate(token: str) -> str:
    """Re-encrypt with the first (current) key."""
    return cipher().rotate(token.encode()).decode()
