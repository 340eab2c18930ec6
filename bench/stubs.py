"""Benchmark-only middleware for the variants without TwoFactorMiddleware."""

from clinic_auth.twofactor import policy


class SamePageMiddleware:
    """Sets what TwoFactorMiddleware sets for a verified user, so templates render the same page.

    It enforces nothing and reads nothing: variants (b) and (c) keep the
    cost of their own enforcement (none, or django-otp's) and only that.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.twofa_gate = policy.Gate.VERIFIED
        return self.get_response(request)
