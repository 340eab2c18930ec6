"""Variant (b) of the enforcement benchmark: this app without TwoFactorMiddleware.

Everything else is clinic_auth.settings. A stub that marks the request as
past the gate keeps the page identical (the navigation shows only past the
gate), so the comparison measures the enforcement decision, not template
differences. The stub does no I/O.
"""

from clinic_auth.settings import *  # noqa: F401,F403
from clinic_auth.settings import MIDDLEWARE as _APP_MIDDLEWARE

TWO_FACTOR = "clinic_auth.twofactor.middleware.TwoFactorMiddleware"
SAME_PAGE_STUB = "bench.stubs.SamePageMiddleware"

MIDDLEWARE = [SAME_PAGE_STUB if m == TWO_FACTOR else m for m in _APP_MIDDLEWARE]
# The app's system check insists on TwoFactorMiddleware; this variant removes it on purpose.
SILENCED_SYSTEM_CHECKS = ["twofactor.E003"]
