from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import urlencode

from clinic_auth.http import is_safe_next, wants_json

from . import policy, session, texts
from .policy import Gate


class SessionTimeoutMiddleware:
    """End sessions after SESSION_IDLE_TIMEOUT idle or SESSION_ABSOLUTE_TIMEOUT in all."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if session.ended_elsewhere(request):
            messages.info(request, texts.message("signed_out_elsewhere"))
        # The idle warning's own "how long is left?" must not count as activity.
        passive = request.method == "GET" and request.path_info == reverse("session_keep_alive")
        ended_by = session.timed_out_else_touch(request, touch=not passive) if request.user.is_authenticated else None
        if ended_by:
            logout(request)
            messages.info(request, texts.session_ended(ended_by))
            back_to = self.page_to_return_to(request, passive=passive)
            return redirect_to_login(back_to, settings.LOGIN_URL) if back_to else redirect(settings.LOGIN_URL)
        return self.get_response(request)

    @staticmethod
    def page_to_return_to(request: HttpRequest, *, passive: bool) -> str | None:
        """Where signing in again leads: the page asked for (a GET of a page, not a script's call),
        or the page the idle countdown's log-out names (it posts when the server has just ended it)."""
        if request.method == "GET" and not passive and not wants_json(request):
            return request.get_full_path()
        if request.method == "POST" and policy.view_name_for_path(request.path_info) == "logout":
            candidate = request.POST.get("next", "")
            return candidate if is_safe_next(candidate, request) else None
        return None


class TwoFactorMiddleware:
    """Per request: allow, send to the code challenge, or send to 2FA set-up.

    The decision itself lives in policy and the session adapter; this only turns it into a response.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        gate = session.request_gate(request)
        request.twofa_gate = gate
        # What django-otp's OTPMiddleware would add, from the gate already known (verification.py).
        user = request.user
        user.is_verified = (gate == Gate.VERIFIED).__bool__
        if user.is_authenticated:
            user.otp_device_persistent_id = session.verified_device_id(request) if gate == Gate.VERIFIED else None
        else:
            user.otp_device = None
        if gate in policy.ALLOWED_GATES:
            return self.get_response(request)
        if policy.is_exempt(gate, policy.view_name_for_path(request.path_info)):
            return self.get_response(request)
        target = reverse(policy.GATE_VIEW_NAME[gate])
        if wants_json(request):
            return JsonResponse(
                {
                    "error": "two_factor_required" if gate == Gate.CHALLENGE else "two_factor_setup_required",
                    "redirect": target,
                },
                status=403,
            )
        if request.method == "GET":
            target = f"{target}?{urlencode({'next': request.get_full_path()})}"
        return redirect(target)
