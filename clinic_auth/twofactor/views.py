import base64
import io

import qrcode
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.views import LoginView, LogoutView
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.utils.http import url_has_allowed_host_and_scheme
from django.views import View
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters

from . import events, flows
from .forms import ChallengeForm, LoginForm, TOTPCodeForm
from .models import AuditEvent


def safe_next(request, default: str = "home") -> str:
    """The `next` parameter if it points at this site, else a safe default."""
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return reverse(default)


def qr_data_uri(text: str) -> str:
    """A PNG QR code, inline, so the secret never sits in a file or a URL."""
    image = qrcode.make(text, box_size=8, border=4, error_correction=qrcode.constants.ERROR_CORRECT_M)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


class ClinicLoginView(LoginView):
    form_class = LoginForm
    template_name = "twofactor/login.html"
    redirect_authenticated_user = True

    def get_redirect_url(self):
        # A `next` naming this very page makes Django raise a redirect-loop error (a 500).
        url = super().get_redirect_url()
        return "" if url == self.request.path else url

    def form_valid(self, form):
        response = super().form_valid(form)
        flows.start_login(self.request)
        return response


@method_decorator(login_not_required, name="dispatch")
class ClinicLogoutView(LogoutView):
    pass


@method_decorator([never_cache, sensitive_post_parameters("code")], name="dispatch")
class ChallengeView(View):
    template_name = "twofactor/challenge.html"

    def dispatch(self, request, *args, **kwargs):
        if flows.request_gate(request) != flows.Gate.CHALLENGE:
            return redirect(safe_next(request))
        if flows.pending_login_expired(request):
            logout(request)
            messages.error(request, events.message("login_expired"))
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
            result = flows.check_code(request=request, user=request.user, kind=kind, token=token)
            if result.ok:
                flows.mark_verified(request, result.device)
                if kind == "recovery":
                    left = flows.recovery_codes_left(request.user)
                    codes = "recovery code" if left == 1 else "recovery codes"
                    messages.warning(request, f"You used a recovery code. {left} {codes} left.")
                return redirect(safe_next(request))
            form.add_error("code", result.error)
        return self.render(form, status=200)

    def render(self, form, status=200):
        context = {"form": form, "recovery": self.use_recovery(), "next": safe_next(self.request)}
        return render(self.request, self.template_name, context, status=status)


@method_decorator([never_cache, sensitive_post_parameters("code")], name="dispatch")
class SetupView(View):
    """Set up Two-Factor Authentication: QR code, manual key, confirm with a code."""

    template_name = "twofactor/setup.html"

    def dispatch(self, request, *args, **kwargs):
        gate = flows.request_gate(request)
        if gate == flows.Gate.CHALLENGE:
            return redirect("two_factor_challenge")
        if request.method == "GET" and flows.is_enrolled(request.user):
            messages.info(request, events.message("already_enabled"))
            return redirect("profile")
        return super().dispatch(request, *args, **kwargs)

    def get(self, request):
        return self.render(TOTPCodeForm())

    def post(self, request):
        form = TOTPCodeForm(request.POST)
        if form.is_valid():
            if flows.is_enrolled(request.user):
                messages.info(request, events.message("already_enabled"))
                return redirect("profile")
            enrolment = flows.confirm_totp_device(
                request=request, user=request.user, token=form.cleaned_data["code"]
            )
            if enrolment.ok:
                messages.success(request, events.message("enabled"))
                return render_recovery_codes(request, enrolment.recovery_codes, continue_url=safe_next(request))
            form.add_error("code", enrolment.error)
        return self.render(form)

    def render(self, form):
        device = flows.pending_totp_device(self.request.user)
        context = {
            "form": form,
            "qr_code": qr_data_uri(device.config_url),
            "manual_key": flows.manual_entry_key(device),
            "required_by_clinic": flows.clinic_requires_2fa(self.request.user),
            "required_for_operator": flows.two_factor_required(self.request.user),
            "next": safe_next(self.request, default="profile"),
        }
        return render(self.request, self.template_name, context)


def render_recovery_codes(request, codes: list[str], *, continue_url: str):
    """Shown once: the codes are in this response only, never stored in clear."""
    response = render(
        request,
        "twofactor/recovery_codes.html",
        {"codes": codes, "codes_text": "\n".join(codes), "continue_url": continue_url},
    )
    response["Cache-Control"] = "no-store, no-cache, must-revalidate, max-age=0, private"
    return response


@method_decorator(never_cache, name="dispatch")
class RegenerateRecoveryCodesView(View):
    http_method_names = ["post"]

    def post(self, request):
        if not flows.is_enrolled(request.user):
            return redirect("profile")
        codes = flows.regenerate_recovery_codes(request=request, user=request.user)
        messages.success(request, events.message("recovery_regenerated"))
        return render_recovery_codes(request, codes, continue_url=reverse("profile"))


@method_decorator([never_cache, sensitive_post_parameters("code")], name="dispatch")
class DisableOwnView(View):
    """Turn 2FA off for yourself, after a current code, unless the clinic requires it."""

    http_method_names = ["post"]

    def post(self, request):
        from users.views import render_profile

        if not flows.can_disable_own_2fa(request.user):
            messages.error(request, events.message("disable_refused_mandatory"))
            return redirect("profile")
        # Same ids as the profile's own form, so the label and error stay tied to the field.
        form = TOTPCodeForm(request.POST, auto_id="id_disable_%s")
        if form.is_valid():
            result = flows.check_code(request=request, user=request.user, kind="totp", token=form.cleaned_data["code"])
            if result.ok:
                flows.disable_2fa(
                    user=request.user, actor=request.user, request=request, action=AuditEvent.Action.DISABLED_BY_SELF
                )
                messages.success(request, events.message("disabled_self"))
                return redirect("profile")
            form.add_error("code", result.error)
        return render_profile(request, disable_form=form)
