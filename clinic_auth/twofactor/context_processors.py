from django.conf import settings

from . import policy, session, texts


def two_factor(request):
    """Tells templates whether to show the full navigation (only past the 2FA gate), when the
    idle logout will come (for the warning before it), and the grace-period banner (from the
    session's cached gate: no query)."""
    gate = getattr(request, "twofa_gate", None)
    context = {"twofa_gate": gate, "show_navigation": gate in policy.ALLOWED_GATES}
    if getattr(request, "user", None) is not None and request.user.is_authenticated:
        warn = min(settings.CLINICAUTH_IDLE_WARNING_SECONDS, settings.SESSION_IDLE_TIMEOUT)
        expires_in, ends_by = session.session_left(request)
        context.update(
            session_expires_in=expires_in,
            session_ends_by=ends_by,
            idle_warning_seconds=warn,
            idle_warning_text=f"{warn // 60}:{warn % 60:02d}",
            absolute_timeout_text=texts.duration(settings.SESSION_ABSOLUTE_TIMEOUT),
        )
    banner = session.grace_banner(request) if gate == policy.Gate.OPEN else None
    if banner is not None:
        context["grace_banner"] = texts.grace_banner(starts_on=banner["date"], days_left=banner["days_left"])
    return context
