import base64
import io

import qrcode
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.http import HttpResponseRedirect
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.utils.http import urlencode
from django.views import View
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters

from clinic_auth.http import safe_next

from . import devices, policy, reauth, services, session, texts
from clinic_auth.http import client_ip
from .forms import ChallengeForm, TOTPCodeForm
from .policy import Gate

QR_TARGET_PIXELS = 264  # about the size a phone camera reads well from a screen
QR_QUIET_ZONE = 4  # modules of white border the QR standard asks for


def qr_data_uri(text: str) -> tuple[str, int]:
    """A PNG QR code, inline, so the secret never sits in a file or a URL; and its size in px.

    Every module is a whole number of pixels and the page shows the image at its own size,
    so no square is stretched unevenly (53 modules squeezed into 264 px blur the edges).
    """
    qr = qrcode.QRCode(border=QR_QUIET_ZONE, error_correction=qrcode.constants.ERROR_CORRECT_M)
    qr.add_data(text)
    qr.make(fit=True)
    qr.box_size = max(2, QR_TARGET_PIXELS // (qr.modules_count + 2 * QR_QUIET_ZONE))
    image = qr.make_image()
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode(), image.pixel_size


@method_decorator([never_cache, sensitive_post_parameters("code")], name="dispatch")
class ChallengeView(View):
    template_name = "twofactor/challenge.html"

    def dispatch(self, request, *args, **kwargs):
        if session.request_gate(request) != Gate.CHALLENGE:
            return HttpResponseRedirect(safe_next(request))
        if session.setup_device_id(request) is not None:
            # This session was setting up 2FA when another session finished enrolling the account.
            session.remember_setup_device(request, None)
            messages.error(request, texts.message("setup_superseded"))
        if session.pending_login_expired(request):
            logout(request)
            messages.error(request, texts.message("login_expired"))
            return redirect("login")
        return super().dispatch(request, *args, **kwargs)

    def use_recovery(self) -> bool:
        return self.request.GET.get("method") == "recovery" or self.request.POST.get("method") == "recovery"

    def get(self, request):
        return self.render(ChallengeForm(recovery=self.use_recovery()))

    def post(self, request):
        form = ChallengeForm(request.POST, recovery=self.use_recovery())
        if form.is_valid():
            kind, token = form.cleaned_data["code"]
            try:
                device = services.code_sign_in(user=request.user, kind=kind, token=token, ip_address=client_ip(request))
            except services.CodeRefused as refused:
                form.add_error("code", texts.code_refused(refused))
            else:
                session.mark_verified(request, device, sign_in_recorded=True)
                if kind == "signin":
                    # Straight to a new authenticator; the old app keeps working until it is confirmed.
                    session.start_replacing_authenticator(request)
                    messages.warning(request, texts.message("signin_code_used"))
                    return redirect("two_factor_setup")
                if kind == "recovery":
                    messages.warning(request, texts.recovery_code_used(devices.recovery_codes_left(request.user)))
                return HttpResponseRedirect(safe_next(request))
        return self.render(form)

    def render(self, form):
        methods = devices.methods_available(self.request.user)
        context = {
            "form": form,
            "recovery": self.use_recovery(),
            "next": safe_next(self.request),
            "has_keys": methods.has_keys,
            "has_app": methods.has_app,
        }
        return render(self.request, self.template_name, context)


@method_decorator([never_cache, sensitive_post_parameters("code")], name="dispatch")
class SetupView(View):
    """Set up Two-Factor Authentication: QR code, manual key, confirm with a code.

    Each set-up session gets its own secret, kept by pk in that session only.
    """

    template_name = "twofactor/setup.html"

    def dispatch(self, request, *args, **kwargs):
        self.gate = session.request_gate(request)
        if self.gate == Gate.CHALLENGE:
            return redirect("two_factor_challenge")
        self.replacing = session.replacing_authenticator(request)
        if devices.confirmed_totp_device(request.user) is not None and not self.replacing:
            messages.info(request, texts.message("already_enabled"))
            return redirect("profile")
        if devices.is_enrolled(request.user):  # a second method, next to a passkey or security key
            asked = reauth.confirmation_needed(request, texts.message("action_add_app"))
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
            device, codes = services.totp_confirm(
                user=request.user,
                device_id=session.setup_device_id(request),
                token=form.cleaned_data["code"],
                ip_address=client_ip(request),
            )
        except services.SetupExpired:
            session.remember_setup_device(request, None)
            key = "setup_superseded" if devices.confirmed_totp_device(request.user) else "setup_expired"
            messages.error(request, texts.message(key))
            return HttpResponseRedirect(
                f"{reverse('two_factor_setup')}?{urlencode({'next': safe_next(request, default='profile')})}"
            )
        except services.CodeRefused as refused:
            form.add_error("code", texts.code_refused(refused, at_setup=True))
        else:
            if self.replacing:
                session.done_replacing_authenticator(request)
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
            device = services.totp_setup_begin(user=user)
            session.remember_setup_device(self.request, device)
        qr_code, qr_size = qr_data_uri(device.config_url)
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


@method_decorator(never_cache, name="dispatch")
class RecoveryCodesView(View):
    """New recovery codes, shown exactly once (POST-redirect-GET).

    POST makes a new set and redirects here; the GET shows it and forgets it, so
    a reload never mints another set behind the user's back.
    """

    template_name = "twofactor/recovery_codes.html"

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
            "download_text": render_to_string("twofactor/recovery_codes.txt", about),
            "continue_url": continue_url,
        }
        return render(request, self.template_name, context)

    def post(self, request):
        if not devices.is_enrolled(request.user):
            return redirect("profile")
        asked = reauth.confirmation_needed(request, texts.message("action_new_codes"))
        if asked is not None:
            return asked
        codes = services.recovery_codes_regenerate(user=request.user, ip_address=client_ip(request))
        messages.success(request, texts.message("recovery_regenerated"))
        session.stash_codes_to_show(request, codes, continue_url=reverse("profile"))
        return redirect("two_factor_recovery_codes")


class DismissGraceBannerView(View):
    """Hide the grace-period banner for the rest of this session (it comes back at the next sign-in)."""

    http_method_names = ["post"]

    def post(self, request):
        session.dismiss_grace_banner(request)
        return HttpResponseRedirect(safe_next(request))
