import time

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import urlencode

from . import events, flows

LAST_SEEN_KEY = "clinicauth_last_seen"
LOGIN_AT_KEY = flows.LOGIN_AT_KEY
LAST_SEEN_WRITE_INTERVAL = 60


def wants_json(request: HttpRequest) -> bool:
    accept = request.headers.get("Accept", "")
    return "application/json" in accept or request.headers.get("X-Requested-With") == "XMLHttpRequest"


class SessionTimeoutMiddleware:
    """End sessions after SESSION_IDLE_TIMEOUT idle or SESSION_ABSOLUTE_TIMEOUT in all.

    The last-seen time is written at most once a minute, so a busy user does not
    cost a session write per request.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.user.is_authenticated:
            now = int(time.time())
            session = request.session
            login_at = session.setdefault(LOGIN_AT_KEY, now)
            last_seen = session.get(LAST_SEEN_KEY, now)
            if now - last_seen > settings.SESSION_IDLE_TIMEOUT or now - login_at > settings.SESSION_ABSOLUTE_TIMEOUT:
                logout(request)
                messages.info(request, events.message("session_expired"))
                return redirect(settings.LOGIN_URL)
            if now - session.get(LAST_SEEN_KEY, 0) >= LAST_SEEN_WRITE_INTERVAL:
                session[LAST_SEEN_KEY] = now
        return self.get_response(request)


class TwoFactorMiddleware:
    """Per request: allow, send to the code challenge, or send to 2FA set-up.

    The decision itself lives in flows; this only turns it into a response.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        gate = flows.request_gate(request)
        request.twofa_gate = gate
        if gate in flows.ALLOWED_GATES:
            return self.get_response(request)
        if flows.is_exempt(gate, flows.view_name_for_path(request.path_info)):
            return self.get_response(request)
        target = reverse(flows.GATE_VIEW_NAME[gate])
        if wants_json(request):
            return JsonResponse(
                {
                    "error": "two_factor_required" if gate == flows.Gate.CHALLENGE else "two_factor_setup_required",
                    "redirect": target,
                },
                status=403,
            )
        if request.method == "GET":
            target = f"{target}?{urlencode({'next': request.get_full_path()})}"
        return redirect(target)
