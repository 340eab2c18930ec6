import time

from django.contrib import messages
from django.contrib.auth import authenticate, logout
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.views import LoginView, LogoutView, PasswordChangeView
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect, JsonResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import resolve, reverse, reverse_lazy
from django.utils.decorators import method_decorator
from django.utils.http import urlencode
from django.views import View
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters

from clinic_auth.http import client_ip, is_safe_next
from clinic_auth.passwords import PasswordAttemptsThrottled
from clinic_auth.twofactor import devices, policy, reauth, services, session, texts
from clinic_auth.twofactor.forms import ChallengeForm, TOTPCodeForm
from clinic_auth.twofactor.models import AuditEvent

from . import selectors
from . import services as user_services
from .forms import KeyNameForm, LoginForm, ReauthPasswordForm, UserSearchForm
from .member_page import membership_context
from .models import User, UserSession

USERS_PER_PAGE = 50


class ClinicLoginView(LoginView):
    """Log in. On a shared computer where someone is still signed in, it says who, and offers
    to continue as them or to sign them out first; it never lands on their pages silently."""

    form_class = LoginForm
    template_name = "twofactor/login.html"

    def get_redirect_url(self):
        # A `next` naming a login page would lead back here (Django even raises a redirect-loop error).
        url = super().get_redirect_url()
        if not is_safe_next(url, self.request) or policy.view_name_for_path(url.split("?", 1)[0]) in ("login", "root"):
            return ""
        return url

    def get(self, request, *args, **kwargs):
        if request.user.is_authenticated:
            context = {"signed_in": request.user, "continue_url": self.get_success_url()}
            return render(request, "twofactor/signed_in_as.html", context)
        return super().get(request, *args, **kwargs)

    def form_valid(self, form):
        previous = self.request.user
        if previous.is_authenticated and previous.pk != form.get_user().pk:
            # Django's login() flushes the other person's session: say so, and record it.
            user_services.user_signed_out_for_switch(
                user=previous, session_key=self.request.session.session_key, ip_address=client_ip(self.request)
            )
            messages.info(self.request, texts.message("switched_user", name=previous.display_name))
        response = super().form_valid(form)
        session.start_login(self.request)
        return response


@method_decorator(login_not_required, name="dispatch")
class ClinicLogoutView(LogoutView):
    def post(self, request, *args, **kwargs):
        response = super().post(request, *args, **kwargs)
        messages.success(request, texts.message("logged_out"))  # stored in the new, empty session
        return response


class SignInAsSomeoneElseView(View):
    """"Sign in as someone else": the person still signed in is signed out, then the empty login form."""

    http_method_names = ["post"]

    def post(self, request):
        user = request.user
        user_services.user_signed_out_for_switch(user=user, session_key=request.session.session_key, ip_address=client_ip(request))
        logout(request)
        messages.info(request, texts.message("switched_user", name=user.display_name))
        return redirect("login")


class ReauthenticateView(View):
    """"Confirm it's you": a current code (or a recovery code, or a passkey), or the password for
    an account without 2FA; then the action that asked for it runs with its original form data."""

    template_name = "users/reauthenticate.html"

    def dispatch(self, request, *args, **kwargs):
        self.action = session.pending_action(request)
        if self.action is None:
            messages.info(request, texts.message("nothing_to_confirm"))
            return redirect("home")
        self.enrolled = devices.is_enrolled(request.user)
        return super().dispatch(request, *args, **kwargs)

    def get(self, request):
        return self.render(self.new_form())

    def post(self, request):
        if "continue" in request.POST and session.reauth_is_fresh(request):
            return replay(request, session.take_pending_action(request))
        form = self.new_form(request.POST)
        if form.is_valid() and self.confirm(form):
            session.note_reauth(request)
            return replay(request, session.take_pending_action(request))
        return self.render(form)

    def new_form(self, data=None):
        return ChallengeForm(data) if self.enrolled else ReauthPasswordForm(data)

    def confirm(self, form) -> bool:
        user, ip_address = self.request.user, client_ip(self.request)
        if self.enrolled:
            kind, token = form.cleaned_data["code"]
            try:
                services.code_verify(user=user, kind=kind, token=token, ip_address=ip_address)
                return True
            except services.CodeRefused as refused:
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


@login_not_required
def admin_login(request):
    """Stands in for the admin's own password-only login form, which would skip the code.

    Someone signed in who is not an operator gets a 403 here: sending them to our
    login page would bounce them straight back to /admin/, for ever.
    """
    if request.user.is_authenticated:
        raise PermissionDenied(texts.message("admin_site_operators_only"))
    next_url = request.GET.get("next", "")
    target = reverse("login")
    if is_safe_next(next_url, request):
        target = f"{target}?{urlencode({'next': next_url})}"
    return HttpResponseRedirect(target)


def home(request):
    # The stored flag (users.receivers keeps it exact) is enough to show a status: no query.
    return render(request, "users/home.html", {"enrolled": request.user.twofa_enrolled})


def render_profile(request, *, disable_form=None, rename_errors=None):
    user = request.user
    enrolled = user.twofa_enrolled  # what the page shows; every action it offers checks again
    # Only an enrolled user's page lists methods; a user without any is spared the queries.
    methods = devices.sign_in_methods(user) if enrolled else devices.SignInMethods(app=None, keys=[], recovery_codes_left=0)
    keys = methods.keys
    for key in keys:
        key.rename_form = KeyNameForm(initial={"name": key.name}, auto_id=f"id_key_{key.pk}_%s")
        if rename_errors and rename_errors[0] == key.pk:
            key.rename_form = rename_errors[1]
    context = {
        "enrolled": enrolled,
        "app_device": methods.app,
        "keys": keys,
        "required_by_clinic": policy.two_factor_required(user),
        "recovery_codes_left": methods.recovery_codes_left,
        "disable_form": disable_form or TOTPCodeForm(auto_id="id_disable_%s"),
        "reauth_fresh": session.reauth_is_fresh(request),
        "sessions": selectors.signed_in_sessions(user, current_session_key=request.session.session_key),
    }
    return render(request, "users/profile.html", context)


@method_decorator(never_cache, name="dispatch")
class ProfileView(View):
    def get(self, request):
        return render_profile(request)


class RenameKeyView(View):
    http_method_names = ["post"]

    def post(self, request, pk: int):
        form = KeyNameForm(request.POST, auto_id=f"id_key_{pk}_%s")
        if not form.is_valid():
            return render_profile(request, rename_errors=(pk, form))
        try:
            key = services.passkey_rename(user=request.user, credential_id=pk, name=form.cleaned_data["name"])
        except services.KeyNotFound:
            messages.error(request, texts.message("key_not_found"))
        else:
            messages.success(request, texts.message("key_renamed", name=key.name))
        return redirect("profile")


class AddKeyView(View):
    """The "Add a passkey or security key" button of a session that must confirm it's them first."""

    http_method_names = ["post"]

    @method_decorator(reauth.sensitive_action(texts.MESSAGES["action_add_key"]))
    def post(self, request):
        return HttpResponseRedirect(reverse("profile") + "#add-key")


@method_decorator(reauth.sensitive_action(texts.MESSAGES["action_remove_key"]), name="dispatch")
class RemoveKeyView(View):
    http_method_names = ["post"]

    def post(self, request, pk: int):
        name = devices.keys_of(request.user).filter(pk=pk).values_list("name", flat=True).first()
        try:
            was_last = services.passkey_remove(user=request.user, credential_id=pk, ip_address=client_ip(request))
        except services.KeyNotFound:
            messages.error(request, texts.message("key_not_found"))
        except services.LastMethodRequired:
            messages.error(request, texts.message("key_last_required"))
        else:
            if was_last:
                session.keep_after_own_reset(request)
            messages.success(request, texts.message("key_removed_last" if was_last else "key_removed", name=name))
        return redirect("profile")


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
                services.code_verify(user=user, kind="totp", token=form.cleaned_data["code"], ip_address=ip_address)
            except services.CodeRefused as refused:
                form.add_error("code", texts.code_refused(refused))
            else:
                services.twofa_reset(user=user, actor=user, action=AuditEvent.Action.DISABLED_BY_SELF, ip_address=ip_address)
                session.keep_after_own_reset(request)
                messages.success(request, texts.message("disabled_self"))
                return redirect("profile")
        return render_profile(request, disable_form=form)


class ChangePasswordView(PasswordChangeView):
    """Django's view: it keeps this session and, by changing the hash, ends every other one."""

    template_name = "users/password_change.html"
    success_url = reverse_lazy("profile")

    def form_valid(self, form):
        response = super().form_valid(form)
        messages.success(self.request, texts.message("password_changed"))
        return response


class ClinicAdminRequiredMixin:
    """Only a clinic's own admins manage it; everyone else is refused before any lookup."""

    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_clinic_admin:
            raise PermissionDenied(texts.message("clinic_admins_only"))
        return super().dispatch(request, *args, **kwargs)

    def clinic_user(self, pk: int) -> User:
        # Scoped to the admin's clinic, so another clinic's user is a 404, whatever the id.
        members = devices.with_methods(selectors.clinic_users(self.request.user.clinic))
        return get_object_or_404(selectors.with_latest_invitation(members), pk=pk)


class UserListView(ClinicAdminRequiredMixin, View):
    def get(self, request):
        clinic = request.user.clinic
        form = UserSearchForm(request.GET)  # both fields are optional, so always bound
        form.is_valid()  # keep each valid field: an unknown sort must not drop a good search
        query = form.cleaned_data.get("q", "")
        sort = form.cleaned_data.get("sort") or "name"
        status = form.cleaned_data.get("status") or ""
        twofa = form.cleaned_data.get("twofa") or ""
        page = selectors.user_page(
            clinic=clinic, query=query, sort=sort, status=status, twofa=twofa,
            page=request.GET.get("page"), per_page=USERS_PER_PAGE,
        )
        context = {
            "form": form,
            "page": page,
            "rows": selectors.user_rows(page.object_list),
            "query": query,
            "sort": sort,
            "keep_query": urlencode(
                {"q": query, "sort": sort, **({"status": status} if status else {}), **({"twofa": twofa} if twofa else {})}
            ),
            "status": status,
            "twofa": twofa,
            # While searching, the page counts the matches instead (the paginator's own count).
            "counts": None if query else selectors.enrolment_counts(clinic, page=page),
            "mandatory": clinic.mandatory_2fa,
            "reminders_next_at": services.reminders_next_allowed(clinic=clinic),
        }
        return render(request, "users/user_list.html", context)


class UserDetailView(ClinicAdminRequiredMixin, View):
    def get(self, request, pk: int):
        member = self.clinic_user(pk)
        state = devices.twofa_state(member)
        context = {
            "member": member,
            "enrolled": state.enrolled,
            "twofa": state,
            "mandatory": request.user.clinic.mandatory_2fa,
            "is_self": member.pk == request.user.pk,
            "sessions": selectors.signed_in_sessions(member, current_session_key=request.session.session_key),
            **membership_context(member=member),
        }
        return render(request, "users/user_detail.html", context)


class EndOwnSessionsView(View):
    """"Sign out" one of your other browsers, or "Sign out everywhere else"."""

    http_method_names = ["post"]

    def post(self, request):
        target = request.POST.get("session", "")
        current = request.session.session_key
        try:
            ended = user_services.user_sessions_end(
                user=request.user,
                actor=request.user,
                reason=UserSession.EndReason.ENDED_BY_USER,
                session_ids=None if target == "others" else [_int_or_zero(target)],
                keep_session_key=current,
                ip_address=client_ip(request),
            )
        except user_services.SessionNotFound:
            messages.error(request, texts.message("session_not_found"))
        else:
            messages.success(request, texts.sessions_ended(ended))
        return HttpResponseRedirect(reverse("profile") + "#sessions-heading")


def _int_or_zero(value: str) -> int:
    return int(value) if value.isascii() and value.isdigit() and len(value) < 18 else 0


@method_decorator(never_cache, name="dispatch")
class KeepAliveView(View):
    """"Stay signed in" in the idle warning: counts as activity, says how long the session now has."""

    def get(self, request):
        """How long this session has left, without counting as activity (another tab may have kept it alive)."""
        return JsonResponse({"idle_expires_in": max(0, session.idle_expires_at(request) - int(time.time()))})

    def post(self, request):
        return JsonResponse({"idle_expires_in": session.keep_alive(request)})


class EndMemberSessionsView(ClinicAdminRequiredMixin, View):
    """A clinic admin signs a member out of one browser, or everywhere (audited, the member is e-mailed)."""

    http_method_names = ["post"]

    def post(self, request, pk: int):
        member = self.clinic_user(pk)
        target = request.POST.get("session", "")
        try:
            ended = user_services.user_sessions_end(
                user=member,
                actor=request.user,
                reason=UserSession.EndReason.ENDED_BY_ADMIN,
                session_ids=None if target == "all" else [_int_or_zero(target)],
                # An admin viewing their own page keeps the browser they are using.
                keep_session_key=request.session.session_key if member.pk == request.user.pk else None,
                ip_address=client_ip(request),
            )
        except user_services.SessionNotFound:
            messages.error(request, texts.message("session_not_found"))
        else:
            messages.success(request, texts.sessions_ended(ended, name=member.display_name))
        return HttpResponseRedirect(reverse("user_detail", args=[member.pk]) + "#sessions-heading")


class UserDisable2FAView(ClinicAdminRequiredMixin, View):
    """Confirm page (GET, changes nothing) and the disabling itself (POST)."""

    def get(self, request, pk: int):
        member = self.clinic_user(pk)
        if member.pk == request.user.pk:
            messages.error(request, texts.message("disable_own_refused"))
            return redirect("user_detail", pk=member.pk)
        state = devices.twofa_state(member)
        if not state.anything_to_reset:
            messages.info(request, texts.message("user_has_no_2fa", name=member.display_name))
            return redirect("user_detail", pk=member.pk)
        context = {"member": member, "twofa": state, "mandatory": request.user.clinic.mandatory_2fa}
        return render(request, "users/user_disable_confirm.html", context)

    def post(self, request, pk: int):
        member = self.clinic_user(pk)
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
            if request.user.clinic.mandatory_2fa:
                messages.info(request, texts.message("user_2fa_disabled_mandatory", name=member.display_name))
        return redirect("user_detail", pk=member.pk)


class RemindMembersView(ClinicAdminRequiredMixin, View):
    """E-mail every member who has not set up 2FA; at most once per 24 hours per clinic."""

    http_method_names = ["post"]

    def post(self, request):
        try:
            sent = services.clinic_remind_unenrolled(clinic=request.user.clinic, actor=request.user, ip_address=client_ip(request))
        except services.RemindersTooSoon as too_soon:
            messages.error(request, texts.reminders_too_soon(too_soon.next_at))
        else:
            messages.success(request, texts.reminders_sent(sent))
        return redirect("user_list")


@method_decorator(never_cache, name="dispatch")
class UserSigninCodeView(ClinicAdminRequiredMixin, View):
    """Issue a one-time sign-in code for a member who lost their phone: confirm (GET), then
    issue (POST, after "Confirm it's you" when the admin has not proved a factor recently) and
    show it once on the response (nothing is kept to show it again)."""

    def refusal(self, request, member):
        if member.pk == request.user.pk:
            return texts.message("signin_code_self_refused")
        if not devices.is_enrolled(member):
            return texts.message("signin_code_needs_2fa", name=member.display_name)
        return None

    def get(self, request, pk: int):
        member = self.clinic_user(pk)
        refused = self.refusal(request, member)
        if refused:
            messages.error(request, refused)
            return redirect("user_detail", pk=member.pk)
        return render(request, "users/user_signin_code.html", {"member": member})

    def post(self, request, pk: int):
        member = self.clinic_user(pk)
        refused = self.refusal(request, member)
        if refused:
            messages.error(request, refused)
            return redirect("user_detail", pk=member.pk)
        asked = reauth.confirmation_needed(request, texts.message("action_issue_code", name=member.display_name))
        if asked is not None:
            return asked
        try:
            code, expires_at = services.signin_code_issue(user=member, actor=request.user, ip_address=client_ip(request))
        except services.SelfIssueRefused:
            messages.error(request, texts.message("signin_code_self_refused"))
            return redirect("user_detail", pk=member.pk)
        context = {"member": member, "code": f"{code[:4]} {code[4:]}", "expires_at": expires_at}
        return render(request, "users/user_signin_code.html", context)
