"""Variant (c) of the enforcement benchmark: django-otp's stock OTPMiddleware + otp_required.

TwoFactorMiddleware is replaced by django_otp.middleware.OTPMiddleware (which
loads the verifying device named in the session on each request) and the
measured view is wrapped in django_otp.decorators.otp_required (bench/urls_djangootp.py).
"""

from clinic_auth.settings import *  # noqa: F401,F403
from clinic_auth.settings import MIDDLEWARE as _APP_MIDDLEWARE

TWO_FACTOR = "clinic_auth.twofactor.middleware.TwoFactorMiddleware"

MIDDLEWARE = []
for _m in _APP_MIDDLEWARE:
    if _m == TWO_FACTOR:
        MIDDLEWARE += ["django_otp.middleware.OTPMiddleware", "bench.stubs.SamePageMiddleware"]
    else:
        MIDDLEWARE.append(_m)
ROOT_URLCONF = "bench.urls_djangootp"
SILENCED_SYSTEM_CHECKS = ["twofactor.E003"]
