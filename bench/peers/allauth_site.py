"""django-allauth (65.x) with its mfa app, TOTP, as its documentation sets it up.

allauth asks for the second factor during the login itself: the session is only logged in once
the code passed, so a `login_required` page is protected with nothing checked per request.
The baseline is bare_site: the same page, plain Django.
"""

from bench.peers.base import *  # noqa: F401,F403
from bench.peers.base import BASE_APPS, BASE_MIDDLEWARE

INSTALLED_APPS = BASE_APPS + ["allauth", "allauth.account", "allauth.mfa"]
MIDDLEWARE = BASE_MIDDLEWARE + ["allauth.account.middleware.AccountMiddleware"]
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
ACCOUNT_LOGIN_METHODS = {"username"}
ACCOUNT_SIGNUP_FIELDS = ["username*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = "none"
MFA_SUPPORTED_TYPES = ["totp"]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/protected/"
ROOT_URLCONF = "bench.peers.allauth_urls"
