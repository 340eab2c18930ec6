
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.views import LoginView, LogoutView, PasswordChangeView
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.utils.decorators import method_decorator
from django.utils.http import urlencode
from django.views import View
from django.views.decorators.cache import never_cache

from clinic_auth.http import client_ip, is_safe_next
from clinic_auth.permissions import ClinicAdminRequiredMixin
from clinic_auth.twofactor import devices, policy, reauth, services, session, texts
from clinic_auth.twofactor import profile as twofactor_profile

from . import selectors
from . import services as user_services
from .forms import ChangePasswordForm, LoginForm, UserSearchForm
from .member_page import membership_context
from .models import UserSession

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
    """Log out. The idle warning's countdown posts here too, with the limit that ended the session
    ("reason") and the page it was on ("next", which Django's LogoutView follows): the login page then
    says why, and signing in again leads back to that page."""

    def post(self, request, *args, **kwargs):
        ended_by = request.POST.get("reason")
        response = super().post(request, *args, **kwargs)
        # Stored in the new, empty session.
        if ended_by in ("idle", "absolute"):
            messages.info(request, texts.session_ended(ended_by))
        else:
            messages.success(request, texts.message("logged_out"))
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


@method_decorator(never_cache, name="dispatch")
class ProfileView(View):
    def get(self, request):
        return twofactor_profile.render_profile(request)


class ChangePasswordView(PasswordChangeView):
    """Django's view: it keeps this session and, by changing the hash, ends every other one."""

    form_class = ChangePasswordForm
    template_name = "users/password_change.html"
    success_url = reverse_lazy("profile")

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "request": self.request}

    def form_valid(self, form):
        response = super().form_valid(form)
        messages.success(self.request, texts.message("password_changed"))
        return response


class UserListView(ClinicAdminRequiredMixin, View):
    def get(self, request):
        clinic = self.clinic
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
        # While searching, the page counts the matches instead (the paginator's own count).
        counts = None if query else selectors.enrolment_counts(clinic, page=page)
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
            "counts": counts,
            "mandatory": clinic.mandatory_2fa,
            "mandatory_from": mandatory_from(clinic),
            "still_to_set_up": counts["active"] - counts["active_enrolled"] if counts else None,
            "deactivated_count": counts["total"] - counts["active"] if counts else 0,
            "reminders_next_at": services.reminders_next_allowed(clinic=clinic),
        }
        return render(request, "users/user_list.html", context)


def mandatory_from(clinic):
    """The date Mandatory 2FA starts, while it is still to come (the grace period); else None."""
    enforcement = policy.enforcement_of(clinic)
    return enforcement.starts_on if enforcement.pending() else None


class UserDetailView(ClinicAdminRequiredMixin, View):
    def get(self, request, pk: int):
        member = self.member(pk, members=selectors.member_page_rows(self.members()))
        state = devices.twofa_state(member)
        context = {
            "member": member,
            "enrolled": state.enrolled,
            "twofa": state,
            "mandatory": self.clinic.mandatory_2fa,
            "mandatory_from": mandatory_from(self.clinic),
            "is_self": member.pk == request.user.pk,
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
        return self.answer(*session.session_left(request))

    def post(self, request):
        return self.answer(*session.keep_alive(request))

    @staticmethod
    def answer(expires_in: int, ends_by: str) -> JsonResponse:
        # ends_by "absolute": the sign-in's own limit, which staying active cannot move.
        return JsonResponse({"expires_in": expires_in, "ends_by": ends_by})


class EndMemberSessionsView(ClinicAdminRequiredMixin, View):
    """A clinic admin signs a member out of one browser, or everywhere (audited, the member is e-mailed)."""

    http_method_names = ["post"]

    def post(self, request, pk: int):
        member = self.member(pk)
        if member.pk != request.user.pk:  # an admin's own browsers, from their own page, as on My Profile
            asked = reauth.confirmation_needed(
                request, texts.message("action_end_member_sessions", name=member.display_name), fields=("session",)
            )
            if asked is not None:
                return asked
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
