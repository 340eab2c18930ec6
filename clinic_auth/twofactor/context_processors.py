from . import policy


def two_factor(request):
    """Tells templates whether to show the full navigation (only past the 2FA gate)."""
    gate = getattr(request, "twofa_gate", None)
    return {"twofa_gate": gate, "show_navigation": gate in policy.ALLOWED_GATES}
