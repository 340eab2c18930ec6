from django.conf import settings
from django.core.checks import Error, register
from django.utils.module_loading import import_string

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
