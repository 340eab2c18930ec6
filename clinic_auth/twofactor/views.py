"""The 2FA pages every method shares: the sign-in code page, "Confirm it's you", and turning 2FA off
(your own, or a member's by their clinic admin); and the set-up reminders. Each method's own pages
are in its package."""


from django.contrib import messages
from django.contrib.auth import authenticate, logout
from django.http import HttpResponseRedirect, QueryDict
from django.shortcuts import redirect, render
from django.urls import resolve, reverse
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters

from clinic_auth.http import client_ip, is_safe_next, safe_next
from clinic_auth.passwords import PasswordAttemptsThrottled
from clinic_auth.permissions import ClinicAdminRequiredMixin

from . import devices, policy, profile, reauth, services, session, texts
from .codes import CodeRefused
from .forms import ChallengeForm, ReauthPasswordForm
from .models import AuditEvent
from .policy import Gate
from .totp.forms import TOTPCodeForm
from .totp.services import totp_verify


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
            method, token = form.cleaned_data["code"]
            try:
                device = method.verify(user=request.user, token=token, ip_address=client_ip(request), completes_sign_in=True)
            except CodeRefused as refused:
                form.add_error("code", texts.code_refused(refused))
            else:
                session.mark_verified(request, device, sign_in_recorded=True)
                follow_up = method.after_sign_in(request, device) if method.after_sign_in else None
                return follow_up or HttpResponseRedirect(safe_next(request))
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


class ReauthenticateView(View):
    """"Confirm it's you": a current code (or a recovery code, or a passkey), or the password for
    an account without 2FA; then the one parked action the page names (its id travels with the
    page) runs with the form fields it was submitted with. Cancel forgets it."""

    template_name = "twofactor/reauthenticate.html"

    def dispatch(self, request, *args, **kwargs):
        self.action_id = request.POST.get("action") or request.GET.get("action") or ""
        self.action = session.pending_action(request, self.action_id)
        if self.action is None:
            messages.info(request, texts.message("nothing_to_confirm"))
            return redirect("home")
        self.enrolled = devices.is_enrolled(request.user)
        return super().dispatch(request, *args, **kwargs)

    def get(self, request):
        return self.render(self.new_form())

    def post(self, request):
        if "cancel" in request.POST:
            session.take_pending_action(request, self.action_id)
            messages.info(request, texts.message("action_cancelled"))
            return redirect("home")
        if "continue" in request.POST and session.reauth_is_fresh(request):
            return replay(request, session.take_pending_action(request, self.action_id))
        form = self.new_form(request.POST)
        if form.is_valid() and self.confirm(form):
            session.note_reauth(request)
            return replay(request, session.take_pending_action(request, self.action_id))
        return self.render(form)

    def new_form(self, data=None):
        return ChallengeForm(data) if self.enrolled else ReauthPasswordForm(data)

    def confirm(self, form) -> bool:
        user, ip_address = self.request.user, client_ip(self.request)
        if self.enrolled:
            method, token = form.cleaned_data["code"]
            try:
                method.verify(user=user, token=token, ip_address=ip_address)
                return True
            except CodeRefused as refused:
                form.add_error("code", texts.code_refused(refused))
        else:
            try:
                confirmed = authenticate(self.request, username=user.get_username(), password=form.cleaned_data["password"])
            except PasswordAttemptsThrottled as throttled:
                form.add_error("password", texts.throttled_message(throttled.until))
            else:
                if confirmed is not None and confirmed.pk == user.pk:
                    return True
                form.add_error("password", texts.message("password_wrong"))
        services.reauth_record_failure(user=user, ip_address=ip_address, detail=self.action["label"])
        return False

    def render(self, form):
        user = self.request.user
        context = {
            "form": form,
            "label": self.action["label"],
            "action_id": self.action_id,
            # Where a passkey's confirmation comes back to (django-otp-webauthn's script reads `next`).
            "confirm_url": reauth.confirm_url(self.action_id),
            "enrolled": self.enrolled,
            "confirmed": session.reauth_is_fresh(self.request),
            "has_keys": self.enrolled and devices.keys_of(user).exists(),
        }
        return render(self.request, self.template_name, context)


def replay(request, action: dict):
    """Run the parked action as it was submitted (its CSRF token was checked then)."""
    path = action["path"]
    if action["method"] != "POST":
        return HttpResponseRedirect(path if is_safe_next(path, request) else reverse("home"))
    path = path.split("?", 1)[0]
    match = resolve(path)
    data = QueryDict(mutable=True)
    for key, values in action["data"].items():
        data.setlist(key, values)
    request.method = "POST"
    request.POST = data
    request.path = request.path_info = path
    request.resolver_match = match
    return match.func(request, *match.args, **match.kwargs)


@method_decorator([never_cache, sensitive_post_parameters("code")], name="dispatch")
class DisableOwn2FAView(View):
    """Turn 2FA off for yourself, after a current code, unless the clinic requires it."""

    http_method_names = ["post"]

    def post(self, request):
        user = request.user
        if not policy.can_disable_own_2fa(user):
            messages.error(request, texts.message("disable_refused_mandatory"))
            return redirect("profile")
        # Same ids as the profile's own form, so the label and error stay tied to the field.
        form = TOTPCodeForm(request.POST, auto_id="id_disable_%s")
        if form.is_valid():
            ip_address = client_ip(request)
            try:
                totp_verify(user=user, token=form.cleaned_data["code"], ip_address=ip_address)
            except CodeRefused as refused:
                form.add_error("code", texts.code_refused(refused))
            else:
                services.twofa_reset(user=user, actor=user, action=AuditEvent.Action.DISABLED_BY_SELF, ip_address=ip_address)
                session.keep_after_own_reset(request)
                messages.success(request, texts.message("disabled_self"))
                return redirect("profile")
        return profile.render_profile(request, disable_form=form)


class MemberDisable2FAView(ClinicAdminRequiredMixin, View):
    """Confirm page (GET, changes nothing) and the disabling itself (POST)."""

    def get(self, request, pk: int):
        member = self.member(pk)
        if member.pk == request.user.pk:
            messages.error(request, texts.message("disable_own_refused"))
            return redirect("user_detail", pk=member.pk)
        state = devices.twofa_state(member)
        if not state.anything_to_reset:
            messages.info(request, texts.message("user_has_no_2fa", name=member.display_name))
            return redirect("user_detail", pk=member.pk)
        context = {"member": member, "twofa": state, "mandatory": self.clinic.mandatory_2fa}
        return render(request, "twofactor/member_disable_confirm.html", context)

    def post(self, request, pk: int):
        member = self.member(pk)
        if member.pk == request.user.pk:
            messages.error(request, texts.message("disable_own_refused"))
            return redirect("user_detail", pk=member.pk)
        asked = reauth.confirmation_needed(request, texts.message("action_disable_member", name=member.display_name))
        if asked is not None:
            return asked
        removed = services.twofa_reset(
            user=member,
            actor=request.user,
            action=AuditEvent.Action.DISABLED_BY_ADMIN,
            ip_address=client_ip(request),
        )
        if not removed.anything_to_reset:
            messages.info(request, texts.message("user_has_no_2fa", name=member.display_name))
        else:
            messages.success(request, texts.message("user_2fa_disabled", name=member.display_name))
            if self.clinic.mandatory_2fa:
                messages.info(request, texts.message("user_2fa_disabled_mandatory", name=member.display_name))
        return redirect("user_detail", pk=member.pk)


class RemindMembersView(ClinicAdminRequiredMixin, View):
    """E-mail every member who has not set up 2FA; at most once per 24 hours per clinic."""

    http_method_names = ["post"]

    def post(self, request):
        try:
            sent = services.clinic_remind_unenrolled(clinic=self.clinic, actor=request.user, ip_address=client_ip(request))
        except services.RemindersTooSoon as too_soon:
            messages.error(request, texts.reminders_too_soon(too_soon.next_at))
        else:
            messages.success(request, texts.reminders_sent(sent))
        return redirect("user_list")


class DismissGraceBannerView(View):
    """Hide the grace-period banner for the rest of this session (it comes back at the next sign-in)."""

    http_method_names = ["post"]

    def post(self, request):
        session.dismiss_grace_banner(request)
        return HttpResponseRedirect(safe_next(request))
