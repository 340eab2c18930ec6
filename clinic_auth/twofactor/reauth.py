"""Re-authentication before sensitive actions ("Confirm it's you").

A sensitive action whose session has not proved its factor within REAUTH_WINDOW
is parked in the session with its form data, and the person is sent to confirm;
once they have, the action runs as they submitted it (nothing to retype).
"""

from __future__ import annotations

from functools import wraps

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse

from . import session
from clinic_auth.http import wants_json

CONFIRM_VIEW = "reauthenticate"


def confirmation_needed(request: HttpRequest, label: str, *, json_only: bool = False) -> HttpResponse | None:
    """None when the session proved its factor recently; else the response that asks for it
    (JSON for a script, which cannot follow a redirect to a page)."""
    if session.reauth_is_fresh(request):
        return None
    if json_only or wants_json(request):
        return JsonResponse({"error": "reauthentication_required", "redirect": reverse(CONFIRM_VIEW)}, status=403)
    session.stash_pending_action(request, label=label)
    return redirect(CONFIRM_VIEW)


def sensitive_action(label, *, methods: tuple[str, ...] = ("POST",)):
    """Decorate a view (function, or a class's dispatch through method_decorator).

    `label` names the action on the "Confirm it's you" page: a string, or a
    callable(request, **kwargs) for one that names its object.
    """

    def decorator(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if request.method in methods:
                text = label(request, **kwargs) if callable(label) else label
                asked = confirmation_needed(request, str(text))
                if asked is not None:
                    return asked
            return view(request, *args, **kwargs)

        return wrapped

    return decorator
