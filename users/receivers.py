"""Keep the list of a user's signed-in browsers exact as Django signs them in and out."""

from clinic_auth.twofactor.events import client_ip

from . import services
from .models import UserSession


def remember_signed_in_browser(sender, request, user, **kwargs) -> None:
    if request is None or not hasattr(request, "session") or request.session.session_key is None:
        return
    services.user_session_start(
        user=user,
        session_key=request.session.session_key,
        ip_address=client_ip(request),
        user_agent=request.headers.get("User-Agent", ""),
    )


def forget_signed_out_browser(sender, request, user, **kwargs) -> None:
    if request is not None and getattr(request, "session", None) is not None and request.session.session_key:
        services.user_session_mark_ended(session_key=request.session.session_key, reason=UserSession.EndReason.SIGNED_OUT)
