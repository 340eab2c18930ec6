"""Error responses Django leaves blank or plain, rendered with the app's own templates.

404, 403, 400 and 500 use Django's default handlers with the templates of the same
name; this adds the CSRF failure view and the 405 page.
"""

from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import render

from clinic_auth.http import wants_json


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """CSRF_FAILURE_VIEW: an expired or missing token, said in plain words."""
    return render(request, "403_csrf.html", status=403)


class MethodNotAllowedPageMiddleware:
    """Django's 405 has an empty body, which browsers show as a blank page.

    A POST-only address opened from a bookmark or the Back button gets the app's page
    instead, with the same status and Allow header.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if not isinstance(response, HttpResponseNotAllowed) or response.content or wants_json(request):
            return response
        page = render(request, "405.html", status=405)
        page["Allow"] = response["Allow"]
        return page
