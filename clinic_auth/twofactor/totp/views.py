from django.contrib import messages
from django.http import HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.utils.http import urlencode
from django.views import View
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters

from clinic_auth.http import client_ip, safe_next

from .. import devices, policy, reauth, session, texts
from ..codes import CodeRefused
from ..policy import Gate
from . import qr
from .forms import TOTPCodeForm
from .services import SetupExpired, totp_confirm, totp_setup_begin


@method_decorator([never_cache, sensitive_post_parameters("code")], name="dispatch")
class SetupView(View):
    """Set up Two-Factor Authentication: QR code, manual key, confirm with a code.

    Each set-up session gets its own secret, kept by pk in that session only.
    """

    template_name = "twofactor/totp/setup.html"

    def dispatch(self, request, *args, **kwargs):
        self.gate = session.request_gate(request)
        if self.gate == Gate.CHALLENGE:
            return redirect("two_factor_challenge")
        self.replacing = session.replacing_authenticator(request)
        if devices.confirmed_totp_device(request.user) is not None and not self.replacing:
            messages.info(request, texts.message("already_enabled"))
            return redirect("profile")
        # A second method, next to a passkey or security key; or the first: on an unlocked computer a
        # colleague must not bind their own phone to someone else's account.
        label = "action_add_app" if devices.is_enrolled(request.user) else "action_set_up_2fa"
        asked = reauth.confirmation_needed(request, texts.message(label), fields=("code",))
        if asked is not None:
            return asked
        return super().dispatch(request, *args, **kwargs)

    def get(self, request):
        return self.render(TOTPCodeForm())

    def post(self, request):
        form = TOTPCodeForm(request.POST)
        if not form.is_valid():
            return self.render(form)
        try:
            device, codes = totp_confirm(
                user=request.user,
                device_id=session.setup_device_id(request),
                token=form.cleaned_data["code"],
                ip_address=client_ip(request),
            )
        except SetupExpired:
            session.remember_setup_device(request, None)
            key = "setup_superseded" if devices.confirmed_totp_device(request.user) else "setup_expired"
            messages.error(request, texts.message(key))
            return HttpResponseRedirect(
                f"{reverse('two_factor_setup')}?{urlencode({'next': safe_next(request, default='profile')})}"
            )
        except CodeRefused as refused:
            form.add_error("code", texts.code_refused(refused, at_setup=True))
        else:
            if self.replacing:
                session.done_replacing_authenticator(request)
                session.verified_with(request, device)  # the one-time code this session passed with is gone
            if not codes:  # a second method next to a key, or a new app replacing the old one
                messages.success(request, texts.message("app_replaced" if self.replacing else "app_added"))
                return redirect("profile")
            session.mark_verified(request, device, completes_sign_in=self.gate != Gate.OPEN)
            messages.success(request, texts.message("enabled"))
            session.stash_codes_to_show(request, codes, continue_url=safe_next(request))
            return redirect("two_factor_recovery_codes")
        return self.render(form)

    def render(self, form):
        user = self.request.user
        device = devices.live_setup_device(user=user, device_id=session.setup_device_id(self.request))
        if device is None:
            device = totp_setup_begin(user=user)
            session.remember_setup_device(self.request, device)
        qr_code, qr_size = qr.data_uri(device.config_url)
        context = {
            "form": form,
            "qr_code": qr_code,
            "qr_size": qr_size,
            "otpauth_uri": device.config_url,
            "key_for_copying": device.manual_entry_key.replace(" ", ""),
            "manual_key": device.manual_entry_key,
            "required_by_clinic": policy.clinic_requires_2fa(user),
            "required_for_operator": policy.two_factor_required(user),
            "can_cancel": self.gate != Gate.SETUP,  # only a set-up the user chose can be left
            "replacing": self.replacing,
            "next": safe_next(self.request, default="profile"),
        }
        return render(self.request, self.template_name, context)
