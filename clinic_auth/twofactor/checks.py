from django.conf import settings
from django.core.checks import Error, Warning, register
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, connections, router
from django.utils.module_loading import import_string

from . import crypto, devices
from .totp.models import EncryptedTOTPDevice

AUTH = "django.contrib.auth.middleware.AuthenticationMiddleware"
LOGIN_REQUIRED = "django.contrib.auth.middleware.LoginRequiredMiddleware"
TWO_FACTOR = "clinic_auth.twofactor.middleware.TwoFactorMiddleware"


@register()
def check_middleware(app_configs, **kwargs):
    """Fail loudly if enforcement is missing or runs before the user is known."""
    middleware = list(settings.MIDDLEWARE)
    errors = []
    for required, error_id in ((AUTH, "twofactor.E001"), (LOGIN_REQUIRED, "twofactor.E002"), (TWO_FACTOR, "twofactor.E003")):
        if _position(middleware, required) is None:
            errors.append(Error(f"{required} must be in MIDDLEWARE.", id=error_id))
    if not errors and _position(middleware, TWO_FACTOR) < _position(middleware, AUTH):
        errors.append(Error(f"{TWO_FACTOR} must come after {AUTH}.", id="twofactor.E004"))
    return errors


def _position(middleware: list[str], required: str) -> int | None:
    """Where `required`, or a subclass of it, sits in MIDDLEWARE (as Django's admin checks it)."""
    wanted = import_string(required)
    for index, path in enumerate(middleware):
        try:
            if issubclass(import_string(path), wanted):
                return index
        except (ImportError, TypeError):  # TypeError: a middleware that is a function, not a class
            continue
    return None


KEYS_HINT = (
    "Set TOTP_ENCRYPTION_KEYS to the key(s) the secrets were encrypted with (docs/operations.md, "
    "Backup). Without them those users' authenticator apps cannot be used again: "
    "`manage.py reset_2fa --undecryptable` resets all of them, and they set 2FA up anew."
)


@register(deploy=True)
def check_totp_secrets_decrypt(app_configs, **kwargs):
    """Every stored authenticator secret decrypts with TOTP_ENCRYPTION_KEYS: found at `check --deploy`
    and when gunicorn starts (gunicorn.conf.py), never as a 500 at someone's sign-in."""
    try:
        crypto.cipher()
    except ImproperlyConfigured as error:
        return [Error(str(error), hint="Each key is 44 characters of URL-safe base64 (docs/operations.md).", id="twofactor.E010")]
    found = []
    if settings.CLINICAUTH_TOTP_KEY_FROM_SECRET_KEY:
        found.append(
            Warning(
                "TOTP_ENCRYPTION_KEYS is not set: authenticator secrets are encrypted with a key derived from "
                "SECRET_KEY, so changing SECRET_KEY makes every authenticator app unusable.",
                hint="Set TOTP_ENCRYPTION_KEYS and run `manage.py rotate_totp_keys` (docs/operations.md).",
                id="twofactor.W011",
            )
        )
    table = EncryptedTOTPDevice._meta.db_table
    using = router.db_for_read(EncryptedTOTPDevice)
    try:
        if table not in connections[using].introspection.table_names():
            return found  # before the first migrate: nothing stored to check
        total, unreadable = devices.undecryptable_totp_owners()
    except DatabaseError as error:  # a database that does not answer, or a role that may not read the table
        return found + [Error(f"The stored authenticator secrets could not be read: {error}", id="twofactor.E012")]
    if unreadable:
        shown = ", ".join(unreadable[:10]) + (f" and {len(unreadable) - 10} more" if len(unreadable) > 10 else "")
        found.append(
            Error(
                f"TOTP_ENCRYPTION_KEYS cannot decrypt the authenticator app secret of {len(unreadable)} user(s) "
                f"({total} stored): {shown}.",
                hint=KEYS_HINT,
                id="twofactor.E011",
            )
        )
    return found
