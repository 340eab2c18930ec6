"""Re-authentication before sensitive actions ("Confirm it's you").

A sensitive action whose session has not proved its factor within REAUTH_WINDOW is parked in the
session under an id of its own, with the form fields its view reads and nothing else, and the
person is sent to confirm; once they have, that action, and only that one, runs as they submitted
it (nothing to retype).
"""

from __future__ import annotations

from functools import wraps

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode

from clinic_auth.http import wants_json

from . import session

CONFIRM_VIEW = "reauthenticate"
# No form of the app is anywhere near this; a bigger body is not parked (it would sit in the session row).
MAX_PARKED_BODY_BYTES = 4096


def confirm_url(action_id: str) -> str:
    return f"{reverse(CONFIRM_VIEW)}?{urlencode({'action': action_id})}"


def confirmation_needed(
    request: HttpRequest, label: str, *, fields: tuple[str, ...] = (), json_only: bool = False
) -> HttpResponse | None:
    """None when the session proved its factor recently; else the response that asks for it (JSON
    for a script, which cannot follow a redirect to a page). `fields`: the POST fields the view
    reads, kept to replay it."""
    if session.reauth_is_fresh(request):
        return None
    if json_only or wants_json(request):
        return JsonResponse({"error": "reauthentication_required", "redirect": reverse(CONFIRM_VIEW)}, status=403)
    try:
        size = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        size = MAX_PARKED_BODY_BYTES + 1
    if size > MAX_PARKED_BODY_BYTES:
        return render(request, "413.html", status=413)
    return redirect(confirm_url(session.stash_pending_action(request, label=label, fields=fields)))


def sensitive_action(label, *, fields: tuple[str, ...] = (), methods: tuple[str, ...] = ("POST",)):
    """Decorate a view (function, or a class's dispatch through method_decorator).

    `label` names the action on the "Confirm it's you" page: a string, or a
    callable(request, **kwargs) for one that names its object.
    """

    def decorator(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if request.method in methods:
                text = label(request, **kwargs) if callable(label) else label
                asked = confirmation_needed(request, str(text), fields=fields)
                if asked is not None:
                    return asked
            return view(request, *args, **kwargs)

        return wrapped

    return decorator
