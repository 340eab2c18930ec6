from django.conf import settings
from django.core.checks import Error, register

AUTH = "django.contrib.auth.middleware.AuthenticationMiddleware"
LOGIN_REQUIRED = "django.contrib.auth.middleware.LoginRequiredMiddleware"
TWO_FACTOR = "clinic_auth.twofactor.middleware.TwoFactorMiddleware"


@register()
def check_middleware(app_configs, **kwargs):
    """Fail loudly if enforcement is missing or runs before the user is known."""
    middleware = list(settings.MIDDLEWARE)
    errors = []
    for required, error_id in ((AUTH, "twofactor.E001"), (LOGIN_REQUIRED, "twofactor.E002"), (TWO_FACTOR, "twofactor.E003")):
        if required not in middleware:
            errors.append(Error(f"{required} must be in MIDDLEWARE.", id=error_id))
    if not errors and middleware.index(TWO_FACTOR) < middleware.index(AUTH):
        errors.append(Error(f"{TWO_FACTOR} must come after {AUTH}.", id="twofactor.E004"))
    return errors
