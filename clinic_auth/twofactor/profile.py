"""My Profile's two-factor part: what the page lists and offers, for the view that shows My Profile
and for the 2FA forms on it that show it again with their errors."""

from django.shortcuts import render

from . import devices, policy, session
from .passkeys.forms import KeyNameForm
from .totp.forms import TOTPCodeForm

PROFILE_TEMPLATE = "users/profile.html"


def profile_context(request, *, disable_form=None, rename_errors=None) -> dict:
    user = request.user
    enrolled = user.twofa_enrolled  # what the page shows; every action it offers checks again
    # Only an enrolled user's page lists methods; a user without any is spared the queries.
    methods = devices.sign_in_methods(user) if enrolled else devices.SignInMethods(app=None, keys=[], recovery_codes_left=0)
    for key in methods.keys:
        key.rename_form = KeyNameForm(initial={"name": key.name}, auto_id=f"id_key_{key.pk}_%s")
        if rename_errors and rename_errors[0] == key.pk:
            key.rename_form = rename_errors[1]
    return {
        "enrolled": enrolled,
        "app_device": methods.app,
        "keys": methods.keys,
        "required_by_clinic": policy.two_factor_required(user),
        "recovery_codes_left": methods.recovery_codes_left,
        "disable_form": disable_form or TOTPCodeForm(auto_id="id_disable_%s"),
        "reauth_fresh": session.reauth_is_fresh(request),
    }


def render_profile(request, **errors):
    """My Profile (its browsers list comes from its own template tag)."""
    return render(request, PROFILE_TEMPLATE, profile_context(request, **errors))
