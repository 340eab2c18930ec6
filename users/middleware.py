from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse

from clinic_auth.twofactor import texts

from .models import UserSession

REASON_MESSAGES = {
    UserSession.EndReason.ENDED_BY_ADMIN: "browser_ended_by_admin",
    UserSession.EndReason.ENDED_BY_USER: "browser_ended_by_user",
}


class SignedOutReasonMiddleware:
    """Say why a browser whose session was ended from elsewhere lands on the login page.

    Ending a browser deletes its session row, so its next request arrives with a cookie
    that loads nothing; Django then drops the cookie, so this is the one request that can tell.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        key = request.COOKIES.get(settings.SESSION_COOKIE_NAME)
        # Reading the keys loads the session; a cookie whose row is gone loads nothing and loses its key.
        if key and not request.session.keys() and request.session.session_key is None:
            reason = (
                UserSession.objects.filter(session_key=key, end_reason__in=list(REASON_MESSAGES))
                .values_list("end_reason", flat=True)
                .first()
            )
            if reason:
                messages.info(request, texts.message(REASON_MESSAGES[reason]))
        return self.get_response(request)
