"""django-two-factor-auth (1.x) as its documentation sets it up, TOTP through django-otp's TOTPDevice.

Protected page: its OTPRequiredMixin (the user must be verified by a device, checked on each request
through django-otp's OTPMiddleware). The baseline is bare_site: the page with login_required only.
"""

from bench.peers.base import *  # noqa: F401,F403
from bench.peers.base import BASE_APPS, BASE_MIDDLEWARE

INSTALLED_APPS = BASE_APPS + [
    "django_otp",
    "django_otp.plugins.otp_static",
    "django_otp.plugins.otp_totp",
    "two_factor",
]
MIDDLEWARE = BASE_MIDDLEWARE + ["django_otp.middleware.OTPMiddleware"]
LOGIN_URL = "two_factor:login"
LOGIN_REDIRECT_URL = "/protected/"
ROOT_URLCONF = "bench.peers.two_factor_urls"
