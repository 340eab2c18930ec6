"""Keep the list of a user's signed-in browsers exact as Django signs them in and out."""

from clinic_auth.http import client_ip

from . import services
from .models import User, UserSession


def remember_signed_in_browser(sender, request, user, **kwargs) -> None:
    if request is None or not hasattr(request, "session") or request.session.session_key is None:
        return
    services.user_session_start(
        user=user,
        session_key=request.session.session_key,
        ip_address=client_ip(request),
        user_agent=request.headers.get("User-Agent", ""),
    )


def list_completed_sign_in(sender, request, user, **kwargs) -> None:
    if request.session.session_key is not None:
        services.user_session_mark_completed(session_key=request.session.session_key)


def forget_signed_out_browser(sender, request, user, **kwargs) -> None:
    if request is not None and getattr(request, "session", None) is not None and request.session.session_key:
        services.user_session_mark_ended(session_key=request.session.session_key, reason=UserSession.EndReason.SIGNED_OUT)


# --- User.twofa_enrolled, for every model in devices.PRIMARY_METHODS ------------------
# Signals rather than calls from each service, so the Django admin, django-otp-webauthn's
# own registration view and queryset deletes keep the flag exact too. A device is saved on
# every code it checks (django-otp's throttle and drift), so a save refreshes the flag only
# when the owner or `confirmed` changed since the row was read.

_LOADED = "_twofa_enrolled_loaded"


def remember_loaded_device(sender, instance, **kwargs) -> None:
    fields = instance.__dict__  # not getattr: a deferred field would cost a query per row
    loaded = instance.pk is not None and "user_id" in fields and "confirmed" in fields
    setattr(instance, _LOADED, (fields["user_id"], fields["confirmed"]) if loaded else None)


def device_saved(sender, instance, created, update_fields=None, **kwargs) -> None:
    if update_fields is not None and not {"user", "user_id", "confirmed"} & set(update_fields):
        return
    before = None if created else getattr(instance, _LOADED, None)
    now = (instance.user_id, instance.confirmed)
    setattr(instance, _LOADED, now)
    if created and not instance.confirmed:
        return  # a set-up just begun changes nobody's enrolment
    if before == now:
        return
    services.twofa_enrolled_refresh(user_ids=[instance.user_id, before[0] if before else None])


def device_deleted(sender, instance, origin=None, **kwargs) -> None:
    if isinstance(origin, User) or getattr(origin, "model", None) is User:
        return  # the user is being deleted with their devices
    services.twofa_enrolled_refresh(user_ids=[instance.user_id])
