import base64
import io

import qrcode
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.views import LoginView, LogoutView
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.translation import gettext
from django.views import View
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters

from . import events, flows
from .forms import ChallengeForm, LoginForm, TOTPCodeForm


MAX_NEXT_LENGTH = 2000


def is_safe_next(candidate: str, request) -> bool:
    """A path on this site ("/users/?q=x"), nothing else: not a word, a view name or another host.

    Only a path starting with one "/" is taken, so Django's redirect() never
    tries to reverse it as a view name (that raised NoReverseMatch, a 500).
    """
    return (
        0 < len(candidate) <= MAX_NEXT_LENGTH
        and candidate.startswith("/")
        and candidate.isprintable()
        and url_has_allowed_host_and_scheme(candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure())
    )


def safe_next(request, default: str = "home") -> str:
    """The `next` parameter if it is a path on this site, else a safe default."""
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    return candidate if is_safe_next(candidate, request) else reverse(default)


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
        if not is_safe_next(url, self.request) or url == self.request.path:
            return ""
        return url

    def form_valid(self, form):
        response = super().form_valid(form)
        flows.start_login(self.request)
        return response


@method_decorator(login_not_required, name="dispatch")
class ClinicLogoutView(LogoutView):
    pass


@login_not_required
def admin_login(request):
    """Stands in for the admin's own password-only login form, which would skip the code.

    Someone signed in who is not an operator gets a 403 here: sending them to our
    login page would bounce them straight back to /admin/, for ever.
    """
    if request.user.is_authenticated:
        raise PermissionDenied(gettext("The administration site is for system operators only."))
    next_url = request.GET.get("next", "")
    target = reverse("login")
    if is_safe_next(next_url, request):
        target = f"{target}?{urlencode({'next': next_url})}"
    return HttpResponseRedirect(target)


@method_decorator([never_cache, sensitive_post_parameters("code")], name="dispatch")
class ChallengeView(View):
    template_name = "twofactor/challenge.html"

    def dispatch(self, request, *args, **kwargs):
        if flows.request_gate(request) != flows.Gate.CHALLENGE:
            return HttpResponseRedirect(safe_next(request))
        if flows.session_setup_device_id(request) is not None:
            # This session was setting up 2FA when another session finished enrolling the account.
            flows.remember_setup_device(request, None)
            messages.error(request, events.message("setup_superseded"))
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
                return HttpResponseRedirect(safe_next(request))
            form.add_error("code", result.error)
        return self.render(form, status=200)

    def render(self, form, status=200):
        context = {"form": form, "recovery": self.use_recovery(), "next": safe_next(self.request)}
        return render(self.request, self.template_name, context, status=status)


@method_decorator([never_cache, sensitive_post_parameters("code")], name="dispatch")
class SetupView(View):
    """Set up Two-Factor Authentication: QR code, manual key, confirm with a code.

    Each set-up session gets its own secret, kept by pk in that session only.
    """

    template_name = "twofactor/setup.html"

    def dispatch(self, request, *args, **kwargs):
        self.gate = flows.request_gate(request)
        if self.gate == flows.Gate.CHALLENGE:
            return redirect("two_factor_challenge")
        if flows.is_enrolled(request.user):
            messages.info(request, events.message("already_enabled"))
            return redirect("profile")
        return super().dispatch(request, *args, **kwargs)

    def get(self, request):
        return self.render(TOTPCodeForm())

    def post(self, request):
        form = TOTPCodeForm(request.POST)
        if not form.is_valid():
            return self.render(form)
        try:
            device, codes = flows.totp_confirm(
                user=request.user,
                device_id=flows.session_setup_device_id(request),
                token=form.cleaned_data["code"],
                ip_address=events.client_ip(request),
            )
        except flows.SetupExpired:
            flows.remember_setup_device(request, None)
            if flows.is_enrolled(request.user):
                messages.error(request, events.message("setup_superseded"))
            else:
                messages.error(request, events.message("setup_expired"))
            return HttpResponseRedirect(f"{reverse('two_factor_setup')}?{urlencode({'next': safe_next(request, default='profile')})}")
        except flows.CodeLocked as locked:
            form.add_error("code", flows.locked_message(locked.until))
        except flows.CodeInvalid:
            form.add_error("code", events.message("setup_code_invalid"))
        else:
            flows.mark_verified(request, device, completes_sign_in=self.gate != flows.Gate.OPEN)
            messages.success(request, events.message("enabled"))
            flows.stash_codes_to_show(request, codes, continue_url=safe_next(request))
            return redirect("two_factor_recovery_codes")
        return self.render(form)

    def render(self, form):
        user = self.request.user
        device = flows.totp_setup_device(user=user, device_id=flows.session_setup_device_id(self.request))
        if device is None:
            device = flows.totp_setup_begin(user=user)
            flows.remember_setup_device(self.request, device)
        context = {
            "form": form,
            "qr_code": qr_data_uri(device.config_url),
            "manual_key": flows.manual_entry_key(device),
            "required_by_clinic": flows.clinic_requires_2fa(user),
            "required_for_operator": flows.two_factor_required(user),
            "next": safe_next(self.request, default="profile"),
        }
        return render(self.request, self.template_name, context)


@method_decorator(never_cache, name="dispatch")
class RecoveryCodesView(View):
    """New recovery codes, shown exactly once (POST-redirect-GET).

    POST makes a new set and redirects here; the GET shows it and forgets it, so
    a reload never mints another set behind the user's back.
    """

    def get(self, request):
        shown = flows.take_codes_to_show(request)
        if shown is None:
            context = {"already_shown": True, "enrolled": flows.is_enrolled(request.user)}
            return render(request, "twofactor/recovery_codes.html", context)
        codes, continue_url = shown
        context = {"codes": codes, "codes_text": "\n".join(codes), "continue_url": continue_url}
        response = render(request, "twofactor/recovery_codes.html", context)
        response["Cache-Control"] = "no-store, no-cache, must-revalidate, max-age=0, private"
        return response

    def post(self, request):
        if not flows.is_enrolled(request.user):
            return redirect("profile")
        codes = flows.regenerate_recovery_codes(request=request, user=request.user)
        messages.success(request, events.message("recovery_regenerated"))
        flows.stash_codes_to_show(request, codes, continue_url=reverse("profile"))
        return redirect("two_factor_recovery_codes")


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
                flows.disable_own_2fa(request=request)
                messages.success(request, events.message("disabled_self"))
                return redirect("profile")
            form.add_error("code", result.error)
        return render_profile(request, disable_form=form)
