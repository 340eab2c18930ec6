from django.conf import settings
from django.contrib import messages
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.cache import never_cache

from clinic_auth.http import client_ip

from .. import devices, reauth, session, texts
from .services import recovery_codes_regenerate


def after_recovery_sign_in(request, device) -> None:
    """Signed in with a recovery code: say how many are left (the page goes on as after any code)."""
    messages.warning(request, texts.recovery_code_used(devices.recovery_codes_left(request.user)))


@method_decorator(never_cache, name="dispatch")
class RecoveryCodesView(View):
    """New recovery codes, shown exactly once (POST-redirect-GET).

    POST makes a new set and redirects here; the GET shows it and forgets it, so
    a reload never mints another set behind the user's back.
    """

    template_name = "twofactor/recovery/codes.html"

    def get(self, request):
        shown = session.take_codes_to_show(request)
        if shown is None:
            context = {"already_shown": True, "enrolled": devices.is_enrolled(request.user)}
            return render(request, self.template_name, context)
        codes, continue_url = shown
        # The file and the printout say whose codes they are: a bare list in a drawer is no help.
        about = {"codes": codes, "user": request.user, "product": settings.CLINICAUTH_PRODUCT_NAME, "when": timezone.now()}
        context = {
            **about,
            "codes_text": "\n".join(codes),
            "download_text": render_to_string("twofactor/recovery/codes.txt", about),
            "continue_url": continue_url,
        }
        return render(request, self.template_name, context)

    def post(self, request):
        if not devices.is_enrolled(request.user):
            return redirect("profile")
        asked = reauth.confirmation_needed(request, texts.message("action_new_codes"))
        if asked is not None:
            return asked
        codes = recovery_codes_regenerate(user=request.user, ip_address=client_ip(request))
        messages.success(request, texts.message("recovery_regenerated"))
        session.stash_codes_to_show(request, codes, continue_url=reverse("profile"))
        return redirect("two_factor_recovery_codes")
